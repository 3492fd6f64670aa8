"""Every metric, function and accumulating class, against an independent NumPy computation.

Random data, parametrised over the form of ``preds`` (logits, probabilities, class
indices), how the set is split into batches (including an empty batch), the
``ignore_index`` and the available devices.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import metrics_reference as ref
import numpy as np
import pytest
import torch

from simloss import ClassOrder, SparseSimilarity
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
    mean_predicted_distribution,
    mean_similarity,
    mean_squared_error,
    mistake_severity,
    off_by_k_accuracy,
    superclass_accuracy,
)

C = 7
N = 60
_rng = np.random.default_rng(20200301)
VALUES = np.sort(_rng.uniform(1.0, 90.0, C))  # e.g. the age each class stands for
MAPPING = np.array([0, 0, 1, 1, 1, 2, 2])
_A = _rng.uniform(0.0, 1.0, (C, C))
SIM = (_A + _A.T) / 2
np.fill_diagonal(SIM, 1.0)
DIST = _rng.integers(0, 5, (C, C)).astype(float)
np.fill_diagonal(DIST, 0.0)
R = 0.6
ORDER_SIM = R ** np.abs(np.arange(C)[:, None] - np.arange(C)[None, :])
SPARSE_SIM = np.where(SIM > 0.5, SIM, 0.0)  # at most a few non-zeros per row

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
FORMS = ["logits", "probs", "indices"]
SPLITS = {"whole": [N], "equal": [20, 20, 20], "uneven-with-empty": [1, 0, 33, 26]}
IGNORE = [None, -100, 3]


@dataclass(frozen=True)
class Case:
    """One metric: its function, its class and the NumPy reference."""

    func: Callable[..., torch.Tensor]
    make: Callable[..., Any]
    ref: Callable[[np.ndarray, np.ndarray, np.ndarray], float]  # (pred, target, scores)
    scores_only: bool = False


CASES = {
    "accuracy": Case(accuracy, Accuracy, lambda p, t, s: ref.accuracy(p, t)),
    "top3": Case(
        lambda p, t, **kw: accuracy(p, t, top_k=3, **kw),
        lambda **kw: Accuracy(3, **kw),
        lambda p, t, s: ref.top_k_accuracy(s, t, 3),
        scores_only=True,
    ),
    "mae-values": Case(
        lambda p, t, **kw: mean_absolute_error(p, t, class_values=VALUES, **kw),
        lambda **kw: MeanAbsoluteError(class_values=VALUES, **kw),
        lambda p, t, s: ref.mean_abs(p, t, VALUES),
    ),
    "mae-indices": Case(
        lambda p, t, **kw: mean_absolute_error(p, t, num_classes=C, **kw),
        lambda **kw: MeanAbsoluteError(num_classes=C, **kw),
        lambda p, t, s: ref.mean_abs(p, t, None),
    ),
    "mse-values": Case(
        lambda p, t, **kw: mean_squared_error(p, t, class_values=VALUES.tolist(), **kw),
        lambda **kw: MeanSquaredError(class_values=VALUES.tolist(), **kw),
        lambda p, t, s: ref.mean_sq(p, t, VALUES),
    ),
    "mse-indices": Case(
        mean_squared_error, MeanSquaredError, lambda p, t, s: ref.mean_sq(p, t, None)
    ),
    "off-by-2": Case(
        lambda p, t, **kw: off_by_k_accuracy(p, t, 2, **kw),
        lambda **kw: OffByKAccuracy(2, **kw),
        lambda p, t, s: ref.off_by_k(p, t, 2, None),
    ),
    "off-by-15-values": Case(
        lambda p, t, **kw: off_by_k_accuracy(p, t, 15.0, class_values=VALUES, **kw),
        lambda **kw: OffByKAccuracy(15.0, class_values=torch.from_numpy(VALUES), **kw),
        lambda p, t, s: ref.off_by_k(p, t, 15.0, VALUES),
    ),
    "sa": Case(
        lambda p, t, **kw: superclass_accuracy(p, t, MAPPING, **kw),
        lambda **kw: SuperclassAccuracy(MAPPING, **kw),
        lambda p, t, s: ref.superclass_acc(p, t, MAPPING),
    ),
    "fsa": Case(
        lambda p, t, **kw: failed_superclass_accuracy(p, t, MAPPING.tolist(), **kw),
        lambda **kw: FailedSuperclassAccuracy(torch.from_numpy(MAPPING), **kw),
        lambda p, t, s: ref.failed_superclass_acc(p, t, MAPPING),
    ),
    "mean-similarity": Case(
        lambda p, t, **kw: mean_similarity(p, t, SIM, **kw),
        lambda **kw: MeanSimilarity(torch.from_numpy(SIM), **kw),
        lambda p, t, s: ref.mean_sim(p, t, SIM),
    ),
    "mean-similarity-class-order": Case(
        lambda p, t, **kw: mean_similarity(p, t, ClassOrder(C, R), **kw),
        lambda **kw: MeanSimilarity(ClassOrder(C, R), **kw),
        lambda p, t, s: ref.mean_sim(p, t, ORDER_SIM),
    ),
    "mean-similarity-sparse": Case(
        lambda p, t, **kw: mean_similarity(p, t, SparseSimilarity.from_dense(SPARSE_SIM), **kw),
        lambda **kw: MeanSimilarity(SparseSimilarity.from_dense(SPARSE_SIM), **kw),
        lambda p, t, s: ref.mean_sim(p, t, SPARSE_SIM),
    ),
    "mistake-severity": Case(
        lambda p, t, **kw: mistake_severity(p, t, DIST, **kw),
        lambda **kw: MistakeSeverity(DIST, **kw),
        lambda p, t, s: ref.severity(p, t, DIST),
    ),
}


def make_data(seed: int, ignore_index: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Random logits (N, C) and targets (N,), some targets set to ``ignore_index``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, (N, C))
    target = rng.integers(0, C, N)
    # make sure there are exact hits, near misses and far misses
    target[:10] = logits[:10].argmax(axis=1)
    if ignore_index is not None and ignore_index < 0:
        target[rng.random(N) < 0.2] = ignore_index
    return logits, target


def as_preds(logits: np.ndarray, form: str, device: str) -> torch.Tensor:
    if form == "logits":
        return torch.tensor(logits, dtype=torch.float32, device=device)
    if form == "probs":
        return torch.softmax(torch.tensor(logits, dtype=torch.float64, device=device), dim=1)
    return torch.tensor(logits.argmax(axis=1), device=device)


def batches(x: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    return list(torch.split(x, sizes))


def assert_same(actual: torch.Tensor, expected: float) -> None:
    assert actual.shape == ()
    if math.isnan(expected):
        assert torch.isnan(actual), f"expected nan, got {actual}"
    else:
        assert float(actual) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("ignore_index", IGNORE, ids=lambda i: f"ignore={i}")
@pytest.mark.parametrize("split", list(SPLITS))
@pytest.mark.parametrize(
    ("name", "form"),
    [
        pytest.param(name, form, id=f"{name}-{form}")
        for name, case in CASES.items()
        for form in FORMS
        if not (case.scores_only and form == "indices")  # top-k needs scores
    ],
)
def test_function_and_class_match_numpy(name, form, split, ignore_index, device):
    case = CASES[name]
    logits, target_np = make_data(sum(map(ord, name)), ignore_index)
    kept = ref.keep(target_np, ignore_index)
    expected = case.ref(logits[kept].argmax(axis=1), target_np[kept], logits[kept])
    preds = as_preds(logits, form, device)
    target = torch.tensor(target_np, device=device)

    assert_same(case.func(preds, target, ignore_index=ignore_index).cpu(), expected)

    metric = case.make(ignore_index=ignore_index)
    for p, t in zip(batches(preds, SPLITS[split]), batches(target, SPLITS[split]), strict=True):
        metric.update(p, t)
    value = metric.compute()
    assert value.device.type == device
    assert_same(value.cpu(), expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("ignore_index", IGNORE, ids=lambda i: f"ignore={i}")
@pytest.mark.parametrize("split", list(SPLITS))
@pytest.mark.parametrize("form", ["logits", "probs"])
def test_mean_predicted_distribution_matches_numpy(form, split, ignore_index, device):
    logits, target_np = make_data(7, ignore_index)
    kept = ref.keep(target_np, ignore_index)
    mean, per_class, counts = ref.distribution(ref.softmax(logits[kept]), target_np[kept], C)
    preds = as_preds(logits, form, device)
    if form == "logits":  # compare the softmax at float64 precision
        preds = torch.tensor(logits, dtype=torch.float64, device=device)
    target = torch.tensor(target_np, device=device)

    result = mean_predicted_distribution(preds, target, input_type=form, ignore_index=ignore_index)
    metric = MeanPredictedDistribution(C, input_type=form, ignore_index=ignore_index)
    for p, t in zip(batches(preds, SPLITS[split]), batches(target, SPLITS[split]), strict=True):
        metric.update(p, t)
    for got in (result, metric.compute()):
        assert got.per_class is not None and got.class_counts is not None
        np.testing.assert_allclose(got.mean.cpu().numpy(), mean, rtol=1e-10)
        np.testing.assert_allclose(got.per_class.cpu().numpy(), per_class, rtol=1e-10)
        np.testing.assert_array_equal(got.class_counts.cpu().numpy(), counts)


def test_mean_predicted_distribution_without_target():
    logits, _ = make_data(8, None)
    result = mean_predicted_distribution(torch.from_numpy(logits))
    np.testing.assert_allclose(result.mean.numpy(), ref.softmax(logits).mean(axis=0), rtol=1e-12)
    assert result.per_class is None and result.class_counts is None


@pytest.mark.parametrize("k", [1, 2, 3, C])
def test_top_k_with_many_ties_follows_a_stable_sort(k):
    """Ties are broken toward the lower class index, as a stable descending sort would."""
    rng = np.random.default_rng(k)
    scores = rng.integers(0, 3, (200, C)).astype(np.float32)
    target = rng.integers(0, C, 200)
    got = accuracy(torch.from_numpy(scores), torch.from_numpy(target), top_k=k)
    assert_same(got, ref.top_k_accuracy(scores, target, k))
    if k == 1:
        assert_same(got, ref.accuracy(scores.argmax(axis=1), target))
