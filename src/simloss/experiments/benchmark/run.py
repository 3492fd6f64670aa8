"""One benchmark command: every task x loss x parameter value x seed, once, on the sweep engine.

A benchmark folder holds ``benchmark.json`` (its tasks, losses, grids, runs and
run settings), ``data/`` (the package datasets written as CSV files with their
task files, :mod:`.datasets`) and one sweep folder per task under ``tasks/``
(:func:`simloss.experiments.sweep.run_sweep`: resumable after ``kill -9``,
several workers, SQLite or a shared PostgreSQL storage). Rerunning the command
resumes it; a command with other tasks, losses, grids, runs or settings is
refused before any training.
"""

from __future__ import annotations

import dataclasses
import operator
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simloss.experiments._files import atomic_write_json, read_json_object
from simloss.experiments.benchmark.datasets import BENCHMARK_DATASETS, write_task
from simloss.experiments.config import TrainConfig
from simloss.experiments.specs import LOSSES, loss_spec, metric_spec, swept_param
from simloss.experiments.sweep import Grid, run_sweep
from simloss.experiments.sweep.run import SweepResult
from simloss.experiments.sweep.settings import LOCAL_KEYS, fixed_settings
from simloss.experiments.task import BUILTIN_TASKS, TASK_SUFFIXES, Task, read_task

__all__ = [
    "BENCHMARK_FILE",
    "BENCHMARK_METRICS",
    "DEFAULT_TASKS",
    "BenchmarkPlan",
    "check_run_args",
    "estimate",
    "plan_benchmark",
    "read_benchmark",
    "run_benchmark",
    "study_name",
    "usable_tasks",
]

#: The benchmark's settings file.
BENCHMARK_FILE = "benchmark.json"
SCHEMA_VERSION = 1
#: The tasks of a benchmark by default: the package datasets and the embedded Abalone.
DEFAULT_TASKS: tuple[str, ...] = (*BENCHMARK_DATASETS, "abalone")
#: The metrics the ordinal literature reports (Gutiérrez et al. 2016): the zero-one error
#: (MZE = 1 - accuracy), MAE under the argmax and the expected-value decoders, AMAE, QWK.
BENCHMARK_METRICS: tuple[str, ...] = ("mze", "mae", "mae_expectation", "amae", "qwk")
#: The values of r a benchmark tries for the losses built from the similarity (fewer
#: than the paper's ten, so that every loss is chosen among about as many values).
SIMILARITY_GRID: tuple[float, ...] = (0.2, 0.5, 0.8)
#: What a benchmark folder holds.
ENTRIES = frozenset({BENCHMARK_FILE, "data", "tasks", "report", ".benchmark.lock"})


@dataclass(frozen=True)
class BenchmarkPlan:
    """What a benchmark runs.

    Attributes:
        tasks: the tasks by name, with the task file of each (``None``: built in).
        losses: the losses, each with its grid (the same on every task).
        runs: seeds per task, loss and value (run ``i`` trains with ``seed + i``).
        settings: the run settings every run shares (a ``TrainConfig``'s).
        left_out: losses the defaults left out, with the reason.
    """

    tasks: dict[str, str | None]
    losses: dict[str, Grid]
    runs: int
    settings: dict[str, Any]
    left_out: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, as ``benchmark.json`` keeps them (task files by name).

        ``settings`` are the run settings given, less the local ones (where and how
        runs happen: device, threads, progress bars, :data:`LOCAL_KEYS`); ``fixed``
        holds each task's resolved fixed settings, as its sweeps compare them
        (:func:`simloss.experiments.sweep.settings.fixed_settings`), so that a
        resume may name a default's value or another device.
        """
        return {
            "tasks": list(self.tasks),
            "losses": {name: grid.to_dict() for name, grid in self.losses.items()},
            "runs": self.runs,
            "settings": {k: v for k, v in self.settings.items() if k not in LOCAL_KEYS},
            "fixed": {task: fixed_settings(self.base(task)) for task in self.tasks},
        }

    def base(self, task: str) -> TrainConfig:
        """The base config of a task's sweeps."""
        file = self.tasks[task]
        where = {"task": file} if file is not None else {"dataset": task}
        return TrainConfig.from_dict({**self.settings, **where})

    def total_runs(self) -> int:
        """Every task x loss x value x seed."""
        return len(self.tasks) * sum(len(g.points()) for g in self.losses.values())


