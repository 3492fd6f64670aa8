"""Grid sweeps over SimLoss's hyper-parameter that survive crashes and scale out.

A sweep is an Optuna study. Its trials are the grid points x run indices (for
example ``r`` in {0.0, ..., 0.9} x runs 0..9), each one training run of
:func:`simloss.experiments.train.run_training`. The study lives in an Optuna
storage: by default a SQLite file ``study.db`` in the sweep folder, or any
storage URL (e.g. PostgreSQL) that several machines share; every machine runs
the same command and takes the next unfinished trial.

How nothing is lost and nothing runs twice:

- Every missing point is enqueued as a ``WAITING`` trial that carries its
  point (user attributes ``param``, ``value``, ``run``). A worker claims a
  trial by the storage's atomic ``WAITING -> RUNNING`` transition, so one
  trial goes to one worker.
- A running trial sends a heartbeat. A worker that dies stops sending it; once
  its grace period has passed, another worker marks the trial failed and
  Optuna's ``RetryHeartbeatStaleTrialCallback`` enqueues a copy, which runs
  again. A killed worker loses at most its current training run.
- Rerunning the command recomputes the remaining points from the storage:
  points with a finished trial are never rerun; points whose trial failed
  with an error are tried again.
- Two processes enqueueing the same point at once (two machines starting
  together) create two trials for it; the one with the higher number finds
  the lower one waiting, running or finished when it is claimed and is pruned
  without training, so each point finishes exactly once.
- The sweep's fixed settings (dataset, model, epochs, ...) are stored with the
  study and in ``sweep.json``; a command with other fixed settings is refused,
  naming the setting. A command with a larger grid or more runs adds the new
  points and leaves the finished ones alone.

Example:
    >>> grid = Grid.parse("r=0:0.3:0.1", runs=2)
    >>> grid.values, len(grid.points())
    ((0.0, 0.1, 0.2, 0.3), 8)
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import optuna
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from simloss.experiments._files import atomic_write_json
from simloss.experiments.config import DATASETS, METRIC_GOALS, TrainConfig
from simloss.experiments.records import (
    DB_FILE,
    SWEEP_FILE,
    VALUE_DECIMALS,
    attach_record,
    open_storage,
    point_key,
    read_sweep_file,
    sqlite_url,
)

__all__ = [
    "DEFAULT_GRIDS",
    "DEFAULT_RUNS",
    "PARAM_OF_DATASET",
    "FailedPoint",
    "Grid",
    "SweepResult",
    "default_grid",
    "fixed_settings",
    "run_sweep",
    "threads_per_worker",
]

#: The similarity hyper-parameter each dataset sweeps (class order or class names).
PARAM_OF_DATASET: dict[str, str] = {
    "abalone": "r",
    "utkface": "r",
    "afad": "r",
    "cifar100": "l",
}
#: The paper's grids (Section 4): r in {0.0, ..., 0.9}; l in {0.0, ..., 0.9, 0.99}.
DEFAULT_GRIDS: dict[str, tuple[float, ...]] = {
    "r": tuple(round(0.1 * i, 1) for i in range(10)),
    "l": (*(round(0.1 * i, 1) for i in range(10)), 0.99),
}
#: The paper's number of runs per grid point.
DEFAULT_RUNS = 10
#: Settings that say where things are or how to run them, not what is computed:
#: they may differ between machines and reruns of one sweep.
LOCAL_KEYS: tuple[str, ...] = (
    "data_dir",
    "cache_dir",
    "vectors",
    "download",
    "progress",
    "device",
    "num_threads",
)
#: Default seconds between heartbeats of a running trial.
DEFAULT_HEARTBEAT_S = 10
#: How often a dead worker's trial is put back in the queue within one command.
MAX_RETRY = 3
SETTINGS_ATTR = "simloss_sweep"
GRID_ATTR = "simloss_grid"
SCHEMA_VERSION = 1
_LOCK_FILE = ".sweep.lock"


# --------------------------------------------------------------------- grids
@dataclass(frozen=True)
class Grid:
    """The points of a sweep: values of one hyper-parameter x run indices.

    Args:
        param: ``"r"`` (class order) or ``"l"`` (class-name similarity).
        values: the hyper-parameter values, distinct, rounded to 10 decimals.
        runs: runs per value (run indices ``0 .. runs - 1``).

    Example:
        >>> Grid("r", (0.0, 0.5), 2).points()
        [(0.0, 0), (0.5, 0), (0.0, 1), (0.5, 1)]
    """

    param: str
    values: tuple[float, ...]
    runs: int

    def __post_init__(self) -> None:
        if self.param not in ("r", "l"):
            raise ValueError(f"Expected the grid parameter to be 'r' or 'l', found {self.param!r}")
        if isinstance(self.runs, bool) or not isinstance(self.runs, int) or self.runs < 1:
            raise ValueError(f"Expected `runs` to be an int >= 1, found {self.runs!r}")
        if not self.values:
            raise ValueError("Expected at least one grid value, found none")
        rounded = []
        for value in self.values:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"Expected grid values to be numbers, found {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"Expected finite grid values, found {value!r}")
            rounded.append(round(float(value), VALUE_DECIMALS))
        duplicates = sorted({v for v in rounded if rounded.count(v) > 1})
        if duplicates:
            raise ValueError(f"Expected distinct grid values, found {duplicates} more than once")
        object.__setattr__(self, "values", tuple(rounded))

    @classmethod
    def parse(cls, text: str, runs: int = DEFAULT_RUNS) -> Grid:
        """Parse ``param=start:stop:step`` (stop included) or ``param=v1,v2,...``.

        Args:
            text: e.g. ``"r=0:0.9:0.1"``, ``"r=0,0.3,0.6,0.9"``, ``"l=0.99"``.
            runs: runs per value.

        Returns:
            The grid; values are rounded to 10 decimals, so ``0:0.9:0.1`` gives
            exactly ``0.3``, not ``0.30000000000000004``.

        Example:
            >>> Grid.parse("l=0.9,0.99", runs=1).values
            (0.9, 0.99)
            >>> Grid.parse("r=0:0.9:0.1").values[3]
            0.3
        """
        if not isinstance(text, str) or "=" not in text:
            raise ValueError(
                f"Expected a grid like 'r=0:0.9:0.1' or 'r=0,0.3,0.6', but found {text!r}"
            )
        param, spec = (part.strip() for part in text.split("=", 1))
        try:
            if ":" in spec:
                parts = [float(p) for p in spec.split(":")]
                if len(parts) != 3:
                    raise ValueError("needs start:stop:step")
                values = _arange(*parts)
            else:
                values = tuple(float(p) for p in spec.split(","))
        except ValueError as exc:
            raise ValueError(
                f"Expected a grid like 'r=0:0.9:0.1' or 'r=0,0.3,0.6', but found {text!r} ({exc})"
            ) from exc
        return cls(param, values, runs)

    def points(self) -> list[tuple[float, int]]:
        """All (value, run) pairs, run by run (so a partial sweep has whole runs)."""
        return [(value, run) for run in range(self.runs) for value in self.values]

    def merged(self, other: Grid) -> Grid:
        """The union of two grids of one parameter (values sorted, the larger run count).

        Example:
            >>> Grid("r", (0.0, 0.5), 2).merged(Grid("r", (0.3,), 3))
            Grid(param='r', values=(0.0, 0.3, 0.5), runs=3)
        """
        if other.param != self.param:
            raise ValueError(
                f"Expected a grid over {self.param!r} (the sweep's parameter), "
                f"but found one over {other.param!r}"
            )
        values = tuple(sorted(set(self.values) | set(other.values)))
        return Grid(self.param, values, max(self.runs, other.runs))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"param": self.param, "values": list(self.values), "runs": self.runs}


def _arange(start: float, stop: float, step: float) -> tuple[float, ...]:
    if not (math.isfinite(start) and math.isfinite(stop) and math.isfinite(step)):
        raise ValueError("start, stop and step must be finite")
    if step <= 0:
        raise ValueError(f"step must be > 0, got {step}")
    if stop < start:
        raise ValueError(f"stop {stop} is below start {start}")
    steps = (stop - start) / step
    if abs(steps - round(steps)) > 1e-9:
        raise ValueError(f"stop {stop} is not start {start} plus a whole number of steps {step}")
    return tuple(round(start + i * step, VALUE_DECIMALS) for i in range(round(steps) + 1))


def default_grid(dataset: str, runs: int = DEFAULT_RUNS) -> Grid:
    """The paper's grid for a dataset.

    Example:
        >>> default_grid("cifar100").values[-2:], default_grid("utkface").runs
        ((0.9, 0.99), 10)
    """
    if dataset not in PARAM_OF_DATASET:
        raise ValueError(f"Expected `dataset` to be one of {list(DATASETS)}, found {dataset!r}")
    param = PARAM_OF_DATASET[dataset]
    return Grid(param, DEFAULT_GRIDS[param], runs)


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads per worker so that workers share the cores without oversubscribing.

    Example:
        >>> threads_per_worker(2, cores=16), threads_per_worker(4, cores=2)
        (8, 1)
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"Expected `workers` to be an int >= 1, found {workers!r}")
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        cores = cores or os.cpu_count() or 1
    return max(1, cores // workers)


# ------------------------------------------------------------------ settings
def fixed_settings(base: TrainConfig, param: str) -> dict[str, Any]:
    """The settings every trial of a sweep shares, which a rerun may not change.

    All resolved :class:`TrainConfig` settings except the swept parameter and the
    local ones (:data:`LOCAL_KEYS`: paths, device, threads, progress bars). The
    ``seed`` is the base seed (run ``i`` trains with ``seed + i``). A vectors file
    enters through its SHA-256, so the same file at another path is the same sweep.

    Args:
        base: the sweep's base config (its ``r``/``l`` is ignored).
        param: the swept parameter.

    Returns:
        A dict of plain JSON types.

    Example:
        >>> fixed = fixed_settings(TrainConfig(dataset="abalone", epochs=3), "r")
        >>> fixed["epochs"], fixed["similarity"], "r" in fixed, "data_dir" in fixed
        (3, 'order', False, False)
    """
    config = _point_config(base, param, 0.0, 0, {})
    fixed = {k: v for k, v in config.resolve().to_dict().items() if k not in LOCAL_KEYS}
    del fixed[param]
    fixed["seed"] = base.seed
    if base.vectors is not None:
        fixed["vectors_sha256"] = _sha256(Path(base.vectors))
    return fixed


def _sha256(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"`vectors` file {path} does not exist")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _point_config(
    base: TrainConfig, param: str, value: float, run: int, overrides: dict[str, Any]
) -> TrainConfig:
    other = "l" if param == "r" else "r"
    changes: dict[str, Any] = {param: value, "seed": base.seed + run, **overrides}
    if getattr(base, other) is not None:
        changes[other] = None
    return dataclasses.replace(base, **changes)


def _config_from_settings(
    fixed: dict[str, Any], local: dict[str, Any], param: str, value: float, run: int
) -> TrainConfig:
    data = {k: v for k, v in fixed.items() if k != "vectors_sha256"}
    data.update(local)
    data[param] = value
    data["seed"] = fixed["seed"] + run
    return TrainConfig.from_dict(data)


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}={old.get(k)!r} (now {new.get(k)!r})" for k in keys if old.get(k) != new.get(k)]


# -------------------------------------------------------------- point states
@dataclass(frozen=True)
class FailedPoint:
    """A grid point whose last trial failed.

    Args:
        value: the hyper-parameter value.
        run: the run index.
        trial: the number of the failed trial.
        error: its error message.
    """

    value: float
    run: int
    trial: int
    error: str


def _trial_point(trial: FrozenTrial) -> tuple[float, int] | None:
    attrs = trial.user_attrs
    if "value" not in attrs or "run" not in attrs:
        return None
    return point_key(attrs["value"], attrs["run"])


def _trial_error(trial: FrozenTrial) -> str:
    error = trial.user_attrs.get("error")
    if error:
        return str(error)
    return "its worker stopped sending heartbeats (killed or machine lost)"


@dataclass
class _Census:
    finished: set[tuple[float, int]] = field(default_factory=set)
    running: set[tuple[float, int]] = field(default_factory=set)
    waiting: set[tuple[float, int]] = field(default_factory=set)
    failed: dict[tuple[float, int], FailedPoint] = field(default_factory=dict)
    running_trials: int = 0


def _census(trials: Sequence[FrozenTrial], points: Sequence[tuple[float, int]]) -> _Census:
    by_point: dict[tuple[float, int], list[FrozenTrial]] = {}
    census = _Census()
    for trial in trials:
        key = _trial_point(trial)
        if key is not None:
            by_point.setdefault(key, []).append(trial)
        if trial.state == TrialState.RUNNING:
            census.running_trials += 1
    for key in points:
        states = {t.state for t in by_point.get(key, [])}
        if TrialState.COMPLETE in states:
            census.finished.add(key)
        elif TrialState.RUNNING in states:
            census.running.add(key)
        elif TrialState.WAITING in states:
            census.waiting.add(key)
        elif TrialState.FAIL in states:
            last = max(
                (t for t in by_point[key] if t.state == TrialState.FAIL), key=lambda t: t.number
            )
            census.failed[key] = FailedPoint(key[0], key[1], last.number, _trial_error(last))
    return census


# -------------------------------------------------------------------- result
@dataclass(frozen=True)
class SweepResult:
    """What a sweep command achieved.

    Args:
        out_dir: the sweep folder.
        storage: the storage URL.
        study_name: the Optuna study.
        grid: the sweep's whole grid (after merging this command's).
        finished: finished points.
        failed: points whose last trial failed, with the error.
        missing: points neither finished nor failed (e.g. every worker died).
        worker_errors: one line per worker process that exited abnormally.
        wall_time_s: seconds this command took.
    """

    out_dir: Path
    storage: str
    study_name: str
    grid: Grid
    finished: int
    failed: tuple[FailedPoint, ...]
    missing: tuple[tuple[float, int], ...]
    worker_errors: tuple[str, ...]
    wall_time_s: float

    @property
    def total(self) -> int:
        """The number of grid points x runs."""
        return len(self.grid.values) * self.grid.runs

    @property
    def ok(self) -> bool:
        """Whether every point has finished."""
        return self.finished == self.total

    def summary(self) -> str:
        """A few lines for people: counts, failures, where things are."""
        p = self.grid.param
        lines = [
            f"sweep {self.study_name}: {self.finished}/{self.total} finished, "
            f"{len(self.failed)} failed, {len(self.missing)} missing "
            f"({self.wall_time_s:.1f} s)"
        ]
        lines += [
            f"  failed: {p}={f.value:g} run {f.run} (trial {f.trial}): {f.error}"
            for f in self.failed
        ]
        lines += [f"  missing: {p}={v:g} run {r}" for v, r in self.missing]
        lines += [f"  {line}" for line in self.worker_errors]
        return "\n".join(lines)


# -------------------------------------------------------------------- engine
def run_sweep(
    base: TrainConfig,
    grid: Grid,
    out_dir: str | Path,
    *,
    workers: int = 1,
    threads: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    progress: bool = True,
    heartbeat_interval: int | None = None,
    poll_interval: float = 1.0,
) -> SweepResult:
    """Run (or resume, or extend) a sweep with ``workers`` local worker processes.

    Args:
        base: the settings every trial shares; its ``r``/``l`` is replaced by the
            grid value and its ``seed`` by ``seed + run``. Local settings
            (``data_dir``, ``device``, ...; :data:`LOCAL_KEYS`) may differ between
            reruns and machines; the others are fixed for the sweep.
        grid: the points to run; merged with the grid the sweep already has.
        out_dir: the sweep folder (created): ``sweep.json``, ``study.db`` with
            the default storage, ``trials/`` (one folder per trial with its
            ``record.json`` and ``model.pt``) and ``logs/`` (one per worker).
        workers: local worker processes (one runs in this process).
        threads: torch threads per worker; ``None``: ``cores // workers``
            (:func:`threads_per_worker`), so workers do not oversubscribe.
        storage: an Optuna storage URL shared with other machines; ``None``:
            the one in ``sweep.json``, else ``sqlite:///OUT/study.db``.
        study_name: ``None``: the one in ``sweep.json``, else ``simloss-<dataset>``.
        progress: show a progress bar over trials (on stderr).
        heartbeat_interval: seconds between heartbeats of a running trial; a
            trial without one for ``3 x`` this long counts as dead and is rerun.
            Fixed when the sweep is created (default 10); ``None`` keeps it.
        poll_interval: seconds between looks at the storage while waiting.

    Returns:
        A :class:`SweepResult`. Failed trials do not raise; they are listed.
    """
    started = time.monotonic()
    if not isinstance(base, TrainConfig):
        raise TypeError(f"Expected `base` to be a TrainConfig, found {type(base).__name__}")
    if not isinstance(grid, Grid):
        raise TypeError(f"Expected `grid` to be a Grid, found {type(grid).__name__}")
    expected_param = PARAM_OF_DATASET[base.dataset]
    if grid.param != expected_param:
        raise ValueError(
            f"Expected a grid over {expected_param!r} for dataset {base.dataset!r}, "
            f"but found one over {grid.param!r}"
        )
    default_threads = threads_per_worker(workers)
    if threads is None:
        threads = default_threads
    elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"Expected `threads` to be an int >= 1 or None, found {threads!r}")
    if heartbeat_interval is not None and (
        isinstance(heartbeat_interval, bool)
        or not isinstance(heartbeat_interval, int)
        or heartbeat_interval < 1
    ):
        raise ValueError(
            "Expected `heartbeat_interval` to be an int >= 1 (seconds), found "
            f"{heartbeat_interval!r}"
        )
    if not poll_interval > 0:
        raise ValueError(f"Expected `poll_interval` > 0, found {poll_interval!r}")
    for value in grid.values:  # every value must make a valid config before anything runs
        _point_config(base, grid.param, value, 0, {}).resolve()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    local = {k: getattr(base, k) for k in LOCAL_KEYS}
    local.update(progress=False, num_threads=threads)

    with _folder_lock(out):
        url, name = _resolve_storage(out, base.dataset, storage, study_name)
        setup = _prepare(out, url, name, storage, base, grid, heartbeat_interval)

    _quiet_optuna()
    args = _WorkerArgs(
        out_dir=str(out),
        url=url,
        study_name=name,
        local=local,
        threads=threads,
        heartbeat_interval=setup.heartbeat_interval,
        poll_interval=poll_interval,
        parent_pid=os.getpid(),
    )
    worker_errors = _run_workers(args, workers, setup, progress)

    storage_obj = open_storage(url)
    try:
        study = optuna.load_study(study_name=name, storage=storage_obj)
        census = _census(study.get_trials(deepcopy=False), setup.grid.points())
    finally:
        _dispose(storage_obj)
    missing = [
        p for p in setup.grid.points() if p not in census.finished and p not in census.failed
    ]
    return SweepResult(
        out_dir=out,
        storage=url,
        study_name=name,
        grid=setup.grid,
        finished=len(census.finished),
        failed=tuple(census.failed[p] for p in setup.grid.points() if p in census.failed),
        missing=tuple(missing),
        worker_errors=tuple(worker_errors),
        wall_time_s=time.monotonic() - started,
    )


@contextmanager
def _folder_lock(out: Path) -> Iterator[None]:
    """Serialise the setup of processes that share one sweep folder."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover (Windows): the storage's own locking remains
        yield
        return
    with open(out / _LOCK_FILE, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _resolve_storage(
    out: Path, dataset: str, storage: str | None, study_name: str | None
) -> tuple[str, str]:
    previous = read_sweep_file(out) if (out / SWEEP_FILE).is_file() else None
    default = sqlite_url(out / DB_FILE)
    if previous is not None:
        before = previous.get("storage") or default
        if storage is not None and storage != before:
            raise ValueError(
                f"Expected `storage` {before!r} (the one of the sweep in {out}), "
                f"but found {storage!r}; use another --out for another storage"
            )
        if study_name is not None and study_name != previous["study_name"]:
            raise ValueError(
                f"Expected `study_name` {previous['study_name']!r} (the one of the sweep in "
                f"{out}), but found {study_name!r}; use another --out for another study"
            )
        storage = storage or previous.get("storage")
        study_name = previous["study_name"]
    return storage or default, study_name or f"simloss-{dataset}"


@dataclass(frozen=True)
class _Setup:
    grid: Grid
    heartbeat_interval: int
    finished_before: int


def _prepare(
    out: Path,
    url: str,
    name: str,
    storage_arg: str | None,
    base: TrainConfig,
    grid: Grid,
    heartbeat_interval: int | None,
) -> _Setup:
    """Create or load the study, check settings, merge the grid, enqueue missing points."""
    _quiet_optuna()
    fixed = fixed_settings(base, grid.param)
    goal = METRIC_GOALS[str(fixed["monitor"])]
    storage = _open_with_retry(url)
    try:
        try:
            study = optuna.create_study(
                study_name=name,
                storage=storage,
                direction="minimize" if goal == "min" else "maximize",
            )
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(study_name=name, storage=storage)
        wanted = {
            "schema_version": SCHEMA_VERSION,
            "dataset": base.dataset,
            "param": grid.param,
            "fixed": fixed,
            "heartbeat_interval": heartbeat_interval or DEFAULT_HEARTBEAT_S,
        }
        settings = study.user_attrs.get(SETTINGS_ATTR)
        if settings is None:
            if study.get_trials(deepcopy=False):
                raise ValueError(
                    f"Study {name!r} in {url} has trials but no simloss sweep settings; "
                    "choose another --study-name"
                )
            study.set_user_attr(SETTINGS_ATTR, wanted)
            settings = optuna.load_study(study_name=name, storage=storage).user_attrs[SETTINGS_ATTR]
        _check_settings(settings, wanted, name, heartbeat_interval is not None)
        stored = study.user_attrs.get(GRID_ATTR)
        merged = grid if stored is None else Grid(**stored).merged(grid)
        if merged != (None if stored is None else Grid(**stored)):
            study.set_user_attr(GRID_ATTR, merged.to_dict())
    finally:
        _dispose(storage)

    interval = int(settings["heartbeat_interval"])
    storage = open_storage(
        url, heartbeat_interval=interval, grace_period=3 * interval, max_retry=MAX_RETRY
    )
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        census = _census(study.get_trials(deepcopy=False), merged.points())
        param_dist = FloatDistribution(0.0, 1.0)
        run_dist = IntDistribution(0, merged.runs - 1)
        for value, run in merged.points():
            key = (value, run)
            if key in census.finished or key in census.running or key in census.waiting:
                continue
            study.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.WAITING,
                    params={merged.param: value, "run": run},
                    distributions={merged.param: param_dist, "run": run_dist},
                    user_attrs={"param": merged.param, "value": value, "run": run},
                )
            )
    finally:
        _dispose(storage)

    atomic_write_json(
        out / SWEEP_FILE,
        {
            "schema_version": SCHEMA_VERSION,
            "study_name": name,
            "storage": storage_arg if storage_arg is not None else _stored_url(out, url),
            "dataset": base.dataset,
            "grid": merged.to_dict(),
            "fixed": fixed,
            "heartbeat_interval": interval,
        },
    )
    return _Setup(merged, interval, len(census.finished))


