"""ClassOrder and SparseSimilarity: rows and products equal the dense matrix's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simloss import ClassOrder, SimilarityOperator, SimLoss, SparseSimilarity, sim_loss
from simloss.similarity import SimilarityRows, class_order


@pytest.mark.parametrize(("num_classes", "r"), [(5, 0.0), (50, 0.5), (5000, 0.9), (3000, 0.99)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_class_order_rows_equal_dense(num_classes, r, dtype):
    S = ClassOrder(num_classes, r)
    target = torch.tensor([0, num_classes // 2, num_classes - 1])
    dense = class_order(num_classes, r, dtype=dtype)
    rows = S.rows(target, dtype)
    if rows.dense is not None:
        torch.testing.assert_close(rows.dense, dense[target], rtol=0, atol=0)
    else:
        rebuilt = torch.zeros(3, num_classes, dtype=dtype).scatter_add_(
            1, rows.columns, rows.values
        )
        torch.testing.assert_close(rebuilt, dense[target], rtol=0, atol=0)
    probs = torch.softmax(torch.randn(2, num_classes, dtype=dtype), 1)
    torch.testing.assert_close(S.similar_mass(probs), probs @ dense.T)


def test_class_order_band_is_the_nonzero_part_of_the_matrix():
    S = ClassOrder(100_000, 0.9)
    band = S.band(torch.float32, torch.device("cpu"))
    assert band[-1] > 0
    assert torch.tensor(0.9, dtype=torch.float64) ** band.numel() < torch.finfo(torch.float32).tiny
    assert 500 < band.numel() < 2000


def test_sparse_similarity_round_trips_and_products():
    S = class_order(7, 0.3, dtype=torch.float64)
    S[S < 0.05] = 0
    sparse = SparseSimilarity.from_dense(S)
    torch.testing.assert_close(sparse.to_dense(), S)
    values = torch.rand(3, 7, dtype=torch.float64)
    torch.testing.assert_close(sparse.similar_mass(values), values @ S.T)
    torch.testing.assert_close(sparse.similar_mass_transposed(values), values @ S)


def test_sparse_similarity_bad_input():
    with pytest.raises(ValueError, match=r"`index` values in \[0, 2\)"):
        SparseSimilarity(torch.tensor([[0], [2]]), torch.tensor([[1.0], [1.0]]))
    with pytest.raises(ValueError, match="diagonal"):
        SparseSimilarity(torch.tensor([[0], [0]]), torch.tensor([[1.0], [1.0]]))
    with pytest.raises(ValueError, match=r"finite and in \[0, 1\], but found 2"):
        SparseSimilarity(torch.tensor([[0], [1]]), torch.tensor([[2.0], [1.0]]))
    with pytest.raises(ValueError, match="found column 0 twice in row 0"):
        SparseSimilarity(torch.tensor([[0, 0], [1, 0]]), torch.tensor([[1.0, 0.5], [1.0, 0.0]]))
    with pytest.raises(TypeError, match="`index`"):
        SparseSimilarity(torch.tensor([[0.0]]), torch.tensor([[1.0]]))


def test_structured_state_moves_with_module():
    sparse = SparseSimilarity.from_dense(class_order(4, 0.5))
    moved = sparse.to(torch.float64)
    assert moved.value.dtype == torch.float64
    assert set(moved.state_dict()) == {"index", "value"}


class _TreeSimilarity(SimilarityOperator):
    """A third kind, written outside simloss: S_ij = 1 for i = j, `s` for siblings, else 0."""

    def __init__(self, parent: list[int], s: float) -> None:
        super().__init__(len(parent))
        self.register_buffer("parent", torch.tensor(parent))
        self.s = s

    def rows(self, target: torch.Tensor, dtype: torch.dtype) -> SimilarityRows:
        siblings = self.parent[target][:, None] == self.parent[None, :]
        rows = siblings.to(dtype) * self.s
        rows[torch.arange(len(target)), target] = 1.0
        return SimilarityRows(rows, None, None)

    def similar_mass(self, probs: torch.Tensor) -> torch.Tensor:
        dense = self.dense_rows(torch.arange(self.num_classes), probs.dtype)
        return probs @ dense.T


def test_a_new_structured_similarity_plugs_into_loss_module_and_metrics():
    """No edit of the loss or the metrics: the protocol's defaults do the rest."""
    from simloss import SimLoss, sim_loss
    from simloss.metrics import MeanSimilarity, mean_similarity

    tree = _TreeSimilarity([0, 0, 1, 1, 1], s=0.4)
    dense = tree.to_dense(torch.float64)
    expected_dense = torch.tensor(
        [
            [1.0, 0.4, 0, 0, 0],
            [0.4, 1.0, 0, 0, 0],
            [0, 0, 1.0, 0.4, 0.4],
            [0, 0, 0.4, 1.0, 0.4],
            [0, 0, 0.4, 0.4, 1.0],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(dense, expected_dense)
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    target = torch.randint(0, 5, (6,), generator=gen)
    soft = torch.softmax(torch.randn(6, 5, generator=gen, dtype=torch.float64), 1)
    for t, kwargs in ((target, {}), (target, {"label_smoothing": 0.2}), (soft, {})):
        a = logits.clone().requires_grad_()
        b = logits.clone().requires_grad_()
        sim_loss(a, t, tree, **kwargs).backward()
        sim_loss(b, t, expected_dense, **kwargs).backward()
        torch.testing.assert_close(a.grad, b.grad)
    torch.testing.assert_close(
        SimLoss(tree)(logits, target), sim_loss(logits, target, expected_dense)
    )
    preds = torch.tensor([0, 1, 3, 2, 4, 0])
    assert float(mean_similarity(preds, target, tree)) == pytest.approx(
        float(mean_similarity(preds, target, expected_dense))
    )
    metric = MeanSimilarity(tree)
    metric.update(preds, target)
    assert float(metric.compute()) == pytest.approx(
        float(mean_similarity(preds, target, expected_dense))
    )


def test_similarity_transposed_default_is_the_exact_transpose():
    tree = _TreeSimilarity([0, 0, 1], s=0.5)
    values = torch.rand(4, 3, dtype=torch.float64)
    dense = tree.to_dense(torch.float64)
    torch.testing.assert_close(tree.similar_mass_transposed(values), values @ dense)


def test_class_order_r_and_num_classes_are_read_only():
    """A cached band can never go stale: r changes only through load_state_dict."""
    S = ClassOrder(5, 0.5)
    S.rows(torch.tensor([0]), torch.float32)
    with pytest.raises(AttributeError):
        S.r = 0.9  # type: ignore[misc]
    with pytest.raises(AttributeError):
        S.num_classes = 7  # type: ignore[misc]
    S.load_state_dict({"_extra_state": {"num_classes": 5, "r": 0.9}})
    torch.testing.assert_close(
        S.rows(torch.tensor([0]), torch.float32).dense, class_order(5, 0.9)[:1]
    )


@pytest.mark.parametrize(("num_classes", "r"), [(3000, 0.9), (5000, 0.999), (4000, 0.3)])
def test_class_order_mass_for_many_classes_needs_no_matrix(monkeypatch, num_classes, r):
    """Probability targets and smoothing at C > 2048: no (C, C) matrix, the same values."""
    from simloss.similarity import order, structured

    dense = class_order(num_classes, r, dtype=torch.float64)  # the reference, built first
    probs = torch.softmax(torch.randn(3, num_classes, dtype=torch.float64) * 3, 1)

    def refuse(*args, **kwargs):
        raise AssertionError("a (C, C) matrix was built")

    monkeypatch.setattr(structured, "class_order", refuse)
    monkeypatch.setattr(order, "class_order", refuse)
    mass = ClassOrder(num_classes, r).similar_mass(probs)
    torch.testing.assert_close(mass, probs @ dense.T, rtol=1e-12, atol=1e-300)


def test_class_order_smoothing_at_a_hundred_thousand_classes_runs():
    """The adversary's case: r = 0.999, C = 1e5 with label smoothing asked for 40 GB."""
    from simloss import sim_loss

    loss = sim_loss(
        torch.randn(2, 100_000),
        torch.tensor([3, 50_000]),
        ClassOrder(100_000, 0.999),
        label_smoothing=0.1,
    )
    assert torch.isfinite(loss)


def test_sparse_similarity_changed_in_place_is_checked_again() -> None:
    """Values written into the buffers after construction are used and checked, as a dense
    tensor given to ``sim_loss`` is: a valid change gives the float64 formula's value, an
    invalid one (5.0 used to give a negative loss) a one-line error."""
    order = np.abs(np.subtract.outer(np.arange(4), np.arange(4)))
    sparse = SparseSimilarity.from_dense(torch.from_numpy(0.5**order))
    logits = torch.randn(5, 4, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 3, 1])
    dense = SparseSimilarity.from_dense(torch.from_numpy(0.2**order))
    sparse.value.copy_(dense.value)
    sparse.index.copy_(dense.index)
    new = torch.from_numpy(0.2**order)
    formula = torch.logsumexp(logits, 1) - torch.logsumexp(logits + new[target].log(), 1)
    torch.testing.assert_close(sim_loss(logits, target, sparse), formula.mean(), rtol=1e-12, atol=0)
    sparse.value.fill_(5.0)
    with pytest.raises(ValueError, match=r"^Expected `value` to be finite and in \[0, 1\]"):
        sim_loss(logits, target, sparse)
    with pytest.raises(ValueError, match=r"^Expected `value` to be finite and in \[0, 1\]"):
        SimLoss(sparse)(logits, target)
