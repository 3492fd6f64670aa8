"""SimLoss for JAX as an optax-style pure function: per-example losses over arrays."""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import torch

from simloss._distributions import check_probabilities, raw_scores_hint
from simloss._options import check_input_type, check_label_smoothing
from simloss.jax._logsumexp import weighted_logsumexp
from simloss.jax._similarity import JaxSimilarity, concrete, jax_similarity

__all__ = ["sim_loss"]

InputType = Literal["logits", "probs", "log_probs"]
_LOW_PRECISION = (jnp.bfloat16, jnp.float16)
_CHUNK_ELEMENTS = 1 << 22  # bound on (classes x classes) per step of the log-space fallback


def sim_loss(
    logits: Any,
    labels: Any,
    similarity: Any,
    *,
    where: Any = None,
    label_smoothing: float = 0.0,
    input_type: InputType = "logits",
    validate: bool = True,
    require_unit_diagonal: bool = True,
) -> jax.Array:
    """Similarity-based cross-entropy (SimLoss, Eq. 1 of the paper), per example.

    .. math::

        \\ell_i = -\\log \\sum_{c=1}^{C} S_{y_i, c}\\, p_i[c],
        \\qquad p_i = \\operatorname{softmax}(z_i)

    and, for probability labels :math:`q_i`,
    :math:`\\ell_i = -\\sum_k q_{ik} \\log \\sum_c S_{k, c}\\, p_i[c]`. With
    :math:`S = I` this is :func:`optax.softmax_cross_entropy_with_integer_labels`
    (and :func:`optax.softmax_cross_entropy`). The values and gradients are
    those of :func:`simloss.sim_loss` with ``reduction="none"`` (the optax
    convention: the caller reduces, e.g. with ``jnp.mean``).

    Exact with no epsilon: index labels are computed in log space,
    ``logsumexp(z) - wlse(z, S[y])`` with the weighted log-sum-exp shifted by
    the largest similar logit; probability labels in linear space, with rows
    whose similar mass underflows recomputed in log space (``lax.cond``, so
    only when one does). The derivative of the weighted log-sum-exp is a
    ``jax.custom_jvp``: finite where entries of S are 0, exact in S too (a
    learnable S), differentiable to any order. Works under ``jit``, ``grad``,
    ``vmap``, ``jacrev``/``jacfwd``/``hessian``. Inputs in bfloat16 or float16
    are computed in float32 and the losses returned in the input's dtype.

    Args:
        logits: scores of shape (..., C), the class axis last: logits
            (``input_type="logits"``), probabilities (``"probs"``, a model that
            ends in softmax) or log-probabilities (``"log_probs"``: not
            renormalised, as :func:`simloss.sim_loss`). Probabilities are
            checked when their values can be read (outside ``jit``): values in
            [0, 1] summing to 1 within 1e-3 (2e-2 for 16-bit floats).
        labels: integer class indices of shape (...) in [0, C), or
            probabilities (floating) of the scores' shape (..., C).
        similarity: a dense (C, C) numpy or JAX array (e.g. a builder's
            ``class_order(C, r).numpy()``) or CPU tensor, with values in [0, 1]
            and ones on the diagonal; a :class:`simloss.ClassOrder` (rows
            ``r^|i-j|`` computed in the kernel, no (C, C) matrix for index
            labels); a :class:`simloss.SparseSimilarity` or torch sparse tensor.
            A traced JAX array (under ``jit``, or a learnable S under ``grad``)
            is checked for its shape only.
        where: optional boolean mask, of the labels' batch shape (...): examples
            where it is False give a loss of 0 and no gradient (PyTorch's
            ``ignore_index``; their labels and scores may be anything, NaN
            included); or of the scores' shape (..., C), as in optax: classes
            where it is False take no part (logit ``-inf``, probability 0,
            label weight 0) and a row with none gives 0. An index label outside
            ``where`` has probability 0 and an infinite loss (optax's integer-label
            loss would still take its logit).
        label_smoothing: amount in [0, 1] of the uniform distribution mixed
            into the labels, as ``F.cross_entropy`` and ``optax.smooth_labels``.
        input_type: what ``logits`` holds (see above).
        validate: check a dense similarity's values (default).
        require_unit_diagonal: require :math:`S_{ii} = 1`, as the paper does.

    Returns:
        Per-example losses of the batch shape (...), in the scores' dtype.

    Raises:
        TypeError: scores not floating, labels neither integer nor floating,
            a ``where`` that is not boolean, a similarity of another kind.
        ValueError: shapes that do not match, labels outside [0, C) where
            ``where`` keeps them (outside ``jit``; under ``jit`` such a loss is
            NaN), probabilities that are not, an invalid similarity (the
            messages of :func:`simloss.similarity.validate_similarity`).

    Example:
        >>> import jax.numpy as jnp
        >>> import optax
        >>> from simloss.jax import sim_loss
        >>> from simloss.similarity import class_order
        >>> logits = jnp.array([[2.0, 1.0, -1.0], [0.0, 3.0, 0.5]])
        >>> labels = jnp.array([1, 2])
        >>> ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        >>> bool(jnp.allclose(sim_loss(logits, labels, jnp.eye(3)), ce))
        True
        >>> round(float(sim_loss(logits, labels, class_order(3, 0.5).numpy()).mean()), 4)
        0.5531
        >>> float(sim_loss(jnp.array([0.0, 0, 0, 0, 120]), jnp.array(0), jnp.eye(5)))
        120.0

    References:
        Kobs, Steininger, Zehe, Lautenschlager, Hotho: "SimLoss: Class Similarities in
        Cross Entropy", ISMIS 2020, https://arxiv.org/abs/2003.03182
    """
    check_input_type(input_type)
    label_smoothing = check_label_smoothing(label_smoothing)
    scores = _check_scores(logits)
    num_classes = int(scores.shape[-1])
    batch_shape = tuple(scores.shape[:-1])
    targets, soft = _check_labels(labels, scores.shape)
    operator = jax_similarity(
        similarity, num_classes, validate=validate, require_unit_diagonal=require_unit_diagonal
    )
    keep, class_mask = _check_where(where, scores.shape)

    out_dtype = scores.dtype
    dtype = jnp.float32 if out_dtype in _LOW_PRECISION else out_dtype
    flat = scores.reshape(-1, num_classes).astype(dtype)
    rows = flat.shape[0]
    flat_keep = None if keep is None else keep.reshape(-1)
    flat_mask = None if class_mask is None else class_mask.reshape(-1, num_classes)
    if flat_mask is not None:
        flat_keep = _and(flat_keep, flat_mask.any(-1))
    invalid = None
    if soft:
        flat_targets = targets.reshape(-1, num_classes).astype(dtype)
    else:
        flat_targets = targets.reshape(-1)
        invalid = _check_label_values(flat_targets, flat_keep, num_classes)
        if invalid is not None:
            flat_keep = _and(flat_keep, ~invalid)
    if input_type != "logits":
        _check_distribution(scores, flat_keep, input_type)

    if flat_mask is not None:  # classes outside `where` take no part
        flat = jnp.where(flat_mask, flat, 0.0 if input_type == "probs" else -jnp.inf)
    # Masked rows are replaced by harmless values before any arithmetic: their loss is 0
    # and no NaN or inf reaches the gradient through the final mask.
    if flat_keep is not None:
        neutral = _neutral_scores(num_classes, dtype, input_type)
        flat = jnp.where(flat_keep[:, None], flat, neutral)
        keep_targets = flat_keep[:, None] if soft else flat_keep
        flat_targets = jnp.where(keep_targets, flat_targets, 0)

    if soft:
        weights = flat_targets
        if label_smoothing > 0.0:
            weights = weights * (1.0 - label_smoothing) + label_smoothing / num_classes
        if flat_mask is not None:
            weights = jnp.where(flat_mask, weights, 0)
        losses = _soft_losses(flat, weights, operator, input_type)
    else:
        losses = _index_losses(flat, flat_targets, operator, input_type)
        if label_smoothing > 0.0:
            uniform = jnp.ones((rows, num_classes), dtype)
            if flat_mask is not None:
                uniform = jnp.where(flat_mask, uniform, 0)
            smooth = _soft_losses(flat, uniform, operator, input_type)
            losses = (1.0 - label_smoothing) * losses + (label_smoothing / num_classes) * smooth
    if flat_keep is not None:
        losses = jnp.where(flat_keep, losses, 0)
    if invalid is not None:
        losses = jnp.where(invalid, jnp.nan, losses)
    return losses.reshape(batch_shape).astype(out_dtype)


