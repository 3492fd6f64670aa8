"""The similarity in JAX: dense, class order (no C x C matrix) and sparse, behind one interface.

:func:`jax_similarity` turns whatever :func:`simloss.jax.sim_loss` receives
into a :class:`JaxSimilarity`, which answers the loss's three questions
(as :class:`simloss.SimilarityOperator` does in PyTorch):

* :meth:`~JaxSimilarity.rows`: ``S[labels]``, dense (M, C) or as
  ``(columns, values)`` pairs (M, k);
* :meth:`~JaxSimilarity.dense_rows`: ``S[index]`` as a dense (B, C) array;
* :meth:`~JaxSimilarity.similar_mass`: ``probs @ S^T`` (M, C).

A JAX array given as the similarity may be traced (under ``jit``, or a
learnable ``S`` under ``grad``): then only its shape is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from simloss.similarity.arrays import (
    DenseArrays,
    OrderArrays,
    SparseArrays,
    check_similarity_shape,
    similarity_arrays,
)

__all__ = ["JaxSimilarity", "concrete", "jax_similarity"]

_DENSE_ORDER_UP_TO = 2048  # classes: probs @ S from the band's (C, C) matrix; above, a scan
_HIGHEST = jax.lax.Precision.HIGHEST  # float32 matrix products in float32 on every device


def concrete(value: Any) -> bool:
    """Whether ``value``'s values can be read on the host (not traced by jit, grad or vmap)."""
    return not isinstance(value, jax.core.Tracer)


@dataclass(frozen=True)
class JaxSimilarity:
    """One similarity of ``num_classes`` classes, in one of three forms (exactly one is set)."""

    num_classes: int
    matrix: Any = None  # dense (C, C) array (numpy, or a JAX array that may be traced)
    order: OrderArrays | None = None
    index: np.ndarray | None = None  # sparse: (C, k) columns ...
    value: Any = None  # ... and their values

    def rows(self, labels: jax.Array, dtype: Any) -> tuple[jax.Array | None, jax.Array]:
        """``(columns or None, values)``: ``S[labels]`` dense (M, C), or pairs (M, k)."""
        if self.index is not None:
            return jnp.asarray(self.index)[labels], jnp.asarray(self.value, dtype)[labels]
        return None, self.dense_rows(labels, dtype)

    def dense_rows(self, index: jax.Array, dtype: Any) -> jax.Array:
        """``S[index]`` as a dense (B, C) array in ``dtype``."""
        if self.order is not None:
            return _order_rows(index, self.order, self.num_classes, dtype)
        if self.index is not None:
            out = jnp.zeros((index.shape[0], self.num_classes), dtype)
            rows = jnp.arange(index.shape[0])[:, None]
            return out.at[rows, jnp.asarray(self.index)[index]].add(
                jnp.asarray(self.value, dtype)[index]
            )
        return jnp.asarray(self.matrix, dtype)[index]

    def similar_mass(self, probs: jax.Array) -> jax.Array:
        """``probs @ S^T``: the similar probability mass of every class, shape (M, C)."""
        dtype = probs.dtype
        if self.index is not None:
            gathered = probs[:, jnp.asarray(self.index)]  # (M, C, k)
            return jnp.sum(gathered * jnp.asarray(self.value, dtype), axis=-1)
        if self.order is not None and self.num_classes > _DENSE_ORDER_UP_TO:
            return _exponential_filter(probs, self.order.r)
        if self.order is not None:
            matrix = self.dense_rows(jnp.arange(self.num_classes), dtype)
        else:
            matrix = jnp.asarray(self.matrix, dtype)
        return jnp.matmul(probs, matrix.T, precision=_HIGHEST)


def _order_rows(index: jax.Array, order: OrderArrays, num_classes: int, dtype: Any) -> jax.Array:
    """``r^|i - c|`` for the classes ``index`` (B,) and every class c, as (B, C).

    Gathered from the band of :meth:`OrderArrays.band` (the values of
    :func:`~simloss.similarity.class_order`, bit for bit): no (C, C) matrix.
    """
    band = jnp.asarray(order.band(_band_dtype(dtype)), dtype)
    return band[jnp.abs(index[:, None] - jnp.arange(num_classes)[None, :])]


def _band_dtype(dtype: Any) -> str:
    return "float64" if jnp.dtype(dtype) == jnp.float64 else "float32"


def _exponential_filter(values: jax.Array, r: float) -> jax.Array:
    """``values @ S`` for ``S_ij = r^|i-j|`` in O(M * C): two first-order recursions.

    ``a_i = x_i + r a_{i-1}`` and ``b_i = x_i + r b_{i+1}`` by associative
    scans; ``y = a + b - x`` (see :func:`simloss.similarity.order.exponential_filter`).
    """
    if r == 0.0:
        return values
    coefficient = jnp.full_like(values, r)

    def combine(left: tuple[jax.Array, ...], right: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
        return left[0] * right[0], right[0] * left[1] + right[1]

    axis = values.ndim - 1  # reverse=True needs a non-negative axis
    _, causal = jax.lax.associative_scan(combine, (coefficient, values), axis=axis)
    _, anticausal = jax.lax.associative_scan(
        combine, (coefficient, values), axis=axis, reverse=True
    )
    return causal + anticausal - values


def jax_similarity(
    similarity: Any, num_classes: int, *, validate: bool, require_unit_diagonal: bool
) -> JaxSimilarity:
    """Check ``similarity`` as :func:`simloss.sim_loss` does and wrap it for the JAX loss.

    A concrete array (numpy, JAX, a CPU tensor) and the structured forms are
    checked by :func:`simloss.similarity.arrays.similarity_arrays` (the
    PyTorch loss's messages); a traced JAX array only for its shape and dtype.
    """
    if isinstance(similarity, jax.Array):
        if not jnp.issubdtype(similarity.dtype, jnp.floating):
            raise TypeError(
                f"Expected `similarity` to have a floating dtype, but found {similarity.dtype}"
            )
        if not concrete(similarity):
            check_similarity_shape(tuple(similarity.shape), num_classes)
            return JaxSimilarity(num_classes, matrix=similarity)
        host = np.array(similarity)  # a writable copy: torch refuses read-only memory
        if host.dtype not in (np.float32, np.float64):  # bfloat16, float16: checked in float32
            host = host.astype(np.float32)
        similarity_arrays(
            host, num_classes, validate=validate, require_unit_diagonal=require_unit_diagonal
        )
        return JaxSimilarity(num_classes, matrix=similarity)
    arrays = similarity_arrays(
        similarity, num_classes, validate=validate, require_unit_diagonal=require_unit_diagonal
    )
    if isinstance(arrays, OrderArrays):
        return JaxSimilarity(num_classes, order=arrays)
    if isinstance(arrays, SparseArrays):
        return JaxSimilarity(num_classes, index=arrays.index, value=arrays.value)
    assert isinstance(arrays, DenseArrays)
    return JaxSimilarity(num_classes, matrix=arrays.matrix)