def _stored_url(out: Path, url: str) -> str | None:
    # The default storage is written as null, so the folder can move.
    return None if url == sqlite_url(out / DB_FILE) else url


def _check_settings(
    stored: dict[str, Any], wanted: dict[str, Any], name: str, heartbeat_given: bool
) -> None:
    if stored.get("dataset") != wanted["dataset"]:
        raise ValueError(
            f"Sweep {name!r} is over dataset {stored.get('dataset')!r}; this command asks for "
            f"{wanted['dataset']!r}. Fixed settings of a sweep cannot change: use another --out "
            "or --study-name"
        )
    if stored.get("param") != wanted["param"]:
        raise ValueError(
            f"Sweep {name!r} varies {stored.get('param')!r}, this command {wanted['param']!r}"
        )
    diffs = _differences(stored.get("fixed", {}), wanted["fixed"])
    if diffs:
        raise ValueError(
            f"Sweep {name!r} was made with other fixed settings: {'; '.join(diffs)}. Fixed "
            "settings of a sweep cannot change: use another --out or --study-name"
        )
    if heartbeat_given and stored.get("heartbeat_interval") != wanted["heartbeat_interval"]:
        raise ValueError(
            f"Sweep {name!r} uses heartbeat_interval={stored.get('heartbeat_interval')} s "
            f"(now {wanted['heartbeat_interval']}); every worker of a sweep must use the same"
        )