def _and(left: jax.Array | None, right: jax.Array) -> jax.Array:
    return right if left is None else left & right


def _check_scores(logits: Any) -> jax.Array:
    if not isinstance(logits, (jax.Array, np.ndarray)):
        raise TypeError(
            f"Expected `logits` to be a JAX or numpy array, but found {type(logits).__name__}"
        )
    scores = jnp.asarray(logits)
    if not jnp.issubdtype(scores.dtype, jnp.floating):
        raise TypeError(f"Expected `logits` to have a floating dtype, but found {scores.dtype}")
    if scores.ndim == 0:
        raise ValueError("Expected `logits` of shape (..., C), but found a scalar")
    if scores.shape[-1] == 0:
        raise ValueError(
            "Expected `logits` with at least one class along its last axis, but found shape "
            f"{tuple(scores.shape)}"
        )
    return scores


def _check_labels(labels: Any, shape: tuple[int, ...]) -> tuple[jax.Array, bool]:
    """Return the labels and whether they are class probabilities."""
    if not isinstance(labels, (jax.Array, np.ndarray)):
        raise TypeError(
            f"Expected `labels` to be a JAX or numpy array, but found {type(labels).__name__}"
        )
    targets = jnp.asarray(labels)
    soft = bool(jnp.issubdtype(targets.dtype, jnp.floating))
    if not soft and not jnp.issubdtype(targets.dtype, jnp.integer):
        raise TypeError(
            "Expected `labels` of an integer dtype (class indices) or a floating dtype "
            f"(class probabilities), but found {targets.dtype}"
        )
    batch = tuple(shape[:-1])
    expected = tuple(shape) if soft else batch
    if tuple(targets.shape) != expected:
        if soft and tuple(targets.shape) == batch:
            raise TypeError(
                f"Expected `labels` class indices of an integer dtype, but found {targets.dtype} "
                f"(floating labels are class probabilities of the scores' shape {tuple(shape)})"
            )
        kind = "class probabilities" if soft else "class indices"
        raise ValueError(
            f"Expected `labels` ({kind}) of shape {expected} for `logits` of shape "
            f"{tuple(shape)}, but found {tuple(targets.shape)}"
        )
    return targets, soft


