"""Validation shared by the metric functions and metric classes (private).

Every check raises ``TypeError`` (wrong kind or dtype) or ``ValueError`` (wrong
shape or value) with a message naming the argument, what was expected and what
was found. Nothing is coerced silently: integer indices stay integers, scores
stay scores, and a value outside its range is an error, never clipped.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import NamedTuple, TypeGuard

import numpy as np
import torch
from torch import Tensor

from simloss._distributions import check_probabilities, raw_scores_hint

__all__ = [
    "DECODERS",
    "Prepared",
    "check_class_values",
    "check_decoder",
    "check_fine_to_coarse",
    "check_ignore_index",
    "check_input_type",
    "check_nonnegative_real",
    "check_num_classes",
    "check_square_matrix",
    "check_tensor",
    "check_top_k",
    "float_dtype",
    "prepare",
    "resolve_num_classes",
    "scores_to_probs",
]


def float_dtype(device: torch.device) -> torch.dtype:
    """Dtype of the metrics' floating sums: float64, or float32 where a device lacks float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def _describe(x: object) -> str:
    if isinstance(x, Tensor):
        return f"a tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}" if isinstance(x, (numbers.Number, str)) else type(x).__name__


def _is_integer_dtype(dtype: torch.dtype) -> bool:
    return not dtype.is_floating_point and not dtype.is_complex and dtype != torch.bool


def _is_int(x: object) -> TypeGuard[numbers.Integral]:
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def check_tensor(x: object, name: str) -> Tensor:
    """Return ``x`` if it is a tensor, else raise ``TypeError``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor, but found {_describe(x)}")
    return x


def check_num_classes(num_classes: object, name: str = "num_classes") -> int | None:
    """``None`` or a positive integer."""
    if num_classes is None:
        return None
    if not _is_int(num_classes):
        raise TypeError(
            f"Expected `{name}` to be a positive int or None, but found {_describe(num_classes)}"
        )
    value = int(num_classes)
    if value < 1:
        raise ValueError(f"Expected `{name}` to be a positive int, but found {value}")
    return value


def resolve_num_classes(
    num_classes: int | None, length: int, source: str, reference: str = "`num_classes`"
) -> int:
    """The class count implied by a per-class argument, checked against ``num_classes``."""
    if num_classes is not None and num_classes != length:
        raise ValueError(
            f"Expected `{source}` to have one entry per class ({num_classes}, from {reference}), "
            f"but found {length} entries"
        )
    return length


def check_ignore_index(ignore_index: object) -> int | None:
    """``None`` or an integer target value to skip."""
    if ignore_index is None:
        return None
    if not _is_int(ignore_index):
        raise TypeError(
            f"Expected `ignore_index` to be an int or None, but found {_describe(ignore_index)}"
        )
    return int(ignore_index)


def check_top_k(top_k: object) -> int:
    """A positive integer."""
    if not _is_int(top_k):
        raise TypeError(f"Expected `top_k` to be a positive int, but found {_describe(top_k)}")
    value = int(top_k)
    if value < 1:
        raise ValueError(f"Expected `top_k` to be a positive int, but found {value}")
    return value


def check_nonnegative_real(value: object, name: str) -> float:
    """A finite real number >= 0 (bool is rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"Expected `{name}` to be a real number >= 0, but found {_describe(value)}")
    result = float(value)
    if not math.isfinite(result) or result < 0:
        raise ValueError(f"Expected `{name}` to be a finite real number >= 0, but found {result}")
    return result


#: How a predicted value is read from the scores (see :func:`simloss.metrics.mean_absolute_error`).
DECODERS: tuple[str, ...] = ("argmax", "expectation", "median")


def check_decoder(decoder: object) -> str:
    """One of :data:`DECODERS`."""
    if decoder not in DECODERS:
        raise ValueError(f"Expected `decoder` to be one of {DECODERS}, but found {decoder!r}")
    return str(decoder)


def check_input_type(input_type: object) -> str:
    """``"logits"`` or ``"probs"``."""
    if input_type not in ("logits", "probs"):
        raise ValueError(
            f'Expected `input_type` to be "logits" or "probs", but found {input_type!r}'
        )
    return str(input_type)


def _as_tensor(values: object, name: str, what: str) -> Tensor:
    """A tensor from a tensor, a NumPy array or a sequence of numbers (no dtype change)."""
    if isinstance(values, Tensor):
        return values.detach()
    if isinstance(values, (np.ndarray, Sequence)) and not isinstance(values, (str, bytes)):
        array = np.asarray(values)
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"Expected `{name}` to hold {what}, but found numpy dtype {array.dtype}"
            )
        return torch.from_numpy(np.ascontiguousarray(array))
    raise TypeError(
        f"Expected `{name}` to be a tensor, a NumPy array or a sequence of {what}, "
        f"but found {_describe(values)}"
    )


def _first_index(mask: Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in mask.nonzero()[0].tolist())


