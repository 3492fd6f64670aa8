"""Image folders as tasks: files and labels by layout, decoded once (cached), split, standardised.

An image task (:class:`~simloss.experiments.task.DataSource` of kind
``"images"``) finds its files and labels by one of four layouts:

- ``folders``: one sub-folder per class, the common ``ImageFolder`` layout
  (``root/<class>/**/<image>``; files below a class folder at any depth; the
  folder name is the label);
- ``manifest``: a CSV file with a header naming the columns ``path`` and
  ``label`` (and the declared split column), paths relative to the manifest;
- ``utkface`` and ``afad``: the public layouts of UTKFace (the age first in
  the file name) and AFAD (``AFAD-Full/<age>/<gender>/*.jpg``).

Every image Pillow reads (any size, mode or format; 16-bit images scaled to 8
bits) is decoded once, resized to the task's size (:mod:`._images`, cached by
content) and standardised per channel with the training split's statistics.
Files whose extension Pillow does not know are not images: they are counted
and logged, never decoded. Hidden files and folders are ignored.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simloss.experiments._files import read_text_file, walk_files
from simloss.experiments.data._images import PREPROCESSING, load_images
from simloss.experiments.data._types import (
    PreparedData,
    channel_stats,
    images_to_tensor,
    prepared_data,
)
from simloss.experiments.data.classes import (
    build_classes,
    check_training_classes,
    encode_labels,
)
from simloss.experiments.data.splits import declared_split, split_examples, subset_indices
from simloss.experiments.data.tables import csv_lines
from simloss.experiments.task import Task

__all__ = ["image_files", "list_class_folders", "list_manifest", "load_image_task"]

logger = logging.getLogger(__name__)


def _image_suffixes() -> frozenset[str]:
    from PIL import Image

    return frozenset(Image.registered_extensions())


def image_files(folder: Path) -> tuple[list[Path], int]:
    """Every image file below ``folder`` (sorted; any depth) and the count of other files.

    An image file is one whose extension Pillow registers (``.jpg``, ``.png``,
    ``.tif``, ...); hidden files and folders are skipped. Links to folders are
    followed (a loop is refused); a broken link of an image's name is listed,
    so decoding refuses it (or skips and counts it with ``skip_unreadable``).
    """
    suffixes = _image_suffixes()
    files: list[Path] = []
    others = 0
    for path in walk_files(folder):
        if path.suffix.lower() in suffixes:
            files.append(path)
        else:
            others += 1
    return files, others


def list_class_folders(root: Path) -> tuple[list[Path], list[str], dict[str, int]]:
    """Files and labels of the ``folders`` layout: ``root/<class>/**/<image>``.

    Raises:
        FileNotFoundError, NotADirectoryError: ``root`` is missing or a file.
        ValueError: no class folder, or a class folder without images (naming it).
    """
    _check_folder(root)
    files: list[Path] = []
    labels: list[str] = []
    loose = 0
    others = 0
    folders = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    for entry in folders:
        if not entry.is_dir():
            loose += 1
            continue
        found, ignored = image_files(entry)
        others += ignored
        if not found:
            raise ValueError(
                f"Expected image files in class folder {entry}, but found none (remove the folder, "
                "or add its images)"
            )
        files += found
        labels += [entry.name] * len(found)
    if not files:
        raise ValueError(
            f"Expected one sub-folder of images per class in {root} (root/<class>/<image>), but "
            "found no class folder"
        )
    if loose or others:
        logger.info(
            "%s: ignored %d file(s) outside class folders and %d non-image file(s)",
            root,
            loose,
            others,
        )
    return files, labels, {"ignored_files": loose + others}


def list_manifest(
    manifest: Path, split_column: str | None
) -> tuple[list[Path], list[str], list[str], list[str] | None]:
    """Files, labels, rows and splits of a ``path,label[,split]`` CSV manifest.

    Paths are relative to the manifest's folder (or absolute).

    Raises:
        FileNotFoundError: the manifest or a listed file does not exist (naming the line).
        ValueError: no ``path``/``label`` column, an empty cell, a path listed
            twice (naming both lines).
    """
    text = read_text_file(manifest, "manifest")
    reader = csv.DictReader(csv_lines(text))
    needed = ["path", "label", *([split_column] if split_column else [])]
    header = [c.strip() for c in reader.fieldnames or []]
    absent = [c for c in needed if c not in header]
    if absent:
        raise ValueError(
            f"Expected the columns {needed} in the header of manifest {manifest}, but found "
            f"{header} (missing {absent})"
        )
    files: list[Path] = []
    labels: list[str] = []
    rows: list[str] = []
    splits: list[str] | None = [] if split_column else None
    seen: dict[Path, int] = {}
    for row in reader:
        line = reader.line_num
        cells = {str(k).strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if None in row:
            raise ValueError(
                f"Expected {len(header)} cells in manifest {manifest} line {line}, but found more"
            )
        if not cells.get("path") or not cells.get("label"):
            raise ValueError(
                f"Expected a path and a label in manifest {manifest} line {line}, but found "
                f"{dict(row)}"
            )
        path = Path(cells["path"])
        path = path if path.is_absolute() else manifest.parent / path
        key = path.resolve()
        if key in seen:
            raise ValueError(
                f"Expected every image once in manifest {manifest}, but {cells['path']!r} is on "
                f"lines {seen[key]} and {line}"
            )
        seen[key] = line
        if path.is_dir():
            raise IsADirectoryError(
                f"Expected image file {path} (manifest {manifest} line {line}) to be a file, but "
                "it is a folder"
            )
        if not path.is_file():
            raise FileNotFoundError(
                f"Image file {path} (manifest {manifest} line {line}) does not exist"
            )
        files.append(path)
        labels.append(cells["label"])
        rows.append(f"manifest {manifest} line {line}")
        if splits is not None and split_column is not None:
            splits.append(cells[split_column])
    if not files:
        raise ValueError(f"Expected rows of images in manifest {manifest}, but found none")
    return files, labels, rows, splits


def _check_folder(root: Path) -> None:
    if not root.exists():
        raise FileNotFoundError(f"Image folder {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"Expected image folder {root} to be a directory")


def _listing(
    task: Task, root: Path
) -> tuple[Path, list[Path], list[Any], list[str], list[str] | None, dict[str, int]]:
    """(source folder, files, labels, rows, declared splits, info) of a task's layout."""
    layout = task.data.layout
    if layout == "folders":
        files, labels, info = list_class_folders(root)
        rows = [f"image {f} (folder {lab!r})" for f, lab in zip(files, labels, strict=True)]
        return root, files, list(labels), rows, None, info
    if layout == "manifest":
        if root.is_dir():
            raise IsADirectoryError(
                f"Expected a CSV manifest (path,label) for task {task.name!r}, but {root} is a folder"
            )
        files, labels, rows, splits = list_manifest(root, task.data.split_column)
        return root.parent, files, list(labels), rows, splits, {}
    if layout == "utkface":
        from simloss.experiments.data.utkface import list_utkface

        files, ages = list_utkface(root)
        return root, files, list(ages), [f"image {f}" for f in files], None, {}
    from simloss.experiments.data.afad import list_afad

    source, files, ages = list_afad(root)
    return source, files, list(ages), [f"image {f}" for f in files], None, {}


