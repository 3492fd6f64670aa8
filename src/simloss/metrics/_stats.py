"""Small pieces the metrics' statistics share (private)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import torch
from torch import Tensor

from simloss.metrics._checks import float_dtype

__all__ = ["ArrayLike", "Stats", "count", "per_class_sums", "ratio", "target_rank"]

#: A per-class vector or (C, C) matrix given as a tensor, a NumPy array or a (nested) sequence.
ArrayLike: TypeAlias = Tensor | np.ndarray | Sequence[float] | Sequence[Sequence[float]]

#: The sums of one batch, in the order of the metric's states (a count may be a Python int).
Stats: TypeAlias = tuple["Tensor | int", ...]


def count(x: Tensor) -> int:
    """Number of elements of ``x`` (a statistic that needs no tensor of its own)."""
    return x.numel()


def ratio(num: Tensor, den: Tensor | int) -> Tensor:
    """``num / den`` in floating point, ``nan`` where ``den`` is 0 (nothing was counted).

    Every numerator is a sum over the examples its denominator counts, so it is
    0 wherever the denominator is 0, and IEEE division gives 0 / 0 = nan there.
    """
    dtype = float_dtype(num.device)
    return num.to(dtype) / (den.to(dtype) if isinstance(den, Tensor) else float(den))


def per_class_sums(target: Tensor, values: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Per target class: the sum of ``values`` (float64) and the number of examples (int64)."""
    dtype = float_dtype(target.device)
    sums = torch.zeros(num_classes, dtype=dtype, device=target.device)
    sums.index_add_(0, target, values.to(dtype))
    return sums, torch.bincount(target, minlength=num_classes)


def target_rank(scores: Tensor, target: Tensor) -> Tensor:
    """Position of the target in each row's ranking, ties broken toward lower indices.

    The rank is the number of classes scored higher than the target plus the
    number scored equal with a lower index; rank 0 is exactly ``argmax == target``.
    """
    target_score = scores.gather(1, target[:, None])
    classes = torch.arange(scores.shape[1], device=scores.device)
    higher = (scores > target_score).sum(dim=1)
    tied_before = ((scores == target_score) & (classes[None, :] < target[:, None])).sum(dim=1)
    return higher + tied_before
