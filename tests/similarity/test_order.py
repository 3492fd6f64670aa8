"""Class order (Eq. 2): hand cases, r = 0, the band, and a reference double loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simloss.similarity import validate_similarity
from simloss.similarity.order import check_reduction_factor, class_order, order_band


def _loop_reference(num_classes: int, r: float) -> np.ndarray:
    """The paper's construction, one entry at a time, in float64, rounded to float32,
    with the documented cut: values below float32's smallest normal number are 0."""
    out = np.empty((num_classes, num_classes))
    for i in range(num_classes):
        for j in range(num_classes):
            out[i, j] = r ** abs(i - j) if abs(i - j) else 1.0
    rounded = out.astype(np.float32)
    rounded[rounded < np.finfo(np.float32).tiny] = 0.0
    return rounded


def test_hand_case_four_classes() -> None:
    expected = torch.tensor(
        [
            [1.0, 0.3, 0.09, 0.027],
            [0.3, 1.0, 0.3, 0.09],
            [0.09, 0.3, 1.0, 0.3],
            [0.027, 0.09, 0.3, 1.0],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(class_order(4, 0.3, dtype=torch.float64), expected)


def test_single_class_is_one() -> None:
    assert torch.equal(class_order(1, 0.7), torch.ones(1, 1))


@pytest.mark.parametrize("num_classes", [1, 2, 7, 50], ids=lambda c: f"C{c}")
def test_r_zero_is_identity(num_classes: int) -> None:
    assert torch.equal(class_order(num_classes, 0.0), torch.eye(num_classes))
    assert torch.equal(order_band(num_classes, 0.0), torch.ones(1))


@pytest.mark.parametrize(
    ("num_classes", "r"), [(5, 0.5), (40, 0.9), (120, 0.01), (300, 0.999)], ids=str
)
def test_matches_double_loop(num_classes: int, r: float) -> None:
    matrix = class_order(num_classes, r)
    assert matrix.dtype == torch.float32
    expected = torch.from_numpy(_loop_reference(num_classes, r))
    assert torch.equal(matrix, expected)
    assert torch.equal(matrix, matrix.T)
    validate_similarity(matrix, num_classes)


def test_band_hand_case_and_cut_off() -> None:
    band = order_band(6, 0.5, dtype=torch.float64)
    assert band.tolist() == [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125]
    # r = 0.01 leaves float32's normal range after a few dozen steps: the band stops at the
    # last normal value, and the dense matrix is exactly zero beyond it.
    band32 = order_band(1000, 0.01)
    last = band32.numel() - 1
    tiny = torch.finfo(torch.float32).tiny
    assert band32[-1] >= tiny
    assert torch.tensor(0.01, dtype=torch.float64).pow(last + 1).to(torch.float32) < tiny
    dense = class_order(1000, 0.01)
    assert torch.equal(dense[0, : last + 1], band32)
    assert bool((dense[0, last + 1 :] == 0).all())


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, float("nan")], ids=str)
def test_r_out_of_range(bad: float) -> None:
    with pytest.raises(ValueError, match=r"Expected `r` in \[0, 1\)"):
        class_order(3, bad)


@pytest.mark.parametrize("bad", [True, "0.5", None], ids=["bool", "str", "none"])
def test_r_wrong_type(bad: object) -> None:
    with pytest.raises(TypeError, match="`r`"):
        check_reduction_factor(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -3], ids=str)
def test_num_classes_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError, match="`num_classes`"):
        class_order(bad, 0.5)


def test_num_classes_wrong_type() -> None:
    with pytest.raises(TypeError, match="`num_classes`"):
        class_order(3.0, 0.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("r", [0.3, 0.7, 0.9, 0.999])
def test_no_subnormal_entries_and_band_equals_dense(dtype: torch.dtype, r: float) -> None:
    """Entries below the smallest normal number are cut to 0, in the band and the matrix alike."""
    num_classes = 3000
    band = order_band(num_classes, r, dtype=dtype)
    tiny = torch.finfo(dtype).smallest_normal
    assert bool((band >= tiny).all())
    exact = torch.tensor(r, dtype=torch.float64).pow(torch.arange(num_classes, dtype=torch.float64))
    rounded = exact.to(dtype)
    expected = torch.where(rounded >= tiny, rounded, torch.zeros((), dtype=dtype))
    # float64 powers from two libraries (C's pow, torch's) may differ in the last bit.
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(band, expected[: band.numel()], rtol=eps, atol=0)
    assert bool((expected[band.numel() :] == 0).all())
    dense = class_order(num_classes, r, dtype=dtype)
    assert torch.equal(dense[0, : band.numel()], band)  # the band and the matrix: bit for bit
    assert bool((dense[0, band.numel() :] == 0).all())
    nonzero = dense[dense != 0]
    assert bool((nonzero >= tiny).all())
