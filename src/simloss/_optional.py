"""Optional dependencies: import them, or say in one line which extra installs them.

The extras and their packages are declared once, in ``pyproject.toml``; an
installed simloss carries them in its metadata (``Requires-Dist: ...; extra ==
"experiments"``), which :func:`missing_from_extra` reads.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from types import ModuleType

__all__ = ["install_hint", "missing_from_extra", "require"]

_DISTRIBUTION = "simloss"
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[([^\]]*)\])?")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def install_hint(extra: str) -> str:
    """The command that installs ``extra``, from an index and from a source checkout.

    Example:
        >>> install_hint("experiments")
        "pip install 'simloss[experiments]' (from a source checkout: pip install -e '.[experiments]')"
    """
    return f"pip install '{_DISTRIBUTION}[{extra}]' (from a source checkout: pip install -e '.[{extra}]')"


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise an ``ImportError`` naming the extra that provides it.

    Example:
        >>> require("math", "core").sqrt(4.0)
        2.0
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"`{module}` is needed here but could not be imported ({exc}); "
            f"install it with: {install_hint(extra)}"
        ) from exc


def missing_from_extra(extra: str) -> list[str]:
    """The distributions that ``extra`` declares and that are not installed.

    Read from the installed simloss's metadata, following extras that include
    others (``simloss[experiments]`` inside ``distributed``). Only presence is
    checked, not versions (pip checked those when it installed them). Empty when
    simloss itself is not installed (run from a source tree), where there is no
    metadata to read.

    Raises:
        ValueError: ``extra`` is not one of simloss's extras.
    """
    try:
        requirements = importlib.metadata.requires(_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    by_extra: dict[str, list[tuple[str, list[str]]]] = {}
    for line in requirements:
        requirement, _, marker = line.partition(";")
        found = _EXTRA_MARKER.search(marker)
        match = _NAME.match(requirement)
        if found is None or match is None:
            continue
        extras = [e.strip() for e in (match.group(3) or "").split(",") if e.strip()]
        by_extra.setdefault(found.group(1), []).append((match.group(1), extras))
    if extra not in by_extra:
        raise ValueError(
            f"Expected one of simloss's extras {sorted(by_extra)}, but found {extra!r}"
        )
    missing: list[str] = []
    seen: set[str] = set()
    pending = [extra]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for name, extras in by_extra.get(current, []):
            if name.lower() == _DISTRIBUTION:
                pending.extend(extras)
                continue
            try:
                importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                if name not in missing:
                    missing.append(name)
    return missing