def _task_of(name: str, data: Path) -> tuple[str, str | None, Task]:
    """A benchmark task by name (package dataset, built-in dataset) or task file."""
    if name in BENCHMARK_DATASETS:
        file = write_task(BENCHMARK_DATASETS[name], data)
        return name, str(file), read_task(file)
    if name in BUILTIN_TASKS:
        task = BUILTIN_TASKS[name]
        if task.needs_data_dir:
            raise ValueError(
                f"Expected --tasks to name datasets a benchmark can load, but {name!r} needs a "
                "data folder (--data-dir), which a benchmark does not take: write a task file "
                "(`simloss task new`, with its data path) and give that file in --tasks"
            )
        return name, None, task
    if Path(name).suffix.lower() in TASK_SUFFIXES:
        task = read_task(name)
        if task.name in BENCHMARK_DATASETS or task.name in BUILTIN_TASKS:
            raise ValueError(
                f"Expected task files in --tasks to be named unlike the datasets, but task file "
                f"{name} is named {task.name!r} like the dataset {task.name!r}; rename it "
                "(its `name`)"
            )
        return task.name, str(Path(name).resolve()), task
    raise ValueError(
        f"Expected --tasks to name datasets among {usable_tasks()} or task files (.toml/.json), "
        f"but found {name!r}"
    )


def usable_tasks() -> list[str]:
    """The dataset names a benchmark takes (those that need a data folder are not among them)."""
    return [
        *BENCHMARK_DATASETS,
        *(
            k
            for k, t in BUILTIN_TASKS.items()
            if k not in BENCHMARK_DATASETS and not t.needs_data_dir
        ),
    ]


