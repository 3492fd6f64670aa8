"""Saving a similarity matrix: ``.npy`` and ``.csv`` files (and a heatmap), written atomically."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

__all__ = ["save_heatmap", "save_similarity"]


def save_similarity(
    matrix: Any, prefix: str | os.PathLike[str], names: Sequence[str] | None = None
) -> list[Path]:
    """Write ``PREFIX.npy`` (float32, C x C) and ``PREFIX.csv`` (names as header and first column).

    The CSV holds each value as the shortest text that reads back to the same
    float32. Each file is written to a temporary file in the same folder and
    moved into place with ``os.replace``, so a reader never sees half a file.
    The folder is created if needed.

    Args:
        matrix: (C, C) similarity, a tensor or array.
        prefix: path without extension (str or os.PathLike).
        names: class names (default: the indices).

    Returns:
        The written paths, ``[PREFIX.npy, PREFIX.csv]``.

    Raises:
        ValueError: ``prefix`` ends in .npy, .csv or .png, or ``names`` has the wrong length.

    Example:
        >>> import pathlib, tempfile
        >>> from simloss.similarity import class_order
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> [p.name for p in save_similarity(class_order(2, 0.5), folder / "S", ["a", "b"])]
        ['S.npy', 'S.csv']
        >>> print((folder / "S.csv").read_text(), end="")
        class,a,b
        a,1.0,0.5
        b,0.5,1.0
    """
    base = _prefix(prefix)
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().numpy()
    array = np.asarray(matrix).astype(np.float32)
    labels = [str(i) for i in range(array.shape[0])] if names is None else [str(n) for n in names]
    if len(labels) != array.shape[0]:
        raise ValueError(
            f"Expected {array.shape[0]} `names`, one per class, but found {len(labels)}"
        )
    base.parent.mkdir(parents=True, exist_ok=True)
    npy = base.with_name(base.name + ".npy")
    _atomic_write(npy, lambda handle: np.save(handle, array, allow_pickle=False), binary=True)
    table = base.with_name(base.name + ".csv")
    _atomic_write(table, lambda handle: _write_csv(handle, labels, array), binary=False)
    return [npy, table]


def save_heatmap(figure: Any, prefix: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Write a matplotlib figure (e.g. :func:`~simloss.similarity.heatmap.heatmap_figure`)
    to ``PREFIX.png``, atomically like :func:`save_similarity`."""
    base = _prefix(prefix)
    base.parent.mkdir(parents=True, exist_ok=True)
    png = base.with_name(base.name + ".png")
    _atomic_write(png, lambda handle: figure.savefig(handle, format="png", dpi=dpi), binary=True)
    return png


def _prefix(prefix: str | os.PathLike[str]) -> Path:
    base = Path(os.fspath(prefix))
    if base.suffix.lower() in (".npy", ".csv", ".png"):
        raise ValueError(
            f"Expected a prefix without extension (it gets .npy, .csv, .png), but found {base}"
        )
    return base


def _write_csv(handle: IO[Any], names: Sequence[str], matrix: np.ndarray) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["class", *names])
    for name, row in zip(names, matrix, strict=True):
        writer.writerow([name, *row.astype(str)])  # shortest float32 text that reads back exactly


def _atomic_write(path: Path, write: Callable[[IO[Any]], None], *, binary: bool) -> None:
    """Write through a temporary file in the same folder, fsync it, then ``os.replace`` it."""
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        mode = "wb" if binary else "w"
        extra: dict[str, Any] = {} if binary else {"encoding": "utf8", "newline": ""}
        with os.fdopen(descriptor, mode, **extra) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        current = os.umask(0)
        os.umask(current)
        os.chmod(temporary, 0o666 & ~current)  # mkstemp makes 0600; give the usual permissions
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
