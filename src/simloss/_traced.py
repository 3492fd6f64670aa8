"""SimLoss of index targets for compiled code: one exponential per score, nothing (N, C) saved.

Under ``torch.compile`` the loss is one graph that inductor fuses. Written as
:func:`~simloss._rowloss.index_losses` (the log-sum-exp of the scores and the
weighted log-sum-exp of the similar ones, each with its own shift) it costs
two exponentials per score in the forward and two more in the backward,
where cross-entropy needs one of each. Here every score gets one
exponential, shifted by the largest similar score where the class is similar
to the target (``S[y, c] > 0``) and by the largest score elsewhere:

.. math::

    u_c = e^{z_c - m_{[S_{yc} > 0]}}, \\qquad
    \\operatorname{lse}(z) = m + \\log\\Big(\\sum_{S_{yc} = 0} u_c
        + e^{m_s - m} \\sum_{S_{yc} > 0} u_c\\Big), \\qquad
    \\operatorname{wlse}(z, S_y) = m_s + \\log \\sum_c S_{yc} u_c,

so both sums are exact however far the similar classes lie below the rest
(the shifts are the ones of :mod:`simloss._logsumexp`). The backward needs
``softmax(z) - S_y * softmax(z) / q`` with ``q = S_y . softmax(z)``; it takes
one exponential per score too: ``exp(z - lse)`` where ``q`` is a normal
number (or the class is not similar), else ``exp(z - wlse)``, from which the
other term follows by a factor of the row. Forward and backward read the
rows ``S[y]`` where they are needed, so inductor gathers them inside its
kernels (or computes ``r^|y - c|`` from the target, for
:class:`simloss.ClassOrder`) instead of materialising an (N, C) tensor; only
the scores, the rows' inputs and three numbers per row are saved.

Used for logits and log-probabilities under ``torch.compile`` when no gradient
flows to the similarity (a learnable ``S`` takes the reference formulas).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from simloss._logsumexp import tiny

__all__ = ["traced_index_losses"]

_INF = float("inf")


def traced_index_losses(
    scores: Tensor, similar: Tensor, keep: Tensor, *, input_is_logits: bool
) -> Tensor:
    """Per-sample SimLoss (N,) of scores (N, C) and their similarity rows ``S[y]`` (N, C).

    Args:
        scores: logits (``input_is_logits``) or log-probabilities (not renormalised).
        similar: the rows ``S[y]``, values in [0, 1] (not differentiated).
        keep: bool (N,): rows whose gradient counts; the others get a zero
            gradient whatever their scores (their loss is masked by the caller).
        input_is_logits: see ``scores``.
    """
    losses: Tensor = _TracedIndexLoss.apply(scores, similar, keep, input_is_logits)
    return losses


def _shifts(scores: Tensor, support: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Largest score ``m``, largest similar score ``m_s`` (0 where none is finite), dead rows.

    A row is dead when every similar score is -inf (or no class is similar):
    its similar mass is 0 and its loss inf. All three are (N, 1).
    """
    largest = scores.amax(1, keepdim=True)
    largest_similar = scores.masked_fill(~support, -_INF).amax(1, keepdim=True)
    dead = largest_similar == -_INF
    return largest, largest_similar.masked_fill(dead, 0.0), dead


class _TracedIndexLoss(torch.autograd.Function):
    """:func:`traced_index_losses` (its arguments in order, as ``apply`` takes them)."""

    @staticmethod
    def forward(
        ctx: Any, scores: Tensor, similar: Tensor, keep: Tensor, input_is_logits: bool
    ) -> Tensor:
        support = similar > 0
        largest, largest_similar, dead = _shifts(scores, support)
        u = torch.exp(scores - torch.where(support, largest_similar, largest))
        log_similar = largest_similar + torch.log((similar * u).sum(1, keepdim=True))
        # A dead row's posterior is S_y / sum(S_y) (as in simloss._logsumexp.posterior).
        dead_share = torch.where(dead, 1.0 / similar.sum(1, keepdim=True), 0.0)
        ctx.input_is_logits = input_is_logits
        if not input_is_logits:  # log-probabilities are not renormalised (as nll_loss)
            shift = log_similar.masked_fill(dead, 0.0)
            ctx.save_for_backward(scores, similar, keep, shift, dead, dead_share)
            return -log_similar.squeeze(1)
        other = torch.where(support, 0.0, u).sum(1, keepdim=True)
        similar_part = torch.where(support, u, 0.0).sum(1, keepdim=True)
        scale = torch.exp((largest_similar - largest).clamp(max=0.0))  # dead rows: 1
        log_total = largest + torch.log(other + scale * similar_part)
        # The gradient is softmax - S_y * softmax / mass with mass = S_y . softmax. Where the
        # mass is not a normal number, the similar classes take exp(z - wlse) instead.
        mass = torch.exp(log_similar - log_total)
        normal = mass >= tiny(scores.dtype)
        from_similar = ~normal & ~dead
        similar_factor = torch.where(normal, 1.0 / mass, torch.where(dead, 0.0, 1.0))
        ctx.save_for_backward(
            scores,
            similar,
            keep,
            log_total,
            log_similar,
            mass,
            from_similar,
            similar_factor,
            dead_share,
        )
        return (log_total - log_similar).squeeze(1)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        limit = math.log(torch.finfo(grad_output.dtype).max) - 1.0
        if ctx.input_is_logits:
            saved = ctx.saved_tensors
            scores, similar, keep, log_total, log_similar, mass = saved[:6]
            from_similar, similar_factor, dead_share = saved[6:]
            # One exponential per score: exp(z - lse) = softmax, or on the similar classes of
            # rows without a normal mass exp(z - wlse), where softmax = mass * exp.
            similar_exp = from_similar & (similar > 0)
            shift = torch.where(similar_exp, log_similar, log_total)
            exp = torch.exp((scores - shift).clamp(max=limit))
            softmax_factor = torch.where(similar_exp, mass, 1.0)
            grad = exp * (softmax_factor - similar * similar_factor) - similar * dead_share
        else:  # minus the posterior S_y exp(x - wlse)
            scores, similar, keep, shift, dead, dead_share = ctx.saved_tensors
            exp = torch.exp((scores - shift).clamp(max=limit))
            grad = -similar * torch.where(dead, dead_share, exp)
        grad = grad * grad_output.unsqueeze(1)
        return torch.where(keep.unsqueeze(1), grad, 0.0), None, None, None