def load_image_task(
    task: Task,
    *,
    path: str | Path | None = None,
    first_class: int | None = None,
    last_class: int | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    limit: int | None = None,
    cache_dir: str | Path | None = None,
    skip_unreadable: bool = False,
    progress: bool = False,
) -> PreparedData:
    """Load an image task: list files and labels, map labels to classes, decode, split, standardise.

    Args:
        task: a task of data kind ``"images"``.
        path: the image folder or manifest (``data_dir``), overriding the declared path.
        first_class, last_class: the ends of a class range (UTKFace/AFAD's
            ``min_age``/``max_age``).
        val_fraction, test_fraction: the seeded split's fractions (a
            manifest's split column takes precedence).
        split_seed: seed of the split and of ``limit``'s subset.
        limit: use a random subset of at most this many images.
        cache_dir: cache of decoded images (see :mod:`._images`).
        skip_unreadable: skip undecodable images (counted and logged) instead of raising.
        progress: tqdm bar while decoding.

    Returns:
        A :class:`PreparedData` of uint8 images ``(N, C, H, W)`` standardised per channel.
    """
    source = task.data
    root = Path(path) if path is not None else source.path
    if root is None:
        raise ValueError(
            f"Expected `data_dir` (the image folder) for dataset {task.name!r}, but found None"
        )
    folder, files, labels, rows, declared_splits, info = _listing(task, root)
    classes = build_classes(
        task.classes,
        labels,
        str(root),
        rows=rows,
        first_class=first_class,
        last_class=last_class,
    )
    codes = encode_labels(classes, task.classes, labels, rows, str(root))
    kept = np.flatnonzero(codes.keep)
    if codes.excluded:
        logger.info(
            "%s: excluded %d of %d images with labels outside the classes %s..%s",
            task.name,
            codes.excluded,
            len(files),
            classes.names[0],
            classes.names[-1],
        )
    info = {**info, "found": len(files), "excluded_outside_classes": codes.excluded}
    chosen = kept[subset_indices(len(kept), limit, split_seed)]
    if limit is not None:
        info["limit_dropped"] = len(kept) - len(chosen)
    if len(chosen) == 0:
        raise ValueError(
            f"Expected {task.name} images with labels among the classes "
            f"{classes.names[0]}..{classes.names[-1]} in {root}, but found none"
        )
    targets = codes.targets[subset_indices(len(kept), limit, split_seed)]
    images, ok = load_images(
        folder,
        [files[i] for i in chosen],
        size=source.size or (60, 60),
        dataset=task.name,
        cache_dir=None if cache_dir is None else Path(cache_dir),
        skip_unreadable=skip_unreadable,
        progress=progress,
        channels=source.channels,
    )
    info["skipped_unreadable"] = int((~ok).sum())
    images, targets = images[ok], targets[ok]
    chosen = chosen[ok]
    declared = None
    if declared_splits is not None:
        declared = declared_split(
            [declared_splits[i] for i in chosen],
            [rows[i] for i in chosen],
            source.split_column or "",
            str(root),
        )
    train, val, test = split_examples(
        targets,
        source.split,
        declared,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        where=str(root),
    )
    check_training_classes(classes, task.classes, targets[train], str(root))
    mean, std = channel_stats(images[train], per_channel=True)
    return prepared_data(
        task,
        classes,
        images_to_tensor(images),
        targets,
        (train, val, test),
        scale=1.0 / 255.0,
        mean=mean,
        std=std,
        info={**info, "used": len(targets)},
        named=not task.builtin,
        channels="RGB" if source.channels == "rgb" else "L",
        decode=PREPROCESSING,
    )


def image_inputs(paths: Sequence[Path], size: tuple[int, int], channels: str) -> np.ndarray:
    """Decode image files for prediction: uint8 ``(N, C, H, W)`` (see :func:`._images.decode_image`)."""
    from simloss.experiments.data._images import decode_image

    pixels = np.stack([decode_image(p, size, channels) for p in paths])
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))
