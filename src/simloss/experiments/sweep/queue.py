"""The sweep's queue of trials in the Optuna storage: enqueue, count, claim.

Every missing grid point is enqueued as a ``WAITING`` trial that carries its
point (user attributes ``loss``, ``param``, ``value``, ``run``; a trial
without ``loss`` is SimLoss's, :func:`~simloss.experiments.loss_catalog.stored_loss`). A
worker claims a trial
by the storage's atomic ``WAITING -> RUNNING`` transition, so one trial goes to
one worker. Two processes enqueueing the same point at once (two machines
starting together) create two trials for it; the one with the higher number
finds the lower one waiting, running or finished when it is claimed and is
pruned without training, so each point finishes exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from simloss.experiments.loss_catalog import DEFAULT_LOSS, stored_loss
from simloss.experiments.points import LossPoint, loss_point_key
from simloss.experiments.specs import loss_spec

__all__ = [
    "Census",
    "FailedPoint",
    "census",
    "claim_next",
    "duplicate_of",
    "enqueue_missing",
    "trial_error",
    "trial_loss",
    "trial_point",
]

Point = LossPoint


@dataclass(frozen=True)
class FailedPoint:
    """A grid point whose last trial failed.

    Args:
        value: the hyper-parameter value (``None`` for a loss without one).
        run: the run index.
        trial: the number of the failed trial.
        error: its error message.
        loss: the loss.
    """

    value: float | None
    run: int
    trial: int
    error: str
    loss: str = DEFAULT_LOSS


def trial_loss(trial: FrozenTrial) -> str:
    """The loss of a trial (:func:`~simloss.experiments.loss_catalog.stored_loss`)."""
    return stored_loss(trial.user_attrs.get("loss"))


def trial_point(trial: FrozenTrial) -> Point | None:
    """The point ``(loss, value, run)`` of a trial (``None`` for a trial without one)."""
    attrs = trial.user_attrs
    if "value" not in attrs or "run" not in attrs:
        return None
    return loss_point_key(trial_loss(trial), attrs["value"], attrs["run"])


def trial_error(error: object) -> str:
    """Why a failed trial failed: its ``error`` attribute, else a lost worker (no heartbeat)."""
    if error:
        return str(error)
    return "its worker stopped sending heartbeats (killed or machine lost)"


#: The ``error`` of a trial stopped by Ctrl-C (or SIGTERM): not a failure, rerun at once.
INTERRUPTED = "interrupted"


@dataclass
class Census:
    """The state of every grid point, from the trials in the storage.

    A point whose last trial was interrupted by the user is ``interrupted``,
    not ``failed``: the next command reruns it, and no report counts it as a
    failure.
    """

    finished: set[Point] = field(default_factory=set)
    running: set[Point] = field(default_factory=set)
    waiting: set[Point] = field(default_factory=set)
    failed: dict[Point, FailedPoint] = field(default_factory=dict)
    interrupted: set[Point] = field(default_factory=set)
    running_trials: int = 0


def census(trials: Sequence[FrozenTrial], points: Sequence[Point]) -> Census:
    """Count the points of a grid as finished, running, waiting, failed or interrupted."""
    by_point: dict[Point, list[FrozenTrial]] = {}
    result = Census()
    for trial in trials:
        key = trial_point(trial)
        if key is not None:
            by_point.setdefault(key, []).append(trial)
        if trial.state == TrialState.RUNNING:
            result.running_trials += 1
    for key in points:
        states = {t.state for t in by_point.get(key, [])}
        if TrialState.COMPLETE in states:
            result.finished.add(key)
        elif TrialState.RUNNING in states:
            result.running.add(key)
        elif TrialState.WAITING in states:
            result.waiting.add(key)
        elif TrialState.FAIL in states:
            last = max(
                (t for t in by_point[key] if t.state == TrialState.FAIL), key=lambda t: t.number
            )
            error = last.user_attrs.get("error")
            if error == INTERRUPTED:
                result.interrupted.add(key)
                continue
            result.failed[key] = FailedPoint(
                key[1], key[2], last.number, trial_error(error), loss=key[0]
            )
    return result


def _distribution(loss: str, param: str) -> tuple[str, FloatDistribution]:
    """The Optuna name and distribution of a loss's parameter.

    SimLoss's parameter is the bare ``r``/``l`` in ``[0, 1]`` (so every SimLoss
    study shares one distribution); another loss's parameter is named ``<loss>.<param>`` with its own range, so
    two losses' ``alpha`` never share one distribution.
    """
    if loss == DEFAULT_LOSS:
        return param, FloatDistribution(0.0, 1.0)
    own = loss_spec(loss).param
    if own is None:  # soft labels: the similarity's r or l
        return f"{loss}.{param}", FloatDistribution(0.0, 1.0)
    return f"{loss}.{param}", FloatDistribution(own.low, own.high)


def enqueue_missing(
    study: optuna.Study,
    param: str | None,
    points: Sequence[Point],
    runs: int,
    counts: Census,
    attrs: Mapping[str, Any] | None = None,
    distribution: FloatDistribution | None = None,
) -> None:
    """Add a ``WAITING`` trial for every point that is not finished, running or waiting.

    Args:
        study: the study.
        param: the parameter of the points' loss (``None`` for a loss without one).
        points: ``(loss, value, run)`` points of one loss.
        runs: the runs per value of that loss's grid.
        counts: the census of the study.
        attrs: more user attributes of every trial (e.g. a tune's ``phase``).
        distribution: the parameter's distribution (default: the loss's own range,
            ``[0, 1]`` for ``r``/``l``); a tune gives every trial its search's.
    """
    run_dist = IntDistribution(0, runs - 1)
    for key in points:
        loss, value, run = key
        if key in counts.finished or key in counts.running or key in counts.waiting:
            continue
        params: dict[str, float | int] = {"run": run}
        distributions: dict[str, optuna.distributions.BaseDistribution] = {"run": run_dist}
        if param is not None and value is not None:
            name, dist = _distribution(loss, param)
            params[name], distributions[name] = value, distribution or dist
        user: dict[str, object] = {**(attrs or {}), "param": param, "value": value, "run": run}
        if loss != DEFAULT_LOSS:
            user["loss"] = loss
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                params=params,
                distributions=distributions,
                user_attrs=user,
            )
        )


def claim_next(
    study: optuna.Study, storage: optuna.storages.RDBStorage, study_id: int
) -> tuple[FrozenTrial, int] | None:
    """Claim the next waiting trial (atomically), or ``None`` when none is waiting."""
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


def duplicate_of(study: optuna.Study, trial: FrozenTrial) -> int | None:
    """The trial that owns this trial's point, if it is not this one."""
    key = trial_point(trial)
    for other in study.get_trials(deepcopy=False):
        if other.number == trial.number or trial_point(other) != key:
            continue
        if other.state == TrialState.COMPLETE:
            return other.number
        if other.state in (TrialState.WAITING, TrialState.RUNNING) and other.number < trial.number:
            return other.number
    return None
