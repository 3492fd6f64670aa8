"""The metrics' facts (direction, label, percent, record key) and where NaN scores are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from simloss import ClassOrder
from simloss.metrics import (
    DECODERS,
    Accuracy,
    ClassHierarchy,
    FailedSuperclassAccuracy,
    MeanAbsoluteError,
    MeanPredictedDistribution,
    MeanSimilarity,
    MeanSquaredError,
    MetricDeclaration,
    MistakeSeverity,
    OffByKAccuracy,
    SuperclassAccuracy,
    accuracy,
    compute_metrics,
    declarations,
    mean_absolute_error,
    mean_predicted_distribution,
    metric_facts,
    metric_goal,
    register,
)
from simloss.metrics._declaration import numeric_key

# ----------------------------------------------------------------------------- facts

FACTS = [
    (Accuracy(), "acc", "Acc", True, True),
    (Accuracy(3), "acc_top3", "Top-3 acc", True, True),
    (MeanAbsoluteError(), "mae", "MAE", False, False),
    (MeanAbsoluteError(decoder="median"), "mae_median", "MAE (median)", False, False),
    (MeanSquaredError(decoder="expectation"), "mse_expectation", "MSE (expectation)", False, False),
    (OffByKAccuracy(2.5), "off_by_2.5", "Acc ±2.5", True, True),
    (SuperclassAccuracy([0, 1]), "sa", "SA", True, True),
    (FailedSuperclassAccuracy([0, 1]), "fsa", "FSA", True, True),
    (MeanSimilarity(ClassOrder(3, 0.5)), "mean_similarity", "Mean similarity", True, False),
    (MistakeSeverity(np.ones((2, 2))), "mistake_severity", "Mistake severity", False, False),
    (MeanPredictedDistribution(2), None, "Mean predicted distribution", None, False),
]


@pytest.mark.parametrize(
    ("metric", "key", "label", "higher", "percent"), FACTS, ids=[f[1] or "dist" for f in FACTS]
)
def test_each_metric_states_its_facts(metric, key, label, higher, percent) -> None:
    assert (metric.key, metric.label, metric.higher_is_better, metric.is_percent) == (
        key,
        label,
        higher,
        percent,
    )
    assert type(metric).higher_is_better is higher  # a class attribute, as in torchmetrics


def test_every_compute_metrics_key_has_facts() -> None:
    logits = torch.randn(20, 6, generator=torch.Generator().manual_seed(0))
    target = torch.arange(20) % 6
    mapping = [0, 0, 1, 1, 2, 2]
    keys = compute_metrics(
        logits,
        target,
        class_values=[1, 2, 3, 5, 8, 9],
        fine_to_coarse=mapping,
        hierarchy=ClassHierarchy.from_superclasses(mapping),
        decoders=DECODERS,
    )
    assert {"acc", "mae", "mse", "sa", "fsa", "qwk", "amae", "rps", "hf"} <= set(keys)
    for key in keys:
        facts = metric_facts(key)
        assert facts.key == key
        assert facts.higher_is_better == facts.metric.higher_is_better
        assert facts.is_percent == facts.metric.is_percent
        assert facts.metric.metric_class.higher_is_better is facts.higher_is_better
    assert metric_facts("mae_expectation").decoder == "expectation"
    assert metric_facts("acc_min_risk").label == "Acc (min-risk)"


def test_every_declaration_states_a_direction_or_is_not_recorded() -> None:
    # a record key without a direction would be silently minimised by a monitor or a tune
    for declaration in declarations():
        if declaration.record is not None:
            assert declaration.higher_is_better is not None, declaration.class_name


@pytest.mark.parametrize(
    "key",
    [
        "loss", "acc_mode", "mae_mode", "MAE", "rps_median", "acc_top",
        # not a configuration the metric accepts, or not the key's one spelling
        "acc_top0", "hdist_top0", "acc_top05", "acc_top1", "off_by_2.0", "off_by_02",
        "acc_top5_median", "hdist_top5_min_risk",
    ],
)  # fmt: skip
def test_unknown_keys_are_refused(key: str) -> None:
    with pytest.raises(KeyError, match="Expected a metric key among"):
        metric_facts(key)


def _declaration(key: str | None, **fields: object) -> MetricDeclaration:
    def cost_of_error(preds, target, *, ignore_index=None):
        return COST.evaluate(preds, target, ignore_index=ignore_index)

    def stats(batch):
        wrong = batch.pred != batch.target
        return wrong.sum(), wrong.numel()

    COST = MetricDeclaration(
        key=key, label="My cost", class_name="MyCost", function=cost_of_error,
        configure=lambda: {}, stats=stats, compute=lambda a, b: a / b,
        higher_is_better=False, **fields,  # type: ignore[arg-type]
    )  # fmt: skip
    return COST


@pytest.mark.parametrize(
    ("key", "fields", "owner"),
    [
        ("acc_top3", {}, "Accuracy"),  # Accuracy's pattern acc_top<k>
        ("mae_median", {}, "MeanAbsoluteError"),  # MAE under a decoder
        ("mse_min_risk", {}, "MeanSquaredError"),
        ("off_by_3", {}, "OffByKAccuracy"),
        ("hdist_top7", {}, "AverageHierarchicalDistance"),
        ("lwk", {}, "CohenKappa"),  # a weighting of kappa
        ("sa", {}, "SuperclassAccuracy"),
        # a key pattern that names Accuracy's keys
        (
            None,
            {
                "parse_key": numeric_key("acc_top", "k", int),
                "key_of": lambda config: f"acc_top{config['k']}",
            },
            "Accuracy",
        ),
    ],
    ids=["acc_top3", "mae_median", "mse_min_risk", "off_by_3", "hdist_top7", "lwk", "sa",
         "pattern"],
)  # fmt: skip
def test_register_refuses_a_key_another_metric_names(key, fields, owner) -> None:
    before = declarations()
    with pytest.raises(ValueError, match=f"also names {owner}'s"):
        register(_declaration(key, **fields))
    assert declarations() == before
    if key is not None:  # the key still means what it meant
        assert metric_facts(key).metric.class_name == owner


def test_register_takes_a_free_key_with_its_direction() -> None:
    from simloss.metrics._declaration import _REGISTRY

    try:
        register(_declaration("my_cost", decoders=("argmax", "median")))
        assert metric_facts("my_cost").metric.class_name == "MyCost"
        assert metric_goal("my_cost") == metric_goal("my_cost_median") == "min"
    finally:
        _REGISTRY.pop("MyCost", None)


# ----------------------------------------------------------------------------- NaN where it matters


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 6),
    cols=st.integers(1, 7),
    nans=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 6)), min_size=1, max_size=4),
    seed=st.integers(0, 1000),
)
def test_any_nan_is_found_where_a_full_scan_finds_it(rows, cols, nans, seed) -> None:
    # the check reads only the argmax's score, yet finds every row with a NaN anywhere
    # (argmax propagates NaN) and names the same first NaN as scanning all N x C scores
    scores = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))
    for r, c in nans:
        scores[r % rows, c % cols] = float("nan")
    first = tuple(torch.isnan(scores).nonzero()[0].tolist())
    target = torch.zeros(rows, dtype=torch.int64)
    with pytest.raises(ValueError, match=rf"no NaN, but found NaN at \({first[0]}, {first[1]}\)"):
        accuracy(scores, target)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_nan_beside_larger_scores_is_found(dtype: torch.dtype) -> None:
    scores = torch.tensor([[1.0, 2.0, 3.0], [5.0, float("nan"), 9.0]], dtype=dtype)
    with pytest.raises(ValueError, match=r"found NaN at \(1, 1\)"):
        mean_absolute_error(scores, torch.tensor([0, 1]))


def test_nan_in_an_ignored_row_is_still_an_error() -> None:
    scores = torch.tensor([[1.0, 2.0], [float("nan"), 0.0]])
    with pytest.raises(ValueError, match=r"found NaN at \(1, 0\)"):
        accuracy(scores, torch.tensor([0, -100]), ignore_index=-100)


@pytest.mark.parametrize(
    "call",
    [
        lambda s, t: accuracy(s, t, top_k=2),
        lambda s, t: mean_absolute_error(s, t, decoder="expectation"),
        lambda s, t: mean_predicted_distribution(s, t),
        lambda s, t: compute_metrics(s, t, ordered=True, decoders=("median",)),
    ],
    ids=["top-k", "expectation", "distribution", "compute-median"],
)
def test_every_use_of_scores_refuses_nan(call) -> None:
    scores = torch.tensor([[0.0, 1.0, float("nan")], [2.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match=r"found NaN at \(0, 2\)"):
        call(scores, torch.tensor([0, 1]))


def test_infinite_scores_keep_their_meaning() -> None:
    # +inf is a legitimate argmax; only NaN is refused
    scores = torch.tensor([[float("inf"), 0.0], [float("-inf"), 1.0]])
    assert float(accuracy(scores, torch.tensor([0, 1]))) == 1.0
    # row maxima +inf and -inf sum to NaN: the exact test clears it
    scores = torch.tensor([[float("inf"), 0.0], [float("-inf"), float("-inf")]])
    assert float(accuracy(scores, torch.tensor([0, 0]))) == 1.0