def _open_with_retry(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """Open a storage; retry when another process is creating its tables at the same time."""
    import sqlalchemy.exc

    for attempt in range(attempts):
        try:
            return open_storage(url)
        except sqlalchemy.exc.SQLAlchemyError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _dispose(storage: optuna.storages.RDBStorage) -> None:
    storage.remove_session()
    storage.engine.dispose()


def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


# ------------------------------------------------------------------- workers
@dataclass(frozen=True)
class _WorkerArgs:
    out_dir: str
    url: str
    study_name: str
    local: dict[str, Any]
    threads: int
    heartbeat_interval: int
    poll_interval: float
    parent_pid: int | None  # a worker process stops when this process is gone


class _Monitor:
    """The progress bar over trials, fed by looking at the storage."""

    def __init__(self, args: _WorkerArgs, setup: _Setup, progress: bool) -> None:
        from tqdm.auto import tqdm

        self._points = setup.grid.points()
        self._storage = open_storage(args.url)
        self._study = optuna.load_study(study_name=args.study_name, storage=self._storage)
        self._bar = tqdm(
            total=len(self._points),
            initial=setup.finished_before,
            unit="trial",
            desc=f"sweep {args.study_name}",
            disable=not progress,
            file=sys.stderr,
            dynamic_ncols=True,
            smoothing=0.0,
        )

    def poll(self) -> None:
        census = _census(self._study.get_trials(deepcopy=False), self._points)
        if len(census.finished) > self._bar.n:
            self._bar.update(len(census.finished) - self._bar.n)
        self._bar.set_postfix(
            finished=len(census.finished),
            failed=len(census.failed),
            running=census.running_trials,
            refresh=True,
        )

    def close(self) -> None:
        self._bar.close()
        _dispose(self._storage)


def _run_workers(args: _WorkerArgs, workers: int, setup: _Setup, progress: bool) -> list[str]:
    """Run the workers and show progress until they have all ended.

    This process is one of the workers (it starts at once, while the others,
    ``workers - 1`` spawned processes, import torch); a thread feeds the
    progress bar. Every worker logs to ``logs/<host>-<pid>.log``.
    """
    from multiprocessing.connection import wait

    monitor = _Monitor(args, setup, progress)
    done = threading.Event()

    def watch() -> None:
        while not done.wait(args.poll_interval):
            monitor.poll()

    context = multiprocessing.get_context("spawn")  # fork is unsafe with torch's thread pools
    processes = [
        context.Process(target=_worker_main, args=(args,), name=f"simloss-sweep-{i}")
        for i in range(1, workers)
    ]
    thread = threading.Thread(target=watch, daemon=True)
    on_main_thread = threading.current_thread() is threading.main_thread()
    # SIGTERM (a scheduler's preemption, `kill`) ends this process like Ctrl-C: its
    # trial is marked interrupted and the worker processes are stopped.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if on_main_thread else None
    try:
        for process in processes:
            process.start()
        thread.start()
        with _open_log(args.out_dir) as log:
            _worker_loop(dataclasses.replace(args, parent_pid=None), log)
        while alive := [p for p in processes if p.exitcode is None]:
            wait([p.sentinel for p in alive], timeout=args.poll_interval)
    except BaseException:
        for process in processes:
            if process.exitcode is None:
                process.terminate()  # the worker marks its trial failed and stops
        for process in processes:
            process.join(timeout=60)
            if process.exitcode is None:
                process.kill()
        raise
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)
        done.set()
        if thread.is_alive():
            thread.join()
        monitor.poll()
        monitor.close()
    errors = []
    for process in processes:
        process.join()
        if process.exitcode != 0:
            log_path = _log_path(args.out_dir, process.pid)
            errors.append(
                f"worker {process.pid} exited with code {process.exitcode} (log: {log_path})"
            )
    return errors


