"""Seeded splits: sizes, disjointness, coverage, independence of the training seed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simloss.experiments.data.splits import (
    random_split,
    split_sizes,
    stratified_holdout,
    subset_indices,
)


@given(
    n=st.integers(5, 5000),
    val=st.floats(0.05, 0.4),
    test=st.floats(0.05, 0.4),
    seed=st.integers(0, 2**31),
)
@settings(max_examples=60, deadline=None)
def test_random_split_is_a_disjoint_cover_with_rounded_sizes(
    n: int, val: float, test: float, seed: int
) -> None:
    try:
        train, v, t = random_split(n, val, test, seed)
    except ValueError:
        assert min(split_sizes(n, val, test)) < 1
        return
    assert abs(len(v) - n * val) <= 0.5
    assert abs(len(t) - n * test) <= 0.5
    joined = np.concatenate([train, v, t])
    assert len(joined) == n and set(joined.tolist()) == set(range(n))


def test_paper_split_of_utkface_size() -> None:
    assert split_sizes(9737, 0.2, 0.2) == (5843, 1947, 1947)


def test_split_depends_on_seed_only() -> None:
    a = random_split(100, 0.2, 0.2, seed=1)
    b = random_split(100, 0.2, 0.2, seed=1)
    c = random_split(100, 0.2, 0.2, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


def test_random_split_rejects_too_few_examples() -> None:
    with pytest.raises(ValueError, match="non-empty train/validation/test"):
        random_split(2, 0.2, 0.2, seed=0)


def test_stratified_holdout_takes_the_paper_share_of_every_class() -> None:
    labels = np.repeat(np.arange(100), 500)
    np.random.default_rng(0).shuffle(labels)
    kept, held = stratified_holdout(labels, 0.1, seed=3)
    assert np.bincount(labels[held], minlength=100).tolist() == [50] * 100
    assert np.bincount(labels[kept], minlength=100).tolist() == [450] * 100
    assert len(np.intersect1d(kept, held)) == 0 and len(kept) + len(held) == len(labels)


def test_subset_is_sorted_unique_and_seeded() -> None:
    a = subset_indices(1000, 10, 5)
    assert len(np.unique(a)) == 10 and np.all(np.diff(a) > 0)
    assert np.array_equal(a, subset_indices(1000, 10, 5))
    assert not np.array_equal(a, subset_indices(1000, 10, 6))
