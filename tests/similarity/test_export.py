"""Saving a similarity matrix: .npy and .csv read back exactly; atomic; path kinds."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from simloss.similarity import class_order, from_embeddings, save_heatmap, save_similarity


@pytest.mark.parametrize("kind", ["str", "Path"])
def test_round_trip(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(0)
    matrix = from_embeddings(rng.normal(size=(5, 3)), 0.1)  # values with many digits
    prefix = tmp_path / "sub" / "S"
    written = save_similarity(matrix, str(prefix) if kind == "str" else prefix, list("abcde"))
    assert [p.name for p in written] == ["S.npy", "S.csv"]
    assert np.array_equal(np.load(tmp_path / "sub" / "S.npy"), matrix.numpy())
    with open(tmp_path / "sub" / "S.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["class", *"abcde"] and [r[0] for r in rows[1:]] == list("abcde")
    values = np.array([[np.float32(x) for x in r[1:]] for r in rows[1:]])
    assert np.array_equal(values, matrix.numpy())  # the text reads back to the same float32
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["S.csv", "S.npy"]


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    class Broken:
        def savefig(self, handle: object, **kwargs: object) -> None:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_heatmap(Broken(), tmp_path / "S")
    assert list(tmp_path.iterdir()) == []


def test_prefix_and_names_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="prefix without extension"):
        save_similarity(class_order(2, 0.5), tmp_path / "S.npy")
    with pytest.raises(ValueError, match="Expected 2 `names`"):
        save_similarity(class_order(2, 0.5), tmp_path / "S", ["a"])
