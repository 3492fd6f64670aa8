"""Working through a sweep's trials: claim one, train it, store its outcome, repeat.

:func:`work` is the loop every worker process runs. A running trial sends a
heartbeat, so a worker that dies is found out and its trial rerun elsewhere. A
trial that fails is recorded with its error and the loop goes on, except on a
full disk, which stops the worker at once (every further trial would fail the
same way) with an error that names the file. While a database server cannot be
reached (restarted, a network hiccup), every storage step of the loop is
retried with backoff (:func:`~simloss.experiments.sweep.storage.reconnecting`),
so a finished training is stored once the server is back; a server gone for
longer than :data:`~simloss.experiments.sweep.storage.RECONNECT_S` stops the
worker with the storage's error, its trial is found dead later and rerun.
"""

from __future__ import annotations

import errno
import functools
import math
import os
import socket
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from simloss.experiments.config import TrainConfig, point_config
from simloss.experiments.points import point_label
from simloss.experiments.sweep.queue import claim_next, duplicate_of, trial_loss, trial_point
from simloss.experiments.sweep.records import attach_record
from simloss.experiments.sweep.settings import sweep_base
from simloss.experiments.sweep.storage import (
    dispose,
    driver_error,
    is_connection_error,
    open_storage,
    reconnecting,
    storage_error,
)

__all__ = [
    "DEFAULT_HEARTBEAT_S",
    "DISK_FULL",
    "MAX_RETRY",
    "SETTINGS_ATTR",
    "DiskFullError",
    "WorkerArgs",
    "host",
    "log_line",
    "trial_folder",
    "work",
]

#: Default seconds between heartbeats of a running trial.
DEFAULT_HEARTBEAT_S = 10
#: How often a dead worker's trial is put back in the queue within one command.
MAX_RETRY = 3
#: The study attribute that holds the sweep's settings.
SETTINGS_ATTR = "simloss_sweep"
#: The start of a trial's error when the disk (or the database) was full.
DISK_FULL = "disk full"
_T = TypeVar("_T")


class DiskFullError(RuntimeError):
    """A trial could not write its results because the disk is full."""


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


def host() -> str:
    """This machine's short name (for trial attributes and log names)."""
    return socket.gethostname().split(".")[0] or "host"


def log_line(stream: TextIO, message: str) -> None:
    """Write one time-stamped line to a worker's log."""
    stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {message}\n")


def _retrying(args: WorkerArgs, log: TextIO, call: Callable[[], _T]) -> _T:
    """``call()``, repeated with backoff while the database server cannot be reached."""

    def note(exc: BaseException, wait: float) -> None:
        log_line(log, f"{storage_error(args.url, exc)}; retrying in {wait:.1f} s")

    return reconnecting(call, on_retry=note)


def work(args: WorkerArgs, log: TextIO) -> None:
    """Claim trials until none is waiting or running, run each, store its outcome."""
    from simloss.experiments.train import run_training  # once, before the first trial

    interval = args.heartbeat_interval
    storage = _retrying(
        args,
        log,
        lambda: open_storage(
            args.url, heartbeat_interval=interval, grace_period=3 * interval, max_retry=MAX_RETRY
        ),
    )
    try:
        study = _retrying(
            args, log, lambda: optuna.load_study(study_name=args.study_name, storage=storage)
        )
        study_id = _retrying(args, log, lambda: storage.get_study_id_from_name(args.study_name))
        settings = study.user_attrs[SETTINGS_ATTR]
        base = sweep_base(settings["fixed"], args.local)
        log_line(log, f"worker started on {args.study_name} ({args.threads} threads)")
        idle_before = False
        while True:
            if args.parent_pid is not None and os.getppid() != args.parent_pid:
                log_line(log, "the sweep process has gone; stopping")
                return
            claimed = _retrying(args, log, lambda: _claim(study, storage, study_id))
            if claimed is None:
                live = _retrying(
                    args,
                    log,
                    lambda: study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)),
                )
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
                log_line(log, "no trial left; stopping")
                return
            idle_before = False
            trial, trial_id = claimed
            try:
                duplicate = _retrying(
                    args, log, functools.partial(_prune_duplicate, study, storage, trial, trial_id)
                )
                if duplicate is not None:
                    log_line(log, f"trial {trial.number} duplicates trial {duplicate}; skipped")
                    continue
                monitor = str(settings["fixed"]["monitor"])
                _run_trial(args, base, monitor, storage, trial, trial_id, log, run_training)
            except optuna.exceptions.UpdateFinishedTrialError:
                log_line(log, f"trial {trial.number} was finished elsewhere meanwhile; skipped")
            except KeyboardInterrupt:
                _fail(storage, trial_id, "interrupted")  # the next command reruns it at once
                raise
    finally:
        dispose(storage)


