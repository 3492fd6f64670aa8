"""One sweep command on the engine (:mod:`.engine`): check, set up the study and its grid, run, count.

Rerunning the command recomputes the remaining points from the storage:
points with a finished trial are never rerun; points whose trial failed with an
error are tried again. The sweep's fixed settings and data fingerprint are
stored with the study and in ``sweep.json``; a command with other fixed
settings or other data is refused, naming what differs. A command with a
larger grid or more runs adds the new points and leaves the finished ones
alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from simloss.experiments.config import METRIC_GOALS, TrainConfig, point_config
from simloss.experiments.points import LossPoint
from simloss.experiments.sweep.engine import (
    SWEEP_ENTRIES,
    check_engine_args,
    check_storage_arg,
    check_study_name,
    check_sweep_folder,
    claim_settings,
    folder_lock,
    folder_storage,
    prepare_folder,
    run_engine,
    startup,
    stored_url,
    study_session,
    worker_args,
    write_settings_file,
)
from simloss.experiments.sweep.grid import GRID_ATTR, Grid, grids_from_attr, grids_to_attr
from simloss.experiments.sweep.queue import Census, FailedPoint, census, enqueue_missing
from simloss.experiments.sweep.settings import data_place, fixed_settings, hashed_files
from simloss.experiments.sweep.storage import SWEEP_FILE, dispose, open_storage, read_sweep_file
from simloss.experiments.sweep.storage_errors import named_storage_errors, reconnecting
from simloss.experiments.sweep.trials import (
    DEFAULT_HEARTBEAT_S,
    DISK_FULL,
    SETTINGS_ATTR,
    heartbeat_study,
)
from simloss.experiments.sweep.workers import SweepProgress, quiet_optuna, worker_threads

__all__ = [
    "GRID_ATTR",
    "SCHEMA_VERSION",
    "SWEEP_ENTRIES",
    "SweepResult",
    "check_engine_args",
    "check_storage_arg",
    "check_study_name",
    "check_sweep_folder",
    "folder_lock",
    "folder_storage",
    "prepare_folder",
    "run_sweep",
    "stored_url",
]

#: Version of the layout of ``sweep.json`` and the study's settings.
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SweepResult:
    """What a sweep command achieved.

    Args:
        out_dir: the sweep folder.
        storage: the storage URL.
        study_name: the Optuna study.
        grid: this command's loss's whole grid (after merging this command's).
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
    missing: tuple[LossPoint, ...]
    worker_errors: tuple[str, ...]
    wall_time_s: float

    @property
    def total(self) -> int:
        """The number of grid points x runs."""
        return len(self.grid.points())

    @property
    def ok(self) -> bool:
        """Whether every point has finished."""
        return self.finished == self.total

    def summary(self) -> str:
        """A few lines for people: counts, failures, where things are."""
        lines = [
            f"sweep {self.study_name}, {self.grid.describe()}: {self.finished}/{self.total} finished, "
            f"{len(self.failed)} failed, {len(self.missing)} missing "
            f"({self.wall_time_s:.1f} s)"
        ]
        lines += [
            f"  failed: {self.grid.label(f.value)} run {f.run} (trial {f.trial}): {f.error}"
            for f in self.failed
        ]
        lines += [f"  missing: {self.grid.label(v)} run {r}" for _, v, r in self.missing]
        lines += [f"  {line}" for line in self.worker_errors]
        return "\n".join(lines)


def run_sweep(
    base: TrainConfig,
    grid: Grid,
    out_dir: str | Path,
    *,
    workers: int = 1,
    threads: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    progress: bool | None = None,
    heartbeat_interval: int | None = None,
    poll_interval: float = 1.0,
    status_lines: bool = False,
) -> SweepResult:
    """Run (or resume, or extend) a sweep with ``workers`` local worker processes.

    Args:
        base: the settings every trial shares; its ``r``/``l`` is replaced by the
            grid value and its ``seed`` by ``seed + run``
            (:func:`simloss.experiments.config.point_config`). Local settings
            (``data_dir``, ``device``, ...) may differ between reruns and
            machines; the others are fixed for the sweep, and so is the data
            (:func:`simloss.experiments.sweep.settings.data_fingerprint`).
        grid: the points to run; merged with the grid the sweep already has.
        out_dir: the sweep folder (created): ``sweep.json``, ``study.db`` with
            the default storage, ``trials/`` (one folder per trial with its
            ``record.json`` and ``model.pt``) and ``logs/`` (one per worker).
        workers: local worker processes (one runs in this process).
        threads: torch threads per worker; ``None``: ``base.num_threads``, else
            the dataset's default (Abalone: 1), else ``cores // workers``
            (:func:`threads_per_worker`), so workers do not oversubscribe.
        storage: an Optuna storage URL shared with other machines; ``None``:
            the one in ``sweep.json``, else ``sqlite:///OUT/study.db``.
        study_name: ``None``: the one in ``sweep.json``, else ``simloss-<dataset>``.
        progress: show a progress bar over trials (on stderr); ``None``:
            ``base.progress``, else only when stderr is a terminal.
        heartbeat_interval: seconds between heartbeats of a running trial; a
            trial without one for ``3 x`` this long counts as dead and is rerun.
            Fixed when the sweep is created (default 10); ``None`` keeps it.
        poll_interval: seconds between looks at the storage while waiting.
        status_lines: without a progress bar, print a line to stderr whenever a
            trial finishes or fails (the command line does when stderr is no terminal).

    Returns:
        A :class:`SweepResult`. Failed trials do not raise; they are listed.

    Raises:
        ValueError, TypeError: bad arguments, or settings or data that differ
            from the sweep's (checked before anything runs).
        FileNotFoundError: a missing data folder or storage folder.
        RuntimeError: no such device; the storage failed; the disk is full.
    """
    started = time.monotonic()
    if not isinstance(base, TrainConfig):
        raise TypeError(f"Expected `base` to be a TrainConfig, found {type(base).__name__}")
    if not isinstance(grid, Grid):
        raise TypeError(f"Expected `grid` to be a Grid, found {type(grid).__name__}")
    grid.check_task(base.task_spec)
    threads = worker_threads(base, workers, threads)
    if base.loss is not None and base.loss != grid.loss:
        raise ValueError(
            f"Expected the grid's loss {grid.loss!r} to be the config's, but found loss "
            f"{base.loss!r}"
        )
    for value, _ in grid.points()[: max(len(grid.values), 1)]:  # each must make a valid config
        point_config(base, grid.param, value, 0, loss=grid.loss).resolve()
    _check_class_count(base, grid.loss)
    storage = check_engine_args(
        base,
        grid.runs,
        heartbeat_interval=heartbeat_interval,
        poll_interval=poll_interval,
        storage=storage,
        study_name=study_name,
    )
    if progress is None:
        progress = bool(base.progress if base.progress is not None else base.resolve().progress)
    out, data, local = prepare_folder(base, out_dir, threads)

    with folder_lock(out):
        previous = read_sweep_file(out) if (out / SWEEP_FILE).exists() else None
        url, name = folder_storage(
            out, previous, f"simloss-{base.task_spec.name}", storage, study_name
        )
        merged, interval, finished_before = _prepare(
            out, url, name, storage, base, grid, heartbeat_interval, data
        )

    quiet_optuna()
    args = worker_args(
        out, url, name, local, threads=threads, heartbeat_interval=interval,
        poll_interval=poll_interval,
    )  # fmt: skip
    monitor = startup(
        url,
        lambda: SweepProgress(
            args, merged.loss_points(), finished_before, progress, lines=status_lines
        ),
    )
    worker_errors = run_engine(args, workers, monitor)
    with named_storage_errors(url):
        counts = reconnecting(lambda: _count(url, name, merged))
    full = [f for f in counts.failed.values() if f.error.startswith(DISK_FULL)]
    if full:
        raise RuntimeError(
            f"trial {full[0].trial} ({merged.label(full[0].value)} run "
            f"{full[0].run}) stopped: {full[0].error}. Free disk space and rerun the same command"
        )
    missing = [
        p for p in merged.loss_points() if p not in counts.finished and p not in counts.failed
    ]
    return SweepResult(
        out_dir=out,
        storage=url,
        study_name=name,
        grid=merged,
        finished=len(counts.finished),
        failed=tuple(counts.failed[p] for p in merged.loss_points() if p in counts.failed),
        missing=tuple(missing),
        worker_errors=tuple(worker_errors),
        wall_time_s=time.monotonic() - started,
    )


def _check_class_count(base: TrainConfig, loss: str) -> None:
    """A loss defined for at most so many classes (``beta``: 14) refused before any work."""
    from simloss.experiments.specs import loss_spec

    spec = loss_spec(loss)
    if spec.max_classes is None:
        return
    from simloss.experiments.data import load_data

    classes = load_data(base).num_classes
    if classes > spec.max_classes:
        raise ValueError(
            f"Expected at most {spec.max_classes} classes for loss {loss!r} ({spec.source}), "
            f"but dataset {base.task_spec.name!r} has {classes}"
        )


def _count(url: str, name: str, grid: Grid) -> Census:
    storage = open_storage(url)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        return census(study.get_trials(deepcopy=False), grid.loss_points())
    finally:
        dispose(storage)


def _prepare(
    out: Path,
    url: str,
    name: str,
    storage_arg: str | None,
    base: TrainConfig,
    grid: Grid,
    heartbeat_interval: int | None,
    data: dict[str, Any],
) -> tuple[Grid, int, int]:
    """Create or load the study, check settings, merge the grid, enqueue missing points.

    Returns:
        The merged grid, the heartbeat interval and the number of points finished before.
    """
    quiet_optuna()
    first = grid.values[0] if grid.values else None
    fixed = fixed_settings(point_config(base, grid.param, first, 0, loss=grid.loss))
    goal = METRIC_GOALS[str(fixed["monitor"])]
    wanted = {
        "schema_version": SCHEMA_VERSION,
        "dataset": base.task_spec.name,
        "param": grid.param,
        "fixed": fixed,
        "data": data,
        "heartbeat_interval": heartbeat_interval or DEFAULT_HEARTBEAT_S,
    }
    direction = "minimize" if goal == "min" else "maximize"

    def setup() -> tuple[dict[str, Any], list[Grid], Grid]:
        with study_session(url, name, directions=[direction]) as study:
            settings = claim_settings(
                study,
                SETTINGS_ATTR,
                wanted,
                url=url,
                kind="Sweep",
                heartbeat_given=heartbeat_interval is not None,
                data_place=data_place(base),
                files=hashed_files(base),
            )
            if settings.get("data") is None:
                # A sweep whose settings hold no data fingerprint: its data is this command's.
                settings = {**settings, "data": data}
                study.set_user_attr(SETTINGS_ATTR, settings)
            grids = grids_from_attr(study.user_attrs.get(GRID_ATTR))
            before = next((g for g in grids if g.loss == grid.loss), None)
            merged = grid if before is None else before.merged(grid)
            if merged != before:
                grids = [merged if g.loss == grid.loss else g for g in grids]
                grids += [] if before is not None else [merged]
                study.set_user_attr(GRID_ATTR, grids_to_attr(grids))
        return settings, grids, merged

    settings, grids, merged = startup(url, setup)
    interval = int(settings["heartbeat_interval"])

    def enqueue() -> Census:
        with heartbeat_study(url, name, interval) as study:
            counts = census(study.get_trials(deepcopy=False), merged.loss_points())
            enqueue_missing(study, merged.param, merged.loss_points(), merged.runs, counts)
        return counts

    counts = startup(url, enqueue)

    write_settings_file(
        out / SWEEP_FILE,
        {
            "schema_version": SCHEMA_VERSION,
            "study_name": name,
            "storage": storage_arg if storage_arg is not None else stored_url(out, url),
            "dataset": base.task_spec.name,
            "grid": grids_to_attr(grids),
            "fixed": fixed,
            "data": settings["data"],
            "heartbeat_interval": interval,
        },
        url,
    )
    return merged, interval, len(counts.finished)
