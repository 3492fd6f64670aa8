"""Metrics that measure how bad the mistakes are: functions and accumulating classes.

Every metric exists twice, in the torchmetrics manner: a pure function over a whole
set (:mod:`simloss.metrics.functional`) and a class with ``update(preds, target)``,
``compute()`` and ``reset()`` that accumulates sums (:mod:`simloss.metrics.modules`),
so any batching gives the value of the whole set. See ``docs/metrics.md``.

Example:
    >>> import torch
    >>> from simloss.metrics import Accuracy, accuracy
    >>> preds, target = torch.tensor([0, 2, 1, 1]), torch.tensor([0, 1, 1, 1])
    >>> metric = Accuracy()
    >>> metric.update(preds[:2], target[:2]); metric.update(preds[2:], target[2:])
    >>> float(metric.compute()) == float(accuracy(preds, target)) == 0.75
    True
"""

from simloss.metrics._checks import DECODERS
from simloss.metrics.facts import RECORD_METRICS, MetricFacts, metric_facts
from simloss.metrics.functional import (
    PredictedDistribution,
    accuracy,
    compute_metrics,
    decoded_key,
    failed_superclass_accuracy,
    mean_absolute_error,
    mean_predicted_distribution,
    mean_similarity,
    mean_squared_error,
    mistake_severity,
    off_by_k_accuracy,
    superclass_accuracy,
)
from simloss.metrics.modules import (
    Accuracy,
    FailedSuperclassAccuracy,
    MeanAbsoluteError,
    MeanPredictedDistribution,
    MeanSimilarity,
    MeanSquaredError,
    MistakeSeverity,
    OffByKAccuracy,
    SuperclassAccuracy,
)

__all__ = [
    "DECODERS",
    "RECORD_METRICS",
    "Accuracy",
    "FailedSuperclassAccuracy",
    "MeanAbsoluteError",
    "MeanPredictedDistribution",
    "MeanSimilarity",
    "MeanSquaredError",
    "MetricFacts",
    "MistakeSeverity",
    "OffByKAccuracy",
    "PredictedDistribution",
    "SuperclassAccuracy",
    "accuracy",
    "compute_metrics",
    "decoded_key",
    "failed_superclass_accuracy",
    "mean_absolute_error",
    "mean_predicted_distribution",
    "mean_similarity",
    "mean_squared_error",
    "metric_facts",
    "mistake_severity",
    "off_by_k_accuracy",
    "superclass_accuracy",
]
