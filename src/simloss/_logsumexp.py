"""The weighted log-sum-exp ``log sum_c w_c exp(z_c)``: SimLoss's exact, traceable core.

.. math::

    \\operatorname{wlse}(z, w) = \\log \\sum_{c} w_c\\, e^{z_c}, \\qquad w_c \\ge 0

For logits ``z`` and the similarity row ``w = S[y]``, SimLoss is
``logsumexp(z) - wlse(z, S[y])``. The shift is the largest logit among the
classes with ``w_c > 0`` (not the largest logit overall), so no term that
matters can underflow: the value is exact however far the similar classes
lie below the rest, with no epsilon and no data-dependent branch.

:class:`WeightedLogSumExp` is an autograd function that works with every
PyTorch transform: its backward is built from differentiable operations
(double backward, Hessian-vector products), it has a forward-mode rule
(``jvp``) and a generated ``vmap`` rule (``torch.func``), and it has no host
synchronisation (``torch.compile(fullgraph=True)``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "WeightedLogSumExp",
    "apply_weighted_logsumexp",
    "posterior",
    "tiny",
    "weighted_logsumexp",
]

_INF = float("inf")


def tiny(dtype: torch.dtype) -> float:
    """Below this value a sum of probabilities may have lost its relative precision.

    The smallest normal number of ``dtype`` divided by its epsilon: terms below
    the smallest normal number are subnormal and carry fewer bits, so a sum
    under this bound is recomputed in log space (or, in compiled code, taken
    from the shifted exponentials).

    Example:
        >>> tiny(torch.float32)
        9.860761315262648e-32
    """
    bound = _TINY.get(dtype)
    if bound is None:
        info = torch.finfo(dtype)
        bound = _TINY[dtype] = info.smallest_normal / info.eps
    return bound


_TINY: dict[torch.dtype, float] = {}


def _shifted(z: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(support, z on the support (-inf elsewhere), shift, dead rows)``.

    ``shift`` is the largest logit on the support of ``w`` (0 where there is
    none). A row whose similar classes all have logit -inf (or that has no
    similar class) is "dead": its value is -inf.
    """
    support = w > 0
    on_support = z.masked_fill(~support, -_INF)
    shift = on_support.amax(-1, keepdim=True)
    dead = shift == -_INF
    return support, on_support, shift.masked_fill(dead, 0.0), dead


def weighted_logsumexp(z: Tensor, w: Tensor) -> Tensor:
    """``log sum_c w_c exp(z_c)`` over the last dimension, exactly (no autograd rule).

    Args:
        z: scores (..., C).
        w: non-negative weights (..., C).

    Returns:
        Tensor (...,); ``-inf`` where every weight is 0.

    Example:
        >>> z = torch.tensor([0.0, 0.0, 0.0, 0.0, 120.0])
        >>> round(float(weighted_logsumexp(z, torch.tensor([1.0, 0.5, 0.0, 0.0, 0.0]))), 6)  # log 1.5
        0.405465
    """
    _, on_support, shift, _ = _shifted(z, w)
    total = (w * torch.exp(on_support - shift)).sum(-1)
    return shift.squeeze(-1) + torch.log(total)


def _exp_shifted(logits: Tensor, shift: Tensor) -> Tensor:
    """``exp(logits - shift)``, capped below the dtype's overflow (an inf would make 0 * inf)."""
    limit = math.log(torch.finfo(logits.dtype).max) - 1.0
    return torch.exp((logits - shift).clamp(max=limit))


def posterior(z: Tensor, w: Tensor) -> Tensor:
    """``w * exp(z) / sum(w * exp(z))``: the gradient of :func:`weighted_logsumexp` in ``z``.

    Differentiable (to any order) in ``z`` and ``w``, also in the entries
    where ``w_c = 0`` (a learnable similarity's zeros); exact where the
    weighted mass underflows; for a dead row the weights normalised.
    """
    support, _, shift, dead = _shifted(z, w)
    logits = torch.where(dead & support, 0.0, z)  # dead rows: similar classes equally likely
    scaled = w * _exp_shifted(logits, shift.detach())
    return scaled / scaled.sum(-1, keepdim=True)


def _weight_gradient(z: Tensor, w: Tensor) -> Tensor:
    """``exp(z_c) / sum(w * exp(z))``: the gradient of the weighted log-sum-exp in ``w``.

    Exact for every class, also where ``w_c = 0``, until it overflows (a
    class whose logit dwarfs every similar one's by ~88 in float32).
    """
    support, _, shift, dead = _shifted(z, w)
    shift = shift.detach()
    # Dead rows: similar classes count as logit 0; any other class dominates infinitely.
    alive = torch.where(dead & support, 0.0, z)
    total = (w * _exp_shifted(alive, shift)).sum(-1, keepdim=True)
    logits = torch.where(dead & ~support, z + _INF, alive)
    return torch.exp(logits - shift) / total


class WeightedLogSumExp(torch.autograd.Function):
    """Autograd function of :func:`weighted_logsumexp` with exact, differentiable rules.

    ``apply(z, w)`` with ``z`` and ``w`` of shape (..., C) returns (...,).
    Gradients: ``d/dz = posterior(z, w)``, ``d/dw = exp(z) / sum(w exp(z))``,
    both differentiable to any order, also in the entries where ``w_c = 0``.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(z: Tensor, w: Tensor) -> Tensor:
        return weighted_logsumexp(z, w)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor], output: Tensor) -> None:
        z, w = inputs
        ctx.save_for_backward(z, w)
        ctx.save_for_forward(z, w)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        z, w = ctx.saved_tensors
        grad = grad.unsqueeze(-1)
        grad_z = grad * posterior(z, w) if ctx.needs_input_grad[0] else None
        grad_w = grad * _weight_gradient(z, w) if ctx.needs_input_grad[1] else None
        return grad_z, grad_w

    @staticmethod
    def jvp(ctx: Any, tangent_z: Tensor | None, tangent_w: Tensor | None) -> Tensor:
        """Forward-mode rule (``torch.func.jvp``, dual tensors)."""
        z, w = ctx.saved_tensors
        out = torch.zeros_like(z[..., 0])
        if tangent_z is not None:
            out = out + (posterior(z, w) * tangent_z).sum(-1)
        if tangent_w is not None:
            out = out + (_weight_gradient(z, w) * tangent_w).sum(-1)
        return out


class _CompiledWeightedLogSumExp(torch.autograd.Function):
    """:class:`WeightedLogSumExp` without the forward-mode rule, which Dynamo cannot trace."""

    generate_vmap_rule = True
    forward = WeightedLogSumExp.forward
    setup_context = WeightedLogSumExp.setup_context
    backward = WeightedLogSumExp.backward


def apply_weighted_logsumexp(z: Tensor, w: Tensor) -> Tensor:
    """``wlse(z, w)`` with autograd: the twin without ``jvp`` under ``torch.compile``."""
    if torch.compiler.is_compiling():
        return _CompiledWeightedLogSumExp.apply(z, w)
    return WeightedLogSumExp.apply(z, w)