def _log_path(out_dir: str, pid: int | None) -> Path:
    return Path(out_dir) / "logs" / f"{_host()}-{pid}.log"


@contextmanager
def _open_log(out_dir: str) -> Iterator[TextIO]:
    path = _log_path(out_dir, os.getpid())
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1) as log:
        yield log


def _host() -> str:
    return socket.gethostname().split(".")[0] or "host"


def _worker_main(args: _WorkerArgs) -> None:
    """Entry point of a worker process: output to a log file, then the worker loop."""
    path = _log_path(args.out_dir, os.getpid())
    path.parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "a", buffering=1)  # noqa: SIM115 (kept open until os._exit)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    # Threads are set before torch is imported, so its pools are sized once.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    _quiet_optuna()
    from tqdm import tqdm

    # A thread lock instead of tqdm's default process-shared one: no semaphore is
    # left behind by the os._exit below.
    tqdm.set_lock(threading.RLock())
    import torch

    torch.set_num_threads(args.threads)
    code = 0
    try:
        _worker_loop(args, log)
    except KeyboardInterrupt:
        _log(log, "interrupted")
        code = 130
    except BaseException:
        _log(log, f"worker failed:\n{traceback.format_exc()}")
        code = 1
    # Everything is in the storage; skip the interpreter's slow teardown of torch.
    log.flush()
    os._exit(code)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _log(log: TextIO, message: str) -> None:
    log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {message}\n")