def check_fine_to_coarse(fine_to_coarse: object) -> Tensor:
    """A 1-D int64 CPU tensor of non-negative superclass indices, one per fine class."""
    name = "fine_to_coarse"
    mapping = _as_tensor(fine_to_coarse, name, "superclass indices (ints)")
    if mapping.ndim != 1 or mapping.numel() == 0:
        raise ValueError(
            f"Expected `{name}` to be a non-empty 1-D mapping (one superclass per fine class), "
            f"but found shape {tuple(mapping.shape)}"
        )
    if not _is_integer_dtype(mapping.dtype):
        raise TypeError(
            f"Expected `{name}` to hold integer superclass indices, but found dtype {mapping.dtype}"
        )
    mapping = mapping.to(device="cpu", dtype=torch.int64)
    if bool((mapping < 0).any()):
        at = _first_index(mapping < 0)[0]
        raise ValueError(
            f"Expected `{name}` to hold superclass indices >= 0, but found {int(mapping[at])} "
            f"for fine class {at}"
        )
    return mapping.clone()  # never alias the caller's tensor or array


def check_class_values(class_values: object, *, copy: bool = True) -> Tensor:
    """A 1-D float64 CPU tensor of finite values, one per class.

    With ``copy`` (for a metric that keeps them) the result never aliases the
    caller's tensor or array; a function that only reads them passes False.
    """
    name = "class_values"
    values = _as_tensor(class_values, name, "numbers")
    if values.dtype == torch.bool or values.dtype.is_complex:
        raise TypeError(f"Expected `{name}` to hold real numbers, but found dtype {values.dtype}")
    if values.ndim != 1 or values.numel() == 0:
        raise ValueError(
            f"Expected `{name}` to be a non-empty 1-D sequence (one value per class), "
            f"but found shape {tuple(values.shape)}"
        )
    values = values.to(device="cpu", dtype=torch.float64)
    # A finite sum means finite values (one reduction); otherwise look closer.
    if not math.isfinite(float(values.sum())) and not bool(torch.isfinite(values).all()):
        at = _first_index(~torch.isfinite(values))[0]
        raise ValueError(f"Expected `{name}` to be finite, but found {float(values[at])} at {at}")
    return values.clone() if copy else values


def check_square_matrix(matrix: object, name: str, *, nonnegative: bool = False) -> Tensor:
    """A (C, C) float64 CPU tensor of finite (optionally non-negative) values."""
    m = _as_tensor(matrix, name, "numbers")
    if m.dtype == torch.bool or m.dtype.is_complex:
        raise TypeError(f"Expected `{name}` to hold real numbers, but found dtype {m.dtype}")
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(
            f"Expected `{name}` to be a non-empty square (C, C) matrix, but found shape "
            f"{tuple(m.shape)}"
        )
    m = m.to(device="cpu", dtype=torch.float64)
    if not bool(torch.isfinite(m).all()):
        at = _first_index(~torch.isfinite(m))
        raise ValueError(f"Expected `{name}` to be finite, but found {float(m[at])} at {at}")
    if nonnegative and bool((m < 0).any()):
        at = _first_index(m < 0)
        raise ValueError(f"Expected `{name}` to be >= 0, but found {float(m[at])} at {at}")
    return m.clone()  # never alias the caller's tensor or array


def _check_score_columns(preds: Tensor, num_classes: int | None, classes_from: str) -> int:
    """Validate the column count of (N, C) floating scores; return C."""
    classes = preds.shape[1]
    if classes == 0:
        raise ValueError("Expected `preds` scores of shape (N, C) with C >= 1, but found C = 0")
    if num_classes is not None and classes != num_classes:
        raise ValueError(
            f"Expected `preds` scores to have one column per class ({num_classes} classes, "
            f"from {classes_from}), "
            f"but found shape {tuple(preds.shape)}"
        )
    return classes


def _argmax_checked(scores: Tensor) -> Tensor:
    """Row-wise argmax of (N, C) scores, refusing NaN where it can change the result.

    :func:`torch.max` propagates NaN: a row holding a NaN anywhere has NaN as
    its maximum and its first NaN as the argmax. So the N row maxima, from the
    same pass as the argmax, show every row with a NaN (instead of a scan of
    all N x C scores), and the first such row's argmax is the first NaN a full
    scan would name. Their sum is NaN when one is (or when +inf meets -inf, a
    case the exact test below then clears), so the common case costs one sum.
    """
    if scores.shape[0] == 0:
        return scores.argmax(dim=1)
    best, pred = scores.max(dim=1)
    if not math.isnan(float(best.sum())):
        return pred
    nan = torch.isnan(best)
    if bool(nan.any()):
        row = int(nan.nonzero()[0, 0])
        raise ValueError(
            f"Expected `preds` to contain no NaN, but found NaN at ({row}, {int(pred[row])})"
        )
    return pred


