"""A SimilarityOperator subclass is held to what a dense matrix is held to.

Its values are checked the first time the loss gathers a class's row (finite,
in [0, 1], ones on the diagonal unless ``require_unit_diagonal=False``), and
the type and shape of what its methods return on every call, with errors that
name the method and what was expected. Valid operators give the float64
formula ``-log sum_c S[y, c] softmax(z)[c]`` and, for S = I, cross-entropy.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from simloss import SimilarityOperator, SimLoss, sim_loss
from simloss.similarity import SimilarityRows

LOGITS = torch.tensor(
    [[2.0, -1.0, 0.5], [0.0, 3.0, -2.0], [1.0, 1.0, 1.0], [-1.0, 0.0, 4.0]],
    dtype=torch.float64,
)
TARGET = torch.tensor([0, 2, 1, 0])


class MatrixRows(SimilarityOperator):
    """Rows of a stored (C, C) matrix, as a user's subclass would write them."""

    def __init__(self, matrix: torch.Tensor, form: str = "dense") -> None:
        super().__init__(len(matrix))
        self.register_buffer("matrix", matrix)
        self.form = form

    def rows(self, target: torch.Tensor, dtype: torch.dtype) -> SimilarityRows:
        rows = self.matrix[target].to(dtype)
        if self.form == "pairs":
            columns = torch.arange(self.num_classes).expand(len(target), -1).clone()
            return SimilarityRows(None, columns, rows)
        return SimilarityRows(rows, None, None)

    def similar_mass(self, probs: torch.Tensor) -> torch.Tensor:
        return probs @ self.matrix.to(probs.dtype).T


