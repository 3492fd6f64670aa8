"""Validation of similarity matrices at the API boundary."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["as_similarity_tensor", "check_unit_diagonal", "first_position", "validate_similarity"]


def as_similarity_tensor(similarity: Any, *, name: str = "similarity") -> Tensor:
    """Turn a dense similarity (tensor or numpy array) into a floating tensor.

    Integer or boolean inputs are rejected rather than converted: a similarity
    is a real-valued matrix and an integer one is most likely a mistake.

    Example:
        >>> as_similarity_tensor(np.eye(2)).dtype
        torch.float64
    """
    if isinstance(similarity, np.ndarray):
        if not np.issubdtype(similarity.dtype, np.floating):
            raise TypeError(
                f"Expected `{name}` to have a floating dtype, but found numpy {similarity.dtype}"
            )
        return torch.from_numpy(np.ascontiguousarray(similarity))
    if isinstance(similarity, Tensor):
        if not similarity.is_floating_point():
            raise TypeError(
                f"Expected `{name}` to have a floating dtype, but found {similarity.dtype}"
            )
        if similarity.is_sparse or similarity.layout != torch.strided:
            raise TypeError(
                f"Expected `{name}` to be a dense tensor here, but found layout {similarity.layout}"
            )
        return similarity
    raise TypeError(
        f"Expected `{name}` to be a torch.Tensor or numpy.ndarray of shape (C, C), "
        f"but found {type(similarity).__name__}"
    )


def validate_similarity(
    similarity: Any,
    num_classes: int | None = None,
    *,
    require_unit_diagonal: bool = True,
    name: str = "similarity",
) -> Tensor:
    """Check that ``similarity`` is a valid SimLoss matrix and return it as a tensor.

    A valid matrix is square, of size ``num_classes`` when given, finite, with
    every value in :math:`[0, 1]` and (unless ``require_unit_diagonal=False``)
    ones on the diagonal, :math:`S_{ii} = 1` as the paper requires. Rows need
    not sum to one and zeros are allowed.

    Args:
        similarity: dense matrix of shape (C, C), a tensor or numpy array.
        num_classes: expected C, or None to accept any size.
        require_unit_diagonal: whether :math:`S_{ii} = 1` is required.
        name: the argument name used in error messages.

    Returns:
        The matrix as a floating tensor (shares memory with a numpy input).

    Raises:
        TypeError: not a floating tensor or array.
        ValueError: wrong shape, NaN or infinite values, values outside
            [0, 1], or a diagonal entry that is not 1; the message names the
            first offending position.

    Example:
        >>> validate_similarity(torch.tensor([[1.0, 0.5], [0.5, 1.0]])).shape
        torch.Size([2, 2])
        >>> validate_similarity(torch.tensor([[1.0, 1.5], [0.5, 1.0]]))
        Traceback (most recent call last):
        ...
        ValueError: Expected `similarity` to have values in [0, 1], but found 1.5 at (0, 1)
    """
    matrix = as_similarity_tensor(similarity, name=name)
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(
            f"Expected `{name}` to be a square matrix of shape (C, C), "
            f"but found shape {tuple(matrix.shape)}"
        )
    if num_classes is not None and matrix.shape[0] != num_classes:
        raise ValueError(
            f"Expected `{name}` to have shape ({num_classes}, {num_classes}) to match "
            f"{num_classes} classes, but found shape {tuple(matrix.shape)}"
        )
    finite = torch.isfinite(matrix)
    if not bool(finite.all()):
        pos = first_position(~finite)
        raise ValueError(f"Expected `{name}` to be finite, but found {matrix[pos].item()} at {pos}")
    out_of_range = (matrix < 0) | (matrix > 1)
    if bool(out_of_range.any()):
        pos = first_position(out_of_range)
        raise ValueError(
            f"Expected `{name}` to have values in [0, 1], but found {matrix[pos].item():g} at {pos}"
        )
    if require_unit_diagonal:
        check_unit_diagonal(torch.diagonal(matrix), f"`{name}` to have")
    return matrix


def check_unit_diagonal(
    diagonal: Tensor,
    subject: str,
    *,
    classes: Tensor | None = None,
    why: str = "S_ii = 1",
    hint: bool = True,
) -> None:
    """Refuse a similarity whose diagonal entry ``S_ii`` is not exactly 1, in one line.

    Args:
        diagonal: ``S_ii`` per position, shape ``(K,)``.
        subject: what is checked, as the message's subject ("`S` to have").
        classes: the class of each position (``(K,)``; default: position ``i`` is class ``i``).
        why: the reason in parentheses.
        hint: whether to name ``require_unit_diagonal=False``.

    Raises:
        ValueError: "Expected {subject} ones on the diagonal ({why}), but found
            {S_ii} at (i, i)" for the first such class.

    Example:
        >>> check_unit_diagonal(torch.tensor([1.0, 0.5]), "`S` to have")
        Traceback (most recent call last):
        ...
        ValueError: Expected `S` to have ones on the diagonal (S_ii = 1), but found 0.5 at (1, 1); pass require_unit_diagonal=False to allow it
    """
    off = diagonal != 1
    if not bool(off.any()):
        return
    i = int(first_position(off)[0])
    c = i if classes is None else int(classes[i])
    tail = "; pass require_unit_diagonal=False to allow it" if hint else ""
    raise ValueError(
        f"Expected {subject} ones on the diagonal ({why}), but found "
        f"{float(diagonal[i]):g} at ({c}, {c}){tail}"
    )


def first_position(mask: Tensor) -> tuple[int, ...]:
    """The index of the first ``True`` entry of ``mask`` (row-major), e.g. ``(2, 0)``."""
    return tuple(int(v) for v in torch.nonzero(mask)[0])
