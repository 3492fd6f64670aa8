"""Metric functions: hand-computed cases, edge cases, invariants, bad input, real CIFAR-100."""

from __future__ import annotations

import csv
import math

import metrics_reference as ref
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import shared_path
from simloss import ClassOrder
from simloss.metrics import (
    accuracy,
    compute_metrics,
    failed_superclass_accuracy,
    mean_absolute_error,
    mean_predicted_distribution,
    mean_similarity,
    mean_squared_error,
    mistake_severity,
    off_by_k_accuracy,
    superclass_accuracy,
)

nan = float("nan")


def value(x: torch.Tensor) -> float:
    assert isinstance(x, torch.Tensor) and x.shape == () and x.dtype == torch.float64
    return float(x)


# ----------------------------------------------------------------------------------------
# hand-computed small cases


def test_accuracy_by_hand():
    scores = torch.tensor(
        [
            [0.1, 0.7, 0.2],  # pred 1, target 1: hit; target ranked 0
            [0.5, 0.3, 0.2],  # pred 0, target 2: miss; target ranked 2
            [0.3, 0.4, 0.3],  # pred 1, target 2: miss; ties 0 and 2, target ranked 2
            [0.3, 0.3, 0.4],  # pred 2, target 1: miss; tie with 0 (lower index first): rank 2
        ]
    )
    target = torch.tensor([1, 2, 2, 1])
    assert value(accuracy(scores, target)) == 0.25
    assert value(accuracy(scores, target, top_k=2)) == 0.25
    assert value(accuracy(scores, target, top_k=3)) == 1.0
    assert value(accuracy(scores.log(), target)) == 0.25  # log-probabilities: same argmax
    assert value(accuracy(torch.tensor([1, 0, 1, 2]), target)) == 0.25


def test_ordered_metrics_by_hand():
    ages = [1.0, 2.0, 3.0, 5.0, 8.0]  # value of classes 0..4
    target = torch.tensor([0, 1, 2, 3, 4])
    preds = torch.tensor([0, 2, 4, 1, 4])
    # index errors: 0, 1, 2, 2, 0 -> MAE 1.0, MSE 9/5; value errors: 0, 1, 5, 3, 0
    assert value(mean_absolute_error(preds, target)) == 1.0
    assert value(mean_squared_error(preds, target)) == pytest.approx(1.8)
    assert value(mean_absolute_error(preds, target, class_values=ages)) == pytest.approx(1.8)
    assert value(mean_squared_error(preds, target, class_values=ages)) == pytest.approx(7.0)
    assert value(off_by_k_accuracy(preds, target, 0)) == 0.4
    assert value(off_by_k_accuracy(preds, target, 1)) == 0.6
    assert value(off_by_k_accuracy(preds, target, 2)) == 1.0
    assert value(off_by_k_accuracy(preds, target, 3, class_values=ages)) == 0.8


def test_superclass_metrics_by_hand():
    # rose (0) and orchid (1) are flowers (0); bus (2) and truck (3) are vehicles (1)
    fine_to_coarse = [0, 0, 1, 1]
    target = torch.tensor([0, 0, 1, 2, 3, 3])
    preds = torch.tensor([0, 1, 2, 2, 2, 0])
    # hits: 0, 3 -> acc 2/6; same superclass: 0, 1, 3, 4 -> SA 4/6;
    # mistakes: 1 (same), 2 (other), 4 (same), 5 (other) -> FSA 2/4
    assert value(accuracy(preds, target)) == pytest.approx(2 / 6)
    assert value(superclass_accuracy(preds, target, fine_to_coarse)) == pytest.approx(4 / 6)
    assert value(failed_superclass_accuracy(preds, target, fine_to_coarse)) == 0.5


def test_similarity_metrics_by_hand():
    S = torch.tensor([[1.0, 0.8, 0.0], [0.6, 1.0, 0.1], [0.0, 0.2, 1.0]])
    D = 1 - S
    target = torch.tensor([0, 0, 1, 2])
    preds = torch.tensor([0, 1, 0, 1])
    # S[t, p]: 1.0, 0.8, 0.6, 0.2 -> 0.65; severity over the mistakes: 0.2, 0.4, 0.8
    assert value(mean_similarity(preds, target, S)) == pytest.approx(0.65)
    assert value(mistake_severity(preds, target, D)) == pytest.approx(1.4 / 3)