def float64_loss(logits: torch.Tensor, target: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """The paper's Eq. 1 in float64, per sample."""
    probs = torch.softmax(logits.double(), 1)
    return -torch.log((S.double()[target] * probs).sum(1))


def valid_matrix() -> torch.Tensor:
    return torch.tensor([[1.0, 0.5, 0.0], [0.5, 1.0, 0.25], [0.0, 0.25, 1.0]], dtype=torch.float64)


@pytest.mark.parametrize("form", ["dense", "pairs"])
def test_a_valid_subclass_gives_the_float64_formula_and_identity_gives_cross_entropy(form):
    S = valid_matrix()
    expected = float64_loss(LOGITS, TARGET, S)
    got = sim_loss(LOGITS, TARGET, MatrixRows(S, form), reduction="none")
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    identity = MatrixRows(torch.eye(3, dtype=torch.float64), form)
    torch.testing.assert_close(
        SimLoss(identity)(LOGITS, TARGET), F.cross_entropy(LOGITS, TARGET), rtol=1e-12, atol=0
    )


BAD_VALUES = {
    "above-one": (1.5, r"finite and in \[0, 1\], but found 1\.5 at \(0, 1\)"),
    "negative": (-0.2, r"finite and in \[0, 1\], but found -0\.2 at \(0, 1\)"),
    "nan": (float("nan"), r"finite and in \[0, 1\], but found nan at \(0, 1\)"),
}


@pytest.mark.parametrize("form", ["dense", "pairs"])
@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_values_a_dense_matrix_may_not_hold_are_refused(case, form):
    """Values above 1 gave a loss below cross-entropy's, NaN a NaN loss: now both raise."""
    value, message = BAD_VALUES[case]
    S = valid_matrix()
    S[0, 1] = value
    pattern = r"^Expected `MatrixRows.rows\(target, dtype\)` to return similarities that are "
    with pytest.raises(ValueError, match=pattern + message + "$"):
        sim_loss(LOGITS, TARGET, MatrixRows(S, form))
    with pytest.raises(ValueError, match=message):
        SimLoss(MatrixRows(S, form))(LOGITS, TARGET)
    found = message.split("but ")[1]
    with pytest.raises(ValueError, match=found):  # the dense matrix with the same values
        sim_loss(LOGITS, TARGET, S)


def test_a_zero_diagonal_is_refused_unless_allowed_and_then_gives_the_formula():
    S = valid_matrix()
    S[2, 2] = 0.0
    with pytest.raises(
        ValueError, match=r"ones on the diagonal \(S_ii = 1\), but found 0 at \(2, 2\)"
    ):
        sim_loss(LOGITS, TARGET, MatrixRows(S))
    got = sim_loss(LOGITS, TARGET, MatrixRows(S), reduction="none", require_unit_diagonal=False)
    torch.testing.assert_close(got, float64_loss(LOGITS, TARGET, S), rtol=1e-12, atol=1e-12)
    module = SimLoss(MatrixRows(S), require_unit_diagonal=False, reduction="sum")
    torch.testing.assert_close(
        module(LOGITS, TARGET), float64_loss(LOGITS, TARGET, S).sum(), rtol=1e-12, atol=0
    )


def test_each_class_row_is_checked_when_first_gathered_and_after_a_change():
    S = valid_matrix()
    S[1, 0] = 2.0  # only class 1's row is bad
    operator = MatrixRows(S)
    sim_loss(LOGITS, torch.tensor([0, 2, 0, 2]), operator)  # rows 0 and 2 only: valid
    with pytest.raises(ValueError, match=r"found 2 at \(1, 0\)"):
        sim_loss(LOGITS, torch.tensor([0, 1, 0, 2]), operator)
    operator.matrix[1, 0] = 0.5  # fixed in place: a new version, checked again
    torch.testing.assert_close(
        sim_loss(LOGITS, TARGET, operator, reduction="none"),
        float64_loss(LOGITS, TARGET, operator.matrix),
        rtol=1e-12,
        atol=1e-12,
    )
    operator.matrix[0, 0] = -1.0  # broken in place after every class was seen: checked again
    with pytest.raises(ValueError, match=r"found -1 at \(0, 0\)"):
        sim_loss(LOGITS, TARGET, operator)


class BrokenRows(MatrixRows):
    """Returns what ``make(rows)`` makes of the correct result."""

    def __init__(self, make: Callable[[SimilarityRows], object]) -> None:
        super().__init__(valid_matrix())
        self.make = make

    def rows(self, target: torch.Tensor, dtype: torch.dtype) -> SimilarityRows:
        return self.make(super().rows(target, dtype))  # type: ignore[return-value]


BROKEN = {
    "tuple": (
        lambda r: (r.dense, None, None),
        TypeError,
        r"to return a simloss.similarity.SimilarityRows \(dense rows, or columns and values\), "
        r"but found tuple",
    ),
    "narrow": (
        lambda r: SimilarityRows(r.dense[:, :2], None, None),
        ValueError,
        r"\.dense` to return a tensor of shape \(4, 3\), "
        r"but found shape \(4, 2\)",
    ),
    "integer": (
        lambda r: SimilarityRows(r.dense.long(), None, None),
        TypeError,
        r"to return a floating tensor of shape \(4, 3\), but found a tensor of shape \(4, 3\) "
        r"and dtype torch.int64",
    ),
    "both-forms": (
        lambda r: SimilarityRows(r.dense, torch.zeros(4, 3, dtype=torch.long), r.dense),
        ValueError,
        r"to set either `dense` or both `columns` and `values`",
    ),
    "float-columns": (
        lambda r: SimilarityRows(None, torch.zeros(4, 3), r.dense),
        TypeError,
        r"integer `columns` of shape \(4, k\), but found a tensor of shape \(4, 3\) and dtype "
        r"torch.float32",
    ),
    "pair-shapes": (
        lambda r: SimilarityRows(None, torch.zeros(4, 2, dtype=torch.long), r.dense),
        ValueError,
        r"`columns` and `values` of one shape \(4, k\), but found \(4, 2\) and \(4, 3\)",
    ),
    "column-range": (
        lambda r: SimilarityRows(None, torch.full((4, 3), 3), r.dense),
        ValueError,
        r"`columns` in \[0, 3\), but found 3 in the row of class 0",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_wrong_result_of_rows_names_the_method_and_what_was_expected(case):
    make, error, message = BROKEN[case]
    with pytest.raises(
        error, match=r"^Expected `BrokenRows.rows\(target, dtype\)" + ".*" + message
    ):
        sim_loss(LOGITS, TARGET, BrokenRows(make))
    with pytest.raises(error, match=message):
        SimLoss(BrokenRows(make))(LOGITS, TARGET)


class NarrowMass(MatrixRows):
    def similar_mass(self, probs: torch.Tensor) -> torch.Tensor:
        return super().similar_mass(probs)[:, :2]


def test_a_wrong_width_of_similar_mass_names_the_method():
    """Probability targets and label smoothing use similar_mass: its shape is checked too."""
    message = r"`NarrowMass.similar_mass\(probs\)` to return a tensor of shape \(4, 3\)"
    with pytest.raises(ValueError, match=message):
        sim_loss(LOGITS, TARGET, NarrowMass(valid_matrix()), label_smoothing=0.1)
    with pytest.raises(ValueError, match=message):
        sim_loss(LOGITS, torch.softmax(LOGITS, 1), NarrowMass(valid_matrix()))


def test_built_in_operators_validate_their_own_entries():
    """ClassOrder and SparseSimilarity check their values at construction: no per-use check."""
    from simloss import ClassOrder, SparseSimilarity
    from simloss.similarity.dispatch import CheckedOperator, as_similarity_operator

    for operator in (ClassOrder(3, 0.5), SparseSimilarity.from_dense(valid_matrix())):
        assert operator.validates_entries
        assert as_similarity_operator(operator, 3) is operator
    assert isinstance(as_similarity_operator(MatrixRows(valid_matrix()), 3), CheckedOperator)