def _check_where(where: Any, shape: tuple[int, ...]) -> tuple[jax.Array | None, jax.Array | None]:
    """``(example mask or None, class mask or None)`` from ``where``."""
    if where is None:
        return None, None
    mask = jnp.asarray(where)
    if mask.dtype != jnp.bool_:
        raise TypeError(f"Expected `where` to be a boolean array, but found {mask.dtype}")
    if tuple(mask.shape) == tuple(shape[:-1]):
        return mask, None
    if tuple(mask.shape) == tuple(shape):
        return None, mask
    raise ValueError(
        f"Expected `where` of shape {tuple(shape[:-1])} (examples) or {tuple(shape)} (classes), "
        f"but found {tuple(mask.shape)}"
    )


def _check_label_values(
    labels: jax.Array, keep: jax.Array | None, num_classes: int
) -> jax.Array | None:
    """Raise on a kept label outside [0, C) when values can be read; else return where they are.

    Traced code cannot raise: an out-of-range label gives a NaN loss (as the
    PyTorch loss under ``vmap``). Out-of-range labels are never used as indices.
    """
    bad = (labels < 0) | (labels >= num_classes)
    if keep is not None:
        bad = bad & keep
    if concrete(bad):  # not traced (labels closed over by a jitted function are, here)
        if bool(bad.any()):
            first = int(np.asarray(labels)[np.argmax(np.asarray(bad))])
            where = " where `where` is True" if keep is not None else ""
            raise ValueError(
                f"Expected `labels` values in [0, {num_classes}){where}, but found {first}"
            )
        return None
    return bad


