"""Transforms of a similarity matrix: the lower bound (Eq. 3) and row normalisation."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from simloss.similarity.order import check_reduction_factor
from simloss.similarity.validation import check_unit_diagonal, validate_similarity

__all__ = ["lower_bound", "to_probability_matrix"]


def lower_bound(sim: Any, l: float, *, dtype: torch.dtype = torch.float32) -> Tensor:  # noqa: E741
    """Cut similarities below ``l`` and rescale the rest to [0, 1] (Eq. 3 of the paper).

    .. math::

        S_{ij} = \\frac{\\max(0,\\ \\mathrm{sim}(i, j) - l)}{1 - l},
        \\qquad l \\in [0, 1), \\qquad S_{ii} = 1

    The diagonal stays exactly 1. ``l = 0`` returns ``sim`` unchanged (in
    ``dtype``); as ``l`` approaches 1 every similarity below 1 is cut and
    the result approaches the identity, i.e. plain cross-entropy. The
    computation runs in float64 and is rounded once to ``dtype``.

    Args:
        sim: similarity of shape (C, C), a floating tensor or numpy array with
            values in [0, 1] and ones on the diagonal (Eq. 3 assumes
            :math:`\\mathrm{sim}(i, i) = 1`).
        l: lower bound in [0, 1).
        dtype: floating dtype of the result (float32 by default).

    Returns:
        Tensor of shape (C, C) on the device of ``sim``.

    Raises:
        TypeError: ``sim`` is not a floating tensor or array, or ``l`` not a number.
        ValueError: ``l`` outside [0, 1); ``sim`` not square, not finite,
            outside [0, 1] or with a diagonal entry that is not 1.

    Example:
        >>> import torch
        >>> sim = torch.tensor([[1.0, 0.8, 0.2], [0.8, 1.0, 0.5], [0.2, 0.5, 1.0]])
        >>> lower_bound(sim, 0.5)
        tensor([[1.0000, 0.6000, 0.0000],
                [0.6000, 1.0000, 0.0000],
                [0.0000, 0.0000, 1.0000]])

    References:
        Kobs et al., "SimLoss: Class Similarities in Cross Entropy", ISMIS 2020,
        https://arxiv.org/abs/2003.03182 (Eq. 3)
    """
    bound = check_reduction_factor(l, name="l")
    matrix = validate_similarity(sim, require_unit_diagonal=False, name="sim")
    check_unit_diagonal(
        torch.diagonal(matrix), "`sim` to have", why="Eq. 3 assumes sim(i, i) = 1", hint=False
    )
    return _lower_bound64(matrix.to(torch.float64), bound, inplace=False).to(dtype)


def _lower_bound64(matrix: Tensor, bound: float, *, inplace: bool) -> Tensor:
    """Eq. 3 on a validated float64 matrix whose diagonal is 1 (internal).

    With ``inplace`` the caller's matrix is overwritten (no extra (C, C) copies).
    """
    out = matrix.sub_(bound) if inplace else matrix - bound
    out.clamp_(min=0.0).div_(1.0 - bound)
    out.fill_diagonal_(1.0)  # (1 - l) / (1 - l) is exactly 1 already; kept explicit
    return out


def to_probability_matrix(similarity: Any, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """Normalise each row of a similarity to sum to one (the paper's appendix variant).

    .. math::

        P_{ij} = \\frac{S_{ij}}{\\sum_{k=1}^{C} S_{ik}}, \\qquad \\sum_j P_{ij} = 1

    The paper's appendix shows that SimLoss with ``S`` and with ``P`` give
    the same gradients with respect to the predicted probabilities; the loss
    values differ by :math:`\\log \\sum_k S_{y_i k}` per example. ``P`` has a
    diagonal below 1 whenever a row has other non-zero entries, so pass it to
    the loss with ``require_unit_diagonal=False``. Computed in float64 and
    rounded once to ``dtype``.

    Args:
        similarity: matrix of shape (C, C), a floating tensor or numpy array
            with values in [0, 1] and no all-zero row.
        dtype: floating dtype of the result (float32 by default).

    Returns:
        Tensor of shape (C, C) whose rows sum to 1 (up to rounding in ``dtype``).

    Raises:
        TypeError: not a floating tensor or array.
        ValueError: not square, not finite, values outside [0, 1], or a row summing to 0.

    Example:
        >>> import torch
        >>> to_probability_matrix(torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
        tensor([[0.5000, 0.5000],
                [0.0000, 1.0000]])

    References:
        Kobs et al., "SimLoss: Class Similarities in Cross Entropy", ISMIS 2020,
        https://arxiv.org/abs/2003.03182 (appendix, similarity vs. probability matrices)
    """
    matrix = validate_similarity(similarity, require_unit_diagonal=False).to(torch.float64)
    sums = matrix.sum(dim=1, keepdim=True)
    empty = sums[:, 0] == 0
    if bool(empty.any()):
        i = int(torch.nonzero(empty)[0, 0])
        raise ValueError(
            f"Expected every row of `similarity` to have a positive sum, but found row {i} "
            "summing to 0"
        )
    return (matrix / sums).to(dtype)
