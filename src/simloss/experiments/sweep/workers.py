"""The workers of a sweep: processes that claim trials, train them and store the outcome.

This process is one worker; ``workers - 1`` more are spawned. A running trial
sends a heartbeat; a worker that dies stops sending it, and once its grace
period has passed another worker marks the trial failed and Optuna's
``RetryHeartbeatStaleTrialCallback`` enqueues a copy. A killed worker loses at
most its current training run. A full disk stops the worker at once (every
further trial would fail the same way) with an error that names the file.
"""

from __future__ import annotations

import dataclasses
import errno
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

from simloss.experiments.config import TrainConfig, point_config
from simloss.experiments.points import format_value, point_key
from simloss.experiments.specs import DATASETS
from simloss.experiments.sweep.queue import Point, census, claim_next, duplicate_of
from simloss.experiments.sweep.records import attach_record
from simloss.experiments.sweep.settings import sweep_base
from simloss.experiments.sweep.storage import dispose, open_storage

__all__ = [
    "DEFAULT_HEARTBEAT_S",
    "DISK_FULL",
    "MAX_RETRY",
    "SETTINGS_ATTR",
    "DiskFullError",
    "WorkerArgs",
    "quiet_optuna",
    "run_workers",
    "threads_per_worker",
    "trial_folder",
    "worker_threads",
]

#: Default seconds between heartbeats of a running trial.
DEFAULT_HEARTBEAT_S = 10
#: How often a dead worker's trial is put back in the queue within one command.
MAX_RETRY = 3
#: The study attribute that holds the sweep's settings.
SETTINGS_ATTR = "simloss_sweep"
#: The start of a trial's error when the disk (or the database) was full.
DISK_FULL = "disk full"


class DiskFullError(RuntimeError):
    """A trial could not write its results because the disk is full."""


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


def worker_threads(
    base: TrainConfig, workers: int, threads: int | None = None, cores: int | None = None
) -> int:
    """Torch threads of each worker of a sweep.

    The first of: ``threads``; the base config's ``num_threads``; the dataset's
    default (Abalone's small MLP: 1, faster than several, and two workers with
    all cores each slow each other down badly); the cores shared among the
    workers (:func:`threads_per_worker`).

    Example:
        >>> worker_threads(TrainConfig(dataset="abalone"), 2, cores=16)
        1
        >>> worker_threads(TrainConfig(dataset="utkface", data_dir="d"), 2, cores=16)
        8
        >>> worker_threads(TrainConfig(dataset="abalone", num_threads=3), 2, cores=16)
        3
    """
    shared = threads_per_worker(workers, cores)
    if threads is None:
        default = DATASETS[base.dataset].defaults.get("num_threads")
        return base.num_threads or default or shared
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"Expected `threads` to be an int >= 1 or None, found {threads!r}")
    return threads


