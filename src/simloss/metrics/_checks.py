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

import numpy as np
import torch
from torch import Tensor

from simloss._numbers import is_int

__all__ = [
    "check_class_values",
    "check_cost",
    "check_fine_to_coarse",
    "check_ignore_index",
    "check_input_type",
    "check_nonnegative_real",
    "check_num_classes",
    "check_square_matrix",
    "check_tensor",
    "check_top_k",
    "first_index",
    "float_dtype",
    "is_integer_dtype",
    "resolve_num_classes",
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


def is_integer_dtype(dtype: torch.dtype) -> bool:
    return not dtype.is_floating_point and not dtype.is_complex and dtype != torch.bool


def check_tensor(x: object, name: str) -> Tensor:
    """Return ``x`` if it is a tensor, else raise ``TypeError``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor, but found {_describe(x)}")
    return x


def check_num_classes(num_classes: object, name: str = "num_classes") -> int | None:
    """``None`` or a positive integer."""
    if num_classes is None:
        return None
    if not is_int(num_classes):
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
    if not is_int(ignore_index):
        raise TypeError(
            f"Expected `ignore_index` to be an int or None, but found {_describe(ignore_index)}"
        )
    return int(ignore_index)


def check_top_k(top_k: object) -> int:
    """A positive integer."""
    if not is_int(top_k):
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


def first_index(mask: Tensor) -> tuple[int, ...]:
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
    if not is_integer_dtype(mapping.dtype):
        raise TypeError(
            f"Expected `{name}` to hold integer superclass indices, but found dtype {mapping.dtype}"
        )
    mapping = mapping.to(device="cpu", dtype=torch.int64)
    if bool((mapping < 0).any()):
        at = first_index(mapping < 0)[0]
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
        at = first_index(~torch.isfinite(values))[0]
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
        at = first_index(~torch.isfinite(m))
        raise ValueError(f"Expected `{name}` to be finite, but found {float(m[at])} at {at}")
    if nonnegative and bool((m < 0).any()):
        at = first_index(m < 0)
        raise ValueError(f"Expected `{name}` to be >= 0, but found {float(m[at])} at {at}")
    return m.clone()  # never alias the caller's tensor or array


def check_cost(cost: object, num_classes: int | None = None) -> Tensor:
    """A (C, C) float64 CPU cost matrix of finite values: ``cost[k, c]`` is the cost of deciding
    ``k`` when the class is ``c`` (rows: decisions, columns: true classes)."""
    matrix = check_square_matrix(cost, "cost")
    if num_classes is not None and matrix.shape[0] != num_classes:
        raise ValueError(
            f"Expected `cost` of shape ({num_classes}, {num_classes}) (one row and column per "
            f"class), but found shape {tuple(matrix.shape)}"
        )
    return matrix
