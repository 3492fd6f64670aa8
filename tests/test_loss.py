"""SimLoss module: state moves with the module; behaves as the functional form."""

from __future__ import annotations

import io
from pathlib import Path

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


def test_buffer_changed_in_place_is_checked_again():
    """A scheduled similarity (``criterion.similarity.copy_(S_t)``) is used and checked like
    a tensor given to ``sim_loss``: a valid change gives the float64 formula's value, an
    invalid one (5.0 used to give a negative loss) a one-line error naming the argument."""
    criterion = SimLoss(torch.eye(4, dtype=torch.float64))
    logits = torch.randn(6, 4, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 3, 0, 2])
    new = torch.from_numpy(0.3 ** np.abs(np.subtract.outer(np.arange(4), np.arange(4))))
    assert criterion.similarity is not None
    criterion.similarity.copy_(new)
    formula = torch.logsumexp(logits, 1) - torch.logsumexp(logits + new[target].log(), 1)
    torch.testing.assert_close(criterion(logits, target), formula.mean(), rtol=1e-12, atol=0)
    criterion.similarity.fill_(5.0)
    with pytest.raises(
        ValueError,
        match=r"^Expected `similarity` to have values in \[0, 1\], but found 5 at \(0, 0\)$",
    ):
        criterion(logits, target)
    with torch.no_grad():
        criterion.similarity.copy_(new)
        criterion.similarity[2, 2] = 0.5
    with pytest.raises(ValueError, match=r"ones on the diagonal.*at \(2, 2\)"):
        criterion(logits, target)


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


# ---------------------------------------------------------------- state round trips
def _round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_class_order_r_is_in_the_state_dict():
    """r = 0.9 loaded into a module built with r = 0.1 takes r = 0.9."""
    logits, target = torch.randn(6, 5), torch.randint(0, 5, (6,))
    saved = SimLoss(ClassOrder(5, 0.9))
    loaded = SimLoss(ClassOrder(5, 0.1))
    loaded.load_state_dict(_round_trip(saved.state_dict()))
    assert loaded.structured is not None and loaded.structured.r == 0.9
    torch.testing.assert_close(
        loaded(logits, target), sim_loss(logits, target, class_order(5, 0.9))
    )


def test_class_order_state_of_other_size_or_bad_r_is_refused():
    state = SimLoss(ClassOrder(5, 0.9)).state_dict()
    with pytest.raises(ValueError, match="state for 6 classes, but found one for 5"):
        SimLoss(ClassOrder(6, 0.9)).load_state_dict(state)
    state["structured._extra_state"] = {"num_classes": 5, "r": 1.5}
    target = SimLoss(ClassOrder(5, 0.2))
    with pytest.raises(ValueError, match=r"`r` in \[0, 1\), but found 1.5"):
        target.load_state_dict(state)
    assert target.structured is not None and target.structured.r == 0.2


def test_loaded_dense_similarity_is_validated_and_nothing_changes_on_error():
    """A dense S of 5.0 is refused, not used for a negative loss."""
    criterion = SimLoss(torch.eye(3))
    state = criterion.state_dict()
    state["similarity"] = torch.full((3, 3), 5.0)
    with pytest.raises(ValueError, match="values in \\[0, 1\\], but found 5 at \\(0, 0\\)"):
        criterion.load_state_dict(state)
    assert torch.equal(criterion.similarity, torch.eye(3))


def test_loaded_sparse_similarity_is_validated():
    criterion = SimLoss(SparseSimilarity.from_dense(class_order(4, 0.5)))
    state = criterion.state_dict()
    state["structured.value"] = state["structured.value"] * 3
    with pytest.raises(ValueError, match="finite and in \\[0, 1\\]"):
        criterion.load_state_dict(state)


def test_configuration_is_in_the_state_dict_and_checked_on_load():
    saved = SimLoss(
        torch.eye(4), ignore_index=2, reduction="sum", label_smoothing=0.2, input_type="log_probs"
    )
    loaded = SimLoss(torch.eye(4))
    loaded.load_state_dict(_round_trip(saved.state_dict()))
    assert (loaded.ignore_index, loaded.reduction, loaded.label_smoothing, loaded.input_type) == (
        2,
        "sum",
        0.2,
        "log_probs",
    )
    logits, target = torch.log_softmax(torch.randn(5, 4), 1), torch.tensor([0, 1, 2, 3, 2])
    torch.testing.assert_close(loaded(logits, target), saved(logits, target))
    state = saved.state_dict()
    state["_extra_state"] = {**state["_extra_state"], "reduction": "avg"}
    with pytest.raises(ValueError, match="`reduction`.*'avg'"):
        loaded.load_state_dict(state)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_distributed_data_parallel_training_equals_one_process(tmp_path):
    """Two gloo processes with DDP on halves of the batch train exactly as one process."""
    import torch.multiprocessing as mp

    import loss_distributed

    mp.spawn(
        loss_distributed.worker,
        args=(2, str(tmp_path / "store"), str(tmp_path)),
        nprocs=2,
        join=True,
    )
    single = loss_distributed.make_model()
    loss_distributed.train(single, *loss_distributed.data())
    for rank in range(2):
        state = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for key, value in single.state_dict().items():
            torch.testing.assert_close(state[key], value, rtol=1e-10, atol=1e-12)