def _check_distribution(scores: jax.Array, keep: jax.Array | None, input_type: str) -> None:
    """Probabilities or log-probabilities along the class axis, when the values can be read.

    The check and its messages are :func:`simloss._distributions.check_probabilities`'s
    (the PyTorch loss's, with the 16-bit tolerance for 16-bit scores); rows
    where ``keep`` (flat) is False are not checked.
    """
    if not concrete(scores) or (keep is not None and not concrete(keep)):
        return
    host = np.array(scores)  # a writable copy: torch refuses read-only memory
    if host.dtype == jnp.bfloat16:
        values = torch.from_numpy(host.astype(np.float32)).to(torch.bfloat16)
    else:
        values = torch.from_numpy(host)
    scored = None
    if keep is not None:
        scored = torch.from_numpy(np.array(keep).reshape(host.shape[:-1]))
    check_probabilities(
        values,
        "logits",
        values.dim() - 1,
        raw_scores_hint(input_type),
        log=input_type == "log_probs",
        scored=scored,
    )


def _neutral_scores(num_classes: int, dtype: Any, input_type: str) -> jax.Array:
    """Scores of a masked row: the uniform distribution in the input type's form."""
    if input_type == "probs":
        return jnp.full((num_classes,), 1.0 / num_classes, dtype)
    if input_type == "log_probs":
        return jnp.full((num_classes,), -np.log(num_classes), dtype)
    return jnp.zeros((num_classes,), dtype)


def _index_losses(
    scores: jax.Array, labels: jax.Array, operator: JaxSimilarity, input_type: str
) -> jax.Array:
    """``-log sum_c S[y, c] p[c]`` per row (M,), in log space for logits and log-probabilities."""
    columns, values = operator.rows(labels, scores.dtype)
    if input_type == "probs":
        similar = scores if columns is None else jnp.take_along_axis(scores, columns, axis=1)
        return -jnp.log(jnp.sum(values * similar, axis=1))
    if columns is not None:  # sparse rows: the weighted log-sum-exp over k columns
        similar_log_mass = weighted_logsumexp(jnp.take_along_axis(scores, columns, 1), values)
        if input_type == "logits":
            return jax.nn.logsumexp(scores, axis=1) - similar_log_mass
        return -similar_log_mass
    # Dense rows: one pass shifted by the row's largest logit (plain autodiff, which XLA
    # fuses as it fuses cross-entropy's); a row whose similar mass underflowed there is
    # recomputed shifted by its largest similar logit, only when there is one.
    shift = jax.lax.stop_gradient(jnp.max(scores, axis=1, keepdims=True))
    shift = jnp.where(jnp.isfinite(shift), shift, jnp.zeros_like(shift))
    exp = jnp.exp(scores - shift)
    total = jnp.sum(exp, axis=1)
    similar = jnp.sum(values * exp, axis=1)
    unstable = ~(similar >= _tiny(scores.dtype) * total)  # NaN rows too: they stay NaN
    # Unstable rows take log(1) here (no inf or NaN in the gradient through the mask).
    fast = jnp.log(total) - jnp.log(jnp.where(unstable, jnp.ones_like(similar), similar))

    def exact() -> jax.Array:
        exact_loss = jax.nn.logsumexp(scores, axis=1) - weighted_logsumexp(scores, values)
        return jnp.where(unstable, exact_loss, fast)

    if concrete(unstable):
        losses = exact() if bool(jnp.any(unstable)) else fast
    else:
        losses = jax.lax.cond(jnp.any(unstable), exact, lambda: fast)
    if input_type == "log_probs":  # -log sum_c S exp(x_c), not renormalised
        return losses - jax.nn.logsumexp(scores, axis=1)
    return losses


