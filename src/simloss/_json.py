"""JSON as the standard defines it (private; every JSON file simloss reads goes through here).

Python's :func:`json.loads` accepts two things JSON does not: the tokens
``NaN``, ``Infinity`` and ``-Infinity`` (RFC 8259 has no such numbers), and a
key given twice in one object (it keeps the last, silently dropping the
first). Both are refused here with a one-line ``ValueError`` naming the file.
"""

from __future__ import annotations

import json
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


def parse_json(text: str, source: str) -> Any:
    """Parse ``text`` as standard JSON; ``source`` names it in errors (e.g. ``"config file c.json"``).

    Raises:
        ValueError: ``Could not parse {source} as JSON: ...`` for a syntax
            error; ``Expected ... in {source}, but found ...`` for a ``NaN`` /
            ``Infinity`` token or a key given twice.

    Example:
        >>> parse_json('{"r": 0.5}', "config file c.json")
        {'r': 0.5}
        >>> parse_json('{"r": NaN}', "config file c.json")
        Traceback (most recent call last):
        ...
        ValueError: Expected JSON numbers in config file c.json, but found NaN (not a JSON number)
    """
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"Could not parse {source} as JSON: {exc}") from None
    except _Refused as exc:
        raise ValueError(f"Expected {exc.expected} in {source}, but found {exc.found}") from None