def _check_indices(
    x: Tensor,
    name: str,
    num_classes: int | None,
    classes_from: str,
    ignore_index: int | None = None,
) -> None:
    """Indices must lie in [0, num_classes) (or be >= 0 when the class count is unknown)."""
    if x.numel() == 0:
        return
    low, high = (int(v) for v in torch.aminmax(x))  # one pass, one host synchronisation
    if low >= 0 and (num_classes is None or high < num_classes):
        return
    bad = x < 0 if num_classes is None else (x < 0) | (x >= num_classes)
    at = _first_index(bad)[0]
    value = int(x[at])
    expected = (
        "values >= 0"
        if num_classes is None
        else f"values in [0, {num_classes}) ({num_classes} classes, from {classes_from})"
    )
    hint = ""
    if name == "target" and ignore_index is None and value < 0:
        hint = f"; pass `ignore_index={value}` to skip such examples"
    elif name == "target" and ignore_index is not None:
        expected += f" or `ignore_index` ({ignore_index})"
    raise ValueError(f"Expected `{name}` {expected}, but found {value} at index {at}{hint}")


class Prepared(NamedTuple):
    """Validated inputs with ignored examples removed."""

    pred: Tensor  # (M,) int64 predicted class indices (the argmax of scores)
    target: Tensor  # (M,) int64 target class indices
    scores: Tensor | None  # (M, C) scores when they were asked for (`need_scores`), else None
    num_classes: int | None  # C when known (from scores or the caller)


def prepare(
    preds: object,
    target: object,
    *,
    num_classes: int | None = None,
    ignore_index: int | None = None,
    need_scores: str | None = None,
    classes_from: str = "`num_classes`",
) -> Prepared:
    """Turn ``preds`` (scores (N, C) or indices (N,)) and ``target`` (N,) into class indices.

    A ``preds`` tensor of floating dtype with 2 dims is read as scores (logits or
    probabilities; both give the same argmax, ties resolved to the lowest index),
    an integer tensor with 1 dim as class indices. Scores are checked for NaN
    through their argmax (see :func:`_argmax_checked`), for every example,
    ignored or not. Examples whose target equals ``ignore_index`` are removed.
    ``need_scores`` says why the caller needs the scores themselves (e.g.
    ``"for top_k > 1"``): they are then returned (without ignored rows) and
    class indices are refused. ``classes_from`` names where ``num_classes``
    came from, for error messages (e.g. "the length of `fine_to_coarse`").
    """
    preds = check_tensor(preds, "preds")
    target = check_tensor(target, "target")
    scores: Tensor | None = None
    if preds.ndim == 2 and preds.is_floating_point():
        num_classes = _check_score_columns(preds, num_classes, classes_from)
        classes_from = "the columns of `preds`"
        scores = preds
    elif preds.ndim == 1 and _is_integer_dtype(preds.dtype):
        if need_scores is not None:
            raise ValueError(
                f"Expected `preds` to be class scores of shape (N, C) {need_scores}, but found "
                f"class indices of shape {tuple(preds.shape)}"
            )
        _check_indices(preds, "preds", num_classes, classes_from)
    else:
        error = TypeError if preds.ndim in (1, 2) else ValueError
        raise error(
            "Expected `preds` to be class scores (logits or probabilities) of floating dtype and "
            "shape (N, C), or class indices of integer dtype and shape (N,), but found dtype "
            f"{preds.dtype} and shape {tuple(preds.shape)}"
        )
    if not _is_integer_dtype(target.dtype):
        raise TypeError(
            f"Expected `target` to hold integer class indices, but found dtype {target.dtype}"
        )
    if target.ndim != 1 or target.shape[0] != preds.shape[0]:
        raise ValueError(
            f"Expected `target` of shape ({preds.shape[0]},) to match `preds` of shape "
            f"{tuple(preds.shape)}, but found shape {tuple(target.shape)}"
        )
    if target.device != preds.device:
        raise ValueError(
            "Expected `preds` and `target` on the same device, but found "
            f"{preds.device} and {target.device}"
        )
    pred = _argmax_checked(scores) if scores is not None else preds
    target = target.long()
    if ignore_index is not None:
        keep = target != ignore_index
        target = target[keep]
        _check_indices(target, "target", num_classes, classes_from, ignore_index)
        pred = pred[keep]
        if scores is not None and need_scores is not None:
            scores = scores[keep]
    else:
        _check_indices(target, "target", num_classes, classes_from)
    return Prepared(pred.long(), target, scores if need_scores is not None else None, num_classes)


def scores_to_probs(scores: Tensor, input_type: str) -> Tensor:
    """Probabilities (N, C) from logits (softmax) or from probabilities (checked)."""
    if input_type == "logits":
        probs = torch.softmax(scores.to(float_dtype(scores.device)), dim=1)
        undefined = torch.isnan(probs).any(dim=1)
        if bool(undefined.any()):
            row = _first_index(undefined)[0]
            raise ValueError(
                "Expected each row of `preds` logits to define a softmax distribution, but row "
                f"{row} holds +inf or only -inf"
            )
        return probs
    check_probabilities(scores, "preds", hint=raw_scores_hint("probs"))
    return scores.to(float_dtype(scores.device))