def _check_names(value: Any, name: str) -> list[str]:
    """A sequence of names (not one string), as ``plan_benchmark`` takes ``tasks``/``losses``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(
            f"Expected `{name}` to be a sequence of names (e.g. a list), but found "
            f"{type(value).__name__} {value!r}"
        )
    bad = [v for v in value if not isinstance(v, str)]
    if bad:
        raise TypeError(f"Expected `{name}` to hold names (str), but found {bad[0]!r}")
    return list(value)


def plan_benchmark(
    tasks: Sequence[str],
    losses: Sequence[str] | None,
    out: str | Path,
    *,
    runs: int,
    settings: dict[str, Any] | None = None,
    metrics: Sequence[str] = BENCHMARK_METRICS,
) -> BenchmarkPlan:
    """Check a benchmark's request and plan it (writes the package datasets into ``out/data``).

    Everything a run would refuse is checked here, before anything is trained
    or written besides ``out/data``: the arguments' types, the run settings of
    every task (unknown keys, types, ranges, seeds, the device, the model
    against each task's inputs) and, for a folder that already holds a
    benchmark, that this one is the same.

    Args:
        tasks: dataset names (:data:`DEFAULT_TASKS`, the built-in ones) or task files.
        losses: the losses; ``None``: every loss of ``--loss`` that fits every task.
        out: the benchmark folder.
        runs: seeds per task, loss and value.
        settings: run settings shared by every run (``epochs``, ``patience``, ...).
        metrics: the metrics the report ranks (ordinal ones need ordered classes).

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: fewer than two tasks or losses (a Friedman test needs them),
            a task or loss repeated, a loss that does not fit a task, an ordinal metric
            on a task of unordered classes, a bad run setting, another benchmark in
            ``out`` (one line each, before any training).
    """
    task_names = _check_names(tasks, "tasks")
    loss_names = None if losses is None else _check_names(losses, "losses")
    if not isinstance(out, (str, Path)):
        raise TypeError(f"Expected `out` to be a str or Path, but found {type(out).__name__}")
    out = Path(out)
    if isinstance(runs, bool) or not isinstance(runs, int):
        raise TypeError(f"Expected `runs` to be an int, but found {type(runs).__name__} {runs!r}")
    if runs < 1:
        raise ValueError(f"Expected --runs >= 1, but found {runs}")
    if settings is not None and not isinstance(settings, dict):
        raise TypeError(
            f"Expected `settings` to be a dict of run settings, but found {type(settings).__name__}"
        )
    metric_list = _check_names(metrics, "metrics")
    for metric in metric_list:
        if metric != "mze" and metric_spec(metric) is None:
            raise ValueError(
                f"Expected `metrics` among mze and the record metrics, but found {metric!r}"
            )
    if len(task_names) < 2:
        raise ValueError(
            f"Expected at least two tasks (a Friedman test ranks losses across tasks), but "
            f"found {task_names}"
        )
    TrainConfig.from_dict(dict(settings or {}))  # unknown keys and types, by name
    _check_entries(out)
    if (out / BENCHMARK_FILE).is_file():  # before data/ gets a dataset of another benchmark
        stored = read_benchmark(out).get("tasks") or []
        extra = [n for n in task_names if n in BENCHMARK_DATASETS and n not in stored]
        if extra:
            raise ValueError(
                f"Benchmark {out} was made with other tasks: {stored!r} (now {task_names!r}). "
                "A benchmark's tasks, losses, grids, runs and settings are fixed: use another --out"
            )
    fresh = not out.exists()
    try:
        return _plan(task_names, loss_names, out, runs, dict(settings or {}), metric_list)
    except Exception:
        if fresh and not (out / BENCHMARK_FILE).exists():  # a refused request leaves no folder
            shutil.rmtree(out, ignore_errors=True)
        raise


def _plan(
    task_names: list[str],
    loss_names: list[str] | None,
    out: Path,
    runs: int,
    settings: dict[str, Any],
    metric_list: list[str],
) -> BenchmarkPlan:
    """:func:`plan_benchmark` once its arguments' types are checked (writes ``out/data``)."""
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    resolved: dict[str, str | None] = {}
    specs: dict[str, Task] = {}
    for name in task_names:
        key, file, task = _task_of(name, data)
        if key in resolved:
            raise ValueError(f"Expected each task once in --tasks, but found {key!r} twice")
        resolved[key], specs[key] = file, task
    ordinal = [m for m in metric_list if m != "mze"]
    for key, task in specs.items():
        if ordinal and not task.ordinal:
            raise ValueError(
                f"Expected ordered classes for the metrics {ordinal} (MAE, AMAE and QWK "
                f"measure distances between classes), but task {key!r} has unordered ones"
            )
    left_out: dict[str, str] = {}
    if loss_names is None:
        chosen = []
        for name in LOSSES:
            misfit = _misfit(name, specs)
            if misfit is None:
                chosen.append(name)
            else:
                left_out[name] = misfit
    else:
        chosen = []
        for name in loss_names:
            loss_spec(name)
            if name in chosen:
                raise ValueError(f"Expected each loss once in --losses, but found {name!r} twice")
            chosen.append(name)
            misfit = _misfit(name, specs)
            if misfit is not None:
                raise ValueError(f"Expected losses that fit every task, but {misfit}")
    if len(chosen) < 2:
        raise ValueError(
            f"Expected at least two losses (a Friedman test ranks them), but found {chosen}"
        )
    grids = {name: _grid(name, specs, runs) for name in chosen}
    plan = BenchmarkPlan(resolved, grids, runs, settings, left_out)
    for key in plan.tasks:
        _check_task_settings(plan, key)
    _check_folder(out, plan)
    return plan


def _check_task_settings(plan: BenchmarkPlan, task: str) -> None:
    """What a task's sweeps would refuse of the settings, before anything trains."""
    from simloss.experiments.sweep.engine import check_engine_args

    base = plan.base(task)
    check_engine_args(
        base, plan.runs, heartbeat_interval=None, poll_interval=1.0, storage=None,
        study_name=None,
    )  # fmt: skip
    if plan.settings.get("model") is not None:
        from simloss.experiments.data import load_data
        from simloss.experiments.models import build_model

        data = load_data(base.resolve())
        file = plan.tasks[task]
        try:
            build_model(
                str(plan.settings["model"]), data.input_shape, data.num_classes,
                search=None if file is None else Path(file).parent,
            )  # fmt: skip
        except ValueError as exc:
            raise ValueError(f"Expected --model to fit task {task!r}: {exc}") from exc


def _misfit(loss: str, tasks: dict[str, Task]) -> str | None:
    """Why a loss does not fit one of the tasks (``None``: it fits all)."""
    spec = loss_spec(loss)
    for key, task in tasks.items():
        if not spec.applies_to(task):
            kind = "ordered" if spec.task == "ordinal" else spec.task
            return f"loss {loss!r} needs {kind} classes and task {key!r} has others"
        if spec.needs:
            return f"loss {loss!r} needs {', '.join(spec.needs)}, which a benchmark does not give"
        if spec.uses_similarity and task.param != "r":
            return (
                f"loss {loss!r} needs a similarity of r, and task {key!r} declares {task.param!r}"
            )
        classes = _class_count(task)
        if spec.min_classes is not None and (classes is None or classes < spec.min_classes):
            found = "an unknown number" if classes is None else str(classes)
            return (
                f"loss {loss!r} is defined for at least {spec.min_classes} classes and task "
                f"{key!r} has {found}"
            )
        if spec.max_classes is not None and (classes is None or classes > spec.max_classes):
            found = "an unknown number" if classes is None else str(classes)
            return (
                f"loss {loss!r} is defined for at most {spec.max_classes} classes and task "
                f"{key!r} has {found}"
            )
    return None


def _class_count(task: Task) -> int | None:
    """The number of classes a task declares (``None``: known only from its data)."""
    if task.classes.order is not None:
        return len(task.classes.order)
    if task.classes.range is not None:
        return task.classes.range[1] - task.classes.range[0] + 1
    if task.file is None:
        return None
    from simloss.experiments.data import load_data

    return load_data(TrainConfig(task=str(task.file))).num_classes


def _grid(loss: str, tasks: dict[str, Task], runs: int) -> Grid:
    spec = loss_spec(loss)
    if spec.uses_similarity:
        return Grid("r", SIMILARITY_GRID, runs, loss)
    swept = swept_param(next(iter(tasks.values())), loss)
    if swept is None:
        return Grid(None, (), runs, loss)
    return Grid(swept.name, swept.grid, runs, loss)


def read_benchmark(folder: str | Path) -> dict[str, Any]:
    """A benchmark folder's settings (``benchmark.json``)."""
    return read_json_object(Path(folder) / BENCHMARK_FILE, "benchmark file")


def _writing(name: str) -> bool:
    """A temporary file of the atomic writer, ``.benchmark.json.<random>.tmp``."""
    return name.endswith(".tmp") and any(name.startswith(f".{entry}.") for entry in ENTRIES)


def _check_entries(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(
            f"Expected the benchmark folder {out} to be a folder, but it is a file"
        )
    foreign = (
        sorted(p.name for p in out.iterdir() if p.name not in ENTRIES and not _writing(p.name))
        if out.is_dir()
        else []
    )
    if foreign:
        raise FileExistsError(
            f"Expected the benchmark folder {out} to be new, empty or a benchmark's, but it "
            f"also holds {foreign[:5]}; choose another --out"
        )


def _check_folder(out: Path, plan: BenchmarkPlan, storage: str | None = None) -> None:
    """Refuse a folder that holds another benchmark (or this one on another storage).

    Compared: tasks, losses with their grids, runs, and each task's resolved fixed
    settings (a ``benchmark.json`` without them: those its stored settings resolve
    to); local settings may differ between reruns and machines, as in a sweep.
    """
    _check_entries(out)
    if not (out / BENCHMARK_FILE).exists():
        return
    before = read_benchmark(out)
    wanted = plan.to_dict()
    if "fixed" not in before and sorted(before.get("tasks") or []) == sorted(plan.tasks):
        try:  # made before benchmark.json kept them: resolve its settings as now
            then = dataclasses.replace(plan, settings=dict(before.get("settings") or {}))
            before = {**before, "fixed": then.to_dict()["fixed"]}
        except (TypeError, ValueError):
            pass
    keys = ["tasks", "losses", "runs", "fixed" if "fixed" in before else "settings"]
    same = {"tasks": lambda a, b: sorted(a or []) == sorted(b)}  # order is the report's only
    diffs = [k for k in keys if not same.get(k, operator.eq)(before.get(k), wanted[k])]
    if diffs:
        shown = "; ".join(f"{k}={before.get(k)!r} (now {wanted[k]!r})" for k in diffs)
        raise ValueError(
            f"Benchmark {out} was made with other {', '.join(diffs)}: {shown[:400]}. A "
            "benchmark's tasks, losses, grids, runs and settings are fixed: use another --out"
        )
    if storage is not None and "storage" in before and before["storage"] != storage:
        from simloss.experiments.sweep.storage import hide_password

        stored = before["storage"]
        raise ValueError(
            f"Expected --storage {'none (one SQLite file per task)' if stored is None else repr(hide_password(stored))} "
            f"(the one of benchmark {out}), but found {hide_password(storage)!r}; use another "
            "--out for another storage"
        )


def check_run_args(workers: Any, storage: Any, *, flags: bool = False) -> str | None:
    """Refuse a ``workers`` or ``storage`` argument a benchmark's sweeps would refuse.

    Returns:
        ``storage`` as the sweeps keep it.
    """
    from simloss.experiments.sweep.engine import check_storage_arg

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        name = "--workers" if flags else "`workers`"
        raise ValueError(f"Expected {name} to be an int >= 1, but found {workers!r}")
    if storage is None:
        return None
    if not isinstance(storage, str):
        raise TypeError(f"Expected `storage` to be a URL (str), but found {type(storage).__name__}")
    return check_storage_arg(storage)


@dataclass
class BenchmarkResult:
    """What a benchmark command achieved: one sweep result per task and loss."""

    out_dir: Path
    sweeps: list[tuple[str, SweepResult]]
    wall_time_s: float

    @property
    def ok(self) -> bool:
        """Whether every run finished."""
        return all(r.ok for _, r in self.sweeps)

    def first_failure(self) -> str | None:
        """The first failed run, its error's last line and where its logs are (``None``: none)."""
        for task, result in self.sweeps:
            for failed in result.failed:
                lines = [line for line in failed.error.strip().splitlines() if line.strip()]
                error = lines[-1] if lines else "no message"
                return (
                    f"task {task}, {result.grid.label(failed.value)} run "
                    f"{failed.run}: {error} (logs: {self.out_dir / 'tasks' / task / 'logs'})"
                )
        return None

    def summary(self) -> str:
        finished = sum(r.finished for _, r in self.sweeps)
        total = sum(r.total for _, r in self.sweeps)
        failed = sum(len(r.failed) for _, r in self.sweeps)
        return (
            f"benchmark {self.out_dir}: {finished}/{total} runs finished, {failed} failed "
            f"({self.wall_time_s:.0f} s)"
        )


#: Seconds the sweep engine spends per trial beside the run itself (claiming it, heartbeats,
#: attaching the record), as measured on the project's 2-core machines.
_ENGINE_S = 1.0


def estimate(plan: BenchmarkPlan, *, epochs: int | None = None) -> list[dict[str, Any]]:
    """The benchmark's cost per task: runs x mean epochs x seconds per epoch, measured.

    Each task is timed with one short cross-entropy run on this machine (six
    epochs on one thread, as a worker of several trains: the median of the last
    five is the epoch time; the rest of the run's wall time is its start-up and
    end, data loading and files included); the mean epochs of a run are taken
    as ``min(epochs, 3 x patience)``: early stopping ends most runs some
    patience after their best epoch. The sweep engine's own work per trial
    (storage, heartbeats, records) comes on top: about a second here.

    Returns:
        One row per task: ``task``, ``runs``, ``seconds_per_epoch``,
        ``seconds_per_run_start``, ``mean_epochs``, ``seconds``.
    """
    import tempfile

    from simloss.experiments.train import run_training

    rows = []
    runs_per_task = sum(len(g.points()) for g in plan.losses.values())
    for task in plan.tasks:
        base = dataclasses.replace(
            plan.base(task), loss="ce", epochs=6, patience=6, progress=False, num_threads=1
        )
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            record = run_training(base, Path(tmp) / "run")
            wall = time.perf_counter() - started
        times = [float(h["time_s"]) for h in record["history"]]
        epoch = float(np.median(times[1:]))
        resolved = plan.base(task).resolve()
        cap = int(epochs or resolved.epochs or 1)
        mean_epochs = min(cap, 3 * int(resolved.patience or cap))
        start = max(wall - sum(times), 0.0) + _ENGINE_S
        rows.append(
            {
                "task": task,
                "runs": runs_per_task,
                "seconds_per_epoch": epoch,
                "seconds_per_run_start": start,
                "mean_epochs": mean_epochs,
                "seconds": runs_per_task * (mean_epochs * epoch + start),
            }
        )
    return rows


def estimate_text(rows: list[dict[str, Any]], workers: int) -> str:
    """The estimate as printed before a benchmark starts."""
    lines = ["| task | runs | s/epoch | mean epochs | hours (1 worker) |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['task']} | {row['runs']} | {row['seconds_per_epoch']:.3f} | "
            f"{row['mean_epochs']} | {row['seconds'] / 3600:.2f} |"
        )
    total = sum(r["seconds"] for r in rows)
    lines.append(
        f"estimate: {sum(r['runs'] for r in rows)} runs, {total / 3600:.2f} h on one worker, "
        f"about {total / 3600 / max(workers, 1):.2f} h with {workers} "
        f"worker{'' if workers == 1 else 's'}"
    )
    return "\n".join(lines)


def run_benchmark(
    plan: BenchmarkPlan,
    out_dir: str | Path,
    *,
    workers: int = 1,
    storage: str | None = None,
    status_lines: bool = False,
) -> BenchmarkResult:
    """Run (or resume) a benchmark: one sweep per task and loss, on the sweep engine.

    Args:
        plan: from :func:`plan_benchmark`.
        out_dir: the benchmark folder.
        workers: local worker processes of each sweep.
        storage: an Optuna storage URL shared by several machines (each task's
            study is :func:`study_name`, unique to this benchmark); ``None``: the one
            the benchmark was made with, else one SQLite file per task folder.
        status_lines: print a line per finished run (no terminal).

    Returns:
        A :class:`BenchmarkResult` (failed runs are counted, not raised).
    """
    if not isinstance(plan, BenchmarkPlan):
        raise TypeError(
            f"Expected `plan` to be a BenchmarkPlan (from plan_benchmark), but found "
            f"{type(plan).__name__}"
        )
    if not isinstance(out_dir, (str, Path)):
        raise TypeError(
            f"Expected `out_dir` to be a str or Path, but found {type(out_dir).__name__}"
        )
    storage = check_run_args(workers, storage)
    started = time.monotonic()
    out = Path(out_dir).resolve()
    _check_folder(out, plan, storage)

    def settings_file(identity: str | None, stored_storage: str | None) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            **({"id": identity} if identity is not None else {}),
            **plan.to_dict(),
            "storage": stored_storage,
            "task_files": plan.tasks,
        }

    new = False
    if not (out / BENCHMARK_FILE).exists():
        try:  # of two commands starting one benchmark together, one draws its id
            identity: str | None = uuid.uuid4().hex[:12]
            atomic_write_json(
                out / BENCHMARK_FILE, settings_file(identity, storage), exclusive=True
            )
            new = True
        except FileExistsError:
            _check_folder(out, plan, storage)
    if not new:
        before = read_benchmark(out)
        identity = before.get("id")
        atomic_write_json(
            out / BENCHMARK_FILE, settings_file(identity, before.get("storage", storage))
        )
    results: list[tuple[str, SweepResult]] = []
    try:
        for task in plan.tasks:
            base = plan.base(task)
            for grid in plan.losses.values():
                result = run_sweep(
                    base,  # the grid carries the loss and its parameter
                    grid,
                    out / "tasks" / task,
                    workers=workers,
                    storage=storage,
                    study_name=None if storage is None else study_name(identity, task),
                    status_lines=status_lines,
                )
                results.append((task, result))
    except ValueError:
        if new and not results and not (out / "tasks").exists():
            (out / BENCHMARK_FILE).unlink()  # refused before anything ran: the folder stays free
        raise
    return BenchmarkResult(out, results, time.monotonic() - started)


def study_name(identity: str | None, task: str) -> str:
    """A task's study on a shared storage: ``benchmark-<id>-<task>``, unique per benchmark
    (``id`` is drawn when ``benchmark.json`` is first written; a benchmark made before
    it had one keeps ``benchmark-<task>``)."""
    return f"benchmark-{task}" if identity is None else f"benchmark-{identity}-{task}"
