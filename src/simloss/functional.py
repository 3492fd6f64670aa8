"""SimLoss as a pure function, a drop-in for ``torch.nn.functional.cross_entropy``."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from simloss.similarity.structured import SimilarityRows, _Operator, as_similarity_operator

__all__ = ["sim_loss"]

InputType = Literal["logits", "probs", "log_probs"]
Reduction = Literal["mean", "sum", "none"]
_INPUT_TYPES = ("logits", "probs", "log_probs")
_REDUCTIONS = ("mean", "sum", "none")
_CHUNK_ELEMENTS = 1 << 22  # bound on (rows x classes) materialised by the log-space fallback


def sim_loss(
    input: Tensor,
    target: Tensor,
    similarity: Any,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
    label_smoothing: float = 0.0,
    *,
    input_type: InputType = "logits",
    validate: bool = True,
    require_unit_diagonal: bool = True,
) -> Tensor:
    """Similarity-based cross-entropy (SimLoss, Eq. 1 of the paper).

    .. math::

        \\ell_i = -\\log \\sum_{c=1}^{C} S_{y_i, c}\\, p_i[c],
        \\qquad p_i = \\operatorname{softmax}(z_i)

    and, for class-probability targets :math:`q_i`,
    :math:`\\ell_i = -\\sum_k q_{ik} \\log \\sum_c S_{k, c}\\, p_i[c]`. With
    :math:`S = I` this is exactly :func:`torch.nn.functional.cross_entropy`,
    and every argument below has its meaning: ``weight``, ``ignore_index``,
    ``reduction`` (including the weighted mean, divided by the summed weights
    of the non-ignored targets) and ``label_smoothing`` (the target mixed with
    the uniform distribution).

    The value is computed without any epsilon: rows whose similar classes all
    have (numerically) vanishing probability are recomputed in log space, so
    confident mistakes give the true, large loss and a non-zero gradient. The
    gradient uses its closed form :math:`p_i - S_{y_i} \\odot p_i / (S_{y_i}
    \\cdot p_i)`. Under :func:`torch.autocast` the loss is computed in float32,
    as cross-entropy is.

    Args:
        input: scores of shape (C), (N, C) or (N, C, d_1, ..., d_K): logits
            (``input_type="logits"``), probabilities (``"probs"``, a model
            that ends in softmax) or log-probabilities (``"log_probs"``).
        target: class indices of shape (), (N) or (N, d_1, ..., d_K) with
            values in [0, C) or ``ignore_index``; or class probabilities of
            the input's shape.
        similarity: a dense (C, C) tensor or numpy array with values in
            [0, 1] and ones on the diagonal, a torch sparse (C, C) tensor, or
            a structured similarity (:class:`simloss.ClassOrder`,
            :class:`simloss.SparseSimilarity`). It must be on the input's
            device (an error says so otherwise) and is used in the input's dtype.
        weight: optional class weights of shape (C).
        ignore_index: target value that contributes neither loss nor gradient.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        label_smoothing: amount in [0, 1] of the uniform distribution mixed
            into the target.
        input_type: what ``input`` holds (see above).
        validate: check a dense ``similarity`` on this call (default). Set to
            False in a hot loop once the matrix is known to be valid
            (:class:`simloss.SimLoss` validates once at construction).
        require_unit_diagonal: require :math:`S_{ii} = 1`, as the paper does.
            Set to False for e.g. the row-normalised probability matrix.

    Returns:
        The reduced loss (a scalar), or per-element losses of the target's
        shape with ``reduction="none"``.

    Example:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> from simloss import sim_loss
        >>> from simloss.similarity import class_order
        >>> logits = torch.tensor([[2.0, 1.0, -1.0], [0.0, 3.0, 0.5]])
        >>> target = torch.tensor([1, 2])
        >>> torch.allclose(sim_loss(logits, target, torch.eye(3)), F.cross_entropy(logits, target))
        True
        >>> round(float(sim_loss(logits, target, class_order(3, 0.5))), 4)
        0.5531

    References:
        Kobs, Steininger, Zehe, Lautenschlager, Hotho: "SimLoss: Class Similarities in
        Cross Entropy", ISMIS 2020, https://arxiv.org/abs/2003.03182
    """
    _check_arguments(input, reduction, label_smoothing, input_type, ignore_index)
    if input.dim() == 0:
        raise ValueError(
            "Expected `input` of shape (C), (N, C) or (N, C, d1, ...), but found a scalar"
        )
    num_classes = int(input.shape[1] if input.dim() > 1 else input.shape[0])
    operator = as_similarity_operator(
        similarity, num_classes, validate=validate, require_unit_diagonal=require_unit_diagonal
    )
    operator.check_device(input.device)
    if weight is not None:
        _check_weight(weight, num_classes, input.device)

    device_type = input.device.type
    if torch.is_autocast_enabled(device_type):
        with torch.autocast(device_type=device_type, enabled=False):
            return _sim_loss(
                input.float(),
                target,
                operator,
                None if weight is None else weight.float(),
                ignore_index,
                reduction,
                label_smoothing,
                input_type,
            )
    return _sim_loss(
        input, target, operator, weight, ignore_index, reduction, label_smoothing, input_type
    )


def _check_arguments(
    input: Tensor, reduction: str, label_smoothing: float, input_type: str, ignore_index: int
) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"Expected `input` to be a torch.Tensor, but found {type(input).__name__}")
    if not input.is_floating_point():
        raise TypeError(f"Expected `input` to have a floating dtype, but found {input.dtype}")
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"Expected `reduction` to be one of {_REDUCTIONS}, but found {reduction!r}"
        )
    if input_type not in _INPUT_TYPES:
        raise ValueError(
            f"Expected `input_type` to be one of {_INPUT_TYPES}, but found {input_type!r}"
        )
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)):
        raise TypeError(
            f"Expected `label_smoothing` to be a float, but found {type(label_smoothing).__name__}"
        )
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"Expected `label_smoothing` in [0, 1], but found {label_smoothing}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(
            f"Expected `ignore_index` to be an int, but found {type(ignore_index).__name__}"
        )


def _check_weight(weight: Tensor, num_classes: int, device: torch.device) -> None:
    if not isinstance(weight, Tensor) or not weight.is_floating_point():
        raise TypeError(
            f"Expected `weight` to be a floating tensor of shape ({num_classes},), but found {weight!r}"
        )
    if weight.shape != (num_classes,):
        raise ValueError(
            f"Expected `weight` of shape ({num_classes},), but found {tuple(weight.shape)}"
        )
    if weight.device != device:
        raise ValueError(
            f"Expected `weight` on the input's device {device}, but found {weight.device}"
        )


def _flatten(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor, tuple[int, ...], bool]:
    """Move the class dimension last and flatten: returns (N', C) scores, targets, out shape."""
    soft = target.is_floating_point()
    batch_only = tuple(input.shape[:1]) + tuple(input.shape[2:]) if input.dim() > 1 else ()
    if soft and tuple(target.shape) == batch_only and batch_only != tuple(input.shape):
        raise TypeError(
            f"Expected `target` class indices of an integer dtype, but found {target.dtype} "
            f"(floating targets are class probabilities of the input's shape {tuple(input.shape)})"
        )
    if input.dim() == 1:
        expected: tuple[int, ...] = tuple(input.shape) if soft else ()
        if tuple(target.shape) != expected:
            raise ValueError(
                f"Expected `target` of shape {expected} for `input` of shape {tuple(input.shape)}, "
                f"but found {tuple(target.shape)}"
            )
        return input.unsqueeze(0), target.unsqueeze(0), (), soft
    batch_shape = (input.shape[0], *input.shape[2:])
    expected = tuple(input.shape) if soft else batch_shape
    if tuple(target.shape) != expected:
        kind = "class probabilities" if soft else "class indices"
        raise ValueError(
            f"Expected `target` ({kind}) of shape {expected} for `input` of shape "
            f"{tuple(input.shape)}, but found {tuple(target.shape)}"
        )
    num_classes = input.shape[1]
    scores = input.movedim(1, -1).reshape(-1, num_classes) if input.dim() > 2 else input
    if soft:
        target = target.movedim(1, -1).reshape(-1, num_classes) if target.dim() > 2 else target
    else:
        target = target.reshape(-1)
    return scores, target, batch_shape, soft


def _sim_loss(
    input: Tensor,
    target: Tensor,
    operator: _Operator,
    weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    input_type: str,
) -> Tensor:
    if not isinstance(target, Tensor):
        raise TypeError(
            f"Expected `target` to be a torch.Tensor, but found {type(target).__name__}"
        )
    if target.dtype == torch.bool or target.is_complex():
        raise TypeError(
            f"Expected `target` of an integer or floating dtype, but found {target.dtype}"
        )
    scores, flat_target, out_shape, soft = _flatten(input, target)
    num_classes = scores.shape[1]
    if soft:
        losses = _soft_target_loss(
            scores, flat_target, operator, weight, label_smoothing, input_type
        )
        if reduction == "none":
            return losses.reshape(out_shape)
        total = losses.sum()
        return total / losses.numel() if reduction == "mean" else total

    flat_target = flat_target.long()
    keep = _valid_rows(flat_target, num_classes, ignore_index)
    if keep is not None:
        scores_kept, target_kept = scores.index_select(0, keep), flat_target.index_select(0, keep)
    else:
        scores_kept, target_kept = scores, flat_target
    sample_weight = (
        weight.index_select(0, target_kept).to(scores.dtype) if weight is not None else None
    )
    if (
        reduction != "none"
        and sample_weight is None
        and label_smoothing == 0.0
        and keep is None
        and input_type != "probs"
        and target_kept.numel() > 0
    ):
        # The common case: the reduction happens inside the autograd function, which
        # saves two graph nodes (sum, divide) per step; the values are the same.
        scale = 1.0 / target_kept.numel() if reduction == "mean" else 1.0
        rows = operator.rows(target_kept, scores.dtype)
        reduced: Tensor = _IndexSimLoss.apply(
            scores_kept, target_kept, rows, operator, input_type == "logits", scale
        )
        return reduced
    losses = _index_target_loss(scores_kept, target_kept, operator, input_type)
    if sample_weight is not None:
        losses = losses * sample_weight
    if label_smoothing > 0.0:
        class_weight = (
            weight.to(scores.dtype)
            if weight is not None
            else torch.ones(num_classes, dtype=scores.dtype, device=scores.device)
        )
        uniform = class_weight.expand(scores_kept.shape[0], num_classes)
        smooth = _soft_loss_from_weights(scores_kept, uniform, operator, input_type)
        losses = (1.0 - label_smoothing) * losses + (label_smoothing / num_classes) * smooth
    if keep is not None:
        losses = torch.zeros(
            flat_target.shape[0], dtype=losses.dtype, device=losses.device
        ).index_put((keep,), losses)
    if reduction == "none":
        return losses.reshape(out_shape)
    total = losses.sum()
    if reduction == "sum":
        return total
    if sample_weight is not None:
        return total / sample_weight.sum()
    return total / target_kept.numel()


def _valid_rows(target: Tensor, num_classes: int, ignore_index: int) -> Tensor | None:
    """Check index targets; return the rows to keep, or None when no target is ignored.

    One reduction and one host synchronisation in the common case (every
    target in range, ``ignore_index`` outside the observed range).
    """
    if target.numel() == 0:
        return None
    low, high = (int(v) for v in torch.aminmax(target))
    if low >= 0 and high < num_classes and not (low <= ignore_index <= high):
        return None
    ignored = target == ignore_index
    valid = target.masked_fill(ignored, 0)
    bad = (valid < 0) | (valid >= num_classes)
    if bool(bad.any()):
        raise ValueError(
            f"Expected `target` values in [0, {num_classes}) or ignore_index={ignore_index}, "
            f"but found {int(valid[bad][0])}"
        )
    return torch.nonzero(~ignored).squeeze(1)


def _tiny(dtype: torch.dtype) -> float:
    """Below this value a sum of probabilities may have lost its relative precision."""
    info = torch.finfo(dtype)
    return info.smallest_normal / info.eps


def _index_target_loss(
    scores: Tensor, target: Tensor, operator: _Operator, input_type: str
) -> Tensor:
    rows = operator.rows(target, scores.dtype)
    if input_type == "probs":
        return -torch.log(_row_dot(rows, scores))
    loss: Tensor = _IndexSimLoss.apply(scores, target, rows, operator, input_type == "logits", None)
    return loss


def _row_dot(rows: SimilarityRows, probs: Tensor) -> Tensor:
    """``sum_c S[y_i, c] p_i[c]`` for each row (differentiable)."""
    if rows.dense is not None:
        return (rows.dense * probs).sum(1)
    assert rows.columns is not None and rows.values is not None
    return (rows.values * probs.gather(1, rows.columns)).sum(1)


class _ClosedFormLoss(torch.autograd.Function):
    """Losses whose forward saved the whole gradient ``dl_i/dz_i`` (N, C).

    The output is per sample (N,) or, with ``ctx.scale`` set, the scaled sum of
    the per-sample losses (a scalar).
    """

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        (grad,) = ctx.saved_tensors  # type: ignore[attr-defined]
        others: int = ctx.num_other_inputs  # type: ignore[attr-defined]
        scale: float | None = ctx.scale  # type: ignore[attr-defined]
        if scale is None:
            return (grad * grad_output.unsqueeze(1), *([None] * others))
        return (grad * (grad_output * scale), *([None] * others))


class _IndexSimLoss(_ClosedFormLoss):
    """Per-sample SimLoss for index targets with the closed-form gradient."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        scores: Tensor,
        target: Tensor,
        rows: SimilarityRows,
        operator: _Operator,
        normalize: bool,
        scale: float | None,
    ) -> Tensor:
        ctx.num_other_inputs = 5  # type: ignore[attr-defined]
        ctx.scale = scale  # type: ignore[attr-defined]
        # Every (N, C) buffer is reused in place: ``rows`` are fresh tensors that this
        # function owns, and the gradient is written over ``probs``.
        probs = torch.softmax(scores, dim=1)
        columns = rows.columns
        if columns is None:
            assert rows.dense is not None
            weighted = rows.dense.mul_(probs)
        else:
            assert rows.values is not None
            weighted = rows.values.mul_(probs.gather(1, columns))
        mass = weighted.sum(1)
        log_mass = torch.log(mass)
        tiny = _tiny(scores.dtype)
        unstable = None
        if mass.numel() and float(mass.min()) < tiny:
            unstable = torch.nonzero(mass < tiny).squeeze(1)
        grad = None
        if ctx.needs_input_grad[0]:  # type: ignore[attr-defined]
            mass_column = mass.unsqueeze(1)
            if normalize and columns is None:  # p - S[y] p / (S[y] . p), in one pass
                grad = probs.addcdiv_(weighted, mass_column, value=-1.0)
            else:
                posterior = weighted.div_(mass_column)  # S[y] p / (S[y] . p)
                if columns is None:  # log-probability input: -posterior
                    grad = posterior.neg_()
                elif normalize:
                    grad = probs.scatter_add_(1, columns, posterior.neg_())
                else:
                    grad = torch.zeros_like(probs).scatter_add_(1, columns, posterior.neg_())
        if unstable is not None:
            unstable_scores = scores.index_select(0, unstable)
            exact_log_mass, exact_posterior = _log_space_rows(
                unstable_scores,
                operator.dense_rows(target.index_select(0, unstable), scores.dtype),
            )
            log_mass[unstable] = exact_log_mass
            if grad is not None:
                grad[unstable] = (
                    torch.softmax(unstable_scores, dim=1) - exact_posterior
                    if normalize
                    else -exact_posterior
                )
        if not normalize:
            # log-probability inputs: -log sum_c S exp(x_c), without renormalising x.
            log_mass = log_mass + torch.logsumexp(scores, dim=1)
        if grad is not None:
            ctx.save_for_backward(grad)
        if scale is not None:
            return log_mass.sum() * -scale
        return log_mass.neg_()


def _log_space_rows(scores: Tensor, sim_rows: Tensor) -> tuple[Tensor, Tensor]:
    """Exact log-space ``log sum_c S[c] softmax(z)[c]`` and the posterior ``S p / (S . p)``.

    ``scores`` (M, C), ``sim_rows`` (M, C). Used for the rare rows whose
    similar classes all have vanishing probability.
    """
    shifted = scores + torch.log(sim_rows)
    log_num = torch.logsumexp(shifted, dim=1)
    log_mass = log_num - torch.logsumexp(scores, dim=1)
    posterior = torch.exp(shifted - log_num.unsqueeze(1))
    return log_mass, posterior


def _soft_target_loss(
    scores: Tensor,
    target: Tensor,
    operator: _Operator,
    weight: Tensor | None,
    label_smoothing: float,
    input_type: str,
) -> Tensor:
    num_classes = scores.shape[1]
    target = target.to(scores.dtype)
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / num_classes
    if weight is not None:
        target = target * weight.to(scores.dtype)
    return _soft_loss_from_weights(scores, target, operator, input_type)


def _soft_loss_from_weights(
    scores: Tensor, target_weights: Tensor, operator: _Operator, input_type: str
) -> Tensor:
    """``-sum_k T_ik log (S p_i)_k`` for non-negative target weights T (N, C)."""
    if input_type == "probs":
        mass = operator.similar_mass(scores)
        terms = torch.where(target_weights != 0, target_weights * torch.log(mass), 0.0)
        return -terms.sum(1)
    loss: Tensor = _SoftSimLoss.apply(scores, target_weights, operator, input_type == "logits")
    return loss


class _SoftSimLoss(_ClosedFormLoss):
    """Per-sample SimLoss for target distributions, with the closed-form gradient.

    ``dl/dz = p * (sum_k T_k - (T / A) S)`` where ``A = p S^T``.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        scores: Tensor,
        target_weights: Tensor,
        operator: _Operator,
        normalize: bool,
    ) -> Tensor:
        ctx.num_other_inputs = 3  # type: ignore[attr-defined]
        ctx.scale = None  # type: ignore[attr-defined]
        probs = torch.softmax(scores, dim=1)
        mass = operator.similar_mass(probs)
        active = target_weights != 0
        ratio = torch.where(active, target_weights / mass, 0.0)
        loss = -torch.where(active, target_weights * torch.log(mass), 0.0).sum(1)
        total_weight = target_weights.sum(1)
        grad = None
        if ctx.needs_input_grad[0]:  # type: ignore[attr-defined]
            grad = probs * (total_weight.unsqueeze(1) - operator.similar_mass_transposed(ratio))
        unstable = torch.nonzero((active & (mass < _tiny(scores.dtype))).any(1)).squeeze(1)
        for row in unstable.tolist():
            row_loss, row_grad = _soft_row_log_space(
                scores[row], target_weights[row], probs[row], operator
            )
            loss[row] = row_loss
            if grad is not None:
                grad[row] = row_grad
        if not normalize:
            lse = torch.logsumexp(scores, dim=1)
            loss = loss - total_weight * lse
            if grad is not None:
                grad = grad - total_weight.unsqueeze(1) * probs
        if grad is not None:
            ctx.save_for_backward(grad)
        return loss


def _soft_row_log_space(
    scores: Tensor, target_weights: Tensor, probs: Tensor, operator: _Operator
) -> tuple[Tensor, Tensor]:
    """Loss and gradient of one row in log space, over the target's classes in chunks."""
    classes = torch.nonzero(target_weights).squeeze(1)
    num_classes = scores.shape[0]
    chunk = max(1, _CHUNK_ELEMENTS // num_classes)
    loss = scores.new_zeros(())
    weighted_posterior = torch.zeros_like(scores)
    for start in range(0, classes.numel(), chunk):
        block = classes[start : start + chunk]
        log_mass, posterior = _log_space_rows(
            scores.expand(block.numel(), num_classes),
            operator.dense_rows(block, scores.dtype),
        )
        block_weights = target_weights.index_select(0, block)
        loss = loss - (block_weights * log_mass).sum()
        weighted_posterior += block_weights @ posterior
    grad = target_weights.sum() * probs - weighted_posterior
    return loss, grad
