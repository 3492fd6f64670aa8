"""The geometric mean of sensitivities against imbalanced-learn, on real predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from real_predictions import abalone_predictions, utkface_predictions

from simloss.metrics import (
    GeometricMeanSensitivity,
    geometric_mean_sensitivity,
    metric_facts,
    metric_keys,
)


def test_matches_imbalanced_learn_over_the_classes_present() -> None:
    from imblearn.metrics import geometric_mean_score

    logits, target, _ = abalone_predictions()
    sets = [("abalone", logits, target), *((k, *v) for k, v in utkface_predictions().items())]
    for name, scores, labels in sets:
        present = np.unique(labels.numpy())
        expected = geometric_mean_score(
            labels.numpy(), scores.argmax(1).numpy(), labels=present, average="multiclass"
        )
        assert float(geometric_mean_sensitivity(scores, labels)) == pytest.approx(expected), name


def test_the_class_over_batches_equals_the_function() -> None:
    logits, target, _ = abalone_predictions()
    metric = GeometricMeanSensitivity(num_classes=logits.shape[1])
    for part in (slice(0, 100), slice(100, 100), slice(100, None)):
        metric.update(logits[part], target[part])
    assert float(metric.compute()) == pytest.approx(
        float(geometric_mean_sensitivity(logits, target))
    )


def test_edge_cases_and_registration() -> None:
    assert math.isnan(float(geometric_mean_sensitivity(torch.zeros(0, 3), torch.zeros(0).long())))
    assert float(geometric_mean_sensitivity(torch.tensor([1, 1]), torch.tensor([0, 1]))) == 0.0
    # one file: runs of ordered tasks record it, reports and monitors know its direction
    assert "gms" in metric_keys(ordered=True) and "gms" not in metric_keys(superclasses=True)
    facts = metric_facts("gms_min_risk")
    assert facts.higher_is_better and facts.is_percent and facts.label == "GMS (min-risk)"
