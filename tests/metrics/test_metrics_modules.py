"""Metric classes: state handling (reset, devices, dtypes), forward, bad input, torch.distributed."""

from __future__ import annotations

import itertools
import math

import metrics_distributed
import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from hypothesis import given, settings
from hypothesis import strategies as st

from simloss import ClassOrder
from simloss.metrics import (
    Accuracy,
    FailedSuperclassAccuracy,
    MeanAbsoluteError,
    MeanPredictedDistribution,
    MeanSimilarity,
    MeanSquaredError,
    MistakeSeverity,
    OffByKAccuracy,
    SuperclassAccuracy,
    accuracy,
    failed_superclass_accuracy,
    mean_absolute_error,
    mean_similarity,
)

C = 5
MAKERS = {
    "acc": lambda: Accuracy(),
    "top2": lambda: Accuracy(top_k=2),
    "mae": lambda: MeanAbsoluteError(class_values=[1.0, 2.0, 4.0, 8.0, 16.0]),
    "mse": lambda: MeanSquaredError(num_classes=C),
    "off1": lambda: OffByKAccuracy(1),
    "sa": lambda: SuperclassAccuracy([0, 0, 1, 1, 1]),
    "fsa": lambda: FailedSuperclassAccuracy([0, 0, 1, 1, 1]),
    "sim": lambda: MeanSimilarity(torch.rand(C, C, generator=torch.Generator().manual_seed(0))),
    "sim-order": lambda: MeanSimilarity(ClassOrder(C, 0.3)),
    "severity": lambda: MistakeSeverity(np.ones((C, C)) - np.eye(C)),
}


