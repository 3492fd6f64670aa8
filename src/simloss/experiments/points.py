"""The one rule for values of a swept parameter: rounding, identity, printing.

A value of ``r`` (or ``l``) travels from ``--grid`` through the sweep's
storage and the run records into the report. Everywhere it is compared, used
as a key or printed, it goes through these functions, so ``0.1 * 3`` and
``0.3`` are one grid point in every part.

Example:
    >>> value_key(0.1 * 3) == value_key(0.3), point_key(0.1 * 3, 2)
    (True, (0.3, 2))
    >>> format_value(0.1 + 0.2), format_value(0.0), format_value(0.99)
    ('0.3', '0.0', '0.99')
"""

from __future__ import annotations

import math

__all__ = [
    "VALUE_DECIMALS",
    "LossPoint",
    "format_value",
    "loss_point_key",
    "point_key",
    "point_label",
    "value_key",
]

#: A sweep point of a study of several losses: ``(loss, value or None, run)``.
LossPoint = tuple[str, float | None, int]

#: Decimals parameter values are rounded to, so ``0.1 * 3`` and ``0.3`` are one value.
VALUE_DECIMALS = 10


def value_key(value: float) -> float:
    """A parameter value rounded to :data:`VALUE_DECIMALS` (its identity).

    Raises:
        TypeError: not a real number (``bool`` included).
        ValueError: not finite.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"Expected a parameter value to be a number, but found {type(value).__name__} {value!r}"
        )
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"Expected a finite parameter value, but found {number}")
    return round(number, VALUE_DECIMALS)


def point_key(value: float, run: int) -> tuple[float, int]:
    """The identity of one grid point x run index.

    Example:
        >>> point_key(0.1 * 3, 2) == point_key(0.3, 2)
        True
    """
    if isinstance(run, bool) or not isinstance(run, int):
        raise TypeError(f"Expected `run` to be an int, but found {type(run).__name__} {run!r}")
    return (value_key(value), run)


def format_value(value: float) -> str:
    """A parameter value as shown in tables and labels: shortest form, at least one decimal.

    Example:
        >>> [format_value(v) for v in (0.0, 0.3, 0.99, 1e-10)]
        ['0.0', '0.3', '0.99', '1e-10']
    """
    text = f"{value_key(value):.10g}"
    return text if ("." in text or "e" in text) else f"{text}.0"


def loss_point_key(loss: str, value: float | None, run: int) -> LossPoint:
    """The identity of one point of a study of several losses: loss, rounded value, run.

    ``value`` is ``None`` for a loss without a parameter (``ce``, ``emd``, ``corn``).

    Example:
        >>> loss_point_key("sord", 0.1 * 3, 1), loss_point_key("ce", None, 0)
        (('sord', 0.3, 1), ('ce', None, 0))
    """
    if not isinstance(loss, str):
        raise TypeError(f"Expected `loss` to be a str, but found {type(loss).__name__} {loss!r}")
    if value is None:
        if isinstance(run, bool) or not isinstance(run, int):
            raise TypeError(f"Expected `run` to be an int, but found {type(run).__name__} {run!r}")
        return (loss, None, run)
    key, index = point_key(value, run)
    return (loss, key, index)


def point_label(loss: str, param: str | None, value: float | None) -> str:
    """A point's name in logs, folders and tables: ``r=0.3`` (SimLoss), ``sord alpha=2.0``, ``ce``.

    SimLoss's points are the bare ``param=value`` (its trial folders and labels
    read the same in every study).

    Example:
        >>> point_label("simloss", "r", 0.3), point_label("sord", "alpha", 2), point_label("ce", None, None)
        ('r=0.3', 'sord alpha=2.0', 'ce')
    """
    if param is None or value is None:
        return loss
    text = f"{param}={format_value(value)}"
    return text if loss == "simloss" else f"{loss} {text}"
