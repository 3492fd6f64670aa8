"""UTKFace from its raw public layout: a flat folder of ``AGE_GENDER_RACE_DATETIME.jpg``.

Both naming styles of the public archives are read: the aligned-and-cropped
``UTKFace/`` (``.jpg``) and the in-the-wild ``crop_part1/`` (``.jpg.chip.jpg``).
Some real files lack the race field (``61_1_20170109142408075.jpg.chip.jpg``);
the age is always the first field.
"""

from __future__ import annotations

import logging
from pathlib import Path

from simloss.experiments.data._types import PreparedData
from simloss.experiments.task import BUILTIN_TASKS

__all__ = ["list_utkface", "load_utkface", "parse_utkface_age"]

logger = logging.getLogger(__name__)

_SUFFIXES = (".jpg.chip.jpg", ".jpg")


def parse_utkface_age(name: str) -> int:
    """The age (first field) of a UTKFace file name.

    Args:
        name: a file name such as ``"26_0_1_20170116010114628.jpg.chip.jpg"``.

    Returns:
        The age as an int.

    Raises:
        ValueError: the name is not ``AGE_GENDER[_RACE]_DATETIME.jpg[.chip.jpg]``
            with an integer age.

    Example:
        >>> parse_utkface_age("26_0_1_20170116010114628.jpg.chip.jpg")
        26
        >>> parse_utkface_age("61_1_20170109142408075.jpg.chip.jpg")
        61
        >>> parse_utkface_age("1_0_0_20161219140623097.jpg")
        1
    """
    stem = None
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            stem = name[: -len(suffix)]
            break
    fields = [] if stem is None else stem.split("_")
    if stem is None or len(fields) not in (3, 4) or not fields[0].isdigit():
        raise ValueError(
            f"Expected a UTKFace file name AGE_GENDER_RACE_DATETIME.jpg (or .jpg.chip.jpg) "
            f"with an integer age first, but found {name!r}"
        )
    return int(fields[0])


def list_utkface(folder: str | Path) -> tuple[list[Path], list[int]]:
    """All UTKFace images of ``folder`` (sorted by name) and their ages.

    Hidden files are ignored; other non-JPEG files are ignored and counted in a
    log line; a JPEG whose name has no parseable age is an error.

    Raises:
        FileNotFoundError: ``folder`` does not exist.
        NotADirectoryError: ``folder`` is a file.
        ValueError: no JPEG files (an unrecognised layout) or an unparseable name.
    """
    root = Path(folder)
    if not root.exists():
        raise FileNotFoundError(f"UTKFace folder {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"Expected UTKFace folder {root} to be a directory")
    files: list[Path] = []
    ages: list[int] = []
    others = 0
    subdirs: list[str] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            subdirs.append(entry.name)
            continue
        if not entry.name.lower().endswith(".jpg"):
            others += 1
            continue
        try:
            ages.append(parse_utkface_age(entry.name))
        except ValueError as exc:
            raise ValueError(f"{exc} (in {root})") from exc
        files.append(entry)
    if not files:
        hint = (
            f"; it has subfolders {subdirs[:5]}: point to the one holding the images"
            if (subdirs)
            else ""
        )
        raise ValueError(
            f"Expected UTKFace images AGE_GENDER_RACE_DATETIME.jpg[.chip.jpg] directly in "
            f"{root}, but found no .jpg files{hint}"
        )
    if others or subdirs:
        logger.info(
            "UTKFace: ignored %d non-JPEG file(s) and %d subfolder(s) in %s",
            others,
            len(subdirs),
            root,
        )
    return files, ages


def load_utkface(
    folder: str | Path,
    *,
    min_age: int = 1,
    max_age: int = 90,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    limit: int | None = None,
    cache_dir: str | Path | None = None,
    skip_unreadable: bool = False,
    progress: bool = False,
) -> PreparedData:
    """Load UTKFace: ages ``min_age..max_age`` as classes, 60 x 60 RGB, random splits.

    Args:
        folder: the folder of images (e.g. ``crop_part1`` or ``UTKFace``).
        min_age, max_age: ages kept (the paper: 1..90, 90 classes); others are
            excluded and counted.
        val_fraction, test_fraction: split fractions (the paper: 0.2 each).
        split_seed: seed of the split and of ``limit``'s subset.
        limit: use a random subset of at most this many images.
        cache_dir: cache of decoded images (see :mod:`._images`).
        skip_unreadable: skip undecodable images instead of raising.
        progress: tqdm bar while decoding.

    Returns:
        A :class:`PreparedData` standardised per channel.
    """
    from simloss.experiments.data.images import load_image_task

    return load_image_task(
        BUILTIN_TASKS["utkface"],
        path=folder,
        first_class=min_age,
        last_class=max_age,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        limit=limit,
        cache_dir=cache_dir,
        skip_unreadable=skip_unreadable,
        progress=progress,
    )
