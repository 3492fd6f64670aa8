"""What counts as a row of class probabilities (private; one place for the loss and the metrics).

A tensor given as probabilities (``input_type="probs"`` of :func:`simloss.sim_loss`,
of the metrics) holds values in [0, 1] whose sum over the class dimension is 1
within :func:`sum_tolerance`: 1e-3 for 32- and 64-bit floats, 2e-2 for 16-bit
ones (a softmax computed in half precision and summed over 1,000 classes). A
NaN is not a probability. Log-probabilities (``input_type="log_probs"`` of
the loss) are the same condition on their exponentials. Logits passed by
mistake, sigmoid outputs or a distribution with a class dropped fail the check
instead of giving a loss or a metric of something else.
"""

from __future__ import annotations

import torch
from torch import Tensor

from simloss.similarity.operator import concrete

__all__ = ["check_input_distributions", "check_probabilities", "raw_scores_hint", "sum_tolerance"]


def raw_scores_hint(input_type: str) -> str:
    """The end of a message for scores that are not what ``input_type`` says.

    Example:
        >>> raw_scores_hint("probs")
        ' (input_type="probs"; pass input_type="logits" for raw scores)'
    """
    return f' (input_type="{input_type}"; pass input_type="logits" for raw scores)'


def sum_tolerance(dtype: torch.dtype) -> float:
    """How far a row's sum may be from 1: 1e-3, or 2e-2 for 16-bit floats.

    Example:
        >>> sum_tolerance(torch.float32), sum_tolerance(torch.bfloat16)
        (0.001, 0.02)
    """
    return 1e-3 if torch.finfo(dtype).bits >= 32 else 2e-2


def check_probabilities(
    probs: Tensor,
    name: str,
    dim: int = 1,
    hint: str = "",
    *,
    log: bool = False,
    scored: Tensor | None = None,
) -> None:
    """Raise ``ValueError`` unless ``probs`` holds probabilities along ``dim``.

    Values must lie in [0, 1] (NaN does not) and every slice along ``dim`` sum
    to 1 within :func:`sum_tolerance` of ``probs.dtype``. With ``log=True``
    ``probs`` holds log-probabilities: values in [-inf, 0] whose exponentials
    sum to 1 (the same condition on ``exp(probs)``). Reads the values on the
    host (one synchronisation); the caller skips it where values cannot be
    read (under ``torch.compile`` or a ``torch.func`` transform).

    Args:
        probs: a floating tensor; ``dim`` is its class dimension.
        name: the argument's name, used in the message.
        dim: the class dimension.
        hint: appended to the message (e.g. how to pass raw scores instead).
        log: ``probs`` holds log-probabilities.
        scored: optional bool tensor of ``probs``' shape without ``dim``: only
            the slices where it is True are checked (e.g. not the rows of an
            ignored target, which take no part in a loss).

    Example:
        >>> check_probabilities(torch.tensor([[0.25, 0.75]]), "input")
        >>> check_probabilities(torch.tensor([[0.5, 0.7]]), "input")
        Traceback (most recent call last):
        ...
        ValueError: Expected each row of `input` to sum to 1 (within 0.001), but row 0 sums to 1.2
        >>> check_probabilities(torch.tensor([0.5, 0.7]), "input", dim=0)
        Traceback (most recent call last):
        ...
        ValueError: Expected `input` to sum to 1 (within 0.001), but it sums to 1.2
    """
    if probs.numel() == 0:
        return
    outside = ~(probs <= 0) if log else ~((probs >= 0) & (probs <= 1))
    if scored is not None:
        outside &= scored.unsqueeze(dim)
    if bool(outside.any()):
        at = _first_index(outside)
        kind = "log-probabilities in [-inf, 0]" if log else "probabilities in [0, 1]"
        raise ValueError(f"Expected `{name}` {kind}, but found {float(probs[at])} at {at}{hint}")
    tolerance = sum_tolerance(probs.dtype)
    high = torch.float64 if probs.device.type != "mps" else torch.float32
    sums = (probs.exp() if log else probs).sum(dim=dim, dtype=high)
    off = (sums - 1).abs() > tolerance
    if scored is not None:
        off &= scored
    if bool(off.any()):
        after = " after exp" if log else ""
        if sums.dim() == 0:
            raise ValueError(
                f"Expected `{name}` to sum to 1{after} (within {tolerance:g}), but it sums to "
                f"{float(sums):.6g}{after}{hint}"
            )
        index = _first_index(off)
        row = index[0] if len(index) == 1 else index
        raise ValueError(
            f"Expected each row of `{name}` to sum to 1{after} (within {tolerance:g}), but row "
            f"{row} sums to {float(sums[row]):.6g}{after}{hint}"
        )


def _first_index(mask: Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in mask.nonzero()[0].tolist())


def check_input_distributions(
    input: Tensor, target: object, *, ignore_index: int, log: bool
) -> None:
    """The loss's scores given as probabilities (or log-probabilities) over the class dimension.

    Eager: a ``ValueError`` naming the first bad value or row. Under
    ``torch.compile``: the same condition as a tensor-side assertion. Under a
    ``torch.func`` transform the values cannot be checked. The rows of an
    ignored target take no part in the loss and are not checked (a padded
    position may hold anything, as with logits).
    """
    dim = 1 if input.dim() > 1 else 0
    hint = raw_scores_hint("log_probs" if log else "probs")
    if concrete(input):
        values = input.detach()
        try:
            check_probabilities(values, "input", dim, hint, log=log)
        except ValueError:  # only now (no cost when valid): is every bad row an ignored one?
            scored = _scored_rows(input, target, ignore_index)
            if scored is None or not concrete(scored):
                raise
            check_probabilities(values, "input", dim, hint, log=log, scored=scored)
    elif torch.compiler.is_compiling():
        tolerance = sum_tolerance(input.dtype)
        valid = (input <= 0) if log else (input >= 0) & (input <= 1)
        sums = (input.exp() if log else input).sum(dim, dtype=torch.float32)
        bad = ~valid.all(dim) | ((sums - 1).abs() > tolerance)
        scored = _scored_rows(input, target, ignore_index)
        if scored is not None:
            bad = bad & scored
        kind = (
            "log-probabilities in [-inf, 0] whose exponentials sum"
            if log
            else "probabilities in [0, 1] summing"
        )
        # No double quote: inductor's C++ kernels embed the message in a string literal as is.
        message = (
            f"Expected `input` {kind} to 1 (within {tolerance:g}) over the class dimension{hint}"
        ).replace('"', "'")
        torch._assert_async(~bad.any(), message)


def _scored_rows(input: Tensor, target: object, ignore_index: int) -> Tensor | None:
    """Where an index target is not ``ignore_index`` (input's shape without the class dim).

    None for class-probability targets (every row counts) and for a target
    of the wrong kind or shape (the loss's target check names it).
    """
    if not isinstance(target, Tensor) or target.is_floating_point() or target.is_complex():
        return None
    batch = (input.shape[0], *input.shape[2:]) if input.dim() > 1 else ()
    if target.dtype == torch.bool or tuple(target.shape) != tuple(batch):
        return None
    return target != ignore_index
