"""Which Python values count as a real number or an integer argument (private).

A numpy scalar (``np.float32(0.5)``, ``np.int64(90)``, e.g. from an array or
``len(np.unique(...))``-style arithmetic) is as good a number as a Python one;
a bool is never a number here, as ``True`` for ``r`` or ``num_classes`` is a
mistake. One place, so every builder and operator accepts the same values.
"""

from __future__ import annotations

import numbers
from typing import TypeGuard

import numpy as np

__all__ = ["is_int", "is_real"]


def is_real(value: object) -> TypeGuard[numbers.Real]:
    """Whether ``value`` is a real number (Python or numpy, not bool).

    Example:
        >>> is_real(0.5), is_real(np.float32(0.5)), is_real(True), is_real("0.5")
        (True, True, False, False)
    """
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_int(value: object) -> TypeGuard[numbers.Integral]:
    """Whether ``value`` is an integer (Python or numpy, not bool).

    Example:
        >>> is_int(3), is_int(np.int64(3)), is_int(3.0), is_int(np.bool_(True))
        (True, True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
