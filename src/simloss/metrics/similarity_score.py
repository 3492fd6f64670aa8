"""Mean similarity ``S[y, y_hat]`` of the predicted class to the target class.

Example:
    >>> import torch
    >>> from simloss import ClassOrder
    >>> from simloss.metrics import MeanSimilarity
    >>> metric = MeanSimilarity([[1.0, 0.5], [0.5, 1.0]])
    >>> metric.update(torch.tensor([0, 1]), torch.tensor([1, 1]))
    >>> float(metric.compute())
    0.75
    >>> ordered = MeanSimilarity(ClassOrder(3, 0.5))  # no dense matrix; moves with .to()
    >>> ordered.update(torch.tensor([0, 2]), torch.tensor([1, 2]))
    >>> float(ordered.compute())
    0.75
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from simloss.metrics._batch import Batch
from simloss.metrics._checks import check_square_matrix, float_dtype
from simloss.metrics._declaration import MetricDeclaration, register
from simloss.metrics._stats import ArrayLike, Stats, count, ratio
from simloss.metrics.decoders import CLASS_DECODERS, check_decoding
from simloss.similarity.operator import SimilarityOperator

__all__ = ["MEAN_SIMILARITY", "mean_similarity"]


def check_similarity(similarity: object) -> Tensor | SimilarityOperator:
    """A validated dense (C, C) float64 matrix, or a structured similarity as it is."""
    if isinstance(similarity, SimilarityOperator):
        return similarity
    if isinstance(similarity, Tensor) and similarity.layout != torch.strided:
        raise TypeError(
            f"Expected `similarity` to be a dense tensor, but found layout {similarity.layout}; "
            "wrap a sparse matrix with simloss.SparseSimilarity.from_sparse(...)"
        )
    return check_square_matrix(similarity, "similarity")


def _size(similarity: Tensor | SimilarityOperator) -> int:
    if isinstance(similarity, Tensor):
        return int(similarity.shape[0])
    return int(similarity.num_classes)


def _entries(similarity: Tensor | SimilarityOperator, target: Tensor, pred: Tensor) -> Tensor:
    """``S[target[n], pred[n]]`` for every n, in float64, without a dense matrix when structured."""
    dtype = float_dtype(pred.device)
    if isinstance(similarity, SimilarityOperator):  # any structured form, through its protocol
        home = similarity._device_marker.device
        entries = similarity.entries(target.to(home), pred.to(home), dtype)
        return entries.to(device=pred.device, dtype=dtype)
    return similarity.to(device=pred.device, dtype=dtype)[target, pred]


def _configure(
    *, similarity: object, decoder: object, input_type: object, cost: object
) -> dict[str, Any]:
    checked = check_similarity(similarity)
    decoding = check_decoding(decoder, input_type, cost, num_classes=_size(checked))
    return {"similarity": checked, **decoding}


def _stats(
    batch: Batch,
    *,
    similarity: Tensor | SimilarityOperator,
    decoder: str,
    input_type: str,
    cost: Tensor | None,
) -> Stats:
    batch.check_classes(_size(similarity), "the size of `similarity`")
    pred = batch.classes(decoder, input_type=input_type, cost=cost)
    values = _entries(similarity, batch.target, pred)
    return values.sum(), count(values)


def mean_similarity(
    preds: Tensor,
    target: Tensor,
    similarity: ArrayLike | SimilarityOperator,
    *,
    ignore_index: int | None = None,
    decoder: str = "argmax",
    input_type: str = "logits",
    cost: ArrayLike | None = None,
) -> Tensor:
    r"""Mean similarity :math:`S_{y, \hat y}` of the predicted class to the target class.

    .. math::
        \bar S = \frac{1}{N} \sum_{n=1}^{N} S_{y_n, \hat y_n}

    Rows of ``similarity`` are indexed by the target, columns by the prediction. With
    a SimLoss similarity matrix (unit diagonal, values in [0, 1]) the value lies in
    [accuracy, 1]; with the identity it is accuracy.

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        similarity: (C, C) finite similarity matrix (a dense tensor, array or nested
            list), or a structured :class:`~simloss.SimilarityOperator` such as
            :class:`~simloss.ClassOrder` or :class:`~simloss.SparseSimilarity` (read
            through :meth:`~simloss.SimilarityOperator.entries`, without a dense matrix).
        ignore_index: target value whose examples are left out.
        decoder: ``"argmax"`` (default), ``"median"`` or ``"min_risk"``.
        input_type: ``"logits"`` (default) or ``"probs"``, for the decoders.
        cost: (C, C) cost of ``"min_risk"`` (e.g. ``similarity_cost(S)``).

    Returns:
        A 0-dim float64 tensor; ``nan`` when no example is counted.

    Example:
        >>> import torch
        >>> S = torch.tensor([[1.0, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 1.0]])
        >>> target = torch.tensor([0, 1, 2, 2])
        >>> preds = torch.tensor([0, 0, 0, 2])
        >>> float(mean_similarity(preds, target, S))
        0.6875
        >>> from simloss import ClassOrder
        >>> float(mean_similarity(preds, target, ClassOrder(3, 0.5)))  # same S, no matrix
        0.6875
    """
    return MEAN_SIMILARITY.evaluate(
        preds,
        target,
        similarity=similarity,
        ignore_index=ignore_index,
        decoder=decoder,
        input_type=input_type,
        cost=cost,
    )


MEAN_SIMILARITY = register(
    MetricDeclaration(
        key="mean_similarity",
        label="Mean similarity",
        class_name="MeanSimilarity",
        function=mean_similarity,
        configure=_configure,
        stats=_stats,
        compute=ratio,
        higher_is_better=True,
        decoders=CLASS_DECODERS,
        class_doc="""Accumulating mean similarity ``S[y, y_hat]``; see
    :func:`simloss.metrics.mean_similarity`.

    Args: those of :func:`simloss.metrics.mean_similarity` after ``preds`` and ``target``
    (``similarity``: a dense matrix, or a :class:`~simloss.SimilarityOperator` kept as a
    sub-module, ``ignore_index``, ``decoder``, ``input_type``, ``cost``), and
    torchmetrics' ``process_group``, ...
    """,
    )
)
