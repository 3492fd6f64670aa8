"""Working through a sweep's trials: claim one, train it, store its outcome, repeat.

:func:`work` is the loop every sweep worker runs; :func:`serve` (the loop),
:func:`claim`, :func:`settle_claimed` and :func:`run_trial` (one trial under a
heartbeat) are the pieces it shares with ``simloss tune``'s workers. A running
trial sends a heartbeat, so a worker that dies is found out and its trial rerun elsewhere. A
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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from simloss.experiments.config import TrainConfig, point_config
from simloss.experiments.loss_catalog import DEFAULT_LOSS
from simloss.experiments.points import point_label
from simloss.experiments.specs import LOSS
from simloss.experiments.sweep.queue import (
    INTERRUPTED,
    claim_next,
    duplicate_of,
    trial_loss,
    trial_point,
)
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

if TYPE_CHECKING:  # the trainer (torch) is imported inside the workers only
    from simloss.experiments.train import EpochCallback

__all__ = [
    "DEFAULT_HEARTBEAT_S",
    "DISK_FULL",
    "MAX_RETRY",
    "PRUNED",
    "SETTINGS_ATTR",
    "DiskFullError",
    "StepOutcome",
    "TrialJob",
    "WorkerArgs",
    "claim",
    "fail_stale_trials",
    "fail_trial",
    "heartbeat_study",
    "host",
    "log_line",
    "objective_value",
    "open_heartbeat_storage",
    "point_job",
    "retrying",
    "run_trial",
    "serve",
    "settle_claimed",
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
#: The ``stop_reason`` of a run stopped by a pruner: its trial ends ``PRUNED``.
PRUNED = "pruned"
#: What one step of a worker's loop did: trained (or settled) a trial, found nothing
#: to do while trials run elsewhere, or found nothing at all.
StepOutcome = Literal["ran", "wait", "idle"]
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
    index: int = 0  # the worker's number in its command (0: the command's own process)


def host() -> str:
    """This machine's short name (for trial attributes and log names)."""
    return socket.gethostname().split(".")[0] or "host"


def log_line(stream: TextIO, message: str) -> None:
    """Write one time-stamped line to a worker's log."""
    stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {message}\n")


def retrying(args: WorkerArgs, log: TextIO, call: Callable[[], _T]) -> _T:
    """``call()``, repeated with backoff while the database server cannot be reached."""

    def note(exc: BaseException, wait: float) -> None:
        log_line(log, f"{storage_error(args.url, exc)}; retrying in {wait:.1f} s")

    return reconnecting(call, on_retry=note)


#: Set when this process is asked to stop (SIGTERM); read by :func:`serve` between steps.
STOP = threading.Event()


def serve(
    args: WorkerArgs, log: TextIO, step: Callable[[], StepOutcome], what: str = "sweep"
) -> None:
    """The loop of every worker: call ``step`` until there is nothing left to do.

    ``"wait"`` (trials run elsewhere and may die and come back) sleeps
    ``poll_interval``; ``"idle"`` twice in a row ends the loop (a short pause
    between: another process may be between failing a dead worker's trial and
    enqueueing its copy). A worker process also stops when its parent is gone, and
    raises ``KeyboardInterrupt`` when :data:`STOP` is set: the ``KeyboardInterrupt``
    its SIGTERM raised may have been swallowed where Python ignores exceptions (a
    finaliser running when the signal came).
    """
    idle_before = False
    while True:
        if STOP.is_set():
            raise KeyboardInterrupt
        if args.parent_pid is not None and os.getppid() != args.parent_pid:
            log_line(log, f"the {what} process has gone; stopping")
            return
        outcome = step()
        if outcome == "ran":
            idle_before = False
        elif outcome == "wait":
            idle_before = False
            time.sleep(args.poll_interval)
        elif not idle_before:
            idle_before = True
            time.sleep(min(args.poll_interval, 0.2))
        else:
            log_line(log, "no trial left; stopping")
            return


