"""ClassOrder and SparseSimilarity: rows and products equal the dense matrix's."""

from __future__ import annotations

import pytest
import torch

from simloss import ClassOrder, SparseSimilarity
from simloss.similarity import class_order


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
    with pytest.raises(ValueError, match="duplicate"):
        SparseSimilarity(torch.tensor([[0, 0], [1, 0]]), torch.tensor([[1.0, 0.5], [1.0, 0.0]]))
    with pytest.raises(TypeError, match="`index`"):
        SparseSimilarity(torch.tensor([[0.0]]), torch.tensor([[1.0]]))


def test_structured_state_moves_with_module():
    sparse = SparseSimilarity.from_dense(class_order(4, 0.5))
    moved = sparse.to(torch.float64)
    assert moved.value.dtype == torch.float64
    assert set(moved.state_dict()) == {"index", "value"}
