"""Lower bound (Eq. 3) and the row-normalised probability matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simloss.similarity import lower_bound, to_probability_matrix, validate_similarity


def _random_similarity(num_classes: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    upper = rng.random((num_classes, num_classes))
    sim = np.triu(upper, 1)
    sim = sim + sim.T
    np.fill_diagonal(sim, 1.0)
    return sim


def _eq3_reference(sim: np.ndarray, bound: float) -> np.ndarray:
    out = np.empty_like(sim)
    for i in range(sim.shape[0]):
        for j in range(sim.shape[1]):
            out[i, j] = 1.0 if i == j else max(0.0, sim[i, j] - bound) / (1.0 - bound)
    return out


def test_lower_bound_hand_case() -> None:
    sim = torch.tensor([[1.0, 0.9, 0.3], [0.9, 1.0, 0.6], [0.3, 0.6, 1.0]], dtype=torch.float64)
    result = lower_bound(sim, 0.4, dtype=torch.float64)
    expected = torch.tensor(
        [[1.0, 0.5 / 0.6, 0.0], [0.5 / 0.6, 1.0, 0.2 / 0.6], [0.0, 0.2 / 0.6, 1.0]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(result, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("bound", [0.0, 0.1, 0.5, 0.9, 0.99], ids=str)
def test_lower_bound_matches_reference(bound: float) -> None:
    sim = _random_similarity(9, seed=1)
    result = lower_bound(sim, bound)
    assert result.dtype == torch.float32
    expected = torch.from_numpy(_eq3_reference(sim, bound)).to(torch.float32)
    assert torch.equal(result, expected)
    assert bool((torch.diagonal(result) == 1).all())
    assert torch.equal(result, result.T)
    validate_similarity(result, 9)


def test_lower_bound_zero_keeps_values() -> None:
    sim = torch.from_numpy(_random_similarity(6, seed=2)).to(torch.float32)
    assert torch.equal(lower_bound(sim, 0.0), sim)


@pytest.mark.parametrize("bound", [0.999999, 1.0 - 1e-12], ids=str)
def test_lower_bound_near_one_is_identity(bound: float) -> None:
    sim = _random_similarity(8, seed=3) * 0.999  # every off-diagonal value below the bound
    np.fill_diagonal(sim, 1.0)
    assert torch.equal(lower_bound(sim, bound), torch.eye(8))


def test_lower_bound_keeps_identical_classes_at_one() -> None:
    sim = torch.ones(2, 2)
    assert torch.equal(lower_bound(sim, 0.9), torch.ones(2, 2))


@pytest.mark.parametrize("bound", [1.0, -0.01, 1.5], ids=str)
def test_lower_bound_l_out_of_range(bound: float) -> None:
    with pytest.raises(ValueError, match=rf"Expected `l` in \[0, 1\), but found {bound}"):
        lower_bound(torch.eye(2), bound)


def test_lower_bound_l_wrong_type() -> None:
    with pytest.raises(TypeError, match="`l`"):
        lower_bound(torch.eye(2), True)


@pytest.mark.parametrize(
    ("sim", "message"),
    [
        (torch.tensor([[1.0, 0.2], [0.2, 0.9]]), r"ones on the diagonal .* found 0.9 at \(1, 1\)"),
        (torch.tensor([[1.0, 1.2], [0.2, 1.0]]), r"values in \[0, 1\], but found 1.2 at \(0, 1\)"),
        (torch.tensor([[1.0, float("nan")], [0.2, 1.0]]), r"`sim` to be finite"),
        (torch.ones(2, 3), r"square matrix"),
    ],
    ids=["diagonal", "above-one", "nan", "not-square"],
)
def test_lower_bound_rejects_bad_sim(sim: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lower_bound(sim, 0.5)


def test_lower_bound_rejects_integer_sim() -> None:
    with pytest.raises(TypeError, match="floating dtype"):
        lower_bound(torch.eye(2, dtype=torch.int64), 0.5)


def test_probability_matrix_hand_case() -> None:
    sim = torch.tensor([[1.0, 0.5, 0.5], [0.0, 1.0, 1.0], [0.25, 0.0, 1.0]], dtype=torch.float64)
    result = to_probability_matrix(sim, dtype=torch.float64)
    expected = torch.tensor(
        [[0.5, 0.25, 0.25], [0.0, 0.5, 0.5], [0.2, 0.0, 0.8]], dtype=torch.float64
    )
    torch.testing.assert_close(result, expected, rtol=0, atol=1e-15)


def test_probability_matrix_rows_sum_to_one() -> None:
    sim = _random_similarity(30, seed=4)
    result = to_probability_matrix(sim)
    assert result.dtype == torch.float32
    expected = sim / sim.sum(axis=1, keepdims=True)
    assert torch.equal(result, torch.from_numpy(expected).to(torch.float32))
    torch.testing.assert_close(result.sum(dim=1), torch.ones(30))
    validate_similarity(result, require_unit_diagonal=False)


def test_probability_matrix_of_identity_is_identity() -> None:
    assert torch.equal(to_probability_matrix(torch.eye(5)), torch.eye(5))


def test_probability_matrix_rejects_zero_row() -> None:
    sim = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="positive sum, but found row 1 summing to 0"):
        to_probability_matrix(sim)


def test_probability_matrix_rejects_negative() -> None:
    with pytest.raises(ValueError, match=r"found -0.5 at \(0, 1\)"):
        to_probability_matrix(torch.tensor([[1.0, -0.5], [0.0, 1.0]]))
