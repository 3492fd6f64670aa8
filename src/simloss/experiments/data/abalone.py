"""UCI Abalone, embedded: predict the ring count (age) from physical measurements.

Data: Nash, Sellers, Talbot, Cawthorn and Ford (1994), "The Population Biology
of Abalone (Haliotis species) in Tasmania", via the UCI Machine Learning
Repository (https://doi.org/10.24432/C55C7W), licensed CC BY 4.0; the file is
vendored unchanged as ``simloss/data/abalone.data`` (see
``simloss/data/ABALONE_LICENSE.txt``).

Features (10): sex one-hot (M, F, I) and the seven continuous measurements
(length, diameter, height, whole, shucked, viscera and shell weight),
standardised with the training split's mean and standard deviation (the
one-hot columns are left as 0/1).

Classes (17, ordered): ring counts are binned as ``<= 4``, ``5``, ``6``, ...,
``19``, ``>= 20``. Counts 1..4 (74 of 4,177 rows) and 20..29 (62 rows) are rare
(no more than 57 rows each), so they are merged into the two edge classes
instead of being dropped. ``class_values`` are the ring counts 4, 5, ..., 20:
an edge class stands for its boundary, so MAE/MSE are measured on ring counts
clipped to 4..20 (the binning is a property of the task, applied to targets
and predictions alike).
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from simloss.experiments._files import read_text_file
from simloss.experiments.data._types import PreparedData, Split
from simloss.experiments.data.splits import random_split, subset_indices

__all__ = [
    "ABALONE_FEATURES",
    "ABALONE_MAX_RINGS",
    "ABALONE_MIN_RINGS",
    "load_abalone",
    "parse_abalone_rows",
    "read_abalone",
    "rings_to_class",
]

#: Ring counts at or below / at or above these form the two edge classes.
ABALONE_MIN_RINGS = 4
ABALONE_MAX_RINGS = 20
_SEXES = ("M", "F", "I")
#: The model's features in order: sex one-hot, then the seven measurements.
ABALONE_FEATURES: tuple[str, ...] = (
    "sex_M",
    "sex_F",
    "sex_I",
    "length",
    "diameter",
    "height",
    "whole_weight",
    "shucked_weight",
    "viscera_weight",
    "shell_weight",
)


def rings_to_class(rings: np.ndarray) -> np.ndarray:
    """Class index of each ring count: ``clip(rings, 4, 20) - 4``.

    Example:
        >>> rings_to_class(np.array([1, 4, 5, 12, 20, 29])).tolist()
        [0, 0, 1, 8, 16, 16]
    """
    return np.clip(np.asarray(rings), ABALONE_MIN_RINGS, ABALONE_MAX_RINGS) - ABALONE_MIN_RINGS


def parse_abalone_rows(
    text: str, where: str, *, require_rings: bool = True
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Parse rows in the ``abalone.data`` format: ``sex,length,...,shell_weight[,rings]``.

    Args:
        text: the rows, one per line; blank lines are skipped.
        where: the file name for error messages.
        require_rings: ``True``: every row has 9 fields, the ring count last
            (the UCI file); ``False``: a row has the 8 feature fields, or 9 with
            a ring count (so rows of ``abalone.data`` can be given unchanged).

    Returns:
        ``features`` float32 ``(N, 10)`` (:data:`ABALONE_FEATURES`), ``rings``
        int64 ``(N,)`` (-1 for a row without a ring count) and the line number
        of every row.

    Raises:
        ValueError: a row with another number of fields, an unknown sex, a
            non-finite measurement or a non-integer ring count (naming the line),
            or no row at all.

    Example:
        >>> rows = "M,0.4,0.3,0.1,0.5,0.2,0.1,0.15\\nI,0.2,0.1,0.05,0.1,0.04,0.02,0.03,7"
        >>> x, r, lines = parse_abalone_rows(rows, "x", require_rings=False)
        >>> x.shape, r.tolist(), lines
        ((2, 10), [-1, 7], [1, 2])
    """
    allowed = (9,) if require_rings else (8, 9)
    features: list[list[float]] = []
    ring_counts: list[int] = []
    numbers: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.strip().split(",")
        if len(fields) not in allowed:
            expected = " or ".join(map(str, allowed))
            raise ValueError(
                f"Expected {expected} comma-separated fields in {where} line {number}, but found "
                f"{len(fields)}: {line!r}"
            )
        if fields[0] not in _SEXES:
            raise ValueError(
                f"Expected sex M, F or I in {where} line {number}, but found {fields[0]!r}"
            )
        try:
            values = [float(v) for v in fields[1:8]]
            ring = int(fields[8]) if len(fields) == 9 else -1
        except ValueError as exc:
            raise ValueError(
                f"Expected 7 numbers and an integer ring count in {where} line {number}, "
                f"but found {line!r}"
            ) from exc
        if not all(math.isfinite(v) for v in values) or (len(fields) == 9 and ring < 0):
            raise ValueError(
                f"Expected finite measurements and rings >= 0 in {where} line {number}, "
                f"but found {line!r}"
            )
        onehot = [1.0 if fields[0] == s else 0.0 for s in _SEXES]
        features.append(onehot + values)
        ring_counts.append(ring)
        numbers.append(number)
    if not numbers:
        raise ValueError(f"Expected Abalone rows in {where}, but found none")
    return np.asarray(features, dtype=np.float32), np.asarray(ring_counts, dtype=np.int64), numbers