def _claim(
    study: optuna.Study, storage: optuna.storages.RDBStorage, study_id: int
) -> tuple[FrozenTrial, int] | None:
    """Fail the trials of dead workers (their copies are enqueued), then claim one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return claim_next(study, storage, study_id)


def _prune_duplicate(
    study: optuna.Study, storage: optuna.storages.RDBStorage, trial: FrozenTrial, trial_id: int
) -> int | None:
    """Prune a claimed trial whose point another trial owns; returns that trial's number."""
    duplicate = duplicate_of(study, trial)
    if duplicate is not None:
        storage.set_trial_user_attr(trial_id, "duplicate_of", duplicate)
        storage.set_trial_state_values(trial_id, TrialState.PRUNED)
    return duplicate


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
            except Exception as exc:  # a busy or restarting database must not end the training
                inner = driver_error(exc)
                first = (str(inner).strip().splitlines() or [""])[0]
                log_line(self._log, f"heartbeat failed: {type(inner).__name__}: {first}")


def trial_folder(
    param: str | None, value: float | None, run: int, number: int, loss: str = "simloss"
) -> str:
    """The folder of a trial below ``trials/`` (its point and its trial number).

    Example:
        >>> trial_folder("r", 0.1 * 3, 2, 17)
        'r=0.3_run=2_trial=17'
        >>> trial_folder("alpha", 2, 0, 3, "sord"), trial_folder(None, None, 1, 4, "ce")
        ('sord_alpha=2.0_run=0_trial=3', 'ce_run=1_trial=4')
    """
    return f"{point_label(loss, param, value).replace(' ', '_')}_run={run}_trial={number}"


def _disk_full(exc: BaseException) -> bool:
    inner = driver_error(exc)
    if isinstance(inner, OSError) and inner.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "database or disk is full" in str(inner)


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
    raw_param = trial.user_attrs.get("param")
    param = None if raw_param is None else str(raw_param)
    point = trial_point(trial)
    if point is None:
        raise ValueError(f"Expected trial {trial.number} to carry its point, but it has none")
    loss, value, run = point
    folder = trial_folder(param, value, run, trial.number, trial_loss(trial))
    trial_dir = Path(args.out_dir) / "trials" / folder
    label = point_label(loss, param, value)
    log_line(log, f"trial {trial.number}: {label} run {run} starts")
    worker = f"{host()}:{os.getpid()}"
    try:
        _retrying(args, log, lambda: storage.set_trial_user_attr(trial_id, "worker", worker))
        with _Heartbeat(storage, trial_id, args.heartbeat_interval, log):
            config = point_config(base, param, value, run, loss=loss)
            record = run_training(config, trial_dir)
            objective = record["metrics"]["val"].get(monitor)
            if not isinstance(objective, (int, float)) or not math.isfinite(objective):
                raise ValueError(f"the validation {monitor} of the run is {objective!r}")
            path = f"trials/{folder}/record.json"
            _retrying(args, log, lambda: _complete(storage, trial_id, record, path, objective))
        log_line(log, f"trial {trial.number} finished: {objective:.6g}")
    except optuna.exceptions.UpdateFinishedTrialError:
        log_line(log, f"trial {trial.number} was declared dead meanwhile; its result is discarded")
    except Exception as exc:
        if is_connection_error(exc):  # the server stayed away: stop; the trial is found dead
            log_line(log, f"trial {trial.number}: the storage stayed unreachable; stopping")
            raise
        log_line(log, f"trial {trial.number} failed:\n{traceback.format_exc()}")
        message = f"{type(exc).__name__}: {exc}"
        if _disk_full(exc):
            message = f"{DISK_FULL}: {message}"
            _fail(storage, trial_id, message)
            raise DiskFullError(
                f"trial {trial.number} ({label} run {run}) stopped: {message}"
            ) from exc
        _fail(storage, trial_id, message)


def _complete(
    storage: optuna.storages.RDBStorage,
    trial_id: int,
    record: Any,
    record_path: str,
    objective: float,
) -> None:
    """Store a trial's record and finish it; safe to repeat after a lost connection."""
    attach_record(storage, trial_id, record, record_path)
    try:
        storage.set_trial_state_values(trial_id, TrialState.COMPLETE, values=[objective])
    except optuna.exceptions.UpdateFinishedTrialError:
        # A first try may have committed before its connection broke.
        if storage.get_trial(trial_id).state != TrialState.COMPLETE:
            raise


def _fail(storage: optuna.storages.RDBStorage, trial_id: int, error: str) -> None:
    try:
        storage.set_trial_user_attr(trial_id, "error", " ".join(error.split()))
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass
    except Exception:  # a full or lost database: the trial will be found dead instead
        pass