def test_class_order_similarity_equals_its_dense_matrix():
    target = torch.tensor([0, 3, 5, 9])
    preds = torch.tensor([2, 3, 9, 0])
    expected = (0.5**2 + 1 + 0.5**4 + 0.5**9) / 4
    assert value(mean_similarity(preds, target, ClassOrder(10, 0.5))) == pytest.approx(expected)
    # r = 0 is the identity (0 ** 0 = 1): mean similarity is accuracy
    assert value(mean_similarity(preds, target, ClassOrder(10, 0.0))) == 0.25


def test_mean_predicted_distribution_by_hand():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25], [0.1, 0.1, 0.8]]))
    target = torch.tensor([2, 2, 0])
    result = mean_predicted_distribution(logits, target)
    assert result.per_class is not None and result.class_counts is not None
    torch.testing.assert_close(
        result.mean, torch.tensor([0.85, 0.85, 1.3], dtype=torch.float64) / 3
    )
    torch.testing.assert_close(
        result.per_class[2], torch.tensor([0.375, 0.375, 0.25], dtype=torch.float64)
    )
    torch.testing.assert_close(
        result.per_class[0], torch.tensor([0.1, 0.1, 0.8], dtype=torch.float64)
    )
    assert torch.isnan(result.per_class[1]).all()
    assert result.class_counts.tolist() == [1, 0, 2]


# ----------------------------------------------------------------------------------------
# FSA, mistake severity and empty input: undefined means nan


FINE_TO_COARSE = [0, 0, 1, 1]


def test_fsa_is_nan_without_mistakes():
    target = torch.tensor([0, 1, 2, 3])
    assert math.isnan(value(failed_superclass_accuracy(target, target, FINE_TO_COARSE)))
    scores = torch.nn.functional.one_hot(target, 4).float()
    assert math.isnan(value(failed_superclass_accuracy(scores, target, FINE_TO_COARSE)))
    assert value(superclass_accuracy(target, target, FINE_TO_COARSE)) == 1.0


def test_fsa_zero_and_one():
    target = torch.tensor([0, 2])
    assert value(failed_superclass_accuracy(torch.tensor([2, 0]), target, FINE_TO_COARSE)) == 0.0
    assert value(failed_superclass_accuracy(torch.tensor([1, 3]), target, FINE_TO_COARSE)) == 1.0


def test_fsa_ignores_correct_predictions_only():
    # one mistake within the superclass among many hits: FSA 1, SA 1, acc 0.9
    target = torch.arange(10) % 4
    preds = target.clone()
    preds[0] = 1  # 0 -> 1, both in superclass 0
    assert value(failed_superclass_accuracy(preds, target, FINE_TO_COARSE)) == 1.0
    assert value(accuracy(preds, target)) == 0.9


def test_fsa_when_every_mistake_is_ignored():
    target = torch.tensor([0, 1, -1])
    preds = torch.tensor([0, 1, 3])
    fsa = failed_superclass_accuracy(preds, target, FINE_TO_COARSE, ignore_index=-1)
    assert math.isnan(value(fsa))


def test_mistake_severity_is_nan_without_mistakes():
    target = torch.tensor([1, 2])
    assert math.isnan(value(mistake_severity(target, target, np.ones((3, 3)))))


@pytest.mark.parametrize(
    "metric",
    [
        lambda p, t, **kw: accuracy(p, t, **kw),
        lambda p, t, **kw: mean_absolute_error(p, t, **kw),
        lambda p, t, **kw: mean_squared_error(p, t, **kw),
        lambda p, t, **kw: off_by_k_accuracy(p, t, 1, **kw),
        lambda p, t, **kw: superclass_accuracy(p, t, FINE_TO_COARSE, **kw),
        lambda p, t, **kw: failed_superclass_accuracy(p, t, FINE_TO_COARSE, **kw),
        lambda p, t, **kw: mean_similarity(p, t, torch.eye(4), **kw),
        lambda p, t, **kw: mistake_severity(p, t, torch.ones(4, 4), **kw),
    ],
    ids=["acc", "mae", "mse", "off-by-1", "sa", "fsa", "mean-sim", "severity"],
)
def test_no_example_gives_nan(metric):
    empty = torch.zeros(0, dtype=torch.int64)
    assert math.isnan(value(metric(empty, empty)))
    assert math.isnan(value(metric(torch.zeros(0, 4), empty)))
    everything_ignored = torch.full((3,), -100)
    assert math.isnan(value(metric(torch.tensor([0, 1, 2]), everything_ignored, ignore_index=-100)))


