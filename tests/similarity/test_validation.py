"""validate_similarity: accepted and rejected matrices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simloss.similarity import validate_similarity


def test_accepts_tensor_and_numpy():
    S = np.array([[1.0, 0.0], [0.25, 1.0]], dtype=np.float32)
    out = validate_similarity(S, 2)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (torch.ones(2, 3), r"square matrix of shape \(C, C\), but found shape \(2, 3\)"),
        (torch.ones(2), r"found shape \(2,\)"),
        (torch.tensor([[1.0, float("inf")], [0.0, 1.0]]), r"finite, but found inf at \(0, 1\)"),
        (torch.tensor([[1.0, 0.0], [1.5, 1.0]]), r"\[0, 1\], but found 1.5 at \(1, 0\)"),
        (torch.tensor([[0.9, 0.0], [0.0, 1.0]]), r"diagonal.*0.9 at \(0, 0\)"),
    ],
)
def test_rejects_with_position(matrix, message):
    with pytest.raises(ValueError, match=message):
        validate_similarity(matrix)


def test_size_mismatch_names_expected_size():
    with pytest.raises(ValueError, match=r"shape \(3, 3\) to match 3 classes"):
        validate_similarity(torch.eye(2), 3)


def test_diagonal_opt_out():
    validate_similarity(torch.full((2, 2), 0.5), require_unit_diagonal=False)
