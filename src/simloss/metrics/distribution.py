"""The mean predicted distribution, overall and per true class (Figure 2 of Kobs et al. 2020).

Example:
    >>> import torch
    >>> from simloss.metrics import MeanPredictedDistribution
    >>> metric = MeanPredictedDistribution(2, input_type="probs")
    >>> metric.update(torch.tensor([[0.2, 0.8]]), torch.tensor([1]))
    >>> metric.update(torch.tensor([[0.6, 0.4]]), torch.tensor([1]))
    >>> [round(x, 4) for x in metric.compute().per_class[1].tolist()]
    [0.4, 0.6]
    >>> metric.compute().class_counts.tolist()
    [0, 2]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor

from simloss.metrics._batch import Batch
from simloss.metrics._checks import check_input_type, check_num_classes, check_tensor
from simloss.metrics._declaration import MetricDeclaration, State, register
from simloss.metrics._stats import Stats, count, ratio

__all__ = ["MEAN_PREDICTED_DISTRIBUTION", "PredictedDistribution", "mean_predicted_distribution"]


class PredictedDistribution(NamedTuple):
    """Mean predicted class distribution, overall and per true class.

    Attributes:
        mean: (C,) mean of the predicted probability vectors over all counted examples
            (``nan`` everywhere when there is none).
        per_class: (C, C) row ``c`` is the mean predicted distribution over the examples
            of true class ``c``; rows of classes without an example are ``nan``.
            ``None`` when no target was given.
        class_counts: (C,) int64 number of counted examples per true class (the real
            label distribution is ``class_counts / class_counts.sum()``); ``None``
            when no target was given.
    """

    mean: Tensor
    per_class: Tensor | None
    class_counts: Tensor | None


def _configure(*, num_classes: object, input_type: object) -> dict[str, Any]:
    return {
        "num_classes": check_num_classes(num_classes),
        "input_type": check_input_type(input_type),
    }


def _states(config: Mapping[str, Any]) -> tuple[State, ...]:
    classes = config["num_classes"]
    if classes is None:
        raise TypeError("Expected `num_classes` to be a positive int, but found None")
    return (
        ("prob_sum", (classes,), torch.float64),
        ("per_class_sum", (classes, classes), torch.float64),
        ("class_counts", (classes,), torch.int64),
        ("total", (), torch.int64),
    )


def _stats(batch: Batch, *, num_classes: int | None, input_type: str) -> Stats:
    """(sum of probabilities (C,), per-class sums (C, C), class counts (C,), examples)."""
    batch.check_classes(num_classes)
    probs = batch.probs(input_type, "for the predicted distribution")
    classes = probs.shape[1]
    per_class = torch.zeros(classes, classes, dtype=probs.dtype, device=probs.device)
    per_class.index_add_(0, batch.target, probs)
    counts = torch.bincount(batch.target, minlength=classes)
    return probs.sum(dim=0), per_class, counts, count(batch.target)


def _compute(
    prob_sum: Tensor, per_class_sum: Tensor, counts: Tensor, total: Tensor
) -> PredictedDistribution:
    mean = ratio(prob_sum, total)
    per_class = ratio(per_class_sum, counts[:, None])
    return PredictedDistribution(mean, per_class, counts.clone())


def mean_predicted_distribution(
    preds: Tensor,
    target: Tensor | None = None,
    num_classes: int | None = None,
    *,
    input_type: str = "logits",
    ignore_index: int | None = None,
) -> PredictedDistribution:
    r"""Mean predicted probability distribution, over all examples and per true class.

    .. math::
        \bar p = \frac{1}{N} \sum_{n=1}^{N} p_n, \qquad
        \bar p^{(c)} = \frac{1}{N_c} \sum_{n : y_n = c} p_n

    with :math:`p_n` the softmax of the logits (or the given probabilities). These
    are the curves of Figure 2 of Kobs et al. 2020: the overall mean against the
    real label distribution (a), and the mean over the examples of one class (b).

    Args:
        preds: scores (N, C): logits, or probabilities with ``input_type="probs"``
            (checked to be in [0, 1] with rows summing to 1 within 1e-3, 2e-2 for
            16-bit dtypes).
        target: integer class indices (N,), needed for the per-class means.
        num_classes: C, checked against ``preds.shape[1]`` when given (the class
            needs it up front: its states have a fixed shape).
        input_type: ``"logits"`` (default, like the loss) or ``"probs"``.
        ignore_index: target value whose examples are left out (needs ``target``).

    Returns:
        A :class:`PredictedDistribution` ``(mean, per_class, class_counts)`` of float64
        tensors (counts int64); ``per_class`` and ``class_counts`` are ``None``
        without a target, and rows of ``per_class`` for classes with no example are
        ``nan``.

    Example:
        >>> probs = torch.tensor([[0.5, 0.5, 0.0], [0.1, 0.9, 0.0], [0.3, 0.3, 0.4]])
        >>> result = mean_predicted_distribution(probs, torch.tensor([0, 0, 1]), input_type="probs")
        >>> [round(x, 4) for x in result.mean.tolist()]
        [0.3, 0.5667, 0.1333]
        >>> [round(x, 4) for x in result.per_class[0].tolist()]
        [0.3, 0.7, 0.0]
        >>> result.per_class[2].isnan().all().item()
        True
        >>> result.class_counts.tolist()
        [2, 1, 0]
    """
    preds = check_tensor(preds, "preds")
    if preds.ndim != 2 or not preds.is_floating_point():
        raise TypeError(
            "Expected `preds` to be class scores (logits or probabilities) of floating dtype and "
            f"shape (N, C), but found dtype {preds.dtype} and shape {tuple(preds.shape)}"
        )
    if target is None:
        if ignore_index is not None:
            raise ValueError("Expected `target` when `ignore_index` is given, but found None")
        zeros = torch.zeros(preds.shape[0], dtype=torch.int64, device=preds.device)
        result = MEAN_PREDICTED_DISTRIBUTION.evaluate(
            preds, zeros, num_classes=num_classes, input_type=input_type
        )
        return PredictedDistribution(result.mean, None, None)
    result = MEAN_PREDICTED_DISTRIBUTION.evaluate(
        preds, target, num_classes=num_classes, input_type=input_type, ignore_index=ignore_index
    )
    distribution: PredictedDistribution = result
    return distribution


MEAN_PREDICTED_DISTRIBUTION = register(
    MetricDeclaration(
        key=None,
        label="Mean predicted distribution",
        class_name="MeanPredictedDistribution",
        function=mean_predicted_distribution,
        configure=_configure,
        stats=_stats,
        compute=_compute,
        states=_states,
        higher_is_better=None,
        needs=frozenset({"scores"}),
        class_doc="""Accumulating mean predicted distribution, overall and per true class.

    See :func:`simloss.metrics.mean_predicted_distribution`. ``compute()`` returns a
    :class:`~simloss.metrics.PredictedDistribution` ``(mean, per_class, class_counts)``;
    rows of ``per_class`` for classes without an example are ``nan``.

    Args:
        num_classes: C (fixes the state shapes, needed before the first batch).
        input_type: ``"logits"`` (default) or ``"probs"``.
        ignore_index: target value whose examples are left out.
        process_group, ...: torchmetrics' own arguments.
    """,
    )
)
