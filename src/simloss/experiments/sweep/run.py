"""One sweep command: check the settings, set up the study, run the workers, count.

Rerunning the command recomputes the remaining points from the storage:
points with a finished trial are never rerun; points whose trial failed with an
error are tried again. The sweep's fixed settings and data fingerprint are
stored with the study and in ``sweep.json``; a command with other fixed
settings or other data is refused, naming what differs. A command with a
larger grid or more runs adds the new points and leaves the finished ones
alone.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from simloss.experiments._files import atomic_write_json
from simloss.experiments._runtime import resolve_device
from simloss.experiments.config import MAX_SEED, METRIC_GOALS, TrainConfig, point_config
from simloss.experiments.points import LossPoint
from simloss.experiments.sweep.grid import GRID_ATTR, Grid, grids_from_attr, grids_to_attr
from simloss.experiments.sweep.queue import Census, FailedPoint, census, enqueue_missing
from simloss.experiments.sweep.settings import (
    LOCAL_KEYS,
    check_settings,
    data_fingerprint,
    fixed_settings,
)
from simloss.experiments.sweep.storage import (
    DB_FILE,
    SWEEP_FILE,
    check_driver,
    dispose,
    hide_password,
    is_storage_error,
    open_storage,
    open_with_retry,
    read_sweep_file,
    reconnecting,
    sqlite_path,
    sqlite_url,
    storage_error,
)
from simloss.experiments.sweep.trials import (
    DEFAULT_HEARTBEAT_S,
    DISK_FULL,
    SETTINGS_ATTR,
    DiskFullError,
    WorkerArgs,
    heartbeat_study,
)
from simloss.experiments.sweep.workers import (
    SweepProgress,
    quiet_optuna,
    run_workers,
    worker_threads,
)

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
_LOCK_FILE = ".sweep.lock"


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
            f"sweep {self.study_name}: {self.finished}/{self.total} finished, "
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
    args = WorkerArgs(
        out_dir=str(out),
        url=url,
        study_name=name,
        local=local,
        threads=threads,
        heartbeat_interval=interval,
        poll_interval=poll_interval,
        parent_pid=os.getpid(),
    )
    try:
        monitor = SweepProgress(args, merged.loss_points(), finished_before, progress)
        worker_errors = run_workers(args, workers, monitor)
    except DiskFullError as exc:
        raise RuntimeError(f"{exc}. Free disk space and rerun the same command") from exc
    except Exception as exc:
        if is_storage_error(exc):
            raise storage_error(url, exc) from exc
        raise

    try:
        counts = reconnecting(lambda: _count(url, name, merged))
    except Exception as exc:
        if is_storage_error(exc):
            raise storage_error(url, exc) from exc
        raise
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


def _count(url: str, name: str, grid: Grid) -> Census:
    storage = open_storage(url)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        return census(study.get_trials(deepcopy=False), grid.loss_points())
    finally:
        dispose(storage)


#: What a sweep writes into its folder (``report`` is ``simloss report``'s default output).
SWEEP_ENTRIES: frozenset[str] = frozenset(
    {
        SWEEP_FILE,
        DB_FILE,
        *(f"{DB_FILE}{suffix}" for suffix in ("-wal", "-shm", "-journal")),
        _LOCK_FILE,
        "trials",
        "logs",
        "report",
    }
)


def check_sweep_folder(
    out: Path, entries: frozenset[str] = SWEEP_ENTRIES, *, what: str = "sweep"
) -> None:
    """Refuse a sweep folder that holds anything a sweep does not write.

    A new or empty folder starts a sweep; one holding only a sweep's entries
    (:data:`SWEEP_ENTRIES`) resumes it. Anything else (a ``simloss train`` run's
    ``model.pt``, a tune's ``tune.json``, a user's files) would end up beside
    the sweep's files: a folder never holds the files of two different runs.

    Args:
        out: the folder.
        entries: the names the command writes there (a tune passes its own).
        what: the command's kind of folder, for the messages.

    Raises:
        FileExistsError: ``out`` is a file, or holds entries the command does not write.
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"Expected the {what} folder {out} to be a folder, but it is a file")
    foreign = sorted(p.name for p in out.iterdir() if p.name not in entries) if out.is_dir() else []
    if foreign:
        raise FileExistsError(
            f"Expected the {what} folder {out} to be new, empty or a {what}'s, but it also "
            f"holds {foreign[:5]}{' ...' if len(foreign) > 5 else ''}; choose another --out"
        )


