"""Decoders: how a prediction (a class or a value) is read from the predicted distribution.

A classifier's scores define a distribution ``p`` over the classes (the softmax
of the logits, or the probabilities themselves). The paper predicts the class of
the highest score; ordinal practice, and decision theory, read other things from
``p``:

=================  =====================================================  =========================
``decoder``        predicted class ``k`` (or value ``v_hat``)              needs
=================  =====================================================  =========================
``"argmax"``       ``argmax_c z_c`` (ties: lowest index)                   scores or class indices
``"expectation"``  the value ``sum_c p_c v_c`` (no class: value metrics)   scores
``"median"``       the smallest class (in value order) whose cumulative    scores
                   probability reaches 1/2
``"min_risk"``     ``argmin_k sum_c p_c cost[k, c]`` (Bayes decision)      scores and ``cost``
=================  =====================================================  =========================

``min_risk`` is the decision of least expected cost under the model's own
distribution (Karthik et al., ICLR 2021, "No cost likelihood manipulation at
test time for making better mistakes in deep networks"). With
``cost = 1 - S`` (:func:`similarity_cost`) it trades a little accuracy for
milder mistakes at test time alone; with ``cost[k, c] = |v_k - v_c|``
(:func:`value_cost`) it is a median of the distribution, and with the squared
distance the class whose value is nearest to the expected value (on any grid
of values, since ``sum_c p_c (v_k - v_c)^2 = (v_k - E[v])^2 + Var[v]``). With
``cost = 1 - I`` it is the argmax.

Precision and ties: every decoder reads the distribution in float64 (float32
on a device without float64), whatever the scores' dtype: 16-bit and float32
scores are read as the numbers they are, so the decision is that of the
distribution they define. The argmax and ``min_risk`` take the lowest class
index among equal scores or risks. The median takes the first class whose
float64 cumulative probability reaches ``1/2 - C * eps64`` (``eps64 = 2.2e-16``,
see :func:`median_class`): the band absorbs only the rounding of the float64
softmax and sum, so an exact tie of the distribution goes to the lower class
and nothing else moves. A model whose head has its own rule (CORN's count of
``P(y > k) > 1/2`` on its logits, coral-pytorch's ``corn_label_from_logits``)
passes that rule's classes to :func:`simloss.metrics.compute_metrics`
(``decoded=``) instead of re-deriving them from rounded class scores.

References:
    Karthik, Prabhu, Dokania, Torr. "No Cost Likelihood Manipulation at Test Time for
    Making Better Mistakes in Deep Networks." ICLR 2021. https://arxiv.org/abs/2104.00795
"""

from __future__ import annotations

import torch
from torch import Tensor

from simloss.metrics._checks import (
    check_class_values,
    check_cost,
    check_square_matrix,
    float_dtype,
)
from simloss.similarity.operator import SimilarityOperator

__all__ = [
    "CLASS_DECODERS",
    "DECODERS",
    "check_decoder",
    "check_decoding",
    "median_class",
    "min_risk_class",
    "similarity_cost",
    "value_cost",
]

#: Every decoder; the value metrics (MAE, MSE, off-by-k, AMAE, MMAE) accept all of them.
DECODERS: tuple[str, ...] = ("argmax", "expectation", "median", "min_risk")
#: The decoders that predict a class (every metric that decodes accepts them).
CLASS_DECODERS: tuple[str, ...] = ("argmax", "median", "min_risk")


def check_decoder(decoder: object, allowed: tuple[str, ...] = DECODERS) -> str:
    """One of ``allowed`` (default :data:`DECODERS`).

    Example:
        >>> check_decoder("median")
        'median'
        >>> check_decoder("expectation", CLASS_DECODERS)
        Traceback (most recent call last):
        ...
        ValueError: Expected `decoder` to be one of ('argmax', 'median', 'min_risk'), but found 'expectation'
    """
    if decoder not in allowed:
        raise ValueError(f"Expected `decoder` to be one of {allowed}, but found {decoder!r}")
    return str(decoder)


def median_class(probs: Tensor, values: Tensor) -> Tensor:
    """The median class of each row of ``probs`` (N, C): the first class, in the order of
    ``values`` (C,), whose cumulative probability reaches 1/2.

    .. math::

        k^* = \\min\\{\\, k : \\textstyle\\sum_{j \\preceq k} p_j \\ge 1/2 - C\\,\\epsilon_{64} \\,\\}

    with the classes in the order of ``values`` and ``eps64 = 2**-52``. The cumulative
    sums are taken in float64 (float32 on a device without it), whatever the dtype of
    ``probs``: float16 and bfloat16 probabilities are exact in float64, so the median is
    that of the distribution they hold, not a guess from their precision. The tolerance
    covers only the rounding of that float64 arithmetic: a softmax and a running sum of
    C terms in [0, 1] are each off by at most about ``C * eps64`` (Higham, *Accuracy and
    Stability of Numerical Algorithms*, 2002, Sec. 4.2), so a row whose cumulative
    probability is exactly 1/2 in exact arithmetic (``[0.5, 0.5]``, logits ``[0, 0]``)
    takes the lower class, and any cumulative further than ``C * eps64`` from 1/2
    (2.2e-12 at C = 10 000) is decided as it is.

    Args:
        probs: (N, C) probabilities (rows sum to 1), of any floating dtype.
        values: (C,) class values (their order is the class order; ties keep index order).

    Returns:
        (N,) int64 class indices.

    Example:
        >>> probs = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.3, 0.6]], dtype=torch.bfloat16)
        >>> median_class(probs, torch.arange(3.0)).tolist()
        [0, 2]
        >>> one_hot = torch.zeros(1, 90, dtype=torch.bfloat16)
        >>> one_hot[0, 89] = 1
        >>> median_class(one_hot, torch.arange(90.0)).tolist()
        [89]
    """
    dtype = float_dtype(probs.device)
    order = torch.argsort(values.to(probs.device), stable=True)
    cumulative = probs.to(dtype)[:, order].cumsum(dim=1)
    classes = values.numel()
    tie = classes * torch.finfo(dtype).eps
    first = (cumulative < 0.5 - tie).sum(dim=1).clamp_(max=classes - 1)
    return order[first]