def _tiny(dtype: Any) -> float:
    """Below this a sum of probabilities may have lost its relative precision (as PyTorch's)."""
    info = jnp.finfo(dtype)
    return float(info.smallest_normal) / float(info.eps)


def _soft_losses(
    scores: jax.Array, weights: jax.Array, operator: JaxSimilarity, input_type: str
) -> jax.Array:
    """Per-row ``-sum_k T_k log A_k``, ``A = p S^T``, for label weights ``T >= 0`` (M, C).

    Linear space first (one product with S); where a label class's similar
    mass falls below :func:`_tiny` (logits or log-probabilities only) the row
    is recomputed in log space, class by class with the weighted log-sum-exp.
    """
    probs = scores if input_type == "probs" else jax.nn.softmax(scores, axis=1)
    mass = operator.similar_mass(probs)
    active = weights != 0
    if input_type == "probs":
        return _linear_soft(mass, weights)
    unstable = jnp.any(active & (mass < _tiny(scores.dtype)), axis=1)
    # Unstable rows enter the linear formula with weight 0 (no inf/NaN in its gradient).
    stable_weights = jnp.where(unstable[:, None], 0, weights)
    linear = _linear_soft(mass, stable_weights)
    if input_type == "log_probs":  # not renormalised: -sum_k T_k log sum_c S_kc exp(x_c)
        linear = linear - jnp.sum(stable_weights, axis=1) * jax.nn.logsumexp(scores, axis=1)

    def exact() -> jax.Array:
        return jnp.where(unstable, _log_space_soft(scores, weights, operator, input_type), linear)

    if concrete(unstable):  # eager: decided on the host, nothing else is traced or compiled
        return exact() if bool(jnp.any(unstable)) else linear
    return jax.lax.cond(jnp.any(unstable), exact, lambda: linear)


def _linear_soft(mass: jax.Array, weights: jax.Array) -> jax.Array:
    """``-sum_k T_k log A_k`` in linear space: classes with ``T_k = 0`` contribute 0.

    Also where ``A_k`` underflowed to 0; their derivative in ``T_k`` is
    ``-log A_k`` wherever ``A_k > 0``.
    """
    used = (weights != 0) | (mass > 0)
    safe_mass = jnp.where(used, mass, 1.0)
    return -jnp.sum(jnp.where(used, weights * jnp.log(safe_mass), 0), axis=1)


def _log_space_soft(
    scores: jax.Array, weights: jax.Array, operator: JaxSimilarity, input_type: str
) -> jax.Array:
    """``-sum_k T_k log A_k`` per row, every term in log space (M,); O(M * C^2) time.

    Rows one at a time and the label classes in blocks, so memory stays
    within ``_CHUNK_ELEMENTS`` per step.
    """
    num_classes = scores.shape[1]
    block = max(1, min(num_classes, _CHUNK_ELEMENTS // num_classes))
    blocks = -(-num_classes // block)
    padded = jnp.pad(weights, ((0, 0), (0, blocks * block - num_classes)))
    classes = jnp.minimum(jnp.arange(blocks * block), num_classes - 1).reshape(blocks, block)

    def row(args: tuple[jax.Array, jax.Array]) -> jax.Array:
        z, row_weights = args
        row_weights = row_weights.reshape(blocks, block)

        def one_block(args: tuple[jax.Array, jax.Array]) -> jax.Array:
            block_classes, block_weights = args
            similar = operator.dense_rows(block_classes, z.dtype)
            log_mass = weighted_logsumexp(jnp.broadcast_to(z, similar.shape), similar)
            used = block_weights != 0  # a class of weight 0 may have no similar mass (-inf)
            return jnp.sum(block_weights * jnp.where(used, log_mass, 0))

        return jnp.sum(jax.lax.map(one_block, (classes, row_weights)))

    similar = jax.lax.map(row, (scores, padded))
    if input_type == "log_probs":
        return -similar
    return jnp.sum(weights, axis=1) * jax.nn.logsumexp(scores, axis=1) - similar