def check_engine_args(
    base: TrainConfig,
    runs: int,
    *,
    heartbeat_interval: int | None,
    poll_interval: float,
    storage: str | None,
    study_name: str | None,
) -> str | None:
    """The checks of every command on the sweep engine (sweep, tune), before any work.

    Args:
        base: the runs' settings; run ``i`` trains with seed ``base.seed + i``.
        runs: runs per point (seeds ``base.seed`` to ``base.seed + runs - 1``).
        heartbeat_interval: seconds between heartbeats, an int >= 1, or ``None``.
        poll_interval: seconds between progress polls, > 0.
        storage: an Optuna storage URL, or ``None`` for the folder's SQLite file.
        study_name: the study's name, or ``None`` for the default.

    Returns:
        ``storage`` as the settings file keeps it (:func:`check_storage_arg`).

    Raises:
        ValueError: an argument out of range, naming it.
    """
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
    if base.seed + runs - 1 > MAX_SEED:
        raise ValueError(
            f"Expected `seed` + runs - 1 <= {MAX_SEED} (run i trains with seed + i), but found "
            f"{base.seed} + {runs - 1}"
        )
    resolve_device(base.device)
    if storage is not None:
        storage = check_storage_arg(storage)
    check_study_name(study_name)
    return storage


def prepare_folder(
    base: TrainConfig,
    out_dir: str | Path,
    threads: int,
    entries: frozenset[str] = SWEEP_ENTRIES,
    *,
    what: str = "sweep",
) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """Check and create a sweep's (or tune's) folder and fingerprint its data.

    The data is fetched first when ``base.download`` asks for it (it must be there
    to be fingerprinted); the folder is checked (:func:`check_sweep_folder`)
    before anything is written.

    Returns:
        The absolute folder, the data fingerprint and the workers' local settings
        (where and how to run: data and cache folders, device, ``threads``).
    """
    if base.download:
        from simloss.experiments.data import load_data

        load_data(base)
    out = Path(out_dir).resolve()
    check_sweep_folder(out, entries, what=what)
    data = data_fingerprint(base)
    out.mkdir(parents=True, exist_ok=True)
    local = {k: getattr(base, k) for k in LOCAL_KEYS}
    local.update(progress=False, num_threads=threads)
    return out, data, local


def check_storage_arg(url: str) -> str:
    """Check a ``storage`` argument and return it as the settings file keeps it.

    Refused: not a URL of a known database (with its driver installed), an
    in-memory SQLite database (private to one process: the workers would not
    share it), a SQLite file in a missing folder. A relative SQLite path is made
    absolute (against the current folder), so that a rerun from another folder
    opens the same file instead of a new, empty study.

    Example:
        >>> check_storage_arg("sqlite://")
        Traceback (most recent call last):
        ...
        ValueError: Expected `storage` to name a SQLite file (an in-memory database is private to one process and lost at its end), but found 'sqlite://'
    """
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(
            f"Expected `storage` to be a storage URL such as sqlite:///x.db or "
            f"postgresql://user@host/db, but found {hide_password(url)!r}"
        )
    check_driver(url)  # a database SQLAlchemy knows, with its driver installed
    if not url.startswith("sqlite:"):
        return url
    path = sqlite_path(url)
    if path is None or "mode=memory" in url:
        raise ValueError(
            "Expected `storage` to name a SQLite file (an in-memory database is private to "
            f"one process and lost at its end), but found {url!r}"
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"Expected the folder of --storage {url!r} to exist, but {path.parent} does not "
            "(create it first)"
        )
    if not path.is_absolute():
        query = url.partition("?")[2]
        url = sqlite_url(path) + (f"?{query}" if query else "")
    return url


