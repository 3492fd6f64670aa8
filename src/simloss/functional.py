"""SimLoss as a pure function, a drop-in for ``torch.nn.functional.cross_entropy``."""

from __future__ import annotations

from numbers import Real
from operator import index as _as_index
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from simloss._distributions import check_probabilities, raw_scores_hint, sum_tolerance
from simloss._fused import FusedIndexLoss, FusedSoftLoss
from simloss._rowloss import index_losses, soft_losses
from simloss.similarity.dispatch import as_similarity_operator
from simloss.similarity.operator import _Operator, concrete, forward_ad_active, tracing

__all__ = ["sim_loss"]

InputType = Literal["logits", "probs", "log_probs"]
Reduction = Literal["mean", "sum", "none"]
_INPUT_TYPES = ("logits", "probs", "log_probs")
_REDUCTIONS = ("mean", "sum", "none")


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
        raise RuntimeError(_TORCHSCRIPT)
    label_smoothing, ignore_index = _check_arguments(
        reduction, label_smoothing, input_type, ignore_index
    )
    num_classes = check_input(input)
    operator = as_similarity_operator(
        similarity, num_classes, validate=validate, require_unit_diagonal=require_unit_diagonal
    )
    if weight is not None:
        _check_weight(weight, num_classes, input.device)
    return checked_sim_loss(
        input, target, operator, weight, ignore_index, reduction, label_smoothing, input_type
    )


def checked_sim_loss(
    input: Tensor,
    target: Tensor,
    operator: _Operator,
    weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    input_type: str,
) -> Tensor:
    """:func:`sim_loss` once its arguments are checked (``SimLoss`` checks them once).

    ``input`` must have passed :func:`check_input` and have ``operator.num_classes``
    classes; the configuration must have passed :func:`_check_arguments`.
    """
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        raise RuntimeError(_TORCHSCRIPT)
    if input_type != "logits":
        _check_distribution_input(input, target, ignore_index, input_type)
    device = input.device
    operator.check_device(device)
    if torch.is_autocast_enabled(device.type):  # as cross-entropy: float32 under autocast
        with torch.autocast(device_type=device.type, enabled=False):
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
    low_precision = input.dtype in _LOW_PRECISION  # computed and reduced in float32
    loss = _sim_loss(
        input.float() if low_precision else input,
        target,
        operator,
        weight.float() if low_precision and weight is not None else weight,
        ignore_index,
        reduction,
        label_smoothing,
        input_type,
    )
    return loss.to(input.dtype) if low_precision else loss


def check_input(input: Any) -> int:
    """Check the scores tensor and return its number of classes C (dimension 1, or 0 if 1-D)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"Expected `input` to be a torch.Tensor, but found {type(input).__name__}")
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


_TORCHSCRIPT = (
    "simloss does not support TorchScript (torch.jit.script / torch.jit.trace): its "
    "similarity operators and exact log-space fallback are Python; use torch.compile, "
    "which compiles SimLoss without graph breaks"
)
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _check_distribution_input(
    input: Tensor, target: Any, ignore_index: int, input_type: str
) -> None:
    """Probabilities (``"probs"``) or log-probabilities (``"log_probs"``) over the class dimension.

    Eager: a ``ValueError`` naming the first bad value or row. Under
    ``torch.compile``: the same condition as a tensor-side assertion. Under a
    ``torch.func`` transform the values cannot be checked. The rows of an
    ignored target take no part in the loss and are not checked (a padded
    position may hold anything, as with logits).
    """
    dim = 1 if input.dim() > 1 else 0
    log = input_type == "log_probs"
    hint = raw_scores_hint(input_type)
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


def _scored_rows(input: Tensor, target: Any, ignore_index: int) -> Tensor | None:
    """Where an index target is not ``ignore_index`` (input's shape without the class dim).

    None for class-probability targets (every row counts) and for a target
    of the wrong kind or shape (:func:`_flatten` names it).
    """
    if not isinstance(target, Tensor) or target.is_floating_point() or target.is_complex():
        return None
    batch = (input.shape[0], *input.shape[2:]) if input.dim() > 1 else ()
    if target.dtype == torch.bool or tuple(target.shape) != tuple(batch):
        return None
    return target != ignore_index


def _check_arguments(
    reduction: str, label_smoothing: Any, input_type: str, ignore_index: Any
) -> tuple[float, int]:
    """Check the arguments cross-entropy checks; return ``label_smoothing`` and ``ignore_index``.

    As ``F.cross_entropy``: ``label_smoothing`` may be a float or a 0-dim
    tensor, ``ignore_index`` any integer (a Python or numpy integer), never a bool.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"Expected `reduction` to be one of {_REDUCTIONS}, but found {reduction!r}"
        )
    if input_type not in _INPUT_TYPES:
        raise ValueError(
            f"Expected `input_type` to be one of {_INPUT_TYPES}, but found {input_type!r}"
        )
    if isinstance(label_smoothing, Tensor) and label_smoothing.dim() == 0:
        if not label_smoothing.is_floating_point():
            raise TypeError(
                "Expected `label_smoothing` to be a float, but found a tensor of dtype "
                f"{label_smoothing.dtype}"
            )
        label_smoothing = float(label_smoothing)
    if isinstance(label_smoothing, (bool, np.bool_)) or not isinstance(label_smoothing, Real):
        raise TypeError(
            f"Expected `label_smoothing` to be a float, but found {_kind(label_smoothing)}"
        )
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"Expected `label_smoothing` in [0, 1], but found {label_smoothing}")
    if isinstance(ignore_index, (bool, np.bool_)):
        raise TypeError("Expected `ignore_index` to be an int, but found bool")
    try:
        ignore = _as_index(ignore_index)
    except TypeError:
        raise TypeError(
            f"Expected `ignore_index` to be an int, but found {_kind(ignore_index)}"
        ) from None
    return float(label_smoothing), ignore


