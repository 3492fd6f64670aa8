"""Decoders beyond the argmax (expectation, median) for MAE, MSE and off-by-k, against NumPy."""

from __future__ import annotations

import math

import metrics_reference as ref
import numpy as np
import pytest
import torch

from simloss.metrics import (
    MeanAbsoluteError,
    MeanSquaredError,
    OffByKAccuracy,
    compute_metrics,
    mean_absolute_error,
    mean_squared_error,
    off_by_k_accuracy,
)

C = 9
N = 80
_rng = np.random.default_rng(14)
# not sorted, not equidistant: the median must follow the values, not the class indices
VALUES = _rng.permutation(np.round(np.sort(_rng.uniform(1.0, 90.0, C)), 2))
SPLITS = {"whole": [N], "uneven-with-empty": [5, 0, 40, 35]}


def make_data(seed: int, ignore_index: int | None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, (N, C))
    target = rng.integers(0, C, N)
    if ignore_index is not None:
        target[rng.random(N) < 0.2] = ignore_index
    return logits, target


def decoded(probs: np.ndarray, values: np.ndarray, decoder: str) -> np.ndarray:
    if decoder == "expectation":
        return ref.expectation(probs, values)
    return ref.median(probs, values)


@pytest.mark.parametrize("values", ["values", "indices"])
@pytest.mark.parametrize("ignore_index", [None, -100], ids=lambda i: f"ignore={i}")
@pytest.mark.parametrize("split", list(SPLITS))
@pytest.mark.parametrize("form", ["logits", "probs"])
@pytest.mark.parametrize("decoder", ["expectation", "median"])
def test_mae_mse_off_by_k_match_numpy(decoder, form, split, ignore_index, values):
    logits, target_np = make_data(3, ignore_index)
    kept = target_np != ignore_index if ignore_index is not None else np.ones(N, bool)
    grid = VALUES if values == "values" else np.arange(C, dtype=float)
    class_values = VALUES if values == "values" else None
    probs_np = ref.softmax(logits[kept])
    diff = decoded(probs_np, grid, decoder) - grid[target_np[kept]]
    k = 12.0 if values == "values" else 1.5
    expected = {
        "mae": np.abs(diff).mean(),
        "mse": (diff**2).mean(),
        "off": (np.abs(diff) <= k).mean(),
    }
    preds = torch.tensor(logits)  # float64 logits: softmax at NumPy's precision
    if form == "probs":
        preds = torch.softmax(preds, dim=1)
    target = torch.tensor(target_np)
    kw = {
        "class_values": class_values,
        "ignore_index": ignore_index,
        "decoder": decoder,
        "input_type": form,
    }
    got = {
        "mae": mean_absolute_error(preds, target, **kw),
        "mse": mean_squared_error(preds, target, **kw),
        "off": off_by_k_accuracy(preds, target, k, **kw),
    }
    metrics = {
        "mae": MeanAbsoluteError(**kw),
        "mse": MeanSquaredError(**kw),
        "off": OffByKAccuracy(k, **kw),
    }
    pieces = zip(torch.split(preds, SPLITS[split]), torch.split(target, SPLITS[split]), strict=True)
    for p, t in pieces:
        for metric in metrics.values():
            metric.update(p, t)
    for name, value in expected.items():
        assert float(got[name]) == pytest.approx(value, rel=1e-10), name
        assert float(metrics[name].compute()) == pytest.approx(value, rel=1e-10), name


def test_hand_cases() -> None:
    # values 10, 20, 30; exact probabilities in float64
    probs = torch.tensor([[0.25, 0.25, 0.5], [0.5, 0.5, 0.0], [0.1, 0.2, 0.7]], dtype=torch.float64)
    target = torch.tensor([0, 2, 1])
    values = [10.0, 20.0, 30.0]
    kw = {"class_values": values, "input_type": "probs"}
    # expectations 22.5, 15, 26: errors 12.5, 15, 6
    mae = mean_absolute_error(probs, target, decoder="expectation", **kw)
    assert float(mae) == pytest.approx((12.5 + 15 + 6) / 3)
    # medians: cumulative 0.25, 0.5 -> 20 (exactly 1/2 reaches it); 0.5 -> 10; 0.1, 0.3, 1 -> 30
    mae = mean_absolute_error(probs, target, decoder="median", **kw)
    assert float(mae) == pytest.approx((10 + 20 + 10) / 3)
    # argmax: 30 (first maximum), 10, 30
    assert float(mean_absolute_error(probs, target, **kw)) == pytest.approx((20 + 20 + 10) / 3)


def test_median_follows_values_not_indices() -> None:
    # class 0 stands for the largest value: the median walks the values upward
    probs = torch.tensor([[0.6, 0.3, 0.1]], dtype=torch.float64)
    values = [50.0, 20.0, 10.0]  # sorted: 10 (p 0.1), 20 (p 0.3), 50 (p 0.6)
    got = mean_absolute_error(
        probs, torch.tensor([2]), class_values=values, decoder="median", input_type="probs"
    )
    assert float(got) == 40.0  # median 50, target value 10


