"""Feature arrays as tasks: ``X`` and ``y`` from ``.npz`` or ``.npy`` files (e.g. embeddings of any backbone).

An arrays task (:class:`~simloss.experiments.task.DataSource` of kind
``"arrays"``) reads ``X`` (``(N, F)`` numbers), ``y`` (``(N,)`` labels:
integers, numbers or text) and optionally ``split`` (``(N,)`` text:
``train``, ``val`` or ``test``) from one ``.npz`` file (keys ``X``, ``y``,
``split``) or from ``.npy`` files (``features_file``, ``labels_file``,
``split_file``). Features are standardised with the training split's mean and
standard deviation, except the declared ``unscaled_columns``. A NaN or
infinite feature, or one beyond the float32 range, is refused, naming its row
and column. Arrays are read with ``allow_pickle=False``: no code runs.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simloss.experiments.data._types import PreparedData, prepared_data
from simloss.experiments.data.classes import (
    FLOAT32_MAX,
    build_classes,
    check_training_classes,
    encode_labels,
)
from simloss.experiments.data.splits import declared_split, split_examples, subset_indices
from simloss.experiments.data.tables import feature_stats
from simloss.experiments.task import Task

__all__ = ["check_features", "load_array_task", "read_feature_file"]


#: The first bytes of a ``.npy`` file and of a ``.npz`` (zip) archive.
_MAGIC = (b"\x93NUMPY", b"PK\x03\x04", b"PK\x05\x06")
_OBJECTS = (
    "holds Python objects (dtype object), which simloss does not unpickle: save it as "
    "numbers or text (e.g. np.asarray(y, dtype=str))"
)


def _load(path: Path, what: str) -> Any:
    if not path.exists():
        raise FileNotFoundError(f"{what[:1].upper()}{what[1:]} {path} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"Expected {what} {path} to be a file, but it is a folder")
    with open(path, "rb") as handle:
        head = handle.read(6)
    if not head.startswith(_MAGIC):
        raise ValueError(
            f"Expected {what} {path} to be a NumPy .npy/.npz file, but it is none (it starts "
            f"with {head!r})"
        )
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ValueError(f"Could not read {what} {path}: the array {_OBJECTS}") from exc
        raise ValueError(f"Could not read {what} {path}: {_short(exc)}") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"Could not read {what} {path}: expected a NumPy .npy/.npz file, but loading failed "
            f"({_short(exc)})"
        ) from exc


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160]


def _member(archive: Any, key: str, path: Path) -> np.ndarray:
    """Array ``key`` of an ``.npz`` archive; an object array is refused naming the file and key."""
    try:
        array: np.ndarray = archive[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ValueError(f"Could not read array {key!r} of {path}: it {_OBJECTS}") from exc
        raise ValueError(f"Could not read array {key!r} of {path}: {_short(exc)}") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"Could not read array {key!r} of {path}: {_short(exc)}") from exc
    return array


def _arrays(task: Task, path: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
    names = task.data.arrays
    if path is not None:
        if path.suffix.lower() != ".npz":
            raise ValueError(
                f"Expected an .npz file (keys X, y and optionally split) for task {task.name!r}, "
                f"but found {path}"
            )
        archive = _load(path, "array file")
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"Expected an .npz archive in {path}, but found one array")
        with archive:
            absent = [k for k in ("X", "y") if k not in archive.files]
            if absent:
                raise ValueError(
                    f"Expected arrays X and y in {path}, but found {archive.files} (missing {absent})"
                )
            x, y = _member(archive, "X", path), _member(archive, "y", path)
            split = _member(archive, "split", path) if "split" in archive.files else None
        return x, y, split, str(path)
    x = _load(Path(names["features_file"]), "features file")
    y = _load(Path(names["labels_file"]), "labels file")
    split_file = names.get("split_file")
    split = _load(Path(split_file), "split file") if split_file else None
    return x, y, split, names["features_file"]


def check_features(x: np.ndarray, where: str) -> np.ndarray:
    """Features ``(N, F)`` as float32, refusing non-numbers and values float32 cannot hold.

    Raises:
        ValueError: not a 2-D numeric array, or a NaN, infinite or too large
            value (naming its row and column).

    Example:
        >>> check_features(np.array([[1, 2], [3, 4]]), "x.npz").dtype
        dtype('float32')
        >>> check_features(np.array([[1.0, 1e300]]), "x.npz")
        Traceback (most recent call last):
        ...
        ValueError: Expected finite features within the float32 range (|x| <= 3.4e38) in x.npz, but row 0, column 1 is 1e+300
    """
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"Expected features X of shape (N, F) in {where}, but found {x.shape}")
    if x.dtype == np.bool_ or x.dtype.kind not in "iuf":
        raise ValueError(f"Expected numeric features X in {where}, but found dtype {x.dtype}")
    wide = x.astype(np.float64)
    bad = ~np.isfinite(wide) | (np.abs(wide) > FLOAT32_MAX)
    if bad.any():
        row, column = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(
            f"Expected finite features within the float32 range (|x| <= 3.4e38) in {where}, "
            f"but row {row}, column {column} is {float(wide[row, column])!r}"
        )
    return wide.astype(np.float32)


def read_feature_file(path: str | Path) -> np.ndarray:
    """The features ``X`` ``(N, F)`` of a ``.npy`` file or an ``.npz`` file's ``X`` (for ``predict``)."""
    file = Path(path)
    loaded = _load(file, "feature file")
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            if "X" not in loaded.files:
                raise ValueError(f"Expected an array X in {file}, but found {loaded.files}")
            x = _member(loaded, "X", file)
    else:
        x = loaded
    return check_features(x, str(file))


