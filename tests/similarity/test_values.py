"""Similarity from class values: hand cases, class order as a special case, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from simloss.similarity import class_order, from_values, validate_similarity


def _reference(values: list[float], r: float, scale: float) -> np.ndarray:
    out = np.empty((len(values), len(values)))
    for i, vi in enumerate(values):
        for j, vj in enumerate(values):
            out[i, j] = 1.0 if vi == vj else r ** (abs(vi - vj) / scale)
    return out


def _rounded(
    reference: np.ndarray | torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Float64 values rounded once to ``dtype``, entries below its smallest normal cut to 0."""
    matrix = torch.as_tensor(reference, dtype=torch.float64).to(dtype)
    return torch.where(matrix < torch.finfo(dtype).smallest_normal, 0.0, matrix).to(dtype)


def test_hand_case_non_equidistant() -> None:
    # ages 1, 2, 5 with r = 0.5: distances 1, 4, 3
    matrix = from_values([1.0, 2.0, 5.0], r=0.5, dtype=torch.float64)
    expected = torch.tensor(
        [[1.0, 0.5, 0.0625], [0.5, 1.0, 0.125], [0.0625, 0.125, 1.0]], dtype=torch.float64
    )
    assert torch.equal(matrix, expected)


def test_scale_divides_the_distance() -> None:
    # bin centres 10 years apart with scale 10 behave like neighbouring classes
    matrix = from_values([5.0, 15.0, 35.0], r=0.6, scale=10.0, dtype=torch.float64)
    torch.testing.assert_close(matrix[0, 1], torch.tensor(0.6, dtype=torch.float64))
    torch.testing.assert_close(matrix[0, 2], torch.tensor(0.6**3, dtype=torch.float64))
    torch.testing.assert_close(matrix[1, 2], torch.tensor(0.36, dtype=torch.float64))


@pytest.mark.parametrize(
    ("num_classes", "r"),
    [(1, 0.5), (10, 0.0), (50, 0.5), (200, 0.9), (500, 0.01), (1500, 0.999)],
    ids=str,
)
def test_values_zero_to_c_minus_one_equal_class_order(num_classes: int, r: float) -> None:
    matrix = from_values(np.arange(num_classes), r)
    assert matrix.dtype == torch.float32
    # equal to class_order wherever class_order is normal; subnormal entries are cut to 0
    assert torch.equal(matrix, _rounded(class_order(num_classes, r)))


def test_r_zero_is_identity() -> None:
    assert torch.equal(from_values([3.0, -1.0, 0.25, 7.5], 0.0), torch.eye(4))


def test_input_kinds_agree_and_order_is_kept() -> None:
    values = [2.0, 0.5, 9.0, 4.0]
    expected = from_values(values, 0.7, 2.0)
    assert torch.equal(from_values(np.array(values), 0.7, 2.0), expected)
    assert torch.equal(from_values(torch.tensor(values), 0.7, 2.0), expected)
    assert torch.equal(from_values(np.array([2, 0, 9, 4]), 0.7), from_values([2, 0, 9, 4], 0.7))
    assert torch.equal(expected, expected.T)


