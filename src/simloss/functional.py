"""SimLoss as a pure function, a drop-in for ``torch.nn.functional.cross_entropy``.

:func:`sim_loss` checks every argument once, at the top, and then computes in
three steps: the scores in their compute dtype (float32 under autocast and for
16-bit inputs, as cross-entropy), the target flattened against them
(:mod:`simloss._targets`), and the loss of class indices or of class
probabilities. Each of those picks its kernels (:func:`_kernels`): the fused
closed-form kernels of :mod:`simloss._fused` in eager mode, those of
:mod:`simloss._traced` for index targets under ``torch.compile``, or the
reference formulas of :mod:`simloss._rowloss` wherever a gradient must reach
the similarity, the targets or the weights, or a ``torch.func`` transform or
forward-mode AD differentiates the loss.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from simloss._describe import describe
from simloss._distributions import check_input_distributions
from simloss._fused import fused_index_loss, fused_soft_loss
from simloss._options import InputType, LossOptions, Reduction
from simloss._rowloss import index_losses, soft_losses
from simloss._targets import flatten, kept_rows
from simloss._traced import traced_index_losses
from simloss.similarity.dispatch import as_similarity_operator
from simloss.similarity.operator import LossOperator, forward_ad_active

__all__ = ["TORCHSCRIPT_MESSAGE", "check_input", "check_weight", "sim_loss"]

TORCHSCRIPT_MESSAGE = (
    "simloss does not support TorchScript (torch.jit.script / torch.jit.trace): its "
    "similarity operators and exact log-space fallback are Python; use torch.compile, "
    "which compiles SimLoss without graph breaks"
)
_LOW_PRECISION = (torch.float16, torch.bfloat16)


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
            that ends in softmax: values in [0, 1] summing to 1 over the
            class dimension within 1e-3, 2e-2 for 16-bit floats; a
            ``ValueError`` otherwise) or log-probabilities (``"log_probs"``,
            ending in log_softmax: the same condition on their
            exponentials). The rows of an ignored target are not checked.
        target: class indices of shape (), (N) or (N, d_1, ..., d_K) with
            values in [0, C) or ``ignore_index``; or class probabilities of
            the input's shape.
        similarity: a dense (C, C) tensor or numpy array with values in
            [0, 1] and ones on the diagonal, a torch sparse (C, C) tensor, or
            a structured similarity (:class:`simloss.ClassOrder`,
            :class:`simloss.SparseSimilarity`). It must be on the input's
            device (an error says so otherwise) and is used in the input's dtype.
        weight: optional class weights of shape (C), used in the input's dtype
            (as ``similarity``; ``F.cross_entropy`` requires the same dtype).
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
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        raise RuntimeError(TORCHSCRIPT_MESSAGE)
    options = LossOptions.checked(
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
        input_type=input_type,
    )
    num_classes = check_input(input)
    device = input.device
    operator = as_similarity_operator(
        similarity, num_classes, validate=validate, require_unit_diagonal=require_unit_diagonal
    )
    operator.check_device(device)
    check_weight(weight, num_classes, device)
    if options.input_type != "logits":
        check_input_distributions(
            input, target, ignore_index=options.ignore_index, log=options.input_type == "log_probs"
        )
    if torch.is_autocast_enabled(device.type):  # as cross-entropy: float32 under autocast
        with torch.autocast(device_type=device.type, enabled=False):
            return _loss(input.float(), target, operator, weight=_float(weight), options=options)
    if input.dtype in _LOW_PRECISION:  # computed and reduced in float32
        loss = _loss(input.float(), target, operator, weight=_float(weight), options=options)
        return loss.to(input.dtype)
    return _loss(input, target, operator, weight=weight, options=options)


def check_input(input: object) -> int:
    """Check the scores tensor and return its number of classes C (dimension 1, or 0 if 1-D)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"Expected `input` to be a torch.Tensor, but found {describe(input)}")
    if not input.is_floating_point():
        raise TypeError(f"Expected `input` to have a floating dtype, but found {input.dtype}")
    dim = input.dim()
    if dim == 0:
        raise ValueError(
            "Expected `input` of shape (C), (N, C) or (N, C, d1, ...), but found a scalar"
        )
    num_classes = int(input.shape[1] if dim > 1 else input.shape[0])
    if num_classes == 0:
        raise ValueError(
            "Expected `input` with at least one class along its class dimension, but found "
            f"shape {tuple(input.shape)}"
        )
    return num_classes


def check_weight(weight: object, num_classes: int, device: torch.device | None = None) -> None:
    """Class weights: None, or a floating tensor of shape (C,), on ``device`` when given."""
    if weight is None:
        return
    if not isinstance(weight, Tensor) or not weight.is_floating_point():
        raise TypeError(
            f"Expected `weight` to be a floating tensor of shape ({num_classes},), but found "
            f"{describe(weight)}"
        )
    if tuple(weight.shape) != (num_classes,):
        raise ValueError(
            f"Expected `weight` of shape ({num_classes},), but found {tuple(weight.shape)}"
        )
    if device is not None and weight.device != device:
        raise ValueError(
            f"Expected `weight` on the input's device {device}, but found {weight.device}"
        )


def _float(weight: Tensor | None) -> Tensor | None:
    return None if weight is None else weight.float()