def settle_claimed(
    args: WorkerArgs,
    study: optuna.Study,
    storage: optuna.storages.RDBStorage,
    trial: FrozenTrial,
    trial_id: int,
    log: TextIO,
    train: Callable[[], None],
) -> None:
    """Run a claimed trial's ``train`` unless it duplicates another trial's point.

    A duplicate (two processes enqueued one point at once) is pruned with the
    user attribute ``duplicate_of``. A trial finished elsewhere meanwhile is
    skipped; Ctrl-C marks it failed with the error ``interrupted`` (counted as
    interrupted, not failed) so the next command reruns it at once.
    """
    try:
        duplicate = retrying(
            args, log, functools.partial(_prune_duplicate, study, storage, trial, trial_id)
        )
        if duplicate is not None:
            log_line(log, f"trial {trial.number} duplicates trial {duplicate}; skipped")
            return
        train()
    except optuna.exceptions.UpdateFinishedTrialError:
        log_line(log, f"trial {trial.number} was finished elsewhere meanwhile; skipped")
    except KeyboardInterrupt:
        fail_trial(storage, trial_id, INTERRUPTED)  # the next command reruns it at once
        raise


def work(args: WorkerArgs, log: TextIO) -> None:
    """A sweep's worker: claim trials until none is waiting or running, run each."""
    from simloss.experiments.train import run_training  # once, before the first trial

    interval = args.heartbeat_interval
    storage = retrying(
        args,
        log,
        lambda: open_heartbeat_storage(args.url, interval),
    )
    try:
        study = retrying(
            args, log, lambda: optuna.load_study(study_name=args.study_name, storage=storage)
        )
        study_id = retrying(args, log, lambda: storage.get_study_id_from_name(args.study_name))
        settings = study.user_attrs[SETTINGS_ATTR]
        base = sweep_base(settings["fixed"], args.local)
        monitor = str(settings["fixed"]["monitor"])
        log_line(log, f"worker started on {args.study_name} ({args.threads} threads)")

        def step() -> StepOutcome:
            claimed = retrying(args, log, lambda: claim(study, storage, study_id))
            if claimed is None:
                live = retrying(
                    args,
                    log,
                    lambda: study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)),
                )
                return "wait" if live else "idle"  # a trial elsewhere may die and come back
            trial, trial_id = claimed
            job = point_job(base, trial, lambda record: [objective_value(record, monitor)])
            settle_claimed(
                args, study, storage, trial, trial_id, log,
                lambda: run_trial(args, storage, trial, trial_id, job, log, run_training),
            )  # fmt: skip
            return "ran"

        serve(args, log, step)
    finally:
        dispose(storage)


def open_heartbeat_storage(url: str, interval: int) -> optuna.storages.RDBStorage:
    """The storage as workers use it: running trials send a heartbeat every ``interval`` s.

    A trial without a heartbeat for 3 intervals is stale; failed, it is put back
    in the queue up to :data:`MAX_RETRY` times within one command.
    """
    return open_storage(
        url, heartbeat_interval=interval, grace_period=3 * interval, max_retry=MAX_RETRY
    )


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail the running trials of dead workers (Optuna's heartbeat check)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


@contextmanager
def heartbeat_study(url: str, name: str, interval: int) -> Iterator[optuna.Study]:
    """The study on a heartbeat storage with its dead workers' trials failed, then closed."""
    storage = open_heartbeat_storage(url, interval)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        fail_stale_trials(study)
        yield study
    finally:
        dispose(storage)


def claim(
    study: optuna.Study, storage: optuna.storages.RDBStorage, study_id: int
) -> tuple[FrozenTrial, int] | None:
    """Fail the trials of dead workers (their copies are enqueued), then claim one."""
    fail_stale_trials(study)
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
    param: str | None, value: float | None, run: int, number: int, loss: str = DEFAULT_LOSS
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


@dataclass(frozen=True)
class TrialJob:
    """One claimed trial: what to train, where, and what it reports back.

    Attributes:
        config: the run's settings.
        folder: its folder below ``trials/`` (:func:`trial_folder`).
        label: the trial's point for logs (``"r=0.3 run 2"``).
        values: the trial's objective values from the finished record.
        on_epoch: passed to ``run_training`` (reporting to Optuna, pruning).
    """

    config: TrainConfig
    folder: str
    label: str
    values: Callable[[Mapping[str, Any]], list[float]]
    on_epoch: EpochCallback | None = None


def point_job(
    base: TrainConfig,
    trial: FrozenTrial,
    values: Callable[[Mapping[str, Any]], list[float]],
    on_epoch: EpochCallback | None = None,
) -> TrialJob:
    """The job of a trial that carries its point (user attributes ``loss``, ``param``,
    ``value``, ``run``)."""
    raw_param = trial.user_attrs.get("param")
    param = None if raw_param is None else str(raw_param)
    point = trial_point(trial)
    if point is None:
        raise ValueError(f"Expected trial {trial.number} to carry its point, but it has none")
    loss, value, run = point
    return TrialJob(
        config=point_config(base, param, value, run, loss=loss),
        folder=trial_folder(param, value, run, trial.number, trial_loss(trial)),
        label=f"{point_label(loss, param, value)} run {run}",
        values=values,
        on_epoch=on_epoch,
    )


def objective_value(record: Mapping[str, Any], metric: str) -> float:
    """A finished run's validation ``metric`` (``loss``: its training loss on the validation
    split, the record's ``val_loss``), refused unless it is a finite number."""
    if metric == LOSS:
        value = record.get("val_loss")
    else:
        value = (record.get("metrics") or {}).get("val", {}).get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"the validation {metric} of the run is {value!r}")
    return float(value)


