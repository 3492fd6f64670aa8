"""JSON as the standard defines it (private; every JSON file simloss reads goes through here).

Python's :func:`json.loads` accepts things JSON does not mean: the tokens
``NaN``, ``Infinity`` and ``-Infinity`` (RFC 8259 has no such numbers), a
number too large for a float such as ``1e999`` (read as infinity; an integer
beyond the float range is refused alike), and a key
given twice in one object (it keeps the last, silently dropping the first).
All are refused here with a one-line ``ValueError`` naming the file, as are
the reader's own limits (an integer of more than 4,300 digits, nesting deeper
than Python's recursion limit), which it reports without the file's name.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

__all__ = ["parse_json"]


class _Refused(Exception):
    def __init__(self, expected: str, found: str) -> None:
        super().__init__(expected, found)
        self.expected, self.found = expected, found


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise _Refused(
                "each key once", f"{key!r} more than once (JSON readers keep only the last)"
            )
        data[key] = value
    return data


def _no_constant(token: str) -> Any:
    raise _Refused("JSON numbers", f"{token} (not a JSON number)")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _Refused("numbers within the float range", f"{token} (read as {value})")
    return value


def _float_range_int(token: str) -> int:
    value = int(token)
    if abs(value) > sys.float_info.max:  # exact comparison; float(value) would overflow
        shown = token if len(token) <= 20 else f"{token[:12]}... ({len(token)} characters)"
        raise _Refused("numbers within the float range", f"{shown} (too large for a float)")
    return value


def parse_json(text: str, source: str) -> Any:
    """Parse ``text`` as standard JSON; ``source`` names it in errors (e.g. ``"config file c.json"``).

    Raises:
        ValueError: ``Could not parse {source} as JSON: ...`` for a syntax
            error or a limit of Python's reader; ``Expected ... in {source},
            but found ...`` for a ``NaN`` / ``Infinity`` token, a number that
            overflows a float or a key given twice.

    Example:
        >>> parse_json('{"r": 0.5}', "config file c.json")
        {'r': 0.5}
        >>> parse_json('{"r": NaN}', "config file c.json")
        Traceback (most recent call last):
        ...
        ValueError: Expected JSON numbers in config file c.json, but found NaN (not a JSON number)
    """
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
            parse_int=_float_range_int,
        )
    except RecursionError:
        raise ValueError(
            f"Could not parse {source} as JSON: nested deeper than Python's reader can go"
        ) from None
    except ValueError as exc:  # a JSONDecodeError, or the integer digit limit
        raise ValueError(f"Could not parse {source} as JSON: {exc}") from None
    except _Refused as exc:
        raise ValueError(f"Expected {exc.expected} in {source}, but found {exc.found}") from None