def batch(seed: int, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, C, generator=generator), torch.randint(0, C, (n,), generator=generator)


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to float summation order (sums over batches vs over the whole), or both nan."""
    return bool(torch.isclose(a, b, rtol=1e-12, atol=1e-15, equal_nan=True))


@pytest.mark.parametrize("name", list(MAKERS))
def test_reset_compute_and_continue(name):
    metric = MAKERS[name]()
    assert math.isnan(float(metric.compute()))  # nothing seen yet: undefined
    (p1, t1), (p2, t2) = batch(1), batch(2)
    metric.update(p1, t1)
    after_one = metric.compute()
    assert same(metric.compute(), after_one)  # compute does not change the states
    metric.update(p2, t2)
    fresh = MAKERS[name]()
    fresh.update(torch.cat([p1, p2]), torch.cat([t1, t2]))
    assert same(metric.compute(), fresh.compute())
    metric.reset()
    assert math.isnan(float(metric.compute()))
    metric.update(p1, t1)
    assert same(metric.compute(), after_one)


@pytest.mark.parametrize("name", list(MAKERS))
def test_forward_returns_the_batch_value_and_accumulates(name):
    metric = MAKERS[name]()
    (p1, t1), (p2, t2) = batch(3), batch(4)
    first = metric(p1, t1)
    second = metric(p2, t2)
    alone = MAKERS[name]()
    alone.update(p2, t2)
    assert same(second, alone.compute())
    both = MAKERS[name]()
    both.update(torch.cat([p1, p2]), torch.cat([t1, t2]))
    assert same(metric.compute(), both.compute())
    assert first.shape == ()


@pytest.mark.parametrize("name", list(MAKERS))
def test_bad_update_leaves_the_states_alone(name):
    metric = MAKERS[name]()
    p, t = batch(5)
    metric.update(p, t)
    before = metric.compute()
    with pytest.raises(ValueError, match="`target`"):
        metric.update(p, torch.cat([t[:-1], torch.tensor([C])]))  # last target out of range
    with pytest.raises(TypeError, match="`preds` to be a torch.Tensor"):
        metric.update(p.tolist(), t)
    assert same(metric.compute(), before)


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(sorted(MAKERS)),
    st.lists(st.integers(0, 40), min_size=0, max_size=6),
    st.integers(0, 2**31 - 1),
)
def test_any_batching_gives_the_whole_set_value(name, cuts, seed):
    """Updating over batches cut anywhere (empty ones included) equals one update on all."""
    p, t = batch(seed, 40)
    bounds = [0, *sorted(cuts), 40]
    metric = MAKERS[name]()
    for lo, hi in itertools.pairwise(bounds):
        metric.update(p[lo:hi], t[lo:hi])
    whole = MAKERS[name]()
    whole.update(p, t)
    assert same(metric.compute(), whole.compute())


def test_states_are_non_persistent_buffers_that_keep_their_dtype():
    metric = MeanAbsoluteError(class_values=[1, 2, 3])
    assert {n.split("_")[0] for n in metric.metric_state} == {"numerator", "denominator"}
    assert set(dict(metric.named_buffers())) == {"class_values"}  # configuration
    assert list(metric.parameters()) == []
    assert metric.state_dict() == {}
    model = torch.nn.Sequential(torch.nn.Linear(3, 3))
    model.add_module("metric", metric)
    model.half()
    assert model[0].weight.dtype == torch.float16  # the model is cast ...
    states = {n.split("_")[0]: s for n, s in metric.metric_state.items()}
    assert states["numerator"].dtype == torch.float64  # ... the metric's sums are not
    assert states["denominator"].dtype == torch.int64
    assert metric.class_values.dtype == torch.float64
    metric.update(torch.tensor([0, 2]), torch.tensor([1, 1]))
    assert float(metric.compute()) == 1.0


def test_configuration_is_copied():
    mapping = np.array([0, 0, 1])
    values = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    sa = SuperclassAccuracy(mapping)
    mae = MeanAbsoluteError(class_values=values)
    mapping[:] = 5
    values[:] = 0.0
    sa.update(torch.tensor([1]), torch.tensor([0]))
    mae.update(torch.tensor([2]), torch.tensor([0]))
    assert float(sa.compute()) == 1.0 and float(mae.compute()) == 2.0


def test_structured_similarity_is_a_submodule():
    metric = MeanSimilarity(ClassOrder(C, 0.5))
    assert isinstance(metric.similarity, ClassOrder)
    assert "similarity" in dict(metric.named_children())
    p, t = batch(6)
    metric.update(p, t)
    dense = 0.5 ** (torch.arange(C)[:, None] - torch.arange(C)[None, :]).abs().double()
    assert float(metric.compute()) == pytest.approx(float(mean_similarity(p, t, dense)))


def test_mean_predicted_distribution_module():
    metric = MeanPredictedDistribution(C)
    result = metric.compute()
    assert torch.isnan(result.mean).all() and torch.isnan(result.per_class).all()
    p, t = batch(7)
    metric.update(p[:5], t[:5])
    metric.update(p[5:], t[5:])
    got = metric.compute()
    probs = torch.softmax(p.double(), dim=1)
    torch.testing.assert_close(got.mean, probs.mean(dim=0))
    assert got.class_counts.tolist() == torch.bincount(t, minlength=C).tolist()
    with pytest.raises(TypeError, match="`target` to be a torch.Tensor"):
        metric.update(p, None)
    with pytest.raises(ValueError, match="one column per class"):
        metric.update(torch.randn(2, C + 1), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="`num_classes`"):
        MeanPredictedDistribution(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`input_type`"):
        MeanPredictedDistribution(C, input_type="softmax")


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: Accuracy(top_k=0), ValueError, "`top_k`"),
        (lambda: Accuracy(ignore_index="pad"), TypeError, "`ignore_index`"),
        (lambda: OffByKAccuracy(-0.5), ValueError, "`k`"),
        (lambda: MeanAbsoluteError(class_values=[1, 2], num_classes=3), ValueError, "one entry"),
        (lambda: SuperclassAccuracy([0.5, 1.0]), TypeError, "`fine_to_coarse`"),
        (lambda: FailedSuperclassAccuracy([]), ValueError, "non-empty"),
        (lambda: MeanSimilarity(torch.ones(2, 3)), ValueError, "square"),
        (lambda: MistakeSeverity(-np.eye(2)), ValueError, ">= 0"),
    ],
)
def test_bad_configuration_raises(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_class_matches_function_with_ignore_index():
    p, t = batch(8, 40)
    t[::3] = -1
    fsa = FailedSuperclassAccuracy([0, 0, 1, 1, 1], ignore_index=-1)
    mae = MeanAbsoluteError(ignore_index=-1)
    for chunk in range(0, 40, 9):
        fsa.update(p[chunk : chunk + 9], t[chunk : chunk + 9])
        mae.update(p[chunk : chunk + 9], t[chunk : chunk + 9])
    expected_fsa = failed_superclass_accuracy(p, t, [0, 0, 1, 1, 1], ignore_index=-1)
    assert same(fsa.compute(), expected_fsa)
    assert same(mae.compute(), mean_absolute_error(p, t, ignore_index=-1))


def test_repr_names_the_configuration():
    assert "top_k=3" in repr(Accuracy(3))
    assert "k=2.0" in repr(OffByKAccuracy(2))
    assert "num_classes=4" in repr(MeanPredictedDistribution(4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_states_follow_the_input_device():
    metric = SuperclassAccuracy([0, 0, 1, 1, 1])
    p, t = batch(9)
    metric.update(p.cuda(), t.cuda())
    assert all(s.device.type == "cuda" for s in metric.metric_state.values())
    assert all(b.device.type == "cuda" for b in metric.buffers())
    assert metric.compute().device.type == "cuda"
    metric.update(p, t)  # back on the CPU: the sums move along, nothing is lost
    expected = SuperclassAccuracy([0, 0, 1, 1, 1])
    expected.update(torch.cat([p, p]), torch.cat([t, t]))
    assert same(metric.compute(), expected.compute())
    assert float(accuracy(p.cuda(), t.cuda())) == float(accuracy(p, t))


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_compute_sums_over_processes(tmp_path):
    """Two gloo processes with uneven shards give the whole set's values, twice in a row."""
    world_size = len(metrics_distributed.SHARDS)
    mp.spawn(
        metrics_distributed.worker,
        args=(world_size, str(tmp_path / "store"), str(tmp_path)),
        nprocs=world_size,
        join=True,
    )
    logits, target = metrics_distributed.data()
    single = metrics_distributed.make_metrics()
    for metric in single.values():
        metric.update(logits, target)
    expected = metrics_distributed.results(single)
    for rank in range(world_size):
        saved = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for run in ("first", "second"):
            assert saved[run].keys() == expected.keys()
            for key, want in expected.items():
                torch.testing.assert_close(saved[run][key], want, equal_nan=True, msg=key)


