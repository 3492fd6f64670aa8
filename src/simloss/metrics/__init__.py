"""Metrics that measure how bad the mistakes are: functions and accumulating classes.

Every metric is one declaration in one module (:class:`MetricDeclaration`): a
pure function over a whole set, the statistics (sums) it is computed from, its
facts (record key, label, direction, percent, what it needs of a task) and which
runs record it. From the declaration come its accumulating class, a
:class:`torchmetrics.Metric` (``update``/``compute``/``reset``, states summed
across batches and processes, usable in a ``MetricCollection`` and by
Lightning's ``self.log``), the facts of every record key
(:func:`metric_facts`) and the metrics of a training run
(:func:`compute_metrics`, :func:`metric_keys`). See ``docs/metrics.md``.

The classes are built on first use (``from simloss.metrics import Accuracy``):
torchmetrics, a dependency of simloss, is imported only then.

Example:
    >>> import torch
    >>> from simloss.metrics import Accuracy, accuracy
    >>> preds, target = torch.tensor([0, 2, 1, 1]), torch.tensor([0, 1, 1, 1])
    >>> metric = Accuracy()
    >>> metric.update(preds[:2], target[:2]); metric.update(preds[2:], target[2:])
    >>> float(metric.compute()) == float(accuracy(preds, target)) == 0.75
    True
"""

from typing import Any

from simloss.metrics._batch import Batch
from simloss.metrics._compute import compute_metrics, metric_keys
from simloss.metrics._declaration import (
    MetricDeclaration,
    MetricFacts,
    MetricTask,
    declarations,
    decoded_key,
    find,
    metric_facts,
    metric_goal,
    register,
)
from simloss.metrics.decoders import (
    CLASS_DECODERS,
    DECODERS,
    similarity_cost,
    value_cost,
)
from simloss.metrics.distribution import PredictedDistribution, mean_predicted_distribution
from simloss.metrics.geometric_mean import geometric_mean_sensitivity
from simloss.metrics.hierarchical import (
    average_hierarchical_distance,
    hierarchical_f1,
    hierarchical_precision,
    hierarchical_recall,
)
from simloss.metrics.hierarchy import ClassHierarchy
from simloss.metrics.kappa import cohen_kappa
from simloss.metrics.macro_error import average_mean_absolute_error, maximum_mean_absolute_error
from simloss.metrics.off_by_k import off_by_k_accuracy
from simloss.metrics.rps import ranked_probability_score
from simloss.metrics.sensitivity import minimum_sensitivity
from simloss.metrics.severity import mistake_severity
from simloss.metrics.similarity_score import mean_similarity
from simloss.metrics.superclass import failed_superclass_accuracy, superclass_accuracy
from simloss.metrics.top_k import accuracy
from simloss.metrics.value_error import mean_absolute_error, mean_squared_error

#: The accumulating classes of every registered metric (built on first access), read
#: from the registry: a metric module added to the package is listed with no other edit.
CLASSES: tuple[str, ...] = tuple(sorted({d.class_name for d in declarations()}))

#: The functions of every registered metric (one not imported above comes through
#: :func:`__getattr__`).
FUNCTIONS: tuple[str, ...] = tuple(sorted({d.function.__name__ for d in declarations()}))


def __getattr__(name: str) -> Any:
    """A metric's class (built on first use) or function, found by name in the registry:
    a metric module added to the package is reachable here without another edit."""
    declaration = find(name)
    if declaration is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name == declaration.class_name:
        return declaration.metric_class
    return declaration.function


def __dir__() -> list[str]:
    names = {d.class_name for d in declarations()} | {d.function.__name__ for d in declarations()}
    return sorted(set(globals()) | names)


__all__ = [
    *CLASSES,
    "CLASS_DECODERS",
    "DECODERS",
    "Batch",
    "ClassHierarchy",
    "MetricDeclaration",
    "MetricFacts",
    "MetricTask",
    "PredictedDistribution",
    "accuracy",
    "average_hierarchical_distance",
    "average_mean_absolute_error",
    "cohen_kappa",
    "compute_metrics",
    "declarations",
    "decoded_key",
    "failed_superclass_accuracy",
    "geometric_mean_sensitivity",
    "hierarchical_f1",
    "hierarchical_precision",
    "hierarchical_recall",
    "maximum_mean_absolute_error",
    "mean_absolute_error",
    "mean_predicted_distribution",
    "mean_similarity",
    "mean_squared_error",
    "metric_facts",
    "metric_goal",
    "metric_keys",
    "minimum_sensitivity",
    "mistake_severity",
    "off_by_k_accuracy",
    "ranked_probability_score",
    "register",
    "similarity_cost",
    "superclass_accuracy",
    "value_cost",
]
# The function of a metric module added to the package, with no edit here.
__all__ += [name for name in FUNCTIONS if name not in __all__]
