"""How a tune proceeds: its phases, its budget in epochs, and the values it confirms.

A tune's trials live in one Optuna study (``docs/tuning.md``):

1. **cce**: cross-entropy (the parameter's CCE value, e.g. ``r = 0``), run 0,
   enqueued when the tune is created, so the search can compare with it.
2. **search**: the sampler proposes a value; it is trained once, with run 0's
   seed (common random numbers: every search trial shares weights' initial
   values and batch order, so values are compared without seed noise between
   them), reported to Optuna after every epoch and pruned when the pruner says
   so. A new search trial starts only while the budget allows it and the
   confirmation.
3. **confirm**: the best search results (:func:`select_candidates`) and CCE
   are trained with ``runs`` seeds (runs ``0 .. runs - 1``; run 0 is the
   search trial itself), so the result is a mean with its run-to-run spread,
   paired with CCE's runs for the Wilcoxon test.

:class:`Ledger` counts the epochs from the storage: every trial's
``epochs`` attribute (finished) or reported steps (running, failed), plus the
expected epochs of trials that are waiting or still running.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from simloss.experiments.points import value_key
from simloss.experiments.tune.settings import TuneSettings

__all__ = [
    "CANDIDATES_ATTR",
    "CONVERGED_AFTER",
    "PHASES",
    "SETTINGS_ATTR",
    "Ledger",
    "make_pruner",
    "make_sampler",
    "pareto_front",
    "select_candidates",
    "trial_epochs",
    "trial_phase",
]

#: The phases of a tune, in order (user attribute ``phase`` of every trial).
PHASES: tuple[str, ...] = ("cce", "search", "confirm")
#: The study attribute holding the tune's settings.
SETTINGS_ATTR = "simloss_tune"
#: The study attribute holding the values chosen for confirmation (set once).
CANDIDATES_ATTR = "simloss_tune_candidates"
#: The search ends when the sampler proposes this many already evaluated values in a row.
CONVERGED_AFTER = 3


def trial_phase(trial: FrozenTrial) -> str | None:
    """A trial's phase (``None``: not yet known, e.g. just asked for)."""
    phase = trial.user_attrs.get("phase")
    return str(phase) if phase is not None else None


def trial_epochs(trial: FrozenTrial) -> int:
    """Epochs a trial has trained: its ``epochs`` attribute, else the steps it reported."""
    epochs = trial.user_attrs.get("epochs")
    if isinstance(epochs, int):
        return epochs
    return len(trial.intermediate_values)


@dataclass(frozen=True)
class Ledger:
    """Where a tune stands, counted from its trials.

    Attributes:
        spent: epochs trained so far (finished, failed and running trials).
        committed: ``spent`` plus what running and waiting trials are expected to
            add (each is expected to train :attr:`expected` epochs in all).
        expected: epochs of a finished run, the mean over the complete runs so
            far (before any: the epoch cap).
        spread: the standard deviation of the complete runs' epochs (0 before two).
        planned: whether the confirmation has been planned.
        live: trials running or waiting (any phase).
        search_trials: search trials (any state but waiting), in trial order.
        converged: the last :data:`CONVERGED_AFTER` search trials duplicated
            earlier values (the sampler has nothing new to propose).
    """

    spent: int
    committed: float
    expected: float
    spread: float
    planned: bool
    live: int
    search_trials: tuple[FrozenTrial, ...]
    converged: bool

    @classmethod
    def count(
        cls, trials: Sequence[FrozenTrial], settings: TuneSettings, epoch_cap: int, planned: bool
    ) -> Ledger:
        """The ledger of a tune's trials.

        Args:
            trials: every trial of the study.
            settings: the tune's settings.
            epoch_cap: the runs' ``epochs`` setting (the expectation before any run finished).
            planned: whether the confirmation is planned (its trials then count as waiting).
        """
        full = [
            trial_epochs(t)
            for t in trials
            if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs
        ]
        expected = float(np.mean(full)) if full else float(epoch_cap)
        spread = float(np.std(full, ddof=1)) if len(full) > 1 else 0.0
        spent = sum(trial_epochs(t) for t in trials if t.state != TrialState.WAITING)
        ahead = 0.0
        for t in trials:
            if t.state == TrialState.RUNNING:
                ahead += max(expected - trial_epochs(t), 0.0)
            elif t.state == TrialState.WAITING:
                ahead += expected
        search = tuple(
            t for t in trials if trial_phase(t) == "search" and t.state != TrialState.WAITING
        )
        last = search[-CONVERGED_AFTER:]
        converged = len(last) == CONVERGED_AFTER and all(
            "duplicate_of" in t.user_attrs for t in last
        )
        live = sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
        return cls(spent, spent + ahead, expected, spread, planned, live, search, converged)

    def reserve(self, settings: TuneSettings) -> float:
        """Epochs kept for the confirmation (0 once planned: its trials are counted then).

        Each of its ``(candidates + 1) x (runs - 1)`` runs is counted at
        :attr:`expected` plus one :attr:`spread`: the confirmation's runs use
        other seeds than the search's, whose lengths the mean alone
        underestimated on Abalone (a tune of 700 epochs spent 813), and a
        budget left unused is better than one overrun.
        """
        if self.planned:
            return 0.0
        return (settings.candidates + 1) * (settings.runs - 1) * (self.expected + self.spread)

    def can_search(self, settings: TuneSettings) -> bool:
        """Whether a new search trial fits: committed + one run + the confirmation <= budget."""
        if self.planned or self.converged:
            return False
        return self.committed + self.expected + self.reserve(settings) <= settings.budget


