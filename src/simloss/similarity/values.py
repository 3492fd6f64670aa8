"""Similarity from class values: ordinal classes that are not equidistant."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from simloss.similarity.order import check_reduction_factor

__all__ = ["from_values"]

# Rows of the float64 intermediate computed at once (bounds its memory to ~64 MiB).
_CHUNK_ELEMENTS = 8 * 1024 * 1024


def from_values(
    values: Sequence[float] | np.ndarray | Tensor,
    r: float,
    scale: float = 1.0,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Similarity of classes that stand for values: :math:`S_{ij} = r^{|v_i - v_j| / s}`.

    The generalisation of the class order (Eq. 2 of the paper) to classes
    whose values are not equidistant: age-bin centres, grades, severities.
    ``scale`` is the value distance that counts as one step of the class
    order, so the values ``0, 1, ..., C - 1`` with ``scale = 1`` give exactly
    :func:`simloss.similarity.class_order` (bit for bit: both compute in
    float64 and round once to ``dtype``).

    .. math::

        S \\in [0, 1]^{C \\times C}, \\qquad
        S_{ij} = r^{|v_i - v_j| / s}, \\qquad r \\in [0, 1), \\; s > 0, \\; 0^0 = 1

    ``r = 0`` gives the identity (plain cross-entropy).

    Args:
        values: the value of each class, shape (C,), finite and pairwise
            distinct (two classes with the same value would be
            indistinguishable to the loss; merge them instead).
        r: reduction factor in [0, 1): the similarity of two classes ``scale`` apart.
        scale: positive value distance that reduces the similarity by a factor ``r``.
        dtype: floating dtype of the result (float32 by default).
        device: device of the result.

    Returns:
        Tensor of shape (C, C), symmetric, with ones on the diagonal.

    Raises:
        TypeError: ``values`` is not a real-valued sequence, array or tensor.
        ValueError: ``values`` empty, not 1-D, non-finite or with duplicates;
            ``r`` outside [0, 1); ``scale`` not positive and finite.

    Example:
        >>> from_values([0.0, 1.0, 3.0], r=0.5)
        tensor([[1.0000, 0.5000, 0.1250],
                [0.5000, 1.0000, 0.2500],
                [0.1250, 0.2500, 1.0000]])
        >>> from_values([20.0, 30.0], r=0.5, scale=10.0)
        tensor([[1.0000, 0.5000],
                [0.5000, 1.0000]])

    References:
        Kobs et al., "SimLoss: Class Similarities in Cross Entropy", ISMIS 2020,
        https://arxiv.org/abs/2003.03182 (Eq. 2, class order)
    """
    r = check_reduction_factor(r)
    scale = _check_scale(scale)
    vector = _as_values(values)
    num_classes = int(vector.shape[0])
    base = torch.tensor(r, dtype=torch.float64)
    out = torch.empty(num_classes, num_classes, dtype=dtype, device=device)
    rows = max(1, _CHUNK_ELEMENTS // num_classes)
    for start in range(0, num_classes, rows):
        stop = min(start + rows, num_classes)
        distance = (vector[start:stop, None] - vector[None, :]).abs() / scale
        out[start:stop] = torch.pow(base, distance).to(dtype)
    return out


def _check_scale(scale: float) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(
            f"Expected `scale` to be a positive float, but found {type(scale).__name__}"
        )
    value = float(scale)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"Expected `scale` to be positive and finite, but found {value}")
    return value


def _as_values(values: Sequence[float] | np.ndarray | Tensor) -> Tensor:
    """The class values as a float64 CPU tensor of shape (C,), validated."""
    if isinstance(values, Tensor):
        if values.dtype == torch.bool or values.is_complex():
            raise TypeError(f"Expected `values` to be real numbers, but found dtype {values.dtype}")
        vector = values.detach().to("cpu", torch.float64)
    else:
        if isinstance(values, (str, bytes)):
            raise TypeError("Expected `values` to be a sequence of numbers, but found a string")
        array = np.asarray(values)
        if (
            array.dtype == np.bool_
            or not np.issubdtype(array.dtype, np.number)
            or (np.issubdtype(array.dtype, np.complexfloating))
        ):
            raise TypeError(
                f"Expected `values` to be real numbers, but found numpy dtype {array.dtype}"
            )
        vector = torch.from_numpy(array.astype(np.float64))
    if vector.dim() != 1 or vector.numel() == 0:
        raise ValueError(
            f"Expected `values` of shape (C,) with C >= 1, but found shape {tuple(vector.shape)}"
        )
    finite = torch.isfinite(vector)
    if not bool(finite.all()):
        i = int(torch.nonzero(~finite)[0, 0])
        raise ValueError(f"Expected `values` to be finite, but found {vector[i].item()} at {i}")
    order = torch.argsort(vector, stable=True)
    ordered = vector[order]
    same = ordered[1:] == ordered[:-1]
    if bool(same.any()):
        k = int(torch.nonzero(same)[0, 0])
        i, j = sorted((int(order[k]), int(order[k + 1])))
        raise ValueError(
            f"Expected `values` to be pairwise distinct, but found {ordered[k].item():g} "
            f"at {i} and {j}"
        )
    return vector
