"""Minimum sensitivity (MS): the recall of the worst-recognised class.

.. math::
    \\mathrm{MS} = \\min_{c \\in K} \\frac{|\\{n : y_n = c, \\hat y_n = c\\}|}{|\\{n : y_n = c\\}|}

over the classes :math:`K` with at least one target example (a class absent
from the targets has no recall and is left out, as skordinal does; dlordinal's
``minimum_sensitivity`` counts a class seen only among the predictions as 0).
``nan`` on empty input. The statistics are per-class hits and counts.

Example:
    >>> import torch
    >>> from simloss.metrics import MinimumSensitivity
    >>> metric = MinimumSensitivity(num_classes=4)
    >>> metric.update(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 0, 1, 2]))
    >>> metric.update(torch.tensor([3, 0, 1]), torch.tensor([3, 0, 0]))
    >>> float(metric.compute())
    0.5

References:
    Cruz-Ramírez, Hervás-Martínez, Sánchez-Monedero, Gutiérrez. "Metrics to guide a
    multi-objective evolutionary algorithm for ordinal classification." Neurocomputing 135, 2014.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor

from simloss.metrics._batch import Batch
from simloss.metrics._checks import check_num_classes, float_dtype
from simloss.metrics._declaration import MetricDeclaration, MetricTask, State, register
from simloss.metrics._stats import ArrayLike, Stats
from simloss.metrics.decoders import CLASS_DECODERS, check_decoding

__all__ = ["MINIMUM_SENSITIVITY", "class_recalls", "minimum_sensitivity", "per_class_hits"]


def configure_classes(
    *, num_classes: object, decoder: object, input_type: object, cost: object
) -> dict[str, Any]:
    """The checked configuration of a per-class metric on decoded classes."""
    classes = check_num_classes(num_classes)
    decoding = check_decoding(decoder, input_type, cost, num_classes=classes)
    return {"num_classes": classes, **decoding}


def per_class_states(config: Mapping[str, Any]) -> tuple[State, ...]:
    """States of per-class hits and counts, (C,) int64 each."""
    classes = config["num_classes"]
    if classes is None:
        raise TypeError("Expected `num_classes` (the states are per class), but found None")
    return (("hits", (classes,), torch.int64), ("count", (classes,), torch.int64))


def per_class_hits(
    batch: Batch,
    *,
    num_classes: int | None,
    decoder: str,
    input_type: str,
    cost: Tensor | None,
) -> Stats:
    """Per target class: correct predictions and examples, (C,) int64 each."""
    classes = batch.check_classes(num_classes)
    pred = batch.classes(decoder, input_type=input_type, cost=cost)
    if classes is None:  # indices without a class count: the largest index seen
        classes = int(max(pred.max(), batch.target.max())) + 1 if pred.numel() else 1
    hits = torch.bincount(batch.target[pred == batch.target], minlength=classes)
    return hits, torch.bincount(batch.target, minlength=classes)


def class_recalls(hits: Tensor, count: Tensor) -> Tensor:
    """The recall of each class with a target example (float64)."""
    present = count > 0
    return hits[present].to(float_dtype(hits.device)) / count[present]


def _minimum(hits: Tensor, count: Tensor) -> Tensor:
    recalls = class_recalls(hits, count)
    if recalls.numel() == 0:
        return torch.full((), float("nan"), dtype=recalls.dtype, device=recalls.device)
    return recalls.min()


def minimum_sensitivity(
    preds: Tensor,
    target: Tensor,
    *,
    ignore_index: int | None = None,
    num_classes: int | None = None,
    decoder: str = "argmax",
    input_type: str = "logits",
    cost: ArrayLike | None = None,
) -> Tensor:
    r"""Minimum sensitivity: the smallest per-class recall (classes without targets left out).

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
        >>> float(minimum_sensitivity(preds, target))
        0.5
    """
    return MINIMUM_SENSITIVITY.evaluate(
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


MINIMUM_SENSITIVITY = register(
    MetricDeclaration(
        key="ms",
        label="MS",
        class_name="MinimumSensitivity",
        function=minimum_sensitivity,
        configure=configure_classes,
        stats=per_class_hits,
        compute=_minimum,
        states=per_class_states,
        higher_is_better=True,
        is_percent=True,
        needs=frozenset({"ordered"}),
        decoders=CLASS_DECODERS,
        record=_record,
        class_doc="""Accumulating minimum sensitivity; see
    :func:`simloss.metrics.minimum_sensitivity`.

    Args: those of the function after ``preds`` and ``target`` (``ignore_index``,
    ``num_classes``: needed, ``decoder``, ``input_type``, ``cost``), and torchmetrics'
    ``process_group``, ...
    """,
    )
)
