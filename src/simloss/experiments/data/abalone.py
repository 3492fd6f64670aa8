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

from pathlib import Path

import numpy as np

from simloss.experiments.data._types import PreparedData
from simloss.experiments.data.classes import parse_number
from simloss.experiments.data.tables import (
    FeatureColumn,
    TableEncoding,
    load_table_task,
    read_table,
)
from simloss.experiments.task import BUILTIN_TASKS

__all__ = [
    "ABALONE_ENCODING",
    "ABALONE_FEATURES",
    "ABALONE_MAX_RINGS",
    "ABALONE_MIN_RINGS",
    "load_abalone",
    "read_abalone",
    "rings_to_class",
]

#: Ring counts at or below / at or above these form the two edge classes.
ABALONE_MIN_RINGS = 4
ABALONE_MAX_RINGS = 20
_TASK = BUILTIN_TASKS["abalone"]
#: How a row of ``abalone.data`` becomes the model's 10 inputs: sex one-hot (M, F, I),
#: then the seven measurements (each >= 0), as the Abalone task declares them.
ABALONE_ENCODING = TableEncoding(
    features=(
        FeatureColumn("sex", "categorical", levels=("M", "F", "I")),
        *(
            FeatureColumn(name, "numeric", nonnegative=True)
            for name in (_TASK.data.columns or ())[1:8]
        ),
    ),
    label="rings",
    header=False,
    columns=_TASK.data.columns,
)
#: The model's features in order: sex one-hot, then the seven measurements.
ABALONE_FEATURES: tuple[str, ...] = ABALONE_ENCODING.feature_names


def rings_to_class(rings: np.ndarray) -> np.ndarray:
    """Class index of each ring count: ``clip(rings, 4, 20) - 4``.

    Example:
        >>> rings_to_class(np.array([1, 4, 5, 12, 20, 29])).tolist()
        [0, 0, 1, 8, 16, 16]
    """
    return np.clip(np.asarray(rings), ABALONE_MIN_RINGS, ABALONE_MAX_RINGS) - ABALONE_MIN_RINGS


def _file(path: str | Path | None) -> Path | None:
    if path is None:
        return None
    file = Path(path)
    return file / "abalone.data" if file.is_dir() else file


def read_abalone(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``abalone.data`` (the embedded copy when ``path`` is ``None``) as the task reads it.

    Returns:
        ``features`` float32 ``(N, 10)`` (:data:`ABALONE_FEATURES`: one-hot
        M/F/I, then the 7 measurements) and ``rings`` int64 ``(N,)``.

    Raises:
        ValueError: a row without 9 comma-separated cells, an unknown sex, a
            measurement that is not a number >= 0 in plain decimal notation, or
            a ring count that is not an integer >= 0 (naming the line).

    Example:
        >>> features, rings = read_abalone()
        >>> features.shape, int(rings.min()), int(rings.max())
        ((4177, 10), 1, 29)
    """
    table = read_table(
        _file(path), header=False, columns=_TASK.data.columns, delimiter=None,
        embedded=_TASK.data.embedded,
    )  # fmt: skip
    features = ABALONE_ENCODING.encode(table)
    rings = np.empty(len(table), dtype=np.int64)
    for i, cell in enumerate(table.column("rings")):
        value = parse_number(cell, f"{table.rows[i]}, column 'rings'")
        if not value.is_integer() or value < 0:
            raise ValueError(
                f"Expected an integer ring count >= 0 in {table.rows[i]}, but found {cell!r}"
            )
        rings[i] = int(value)
    return features, rings


def load_abalone(
    path: str | Path | None = None,
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    limit: int | None = None,
) -> PreparedData:
    """Load Abalone as 17 ordered ring classes with random 60/20/20 splits (the Abalone task).

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
    return load_table_task(
        _TASK,
        path=path,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        split_seed=split_seed,
        limit=limit,
    )