def test_ignore_index_may_be_a_real_class():
    target = torch.tensor([0, 1, 2, 2])
    preds = torch.tensor([0, 0, 1, 1])
    assert value(accuracy(preds, target)) == 0.25
    assert value(accuracy(preds, target, ignore_index=2)) == 0.5  # only classes 0 and 1 count


# ----------------------------------------------------------------------------------------
# compute_metrics: the record's keys


def test_compute_metrics_keys_and_values():
    rng = np.random.default_rng(3)
    logits = torch.from_numpy(rng.normal(size=(50, 6)))
    target = torch.from_numpy(rng.integers(0, 6, 50))
    values = np.arange(6) * 2.0 + 1
    coarse = [0, 0, 1, 1, 2, 2]
    assert list(compute_metrics(logits, target)) == ["acc"]
    ordinal = ["acc", "mae", "mse", "qwk", "amae", "mmae", "rps", "ms"]
    assert list(compute_metrics(logits, target, ordered=True))[:8] == ordinal
    got = compute_metrics(logits, target, class_values=values, fine_to_coarse=coarse)
    assert list(got)[:10] == ["acc", "mae", "mse", "sa", "fsa", "qwk", "amae", "mmae", "rps", "ms"]
    assert all(isinstance(v, float) for v in got.values())
    assert {k: got[k] for k in ("acc", "mae", "mse", "sa", "fsa")} == {
        "acc": float(accuracy(logits, target)),
        "mae": float(mean_absolute_error(logits, target, class_values=values)),
        "mse": float(mean_squared_error(logits, target, class_values=values)),
        "sa": float(superclass_accuracy(logits, target, coarse)),
        "fsa": float(failed_superclass_accuracy(logits, target, coarse)),
    }
    pred = logits.numpy().argmax(axis=1)
    assert got["mae"] == pytest.approx(ref.mean_abs(pred, target.numpy(), values))


def test_compute_metrics_checks_lengths_agree():
    with pytest.raises(ValueError, match="`fine_to_coarse` to have one entry per class"):
        compute_metrics(
            torch.tensor([0]), torch.tensor([0]), class_values=[1, 2, 3], fine_to_coarse=[0, 1]
        )
    with pytest.raises(TypeError, match="`ordered` to be a bool"):
        compute_metrics(torch.tensor([0]), torch.tensor([0]), ordered=1)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------
# bad input


