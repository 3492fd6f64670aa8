"""A text summary of a similarity matrix: value range, sparsity, symmetry, nearest neighbours."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from simloss._numbers import is_int

__all__ = ["nearest_neighbours", "similarity_summary"]


def _as_array(matrix: Any) -> np.ndarray:
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().numpy()
    array = np.asarray(matrix)
    if array.ndim != 2 or array.shape[0] != array.shape[1] or array.shape[0] == 0:
        raise ValueError(
            f"Expected `matrix` to be a non-empty square (C, C) matrix, but found shape "
            f"{array.shape}"
        )
    return array


def nearest_neighbours(matrix: Any, k: int) -> list[list[tuple[int, float]]]:
    """Each class's ``k`` most similar other classes with similarity > 0, most similar first.

    Ties keep class order. A class has fewer than ``k`` neighbours when fewer
    than ``k`` other classes have a positive similarity to it.

    Args:
        matrix: (C, C) similarity, a tensor or array; row ``i`` is class ``i``.
        k: neighbours per class, >= 1.

    Returns:
        For every class, a list of ``(class index, similarity)``.

    Example:
        >>> import torch
        >>> S = torch.tensor([[1.0, 0.5, 0.0], [0.5, 1.0, 0.25], [0.0, 0.25, 1.0]])
        >>> nearest_neighbours(S, 2)
        [[(1, 0.5)], [(0, 0.5), (2, 0.25)], [(1, 0.25)]]
    """
    if not is_int(k) or k < 1:
        raise ValueError(f"Expected `k` to be a positive int, but found {k!r}")
    array = _as_array(matrix)
    return [_row_neighbours(array, i, int(k)) for i in range(array.shape[0])]


def _row_neighbours(array: np.ndarray, i: int, k: int) -> list[tuple[int, float]]:
    row = array[i].astype(np.float64)  # a copy
    row[i] = -np.inf
    best = np.argsort(-row, kind="stable")[: min(k, len(row) - 1)]
    return [(int(j), float(row[j])) for j in best if row[j] > 0]


def similarity_summary(
    matrix: Any,
    names: Sequence[str] | None = None,
    *,
    description: str = "",
    neighbours: int = 3,
    show: int = 20,
) -> str:
    """Describe a similarity matrix in a few lines of text.

    Lines: the number of classes (and ``description``); the minimum, maximum
    and mean of the off-diagonal values; the share of off-diagonal zeros and
    the mean number of non-zero neighbours per class; whether the matrix is
    symmetric; then each of the first ``show`` classes with its ``neighbours``
    nearest neighbours (:func:`nearest_neighbours`).

    Args:
        matrix: (C, C) similarity, a tensor or array.
        names: class names (default: the indices).
        description: how the matrix was built, appended to the first line.
        neighbours: neighbours listed per class (>= 1).
        show: classes listed (0: all).

    Returns:
        The summary, lines joined by newlines (no trailing newline).

    Example:
        >>> from simloss.similarity import class_order
        >>> print(similarity_summary(class_order(3, 0.5), ["a", "b", "c"], neighbours=1))
        similarity matrix: 3 classes
        off-diagonal values: min 0.25, max 0.5, mean 0.4167
        sparsity: 0.0% of off-diagonal entries are 0 (2.0 non-zero neighbours per class on average)
        symmetric: yes
        nearest neighbours (top 1, similarity > 0):
          a  b 0.500
          b  a 0.500
          c  b 0.500
    """
    array = _as_array(matrix)
    num = array.shape[0]
    labels = [str(i) for i in range(num)] if names is None else [str(n) for n in names]
    if len(labels) != num:
        raise ValueError(f"Expected {num} `names`, one per class, but found {len(labels)}")
    if not is_int(neighbours) or neighbours < 1:
        raise ValueError(f"Expected `neighbours` to be a positive int, but found {neighbours!r}")
    if not is_int(show) or show < 0:
        raise ValueError(f"Expected `show` to be an int >= 0, but found {show!r}")
    head = f"similarity matrix: {num} classes" + (f"; {description}" if description else "")
    lines = [head]
    if num == 1:
        lines.append("one class: S = [[1]]")
        return "\n".join(lines)
    off = array[~np.eye(num, dtype=bool)]
    zeros = float(np.mean(off == 0))
    per_row = (np.count_nonzero(array, axis=1) - 1).mean()
    lines.append(
        f"off-diagonal values: min {off.min():.4g}, max {off.max():.4g}, mean {off.mean():.4g}"
    )
    lines.append(
        f"sparsity: {100 * zeros:.1f}% of off-diagonal entries are 0 "
        f"({per_row:.1f} non-zero neighbours per class on average)"
    )
    lines.append(f"symmetric: {'yes' if np.array_equal(array, array.T) else 'no'}")
    k = min(neighbours, num - 1)
    listed = num if show == 0 else min(show, num)
    lines.append(
        f"nearest neighbours (top {k}, similarity > 0)"
        + (f", first {listed} of {num} classes:" if listed < num else ":")
    )
    width = max(len(labels[i]) for i in range(listed))
    for i in range(listed):
        shown = [f"{labels[j]} {value:.3f}" for j, value in _row_neighbours(array, i, k)]
        lines.append(f"  {labels[i]:<{width}}  {', '.join(shown) if shown else '(none)'}")
    if listed < num:
        lines.append(f"  ... {num - listed} more classes")
    return "\n".join(lines)