def quiet_optuna() -> None:
    """Keep Optuna's per-trial info lines out of the output."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class WorkerArgs:
    """What every worker process needs (picklable)."""

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

    def __init__(
        self, args: WorkerArgs, points: list[Point], finished_before: int, progress: bool
    ) -> None:
        from tqdm.auto import tqdm

        self._points = points
        self._storage = open_storage(args.url)
        self._study = optuna.load_study(study_name=args.study_name, storage=self._storage)
        self._bar = tqdm(
            total=len(self._points),
            initial=finished_before,
            unit="trial",
            desc=f"sweep {args.study_name}",
            disable=not progress,
            file=sys.stderr,
            dynamic_ncols=True,
            smoothing=0.0,
        )

    def poll(self) -> None:
        counts = census(self._study.get_trials(deepcopy=False), self._points)
        if len(counts.finished) > self._bar.n:
            self._bar.update(len(counts.finished) - self._bar.n)
        self._bar.set_postfix(
            finished=len(counts.finished),
            failed=len(counts.failed),
            running=counts.running_trials,
            refresh=True,
        )

    def close(self) -> None:
        self._bar.close()
        dispose(self._storage)


def run_workers(
    args: WorkerArgs, workers: int, points: list[Point], finished_before: int, progress: bool
) -> list[str]:
    """Run the workers and show progress until they have all ended.

    This process is one of the workers (it starts at once, while the others,
    ``workers - 1`` spawned processes, import torch); a thread feeds the
    progress bar. Every worker logs to ``logs/<host>-<pid>.log``.

    Returns:
        One line per worker process that exited abnormally.

    Raises:
        DiskFullError: this process's worker found the disk full (the other
            workers are stopped).
    """
    from multiprocessing.connection import wait

    monitor = _Monitor(args, points, finished_before, progress)
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


def _worker_main(args: WorkerArgs) -> None:
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
    quiet_optuna()
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
    except DiskFullError as exc:
        _log(log, f"stopped: {exc}")
        code = 3
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


def _worker_loop(args: WorkerArgs, log: TextIO) -> None:
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
        base = sweep_base(settings["fixed"], args.local)
        _log(log, f"worker started on {args.study_name} ({args.threads} threads)")
        idle_before = False
        while True:
            if args.parent_pid is not None and os.getppid() != args.parent_pid:
                _log(log, "the sweep process has gone; stopping")
                return
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            claimed = claim_next(study, storage, study_id)
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
                duplicate = duplicate_of(study, trial)
                if duplicate is not None:
                    storage.set_trial_user_attr(trial_id, "duplicate_of", duplicate)
                    storage.set_trial_state_values(trial_id, TrialState.PRUNED)
                    _log(log, f"trial {trial.number} duplicates trial {duplicate}; skipped")
                    continue
                monitor = str(settings["fixed"]["monitor"])
                _run_trial(args, base, monitor, storage, trial, trial_id, log, run_training)
            except optuna.exceptions.UpdateFinishedTrialError:
                _log(log, f"trial {trial.number} was finished elsewhere meanwhile; skipped")
            except KeyboardInterrupt:
                _fail(storage, trial_id, "interrupted")  # the next command reruns it at once
                raise
    finally:
        dispose(storage)


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


def trial_folder(param: str, value: float, run: int, number: int) -> str:
    """The folder of a trial below ``trials/`` (its point and its trial number).

    Example:
        >>> trial_folder("r", 0.1 * 3, 2, 17)
        'r=0.3_run=2_trial=17'
    """
    return f"{param}={format_value(value)}_run={run}_trial={number}"


def _disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "database or disk is full" in str(getattr(exc, "orig", exc))


def _run_trial(
    args: WorkerArgs,
    base: TrainConfig,
    monitor: str,
    storage: optuna.storages.RDBStorage,
    trial: FrozenTrial,
    trial_id: int,
    log: TextIO,
    run_training: Callable[[TrainConfig, Path], Any],
) -> None:
    param = str(trial.user_attrs["param"])
    value, run = point_key(trial.user_attrs["value"], trial.user_attrs["run"])
    folder = trial_folder(param, value, run, trial.number)
    trial_dir = Path(args.out_dir) / "trials" / folder
    _log(log, f"trial {trial.number}: {param}={format_value(value)} run {run} starts")
    try:
        storage.set_trial_user_attr(trial_id, "worker", f"{_host()}:{os.getpid()}")
        with _Heartbeat(storage, trial_id, args.heartbeat_interval, log):
            config = point_config(base, param, value, run)
            record = run_training(config, trial_dir)
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
        message = f"{type(exc).__name__}: {exc}"
        if _disk_full(exc):
            message = f"{DISK_FULL}: {message}"
            _fail(storage, trial_id, message)
            raise DiskFullError(
                f"trial {trial.number} ({param}={format_value(value)} run {run}) stopped: {message}"
            ) from exc
        _fail(storage, trial_id, message)


def _fail(storage: optuna.storages.RDBStorage, trial_id: int, error: str) -> None:
    try:
        storage.set_trial_user_attr(trial_id, "error", " ".join(error.split()))
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass
    except Exception:  # a full or lost database: the trial will be found dead instead
        pass