SCORES = torch.randn(5, 4)
TARGET = torch.tensor([0, 1, 2, 3, 0])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: accuracy(SCORES, TARGET[:4]), ValueError, r"`target` of shape \(5,\)"),
        (lambda: accuracy(SCORES, TARGET[:, None]), ValueError, r"found shape \(5, 1\)"),
        (lambda: accuracy(SCORES, TARGET + 1), ValueError, r"`target` values in \[0, 4\)"),
        (lambda: accuracy(SCORES, TARGET - 1), ValueError, "pass `ignore_index=-1`"),
        (
            lambda: accuracy(SCORES, torch.tensor([0, 1, 9, -100, 0]), ignore_index=-100),
            ValueError,
            r"or `ignore_index` \(-100\), but found 9 at index 2",
        ),
        (lambda: accuracy(TARGET, TARGET.float()), TypeError, "`target` to hold integer"),
        (
            lambda: accuracy(TARGET.float(), TARGET),
            TypeError,
            r"dtype torch.float32 and shape \(5,\)",
        ),
        (lambda: accuracy(SCORES.long(), TARGET), TypeError, "class scores .* or class indices"),
        (lambda: accuracy(SCORES[None], TARGET), ValueError, r"shape \(1, 5, 4\)"),
        (lambda: accuracy(TARGET.bool(), TARGET), TypeError, "torch.bool"),
        (lambda: accuracy(SCORES.tolist(), TARGET), TypeError, "`preds` to be a torch.Tensor"),
        (lambda: accuracy(SCORES, TARGET.numpy()), TypeError, "`target` to be a torch.Tensor"),
        (lambda: accuracy(TARGET - 1, TARGET), ValueError, r"`preds` values >= 0, but found -1"),
        (
            lambda: accuracy(TARGET, TARGET, num_classes=3),
            ValueError,
            r"`preds` values in \[0, 3\) \(3 classes, from `num_classes`\), but found 3",
        ),
        (lambda: accuracy(SCORES, TARGET, num_classes=3), ValueError, "one column per class"),
        (lambda: accuracy(torch.zeros(5, 0), TARGET), ValueError, "C >= 1"),
        (
            lambda: accuracy(torch.tensor([[0.1, float("nan")]]), torch.tensor([0])),
            ValueError,
            r"no NaN, but found NaN at \(0, 1\)",
        ),
        (lambda: accuracy(SCORES, TARGET, top_k=0), ValueError, "`top_k` to be a positive int"),
        (lambda: accuracy(SCORES, TARGET, top_k=2.0), TypeError, "`top_k`"),
        (lambda: accuracy(SCORES, TARGET, top_k=5), ValueError, r"`top_k` <= number of classes"),
        (lambda: accuracy(TARGET, TARGET, top_k=2), ValueError, "class scores .* for top_k > 1"),
        (lambda: accuracy(SCORES, TARGET, ignore_index=1.0), TypeError, "`ignore_index`"),
        (lambda: accuracy(SCORES, TARGET, num_classes=0), ValueError, "`num_classes`"),
        (
            lambda: mean_absolute_error(SCORES, TARGET, class_values=[1, 2, 3]),
            ValueError,
            r"one column per class \(3 classes, from the length of `class_values`\)",
        ),
        (
            lambda: mean_absolute_error(TARGET, TARGET, class_values=[1, 2, 3]),
            ValueError,
            r"`preds` values in \[0, 3\) \(3 classes, from the length of `class_values`\)",
        ),
        (
            lambda: mean_squared_error(SCORES, TARGET, class_values=[1, 2, 3, nan]),
            ValueError,
            "`class_values` to be finite",
        ),
        (
            lambda: mean_squared_error(SCORES, TARGET, class_values=[[1, 2], [3, 4]]),
            ValueError,
            r"`class_values` to be a non-empty 1-D",
        ),
        (
            lambda: mean_squared_error(SCORES, TARGET, class_values=[True] * 4),
            TypeError,
            "`class_values` to hold real numbers",
        ),
        (
            lambda: mean_squared_error(SCORES, TARGET, class_values=["a"] * 4),
            TypeError,
            "`class_values` to hold numbers",
        ),
        (
            lambda: mean_squared_error(SCORES, TARGET, class_values=[1, 2, 3, 4], num_classes=5),
            ValueError,
            r"`class_values` to have one entry per class \(5, from `num_classes`\)",
        ),
        (lambda: off_by_k_accuracy(SCORES, TARGET, -1), ValueError, "`k` to be a finite"),
        (lambda: off_by_k_accuracy(SCORES, TARGET, True), TypeError, "`k` to be a real"),
        (lambda: off_by_k_accuracy(SCORES, TARGET, "1"), TypeError, "`k` to be a real"),
        (
            lambda: superclass_accuracy(SCORES, TARGET, [0, 0, 1]),
            ValueError,
            r"one column per class \(3 classes, from the length of `fine_to_coarse`\)",
        ),
        (
            lambda: superclass_accuracy(TARGET, TARGET, [0, 0, 1]),
            ValueError,
            r"`preds` values in \[0, 3\) \(3 classes, from the length of `fine_to_coarse`\)",
        ),
        (
            lambda: failed_superclass_accuracy(SCORES, TARGET, [0.0, 0.0, 1.0, 1.0]),
            TypeError,
            "`fine_to_coarse` to hold integer superclass indices",
        ),
        (
            lambda: failed_superclass_accuracy(SCORES, TARGET, [0, -1, 1, 1]),
            ValueError,
            "superclass indices >= 0, but found -1 for fine class 1",
        ),
        (
            lambda: failed_superclass_accuracy(SCORES, TARGET, np.zeros((4, 1), dtype=int)),
            ValueError,
            r"1-D mapping .* shape \(4, 1\)",
        ),
        (lambda: failed_superclass_accuracy(SCORES, TARGET, "0011"), TypeError, "`fine_to_coarse`"),
        (
            lambda: mean_similarity(SCORES, TARGET, torch.eye(3)),
            ValueError,
            r"one column per class \(3 classes, from the size of `similarity`\)",
        ),
        (lambda: mean_similarity(SCORES, TARGET, torch.ones(4, 3)), ValueError, "square"),
        (
            lambda: mean_similarity(SCORES, TARGET, torch.eye(4).to_sparse()),
            TypeError,
            "SparseSimilarity.from_sparse",
        ),
        (
            lambda: mean_similarity(SCORES, TARGET, torch.full((4, 4), float("inf"))),
            ValueError,
            r"`similarity` to be finite, but found inf at \(0, 0\)",
        ),
        (
            lambda: mistake_severity(SCORES, TARGET, -torch.ones(4, 4)),
            ValueError,
            r"`distance` to be >= 0, but found -1.0 at \(0, 0\)",
        ),
        (
            lambda: mean_predicted_distribution(TARGET, TARGET),
            TypeError,
            r"floating dtype and shape \(N, C\)",
        ),
        (
            lambda: mean_predicted_distribution(SCORES, TARGET, input_type="probs"),
            ValueError,
            r"`preds` probabilities in \[0, 1\]|sum to 1",
        ),
        (
            lambda: mean_predicted_distribution(SCORES.abs() / 10, TARGET, input_type="probs"),
            ValueError,
            r"row 0 sums to",
        ),
        (
            lambda: mean_predicted_distribution(SCORES, TARGET, input_type="log_probs"),
            ValueError,
            "`input_type`",
        ),
        (
            lambda: mean_predicted_distribution(torch.tensor([[float("inf"), 0.0]])),
            ValueError,
            "row 0 holds",
        ),
        (lambda: mean_predicted_distribution(SCORES, ignore_index=0), ValueError, "`target`"),
        (
            lambda: mean_predicted_distribution(SCORES, TARGET, num_classes=5),
            ValueError,
            "one column per class",
        ),
    ],
)
def test_bad_input_raises_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_preds_and_target_on_different_devices():
    with pytest.raises(ValueError, match="same device"):
        accuracy(SCORES.cuda(), TARGET)