def _worker_loop(args: _WorkerArgs, log: TextIO) -> None:
    """Claim trials until none is waiting or running, run each, store its outcome."""
    from simloss.experiments.train import run_training  # once, before the first trial

    interval = args.heartbeat_interval
    storage = open_storage(
        args.url, heartbeat_interval=interval, grace_period=3 * interval, max_retry=MAX_RETRY
    )
    try:
        study = optuna.load_study(study_name=args.study_name, storage=storage)
        study_id = storage.get_study_id_from_name(args.study_name)
        settings = study.user_attrs[SETTINGS_ATTR]
        _log(log, f"worker started on {args.study_name} ({args.threads} threads)")
        idle_before = False
        while True:
            if args.parent_pid is not None and os.getppid() != args.parent_pid:
                _log(log, "the sweep process has gone; stopping")
                return
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            claimed = _claim_next(study, storage, study_id)
            if claimed is None:
                live = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if live:  # a trial elsewhere may die and come back
                    idle_before = False
                    time.sleep(args.poll_interval)
                    continue
                if not idle_before:
                    # Look once more after a short pause: another process may be
                    # between failing a dead worker's trial and enqueueing its copy.
                    idle_before = True
                    time.sleep(min(args.poll_interval, 0.2))
                    continue
                _log(log, "no trial left; stopping")
                return
            idle_before = False
            trial, trial_id = claimed
            try:
                duplicate = _duplicate_of(study, trial)
                if duplicate is not None:
                    storage.set_trial_user_attr(trial_id, "duplicate_of", duplicate)
                    storage.set_trial_state_values(trial_id, TrialState.PRUNED)
                    _log(log, f"trial {trial.number} duplicates trial {duplicate}; skipped")
                    continue
                _run_trial(args, settings, storage, trial, trial_id, log, run_training)
            except optuna.exceptions.UpdateFinishedTrialError:
                _log(log, f"trial {trial.number} was finished elsewhere meanwhile; skipped")
            except KeyboardInterrupt:
                _fail(storage, trial_id, "interrupted")  # the next command reruns it at once
                raise
    finally:
        _dispose(storage)


