"""Text summary of a similarity matrix and nearest neighbours, against plain numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simloss.similarity import class_order, nearest_neighbours, similarity_summary


def _reference_neighbours(matrix: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    out = []
    for i, row in enumerate(matrix):
        others = [(float(row[j]), j) for j in range(len(row)) if j != i and row[j] > 0]
        others.sort(key=lambda t: (-t[0], t[1]))  # most similar first, ties by index
        out.append([(j, v) for v, j in others[:k]])
    return out


@pytest.mark.parametrize("k", [1, 2, 5])
def test_nearest_neighbours_match_reference(k: int) -> None:
    rng = np.random.default_rng(0)
    matrix = rng.choice([0.0, 0.25, 0.5, 0.75], size=(7, 7))
    np.fill_diagonal(matrix, 1.0)
    assert nearest_neighbours(torch.from_numpy(matrix), k) == _reference_neighbours(matrix, k)


def test_summary_lines() -> None:
    text = similarity_summary(class_order(6, 0.5), description="class order, r = 0.5", show=2)
    lines = text.splitlines()
    assert lines[0] == "similarity matrix: 6 classes; class order, r = 0.5"
    # mean: sum over distances d of 2 (6 - d) 0.5^d, over 30 entries = 8.0625 / 30
    assert lines[1] == "off-diagonal values: min 0.03125, max 0.5, mean 0.2688"
    assert lines[3] == "symmetric: yes"
    assert lines[4] == "nearest neighbours (top 3, similarity > 0), first 2 of 6 classes:"
    assert lines[5] == "  0  1 0.500, 2 0.250, 3 0.125"
    assert lines[-1] == "  ... 4 more classes"


def test_summary_sparsity_and_asymmetry() -> None:
    matrix = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0], [0.25, 0.0, 1.0]])
    text = similarity_summary(matrix, ["a", "b", "c"])
    assert "sparsity: 66.7% of off-diagonal entries are 0 (0.7 non-zero" in text
    assert "symmetric: no" in text
    assert "\n  b  (none)" in text


def test_summary_one_class_and_errors() -> None:
    assert similarity_summary(np.ones((1, 1))).endswith("one class: S = [[1]]")
    with pytest.raises(ValueError, match="square"):
        similarity_summary(np.ones((2, 3)))
    with pytest.raises(ValueError, match="Expected 2 `names`"):
        similarity_summary(np.eye(2), ["a"])
    with pytest.raises(ValueError, match="`neighbours` to be a positive int"):
        similarity_summary(np.eye(2), neighbours=0)