def read_abalone(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``abalone.data`` (the embedded copy when ``path`` is ``None``).

    Returns:
        ``features`` float32 ``(N, 10)`` (:data:`ABALONE_FEATURES`: one-hot
        M/F/I, then the 7 measurements) and ``rings`` int64 ``(N,)``.

    Raises:
        ValueError: a row without 9 comma-separated fields, an unknown sex, a
            non-finite measurement or a non-integer ring count (naming the line).

    Example:
        >>> features, rings = read_abalone()
        >>> features.shape, int(rings.min()), int(rings.max())
        ((4177, 10), 1, 29)
    """
    if path is None:
        text = resources.files("simloss").joinpath("data/abalone.data").read_text()
        where = "simloss/data/abalone.data"
    else:
        file = Path(path)
        if file.is_dir():
            file = file / "abalone.data"
        text = read_text_file(file, "Abalone file")
        where = str(file)
    features, rings, _ = parse_abalone_rows(text, where, require_rings=True)
    return features, rings


def load_abalone(
    path: str | Path | None = None,
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    limit: int | None = None,
) -> PreparedData:
    """Load Abalone as 17 ordered ring classes with random 60/20/20 splits.

    Args:
        path: ``abalone.data`` or its folder; ``None`` for the embedded copy.
        val_fraction, test_fraction: split fractions.
        split_seed: seed of the split and of ``limit``'s subset.
        limit: use a random subset of at most this many rows.

    Returns:
        A :class:`PreparedData` with float features ``(N, 10)``.

    Example:
        >>> data = load_abalone(split_seed=0)
        >>> data.num_classes, len(data.train), len(data.val), len(data.test)
        (17, 2507, 835, 835)
    """
    features, rings = read_abalone(path)
    chosen = subset_indices(len(rings), limit, split_seed)
    features, rings = features[chosen], rings[chosen]
    labels = rings_to_class(rings)
    train, val, test = random_split(len(labels), val_fraction, test_fraction, split_seed)
    continuous = features[train][:, 3:].astype(np.float64)
    mean = np.zeros(features.shape[1])
    std = np.ones(features.shape[1])
    mean[3:] = continuous.mean(axis=0)
    spread = continuous.std(axis=0)
    std[3:] = np.where(spread > 0, spread, 1.0)
    x = torch.from_numpy(features)
    y = torch.from_numpy(labels.astype(np.int64))

    def split(index: np.ndarray) -> Split:
        idx = torch.from_numpy(index)
        return Split(x[idx], y[idx])

    names = [f"<={ABALONE_MIN_RINGS}"]
    names += [str(v) for v in range(ABALONE_MIN_RINGS + 1, ABALONE_MAX_RINGS)]
    names += [f">={ABALONE_MAX_RINGS}"]
    return PreparedData(
        name="abalone",
        train=split(train),
        val=split(val),
        test=split(test),
        num_classes=ABALONE_MAX_RINGS - ABALONE_MIN_RINGS + 1,
        class_values=[float(v) for v in range(ABALONE_MIN_RINGS, ABALONE_MAX_RINGS + 1)],
        class_names=names,
        ordinal=True,
        scale=1.0,
        mean=torch.tensor(mean, dtype=torch.float32).reshape(1, -1),
        std=torch.tensor(std, dtype=torch.float32).reshape(1, -1),
        feature_names=ABALONE_FEATURES,
        info={"found": len(rings), "used": len(rings), "source": str(path or "embedded")},
    )
