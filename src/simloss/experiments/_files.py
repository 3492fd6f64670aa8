"""Atomic file writes: a reader never sees a half-written result file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_path", "atomic_write_json", "atomic_write_text"]


@contextmanager
def atomic_path(path: str | Path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``.

    The temporary file lives in the same folder, so :func:`os.replace` is an
    atomic rename; on any exception it is removed and ``path`` is untouched.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> with atomic_path(folder / "a.txt") as tmp:
        ...     _ = tmp.write_text("done")
        >>> (folder / "a.txt").read_text()
        'done'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _write_with(path: str | Path, mode: str, write: Callable[[IO[Any]], None]) -> None:
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""

    def write(handle: IO[Any]) -> None:
        handle.write(text)

    _write_with(path, "w", write)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (NaN is rejected).

    Example:
        >>> import tempfile, pathlib, json
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "r.json"
        >>> atomic_write_json(target, {"a": 1})
        >>> json.loads(target.read_text())
        {'a': 1}
    """
    text = json.dumps(obj, indent=2, allow_nan=False) + "\n"
    atomic_write_text(path, text)
