"""The sweep's queue of trials in the Optuna storage: enqueue, count, claim.

Every missing grid point is enqueued as a ``WAITING`` trial that carries its
point (user attributes ``param``, ``value``, ``run``). A worker claims a trial
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

from simloss.experiments.points import point_key

__all__ = [
    "Census",
    "FailedPoint",
    "census",
    "claim_next",
    "duplicate_of",
    "enqueue_missing",
    "trial_point",
]

Point = tuple[float, int]


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


def trial_point(trial: FrozenTrial) -> Point | None:
    """The grid point of a trial (``None`` for a trial without one)."""
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
class Census:
    """The state of every grid point, from the trials in the storage."""

    finished: set[Point] = field(default_factory=set)
    running: set[Point] = field(default_factory=set)
    waiting: set[Point] = field(default_factory=set)
    failed: dict[Point, FailedPoint] = field(default_factory=dict)
    running_trials: int = 0


def census(trials: Sequence[FrozenTrial], points: Sequence[Point]) -> Census:
    """Count the points of a grid as finished, running, waiting or failed."""
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
            result.failed[key] = FailedPoint(key[0], key[1], last.number, _trial_error(last))
    return result


def enqueue_missing(
    study: optuna.Study,
    param: str,
    points: Sequence[Point],
    runs: int,
    counts: Census,
    attrs: Mapping[str, Any] | None = None,
    distribution: FloatDistribution | None = None,
) -> None:
    """Add a ``WAITING`` trial for every point that is not finished, running or waiting.

    Each carries the user attributes ``param``, ``value``, ``run`` and ``attrs``
    (e.g. a tune's ``phase``), and the parameters ``param`` (in ``distribution``,
    default ``[0, 1]``) and ``run``.
    """
    param_dist = FloatDistribution(0.0, 1.0) if distribution is None else distribution
    run_dist = IntDistribution(0, runs - 1)
    for value, run in points:
        key = (value, run)
        if key in counts.finished or key in counts.running or key in counts.waiting:
            continue
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                params={param: value, "run": run},
                distributions={param: param_dist, "run": run_dist},
                user_attrs={**(attrs or {}), "param": param, "value": value, "run": run},
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