def run_trial(
    args: WorkerArgs,
    storage: optuna.storages.RDBStorage,
    trial: FrozenTrial,
    trial_id: int,
    job: TrialJob,
    log: TextIO,
    run_training: Callable[..., Mapping[str, Any]],
) -> None:
    """Train a running trial under a heartbeat and store its outcome.

    The record is attached (:func:`~simloss.experiments.sweep.records.attach_record`)
    with the user attributes ``epochs`` (epochs trained) and ``stop_reason``; a
    record stopped with :data:`PRUNED` ends the trial ``PRUNED``, any other
    ``COMPLETE`` with ``job.values(record)``. An error fails the trial with its
    message (a full disk also stops the worker: :class:`DiskFullError`).
    """
    trial_dir = Path(args.out_dir) / "trials" / job.folder
    log_line(log, f"trial {trial.number}: {job.label} starts")
    worker = f"{host()}:{os.getpid()}"
    try:
        retrying(args, log, lambda: storage.set_trial_user_attr(trial_id, "worker", worker))
        with _Heartbeat(storage, trial_id, args.heartbeat_interval, log):
            record = run_training(job.config, trial_dir, on_epoch=job.on_epoch)
            values = None if record.get("stop_reason") == PRUNED else job.values(record)
            path = f"trials/{job.folder}/record.json"
            retrying(args, log, lambda: _complete(storage, trial_id, record, path, values))
        outcome = "pruned" if values is None else ", ".join(f"{v:.6g}" for v in values)
        log_line(log, f"trial {trial.number} finished: {outcome}")
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
            fail_trial(storage, trial_id, message)
            raise DiskFullError(f"trial {trial.number} ({job.label}) stopped: {message}") from exc
        fail_trial(storage, trial_id, message)


def _complete(
    storage: optuna.storages.RDBStorage,
    trial_id: int,
    record: Mapping[str, Any],
    record_path: str,
    values: list[float] | None,
) -> None:
    """Store a trial's record and finish it (``PRUNED`` without values); safe to repeat
    after a lost connection."""
    attach_record(storage, trial_id, record, record_path)
    storage.set_trial_user_attr(trial_id, "epochs", int(record.get("epochs_run") or 0))
    storage.set_trial_user_attr(trial_id, "stop_reason", str(record.get("stop_reason")))
    state = TrialState.PRUNED if values is None else TrialState.COMPLETE
    try:
        storage.set_trial_state_values(trial_id, state, values=values)
    except optuna.exceptions.UpdateFinishedTrialError:
        # A first try may have committed before its connection broke.
        if storage.get_trial(trial_id).state != state:
            raise


def fail_trial(storage: optuna.storages.RDBStorage, trial_id: int, error: str) -> None:
    """Mark a running trial failed with its error (one line); quiet if it cannot be."""
    try:
        storage.set_trial_user_attr(trial_id, "error", " ".join(error.split()))
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass
    except Exception:  # a full or lost database: the trial will be found dead instead
        pass
