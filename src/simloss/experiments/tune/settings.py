"""What a tune is: the parameter and its range, the objectives, the budget and the method.

A :class:`TuneSettings` is fixed when a tune is created (stored with its study
and in ``tune.json``); a later command with other settings is refused, naming
them, as a sweep refuses other fixed settings. The tuned parameter is any
similarity parameter of :data:`simloss.experiments.specs.PARAMS` (``r``,
``l``, ...); its default range is the span of the dataset's paper grid, its
CCE value comes from the same table.

Example:
    >>> s = TuneSettings.create("abalone", objectives=["val_mae"], budget=600)
    >>> s.param, (s.low, s.high), s.directions, s.pruner, s.candidates
    ('r', (0.0, 0.9), ('minimize',), 'median', 1)
    >>> TuneSettings.create("abalone", objectives=["test_mae"], budget=600)
    Traceback (most recent call last):
    ...
    ValueError: Expected --objective to be val_<metric> (a validation metric: tuning on the test split would leak it into the choice), but found 'test_mae'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from optuna.distributions import FloatDistribution

from simloss.experiments.points import format_value, value_key
from simloss.experiments.report.stats import min_pairs_for_significance
from simloss.experiments.specs import PARAMS, metric_spec
from simloss.experiments.task import Task, builtin_task
from simloss.metrics import metric_goal

__all__ = [
    "DEFAULT_RUNS",
    "OBJECTIVE_PREFIX",
    "PRUNERS",
    "SAMPLERS",
    "TUNED_LOSS",
    "TuneSettings",
    "objective_metric",
    "parse_range",
]

#: Samplers ``tune`` offers (Optuna's): tree-structured Parzen estimators, Gaussian process.
SAMPLERS: tuple[str, ...] = ("tpe", "gp")
#: Pruners: Optuna's median rule, successive halving, or none.
PRUNERS: tuple[str, ...] = ("median", "halving", "none")
#: The loss whose similarity parameter a tune varies (its trials carry no ``loss``
#: attribute, as SimLoss's sweep trials); a peer loss's own parameter is a later step.
TUNED_LOSS = "simloss"
#: Objectives name a validation metric of the run records.
OBJECTIVE_PREFIX = "val_"
#: Runs (seeds) per confirmed value: the fewest with which the report's two-sided
#: Wilcoxon test against CCE can reach p < 0.05.
DEFAULT_RUNS = min_pairs_for_significance(0.05)


def objective_metric(objective: str, dataset: Task | str) -> str:
    """The record metric of an objective (``"val_mae"`` -> ``"mae"``), checked against the dataset.

    Example:
        >>> objective_metric("val_acc", "abalone"), objective_metric("val_qwk", "abalone")
        ('acc', 'qwk')
        >>> objective_metric("val_sa", "abalone")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected --objective to be one of ['val_acc', 'val_mae', 'val_mse', ...] for dataset 'abalone', but found 'val_sa'
    """
    if not isinstance(objective, str) or not objective.startswith(OBJECTIVE_PREFIX):
        raise ValueError(
            f"Expected --objective to be {OBJECTIVE_PREFIX}<metric> (a validation metric: "
            f"tuning on the test split would leak it into the choice), but found {objective!r}"
        )
    metric = objective[len(OBJECTIVE_PREFIX) :]
    spec = builtin_task(dataset) if isinstance(dataset, str) else dataset
    known = [f"{OBJECTIVE_PREFIX}{m}" for m in spec.record_metrics]
    facts = metric_spec(metric)
    if metric not in spec.record_metrics or facts is None or facts.higher_is_better is None:
        raise ValueError(
            f"Expected --objective to be one of {known} for dataset {spec.name!r}, but found "
            f"{objective!r}"
        )
    return metric


def parse_range(text: str) -> tuple[float, float]:
    """``"LOW:HIGH"`` as two floats (checked: finite, LOW < HIGH).

    Example:
        >>> parse_range("0.1:0.9")
        (0.1, 0.9)
    """
    parts = text.split(":") if isinstance(text, str) else []
    try:
        if len(parts) != 2:
            raise ValueError("needs LOW:HIGH")
        low, high = (float(p) for p in parts)
    except ValueError as exc:
        raise ValueError(f"Expected --range like '0:0.9' (LOW:HIGH), but found {text!r}") from exc
    return low, high


@dataclass(frozen=True)
class TuneSettings:
    """The fixed settings of a tune (use :meth:`create`, which fills the defaults and checks).

    Attributes:
        param: the tuned similarity parameter (a key of :data:`~simloss.experiments.specs.PARAMS`).
        low, high: its search range (both included).
        objectives: ``val_<metric>`` names, one (a single-objective study) or
            more (a multi-objective study: the result is a Pareto front).
        budget: training epochs the whole tune may spend (CCE, search and
            confirmation together).
        runs: seeds per confirmed value (CCE and each candidate): the spread
            reported and the pairs of the Wilcoxon test against CCE.
        candidates: search results confirmed with ``runs`` seeds at the end.
        sampler: ``"tpe"`` or ``"gp"`` (Optuna's ``TPESampler`` / ``GPSampler``).
        pruner: ``"median"``, ``"halving"`` or ``"none"``.
        seed: the sampler's seed (worker ``i`` of a command uses ``seed + i``).
        startup: search trials drawn at random before the sampler's model is used.
    """

    param: str
    low: float
    high: float
    objectives: tuple[str, ...]
    budget: int
    runs: int
    candidates: int
    sampler: str
    pruner: str
    seed: int
    startup: int

    # ----------------------------------------------------------------- create
    @classmethod
    def create(
        cls,
        dataset: Task | str,
        *,
        objectives: Sequence[str],
        budget: int,
        param: str | None = None,
        search_range: tuple[float, float] | None = None,
        runs: int = DEFAULT_RUNS,
        candidates: int | None = None,
        sampler: str = "tpe",
        pruner: str | None = None,
        seed: int = 0,
        startup: int = 3,
    ) -> TuneSettings:
        """The settings of a tune on ``dataset``, defaults filled and every value checked.

        Args:
            dataset: the dataset (its spec gives the default parameter and range).
            objectives: ``val_<metric>`` names (distinct; at least one).
            budget: training epochs for the whole tune (>= 1).
            param: the tuned parameter (default: the dataset's, e.g. ``r``).
            search_range: ``(low, high)`` (default: the span of the dataset's
                paper grid of ``param``; required for another parameter).
            runs: seeds per confirmed value (>= 2: a spread needs two runs).
            candidates: values confirmed at the end (default: one per
                objective: the best value, or the best of each objective).
            sampler: ``"tpe"`` or ``"gp"``.
            pruner: ``"median"``, ``"halving"`` or ``"none"``; default
                ``"median"`` for one objective with ``tpe``; ``"none"`` for
                several (Optuna prunes single-objective studies only) and with
                ``gp`` (Optuna's GPSampler learns nothing from pruned trials).
            seed: the sampler's seed (>= 0).
            startup: random search trials before the model (>= 1).

        Raises:
            ValueError, TypeError: a bad value, named.
        """
        spec = builtin_task(dataset) if isinstance(dataset, str) else dataset
        param = spec.param if param is None else param
        if param is None or param not in PARAMS:
            raise ValueError(f"Expected --param to be one of {list(PARAMS)}, but found {param!r}")
        if search_range is None:
            if param != spec.param:
                raise ValueError(
                    f"Expected --range for --param {param!r} (dataset {spec.name!r} has a paper "
                    f"grid of {spec.param!r} only), but found none"
                )
            search_range = (min(spec.grid), max(spec.grid))
        if isinstance(search_range, str) or not isinstance(search_range, Sequence):
            raise TypeError(
                "Expected --range to be a pair (low, high), but found "
                f"{type(search_range).__name__} {search_range!r}"
            )
        if len(search_range) != 2:
            raise ValueError(
                f"Expected --range to be a pair (low, high), but found {len(search_range)} "
                f"values {tuple(search_range)!r}"
            )
        low, high = (_number(v, "--range") for v in search_range)
        if not low < high:
            raise ValueError(f"Expected --range LOW < HIGH, but found {low}:{high}")
        cce = PARAMS[param].cce_value
        if not low <= cce <= high:
            raise ValueError(
                f"Expected --range to contain {param} = {format_value(cce)} (CCE, the "
                f"search's first point), but found {format_value(low)}:{format_value(high)}"
            )
        if isinstance(objectives, str) or not isinstance(objectives, Sequence):
            raise TypeError(
                "Expected --objective values as a list of names such as ['val_mae'], but found "
                f"{type(objectives).__name__} {objectives!r}"
            )
        if not objectives:
            raise ValueError(f"Expected at least one --objective, but found {objectives!r}")
        objectives = tuple(objectives)
        for objective in objectives:
            objective_metric(objective, dataset)
        repeated = sorted({o for o in objectives if objectives.count(o) > 1})
        if repeated:
            raise ValueError(f"Expected distinct --objective values, but found {repeated} twice")
        multi = len(objectives) > 1
        if pruner is None:
            # GPSampler ignores pruned trials: pruning would hide what it needs.
            pruner = "none" if multi or sampler == "gp" else "median"
        if pruner not in PRUNERS:
            raise ValueError(
                f"Expected --pruner to be one of {list(PRUNERS)}, but found {pruner!r}"
            )
        if multi and pruner != "none":
            raise ValueError(
                f"Expected --pruner none with {len(objectives)} objectives (Optuna prunes "
                f"single-objective studies only), but found {pruner!r}"
            )
        if sampler not in SAMPLERS:
            raise ValueError(
                f"Expected --sampler to be one of {list(SAMPLERS)}, but found {sampler!r}"
            )
        candidates = len(objectives) if candidates is None else candidates
        _int_at_least(budget, 1, "--budget")
        _int_at_least(runs, 2, "--runs")
        _int_at_least(candidates, 1, "--candidates")
        _int_at_least(seed, 0, "--sampler-seed")
        _int_at_least(startup, 1, "startup")
        return cls(
            param=param,
            low=value_key(low),
            high=value_key(high),
            objectives=objectives,
            budget=budget,
            runs=runs,
            candidates=candidates,
            sampler=sampler,
            pruner=pruner,
            seed=seed,
            startup=startup,
        )

    # --------------------------------------------------------------- derived
    @property
    def metrics(self) -> tuple[str, ...]:
        """The record metric of each objective (``"val_mae"`` -> ``"mae"``)."""
        return tuple(o[len(OBJECTIVE_PREFIX) :] for o in self.objectives)

    @property
    def directions(self) -> tuple[str, ...]:
        """Optuna's direction of each objective, from the metric's class."""
        return tuple("maximize" if metric_goal(m) == "max" else "minimize" for m in self.metrics)

    @property
    def multi(self) -> bool:
        """Whether the study has several objectives (its result is a Pareto front)."""
        return len(self.objectives) > 1

    @property
    def cce_value(self) -> float:
        """The parameter's value at which SimLoss is plain cross-entropy (the baseline)."""
        return PARAMS[self.param].cce_value

    @property
    def step(self) -> float:
        """The resolution of the search: a power of ten that divides the range into at
        least 100 steps, with ``low``, ``high`` and CCE on its grid (0.001 for [0, 0.9]).

        Sampled values are multiples of it, so they print shortly (``0.494``) and a
        value proposed twice is recognised as the same point.

        Example:
            >>> TuneSettings.create("abalone", objectives=["val_mae"], budget=9).step
            0.001
        """
        exponent = math.floor(math.log10((self.high - self.low) / 100.0))
        while True:
            step = 10.0**exponent
            points = (self.low, self.high, self.cce_value)
            if all(abs(v / step - round(v / step)) < 1e-6 for v in points):
                return value_key(step)
            exponent -= 1

    @property
    def min_gap(self) -> float:
        """The least distance between two confirmed candidates: 5 % of the range."""
        return 0.05 * (self.high - self.low)

    def distribution(self) -> FloatDistribution:
        """The parameter's Optuna distribution, shared by every trial of the tune.

        Samplers model only parameters whose distribution is the same in every
        trial (Optuna's intersection search space), so CCE's and the
        confirmation's trials carry this one too.
        """
        return FloatDistribution(self.low, self.high, step=self.step)

    def describe(self) -> str:
        """One line for people: ``"r in [0.0, 0.9] for val_mae, 600 epochs"``."""
        return (
            f"{self.param} in [{format_value(self.low)}, {format_value(self.high)}] for "
            f"{', '.join(self.objectives)}, {self.budget} epochs"
        )

    # --------------------------------------------------------------- storage
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (objectives as a list)."""
        data = asdict(self)
        data["objectives"] = list(self.objectives)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TuneSettings:
        """The inverse of :meth:`to_dict` (keys checked)."""
        names = {f.name for f in fields(cls)}
        if not isinstance(data, Mapping) or set(data) != names:
            raise ValueError(
                f"Expected tune settings with the keys {sorted(names)}, found "
                f"{sorted(data) if isinstance(data, Mapping) else type(data).__name__}"
            )
        return cls(**{**data, "objectives": tuple(data["objectives"])})


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"Expected {name} to hold finite numbers, but found {value!r}")
    return float(value)


def _int_at_least(value: Any, low: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"Expected {name} to be an int >= {low}, but found {value!r}")