def _kind(value: object) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return type(value).__name__


def _check_weight(weight: Tensor, num_classes: int, device: torch.device) -> None:
    if not isinstance(weight, Tensor) or not weight.is_floating_point():
        raise TypeError(
            f"Expected `weight` to be a floating tensor of shape ({num_classes},), but found "
            f"{_kind(weight)}"
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
    if not soft and input.dim() == 2 and target.dim() == 1 and len(target) == len(input):
        return input, target, (len(input),), False  # the common case
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


def _fast_path(
    input: Tensor, target: Tensor, operator: _Operator, weight: Tensor | None, soft: bool
) -> bool:
    """Whether the eager fused kernels apply: no transform, no gradient beyond the scores."""
    if tracing() or forward_ad_active():
        return False
    return not (
        operator.requires_grad
        or (weight is not None and weight.requires_grad)
        or (soft and target.requires_grad)
    )


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
    fast = _fast_path(scores, flat_target, operator, weight, soft)
    if soft:
        if ignore_index >= 0:
            raise ValueError(
                "Expected the default `ignore_index` (any negative value) with class-probability "
                f"targets, as cross-entropy, but found {ignore_index}: ignore_index is not "
                "supported for floating point target"
            )
        losses = _soft_target_loss(
            scores, flat_target, operator, weight, label_smoothing, input_type, fast
        )
        if reduction == "none":
            return losses.reshape(out_shape)
        total = losses.sum()
        return total / losses.numel() if reduction == "mean" else total
    return _index_target_loss(
        scores,
        flat_target if flat_target.dtype == torch.long else flat_target.long(),
        operator,
        weight,
        ignore_index,
        reduction,
        label_smoothing,
        input_type,
        fast,
        out_shape,
    )


def _index_target_loss(
    scores: Tensor,
    target: Tensor,
    operator: _Operator,
    weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    input_type: str,
    fast: bool,
    out_shape: tuple[int, ...],
) -> Tensor:
    num_rows, num_classes = scores.shape
    keep, target, invalid = _kept_rows(target, num_classes, ignore_index)
    sample_weight = None
    if weight is not None:
        sample_weight = weight.index_select(0, target).to(scores.dtype)
        if keep is not None:
            sample_weight = sample_weight * keep
    if fast and label_smoothing == 0.0 and input_type != "probs" and num_rows > 0:
        # One fused kernel: per-sample losses, weights, ignored rows and the reduction.
        row_weight = sample_weight
        if row_weight is None and keep is not None:
            row_weight = keep.to(scores.dtype)
        coef: Tensor | float | None = row_weight
        if reduction == "mean":
            coef = 1.0 / num_rows if row_weight is None else row_weight / row_weight.sum()
        rows = operator.rows(target, scores.dtype)
        out: Tensor = FusedIndexLoss.apply(
            scores,
            target,
            rows,
            operator,
            input_type == "logits",
            coef,
            reduction != "none",
            keep,
        )
        return out.reshape(out_shape) if reduction == "none" else out

    if input_type == "probs" or not fast:
        losses = index_losses(scores, operator.rows(target, scores.dtype), input_type)
    else:
        losses = FusedIndexLoss.apply(
            scores,
            target,
            operator.rows(target, scores.dtype),
            operator,
            input_type == "logits",
            None,
            False,
            None,
        )
    if sample_weight is not None:
        losses = losses * sample_weight
    if label_smoothing > 0.0:
        class_weight = (
            weight.to(scores.dtype)
            if weight is not None
            else torch.ones(num_classes, dtype=scores.dtype, device=scores.device)
        )
        uniform = class_weight.expand(num_rows, num_classes)
        smooth = _soft_losses(scores, uniform, operator, input_type, fast)
        losses = (1.0 - label_smoothing) * losses + (label_smoothing / num_classes) * smooth
    if keep is not None:  # masked, not multiplied: an ignored row's inf or NaN stays out
        losses = torch.where(keep, losses, 0.0)
    if invalid is not None:  # traced code cannot raise: an out-of-range target gives NaN
        losses = torch.where(invalid, torch.nan, losses)
    if reduction == "none":
        return losses.reshape(out_shape)
    total = losses.sum()
    if reduction == "sum":
        return total
    if sample_weight is not None:
        return total / sample_weight.sum()
    if keep is not None:
        return total / keep.sum()
    return total / num_rows


def _kept_rows(
    target: Tensor, num_classes: int, ignore_index: int
) -> tuple[Tensor | None, Tensor, Tensor | None]:
    """Check index targets: ``(rows to keep or None, safe targets, invalid rows or None)``.

    Ignored rows get target 0, so every row can be computed and masked
    afterwards (no data-dependent shapes). Where the targets' values can be
    read (eager mode), one reduction and one host synchronisation check the
    common case (every target in range, ``ignore_index`` outside the observed
    range) and a bad target raises. Under ``torch.compile`` the same check is
    a tensor-side assertion (``torch._assert_async``: the compiled code raises
    the same message). Under ``vmap`` no assertion exists: an out-of-range
    target's loss is NaN. Out-of-range targets are never used as indices
    (negative ones would wrap around).
    """
    message = f"Expected `target` values in [0, {num_classes}) or ignore_index={ignore_index}"
    if not concrete(target):
        ignored = target == ignore_index
        invalid = ~ignored & ((target < 0) | (target >= num_classes))
        if torch.compiler.is_compiling():
            torch._assert_async(~invalid.any(), message)
        safe = target.masked_fill(ignored | invalid, 0)
        return ~ignored, safe, invalid
    if target.numel() == 0:
        return None, target, None
    low, high = (int(v) for v in torch.aminmax(target))
    if low >= 0 and high < num_classes and not (low <= ignore_index <= high):
        return None, target, None
    ignored = target == ignore_index
    bad = ~ignored & ((target < 0) | (target >= num_classes))
    if bool(bad.any()):
        raise ValueError(f"{message}, but found {int(target[bad][0])}")
    if not bool(ignored.any()):
        return None, target, None
    return ~ignored, target.masked_fill(ignored, 0), None


def _soft_losses(
    scores: Tensor, target_weights: Tensor, operator: _Operator, input_type: str, fast: bool
) -> Tensor:
    """Per-sample ``-sum_k T_ik log (S p_i)_k`` for non-negative target weights T (N, C)."""
    if fast and input_type != "probs":
        loss: Tensor = FusedSoftLoss.apply(scores, target_weights, operator, input_type == "logits")
        return loss
    return soft_losses(scores, target_weights, operator, input_type)


def _soft_target_loss(
    scores: Tensor,
    target: Tensor,
    operator: _Operator,
    weight: Tensor | None,
    label_smoothing: float,
    input_type: str,
    fast: bool,
) -> Tensor:
    num_classes = scores.shape[1]
    target = target.to(scores.dtype)
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / num_classes
    if weight is not None:
        target = target * weight.to(scores.dtype)
    return _soft_losses(scores, target, operator, input_type, fast)