def test_state_dicts_of_tensors_only_load_and_keep_the_configuration():
    """A state dict without `_extra_state` loads; the module keeps its own configuration."""
    dense = SimLoss(torch.eye(3), label_smoothing=0.1)
    dense.load_state_dict({"similarity": class_order(3, 0.5)})
    assert dense.label_smoothing == 0.1
    torch.testing.assert_close(dense.similarity, class_order(3, 0.5))
    order = SimLoss(ClassOrder(4, 0.2))
    order.load_state_dict({})
    assert order.structured is not None and order.structured.r == 0.2
    model = torch.nn.Sequential(torch.nn.Linear(2, 4))
    model.criterion = SimLoss(ClassOrder(4, 0.2))
    old = {k: v for k, v in model.state_dict().items() if "_extra_state" not in k}
    model.load_state_dict(old)


def test_state_dicts_written_by_this_version_load():
    """tests/data/simloss_state_dicts.pt holds the state dicts of three configured modules.

    Loaded into modules built with other settings, each restores the saved similarity,
    weight and configuration, and gives the loss of a module built with those settings.
    """
    states = torch.load(
        Path(__file__).parent / "data" / "simloss_state_dicts.pt", weights_only=True
    )
    torch.manual_seed(5)
    scores = torch.randn(6, 4).log_softmax(1)
    target = torch.tensor([0, 1, 2, 3, 3, 1])

    dense = SimLoss(torch.eye(4), weight=torch.ones(4))
    dense.load_state_dict(states["dense"])
    weight = torch.tensor([1.0, 2.0, 0.5, 1.0])
    assert (dense.ignore_index, dense.reduction, dense.label_smoothing, dense.input_type) == (
        3,
        "sum",
        0.1,
        "log_probs",
    )
    torch.testing.assert_close(dense.similarity, class_order(4, 0.5), rtol=0, atol=0)
    torch.testing.assert_close(dense.weight, weight, rtol=0, atol=0)
    built = SimLoss(
        class_order(4, 0.5),
        weight=weight,
        ignore_index=3,
        reduction="sum",
        label_smoothing=0.1,
        input_type="log_probs",
    )
    torch.testing.assert_close(dense(scores, target), built(scores, target), rtol=0, atol=0)

    order = SimLoss(ClassOrder(5, 0.9))
    order.load_state_dict(states["class_order"])
    assert order.structured is not None and order.structured.r == 0.3
    assert order.reduction == "none"

    sparse = SimLoss(SparseSimilarity.from_dense(class_order(4, 0.7)))
    sparse.load_state_dict(states["sparse"])
    assert not sparse.require_unit_diagonal
    assert sparse.structured is not None
    torch.testing.assert_close(sparse.structured.to_dense(), class_order(4, 0.2), rtol=0, atol=0)
    expected = SimLoss(class_order(4, 0.2))(scores, target)
    torch.testing.assert_close(sparse(scores, target), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("as_path", [str, Path], ids=["str", "Path"])
def test_a_file_name_as_similarity_is_refused_with_how_to_load_it(tmp_path, as_path):
    """``sim_loss(x, y, "S.npy")`` and ``SimLoss(Path("S.npy"))``: one line that lists the kinds
    taken and how to load the file; loaded with numpy, S = I gives cross-entropy."""
    from simloss.similarity import save_similarity

    written = save_similarity(torch.eye(4), tmp_path / "S")
    npy = as_path(next(p for p in written if p.suffix == ".npy"))
    logits, target = torch.randn(5, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 1])
    message = (
        r"^Expected `similarity` to be a \(C, C\) torch.Tensor or numpy.ndarray, a torch sparse "
        r"tensor or a SimilarityOperator \(e.g. simloss.ClassOrder\), but found \w+ .*S.npy.*; "
        r"load a saved matrix first, e.g. numpy.load\(path\)[^\n]*$"
    )
    with pytest.raises(TypeError, match=message):
        sim_loss(logits, target, npy)
    with pytest.raises(TypeError, match=message):
        SimLoss(npy)
    loaded = np.load(npy).astype(np.float64)
    expected = torch.nn.functional.cross_entropy(logits, target)
    torch.testing.assert_close(SimLoss(loaded)(logits, target), expected, rtol=1e-12, atol=0)