def pareto_front(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the non-dominated points (in input order).

    A point dominates another when it is at least as good in every objective and
    better in one (``directions``: ``"minimize"``/``"maximize"`` per objective).
    Equal points do not dominate each other (both stay).

    Example:
        >>> pareto_front([(1, 5), (2, 2), (3, 3), (1, 5)], ["minimize", "minimize"])
        [0, 1, 3]
    """
    if not points:
        return []
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    values = np.asarray(points, dtype=np.float64) * sign
    if values.ndim != 2 or values.shape[1] != len(directions):
        raise ValueError(
            f"Expected points of {len(directions)} objectives, but found shape {values.shape}"
        )
    front = []
    for i, row in enumerate(values):
        no_worse = np.all(values <= row, axis=1)
        better = np.any(values < row, axis=1)
        if not np.any(no_worse & better):
            front.append(i)
    return front


def select_candidates(trials: Sequence[FrozenTrial], settings: TuneSettings) -> tuple[float, ...]:
    """The search results to confirm with ``runs`` seeds.

    Eligible are complete search trials that duplicate no earlier one, at
    values other than CCE (which is confirmed anyway). One objective: the best
    values in order. Several: the Pareto front of the search, first the best
    point of each objective, then the front point farthest (in the parameter)
    from those taken. Either way a value closer than
    :attr:`TuneSettings.min_gap` to one taken is skipped, at most
    ``candidates`` are taken, and ties go to the earlier trial.

    Returns:
        The values, in the order taken.
    """
    cce = value_key(settings.cce_value)
    eligible = [
        t
        for t in trials
        if trial_phase(t) == "search"
        and t.state == TrialState.COMPLETE
        and "duplicate_of" not in t.user_attrs
        and value_key(t.user_attrs["value"]) != cce
        and t.values is not None
    ]
    eligible.sort(key=lambda t: t.number)
    signs = [1.0 if d == "minimize" else -1.0 for d in settings.directions]

    def score(trial: FrozenTrial, k: int) -> float:
        return signs[k] * float(trial.values[k])

    order: list[FrozenTrial]
    if not settings.multi:
        order = sorted(eligible, key=lambda t: score(t, 0))
    else:
        front = [
            eligible[i] for i in pareto_front([t.values for t in eligible], settings.directions)
        ]
        order = []
        for k in range(len(signs)):
            ranked = sorted(front, key=functools.partial(score, k=k))
            if ranked and ranked[0] not in order:
                order.append(ranked[0])
        rest = [t for t in front if t not in order]
        while rest:
            taken = [value_key(t.user_attrs["value"]) for t in order]
            far = max(
                rest, key=lambda t: value_key(min(abs(t.user_attrs["value"] - v) for v in taken))
            )
            order.append(far)
            rest.remove(far)
    chosen: list[float] = []
    for trial in order:
        value = value_key(trial.user_attrs["value"])
        if all(abs(value - c) >= settings.min_gap for c in chosen):
            chosen.append(value)
        if len(chosen) == settings.candidates:
            break
    return tuple(chosen)


def make_sampler(settings: TuneSettings, index: int = 0) -> optuna.samplers.BaseSampler:
    """The tune's Optuna sampler (worker ``index`` seeded with ``seed + index``).

    ``tpe``: ``TPESampler`` with the constant liar (parallel workers avoid the
    values others are running); ``gp``: ``GPSampler`` (a Gaussian process with
    a fitted noise term, log expected improvement, or hypervolume improvement
    for several objectives). Both draw ``startup`` search values at random first
    (the CCE trial counts as one more).
    """
    import warnings

    seed = settings.seed + index
    startup = settings.startup + 1
    if settings.sampler == "gp":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)


def make_pruner(settings: TuneSettings, patience: int) -> optuna.pruners.BasePruner:
    """The tune's Optuna pruner; a run is never pruned before ``2 x patience`` epochs.

    Runs with a large ``r`` learn more slowly at first and catch up later (on
    Abalone, r = 0.6 trailed r = 0 by 0.1 in validation MAE after 20 epochs and
    led by 0.03 after 40), so a run is judged only after twice the patience of
    early stopping.

    ``median``: ``MedianPruner`` (stop a trial whose best value so far is worse
    than the median of the complete trials at the same epoch) once ``startup``
    trials are complete; ``halving``: ``SuccessiveHalvingPruner`` with its first
    rung at ``2 x patience`` epochs and a reduction factor of 3; ``none``: ``NopPruner``.
    """
    warmup = 2 * patience
    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=settings.startup, n_warmup_steps=warmup)
    if settings.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=warmup, reduction_factor=3)
    return optuna.pruners.NopPruner()


def finite(values: Sequence[float] | None) -> bool:
    """Whether a trial's objective values are all finite numbers."""
    return values is not None and all(math.isfinite(v) for v in values)