def test_compute_metrics_keys_match_functions() -> None:
    logits, target_np = make_data(5, None)
    preds, target = torch.tensor(logits), torch.tensor(target_np)
    result = compute_metrics(
        preds, target, class_values=VALUES, decoders=("argmax", "expectation", "median")
    )
    # the argmax's metrics first (the built-in ones in this order; a metric module added
    # to the package comes after them), then each other decoder's
    keys = list(result)
    assert keys[:8] == ["acc", "mae", "mse", "qwk", "amae", "mmae", "rps", "ms"]
    assert keys[-4:] == ["mae_expectation", "mse_expectation", "mae_median", "mse_median"]
    for decoder, suffix in (("argmax", ""), ("expectation", "_expectation"), ("median", "_median")):
        kw = {"class_values": VALUES, "decoder": decoder}
        assert result["mae" + suffix] == pytest.approx(
            float(mean_absolute_error(preds, target, **kw))
        )
        assert result["mse" + suffix] == pytest.approx(
            float(mean_squared_error(preds, target, **kw))
        )
    only = compute_metrics(preds, target, ordered=True, decoders=("median",))
    assert list(only)[:6] == ["acc", "qwk", "amae", "mmae", "rps", "ms"]
    assert list(only)[-2:] == ["mae_median", "mse_median"] and "mae" not in only
    # no MAE asked (no values, not ordered): decoders do not need scores
    assert list(compute_metrics(preds.argmax(1), target, decoders=("median",))) == ["acc"]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: mean_absolute_error(
                torch.tensor([0, 1]), torch.tensor([0, 1]), decoder="median"
            ),
            ValueError,
            r"class scores of shape \(N, C\) for decoder='median', but found class indices",
        ),
        (
            lambda: mean_absolute_error(torch.zeros(2, 3), torch.tensor([0, 1]), decoder="mode"),
            ValueError,
            r"Expected `decoder` to be one of \('argmax', 'expectation', 'median', 'min_risk'\)",
        ),
        (
            lambda: mean_squared_error(
                torch.ones(2, 3), torch.tensor([0, 1]), decoder="expectation", input_type="probs"
            ),
            ValueError,
            r"rows? .*sum to 1",
        ),
        (
            lambda: compute_metrics(
                torch.tensor([0, 1]), torch.tensor([0, 1]), ordered=True, decoders=("expectation",)
            ),
            ValueError,
            r"class scores of shape \(N, C\) for decoder='expectation'",
        ),
        (
            lambda: compute_metrics(
                torch.zeros(2, 3), torch.tensor([0, 1]), decoders=("median", "median")
            ),
            ValueError,
            "distinct `decoders`",
        ),
        (
            lambda: compute_metrics(torch.zeros(2, 3), torch.tensor([0, 1]), decoders="median"),
            TypeError,
            "sequence of decoder names",
        ),
    ],
    ids=["indices", "unknown", "not-probs", "compute-indices", "twice", "string"],
)
def test_errors(call, error, message) -> None:
    with pytest.raises(error, match=message):
        call()


def test_argmax_ignores_input_type() -> None:
    # the argmax is the same for logits and probabilities: input_type changes nothing there
    scores = torch.tensor([[3.0, -1.0, 0.5], [0.0, 2.0, 9.0]])
    target = torch.tensor([0, 1])
    a = mean_absolute_error(scores, target, input_type="probs")
    b = mean_absolute_error(scores, target)
    assert float(a) == float(b) == 0.5
    assert math.isnan(float(mean_absolute_error(scores[:0], target[:0], decoder="median")))


# ----------------------------------------------------------------------------- the median's tie rule


def test_corn_median_at_an_exact_tie_is_coral_pytorchs_class() -> None:
    # P(y > k) = 0.5, 0.25, 0.225, 0.056: exactly half the mass is on class 0, so the
    # median is class 0 (cumulative >= 1/2), as corn_label_from_logits counts P(y > k) > 1/2;
    # float32 log-probabilities put the cumulative 1.2e-9 below 1/2.
    from coral_pytorch.dataset import corn_label_from_logits

    from simloss.experiments.losses import corn_log_probabilities

    z = torch.tensor([[0.0, 0.0, 2.1972246, -1.0986123]])
    assert corn_label_from_logits(z).tolist() == [0]
    scores = corn_log_probabilities(z)
    assert float(mean_absolute_error(scores, torch.tensor([0]), decoder="median")) == 0.0


def test_corn_median_is_coral_pytorchs_rule_on_many_logits() -> None:
    from coral_pytorch.dataset import corn_label_from_logits

    from simloss.experiments.losses import corn_log_probabilities

    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2000, 9, generator=gen) * 3
    z[::7, 0] = 0.0  # exact ties P(y > 0) = 1/2
    z[::11, :2] = torch.tensor([0.0, 0.0])
    labels = corn_label_from_logits(z)
    scores = corn_log_probabilities(z)
    assert float(mean_absolute_error(scores, labels, decoder="median")) == 0.0
