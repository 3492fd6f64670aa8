"""SimLoss in ``keras.ops``: the same formulas as the PyTorch and JAX losses, on every backend.

Index labels are computed in log space, ``logsumexp(z) - wlse(z, S[y])``,
with the weighted log-sum-exp shifted by the largest logit among the
similar classes (exact with no epsilon). Its derivative is plain autodiff
of that formula, in which the masked classes enter through ``where`` (no
``log`` of a sum that contains them), so the gradient is finite and exact
where entries of S are 0; a row whose similar classes all have logit
``-inf`` has an infinite loss and no finite gradient, as the formula.
Probability labels are computed in linear space, ``-sum_k T_k log (p S^T)_k``;
rows where a label class's similar mass underflows are recomputed in log
space, only when one does (``ops.cond``).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops
from keras.src.backend.common.symbolic_scope import in_symbolic_scope

from simloss.similarity.arrays import DenseArrays, OrderArrays, SimilarityArrays, SparseArrays

__all__ = ["KerasSimilarity", "index_losses", "soft_losses"]


class KerasSimilarity:
    """The similarity as backend tensors, made once per dtype: rows and similar masses."""

    def __init__(self, arrays: SimilarityArrays) -> None:
        self.arrays = arrays
        self.num_classes = arrays.num_classes
        self._tensors: dict[tuple[str, str, str], Any] = {}

    def _tensor(self, name: str, dtype: str) -> Any:
        """The array ``name`` as a tensor of ``dtype``.

        Kept between calls only where it is a real eager tensor (PyTorch
        backend), keyed by name, dtype and device. Never kept: a tensor made
        during Keras' symbolic shape inference (on PyTorch the ``meta``
        device, with no values), under ``torch.compile``, or under JAX and
        TensorFlow, where a tensor made while tracing belongs to that trace
        (the numpy array becomes a constant of each traced graph instead).
        """
        key = _cache_key(name, dtype)
        if key is not None and key in self._tensors:
            return self._tensors[key]
        arrays = self.arrays
        if isinstance(arrays, OrderArrays):
            value: np.ndarray = arrays.band("float64" if dtype == "float64" else "float32")
        elif isinstance(arrays, SparseArrays):
            value = arrays.index if name == "index" else arrays.value
        else:
            assert isinstance(arrays, DenseArrays)
            value = arrays.matrix
        tensor = ops.convert_to_tensor(value, dtype=dtype)
        if key is not None and tensor.device.type != "meta":
            self._tensors[key] = tensor
        return tensor

    def rows(self, labels: Any, dtype: str) -> tuple[Any | None, Any]:
        """``(columns or None, values)``: ``S[labels]`` dense (M, C), or pairs (M, k)."""
        if isinstance(self.arrays, SparseArrays):
            columns = ops.take(self._tensor("index", "int32"), labels, axis=0)
            return columns, ops.take(self._tensor("value", dtype), labels, axis=0)
        return None, self.dense_rows(labels, dtype)

    def dense_rows(self, index: Any, dtype: str) -> Any:
        """``S[index]`` as a dense (B, C) tensor."""
        if isinstance(self.arrays, OrderArrays):
            classes = ops.arange(self.num_classes, dtype="int32")
            distance = ops.abs(ops.expand_dims(index, 1) - ops.expand_dims(classes, 0))
            return ops.take(self._tensor("band", dtype), distance, axis=0)
        if isinstance(self.arrays, SparseArrays):
            columns, values = self.rows(index, dtype)
            hot = ops.one_hot(columns, self.num_classes, dtype=dtype)  # (B, k, C)
            return ops.sum(hot * ops.expand_dims(values, -1), axis=1)
        return ops.take(self._tensor("matrix", dtype), index, axis=0)

    def similar_mass(self, probs: Any, dtype: str) -> Any:
        """``probs @ S^T`` (M, C); a class order or sparse S makes its (C, C) matrix here."""
        if isinstance(self.arrays, DenseArrays):
            matrix = self._tensor("matrix", dtype)
        else:
            matrix = self.dense_rows(ops.arange(self.num_classes, dtype="int32"), dtype)
        # einsum, not matmul: Keras' torch matmul computes float64 inputs in float32.
        return ops.einsum("nc,kc->nk", probs, matrix)


def _cache_key(name: str, dtype: str) -> tuple[str, str, str] | None:
    """``(name, dtype, device)`` of a tensor made now, if it may be kept; else None.

    Only the PyTorch backend keeps tensors, and only eager ones on a real
    device: Keras first calls a loss symbolically (``compute_output_spec``,
    tensors on the ``meta`` device, which hold no values), and a tensor kept
    from that call would poison every real step after it.
    """
    if keras.backend.backend() != "torch" or in_symbolic_scope():
        return None
    import torch
    from keras.src.backend.torch.core import get_device

    device = str(get_device())
    if device == "meta" or torch.compiler.is_compiling():
        return None
    return (name, dtype, device)


def weighted_logsumexp(z: Any, w: Any) -> Any:
    """``log sum_c w_c exp(z_c)`` over the last axis, shifted by the largest similar logit."""
    support = w > 0
    minus_inf = ops.full_like(z, -np.inf)
    on_support = ops.where(support, z, minus_inf)
    shift = ops.stop_gradient(ops.max(on_support, axis=-1, keepdims=True))
    shift = ops.where(ops.isinf(shift), ops.zeros_like(shift), shift)  # dead rows: -inf below
    total = ops.sum(w * ops.exp(on_support - shift), axis=-1)
    return ops.squeeze(shift, -1) + ops.log(total)


def index_losses(scores: Any, labels: Any, similarity: KerasSimilarity, from_logits: bool) -> Any:
    """``-log sum_c S[y, c] p[c]`` per row (M,) for class indices ``labels`` (M,)."""
    dtype = keras.backend.standardize_dtype(scores.dtype)
    columns, values = similarity.rows(labels, dtype)
    gathered = scores if columns is None else ops.take_along_axis(scores, columns, axis=1)
    if not from_logits:
        return -ops.log(ops.sum(values * gathered, axis=1))
    return ops.logsumexp(scores, axis=1) - weighted_logsumexp(gathered, values)


def _tiny(dtype: str) -> float:
    """Below this a sum of probabilities may have lost its relative precision."""
    info = np.finfo(dtype)
    return float(info.smallest_normal) / float(info.eps)


def soft_losses(scores: Any, weights: Any, similarity: KerasSimilarity, from_logits: bool) -> Any:
    """Per-row ``-sum_k T_k log (p S^T)_k`` for label weights ``T >= 0`` (M, C)."""
    dtype = keras.backend.standardize_dtype(scores.dtype)
    probs = ops.softmax(scores, axis=1) if from_logits else scores
    mass = similarity.similar_mass(probs, dtype)
    if not from_logits:
        return _linear(mass, weights)
    unstable = ops.any((weights != 0) & (mass < _tiny(dtype)), axis=1)
    # Unstable rows enter the linear formula with weight 0 (no inf/NaN in its gradient).
    linear = _linear(
        mass, ops.where(ops.expand_dims(unstable, 1), ops.zeros_like(weights), weights)
    )

    def exact() -> Any:
        log_space = _log_space(scores, weights, similarity, dtype)
        return ops.where(unstable, log_space, linear)

    return ops.cond(ops.any(unstable), exact, lambda: linear)


def _linear(mass: Any, weights: Any) -> Any:
    used = (weights != 0) | (mass > 0)
    safe = ops.where(used, mass, ops.ones_like(mass))
    return -ops.sum(ops.where(used, weights * ops.log(safe), ops.zeros_like(mass)), axis=1)


def _log_space(scores: Any, weights: Any, similarity: KerasSimilarity, dtype: str) -> Any:
    """``-sum_k T_k log A_k`` with every term in log space, one row at a time (C x C each)."""
    matrix = similarity.dense_rows(ops.arange(similarity.num_classes, dtype="int32"), dtype)

    def row(args: Any) -> Any:
        z, row_weights = args
        logits = ops.broadcast_to(ops.expand_dims(z, 0), ops.shape(matrix))
        log_mass = weighted_logsumexp(logits, matrix) - ops.logsumexp(z)
        used = row_weights != 0  # a class of weight 0 may have no similar mass (-inf)
        return -ops.sum(row_weights * ops.where(used, log_mass, ops.zeros_like(log_mass)))

    return ops.map(row, (scores, weights))
