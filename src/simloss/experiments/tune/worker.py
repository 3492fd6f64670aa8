"""A tune's worker: claim queued trials, else ask the sampler for a value, else plan the confirmation.

Every worker process of ``simloss tune`` runs :func:`work`, built from the
sweep's pieces (:func:`~simloss.experiments.sweep.trials.serve`, the heartbeat
and failure handling of :func:`~simloss.experiments.sweep.trials.run_trial`,
the atomic claim of :func:`~simloss.experiments.sweep.queue.claim_next`). Each
step, in this order:

1. claim a waiting trial (CCE, confirmation runs, a dead worker's trial put
   back by the storage) and train it;
2. if the budget allows (:meth:`~simloss.experiments.tune.plan.Ledger.can_search`),
   ask the study for a new trial: the sampler proposes a value, which is trained
   with run 0's seed, reported after every epoch and pruned when the pruner says so;
3. when no trial is running or waiting anywhere, plan the confirmation once
   (:func:`~simloss.experiments.tune.plan.select_candidates`) and enqueue it;
4. otherwise wait for the trials running elsewhere, or stop when none is left.
"""

from __future__ import annotations

import datetime
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

from simloss.experiments.config import TrainConfig
from simloss.experiments.points import LossPoint, format_value, value_key
from simloss.experiments.sweep.engine import worker_slot
from simloss.experiments.sweep.queue import census, enqueue_missing, trial_point
from simloss.experiments.sweep.settings import sweep_base
from simloss.experiments.sweep.storage import dispose
from simloss.experiments.sweep.trials import (
    PRUNED,
    StepOutcome,
    WorkerArgs,
    claim,
    fail_trial,
    log_line,
    objective_value,
    open_heartbeat_storage,
    point_job,
    retrying,
    run_trial,
    serve,
    settle_claimed,
)
from simloss.experiments.tune.plan import (
    CANDIDATES_ATTR,
    SETTINGS_ATTR,
    Ledger,
    make_pruner,
    make_sampler,
    select_candidates,
    trial_phase,
)
from simloss.experiments.tune.settings import TUNED_LOSS, TuneSettings

__all__ = [
    "EpochReporter",
    "confirmation_points",
    "fail_orphans",
    "plan_confirmation",
    "settle_repeat",
    "work",
]

#: The run index of every search trial (common random numbers).
SEARCH_RUN = 0


class EpochReporter:
    """The ``on_epoch`` callback of a tune's run: report each epoch to Optuna, maybe prune.

    After epoch ``t`` it reports the objective's validation value at the best
    epoch so far (the epoch early stopping would keep; so the last report equals
    the run's final objective) as step ``t``. With ``prune``, it asks the
    pruner and stops the run with the reason ``"pruned"``.

    Args:
        trial: the running trial (``None``: report nothing, as for a study of
            several objectives, which Optuna does not prune).
        metric: the record metric of the objective.
        prune: whether the pruner may stop this run.
    """

    def __init__(self, trial: optuna.Trial | None, metric: str, prune: bool) -> None:
        self._trial = trial
        self._metric = metric
        self._prune = prune

    def __call__(self, history: Sequence[Mapping[str, Any]], best_epoch: int) -> str | None:
        if self._trial is None or best_epoch < 1:
            return None
        value = history[best_epoch - 1]["val"].get(self._metric)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        self._trial.report(float(value), len(history))
        if self._prune and self._trial.should_prune():
            return PRUNED
        return None


def confirmation_points(
    settings: TuneSettings, candidates: Sequence[float]
) -> dict[str, list[LossPoint]]:
    """The (loss, value, run) points of the confirmation, by phase (``cce`` and ``confirm``)."""
    runs = range(settings.runs)
    cce = value_key(settings.cce_value)
    return {
        "cce": [(TUNED_LOSS, cce, run) for run in runs],
        "confirm": [(TUNED_LOSS, value_key(v), run) for v in candidates for run in runs],
    }


