"""The one atomic writer: a reader never sees a half-written result file.

Every result file of simloss (run records, weights, configs, sweep files,
reports, figures) is written through :func:`atomic_path`: to a temporary file
in the target's folder, flushed to the disk (``fsync``), given the usual
permissions (``0o666`` less the umask), then moved onto the target with
``os.replace``. An error (a full disk, a read-only folder) leaves the target as
it was, removes the temporary file and names the target.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from simloss._json import parse_json

__all__ = [
    "BOM",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "read_json_object",
    "read_text_file",
    "walk_files",
]


@contextmanager
def atomic_path(
    path: str | Path, *, suffix: str = ".tmp", private: bool = False, exclusive: bool = False
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``.

    ``exclusive``: ``path`` must not exist yet; of several writers racing to
    create it, one wins and the others get ``FileExistsError`` (``os.link``).

    The caller writes the temporary file (by path or by opening it); on leaving
    the block the file is flushed to the disk and atomically renamed onto
    ``path``. On any exception it is removed and ``path`` is untouched; an
    ``OSError`` (e.g. ``ENOSPC``) is raised again naming ``path``. A ``path``
    that is a folder is refused before anything is written.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> with atomic_path(folder / "a.txt") as tmp:
        ...     _ = tmp.write_text("done")
        >>> (folder / "a.txt").read_text()
        'done'
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"Expected {target} to be a file to write, but it is a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise _naming(exc, target) from exc
    tmp = Path(name)
    try:
        if not private:  # mkstemp makes 0600 (kept for a private file: a password)
            os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        if exclusive:
            os.link(tmp, target)
            tmp.unlink()
        else:
            os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _naming(exc, target) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _naming(exc: OSError, target: Path) -> OSError:
    """The same error, its message naming the file being written."""
    if exc.errno is None or str(target) in str(exc):
        return exc
    return OSError(exc.errno, f"{exc.strerror or exc} (writing {target})")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write_bytes(
    path: str | Path, data: bytes, *, private: bool = False, exclusive: bool = False
) -> None:
    """Write ``data`` to ``path`` atomically (``private``: readable by its owner only;
    ``exclusive``: only if ``path`` does not exist, else ``FileExistsError``)."""
    with atomic_path(path, private=private, exclusive=exclusive) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(
    path: str | Path, text: str, *, private: bool = False, exclusive: bool = False
) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line endings kept as given) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), private=private, exclusive=exclusive)


def atomic_write_json(
    path: str | Path, obj: Any, *, private: bool = False, exclusive: bool = False
) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (NaN is rejected).

    ``private``: the file is readable by its owner only (mode 0600), e.g. a
    settings file whose storage URL holds a password.

    Example:
        >>> import tempfile, pathlib, json
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "r.json"
        >>> atomic_write_json(target, {"a": 1})
        >>> json.loads(target.read_text())
        {'a': 1}
    """
    text = json.dumps(obj, indent=2, allow_nan=False) + "\n"
    atomic_write_text(path, text, private=private, exclusive=exclusive)


#: The byte-order mark some programs write first in UTF-8 text (Excel's "CSV UTF-8").
BOM = "\ufeff"


def read_text_file(path: str | Path, what: str) -> str:
    """The UTF-8 text of ``path`` as its bytes hold it, with one-line errors that name the file.

    Line endings are not translated; a leading UTF-8 byte-order mark is dropped,
    so a file with one reads as the same file without it.

    Args:
        path: the file.
        what: what the file is, for the messages (e.g. ``"row file"``).

    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: ``path`` is a folder.
        ValueError: the file is not UTF-8 text (e.g. an image given as a text file).
        OSError: the file cannot be read (e.g. no permission), naming it.

    Example:
        >>> import tempfile, pathlib
        >>> file = pathlib.Path(tempfile.mkdtemp()) / "x.jpg"
        >>> _ = file.write_bytes(bytes([0xFF, 0xD8, 0xFF]))  # a JPEG's first bytes
        >>> read_text_file(file, "row file")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected row file .../x.jpg to be UTF-8 text, but byte 0 is 0xff (...)
    """
    file = Path(path)
    if file.is_dir():
        raise IsADirectoryError(f"Expected {what} {file} to be a file, but it is a folder")
    if not file.is_file():
        raise FileNotFoundError(f"{what[:1].upper()}{what[1:]} {file} does not exist")
    try:
        # Bytes decoded as they are: no newline translation (a lone \r or a \r\n inside a
        # quoted CSV cell is the file's); a leading byte-order mark (Excel's "CSV UTF-8") is
        # no part of the text (else it sticks to the first column's name).
        return file.read_bytes().decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"Expected {what} {file} to be UTF-8 text, but byte {exc.start} is "
            f"0x{exc.object[exc.start]:02x} ({exc.reason}; a binary file?)"
        ) from exc
    except OSError as exc:
        raise OSError(exc.errno, f"Could not read {what} {file}: {exc.strerror}") from exc


def read_json_object(path: str | Path, what: str) -> dict[str, Any]:
    """Read a JSON object from ``path``, with one-line errors that name the file.

    Args:
        path: the file.
        what: what the file is, for the messages (e.g. ``"config file"``).

    Raises:
        FileNotFoundError: no such file (also the other errors of :func:`read_text_file`).
        IsADirectoryError: ``path`` is a folder.
        ValueError: not JSON (or not UTF-8), not an object, a key given twice
            in one object or a ``NaN``/``Infinity`` token (Python's reader would
            keep the last key and accept the tokens; see :func:`simloss._json.parse_json`).
    """
    file = Path(path)
    text = read_text_file(file, what)
    data = parse_json(text, f"{what} {file}")
    if not isinstance(data, dict):
        raise ValueError(
            f"Expected a JSON object in {what} {file}, but found {type(data).__name__}"
        )
    return data


def walk_files(folder: str | Path) -> list[Path]:
    """Every file below ``folder`` and every broken link, sorted.

    Hidden files and folders (a name starting with ``.``) are skipped; symbolic
    links to folders are followed as the folders themselves are (a data folder
    assembled from links reads as a copy would), a link back to a folder above it
    is refused (it would make the tree endless), and a broken link is listed, for
    the caller to refuse or count. The order is that of ``sorted(paths)``.
    A link to ``folder`` itself or to a folder above it is a loop too.

    Raises:
        ValueError: a link to a folder above it, naming both.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / "a").mkdir(); _ = (root / "a" / "x.txt").write_text("1")
        >>> (root / "b").symlink_to(root / "a"); (root / "gone").symlink_to(root / "nothing")
        >>> [p.relative_to(root).as_posix() for p in walk_files(root)]
        ['a/x.txt', 'b/x.txt', 'gone']
    """
    found: list[Path] = []
    root = Path(folder)
    real_root = Path(os.path.realpath(root))
    above_root = tuple(str(p) for p in (real_root, *real_root.parents))
    stack: list[tuple[Path, tuple[str, ...]]] = [(root, above_root)]
    while stack:
        current, above = stack.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                path = current / entry.name
                if entry.is_dir(follow_symlinks=True):
                    real = os.path.realpath(path)
                    if real in above:
                        raise ValueError(
                            f"Expected a folder tree without loops below {root}, but {path} "
                            f"links back to {real}"
                        )
                    stack.append((path, (*above, real)))
                elif entry.is_file(follow_symlinks=True) or not path.exists():
                    found.append(path)  # a file, or a broken link (sockets, pipes: neither)
    return sorted(found)
