"""The geometric mean of the per-class sensitivities (GMS), a metric of imbalanced data.

.. math::
    \\mathrm{GMS} = \\Big(\\prod_{c \\in K} \\mathrm{recall}_c\\Big)^{1/|K|}

over the classes :math:`K` with at least one target example (classes absent from
the targets are left out, as for :func:`~simloss.metrics.minimum_sensitivity`).
One class never recognised makes it 0. The statistics are the per-class hits and
counts of :mod:`simloss.metrics.sensitivity`; ``nan`` on empty input.

Example:
    >>> import torch
    >>> from simloss.metrics import GeometricMeanSensitivity
    >>> metric = GeometricMeanSensitivity(num_classes=3)
    >>> metric.update(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]))
    >>> metric.update(torch.tensor([2, 2]), torch.tensor([2, 2]))
    >>> round(float(metric.compute()), 4), metric.key  # (1/2 * 1 * 1) ** (1/3)
    (0.7937, 'gms')

References:
    Kubat, Matwin. "Addressing the Curse of Imbalanced Training Sets: One-Sided
    Selection." ICML 1997.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from simloss.metrics._declaration import MetricDeclaration, MetricTask, register
from simloss.metrics._stats import ArrayLike
from simloss.metrics.decoders import CLASS_DECODERS
from simloss.metrics.sensitivity import (
    class_recalls,
    configure_classes,
    per_class_hits,
    per_class_states,
)

__all__ = ["GEOMETRIC_MEAN_SENSITIVITY", "geometric_mean_sensitivity"]


def _geometric_mean(hits: Tensor, count: Tensor) -> Tensor:
    recalls = class_recalls(hits, count)
    if recalls.numel() == 0:
        return torch.full((), float("nan"), dtype=recalls.dtype, device=recalls.device)
    return recalls.log().mean().exp()  # log 0 = -inf: one unrecognised class gives 0


def geometric_mean_sensitivity(
    preds: Tensor,
    target: Tensor,
    *,
    ignore_index: int | None = None,
    num_classes: int | None = None,
    decoder: str = "argmax",
    input_type: str = "logits",
    cost: ArrayLike | None = None,
) -> Tensor:
    r"""The geometric mean of the per-class recalls (classes without targets left out).

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        ignore_index: target value whose examples are left out.
        num_classes: C (the class needs it).
        decoder: ``"argmax"`` (default), ``"median"`` or ``"min_risk"``.
        input_type: ``"logits"`` (default) or ``"probs"``, for the decoders.
        cost: (C, C) cost of ``"min_risk"``.

    Returns:
        A 0-dim float64 tensor in [0, 1]; ``nan`` when no example is counted.

    Example:
        >>> import torch
        >>> target = torch.tensor([0, 0, 1, 2, 3, 0, 0])
        >>> preds = torch.tensor([0, 1, 1, 2, 3, 0, 1])
        >>> round(float(geometric_mean_sensitivity(preds, target)), 4)  # (1/2) ** (1/4)
        0.8409
    """
    return GEOMETRIC_MEAN_SENSITIVITY.evaluate(
        preds,
        target,
        ignore_index=ignore_index,
        num_classes=num_classes,
        decoder=decoder,
        input_type=input_type,
        cost=cost,
    )


def _record(task: MetricTask) -> Iterator[dict[str, Any]]:
    for decoding in task.decoding(("argmax", "min_risk"), always_argmax=True):
        yield {"num_classes": task.num_classes, **decoding}


GEOMETRIC_MEAN_SENSITIVITY = register(
    MetricDeclaration(
        key="gms",
        label="GMS",
        class_name="GeometricMeanSensitivity",
        function=geometric_mean_sensitivity,
        configure=configure_classes,
        stats=per_class_hits,
        compute=_geometric_mean,
        states=per_class_states,
        higher_is_better=True,
        is_percent=True,
        needs=frozenset({"ordered"}),
        decoders=CLASS_DECODERS,
        record=_record,
        class_doc="""Accumulating geometric mean of sensitivities; see
    :func:`simloss.metrics.geometric_mean_sensitivity`.

    Args: those of the function after ``preds`` and ``target`` (``ignore_index``,
    ``num_classes``: needed, ``decoder``, ``input_type``, ``cost``), and torchmetrics'
    ``process_group``, ...
    """,
    )
)
