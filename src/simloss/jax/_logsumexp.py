"""The weighted log-sum-exp ``log sum_c w_c exp(z_c)`` in JAX, with an exact ``custom_jvp``.

.. math::

    \\operatorname{wlse}(z, w) = \\log \\sum_{c} w_c\\, e^{z_c}, \\qquad w_c \\ge 0

The twin of :mod:`simloss._logsumexp`: the shift is the largest logit among
the classes with ``w_c > 0``, so no term that matters underflows (exact with
no epsilon). Autodiff of that formula would differentiate ``log`` of a masked
sum: the derivative in ``w`` would be 0 where ``w_c = 0`` and a row whose
similar classes all have logit ``-inf`` would give NaN. The ``custom_jvp``
gives the exact derivatives instead, ``d/dz = posterior(z, w)`` and
``d/dw = exp(z) / sum(w exp(z))``, both built from differentiable
operations, so ``grad``, ``jacrev``, ``jacfwd``, ``hessian`` and ``vmap``
all work to any order.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

__all__ = ["posterior", "weighted_logsumexp"]


def _shifted(z: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """``(support, z on the support (-inf elsewhere), shift, dead rows)`` (see simloss._logsumexp)."""
    support = w > 0
    on_support = jnp.where(support, z, -jnp.inf)
    shift = jnp.max(on_support, axis=-1, keepdims=True)
    dead = shift == -jnp.inf
    return support, on_support, jnp.where(dead, jnp.zeros_like(shift), shift), dead


@jax.custom_jvp
def weighted_logsumexp(z: jax.Array, w: jax.Array) -> jax.Array:
    """``log sum_c w_c exp(z_c)`` over the last axis, exactly.

    Args:
        z: scores (..., C).
        w: non-negative weights (..., C) of ``z``'s dtype.

    Returns:
        Array (...,); ``-inf`` where every weight is 0 or every weighted logit is ``-inf``.

    Example:
        >>> import jax.numpy as jnp
        >>> z = jnp.array([0.0, 0.0, 0.0, 0.0, 120.0])
        >>> round(float(weighted_logsumexp(z, jnp.array([1.0, 0.5, 0.0, 0.0, 0.0]))), 6)  # log 1.5
        0.405465
    """
    _, on_support, shift, _ = _shifted(z, w)
    total = jnp.sum(w * jnp.exp(on_support - shift), axis=-1)
    return shift[..., 0] + jnp.log(total)


def _exp_shifted(logits: jax.Array, shift: jax.Array) -> jax.Array:
    """``exp(logits - shift)``, capped below the dtype's overflow (an inf would make 0 * inf)."""
    limit = float(np.log(jnp.finfo(logits.dtype).max)) - 1.0
    return jnp.exp(jnp.minimum(logits - shift, limit))


def posterior(z: jax.Array, w: jax.Array) -> jax.Array:
    """``w * exp(z) / sum(w * exp(z))``: the derivative of :func:`weighted_logsumexp` in ``z``.

    Differentiable to any order in ``z`` and ``w``, also where ``w_c = 0``;
    exact where the weighted mass underflows; for a dead row the weights normalised.
    """
    support, _, shift, dead = _shifted(z, w)
    logits = jnp.where(dead & support, jnp.zeros_like(z), z)  # dead rows: similar classes alike
    scaled = w * _exp_shifted(logits, jax.lax.stop_gradient(shift))
    return scaled / jnp.sum(scaled, axis=-1, keepdims=True)


def _weight_gradient(z: jax.Array, w: jax.Array) -> jax.Array:
    """``exp(z_c) / sum(w * exp(z))``: the derivative of the weighted log-sum-exp in ``w``."""
    support, _, shift, dead = _shifted(z, w)
    shift = jax.lax.stop_gradient(shift)
    alive = jnp.where(dead & support, jnp.zeros_like(z), z)
    total = jnp.sum(w * _exp_shifted(alive, shift), axis=-1, keepdims=True)
    logits = jnp.where(dead & ~support, z + jnp.inf, alive)
    return jnp.exp(logits - shift) / total


def _weighted_logsumexp_jvp(primals: Any, tangents: Any) -> tuple[jax.Array, jax.Array]:
    z, w = primals
    tangent_z, tangent_w = tangents
    out = weighted_logsumexp(z, w)
    tangent = jnp.zeros_like(out)
    if not isinstance(tangent_z, SymbolicZero):
        tangent = tangent + jnp.sum(posterior(z, w) * tangent_z, axis=-1)
    if not isinstance(tangent_w, SymbolicZero):
        tangent = tangent + jnp.sum(_weight_gradient(z, w) * tangent_w, axis=-1)
    return out, tangent


# Symbolic zeros: a constant w (the usual case) costs nothing, and an overflowing
# d/dw (inf) is never multiplied by a zero tangent (inf * 0 = NaN).
weighted_logsumexp.defjvp(_weighted_logsumexp_jvp, symbolic_zeros=True)
