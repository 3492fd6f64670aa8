"""The loss's options besides its tensors, each with one check (private).

``ignore_index``, ``reduction`` and ``label_smoothing`` mean what they mean in
:func:`torch.nn.functional.cross_entropy` and are checked as it checks them;
``input_type`` says what the scores are. :func:`simloss.sim_loss` checks all
four on every call (one :meth:`LossOptions.checked`), :class:`simloss.SimLoss`
checks each one when it is set, and the peers check ``reduction`` with
:func:`check_reduction`.
"""

from __future__ import annotations

from operator import index as as_index
from typing import Literal, NamedTuple, get_args

import numpy as np
from torch import Tensor

from simloss._describe import describe
from simloss._numbers import is_real

__all__ = [
    "INPUT_TYPES",
    "REDUCTIONS",
    "InputType",
    "LossOptions",
    "Reduction",
    "check_ignore_index",
    "check_input_type",
    "check_label_smoothing",
    "check_reduction",
]

Reduction = Literal["mean", "sum", "none"]
InputType = Literal["logits", "probs", "log_probs"]
REDUCTIONS: tuple[Reduction, ...] = get_args(Reduction)
INPUT_TYPES: tuple[InputType, ...] = get_args(InputType)


def check_reduction(value: object) -> Reduction:
    """``value`` if it is one of ``"mean"``, ``"sum"``, ``"none"``, else ``ValueError``.

    Example:
        >>> check_reduction("sum")
        'sum'
    """
    if value not in REDUCTIONS:
        raise ValueError(f"Expected `reduction` to be one of {REDUCTIONS}, but found {value!r}")
    return value


def check_input_type(value: object) -> InputType:
    """``value`` if it is one of ``"logits"``, ``"probs"``, ``"log_probs"``, else ``ValueError``."""
    if value not in INPUT_TYPES:
        raise ValueError(f"Expected `input_type` to be one of {INPUT_TYPES}, but found {value!r}")
    return value


def check_label_smoothing(value: object) -> float:
    """``value`` as a float in [0, 1]: a real number or a 0-dim floating tensor, as cross-entropy.

    Example:
        >>> check_label_smoothing(np.float32(0.25))
        0.25
    """
    if type(value) is float and 0.0 <= value <= 1.0:  # the common case, checked first
        return value
    if isinstance(value, Tensor) and value.dim() == 0 and value.is_floating_point():
        value = float(value)
    if not is_real(value):
        raise TypeError(f"Expected `label_smoothing` to be a float, but found {describe(value)}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"Expected `label_smoothing` in [0, 1], but found {value}")
    return float(value)


def check_ignore_index(value: object) -> int:
    """``value`` as an int: any Python or numpy integer, never a bool, as cross-entropy.

    Example:
        >>> check_ignore_index(np.int64(-1))
        -1
    """
    if type(value) is int:  # the common case, checked first
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Expected `ignore_index` to be an int, but found {describe(value)}")
    try:
        return as_index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"Expected `ignore_index` to be an int, but found {describe(value)}"
        ) from None


class LossOptions(NamedTuple):
    """The checked options of one loss: what :func:`simloss.sim_loss` passes inward."""

    ignore_index: int = -100
    reduction: Reduction = "mean"
    label_smoothing: float = 0.0
    input_type: InputType = "logits"

    @classmethod
    def checked(
        cls, *, ignore_index: object, reduction: object, label_smoothing: object, input_type: object
    ) -> LossOptions:
        """Check each option (see the ``check_*`` functions) and bundle them.

        Example:
            >>> LossOptions.checked(ignore_index=-100, reduction="sum", label_smoothing=0,
            ...                     input_type="logits")
            LossOptions(ignore_index=-100, reduction='sum', label_smoothing=0.0, input_type='logits')
        """
        return cls(
            ignore_index=check_ignore_index(ignore_index),
            reduction=check_reduction(reduction),
            label_smoothing=check_label_smoothing(label_smoothing),
            input_type=check_input_type(input_type),
        )