def min_risk_class(probs: Tensor, cost: Tensor) -> Tensor:
    """The Bayes decision of each row: ``argmin_k sum_c p_c cost[k, c]`` (ties: lowest ``k``).

    Args:
        probs: (N, C) probabilities.
        cost: (C, C) costs, rows by decision ``k``, columns by true class ``c``.

    Returns:
        (N,) int64 class indices.

    Example:
        >>> probs = torch.tensor([[0.4, 0.0, 0.6], [0.45, 0.1, 0.45]], dtype=torch.float64)
        >>> ordinal = value_cost(torch.arange(3.0))  # |k - c|: a median
        >>> min_risk_class(probs, ordinal).tolist()
        [2, 1]
        >>> min_risk_class(probs, value_cost(torch.arange(3.0), squared=True)).tolist()
        [1, 1]
    """
    risk = probs @ cost.to(device=probs.device, dtype=probs.dtype).T
    return risk.argmin(dim=1)


def value_cost(class_values: object, *, squared: bool = False) -> Tensor:
    """The cost ``|v_k - v_c|`` (or ``(v_k - v_c)^2``) of ordered classes, (C, C) float64.

    With it, ``decoder="min_risk"`` predicts a median of the distribution (absolute
    cost) or the class whose value is nearest to its expected value (squared cost, on
    any grid of values: ``sum_c p_c (v_k - v_c)^2 = (v_k - E[v])^2 + Var[v]``): the
    Bayes decisions for MAE and MSE.

    Args:
        class_values: (C,) the value each class stands for (a tensor, array or sequence).
        squared: square the distance.

    Example:
        >>> value_cost([1, 2, 4])
        tensor([[0., 1., 3.],
                [1., 0., 2.],
                [3., 2., 0.]], dtype=torch.float64)
    """
    values = check_class_values(class_values)
    distance = (values[:, None] - values[None, :]).abs()
    return distance.square() if squared else distance


def similarity_cost(similarity: object) -> Tensor:
    """The cost ``1 - S`` of a similarity, (C, C) float64 (the default cost of ``min_risk``
    in :mod:`simloss.experiments.predict`).

    Args:
        similarity: a dense (C, C) matrix (tensor, array, nested list) or a
            :class:`~simloss.SimilarityOperator` such as :class:`~simloss.ClassOrder`.

    Example:
        >>> from simloss import ClassOrder
        >>> similarity_cost(ClassOrder(3, 0.5))
        tensor([[0.0000, 0.5000, 0.7500],
                [0.5000, 0.0000, 0.5000],
                [0.7500, 0.5000, 0.0000]], dtype=torch.float64)
    """
    if isinstance(similarity, SimilarityOperator):
        dense = similarity.to_dense(torch.float64).cpu()
    else:
        dense = check_square_matrix(similarity, "similarity")
    return (1.0 - dense).to(float_dtype(dense.device))


def check_decoding(
    decoder: object,
    input_type: object,
    cost: object,
    *,
    allowed: tuple[str, ...] = CLASS_DECODERS,
    num_classes: int | None = None,
) -> dict[str, object]:
    """The checked decoder settings of a metric: ``decoder``, ``input_type`` and ``cost``.

    ``cost`` is ``min_risk``'s (C, C) matrix: required by it and refused with any
    other decoder (an argument that does nothing is a mistake).

    Example:
        >>> check_decoding("argmax", "logits", None)
        {'decoder': 'argmax', 'input_type': 'logits', 'cost': None}
        >>> check_decoding("min_risk", "logits", None)
        Traceback (most recent call last):
        ...
        ValueError: Expected `cost` (a (C, C) matrix, e.g. simloss.metrics.similarity_cost(S)) for decoder='min_risk', but found None
    """
    name = check_decoder(decoder, allowed)
    if input_type not in ("logits", "probs"):
        raise ValueError(
            f'Expected `input_type` to be "logits" or "probs", but found {input_type!r}'
        )
    if name == "min_risk":
        if cost is None:
            raise ValueError(
                "Expected `cost` (a (C, C) matrix, e.g. simloss.metrics.similarity_cost(S)) for "
                "decoder='min_risk', but found None"
            )
        return {"decoder": name, "input_type": input_type, "cost": check_cost(cost, num_classes)}
    if cost is not None:
        raise ValueError(
            f"Expected `cost` only with decoder='min_risk', but found it with decoder={name!r}"
        )
    return {"decoder": name, "input_type": input_type, "cost": None}
