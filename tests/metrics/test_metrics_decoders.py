"""Decoders beyond the argmax (expectation, median) for MAE, MSE and off-by-k, against NumPy."""

from __future__ import annotations

import math
import re

import metrics_reference as ref
import numpy as np
import pytest
import torch

from simloss.metrics import (
    MeanAbsoluteError,
    MeanSquaredError,
    OffByKAccuracy,
    accuracy,
    compute_metrics,
    mean_absolute_error,
    mean_squared_error,
    off_by_k_accuracy,
)
from simloss.metrics.decoders import median_class

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
    # the class metrics of an ordered task read a decoder from indices' scores: an error
    with pytest.raises(ValueError, match="class scores of shape"):
        compute_metrics(preds.argmax(1), target, ordered=True, decoders=("median",))


@pytest.mark.parametrize(
    ("task", "decoders", "unused"),
    [
        ({}, ("median", "expectation"), "['median', 'expectation']"),
        ({}, ("argmax", "median"), "['median']"),
        ({"hierarchy": True}, ("argmax", "expectation"), "['expectation']"),
        ({"ordered": True, "scores": False}, ("argmax", "min_risk"), None),
    ],
    ids=["unordered", "unordered-with-argmax", "hierarchy-expectation", "ordered-min-risk"],
)
def test_a_decoder_no_metric_reads_is_refused(task, decoders, unused) -> None:
    # nothing is recorded under it: an error, not a silently shorter record
    from simloss.metrics import ClassHierarchy, metric_keys

    logits = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    target = torch.arange(8) % 4
    kwargs = (
        {"hierarchy": ClassHierarchy.from_superclasses([0, 0, 1, 1])}
        if task.get("hierarchy")
        else {}
    )
    if unused is None:
        keys = metric_keys(decoders=decoders, **task)
        assert "acc_min_risk" in keys and "mae_min_risk" in keys
        return
    message = rf"no metric reads {re.escape(unused)}"
    with pytest.raises(ValueError, match=message):
        metric_keys(decoders=decoders, **task)
    with pytest.raises(ValueError, match=message):
        compute_metrics(logits, target, decoders=decoders, **kwargs)


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


# ----------------------------------------------------------------------------- the median's precision


def _float64_median(scores: torch.Tensor, form: str) -> np.ndarray:
    """The first class whose float64 cumulative probability is >= 1/2 (NumPy, no tolerance)."""
    x = scores.double().numpy()
    probs = ref.softmax(x) if form == "logits" else x
    return np.argmax(np.cumsum(probs, axis=1) >= 0.5, axis=1)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32], ids=str)
def test_median_of_16_bit_logits_of_the_authors_models_is_the_float64_median(dtype) -> None:
    # The paper authors' UTKFace models (90 ages): a model cast to half or bfloat16 feeds
    # the median its scores; the median is that of the distribution those scores define.
    from real_predictions import utkface_predictions

    ages = torch.arange(1.0, 91.0)
    for name, (logits, target) in utkface_predictions().items():
        z = logits.to(dtype)
        expected_classes = _float64_median(z, "logits")
        expected = np.abs(ages.numpy()[expected_classes] - ages.numpy()[target.numpy()]).mean()
        got = mean_absolute_error(z, target, class_values=ages, decoder="median")
        metric = MeanAbsoluteError(class_values=ages, decoder="median")
        for part in torch.split(torch.arange(len(target)), [100, 0, 200]):
            metric.update(z[part], target[part])
        assert float(got) == pytest.approx(expected, abs=1e-12), name
        assert float(metric.compute()) == pytest.approx(expected, abs=1e-12), name
        assert 4.0 < float(got) < 8.0, name  # an age error, not the band's class 0 (26 years)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("form", ["logits", "probs"])
