"""Mistake severity: the mean class distance of the wrong predictions (Bertinetto et al. 2020).

With the height of the lowest common ancestor in a class hierarchy as the
distance, this is Bertinetto et al.'s "average hierarchical distance of mistakes";
runs of a task with a hierarchy record it so (:class:`~simloss.metrics.ClassHierarchy`).

Example:
    >>> import torch
    >>> from simloss.metrics import MistakeSeverity
    >>> metric = MistakeSeverity([[0.0, 1.0, 2.0], [1.0, 0.0, 2.0], [2.0, 2.0, 0.0]])
    >>> metric.update(torch.tensor([1, 1]), torch.tensor([0, 1]))
    >>> metric.update(torch.tensor([0]), torch.tensor([2]))
    >>> float(metric.compute())
    1.5
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch import Tensor

from simloss.metrics._batch import Batch
from simloss.metrics._checks import check_square_matrix, float_dtype
from simloss.metrics._declaration import MetricDeclaration, MetricTask, register
from simloss.metrics._stats import ArrayLike, Stats, count, ratio
from simloss.metrics.decoders import CLASS_DECODERS, check_decoding
from simloss.metrics.hierarchy import ClassHierarchy

__all__ = ["MISTAKE_SEVERITY", "mistake_severity"]


def _configure(
    *, distance: object, decoder: object, input_type: object, cost: object
) -> dict[str, Any]:
    if isinstance(distance, ClassHierarchy):  # as the other hierarchical metrics take it
        distance = distance.lca_height
    matrix = check_square_matrix(distance, "distance", nonnegative=True)
    decoding = check_decoding(decoder, input_type, cost, num_classes=matrix.shape[0])
    return {"distance": matrix, **decoding}


def _stats(
    batch: Batch, *, distance: Tensor, decoder: str, input_type: str, cost: Tensor | None
) -> Stats:
    batch.check_classes(distance.shape[0], "the size of `distance`")
    pred = batch.classes(decoder, input_type=input_type, cost=cost)
    wrong = pred != batch.target
    matrix = distance.to(device=pred.device, dtype=float_dtype(pred.device))
    values = matrix[batch.target[wrong], pred[wrong]]
    return values.sum(), count(values)


def mistake_severity(
    preds: Tensor,
    target: Tensor,
    distance: ArrayLike | ClassHierarchy,
    *,
    ignore_index: int | None = None,
    decoder: str = "argmax",
    input_type: str = "logits",
    cost: ArrayLike | None = None,
) -> Tensor:
    r"""Mistake severity: mean class distance of the wrong predictions (Bertinetto et al. 2020).

    .. math::
        \mathrm{severity} = \frac{\sum_n [\hat y_n \ne y_n] \, D_{y_n, \hat y_n}}
                                 {\sum_n [\hat y_n \ne y_n]}

    Bertinetto et al. take :math:`D` as the height of the lowest common ancestor of
    the two classes in a class hierarchy (``ClassHierarchy.lca_height``: their
    "average hierarchical distance of mistakes"); any (C, C) non-negative distance
    works (the tree distance, :math:`1 - S`, ...). Lower is better. Correct
    predictions are left out; **with no mistake at all the value is undefined and**
    ``nan``.

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        distance: (C, C) non-negative finite distances, rows by target, columns by
            prediction, or a :class:`~simloss.metrics.ClassHierarchy`, whose
            ``lca_height`` is then the distance (as
            :func:`~simloss.metrics.average_hierarchical_distance` takes it).
        ignore_index: target value whose examples are left out.
        decoder: ``"argmax"`` (default), ``"median"`` or ``"min_risk"``.
        input_type: ``"logits"`` (default) or ``"probs"``, for the decoders.
        cost: (C, C) cost of ``"min_risk"`` (e.g. ``distance`` itself, Karthik et al. 2021).

    Returns:
        A 0-dim float64 tensor; ``nan`` when nothing is misclassified.

    Example:
        >>> import torch
        >>> # LCA heights for classes {0, 1} under one parent and {2} elsewhere
        >>> D = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 2.0], [2.0, 2.0, 0.0]])
        >>> target = torch.tensor([0, 1, 2, 2])
        >>> preds = torch.tensor([1, 1, 0, 2])
        >>> float(mistake_severity(preds, target, D))
        1.5
        >>> from simloss.metrics import ClassHierarchy
        >>> H = ClassHierarchy.from_superclasses([0, 0, 1])  # the same tree
        >>> float(mistake_severity(preds, target, H))
        1.5
    """
    return MISTAKE_SEVERITY.evaluate(
        preds,
        target,
        distance=distance,
        ignore_index=ignore_index,
        decoder=decoder,
        input_type=input_type,
        cost=cost,
    )


def _record(task: MetricTask) -> Iterator[dict[str, Any]]:
    for decoding in task.decoding(("argmax", "min_risk"), always_argmax=True):
        yield {"distance": task.hierarchy.lca_height, **decoding}


MISTAKE_SEVERITY = register(
    MetricDeclaration(
        key="mistake_severity",
        label="Mistake severity",
        class_name="MistakeSeverity",
        function=mistake_severity,
        configure=_configure,
        stats=_stats,
        compute=ratio,
        higher_is_better=False,
        needs=frozenset({"hierarchy"}),
        decoders=CLASS_DECODERS,
        record=_record,
        class_doc="""Accumulating mistake severity; see :func:`simloss.metrics.mistake_severity`.

    ``nan`` while nothing has been misclassified. Args: those of the function after
    ``preds`` and ``target`` (``distance``, ``ignore_index``, ``decoder``,
    ``input_type``, ``cost``), and torchmetrics' ``process_group``, ...
    """,
    )
)
