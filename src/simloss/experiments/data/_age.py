"""Shared preparation of the face-age datasets (UTKFace, AFAD)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from simloss.experiments.data._images import load_images
from simloss.experiments.data._types import PreparedData, Split, channel_stats, images_to_tensor
from simloss.experiments.data.splits import random_split, subset_indices

logger = logging.getLogger(__name__)

#: Side of the square face images (the paper: 60 x 60 px).
AGE_IMAGE_SIZE = 60


def prepare_age_dataset(
    name: str,
    source: Path,
    files: Sequence[Path],
    ages: Sequence[int],
    *,
    min_age: int,
    max_age: int,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
    limit: int | None,
    cache_dir: Path | None,
    skip_unreadable: bool,
    progress: bool,
    info: dict[str, int],
) -> PreparedData:
    """Filter ages, subset, decode (cached), split and standardise per channel.

    Ages outside ``[min_age, max_age]`` are excluded and counted (never clipped);
    class ``k`` stands for age ``min_age + k``.
    """
    age_array = np.asarray(ages, dtype=np.int64)
    keep = (age_array >= min_age) & (age_array <= max_age)
    excluded = int((~keep).sum())
    if excluded:
        logger.info(
            "%s: excluded %d of %d images with ages outside %d..%d",
            name,
            excluded,
            len(age_array),
            min_age,
            max_age,
        )
    kept_files = [path for path, k in zip(files, keep, strict=True) if k]
    kept_ages = age_array[keep]
    info = {**info, "found": len(files), "excluded_age_range": excluded}
    chosen = subset_indices(len(kept_files), limit, split_seed)
    if limit is not None:
        info["limit_dropped"] = len(kept_files) - len(chosen)
    kept_files = [kept_files[i] for i in chosen]
    kept_ages = kept_ages[chosen]
    if not kept_files:
        raise ValueError(
            f"Expected {name} images with ages in {min_age}..{max_age} in {source}, but found none"
        )
    images, ok = load_images(
        source,
        kept_files,
        size=AGE_IMAGE_SIZE,
        dataset=name,
        cache_dir=cache_dir,
        skip_unreadable=skip_unreadable,
        progress=progress,
    )
    info["skipped_unreadable"] = int((~ok).sum())
    images, kept_ages = images[ok], kept_ages[ok]
    labels = kept_ages - min_age
    train, val, test = random_split(len(labels), val_fraction, test_fraction, split_seed)
    mean, std = channel_stats(images[train], per_channel=True)
    tensor = images_to_tensor(images)
    targets = torch.from_numpy(labels.astype(np.int64))

    def split(index: np.ndarray) -> Split:
        idx = torch.from_numpy(index)
        return Split(tensor[idx], targets[idx])

    return PreparedData(
        name=name,
        train=split(train),
        val=split(val),
        test=split(test),
        num_classes=max_age - min_age + 1,
        class_values=[float(a) for a in range(min_age, max_age + 1)],
        class_names=None,
        ordinal=True,
        scale=1.0 / 255.0,
        mean=mean,
        std=std,
        info={**info, "used": len(labels)},
    )