def test_metrics_are_torchmetrics_metrics_that_work_in_a_collection():
    from torchmetrics import Metric, MetricCollection

    collection = MetricCollection(
        {
            "acc": Accuracy(),
            "mae": MeanAbsoluteError(class_values=[1.0, 2.0, 4.0, 8.0, 16.0]),
            "sa": SuperclassAccuracy([0, 0, 1, 1, 1]),
        }
    )
    assert all(isinstance(m, Metric) for m in collection.values())
    (p1, t1), (p2, t2) = batch(11), batch(12)
    step = collection(p1, t1)  # forward: the batch's values, accumulated
    assert float(step["acc"]) == float(accuracy(p1, t1))
    collection.update(p2, t2)
    p, t = torch.cat([p1, p2]), torch.cat([t1, t2])
    got = collection.compute()
    assert float(got["acc"]) == float(accuracy(p, t))
    assert same(got["mae"], mean_absolute_error(p, t, class_values=[1.0, 2.0, 4.0, 8.0, 16.0]))
    collection.reset()
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert math.isnan(float(collection["acc"].compute()))


def test_metric_classes_pickle_and_clone():
    import pickle

    metric = MeanAbsoluteError(class_values=[1.0, 2.0, 4.0, 8.0, 16.0], decoder="median")
    p, t = batch(13)
    metric.update(p, t)
    for copy in (pickle.loads(pickle.dumps(metric)), metric.clone()):
        assert type(copy) is type(metric)
        assert same(copy.compute(), metric.compute())


def test_a_collection_never_shares_states_between_different_statistics():
    # torchmetrics' compute groups share states between metrics whose states agree after
    # the first update: accuracy and SA agree on a first batch without mistakes
    from torchmetrics import MetricCollection

    mapping = [0, 0, 1, 1, 1]
    collection = MetricCollection(
        {
            "acc": Accuracy(),
            "sa": SuperclassAccuracy(mapping),
            "top2": Accuracy(top_k=2),
            "acc_again": Accuracy(),  # the same statistics: sharing is right
        }
    )
    right = torch.tensor([[3.0, 0.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0, 0.0]])
    collection.update(right, torch.tensor([0, 1]))
    p, t = batch(14)
    collection.update(p, t)
    every_p, every_t = torch.cat([right, p]), torch.cat([torch.tensor([0, 1]), t])
    got = collection.compute()
    assert same(got["acc"], accuracy(every_p, every_t))
    assert same(got["acc_again"], accuracy(every_p, every_t))
    assert same(got["top2"], accuracy(every_p, every_t, top_k=2))
    expected_sa = SuperclassAccuracy(mapping)
    expected_sa.update(every_p, every_t)
    assert same(got["sa"], expected_sa.compute())


def test_every_registered_metric_is_public_and_comes_with_import_star() -> None:
    import simloss.metrics as metrics

    # the package's own modules (a script may register more at run time, e.g. the docs)
    registered = [
        d for d in metrics.declarations() if d.function.__module__.startswith("simloss.metrics.")
    ]
    assert {d.class_name for d in registered} == set(metrics.CLASSES)
    assert "GeometricMeanSensitivity" in metrics.CLASSES
    names: dict[str, object] = {}
    exec("from simloss.metrics import *", names)  # the public API as users get it
    for declaration in registered:
        assert declaration.class_name in metrics.__all__, declaration.class_name
        assert declaration.function.__name__ in metrics.__all__, declaration.function.__name__
        assert names[declaration.function.__name__] is declaration.function
        assert names[declaration.class_name] is declaration.metric_class
    assert len(metrics.__all__) == len(set(metrics.__all__))