def _claim_next(
    study: optuna.Study, storage: optuna.storages.RDBStorage, study_id: int
) -> tuple[FrozenTrial, int] | None:
    for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        # Heartbeat first: a claimed trial always has one, so it can be found dead.
        storage.record_heartbeat(trial_id)
        try:
            if storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                return trial, trial_id
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def _duplicate_of(study: optuna.Study, trial: FrozenTrial) -> int | None:
    """The trial that owns this trial's point, if it is not this one."""
    key = _trial_point(trial)
    for other in study.get_trials(deepcopy=False):
        if other.number == trial.number or _trial_point(other) != key:
            continue
        if other.state == TrialState.COMPLETE:
            return other.number
        if other.state in (TrialState.WAITING, TrialState.RUNNING) and other.number < trial.number:
            return other.number
    return None


class _Heartbeat:
    """A thread that records a trial's heartbeat every ``interval`` seconds."""

    def __init__(
        self, storage: optuna.storages.RDBStorage, trial_id: int, interval: int, log: TextIO
    ) -> None:
        self._storage = storage
        self._trial_id = trial_id
        self._interval = interval
        self._log = log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._storage.record_heartbeat(self._trial_id)
            except Exception as exc:  # a busy database must not end the training
                _log(self._log, f"heartbeat failed: {type(exc).__name__}: {exc}")


