"""The ranked probability score (RPS): the proper scoring rule of ordinal forecasts.

.. math::
    \\mathrm{RPS} = \\frac{1}{N} \\sum_{n=1}^{N} \\sum_{k=1}^{C}
        \\Big(\\sum_{j \\le k} p_{nj} - [y_n \\le k]\\Big)^2

with the classes in their order (by ``class_values`` when given, else by index):
the squared distance between the predicted and the observed cumulative
distribution, in [0, C - 1], lower is better (Epstein 1969; Janitza, Tutz &
Boulesteix 2016). It reads the whole distribution, so it needs scores; not
divided by C - 1, as dlordinal's and skordinal's ``ranked_probability_score``.

Example:
    >>> import torch
    >>> from simloss.metrics import RankedProbabilityScore
    >>> probs = torch.tensor([[0.2, 0.4, 0.2, 0.2], [0.7, 0.1, 0.1, 0.1],
    ...                       [0.5, 0.05, 0.1, 0.35], [0.1, 0.05, 0.65, 0.2]], dtype=torch.float64)
    >>> metric = RankedProbabilityScore(input_type="probs")
    >>> metric.update(probs[:1], torch.tensor([0])); metric.update(probs[1:], torch.tensor([0, 3, 2]))
    >>> round(float(metric.compute()), 6)
    0.506875

References:
    Epstein. "A scoring system for probability forecasts of ranked categories."
    Journal of Applied Meteorology 8(6), 1969.
    Janitza, Tutz, Boulesteix. "Random forest for ordinal responses: prediction and
    variable selection." Computational Statistics & Data Analysis 96, 2016.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from simloss.metrics._batch import Batch
from simloss.metrics._checks import (
    check_class_values,
    check_input_type,
    check_num_classes,
    resolve_num_classes,
)
from simloss.metrics._declaration import MetricDeclaration, MetricTask, register
from simloss.metrics._stats import ArrayLike, Stats, count, ratio
from simloss.metrics.value_error import classes_source

__all__ = ["RANKED_PROBABILITY_SCORE", "ranked_probability_score"]


def _configure(*, class_values: object, num_classes: object, input_type: object) -> dict[str, Any]:
    classes = check_num_classes(num_classes)
    values = None if class_values is None else check_class_values(class_values, copy=False)
    if values is not None:
        classes = resolve_num_classes(classes, values.numel(), "class_values")
    return {
        "class_values": values,
        "num_classes": classes,
        "input_type": check_input_type(input_type),
    }


def _stats(
    batch: Batch, *, class_values: Tensor | None, num_classes: int | None, input_type: str
) -> Stats:
    batch.check_classes(num_classes, classes_source(class_values))
    probs = batch.probs(input_type, "for the ranked probability score")
    classes = probs.shape[1]
    if class_values is None:
        order = torch.arange(classes, device=probs.device)
    else:
        order = torch.argsort(class_values.to(probs.device), stable=True)
    position = torch.empty_like(order)
    position[order] = torch.arange(classes, device=probs.device)
    predicted = probs[:, order].cumsum(dim=1)
    observed = (
        torch.arange(classes, device=probs.device)[None, :] >= position[batch.target][:, None]
    )
    score = (predicted - observed.to(predicted.dtype)).square().sum(dim=1)
    return score.sum(), count(score)


def ranked_probability_score(
    preds: Tensor,
    target: Tensor,
    *,
    class_values: ArrayLike | None = None,
    ignore_index: int | None = None,
    num_classes: int | None = None,
    input_type: str = "logits",
) -> Tensor:
    r"""The ranked probability score of the predicted distributions (ordered classes).

    See the module for the formula.

    Args:
        preds: scores (N, C): logits, or probabilities with ``input_type="probs"``.
        target: integer class indices (N,).
        class_values: (C,) values that order the classes (default: index order); only
            their order matters.
        ignore_index: target value whose examples are left out.
        num_classes: C, checked against the scores' columns.
        input_type: ``"logits"`` (default, softmax applied) or ``"probs"`` (checked).

    Returns:
        A 0-dim float64 tensor in [0, C - 1]; ``nan`` when no example is counted.

    Example:
        >>> import torch
        >>> probs = torch.tensor([[0.25, 0.5, 0.25]], dtype=torch.float64)
        >>> float(ranked_probability_score(probs, torch.tensor([1]), input_type="probs"))
        0.125
    """
    return RANKED_PROBABILITY_SCORE.evaluate(
        preds,
        target,
        class_values=class_values,
        ignore_index=ignore_index,
        num_classes=num_classes,
        input_type=input_type,
    )


def _record(task: MetricTask) -> Iterator[dict[str, Any]]:
    yield {
        "class_values": task.class_values,
        "num_classes": task.num_classes,
        "input_type": task.input_type,
    }


RANKED_PROBABILITY_SCORE = register(
    MetricDeclaration(
        key="rps",
        label="RPS",
        class_name="RankedProbabilityScore",
        function=ranked_probability_score,
        configure=_configure,
        stats=_stats,
        compute=ratio,
        higher_is_better=False,
        needs=frozenset({"ordered", "scores"}),
        record=_record,
        class_doc="""Accumulating ranked probability score; see
    :func:`simloss.metrics.ranked_probability_score`.

    Args: those of the function after ``preds`` and ``target`` (``class_values``,
    ``ignore_index``, ``num_classes``, ``input_type``), and torchmetrics'
    ``process_group``, ...
    """,
    )
)
