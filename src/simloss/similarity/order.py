"""Similarity from class order (the paper's Eq. 2)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from simloss._numbers import is_int, is_real

__all__ = ["check_reduction_factor", "class_order", "exponential_filter", "order_band"]


def check_reduction_factor(r: float, *, name: str = "r") -> float:
    """Validate a reduction factor :math:`r \\in [0, 1)` and return it as a float.

    Example:
        >>> check_reduction_factor(0.5)
        0.5
    """
    if not is_real(r):
        raise TypeError(f"Expected `{name}` to be a float in [0, 1), but found {type(r).__name__}")
    value = float(r)
    if not (0.0 <= value < 1.0):
        raise ValueError(f"Expected `{name}` in [0, 1), but found {value}")
    return value


def _check_num_classes(num_classes: int) -> int:
    if not is_int(num_classes):
        raise TypeError(
            f"Expected `num_classes` to be a positive int, but found {type(num_classes).__name__}"
        )
    if num_classes < 1:
        raise ValueError(f"Expected `num_classes` >= 1, but found {num_classes}")
    return int(num_classes)


def _band_length(num_classes: int, r: float, dtype: torch.dtype) -> int:
    """Number of distances ``d = 0, 1, ...`` (at most C) whose ``r^d`` rounds to a normal number.

    A float64 value ``x`` rounds to at least the smallest normal number ``t``
    of ``dtype`` exactly when ``x >= t (1 - eps / 2)`` (the subnormals below
    ``t`` are spaced ``t eps`` apart). Pure Python, so it traces.
    """
    if r == 0.0:
        return 1
    info = torch.finfo(dtype)
    threshold = info.smallest_normal * (1.0 - info.eps / 2)
    length = min(num_classes, math.floor(math.log(threshold) / math.log(r)) + 1)
    while length > 1 and r ** (length - 1) < threshold:
        length -= 1
    while length < num_classes and r**length >= threshold:
        length += 1
    return length


def order_band(
    num_classes: int,
    r: float,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """The distinct values :math:`r^d` of the class-order matrix, ``d = 0, 1, ...``.

    The band stops where :math:`r^d` falls below the smallest normal number of
    ``dtype`` (about 1.2e-38 in float32) or at ``num_classes - 1``. Entries
    below the smallest normal number are cut to zero, here and in
    :func:`class_order` alike: they carry no information the loss can use (a
    probability weighted by them is below what a sum of probabilities can
    resolve) and subnormal arithmetic is many times slower on CPUs. Values are
    computed in float64 (Python floats) and rounded once to ``dtype``, so the band and
    :func:`class_order` agree bit for bit. :math:`0^0 = 1`, so ``r = 0``
    gives the band ``[1]`` (the identity).

    Args:
        num_classes: number of classes C.
        r: reduction factor in [0, 1).
        dtype: floating dtype of the result.
        device: device of the result.

    Returns:
        Tensor of shape (D + 1,) with D <= C - 1.

    Example:
        >>> order_band(10, 0.5, dtype=torch.float64)[:4]
        tensor([1.0000, 0.5000, 0.2500, 0.1250], dtype=torch.float64)
        >>> order_band(10, 0.0)
        tensor([1.])
        >>> order_band(100, 0.1).numel()  # 1e-37 is normal in float32, 1e-38 is not
        38
    """
    num_classes = _check_num_classes(num_classes)
    r = check_reduction_factor(r)
    length = _band_length(num_classes, r, dtype)
    # Python floats (C's pow in float64), not a tensor op: under torch.compile the band
    # is then a constant of the graph instead of float64 powers recomputed inside every
    # kernel that gathers from it (2x a compiled ClassOrder step at C = 1000).
    values = [r**d for d in range(length)]
    band = torch.tensor(values, dtype=torch.float64, device=device).to(dtype)
    return band.masked_fill(band < torch.finfo(dtype).smallest_normal, 0.0)


def class_order(
    num_classes: int,
    r: float,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Dense class-order similarity :math:`S_{ij} = r^{|i - j|}` (Eq. 2 of the paper).

    .. math::

        S \\in [0, 1]^{C \\times C}, \\qquad S_{ij} = r^{|i-j|}, \\qquad 0^0 = 1

    ``r = 0`` gives the identity (plain cross-entropy). Entries below the
    smallest normal number of ``dtype`` are cut to zero (see :func:`order_band`).
    For many classes use
    :class:`simloss.ClassOrder`, which gives the loss the same values without
    building the (C, C) matrix.

    Args:
        num_classes: number of classes C.
        r: reduction factor in [0, 1).
        dtype: floating dtype of the result (float32 by default).
        device: device of the result.

    Returns:
        Tensor of shape (C, C).

    Example:
        >>> class_order(3, 0.5)
        tensor([[1.0000, 0.5000, 0.2500],
                [0.5000, 1.0000, 0.5000],
                [0.2500, 0.5000, 1.0000]])

    References:
        Kobs et al., "SimLoss: Class Similarities in Cross Entropy", ISMIS 2020,
        https://arxiv.org/abs/2003.03182
    """
    band = order_band(num_classes, r, dtype=dtype, device=device)
    full = torch.zeros(num_classes, dtype=dtype, device=device)
    full[: band.numel()] = band
    # A Toeplitz matrix from sliding windows: sequence[k] = full[|k - (C - 1)|], and
    # row i is the window starting at C - 1 - i, so entry (i, j) is full[|i - j|].
    sequence = torch.cat([full[1:].flip(0), full])
    return sequence.unfold(0, num_classes, 1).flip(0).contiguous()


