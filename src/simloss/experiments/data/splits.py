"""Random, seeded train/validation/test splits (independent of the training seed)."""

from __future__ import annotations

import numpy as np

__all__ = ["random_split", "split_sizes", "stratified_holdout", "subset_indices"]


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
    n: int, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``range(n)`` at random into train/validation/test index arrays.

    One permutation drawn with ``numpy.random.default_rng(seed)``; the three
    parts are disjoint, cover ``range(n)`` and are each sorted.

    Args:
        n: number of examples.
        val_fraction: fraction for validation, in (0, 1).
        test_fraction: fraction for test, in (0, 1).
        seed: the split seed.

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
            f"Expected enough examples for non-empty train/validation/test splits, but found "
            f"n={n} with val_fraction={val_fraction} and test_fraction={test_fraction}"
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
