"""What a target says: its kind and shape against the scores, and which rows count (private).

:func:`flatten` checks a target against the scores and moves the class
dimension last, so the loss works on (N', C) scores whatever the input's
shape; :func:`kept_rows` checks index targets' values and says which rows an
``ignore_index`` leaves out.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from simloss._describe import describe
from simloss.similarity.operator import concrete

__all__ = ["FlatTarget", "KeptRows", "flatten", "kept_rows"]


class FlatTarget(NamedTuple):
    """Scores (N', C), the target (N',) or (N', C), and the shape of per-element losses."""

    scores: Tensor
    target: Tensor
    loss_shape: tuple[int, ...]
    probabilities: bool  # class probabilities (a floating target), not class indices


def flatten(input: Tensor, target: object) -> FlatTarget:
    """Check ``target`` against ``input`` (C), (N, C) or (N, C, d1, ...) and flatten both.

    Index targets have the input's shape without the class dimension and an
    integer dtype (returned as int64); probability targets have the input's
    shape. Raises ``TypeError`` for a target of another kind or dtype and
    ``ValueError`` for another shape.
    """
    if not isinstance(target, Tensor):
        raise TypeError(f"Expected `target` to be a torch.Tensor, but found {describe(target)}")
    if target.dtype == torch.bool or target.is_complex():
        raise TypeError(
            f"Expected `target` of an integer or floating dtype, but found {target.dtype}"
        )
    soft = target.is_floating_point()
    if not soft and input.dim() == 2 and target.dim() == 1 and len(target) == len(input):
        return FlatTarget(input, _as_long(target), (len(input),), False)  # the common case
    batch_shape = (input.shape[0], *input.shape[2:]) if input.dim() > 1 else ()
    if soft and tuple(target.shape) == batch_shape and batch_shape != tuple(input.shape):
        raise TypeError(
            f"Expected `target` class indices of an integer dtype, but found {target.dtype} "
            f"(floating targets are class probabilities of the input's shape {tuple(input.shape)})"
        )
    expected = tuple(input.shape) if soft else batch_shape
    if tuple(target.shape) != expected:
        if input.dim() == 1:
            raise ValueError(
                f"Expected `target` of shape {expected} for `input` of shape "
                f"{tuple(input.shape)}, but found {tuple(target.shape)}"
            )
        kind = "class probabilities" if soft else "class indices"
        raise ValueError(
            f"Expected `target` ({kind}) of shape {expected} for `input` of shape "
            f"{tuple(input.shape)}, but found {tuple(target.shape)}"
        )
    if input.dim() == 1:
        target = target.unsqueeze(0)
        return FlatTarget(input.unsqueeze(0), target if soft else _as_long(target), (), soft)
    num_classes = input.shape[1]
    scores = input.movedim(1, -1).reshape(-1, num_classes) if input.dim() > 2 else input
    if soft:
        flat = target.movedim(1, -1).reshape(-1, num_classes) if target.dim() > 2 else target
    else:
        flat = _as_long(target.reshape(-1))
    return FlatTarget(scores, flat, batch_shape, soft)


def _as_long(target: Tensor) -> Tensor:
    return target if target.dtype == torch.long else target.long()


class KeptRows(NamedTuple):
    """Index targets made safe to gather with, and the rows that count.

    ``target`` holds 0 in every ignored or invalid row, so every row can be
    computed and masked afterwards (no data-dependent shapes). ``keep`` is
    None when every row counts; ``invalid`` is None unless the targets'
    values could not be read (traced code), where an out-of-range target's
    loss becomes NaN instead of an error.
    """

    target: Tensor
    keep: Tensor | None
    invalid: Tensor | None


def kept_rows(target: Tensor, num_classes: int, ignore_index: int) -> KeptRows:
    """Check index targets (N,) against ``[0, C)`` and ``ignore_index``.

    Where the targets' values can be read (eager mode), one reduction and one
    host synchronisation check the common case (every target in range,
    ``ignore_index`` outside the observed range) and a bad target raises
    ``ValueError``. Under ``torch.compile`` the same check is a tensor-side
    assertion (``torch._assert_async``: the compiled code raises the same
    message). Under ``vmap`` no assertion exists: an out-of-range target's
    loss is NaN. Out-of-range targets are never used as indices (negative
    ones would wrap around).
    """
    message = f"Expected `target` values in [0, {num_classes}) or ignore_index={ignore_index}"
    if not concrete(target):
        ignored = target == ignore_index
        invalid = ~ignored & ((target < 0) | (target >= num_classes))
        if torch.compiler.is_compiling():
            torch._assert_async(~invalid.any(), message)
        return KeptRows(target.masked_fill(ignored | invalid, 0), ~ignored, invalid)
    if target.numel() == 0:
        return KeptRows(target, None, None)
    low, high = torch.aminmax(target)
    low_value, high_value = int(low), int(high)
    if low_value >= 0 and high_value < num_classes and not low_value <= ignore_index <= high_value:
        return KeptRows(target, None, None)
    ignored = target == ignore_index
    bad = ~ignored & ((target < 0) | (target >= num_classes))
    if bool(bad.any()):
        raise ValueError(f"{message}, but found {int(target[bad][0])}")
    if not bool(ignored.any()):
        return KeptRows(target, None, None)
    return KeptRows(target.masked_fill(ignored, 0), ~ignored, None)