def exponential_filter(values: Tensor, r: float) -> Tensor:
    """``values @ S`` for the class-order matrix :math:`S_{ij} = r^{|i-j|}`, in O(N * C).

    .. math::

        y_i = \\sum_j r^{|i-j|} x_j = a_i + b_i - x_i, \\qquad
        a_i = x_i + r\\, a_{i-1}, \\qquad b_i = x_i + r\\, b_{i+1}

    The causal and anti-causal recursions are evaluated as scaled cumulative
    sums in float64, in blocks short enough that :math:`r^{-k}` stays finite,
    and the result is rounded once to the input's dtype. Unlike
    :func:`class_order` the sum keeps the terms whose weight is below the
    smallest normal number (they change no normal result). Differentiable
    and traceable; no (C, C) matrix.

    Args:
        values: (..., C) tensor (e.g. probabilities, one row per sample).
        r: reduction factor in [0, 1).

    Returns:
        Tensor of the shape and dtype of ``values``.

    Example:
        >>> x = torch.tensor([[1.0, 0.0, 0.0, 2.0]], dtype=torch.float64)
        >>> torch.allclose(exponential_filter(x, 0.5), x @ class_order(4, 0.5, dtype=torch.float64))
        True
    """
    r = check_reduction_factor(r)
    if r == 0.0:
        return values.clone()
    x = values.to(torch.float64)
    causal = _causal_filter(x, r)
    anticausal = _causal_filter(x.flip(-1), r).flip(-1)
    return (causal + anticausal - x).to(values.dtype)


def _causal_filter(x: Tensor, r: float) -> Tensor:
    """``a_i = sum_{j <= i} r^(i - j) x_j`` along the last dimension (float64)."""
    length = x.shape[-1]
    block = max(1, min(length, int(600.0 / -math.log(r))))  # r^-block <= e^600
    steps = torch.arange(block, dtype=torch.float64, device=x.device)
    down = torch.pow(r, steps)
    up = torch.pow(r, -steps)
    pieces = []
    carry: Tensor | None = None
    for start in range(0, length, block):
        segment = x[..., start : start + block]
        n = segment.shape[-1]
        out = torch.cumsum(segment * up[:n], dim=-1) * down[:n]
        if carry is not None:
            out = out + carry.unsqueeze(-1) * (r * down[:n])
        pieces.append(out)
        carry = out[..., -1]
    return torch.cat(pieces, dim=-1)