def _run_trial(
    args: _WorkerArgs,
    settings: dict[str, Any],
    storage: optuna.storages.RDBStorage,
    trial: FrozenTrial,
    trial_id: int,
    log: TextIO,
    run_training: Callable[[TrainConfig, Path], dict[str, Any]],
) -> None:
    param = str(trial.user_attrs["param"])
    value, run = point_key(trial.user_attrs["value"], trial.user_attrs["run"])
    folder = f"{param}={value!r}_run={run}_trial={trial.number}"
    trial_dir = Path(args.out_dir) / "trials" / folder
    _log(log, f"trial {trial.number}: {param}={value!r} run {run} starts")
    try:
        storage.set_trial_user_attr(trial_id, "worker", f"{_host()}:{os.getpid()}")
        with _Heartbeat(storage, trial_id, args.heartbeat_interval, log):
            config = _config_from_settings(settings["fixed"], args.local, param, value, run)
            record = run_training(config, trial_dir)
            monitor = settings["fixed"]["monitor"]
            objective = record["metrics"]["val"].get(monitor)
            if not isinstance(objective, (int, float)) or not math.isfinite(objective):
                raise ValueError(f"the validation {monitor} of the run is {objective!r}")
            attach_record(storage, trial_id, record, f"trials/{folder}/record.json")
            storage.set_trial_state_values(trial_id, TrialState.COMPLETE, values=[objective])
        _log(log, f"trial {trial.number} finished: {objective:.6g}")
    except optuna.exceptions.UpdateFinishedTrialError:
        _log(log, f"trial {trial.number} was declared dead meanwhile; its result is discarded")
    except Exception as exc:
        _log(log, f"trial {trial.number} failed:\n{traceback.format_exc()}")
        _fail(storage, trial_id, f"{type(exc).__name__}: {exc}")


def _fail(storage: optuna.storages.RDBStorage, trial_id: int, error: str) -> None:
    try:
        storage.set_trial_user_attr(trial_id, "error", " ".join(error.split()))
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass
