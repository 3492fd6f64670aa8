"""SimLoss module: state moves with the module; behaves as the functional form."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from simloss import ClassOrder, SimLoss, SparseSimilarity, sim_loss
from simloss.similarity import class_order


def test_dense_similarity_is_a_buffer_in_state_dict():
    criterion = SimLoss(class_order(4, 0.5), weight=torch.ones(4))
    buffers = dict(criterion.named_buffers())
    assert set(buffers) == {"similarity", "weight"}
    assert list(criterion.parameters()) == []
    state = criterion.state_dict()
    torch.testing.assert_close(state["similarity"], class_order(4, 0.5))


def test_module_moves_with_to_and_round_trips_state_dict():
    criterion = SimLoss(np.eye(3) * 0 + class_order(3, 0.2, dtype=torch.float64).numpy())
    criterion = criterion.to(torch.float32)
    assert criterion.similarity is not None and criterion.similarity.dtype == torch.float32
    buffer = io.BytesIO()
    torch.save(criterion.state_dict(), buffer)
    buffer.seek(0)
    fresh = SimLoss(torch.eye(3))
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    torch.testing.assert_close(fresh.similarity, criterion.similarity)


def test_module_copies_its_matrix():
    S = class_order(3, 0.5)
    criterion = SimLoss(S)
    S[0, 1] = 0.0
    assert criterion.similarity is not None and criterion.similarity[0, 1] == 0.5


@pytest.mark.parametrize(
    "structured", [ClassOrder(6, 0.4), SparseSimilarity.from_dense(class_order(6, 0.4))]
)
def test_structured_similarity_is_a_submodule(structured):
    criterion = SimLoss(structured, reduction="sum", label_smoothing=0.1)
    assert criterion.structured is structured
    assert criterion.num_classes == 6
    logits, target = torch.randn(5, 6), torch.randint(0, 6, (5,))
    expected = sim_loss(logits, target, class_order(6, 0.4), reduction="sum", label_smoothing=0.1)
    torch.testing.assert_close(criterion(logits, target), expected, rtol=1e-5, atol=1e-6)


def test_torch_sparse_input_becomes_sparse_similarity():
    criterion = SimLoss(class_order(5, 0.3).to_sparse())
    assert isinstance(criterion.structured, SparseSimilarity)
    assert "structured.index" in criterion.state_dict()


def test_validates_once_at_construction():
    with pytest.raises(ValueError, match="diagonal"):
        SimLoss(torch.full((3, 3), 0.5))
    SimLoss(torch.full((3, 3), 0.5), require_unit_diagonal=False)


def test_rejects_bad_configuration():
    with pytest.raises(ValueError, match="`reduction`"):
        SimLoss(torch.eye(2), reduction="batchmean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`input_type`"):
        SimLoss(torch.eye(2), input_type="scores")  # type: ignore[arg-type]


def test_drop_in_training_step_matches_cross_entropy():
    torch.manual_seed(0)
    model_a = torch.nn.Linear(4, 3)
    model_b = torch.nn.Linear(4, 3)
    model_b.load_state_dict(model_a.state_dict())
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    for model, criterion in (
        (model_a, torch.nn.CrossEntropyLoss()),
        (model_b, SimLoss(torch.eye(3))),
    ):
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        for _ in range(5):
            opt.zero_grad()
            criterion(model(x), y).backward()
            opt.step()
    for pa, pb in zip(model_a.parameters(), model_b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)


def test_repr_names_configuration():
    text = repr(SimLoss(ClassOrder(10, 0.5), label_smoothing=0.1, input_type="probs"))
    assert "num_classes=10" in text and "r=0.5" in text and "input_type='probs'" in text