def plan_confirmation(study: optuna.Study, settings: TuneSettings, log: TextIO | None) -> bool:
    """Choose the candidates (once: stored with the study) and enqueue their missing runs.

    Two processes planning at once choose the same values (the same finished
    search trials; none is running) and enqueue the same points; the copy with
    the higher number is pruned when claimed, as in a sweep. When no search
    trial has completed, nothing is stored: the tune stays unplanned, and a
    rerun with a larger budget searches on.

    Returns:
        Whether the confirmation is planned.
    """
    trials = study.get_trials(deepcopy=False)
    stored = study.user_attrs.get(CANDIDATES_ATTR)
    if stored is None:
        chosen = list(select_candidates(trials, settings))
        if not chosen:
            if log is not None:
                log_line(log, "no search trial completed within the budget: nothing to confirm")
            return False
        study.set_user_attr(CANDIDATES_ATTR, chosen)
        stored = study.user_attrs[CANDIDATES_ATTR]  # read back: another process may have won
    candidates = [float(v) for v in stored]
    if log is not None:
        shown = ", ".join(format_value(v) for v in candidates)
        log_line(log, f"confirmation planned: {settings.param} = {shown} and CCE")
    for phase, points in confirmation_points(settings, candidates).items():
        counts = census(trials, points)
        attrs = {"phase": phase}
        distribution = settings.distribution()
        enqueue_missing(study, settings.param, points, settings.runs, counts, attrs, distribution)
    return True


def fail_orphans(
    study: optuna.Study, storage: optuna.storages.RDBStorage, study_id: int, grace_s: float
) -> list[int]:
    """Fail search trials whose worker died between asking for them and their first heartbeat.

    ``study.ask()`` makes a running trial before its worker can record a
    heartbeat or give it its point, so a worker killed in that moment leaves a
    running trial that no heartbeat check finds. A running trial without a
    ``phase`` for longer than ``grace_s`` (three heartbeat intervals; a live
    worker gives it one within milliseconds) is such an orphan.

    Returns:
        The numbers of the trials failed.
    """
    now = datetime.datetime.now()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        start = trial.datetime_start
        if trial_phase(trial) is not None or start is None:
            continue
        if (now - start).total_seconds() > grace_s:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            fail_trial(storage, trial_id, "its worker stopped before the trial's first heartbeat")
            failed.append(trial.number)
    return failed


def settle_repeat(
    study: optuna.Study,
    storage: optuna.storages.RDBStorage,
    trial: FrozenTrial,
    trial_id: int,
    log: TextIO | None,
) -> bool:
    """Settle a search trial that repeats an evaluated point, without training it.

    Training is deterministic for a config, so a repeat of a complete point is
    completed with that point's values (the sampler learns what the run would
    give; a Gaussian process then sees a repeated observation and moves on),
    and a repeat of a pruned point is pruned (Optuna's GPSampler ignores pruned
    trials: with the median pruner it proposed one pruned value eleven times in
    a row on Abalone, each trained and pruned again). Either way the trial gets
    ``duplicate_of`` and ``epochs = 0``. Repeats of points still running or
    waiting are left to :func:`~simloss.experiments.sweep.trials.settle_claimed`,
    which prunes them as a sweep does.

    Returns:
        Whether the trial was settled here.
    """
    key = trial_point(trial)
    others = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.number != trial.number and trial_point(t) == key
    ]
    done = [t for t in others if t.state == TrialState.COMPLETE and t.values is not None]
    pruned = [t for t in others if t.state == TrialState.PRUNED]
    if done:
        original = done[0]
        state, values, outcome = TrialState.COMPLETE, original.values, "its values"
    elif pruned:
        original = pruned[0]
        state, values, outcome = TrialState.PRUNED, None, "pruned as it was"
    else:
        return False
    number = int(original.user_attrs.get("duplicate_of", original.number))
    storage.set_trial_user_attr(trial_id, "duplicate_of", number)
    storage.set_trial_user_attr(trial_id, "epochs", 0)
    storage.set_trial_state_values(trial_id, state, values=values)
    if log is not None:
        log_line(log, f"trial {trial.number} repeats trial {number}: {outcome}, no training")
    return True


def _values(settings: TuneSettings) -> Callable[[Mapping[str, Any]], list[float]]:
    def values(record: Mapping[str, Any]) -> list[float]:
        return [objective_value(record, metric) for metric in settings.metrics]

    return values