@pytest.mark.parametrize("classes", [3, 17, 90, 300])
def test_median_of_16_bit_scores_is_the_float64_median(dtype, form, classes) -> None:
    gen = torch.Generator().manual_seed(classes)
    logits = torch.randn(400, classes, generator=gen, dtype=torch.float64) * 3
    scores = (logits if form == "logits" else torch.softmax(logits, dim=1)).to(dtype)
    values = torch.arange(float(classes))
    probs = torch.softmax(scores.double(), 1) if form == "logits" else scores.double()
    got = median_class(probs, values)
    assert got.tolist() == _float64_median(scores, form).tolist()
    # the metrics read the same classes
    target = torch.zeros(400, dtype=torch.int64)
    mae = mean_absolute_error(scores, target, decoder="median", input_type=form)
    assert float(mae) == pytest.approx(float(got.double().mean()), abs=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_median_of_a_16_bit_one_hot_distribution_is_its_class(dtype) -> None:
    probs = torch.zeros(1, 90, dtype=dtype)
    probs[0, 89] = 1.0
    logits = torch.full((1, 90), -30.0, dtype=dtype)
    logits[0, 89] = 30.0
    target = torch.tensor([89])
    for scores, form in ((probs, "probs"), (logits, "logits")):
        assert _float64_median(scores, form).tolist() == [89]
        acc = accuracy(scores, target, decoder="median", input_type=form)
        assert float(acc) == 1.0, form


def test_median_with_ten_thousand_float32_classes() -> None:
    # 0.4995 on the first class, 0.5005 on the last: the median is the last class
    probs = torch.zeros(1, 10_000, dtype=torch.float32)
    probs[0, 0], probs[0, -1] = 0.4995, 0.5005
    assert _float64_median(probs, "probs").tolist() == [9999]
    assert median_class(probs, torch.arange(10_000.0)).tolist() == [9999]
    acc = accuracy(probs, torch.tensor([9999]), decoder="median", input_type="probs")
    assert float(acc) == 1.0


def test_median_of_an_exact_tie_is_the_lower_class() -> None:
    # half of the mass up to a class: that class (cumulative >= 1/2), whatever the rounding
    # of the float64 softmax
    assert median_class(torch.tensor([[0.5, 0.5]]), torch.arange(2.0)).tolist() == [0]
    halves = torch.zeros(1, 2, dtype=torch.float64)  # softmax 1/2, 1/2
    assert accuracy(halves, torch.tensor([0]), decoder="median").item() == 1.0
    for classes in (12, 14, 28, 38):  # C/2 of C equal classes: the float64 sum is below 1/2
        uniform = torch.zeros(1, classes, dtype=torch.float64)
        assert float(torch.softmax(uniform, 1).cumsum(1)[0, classes // 2 - 1]) < 0.5
        middle = torch.tensor([classes // 2 - 1])
        assert accuracy(uniform, middle, decoder="median").item() == 1.0


# ----------------------------------------------------------------------------- decided elsewhere


def test_compute_metrics_reads_classes_a_head_decided() -> None:
    # a CORN head's median is coral-pytorch's rule on its logits, handed in as decided
    from coral_pytorch.dataset import corn_label_from_logits

    from simloss.experiments.heads import corn_log_probabilities

    gen = torch.Generator().manual_seed(2)
    z = torch.randn(60, 8, generator=gen) * 3
    z[::4, 0] = 0.0  # exact ties P(y > 0) = 1/2: coral's class 0
    target = torch.randint(0, 9, (60,), generator=gen)
    target[5] = -100
    labels = corn_label_from_logits(z)
    kept = target != -100
    expected = (labels[kept] - target[kept]).abs().double().mean().item()
    result = compute_metrics(
        corn_log_probabilities(z), target, ordered=True, ignore_index=-100,
        decoders=("argmax", "median"), decoded={"median": labels},
    )  # fmt: skip
    assert result["mae_median"] == pytest.approx(expected, abs=1e-12)
    assert result["mae"] == pytest.approx(
        float(mean_absolute_error(corn_log_probabilities(z), target, ignore_index=-100))
    )


@pytest.mark.parametrize(
    ("decoded", "error", "message"),
    [
        ({"expectation": torch.zeros(3, dtype=torch.int64)}, ValueError, "decoders that predict"),
        (
            {"min_risk": torch.zeros(3, dtype=torch.int64)},
            ValueError,
            r"only for decoders among `decoders` \['argmax', 'expectation', 'median'\]",
        ),
        ({"median": torch.zeros(3)}, ValueError, r"integer dtype and shape \(3,\)"),
        ({"median": torch.zeros(2, dtype=torch.int64)}, ValueError, r"shape \(3,\)"),
        (
            {"median": torch.tensor([0, 1, 4])},
            ValueError,
            r"decoded\['median'\]` values in \[0, 3\)",
        ),
        ([torch.zeros(3)], TypeError, "Expected `decoded` to map decoder names"),
    ],
    ids=["not-a-class-decoder", "not-asked", "float", "short", "range", "list"],
)
def test_compute_metrics_refuses_bad_decided_classes(decoded, error, message) -> None:
    with pytest.raises(error, match=message):
        compute_metrics(
            torch.zeros(3, 3), torch.tensor([0, 1, 2]), ordered=True,
            decoders=("argmax", "expectation", "median"), decoded=decoded,
        )  # fmt: skip


def test_squared_value_cost_picks_the_value_nearest_the_mean_on_any_grid() -> None:
    # sum_c p_c (v_k - v_c)^2 = (v_k - E[v])^2 + Var[v]: no even grid needed
    from simloss.metrics import value_cost
    from simloss.metrics.decoders import min_risk_class

    rng = np.random.default_rng(7)
    values = np.sort(rng.choice(np.arange(1.0, 200.0), size=9, replace=False) ** 1.5)
    probs = rng.dirichlet(np.full(9, 0.3), size=500)
    mean = probs @ values
    nearest = np.abs(values[None, :] - mean[:, None]).argmin(axis=1)  # float64, by hand
    chosen = min_risk_class(torch.from_numpy(probs), value_cost(values, squared=True))
    assert chosen.tolist() == nearest.tolist()
