"""What a report needs to know about a metric, asked from the metric classes by record key.

The facts live on the metric classes (``higher_is_better``, ``is_percent``,
``key``, ``label``, see :mod:`simloss.metrics.modules`); this module only maps
the keys of :func:`~simloss.metrics.compute_metrics` and of training records
(``"acc"``, ``"mae"``, ``"mae_expectation"``, ``"sa"``, ...) to them, so a
report never keeps its own table of directions or labels.
"""

from __future__ import annotations

from typing import NamedTuple

from simloss.metrics._checks import DECODERS
from simloss.metrics.functional import decoded_key
from simloss.metrics.modules import (
    Accuracy,
    FailedSuperclassAccuracy,
    MeanAbsoluteError,
    MeanSimilarity,
    MeanSquaredError,
    MistakeSeverity,
    SuperclassAccuracy,
    _SumMetric,
    decoded_label,
)

__all__ = ["RECORD_METRICS", "MetricFacts", "metric_facts"]

#: The metric class behind each plain record key (decoded keys add ``_<decoder>``).
RECORD_METRICS: dict[str, type[_SumMetric]] = {
    cls._base_key: cls
    for cls in (
        Accuracy,
        MeanAbsoluteError,
        MeanSquaredError,
        SuperclassAccuracy,
        FailedSuperclassAccuracy,
        MeanSimilarity,
        MistakeSeverity,
    )
}
_DECODABLE = (MeanAbsoluteError, MeanSquaredError)


class MetricFacts(NamedTuple):
    """The facts of one record key, read from its metric class."""

    key: str  # the record key, e.g. "mae_expectation"
    label: str  # e.g. "MAE (expectation)"
    higher_is_better: bool | None
    is_percent: bool  # a fraction in [0, 1] shown as a percentage
    metric: type[_SumMetric]  # the accumulating class, e.g. MeanAbsoluteError
    decoder: str  # "argmax" unless the key names another decoder


def metric_facts(key: str) -> MetricFacts:
    """The label, direction and percent flag of a record key, from its metric class.

    Args:
        key: a key of :func:`~simloss.metrics.compute_metrics` or of a training
            record's ``metrics``: ``"acc"``, ``"mae"``, ``"mse"``, ``"sa"``,
            ``"fsa"``, ``"mean_similarity"``, ``"mistake_severity"``, or an
            error metric with a decoder, ``"mae_expectation"``, ``"mse_median"``, ...

    Raises:
        KeyError: an unknown key (the message lists the known ones).

    Example:
        >>> metric_facts("acc")[:4]
        ('acc', 'Acc', True, True)
        >>> metric_facts("mae_expectation")[:4]
        ('mae_expectation', 'MAE (expectation)', False, False)
    """
    base, decoder = key, "argmax"
    for name in DECODERS[1:]:
        if key.endswith(f"_{name}") and key[: -len(name) - 1] in RECORD_METRICS:
            base, decoder = key[: -len(name) - 1], name
    cls = RECORD_METRICS.get(base)
    if cls is None or (decoder != "argmax" and cls not in _DECODABLE):
        known = sorted(RECORD_METRICS) + [
            decoded_key(c._base_key, d) for c in _DECODABLE for d in DECODERS[1:]
        ]
        raise KeyError(f"Expected a metric key among {known}, but found {key!r}")
    return MetricFacts(
        key=key,
        label=decoded_label(cls._base_label, decoder),
        higher_is_better=cls.higher_is_better,
        is_percent=cls.is_percent,
        metric=cls,
        decoder=decoder,
    )
