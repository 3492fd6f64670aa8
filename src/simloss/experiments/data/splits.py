"""Random, seeded train/validation/test splits (independent of the training seed)."""

from __future__ import annotations

import numpy as np

__all__ = [
    "declared_split",
    "random_split",
    "split_examples",
    "split_sizes",
    "stratified_holdout",
    "stratified_split",
    "subset_indices",
]


def split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """Sizes of a train/validation/test split of ``n`` examples.

    Validation and test sizes are rounded to the nearest integer
    (``round(n * fraction)``, halves up); training gets the rest, so the three
    add up to ``n``.

    Example:
        >>> split_sizes(9780, 0.2, 0.2)
        (5868, 1956, 1956)
    """
    n_val = int(np.floor(n * val_fraction + 0.5))
    n_test = int(np.floor(n * test_fraction + 0.5))
    return n - n_val - n_test, n_val, n_test


def random_split(
    n: int, val_fraction: float, test_fraction: float, seed: int, *, where: str = "the data"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``range(n)`` at random into train/validation/test index arrays.

    One permutation drawn with ``numpy.random.default_rng(seed)``; the three
    parts are disjoint, cover ``range(n)`` and are each sorted.

    Args:
        n: number of examples.
        val_fraction: fraction for validation, in (0, 1).
        test_fraction: fraction for test, in (0, 1).
        seed: the split seed.
        where: the data, for messages (its file).

    Returns:
        ``(train, val, test)`` int64 index arrays with the sizes of :func:`split_sizes`.

    Example:
        >>> train, val, test = random_split(10, 0.2, 0.2, seed=0)
        >>> len(train), len(val), len(test)
        (6, 2, 2)
        >>> sorted(np.concatenate([train, val, test]).tolist()) == list(range(10))
        True
    """
    n_train, n_val, _ = split_sizes(n, val_fraction, test_fraction)
    if n_train < 1 or n_val < 1 or n - n_train - n_val < 1:
        raise ValueError(
            f"Expected enough examples in {where} for non-empty train/validation/test splits, "
            f"but found n={n} with val_fraction={val_fraction} and test_fraction={test_fraction}"
        )
    order = np.random.default_rng(seed).permutation(n)
    return (
        np.sort(order[:n_train]),
        np.sort(order[n_train : n_train + n_val]),
        np.sort(order[n_train + n_val :]),
    )


def stratified_holdout(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``round(n_c * fraction)`` random examples of every class ``c``.

    The paper's CIFAR-100 validation set: 50 of each class's 500 training
    images (``fraction`` 0.1), drawn with a fixed seed.

    Args:
        labels: int array ``(N,)`` of class indices.
        fraction: the fraction of each class held out, in (0, 1).
        seed: the split seed.

    Returns:
        ``(kept, held_out)`` sorted, disjoint int64 index arrays covering ``range(N)``.

    Example:
        >>> labels = np.repeat(np.arange(3), 10)
        >>> kept, held = stratified_holdout(labels, 0.2, seed=0)
        >>> np.bincount(labels[held]).tolist(), len(kept)
        ([2, 2, 2], 24)
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        count = int(np.floor(len(members) * fraction + 0.5))
        held.append(rng.permutation(members)[:count])
    held_out = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[held_out] = False
    return np.flatnonzero(mask).astype(np.int64), held_out.astype(np.int64)


def stratified_split(
    labels: np.ndarray,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    *,
    where: str = "the data",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split by class: ``round(n_c * fraction)`` random examples of each class ``c`` to
    validation and to test, the rest to training.

    A class keeps at least one training example (its validation and test
    shares shrink first), so a rare class is never absent from training. The
    draw uses ``numpy.random.default_rng(seed)``, one permutation per class in
    class order.

    Args:
        labels: int array ``(N,)`` of class indices.
        val_fraction, test_fraction: fractions in (0, 1), summing to less than 1.
        seed: the split seed.
        where: the data, for messages (its file).

    Returns:
        ``(train, val, test)`` sorted, disjoint int64 index arrays covering ``range(N)``.

    Raises:
        ValueError: validation or test would be empty.

    Example:
        >>> labels = np.repeat(np.arange(3), [10, 10, 2])
        >>> train, val, test = stratified_split(labels, 0.2, 0.2, seed=0)
        >>> np.bincount(labels[train]).tolist(), np.bincount(labels[val]).tolist()
        ([6, 6, 2], [2, 2])
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n = len(members)
        n_test = int(np.floor(n * test_fraction + 0.5))
        n_val = int(np.floor(n * val_fraction + 0.5))
        while n - n_val - n_test < 1 and (n_val or n_test):
            if n_test >= n_val:
                n_test -= 1
            else:
                n_val -= 1
        parts[0].append(members[n_val + n_test :])
        parts[1].append(members[:n_val])
        parts[2].append(members[n_val : n_val + n_test])
    train, val, test = (
        np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64) for p in parts
    )
    if len(val) == 0 or len(test) == 0:
        raise ValueError(
            f"Expected non-empty validation and test splits of {where}, but {len(labels)} examples with "
            f"val_fraction={val_fraction} and test_fraction={test_fraction} per class give "
            f"{len(val)} and {len(test)}"
        )
    return train, val, test


def subset_indices(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a random subset of at most ``limit`` of ``n`` examples.

    ``limit=None`` (or ``limit >= n``) keeps everything. The draw uses a seed
    derived from ``seed`` so that it differs from the split's permutation.

    Example:
        >>> subset_indices(5, None, 0).tolist()
        [0, 1, 2, 3, 4]
        >>> len(subset_indices(100, 7, 0))
        7
    """
    if limit is None or limit >= n:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng([seed, 1])
    return np.sort(rng.permutation(n)[:limit]).astype(np.int64)


_SPLIT_NAMES = {"train": 0, "val": 1, "validation": 1, "test": 2}


def declared_split(values: list[str], rows: list[str], column: str, where: str) -> np.ndarray:
    """The split of every example from a declared column: 0 train, 1 validation, 2 test.

    Accepts ``train``, ``val`` (or ``validation``) and ``test`` (any case).

    Raises:
        ValueError: another value (naming the row), or a split without examples.

    Example:
        >>> declared_split(["train", "Val", "test"], ["l1", "l2", "l3"], "fold", "x.csv").tolist()
        [0, 1, 2]
    """
    out = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        k = _SPLIT_NAMES.get(str(value).strip().lower())
        if k is None:
            raise ValueError(
                f"Expected 'train', 'val' or 'test' in {rows[i]}, column {column!r}, but found "
                f"{value!r}"
            )
        out[i] = k
    for k, name in enumerate(("train", "val", "test")):
        if not (out == k).any():
            raise ValueError(
                f"Expected examples of every split in column {column!r} of {where}, but found "
                f"no {name!r} one"
            )
    return out


def split_examples(
    targets: np.ndarray,
    method: str,
    declared: np.ndarray | None,
    *,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
    where: str = "the data",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/validation/test indices: the declared split, else a seeded ``"random"`` or
    ``"stratified"`` one (:func:`random_split`, :func:`stratified_split`); ``where``
    names the data in messages.

    Example:
        >>> split_examples(np.array([0, 1, 0]), "random", np.array([0, 2, 1]),
        ...                val_fraction=0.2, test_fraction=0.2, split_seed=0)[1].tolist()
        [2]
    """
    if declared is not None:
        train, val, test = (np.flatnonzero(declared == k).astype(np.int64) for k in range(3))
        return train, val, test
    if method == "random":
        return random_split(len(targets), val_fraction, test_fraction, split_seed, where=where)
    return stratified_split(targets, val_fraction, test_fraction, split_seed, where=where)
