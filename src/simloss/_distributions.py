"""What counts as a row of class probabilities (private; one place for the loss and the metrics).

A tensor given as probabilities (``input_type="probs"`` of :func:`simloss.sim_loss`,
of the metrics) holds values in [0, 1] whose sum over the class dimension is 1
within :func:`sum_tolerance`: 1e-3 for 32- and 64-bit floats, 2e-2 for 16-bit
ones (a softmax computed in half precision and summed over 1,000 classes). A
NaN is not a probability. Logits passed by mistake, sigmoid outputs or a
distribution with a class dropped fail the check instead of giving a loss or a
metric of something else.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["RAW_SCORES_HINT", "check_probabilities", "sum_tolerance"]

RAW_SCORES_HINT = ' (input_type="probs"; pass input_type="logits" for raw scores)'


def sum_tolerance(dtype: torch.dtype) -> float:
    """How far a row's sum may be from 1: 1e-3, or 2e-2 for 16-bit floats.

    Example:
        >>> sum_tolerance(torch.float32), sum_tolerance(torch.bfloat16)
        (0.001, 0.02)
    """
    return 1e-3 if torch.finfo(dtype).bits >= 32 else 2e-2


def check_probabilities(probs: Tensor, name: str, dim: int = 1, hint: str = "") -> None:
    """Raise ``ValueError`` unless ``probs`` holds probabilities along ``dim``.

    Values must lie in [0, 1] (NaN does not) and every slice along ``dim`` sum
    to 1 within :func:`sum_tolerance` of ``probs.dtype``. Reads the values on
    the host (one synchronisation); the caller skips it where values cannot
    be read (under ``torch.compile`` or a ``torch.func`` transform).

    Args:
        probs: a floating tensor; ``dim`` is its class dimension.
        name: the argument's name, used in the message.
        dim: the class dimension.
        hint: appended to the message (e.g. how to pass raw scores instead).

    Example:
        >>> check_probabilities(torch.tensor([[0.25, 0.75]]), "input")
        >>> check_probabilities(torch.tensor([[0.5, 0.7]]), "input")
        Traceback (most recent call last):
        ...
        ValueError: Expected each row of `input` to sum to 1 (within 0.001), but row 0 sums to 1.2
    """
    if probs.numel() == 0:
        return
    outside = ~((probs >= 0) & (probs <= 1))
    if bool(outside.any()):
        at = _first_index(outside)
        raise ValueError(
            f"Expected `{name}` probabilities in [0, 1], but found {float(probs[at])} at {at}{hint}"
        )
    tolerance = sum_tolerance(probs.dtype)
    sums = probs.sum(dim=dim, dtype=torch.float64 if probs.device.type != "mps" else None)
    off = (sums - 1).abs() > tolerance
    if bool(off.any()):
        index = _first_index(off)
        row = index[0] if len(index) == 1 else index
        raise ValueError(
            f"Expected each row of `{name}` to sum to 1 (within {tolerance:g}), but row {row} "
            f"sums to {float(sums[row]):.6g}{hint}"
        )


def _first_index(mask: Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in mask.nonzero()[0].tolist())
