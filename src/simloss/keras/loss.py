"""SimLoss as a Keras 3 loss: ``keras.losses.Loss`` written in ``keras.ops`` (every backend)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import torch
from keras import ops
from keras.src.backend import set_keras_mask

from simloss._distributions import check_probabilities, raw_scores_hint
from simloss._options import check_input_type, check_label_smoothing
from simloss.keras._ops import KerasSimilarity, index_losses, soft_losses
from simloss.similarity.arrays import (
    DenseArrays,
    OrderArrays,
    SimilarityArrays,
    SparseArrays,
    similarity_arrays,
)
from simloss.similarity.structured import ClassOrder, SparseSimilarity

__all__ = ["SimLoss"]

_LOW_PRECISION = ("float16", "bfloat16")


@keras.saving.register_keras_serializable(package="simloss")
class SimLoss(keras.losses.Loss):
    """Similarity-based cross-entropy (SimLoss, Eq. 1 of the paper) for Keras 3.

    .. math::

        \\ell_i = -\\log \\sum_{c=1}^{C} S_{y_i, c}\\, p_i[c],
        \\qquad p_i = \\operatorname{softmax}(z_i)

    and for one-hot or probability labels :math:`q_i`,
    :math:`\\ell_i = -\\sum_k q_{ik} \\log \\sum_c S_{k, c}\\, p_i[c]`. With
    :math:`S = I` it is ``SparseCategoricalCrossentropy`` (integer labels) or
    ``CategoricalCrossentropy`` (one-hot labels) with the same options, and
    its values and gradients are those of :func:`simloss.sim_loss`. Written
    in ``keras.ops``: the same code runs on the JAX, PyTorch and TensorFlow
    backends, in ``model.fit`` and eagerly.

    Exact with no epsilon and no clipping: logits are used in log space (a
    confident mistake gives its true loss), probabilities
    (``from_logits=False``) as they are, neither clipped at Keras' epsilon
    nor renormalised. Inputs in bfloat16 or float16 (a loss ``dtype`` of
    16 bits) are computed in float32 and the per-example losses returned in
    that dtype; under the ``mixed_float16``/``mixed_bfloat16`` policies the
    loss computes in float32 (Keras converts the outputs to the loss's dtype).

    Args:
        similarity: a dense (C, C) numpy array or CPU tensor (e.g.
            ``simloss.similarity.class_order(C, r)``) with values in [0, 1]
            and ones on the diagonal, a :class:`simloss.ClassOrder` (index
            labels use rows ``r^|i-j|`` computed per batch, no (C, C) matrix),
            or a :class:`simloss.SparseSimilarity`. Checked once, here, with
            the PyTorch loss's checks and messages.
        from_logits: ``y_pred`` holds logits (default, as :func:`simloss.sim_loss`);
            False: probabilities (a softmax output), checked where the
            values can be read (outside compiled graphs).
        label_smoothing: amount in [0, 1] of the uniform distribution mixed
            into the labels (``F.cross_entropy``'s and Keras' meaning).
        ignore_class: integer labels equal to it give a loss of 0 and are
            masked out of the reduction, as in ``SparseCategoricalCrossentropy``.
        require_unit_diagonal: require :math:`S_{ii} = 1`, as the paper does.
        reduction: a Keras reduction (``"sum_over_batch_size"``, ``"sum"``,
            ``"mean"``, ``"mean_with_sample_weight"``, ``None``).
        name: the loss's name.
        dtype: the dtype of the loss's computation (Keras' ``floatx()`` by default).

    Call arguments: ``y_true`` integer labels of shape (...) or (..., 1), or
    one-hot/probability labels of shape (..., C); ``y_pred`` (..., C);
    ``sample_weight`` as for every Keras loss. Integer labels outside [0, C)
    raise a ``ValueError`` where the values can be read and give a NaN loss
    inside compiled graphs.

    Example:
        >>> import numpy as np
        >>> import keras
        >>> from simloss.keras import SimLoss
        >>> from simloss.similarity import class_order
        >>> logits = np.array([[2.0, 1.0, -1.0], [0.0, 3.0, 0.5]], "float32")
        >>> labels = np.array([1, 2])
        >>> ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        >>> bool(np.isclose(SimLoss(np.eye(3))(labels, logits), ce(labels, logits)))
        True
        >>> round(float(SimLoss(class_order(3, 0.5))(labels, logits)), 4)
        0.5531

    References:
        Kobs, Steininger, Zehe, Lautenschlager, Hotho: "SimLoss: Class Similarities in
        Cross Entropy", ISMIS 2020, https://arxiv.org/abs/2003.03182
    """

    def __init__(
        self,
        similarity: Any,
        from_logits: bool = True,
        label_smoothing: float = 0.0,
        ignore_class: int | None = None,
        require_unit_diagonal: bool = True,
        reduction: str | None = "sum_over_batch_size",
        name: str = "sim_loss",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not isinstance(from_logits, bool):
            raise TypeError(
                f"Expected `from_logits` to be a bool, but found {type(from_logits).__name__}"
            )
        input_type = "logits" if from_logits else "probs"
        check_input_type(input_type)
        label_smoothing = check_label_smoothing(label_smoothing)
        if ignore_class is not None and (
            isinstance(ignore_class, bool) or not isinstance(ignore_class, (int, np.integer))
        ):
            raise TypeError(
                f"Expected `ignore_class` to be an int or None, but found {type(ignore_class).__name__}"
            )
        if isinstance(similarity, dict):  # from get_config
            similarity = _similarity_from_config(similarity, require_unit_diagonal)
        num_classes = _num_classes_of(similarity)
        self._arrays = similarity_arrays(
            similarity, num_classes, require_unit_diagonal=require_unit_diagonal
        )
        self._similarity = KerasSimilarity(self._arrays)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.ignore_class = None if ignore_class is None else int(ignore_class)
        self.require_unit_diagonal = require_unit_diagonal

    @property
    def num_classes(self) -> int:
        """The number of classes C of the similarity."""
        return self._arrays.num_classes

    def call(self, y_true: Any, y_pred: Any) -> Any:
        num_classes = self.num_classes
        if y_pred.shape[-1] is not None and y_pred.shape[-1] != num_classes:
            raise ValueError(
                f"Expected `y_pred` with {num_classes} classes along its last axis (the "
                f"similarity's size), but found shape {tuple(y_pred.shape)}"
            )
        out_dtype = keras.backend.standardize_dtype(y_pred.dtype)
        dtype = "float32" if out_dtype in _LOW_PRECISION else out_dtype
        scores = ops.cast(y_pred, dtype)
        sparse = _is_sparse(y_true, y_pred)
        if sparse and len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, -1)
        batch_shape = ops.shape(scores)[:-1]
        flat = ops.reshape(scores, (-1, num_classes))
        if not self.from_logits:
            _check_probabilities(flat)
        if sparse:
            losses, valid = self._sparse_losses(flat, ops.reshape(y_true, (-1,)))
        else:
            if self.ignore_class is not None:
                raise ValueError(
                    "Expected integer labels with `ignore_class`, but found one-hot or "
                    f"probability labels of shape {tuple(y_true.shape)}"
                )
            labels = ops.reshape(ops.cast(y_true, dtype), (-1, num_classes))
            weights = labels * (1.0 - self.label_smoothing) + self.label_smoothing / num_classes
            losses, valid = soft_losses(flat, weights, self._similarity, self.from_logits), None
        losses = ops.reshape(losses, batch_shape)
        if out_dtype != dtype:
            losses = ops.cast(losses, out_dtype)
        if valid is not None:
            # The mask SparseCategoricalCrossentropy(ignore_class=...) sets: the reduction
            # then averages over the kept labels. Keras has no public name for it.
            set_keras_mask(losses, mask=ops.reshape(valid, batch_shape))
        return losses

    def _sparse_losses(self, scores: Any, labels: Any) -> tuple[Any, Any | None]:
        """Losses of integer labels (M,) and the rows kept (None: all)."""
        num_classes = self.num_classes
        labels = ops.cast(labels, "int32")
        keep = None if self.ignore_class is None else labels != self.ignore_class
        invalid = (labels < 0) | (labels >= num_classes)
        if keep is not None:
            invalid = invalid & keep
        _check_labels(labels, invalid, num_classes, self.ignore_class)
        usable = ~invalid if keep is None else keep & ~invalid
        safe_labels = ops.where(usable, labels, ops.zeros_like(labels))
        # Ignored rows are replaced by zero logits (uniform probabilities) before any
        # arithmetic: their loss is 0 and no NaN or inf reaches the gradient.
        neutral = 0.0 if self.from_logits else 1.0 / num_classes
        row_usable = ops.expand_dims(usable, 1)
        scores = ops.where(row_usable, scores, ops.full_like(scores, neutral))
        losses = index_losses(scores, safe_labels, self._similarity, self.from_logits)
        if self.label_smoothing > 0.0:
            uniform = ops.ones_like(scores)
            smooth = soft_losses(scores, uniform, self._similarity, self.from_logits)
            losses = (1.0 - self.label_smoothing) * losses + (
                self.label_smoothing / num_classes
            ) * smooth
        if keep is not None:
            losses = ops.where(keep, losses, ops.zeros_like(losses))
        losses = ops.where(invalid, ops.full_like(losses, np.nan), losses)
        return losses, keep

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(
            {
                "similarity": _similarity_config(self._arrays),
                "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing,
                "ignore_class": self.ignore_class,
                "require_unit_diagonal": self.require_unit_diagonal,
            }
        )
        return config


def _num_classes_of(similarity: Any) -> int:
    """C of a similarity (the shape check and every other check is similarity_arrays')."""
    if isinstance(similarity, (ClassOrder, SparseSimilarity)):
        return similarity.num_classes
    shape = getattr(similarity, "shape", None)
    if shape is not None and len(shape) == 2:
        return int(shape[0])
    if shape is not None:
        raise ValueError(
            "Expected `similarity` to be a square matrix of shape (C, C), but found shape "
            f"{tuple(shape)}"
        )
    return -1  # not an array: similarity_arrays names the kinds it takes


def _is_sparse(y_true: Any, y_pred: Any) -> bool:
    """Integer labels (...) or (..., 1), or one-hot/probability labels (..., C)."""
    rank_true, rank_pred = len(y_true.shape), len(y_pred.shape)
    if rank_true == rank_pred - 1:
        return True
    if rank_true == rank_pred and y_true.shape[-1] == y_pred.shape[-1]:
        return False
    if rank_true == rank_pred and y_true.shape[-1] == 1:
        return True
    raise ValueError(
        f"Expected `y_true` of shape {tuple(y_pred.shape[:-1])} (integer labels) or "
        f"{tuple(y_pred.shape)} (one-hot or probabilities) for `y_pred` of shape "
        f"{tuple(y_pred.shape)}, but found {tuple(y_true.shape)}"
    )


def _host(tensor: Any) -> np.ndarray | None:
    """The tensor's values where they can be read (eager code), else None (a traced graph)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return None if isinstance(tensor, jax.core.Tracer) else np.asarray(tensor)
    if backend == "torch":
        if torch.compiler.is_compiling():
            return None
        return tensor.detach().cpu().numpy()
    if backend == "tensorflow":
        import tensorflow as tf

        return tensor.numpy() if tf.executing_eagerly() else None
    return None


def _check_labels(labels: Any, invalid: Any, num_classes: int, ignore_class: int | None) -> None:
    bad = _host(invalid)
    if bad is None or not bad.any():
        return
    values = _host(labels)
    assert values is not None
    ignore = "" if ignore_class is None else f" or ignore_class={ignore_class}"
    raise ValueError(
        f"Expected `y_true` values in [0, {num_classes}){ignore}, but found "
        f"{int(values[np.argmax(bad)])}"
    )


def _check_probabilities(scores: Any) -> None:
    values = _host(scores)
    if values is None:
        return
    check_probabilities(
        torch.from_numpy(np.array(values, np.float64)),
        "y_pred",
        1,
        raw_scores_hint("probs")
        .replace('input_type="probs"', "from_logits=False")
        .replace('input_type="logits"', "from_logits=True"),
    )


def _similarity_config(arrays: SimilarityArrays) -> dict[str, Any]:
    """The similarity as JSON-ready values (exact: Python floats round-trip)."""
    if isinstance(arrays, OrderArrays):
        return {"kind": "class_order", "num_classes": arrays.num_classes, "r": arrays.r}
    if isinstance(arrays, SparseArrays):
        return {
            "kind": "sparse",
            "index": arrays.index.tolist(),
            "value": arrays.value.tolist(),
            "dtype": str(arrays.value.dtype),
        }
    assert isinstance(arrays, DenseArrays)
    return {"kind": "dense", "matrix": arrays.matrix.tolist(), "dtype": str(arrays.matrix.dtype)}


def _similarity_from_config(config: dict[str, Any], require_unit_diagonal: bool) -> Any:
    kind = config.get("kind")
    if kind == "class_order":
        return ClassOrder(config["num_classes"], config["r"])
    if kind == "sparse":
        return SparseSimilarity(
            torch.tensor(config["index"], dtype=torch.long),
            torch.from_numpy(np.array(config["value"], dtype=config["dtype"])),
            require_unit_diagonal=require_unit_diagonal,
        )
    if kind == "dense":
        return np.array(config["matrix"], dtype=config["dtype"])
    raise ValueError(
        "Expected a `similarity` config with kind 'dense', 'class_order' or 'sparse', but "
        f"found {kind!r}"
    )