def test_inputs_are_not_modified():
    scores, target = SCORES.clone(), TARGET.clone()
    compute_metrics(scores, target, class_values=[1, 2, 3, 4], fine_to_coarse=[0, 0, 1, 1])
    mean_predicted_distribution(scores, target)
    assert torch.equal(scores, SCORES) and torch.equal(target, TARGET)


def test_half_precision_scores():
    logits = torch.randn(40, 6)
    target = torch.randint(0, 6, (40,))
    assert value(accuracy(logits.half(), target)) == value(accuracy(logits.half().float(), target))
    probs = torch.softmax(logits, dim=1).bfloat16()
    result = mean_predicted_distribution(probs, target, input_type="probs")
    torch.testing.assert_close(result.mean, probs.double().mean(dim=0))


# ----------------------------------------------------------------------------------------
# invariants (hypothesis)

examples = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        st.integers(2, 8).flatmap(
            lambda c: st.tuples(
                st.just(c),
                st.lists(st.integers(0, c - 1), min_size=n, max_size=n),
                st.lists(st.integers(0, c - 1), min_size=n, max_size=n),
            )
        )
    )
)


def indices(c_preds_target):
    ((c, preds, target),) = c_preds_target
    return c, torch.tensor(preds), torch.tensor(target)


@settings(max_examples=60, deadline=None)
@given(examples, st.data())
def test_superclass_decomposition(example, data):
    """SA = acc + (1 - acc) * FSA whenever there is a mistake, and SA >= acc."""
    c, preds, target = indices(example)
    coarse = data.draw(st.lists(st.integers(0, 2), min_size=c, max_size=c))
    acc = value(accuracy(preds, target))
    sa = value(superclass_accuracy(preds, target, coarse))
    fsa = value(failed_superclass_accuracy(preds, target, coarse))
    assert sa >= acc
    if acc == 1.0:
        assert math.isnan(fsa) and sa == 1.0
    else:
        assert sa == pytest.approx(acc + (1 - acc) * fsa)


@settings(max_examples=60, deadline=None)
@given(examples)
def test_ordered_invariants(example):
    """off-by-0 is accuracy, off-by-k grows with k, MSE >= MAE**2 (Jensen), MAE >= 1 - acc."""
    c, preds, target = indices(example)
    acc = value(accuracy(preds, target))
    assert value(off_by_k_accuracy(preds, target, 0)) == acc
    within = [value(off_by_k_accuracy(preds, target, k)) for k in range(c)]
    assert within == sorted(within) and within[-1] == 1.0
    mae, mse = value(mean_absolute_error(preds, target)), value(mean_squared_error(preds, target))
    assert mse >= mae**2 - 1e-12
    assert mae >= 1 - acc - 1e-12


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(2, 9), st.integers(0, 2**31 - 1))
def test_top_k_grows_to_one(n, c, seed):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(n, c, generator=generator)
    target = torch.randint(0, c, (n,), generator=generator)
    values = [value(accuracy(scores, target, top_k=k)) for k in range(1, c + 1)]
    assert values == sorted(values) and values[-1] == 1.0
    assert values[0] == value(accuracy(scores.argmax(dim=1), target))