def test_device_argument() -> None:
    assert from_values([0.0, 1.0], 0.5, device="cpu").device.type == "cpu"


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=12, unique=True),
    r=st.floats(0.0, 0.999),
    scale=st.floats(0.01, 100.0),
)
def test_matches_reference_and_is_valid(values: list[float], r: float, scale: float) -> None:
    matrix = from_values(values, r, scale)
    assert torch.equal(matrix, _rounded(_reference(values, r, scale)))
    validate_similarity(matrix, len(values))
    assert torch.equal(matrix, matrix.T)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([0.0, float("nan"), 2.0], r"Expected `values` to be finite, but found nan at 1"),
        ([0.0, float("inf")], r"Expected `values` to be finite, but found inf at 1"),
        ([1.0, 2.0, 1.0], r"pairwise distinct, but found 1 at 0 and 2"),
        ([], r"Expected `values` of shape \(C,\) with C >= 1, but found shape \(0,\)"),
        ([[0.0, 1.0]], r"Expected `values` of shape \(C,\) with C >= 1, but found shape \(1, 2\)"),
    ],
    ids=["nan", "inf", "duplicate", "empty", "2d"],
)
def test_bad_values(values: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_values(values, 0.5)


@pytest.mark.parametrize(
    "values",
    [np.array([True, False]), torch.tensor([True, False]), ["a", "b"], "12"],
    ids=["numpy-bool", "torch-bool", "strings", "string"],
)
def test_values_wrong_type(values: object) -> None:
    with pytest.raises(TypeError, match="`values`"):
        from_values(values, 0.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("r", [1.0, -0.5, 2.0], ids=str)
def test_r_out_of_range(r: float) -> None:
    with pytest.raises(ValueError, match=rf"Expected `r` in \[0, 1\), but found {r}"):
        from_values([0.0, 1.0], r)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("inf"), float("nan")], ids=str)
def test_scale_out_of_range(scale: float) -> None:
    with pytest.raises(ValueError, match="Expected `scale` to be positive and finite"):
        from_values([0.0, 1.0], 0.5, scale)


def test_scale_wrong_type() -> None:
    with pytest.raises(TypeError, match="`scale`"):
        from_values([0.0, 1.0], 0.5, True)


@pytest.mark.parametrize(
    "dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str
)
def test_subnormal_cut_at_the_rounding_boundary(dtype: torch.dtype) -> None:
    # r = 1/2: S = 2^-d, so distances around -log2(smallest normal) straddle the boundary,
    # including values that round up to the smallest normal number from below it
    tiny_exponent = -math.log2(torch.finfo(dtype).smallest_normal)
    eps = torch.finfo(dtype).eps
    offsets = [-1.0, -1e-9, 0.0, 1e-12, 0.4 * eps, 0.5 * eps, 0.7 * eps, 1e-3, 1.0, 30.0]
    values = sorted({0.0, *(tiny_exponent + o for o in offsets)})  # float64 merges the tiniest
    matrix = from_values(values, 0.5, dtype=dtype)
    reference = _rounded(_reference(values, 0.5, 1.0), dtype)
    assert torch.equal(matrix, reference)
    nonzero = matrix[matrix != 0].to(torch.float64)
    assert bool((nonzero >= torch.finfo(dtype).smallest_normal).all())  # no subnormal left


def test_same_values_as_the_plain_float32_formula() -> None:
    # the benchmark's baseline, r ** |v_i - v_j| in float32, agrees to float32 rounding
    # (r and the values exact in float32, so only the rounding of the power differs: 2 ulp)
    rng = np.random.default_rng(0)
    values = np.sort(rng.choice(100_000, size=700, replace=False)).astype(np.float64) / 4
    v = torch.from_numpy(values).float()
    plain = torch.tensor(0.9375, dtype=torch.float32) ** (v[:, None] - v[None, :]).abs()
    matrix = from_values(values, 0.9375)
    torch.testing.assert_close(
        matrix, plain, rtol=2.5e-7, atol=2 * torch.finfo(torch.float32).smallest_normal
    )


def test_many_blocks_match_the_reference() -> None:
    # more classes than one block of rows: the mirrored blocks meet without a seam
    rng = np.random.default_rng(1)
    values = rng.permutation(3000).astype(np.float64) * 0.37
    matrix = from_values(values, 0.99, 2.0)
    expected = _rounded(0.99 ** (np.abs(values[:, None] - values[None, :]) / 2.0))
    assert torch.equal(matrix, expected)


def test_dtype_must_be_floating() -> None:
    with pytest.raises(TypeError, match="floating dtype"):
        from_values([0.0, 1.0], 0.5, dtype=torch.int64)
