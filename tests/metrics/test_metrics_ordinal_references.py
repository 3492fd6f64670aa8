"""QWK, AMAE, MMAE, RPS and minimum sensitivity against independent implementations,
on real predictions (the authors' UTKFace models, a CE model of Abalone), and their edge cases."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from real_predictions import abalone_predictions, utkface_predictions
from sklearn.metrics import cohen_kappa_score, recall_score

from simloss.metrics import (
    AverageMeanAbsoluteError,
    CohenKappa,
    MaximumMeanAbsoluteError,
    MinimumSensitivity,
    RankedProbabilityScore,
    average_mean_absolute_error,
    cohen_kappa,
    maximum_mean_absolute_error,
    minimum_sensitivity,
    ranked_probability_score,
)


def _sets():
    """(name, logits, targets, class values) of every real prediction set."""
    logits, target, values = abalone_predictions()
    yield "abalone", logits, target, values
    for name, (logits, target) in utkface_predictions().items():
        yield name, logits, target, list(range(1, 91))


@pytest.fixture(scope="module")
def real_sets():
    return list(_sets())


def _present_subset(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Examples whose predicted class is among the targets (of the subset itself):
    imbalanced-learn's AMAE fails on a class that only predictions have."""
    keep = np.ones(len(target), dtype=bool)
    while True:
        allowed = set(target[keep].tolist())
        new = keep & np.isin(pred, list(allowed))
        if new.sum() == keep.sum():
            return keep
        keep = new


@pytest.mark.parametrize("weights", ["quadratic", "linear", None])
def test_kappa_matches_sklearn_and_torchmetrics(real_sets, weights) -> None:
    from torchmetrics.functional.classification import multiclass_cohen_kappa

    for name, logits, target, _ in real_sets:
        classes = logits.shape[1]
        pred = logits.argmax(1)
        ours = float(cohen_kappa(logits, target, weights=weights))
        sk = cohen_kappa_score(
            target.numpy(), pred.numpy(), weights=weights, labels=list(range(classes))
        )
        tm = float(multiclass_cohen_kappa(logits, target, classes, weights=weights))
        assert ours == pytest.approx(sk, abs=1e-12), name
        assert ours == pytest.approx(tm, abs=1e-5), name  # torchmetrics sums in float32


def test_amae_matches_imbalanced_learn_and_mmae_the_per_class_maximum(real_sets) -> None:
    from imblearn.metrics import macro_averaged_mean_absolute_error
    from sklearn.metrics import mean_absolute_error as sk_mae

    for name, logits, target, values in real_sets:
        v = np.asarray(values, dtype=np.float64)
        pred = logits.argmax(1).numpy()
        keep = _present_subset(pred, target.numpy())
        assert keep.sum() > 50, name
        y_true, y_pred = v[target.numpy()[keep]], v[pred[keep]]
        sub_logits, sub_target = logits[torch.from_numpy(keep)], target[torch.from_numpy(keep)]
        ours = float(average_mean_absolute_error(sub_logits, sub_target, class_values=values))
        assert ours == pytest.approx(macro_averaged_mean_absolute_error(y_true, y_pred), rel=1e-12)
        worst = max(sk_mae(y_true[y_true == c], y_pred[y_true == c]) for c in np.unique(y_true))
        ours_max = float(maximum_mean_absolute_error(sub_logits, sub_target, class_values=values))
        assert ours_max == pytest.approx(worst, rel=1e-12), name


def test_amae_leaves_out_classes_without_targets() -> None:
    # class 2 is predicted but never a target: its MAE is undefined, not 0 (imbalanced-learn
    # fails on it; dlordinal and skordinal drop it as here)
    target = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 2, 1, 1])
    assert float(average_mean_absolute_error(pred, target, num_classes=3)) == 0.5  # (1 + 0) / 2
    assert float(maximum_mean_absolute_error(pred, target, num_classes=3)) == 1.0
    # with the class declared (num_classes=5) nothing changes: absent classes never count
    metric = AverageMeanAbsoluteError(num_classes=5)
    metric.update(pred[:2], target[:2])
    metric.update(pred[2:], target[2:])
    assert float(metric.compute()) == 0.5


def test_rps_matches_dlordinal(real_sets) -> None:
    from dlordinal.metrics import ranked_probability_score as dl_rps

    for name, logits, target, _ in real_sets:
        probs = torch.softmax(logits, dim=1)
        ours = float(ranked_probability_score(logits, target))
        assert ours == pytest.approx(dl_rps(target.numpy(), probs.numpy()), rel=1e-10), name
        as_probs = float(ranked_probability_score(probs, target, input_type="probs"))
        assert as_probs == pytest.approx(ours, rel=1e-10)