def _loss(
    input: Tensor,
    target: Any,
    operator: LossOperator,
    *,
    weight: Tensor | None,
    options: LossOptions,
) -> Tensor:
    """The loss of checked arguments, computed in ``input``'s dtype."""
    flat = flatten(input, target)
    if flat.probabilities:
        if options.ignore_index >= 0:
            raise ValueError(
                "Expected the default `ignore_index` (any negative value) with class-probability "
                f"targets, as cross-entropy, but found {options.ignore_index}: ignore_index is "
                "not supported for floating point target"
            )
        losses = _probability_target_losses(
            flat.scores, flat.target, operator, weight=weight, options=options
        )
        if options.reduction == "none":
            return losses.reshape(flat.loss_shape)
        total = losses.sum()
        return total / losses.numel() if options.reduction == "mean" else total
    loss = _index_target_loss(flat.scores, flat.target, operator, weight=weight, options=options)
    return loss.reshape(flat.loss_shape) if options.reduction == "none" else loss


Kernels = Literal["fused", "compiled", "reference"]


def _kernels(
    operator: LossOperator, weight: Tensor | None, target_weights: Tensor | None = None
) -> Kernels:
    """Which kernels compute the loss.

    ``"fused"`` (:mod:`simloss._fused`) in eager mode when no gradient flows
    beyond the scores; ``"compiled"`` (:mod:`simloss._traced`, index targets
    only) under ``torch.compile`` when none flows to the similarity;
    ``"reference"`` (:mod:`simloss._rowloss`) under ``torch.func`` transforms,
    forward-mode AD, and wherever a gradient must reach the similarity, the
    class weights or probability targets.
    """
    if forward_ad_active() or torch._C._are_functorch_transforms_active():
        return "reference"
    if torch.compiler.is_compiling():
        return "reference" if operator.requires_grad else "compiled"
    differentiable = (
        operator.requires_grad
        or (weight is not None and weight.requires_grad)
        or (target_weights is not None and target_weights.requires_grad)
    )
    return "reference" if differentiable else "fused"


def _index_target_loss(
    scores: Tensor,
    target: Tensor,
    operator: LossOperator,
    *,
    weight: Tensor | None,
    options: LossOptions,
) -> Tensor:
    """The loss of class indices (N,) for scores (N, C): per sample (N,), or reduced."""
    num_rows, num_classes = scores.shape
    target, keep, invalid = kept_rows(target, num_classes, options.ignore_index)
    sample_weight = None
    if weight is not None:
        sample_weight = weight.index_select(0, target).to(scores.dtype)
        if keep is not None:
            sample_weight = sample_weight * keep
    kernels = _kernels(operator, weight)
    fused = kernels == "fused"
    input_is_logits = options.input_type == "logits"
    if fused and options.label_smoothing == 0.0 and options.input_type != "probs" and num_rows:
        # One fused kernel: per-sample losses, weights, ignored rows and the reduction.
        row_weight = sample_weight
        if row_weight is None and keep is not None:
            row_weight = keep.to(scores.dtype)
        coef: Tensor | float | None = row_weight
        if options.reduction == "mean":
            coef = 1.0 / num_rows if row_weight is None else row_weight / row_weight.sum()
        return fused_index_loss(
            scores,
            target,
            operator.rows(target, scores.dtype),
            operator,
            input_is_logits=input_is_logits,
            coef=coef,
            reduce=options.reduction != "none",
            keep=keep,
        )

    rows = operator.rows(target, scores.dtype)
    if fused and options.input_type != "probs":
        losses = fused_index_loss(scores, target, rows, operator, input_is_logits=input_is_logits)
    elif kernels == "compiled" and options.input_type != "probs" and rows.dense is not None:
        assert keep is not None  # traced targets always come with their mask
        losses = traced_index_losses(scores, rows.dense, keep, input_is_logits=input_is_logits)
    else:
        losses = index_losses(scores, rows, options.input_type)
    if sample_weight is not None:
        losses = losses * sample_weight
    if options.label_smoothing > 0.0:
        class_weight = (
            weight.to(scores.dtype)
            if weight is not None
            else torch.ones(num_classes, dtype=scores.dtype, device=scores.device)
        )
        uniform = class_weight.expand(num_rows, num_classes)
        smooth = _soft_losses(scores, uniform, operator, options.input_type, fused=fused)
        smoothing = options.label_smoothing
        losses = (1.0 - smoothing) * losses + (smoothing / num_classes) * smooth
    if keep is not None:  # masked, not multiplied: an ignored row's inf or NaN stays out
        losses = torch.where(keep, losses, 0.0)
    if invalid is not None:  # traced code cannot raise: an out-of-range target gives NaN
        losses = torch.where(invalid, torch.nan, losses)
    if options.reduction == "none":
        return losses
    total = losses.sum()
    if options.reduction == "sum":
        return total
    if sample_weight is not None:
        return total / sample_weight.sum()
    if keep is not None:
        return total / keep.sum()
    return total / num_rows


def _soft_losses(
    scores: Tensor, target_weights: Tensor, operator: LossOperator, input_type: str, *, fused: bool
) -> Tensor:
    """Per-sample ``-sum_k T_ik log (S p_i)_k`` for non-negative target weights T (N, C)."""
    if fused and input_type != "probs":
        return fused_soft_loss(
            scores, target_weights, operator, input_is_logits=input_type == "logits"
        )
    return soft_losses(scores, target_weights, operator, input_type)


def _probability_target_losses(
    scores: Tensor,
    target: Tensor,
    operator: LossOperator,
    *,
    weight: Tensor | None,
    options: LossOptions,
) -> Tensor:
    """Per-sample losses (N,) of class-probability targets (N, C)."""
    num_classes = scores.shape[1]
    target_weights = target.to(scores.dtype)
    smoothing = options.label_smoothing
    if smoothing > 0.0:
        target_weights = target_weights * (1.0 - smoothing) + smoothing / num_classes
    if weight is not None:
        target_weights = target_weights * weight.to(scores.dtype)
    fused = _kernels(operator, weight, target) == "fused"
    return _soft_losses(scores, target_weights, operator, options.input_type, fused=fused)
