"""Numpy scalars are numbers to every builder and operator, as to the loss and the metrics.

``ClassOrder(np.int64(90), 0.8)`` (a class count from array arithmetic) and
``class_order(C, np.float32(0.5))`` (an ``r`` from a float32 grid) used to be
rejected with a TypeError while ``sim_loss``'s ``ignore_index`` and the
metrics took numpy integers. Expected values come from the float64 formulas.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import simloss
from simloss.similarity import (
    class_order,
    from_embeddings,
    from_superclasses,
    from_values,
    lower_bound,
    nearest_neighbours,
)


def _order_formula(num_classes: int, r: float) -> torch.Tensor:
    i = np.arange(num_classes)
    return torch.from_numpy(float(r) ** np.abs(i[:, None] - i[None, :]))


@pytest.mark.parametrize(
    "num_classes", [5, np.int64(5), np.int32(5), np.uint8(5)], ids=lambda v: type(v).__name__
)
@pytest.mark.parametrize(
    "r", [0.5, np.float32(0.5), np.float64(0.5), np.float16(0.5)], ids=lambda v: type(v).__name__
)
def test_class_order_and_operator_take_numpy_scalars(num_classes: object, r: object) -> None:
    expected = _order_formula(5, 0.5)
    dense = class_order(num_classes, r)  # type: ignore[arg-type]
    torch.testing.assert_close(dense.double(), expected, rtol=1e-7, atol=0)
    operator = simloss.ClassOrder(num_classes, r)  # type: ignore[arg-type]
    assert type(operator.num_classes) is int and type(operator.r) is float
    logits, target = torch.randn(4, 5, dtype=torch.float64), torch.tensor([0, 2, 4, 1])
    formula = torch.logsumexp(logits, 1) - torch.logsumexp(logits + expected[target].log(), 1)
    torch.testing.assert_close(simloss.sim_loss(logits, target, operator), formula.mean())


def test_scale_lower_bound_and_s_take_numpy_scalars() -> None:
    values = np.array([1.0, 2.0, 4.0])
    torch.testing.assert_close(
        from_values(values, np.float32(0.5), scale=np.float32(2.0)).double(),
        torch.from_numpy(0.5 ** (np.abs(values[:, None] - values[None, :]) / 2.0)),
        rtol=1e-7,
        atol=0,
    )
    sim = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(
        lower_bound(sim, np.float32(0.5), dtype=torch.float64)[0, 1].item(), (0.8 - 0.5) / 0.5
    )
    vectors = np.array([[1.0, 0.0], [1.0, 1.0]])
    cos = 1 / np.sqrt(2)
    torch.testing.assert_close(
        from_embeddings(vectors, lower_bound=np.float64(0.5))[0, 1].item(),
        (cos - 0.5) / 0.5,
        rtol=1e-6,
        atol=0,
    )
    assert from_superclasses([0, 0, 1], np.float32(0.25))[0, 1].item() == 0.25
    assert nearest_neighbours(sim, np.int64(1)) == [[(1, pytest.approx(0.8))], [(0, 0.8)]]


@pytest.mark.parametrize(
    "groups",
    [
        [0, 0, 1, 1],
        np.array([0, 0, 1, 1]),
        torch.tensor([0, 0, 1, 1]),
        list(np.array([0, 0, 1, 1])),
    ],
    ids=["list", "numpy", "tensor", "list-of-numpy-ints"],
)
def test_from_superclasses_takes_the_metrics_fine_to_coarse(groups: object) -> None:
    same = np.array([0, 0, 1, 1])
    expected = np.where(same[:, None] == same[None, :], 0.5, 0.0)
    np.fill_diagonal(expected, 1.0)
    result = from_superclasses(groups, 0.5, dtype=torch.float64)  # type: ignore[arg-type]
    torch.testing.assert_close(result, torch.from_numpy(expected))


@pytest.mark.parametrize(
    "bad", [np.array([[0, 1]]), torch.tensor([0.0, 1.0]), np.array([True, False])]
)
def test_from_superclasses_refuses_arrays_that_are_not_integer_ids(bad: object) -> None:
    with pytest.raises(TypeError, match=r"^Expected `fine_to_coarse` as an array to be 1-D"):
        from_superclasses(bad, 0.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [True, np.bool_(True), "0.5", torch.tensor(0.5)])
def test_bools_strings_and_tensors_are_still_refused(bad: object) -> None:
    with pytest.raises(TypeError, match=r"^Expected `r` to be a float in \[0, 1\), but found"):
        class_order(3, bad)  # type: ignore[arg-type]
    with pytest.raises((TypeError, ValueError), match=r"^Expected `num_classes`"):
        simloss.ClassOrder(bad, 0.5)  # type: ignore[arg-type]
