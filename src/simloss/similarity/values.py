"""Similarity from class values: ordinal classes that are not equidistant."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from simloss._numbers import is_real
from simloss.similarity.order import check_reduction_factor

__all__ = ["from_values"]

# Elements of the float64 block computed at once (2 MiB, about one core's L2 cache): enough
# rows that the mirrored (transposed) writes fill whole cache lines.
_BLOCK_ELEMENTS = 256 * 1024


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
    order, so the values ``0, 1, ..., C - 1`` with ``scale = 1`` give
    :func:`simloss.similarity.class_order` bit for bit (both compute in float64
    and round once to ``dtype``; with subnormal entries cut to 0, see below).

    .. math::

        S \\in [0, 1]^{C \\times C}, \\qquad
        S_{ij} = r^{|v_i - v_j| / s}, \\qquad r \\in [0, 1), \\; s > 0, \\; 0^0 = 1

    ``r = 0`` gives the identity (plain cross-entropy). Entries below the
    smallest normal number of ``dtype`` (``1.18e-38`` in float32: classes
    hundreds of steps apart) are set to 0: such subnormal numbers carry no
    similarity the loss can use and make every operation on them slow. The
    values are computed in float64 (exact distances, one rounding to
    ``dtype``), in cache-sized blocks of the upper triangle mirrored to the
    lower one, so building is about as fast as the plain float32 one-liner
    ``r ** (v[:, None] - v[None, :]).abs()`` (``benchmarks/bench_similarity.py``).

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
    if not dtype.is_floating_point:
        raise TypeError(f"Expected `dtype` to be a floating dtype, but found {dtype}")
    num_classes = int(vector.shape[0])
    base = torch.tensor(r, dtype=torch.float64)
    cut = _subnormal_cut(dtype)
    out = torch.empty(num_classes, num_classes, dtype=dtype)
    # Upper triangle in blocks of rows, mirrored: |v_i - v_j| = |v_j - v_i| exactly in IEEE
    # arithmetic, so the matrix is symmetric by construction. One float64 buffer of about
    # one core's L2 cache is reused, so the work stays in cache.
    rows = max(1, _BLOCK_ELEMENTS // num_classes)
    buffer = torch.empty(rows * num_classes, dtype=torch.float64)
    for start in range(0, num_classes, rows):
        stop = min(start + rows, num_classes)
        block = buffer[: (stop - start) * (num_classes - start)].view(
            stop - start, num_classes - start
        )
        torch.sub(vector[start:stop, None], vector[None, start:], out=block).abs_()
        if scale != 1.0:
            block.div_(scale)
        torch.pow(base, block, out=block)
        torch.threshold_(block, cut, 0.0)  # keep x > cut: normal in `dtype`
        out[start:stop, start:].copy_(block)
        out[start:, start:stop].copy_(block.T)
    return out if device is None else out.to(device)


def _subnormal_cut(dtype: torch.dtype) -> float:
    """The largest float64 whose rounding to ``dtype`` is below its smallest normal number.

    Values above it round to a normal number of ``dtype`` (or are normal
    float64 for ``dtype=float64``); values at or below it are cut to 0.
    """
    info = torch.finfo(dtype)
    if dtype == torch.float64:
        return float(np.nextafter(info.smallest_normal, 0.0))
    # The midpoint between the smallest normal and the largest subnormal rounds up to the
    # smallest normal (ties to even: its significand is even), so keep it.
    midpoint = info.smallest_normal - info.smallest_normal * info.eps / 2
    return float(np.nextafter(midpoint, 0.0))


def _check_scale(scale: float) -> float:
    if not is_real(scale):
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
        if isinstance(values, (str, bytes, os.PathLike)):
            raise TypeError(
                f"Expected `values` to be a sequence of numbers, but found the string or path "
                f"{values!r}; to read a file, use simloss.similarity.read_class_values(path)"
            )
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