def work(args: WorkerArgs, log: TextIO) -> None:
    """A tune's worker loop (see the module's docstring)."""
    from simloss.experiments.train import run_training  # once, before the first trial

    interval = args.heartbeat_interval
    storage = open_heartbeat_storage(args.url, interval)
    try:
        stored = optuna.load_study(study_name=args.study_name, storage=storage).user_attrs[
            SETTINGS_ATTR
        ]
        settings = TuneSettings.from_dict(stored["tune"])
        base = sweep_base(stored["fixed"], args.local)
        resolved = base.resolve()
        patience = int(resolved.patience or 1)
        # A seed of this worker's own: workers of two commands on one study (two machines
        # started together) must not propose the same values.
        slot = worker_slot(
            optuna.load_study(study_name=args.study_name, storage=storage), args.index
        )
        study = optuna.load_study(
            study_name=args.study_name,
            storage=storage,
            sampler=make_sampler(settings, slot),
            pruner=make_pruner(settings, patience),
        )
        study_id = storage.get_study_id_from_name(args.study_name)
        log_line(log, f"tune worker started on {args.study_name} ({args.threads} threads)")
        tuner = _Tuner(args, log, study, storage, study_id, settings, base)
        grace = 3 * interval
        epoch_cap = int(resolved.epochs or 1)

        def step() -> StepOutcome:
            orphans = retrying(args, log, lambda: fail_orphans(study, storage, study_id, grace))
            for number in orphans:
                log_line(log, f"trial {number} was left without a heartbeat; failed")
            claimed = retrying(args, log, lambda: claim(study, storage, study_id))
            if claimed is not None:
                tuner.run_queued(*claimed, run_training)
                return "ran"
            trials = retrying(args, log, lambda: study.get_trials(deepcopy=False))
            planned = CANDIDATES_ATTR in retrying(args, log, lambda: study.user_attrs)
            ledger = Ledger.count(trials, settings, epoch_cap, planned)
            if ledger.can_search(settings):
                tuner.run_search(run_training)
                return "ran"
            if ledger.live:
                return "wait"
            if not planned and retrying(args, log, lambda: plan_confirmation(study, settings, log)):
                return "ran"
            return "idle"

        serve(args, log, step, what="tune")
    finally:
        dispose(storage)


class _Tuner:
    """Runs a tune's trials for one worker."""

    def __init__(
        self,
        args: WorkerArgs,
        log: TextIO,
        study: optuna.Study,
        storage: optuna.storages.RDBStorage,
        study_id: int,
        settings: TuneSettings,
        base: TrainConfig,
    ) -> None:
        self.args = args
        self.log = log
        self.study = study
        self.storage = storage
        self.study_id = study_id
        self.settings = settings
        self.base = base

    def _reporter(self, trial_id: int, prune: bool) -> EpochReporter:
        trial = None if self.settings.multi else optuna.Trial(self.study, trial_id)
        return EpochReporter(trial, self.settings.metrics[0], prune)

    def run_queued(
        self, trial: FrozenTrial, trial_id: int, run_training: Callable[..., Mapping[str, Any]]
    ) -> None:
        """Train a claimed trial: CCE or confirmation runs, or a search trial put back."""
        if trial_phase(trial) is None and self.settings.param not in trial.params:
            # A dead worker's asked trial put back before it got a value: nothing to run.
            fail_trial(self.storage, trial_id, "asked for, but its worker stopped before a value")
            return
        trial = self._with_point(trial, trial_id)
        prune = trial_phase(trial) == "search"
        if prune and settle_repeat(self.study, self.storage, trial, trial_id, self.log):
            return
        job = point_job(self.base, trial, _values(self.settings), self._reporter(trial_id, prune))
        settle_claimed(
            self.args, self.study, self.storage, trial, trial_id, self.log,
            lambda: run_trial(self.args, self.storage, trial, trial_id, job, self.log, run_training),
        )  # fmt: skip

    def run_search(self, run_training: Callable[..., Mapping[str, Any]]) -> None:
        """Ask the sampler for a value and train it (run 0's seed, pruned when told)."""
        with warnings.catch_warnings():  # the heartbeat is ours (run_trial), not optimize()'s
            warnings.simplefilter("ignore", UserWarning)
            asked = self.study.ask()
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, asked.number)
        self.storage.record_heartbeat(trial_id)  # at once, so that a killed worker is found out
        frozen = self.storage.get_trial(trial_id)
        if trial_phase(frozen) is None and self.settings.param not in frozen.params:
            s = self.settings
            asked.suggest_float(s.param, s.low, s.high, step=s.step)
        # A waiting trial enqueued meanwhile comes back from ask() as it is.
        self.run_queued(self.storage.get_trial(trial_id), trial_id, run_training)

    def _with_point(self, trial: FrozenTrial, trial_id: int) -> FrozenTrial:
        """A trial with its point attributes (a new search trial gets them here)."""
        attrs = trial.user_attrs
        if {"phase", "param", "value", "run"} <= set(attrs):
            return trial
        value = value_key(trial.params[self.settings.param])
        point = {"phase": "search", "param": self.settings.param, "value": value, "run": SEARCH_RUN}
        # (no "loss" attribute: a trial without one is SimLoss's, as in a sweep)
        for key, item in point.items():
            if key not in attrs:
                self.storage.set_trial_user_attr(trial_id, key, item)
        return self.storage.get_trial(trial_id)