def check_study_name(study_name: str | None) -> None:
    """Refuse a ``study_name`` argument that is not a non-empty string (``None``: the default).

    An empty name would otherwise fall back to the default study, unnoticed.

    Example:
        >>> check_study_name("")
        Traceback (most recent call last):
        ...
        ValueError: Expected `study_name` to be a non-empty name, but found ''
    """
    if study_name is not None and (not isinstance(study_name, str) or not study_name.strip()):
        raise ValueError(f"Expected `study_name` to be a non-empty name, but found {study_name!r}")


@contextmanager
def folder_lock(out: Path) -> Iterator[None]:
    """Serialise the setup of processes that share one sweep (or tune) folder."""
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


def folder_storage(
    out: Path,
    previous: dict[str, Any] | None,
    default_study: str,
    storage: str | None,
    study_name: str | None,
) -> tuple[str, str]:
    """The storage URL and study name of a folder: those it has, else the arguments or defaults.

    Args:
        out: the folder (``study.db`` there is the default storage).
        previous: the folder's settings file (``sweep.json``, ``tune.json``), if any.
        default_study: the study name when neither ``previous`` nor ``study_name`` gives one.
        storage, study_name: this command's arguments (``None``: not given).

    Raises:
        ValueError: an argument differs from the folder's.
    """
    default = sqlite_url(out / DB_FILE)
    if previous is not None:
        before = previous.get("storage") or default
        if storage is not None and storage != before:
            raise ValueError(
                f"Expected `storage` {hide_password(before)!r} (the one of the study in {out}), "
                f"but found {hide_password(storage)!r}; use another --out for another storage"
            )
        if study_name is not None and study_name != previous["study_name"]:
            raise ValueError(
                f"Expected `study_name` {previous['study_name']!r} (the one of the study in "
                f"{out}), but found {study_name!r}; use another --out for another study"
            )
        storage = storage or previous.get("storage")
        study_name = previous["study_name"]
    return storage or default, study_name or default_study


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
    fixed = fixed_settings(dataclasses.replace(base, loss=grid.loss))
    goal = METRIC_GOALS[str(fixed["monitor"])]
    storage = open_with_retry(url)
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
            "dataset": base.task_spec.name,
            "param": grid.param,
            "fixed": fixed,
            "data": data,
            "heartbeat_interval": heartbeat_interval or DEFAULT_HEARTBEAT_S,
        }
        settings = study.user_attrs.get(SETTINGS_ATTR)
        if settings is None:
            if study.get_trials(deepcopy=False):
                raise ValueError(
                    f"Study {name!r} in {hide_password(url)} has trials but no simloss sweep "
                    "settings; "
                    "choose another --study-name"
                )
            study.set_user_attr(SETTINGS_ATTR, wanted)
            settings = optuna.load_study(study_name=name, storage=storage).user_attrs[SETTINGS_ATTR]
        check_settings(
            settings, wanted, name, heartbeat_interval is not None, data_dir=base.data_dir
        )
        if settings.get("data") is None:
            # A sweep made before data fingerprints: its data is this command's from now on.
            settings = {**settings, "data": data}
            study.set_user_attr(SETTINGS_ATTR, settings)
        grids = grids_from_attr(study.user_attrs.get(GRID_ATTR))
        before = next((g for g in grids if g.loss == grid.loss), None)
        merged = grid if before is None else before.merged(grid)
        if merged != before:
            grids = [merged if g.loss == grid.loss else g for g in grids]
            grids += [] if before is not None else [merged]
            study.set_user_attr(GRID_ATTR, grids_to_attr(grids))
    except Exception as exc:
        if is_storage_error(exc):
            raise storage_error(url, exc) from exc
        raise
    finally:
        dispose(storage)

    interval = int(settings["heartbeat_interval"])
    with heartbeat_study(url, name, interval) as study:
        counts = census(study.get_trials(deepcopy=False), merged.loss_points())
        enqueue_missing(study, merged.param, merged.loss_points(), merged.runs, counts)

    atomic_write_json(
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
        private=hide_password(url) != url,  # the URL holds a password: its owner only
    )
    return merged, interval, len(counts.finished)


def stored_url(out: Path, url: str) -> str | None:
    """The URL as a settings file keeps it: ``None`` for the folder's own ``study.db``.

    The default storage is written as null, so the folder can move.
    """
    return None if url == sqlite_url(out / DB_FILE) else url