def test_rps_follows_the_order_of_class_values() -> None:
    # columns given in the order 30, 10, 20: the score reads them sorted by value
    probs = torch.tensor([[0.2, 0.5, 0.3]], dtype=torch.float64)
    ours = ranked_probability_score(
        probs, torch.tensor([0]), class_values=[30, 10, 20], input_type="probs"
    )
    sorted_probs = torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64)
    same = ranked_probability_score(sorted_probs, torch.tensor([2]), input_type="probs")
    assert float(ours) == pytest.approx(float(same))


def test_minimum_sensitivity_matches_sklearns_recalls(real_sets) -> None:
    for name, logits, target, _ in real_sets:
        pred = logits.argmax(1).numpy()
        present = np.unique(target.numpy())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            recalls = recall_score(target.numpy(), pred, labels=present, average=None)
        assert float(minimum_sensitivity(logits, target)) == pytest.approx(recalls.min()), name


@pytest.mark.parametrize(
    ("make", "function", "kwargs"),
    [
        (lambda c, v: CohenKappa(num_classes=c), cohen_kappa, {}),
        (
            lambda c, v: CohenKappa(weights="linear", num_classes=c),
            cohen_kappa,
            {"weights": "linear"},
        ),
        (
            lambda c, v: AverageMeanAbsoluteError(class_values=v),
            average_mean_absolute_error,
            {"class_values": None},
        ),
        (
            lambda c, v: MaximumMeanAbsoluteError(class_values=v, decoder="expectation"),
            maximum_mean_absolute_error,
            {"class_values": None, "decoder": "expectation"},
        ),
        (
            lambda c, v: RankedProbabilityScore(class_values=v),
            ranked_probability_score,
            {"class_values": None},
        ),
        (lambda c, v: MinimumSensitivity(num_classes=c), minimum_sensitivity, {}),
    ],
    ids=["qwk", "lwk", "amae", "mmae-expectation", "rps", "ms"],
)
def test_classes_over_batches_equal_the_function_on_the_whole_set(make, function, kwargs) -> None:
    logits, target, values = abalone_predictions()
    call = {k: (values if k == "class_values" else v) for k, v in kwargs.items()}
    whole = float(function(logits, target, **call))
    metric = make(logits.shape[1], values)
    for lo, hi in itertools.pairwise([0, 7, 7, 300, 301, len(target)]):  # an empty batch too
        metric.update(logits[lo:hi], target[lo:hi])
    assert float(metric.compute()) == pytest.approx(whole, rel=1e-12, abs=1e-15)


def test_edge_cases_are_nan_never_made_up() -> None:
    empty = torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64)
    for function in (
        cohen_kappa,
        average_mean_absolute_error,
        maximum_mean_absolute_error,
        ranked_probability_score,
        minimum_sensitivity,
    ):
        assert math.isnan(float(function(*empty))), function.__name__
    # kappa: one class everywhere is 0/0 (chance agreement is perfect) ...
    same = torch.tensor([2, 2, 2])
    assert math.isnan(float(cohen_kappa(same, same, num_classes=4)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert math.isnan(cohen_kappa_score(same.numpy(), same.numpy()))  # scikit-learn agrees
    # ... while constant predictions of targets of several classes agree by chance only: 0
    assert float(cohen_kappa(torch.tensor([1, 1, 1]), torch.tensor([0, 1, 2]))) == 0.0
    # every example ignored
    assert math.isnan(float(cohen_kappa(torch.tensor([1]), torch.tensor([-1]), ignore_index=-1)))


def test_classes_need_a_class_count_for_their_per_class_states() -> None:
    with pytest.raises(TypeError, match="num_classes"):
        CohenKappa()
    with pytest.raises(TypeError, match="num_classes"):
        AverageMeanAbsoluteError()
    with pytest.raises(ValueError, match="weights"):
        cohen_kappa(torch.tensor([0]), torch.tensor([0]), weights="cubic")


@pytest.mark.parametrize("weights", ["quadratic", "linear", None])
def test_kappa_keeps_the_rank_of_a_class_absent_from_targets_and_predictions(weights) -> None:
    # classes 2 and 3 occur nowhere: scikit-learn with labels=range(C) keeps their ranks
    target, pred = [0, 1, 1, 4, 4, 0, 1], [0, 4, 1, 4, 1, 1, 0]
    expected = cohen_kappa_score(target, pred, weights=weights, labels=list(range(5)))
    for num_classes in (None, 5):  # from the largest index, or given
        ours = float(
            cohen_kappa(torch.tensor(pred), torch.tensor(target), weights=weights,
                        num_classes=num_classes)
        )  # fmt: skip
        assert ours == pytest.approx(expected, abs=1e-12)
    if weights == "quadratic":  # the documented example: scikit-learn's default re-ranks
        assert ours == pytest.approx(0.43548387, abs=1e-8)
        assert cohen_kappa_score(target, pred, weights=weights) == pytest.approx(0.5)