def load_array_task(
    task: Task,
    *,
    path: str | Path | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    limit: int | None = None,
) -> PreparedData:
    """Load an arrays task: check ``X``, map ``y`` to classes, split, standardise.

    Args:
        task: a task of data kind ``"arrays"``.
        path: the ``.npz`` file (``data_dir``), overriding the declared one.
        val_fraction, test_fraction, split_seed, limit: as for tables.

    Returns:
        A :class:`PreparedData` of float features ``(N, F)``.
    """
    file = Path(path) if path is not None else task.data.path
    x_raw, y_raw, split_raw, where = _arrays(task, file)
    x = check_features(x_raw, f"{where} (X)")
    if y_raw.ndim != 1 or len(y_raw) != len(x):
        raise ValueError(
            f"Expected labels y of shape ({len(x)},) in {where}, but found {y_raw.shape}"
        )
    if y_raw.dtype.kind not in "iufU":
        raise ValueError(
            f"Expected integer, numeric or text labels y in {where}, but found dtype {y_raw.dtype}"
        )
    labels = y_raw.tolist()
    rows = [f"{where} row {i} of y" for i in range(len(labels))]
    classes = build_classes(task.classes, labels, where, rows=rows)
    codes = encode_labels(classes, task.classes, labels, rows, where)
    kept = np.flatnonzero(codes.keep)
    declared = None
    if split_raw is not None:
        if split_raw.shape != y_raw.shape or split_raw.dtype.kind != "U":
            raise ValueError(
                f"Expected split of shape {y_raw.shape} holding 'train', 'val' or 'test' in "
                f"{where}, but found {split_raw.dtype} {split_raw.shape}"
            )
        declared = declared_split(
            [str(v) for v in split_raw[kept]], [rows[i] for i in kept], "split", where
        )
    chosen = subset_indices(len(kept), limit, split_seed)
    targets = codes.targets[chosen]
    inputs = x[kept[chosen]]
    train, val, test = split_examples(
        targets,
        task.data.split,
        None if declared is None else declared[chosen],
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        where=where,
    )
    check_training_classes(classes, task.classes, targets[train], where)
    scaled = np.ones(inputs.shape[1], dtype=bool)
    for column in task.data.unscaled:
        index = int(float(column))
        if not 0 <= index < inputs.shape[1]:
            raise ValueError(
                f"Expected `data.unscaled_columns` in 0..{inputs.shape[1] - 1} for {where}, but "
                f"found {index}"
            )
        scaled[index] = False
    mean, std = feature_stats(inputs, train, scaled)
    info: dict[str, Any] = {"found": len(labels), "used": len(targets), "source": where}
    info.update(codes.info())
    return prepared_data(
        task,
        classes,
        torch.from_numpy(np.ascontiguousarray(inputs)),
        targets,
        (train, val, test),
        scale=1.0,
        mean=mean,
        std=std,
        info=info,
        feature_names=tuple(f"x{i}" for i in range(inputs.shape[1])),
    )
