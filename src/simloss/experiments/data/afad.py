"""AFAD from its raw public layout: ``AFAD-Full/<age>/<gender code>/*.jpg``.

Gender codes are ``111`` (male) and ``112`` (female); the paper keeps ages
15..75 as 61 classes.
"""

from __future__ import annotations

import logging
from pathlib import Path

from simloss.experiments.data._types import PreparedData
from simloss.experiments.task import BUILTIN_TASKS

__all__ = ["list_afad", "load_afad"]

logger = logging.getLogger(__name__)


def _afad_root(folder: Path) -> Path:
    if not folder.exists():
        raise FileNotFoundError(f"AFAD folder {folder} does not exist")
    if not folder.is_dir():
        raise NotADirectoryError(f"Expected AFAD folder {folder} to be a directory")
    nested = folder / "AFAD-Full"
    return nested if nested.is_dir() else folder


def list_afad(folder: str | Path) -> tuple[Path, list[Path], list[int]]:
    """The AFAD root, all images (sorted) and their ages.

    Args:
        folder: ``AFAD-Full`` itself or a folder containing it.

    Returns:
        ``(root, files, ages)``.

    Raises:
        FileNotFoundError, NotADirectoryError: ``folder`` is missing or a file.
        ValueError: an age folder whose name is not an integer, files where
            gender folders are expected, or no images at all.
    """
    root = _afad_root(Path(folder))
    files: list[Path] = []
    ages: list[int] = []
    ignored = 0
    for age_dir in sorted(root.iterdir()):
        if age_dir.name.startswith(".") or not age_dir.is_dir():
            ignored += 1
            continue
        if not age_dir.name.isdigit():
            raise ValueError(
                f"Expected AFAD age folders named by an integer age in {root} "
                f"(AFAD-Full/<age>/<gender>/*.jpg), but found {age_dir.name!r}"
            )
        age = int(age_dir.name)
        for gender_dir in sorted(age_dir.iterdir()):
            if gender_dir.name.startswith("."):
                continue
            if not gender_dir.is_dir():
                raise ValueError(
                    f"Expected gender folders (111, 112) in AFAD age folder {age_dir}, "
                    f"but found the file {gender_dir.name!r}"
                )
            for image in sorted(gender_dir.iterdir()):
                if image.name.startswith("."):
                    continue
                if image.is_file() and image.suffix.lower() == ".jpg":
                    files.append(image)
                    ages.append(age)
                else:
                    ignored += 1
    if not files:
        raise ValueError(
            f"Expected AFAD images AFAD-Full/<age>/<gender>/*.jpg under {root}, but found none"
        )
    if ignored:
        logger.info("AFAD: ignored %d entries that are not age folders or .jpg images", ignored)
    return root, files, ages


def load_afad(
    folder: str | Path,
    *,
    min_age: int = 15,
    max_age: int = 75,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    limit: int | None = None,
    cache_dir: str | Path | None = None,
    skip_unreadable: bool = False,
    progress: bool = False,
) -> PreparedData:
    """Load AFAD: ages ``min_age..max_age`` as classes, 60 x 60 RGB, random splits.

    Arguments as :func:`simloss.experiments.data.utkface.load_utkface`.
    """
    from simloss.experiments.data.images import load_image_task

    return load_image_task(
        BUILTIN_TASKS["afad"],
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
