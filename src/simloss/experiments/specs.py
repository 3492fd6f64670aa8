"""The facts of the experiments, declared once: losses, similarity parameters, metrics.

Every other part of :mod:`simloss.experiments` (the config, training, sweeps,
reports, figures and the command line) reads these tables; none keeps its own
copy. A dataset is a task (:mod:`simloss.experiments.task`: the four built-in
ones and any user's declaration file); a metric's facts (label, direction,
percent) live on its class in :mod:`simloss.metrics` and are read through
:func:`metric_spec`.

Example:
    >>> from simloss.experiments.task import builtin_task
    >>> swept_param(builtin_task("utkface"), "simloss").name, loss_spec("sord").task
    ('r', 'ordinal')
    >>> metric_spec("mae").higher_is_better, metric_spec("acc").percent, METRIC_ORDER
    (False, True, ('acc', 'mae', 'mse', 'sa', 'fsa'))
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from simloss.experiments.loss_catalog import LOSS_TASKS, LOSSES, LossParam, LossSpec, loss_spec
from simloss.experiments.task import BUILTIN_TASKS, MODEL_NAMES, SIMILARITY_KINDS, Task

__all__ = [
    "CIFAR_CLASS_SETS",
    "DATA_OPTIONS",
    "DEFAULT_RUNS",
    "LOSS",
    "LOSSES",
    "LOSS_TASKS",
    "METRIC_ORDER",
    "MODELS",
    "MONITORS",
    "PARAMS",
    "LossParam",
    "LossSpec",
    "MetricSpec",
    "ParamSpec",
    "SweptParam",
    "loss_spec",
    "metric_spec",
    "swept_param",
]


@dataclass(frozen=True)
class MetricSpec:
    """What a report needs to know about a metric, read from the metric's class.

    The facts live on the metric classes of :mod:`simloss.metrics`
    (``higher_is_better``, ``is_percent``, ``label``, as torchmetrics keeps
    them); :func:`metric_spec` reads them through
    :func:`simloss.metrics.metric_facts`. The one metric that is not a metric
    class is ``loss``, the validation loss early stopping can watch.

    Attributes:
        name: the key in run records (``metrics.val.<name>``).
        label: the column label in tables and figures.
        higher_is_better: the direction in which the metric improves (``None``:
            no direction, never bold or marked).
        percent: a fraction in [0, 1] that tables and figures show in percent
            (records and CSV files keep the fraction).
    """

    name: str
    label: str
    higher_is_better: bool | None
    percent: bool

    def scale(self) -> float:
        """The factor from the recorded value to the shown one (100 for percent)."""
        return 100.0 if self.percent else 1.0

    def header(self) -> str:
        """The column header: ``"Acc (%)"`` or ``"MAE"``."""
        return f"{self.label} (%)" if self.percent else self.label


#: The validation loss: early stopping can watch it; records do not hold it.
LOSS = "loss"


@functools.cache
def metric_spec(name: str) -> MetricSpec | None:
    """The facts of a record metric (or ``loss``), or ``None`` for a metric simloss does not know.

    Example:
        >>> metric_spec("fsa").label, metric_spec("mae").higher_is_better, metric_spec("f1")
        ('FSA', False, None)
        >>> metric_spec("mae_expectation").header()
        'MAE (expectation)'
    """
    if name == LOSS:
        return MetricSpec(LOSS, "Loss", False, False)
    from simloss.metrics import metric_facts

    try:
        facts = metric_facts(name)
    except KeyError:
        return None
    return MetricSpec(name, facts.label, facts.higher_is_better, facts.is_percent)


@dataclass(frozen=True)
class ParamSpec:
    """A similarity hyper-parameter that sweeps vary.

    Attributes:
        name: ``"r"`` or ``"l"`` (a :class:`~simloss.experiments.config.TrainConfig` field).
        similarities: the similarity sources that take it
            (:data:`simloss.experiments.task.SIMILARITY_KINDS`), the first one
            the default when a run gives the parameter alone.
        cce_value: the value at which the paper takes its CCE row (``r = 0.0`` is
            exactly cross-entropy; ``l = 0.99`` keeps only the diagonal, Table 2).
        meaning: what it is, for people.
    """

    name: str
    similarities: tuple[str, ...]
    cce_value: float
    meaning: str

    @property
    def similarity(self) -> str:
        """The default similarity source of the parameter."""
        return self.similarities[0]


def _kinds(param: str) -> tuple[str, ...]:
    return tuple(kind for kind, p in SIMILARITY_KINDS.items() if p == param)


#: The swept hyper-parameters (Kobs et al. 2020, Eq. 2 and Eq. 3).
PARAMS: Mapping[str, ParamSpec] = MappingProxyType(
    {
        "r": ParamSpec("r", _kinds("r"), 0.0, "class-order reduction factor, S_ij = r^|i-j|"),
        "l": ParamSpec(
            "l", ("embeddings", "names", "hierarchy"), 0.99, "lower bound of class similarity"
        ),
    }
)


@dataclass(frozen=True)
class SweptParam:
    """The parameter a sweep or a tuner varies for one loss on one dataset.

    Attributes:
        name: as in grids and records (``"r"``, ``"l"``, ``"alpha"``, ...).
        field: the :class:`~simloss.experiments.config.TrainConfig` setting
            that holds it (``"r"``, ``"l"`` or ``"loss_param"``).
        grid: the values a sweep takes by default.
        spec: the loss's own :class:`LossParam` (``None`` for ``r``/``l``,
            whose facts are in :data:`PARAMS`).
    """

    name: str
    field: str
    grid: tuple[float, ...]
    spec: LossParam | None


def swept_param(task: Task, loss: str) -> SweptParam | None:
    """What a sweep varies for ``loss`` on ``task`` (``None``: the loss has no parameter).

    SimLoss and soft labels take the task's similarity parameter (``r`` for
    ordered classes, ``l`` for class-name vectors, with the task's grid;
    ``None`` for a task whose similarity is the identity); the other losses
    their own (:attr:`LossSpec.param`, in ``loss_param``).

    Example:
        >>> from simloss.experiments.task import builtin_task
        >>> abalone = builtin_task("abalone")
        >>> swept_param(abalone, "simloss").name, swept_param(abalone, "sord").field
        ('r', 'loss_param')
        >>> swept_param(abalone, "corn") is None
        True
    """
    spec = loss_spec(loss)
    if spec.uses_similarity:
        if task.param is None:
            return None
        return SweptParam(task.param, task.param, task.grid, None)
    if spec.param is None:
        return None
    return SweptParam(spec.param.name, "loss_param", spec.param.grid, spec.param)


#: Models by name (see :mod:`simloss.experiments.models`); a model may also be a
#: factory ``"module:function"``.
MODELS: tuple[str, ...] = MODEL_NAMES
#: CIFAR-100 class sets: all 100, or the paper's 96 (four names had no word2vec vector).
CIFAR_CLASS_SETS: tuple[str, ...] = ("all", "paper96")
#: The paper's number of runs per grid value (Section 4).
DEFAULT_RUNS = 10
#: Settings that only some datasets' loaders take; a dataset whose loader does not
#: take one requires it at its default (nothing is silently ignored).
DATA_OPTIONS: tuple[str, ...] = (
    "cache_dir",
    "test_fraction",
    "min_age",
    "max_age",
    "cifar_classes",
    "skip_unreadable",
    "download",
)

#: The record metrics of every task, in the paper's column order.
METRIC_ORDER: tuple[str, ...] = tuple(
    dict.fromkeys(metric for task in BUILTIN_TASKS.values() for metric in task.metrics)
)
#: What early stopping can watch: a record metric (any decoder) or the validation loss.
MONITORS: tuple[str, ...] = (
    *dict.fromkeys(m for task in BUILTIN_TASKS.values() for m in task.record_metrics),
    LOSS,
)