@settings(max_examples=40, deadline=None)
@given(examples)
def test_identity_similarity_and_unit_distance(example):
    """With S = I mean similarity is accuracy; with D = 1 - I mistake severity is 1."""
    c, preds, target = indices(example)
    assert value(mean_similarity(preds, target, torch.eye(c))) == value(accuracy(preds, target))
    severity = value(mistake_severity(preds, target, 1 - torch.eye(c)))
    assert severity == 1.0 or (math.isnan(severity) and bool((preds == target).all()))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_distribution_rows_are_distributions(n, c, seed):
    """Means are probability vectors; the overall mean is the count-weighted per-class mean."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=generator, dtype=torch.float64) * 3
    target = torch.randint(0, c, (n,), generator=generator)
    result = mean_predicted_distribution(logits, target)
    assert result.per_class is not None and result.class_counts is not None
    torch.testing.assert_close(result.mean.sum(), torch.tensor(1.0, dtype=torch.float64))
    seen = result.class_counts > 0
    torch.testing.assert_close(
        result.per_class[seen].sum(dim=1), torch.ones(int(seen.sum()), dtype=torch.float64)
    )
    assert torch.isnan(result.per_class[~seen]).all()
    weighted = (result.per_class[seen] * result.class_counts[seen, None]).sum(dim=0) / n
    torch.testing.assert_close(weighted, result.mean)
    assert int(result.class_counts.sum()) == n


# ----------------------------------------------------------------------------------------
# the real CIFAR-100 fine-to-coarse mapping


def load_cifar_mapping() -> tuple[list[int], list[str], list[str]]:
    """fine -> coarse index, fine names and coarse names, from the shared TSV."""
    path = shared_path("cifar100", "fine_to_coarse.tsv")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert [int(r["fine_index"]) for r in rows] == list(range(len(rows)))
    return (
        [int(r["coarse_index"]) for r in rows],
        [r["fine_label"] for r in rows],
        [r["coarse_label"] for r in rows],
    )


def test_cifar100_superclass_metrics():
    mapping, fine_names, coarse_names = load_cifar_mapping()
    assert len(mapping) == 100 and sorted(set(mapping)) == list(range(20))
    assert all(mapping.count(k) == 5 for k in range(20))
    names = shared_path("cifar100", "fine_label_names.txt").read_text().split()
    assert names == fine_names

    # The paper's example: rose mistaken for orchid stays within "flowers".
    rose, orchid = fine_names.index("rose"), fine_names.index("orchid")
    truck = fine_names.index("pickup_truck")
    target = torch.tensor([rose, rose, rose])
    preds = torch.tensor([rose, orchid, truck])
    assert value(superclass_accuracy(preds, target, mapping)) == pytest.approx(2 / 3)
    assert value(failed_superclass_accuracy(preds, target, mapping)) == 0.5

    # Random predictions on the real mapping, against a reference on the coarse *names*.
    rng = np.random.default_rng(100)
    target_np = rng.integers(0, 100, 500)
    logits = rng.normal(size=(500, 100))
    logits[np.arange(250), target_np[:250]] += 3.0  # some hits
    pred_np = logits.argmax(axis=1)
    same = [coarse_names[p] == coarse_names[t] for p, t in zip(pred_np, target_np, strict=True)]
    wrong = pred_np != target_np
    logits_t, target_t = torch.from_numpy(logits), torch.from_numpy(target_np)
    got = compute_metrics(logits_t, target_t, fine_to_coarse=mapping)
    assert got["acc"] == pytest.approx(float(np.mean(~wrong)))
    assert got["sa"] == pytest.approx(float(np.mean(same)))
    assert got["fsa"] == pytest.approx(float(np.mean(np.array(same)[wrong])))
    assert got["sa"] == pytest.approx(got["acc"] + (1 - got["acc"]) * got["fsa"])


def test_cifar100_mapping_of_the_paper_subset_must_match_the_model():
    """The paper drops 4 classes (96 remain): a 100-entry mapping on 96 scores is an error."""
    mapping, _, _ = load_cifar_mapping()
    with pytest.raises(ValueError, match=r"100 classes, from the length of `fine_to_coarse`"):
        superclass_accuracy(torch.randn(3, 96), torch.tensor([0, 1, 2]), mapping)
