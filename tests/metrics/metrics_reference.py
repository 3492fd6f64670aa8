"""Independent NumPy reference computations of the metrics (loops where that is clearest).

Nothing here imports simloss: every value the tests compare against is computed
from the definitions, on NumPy arrays of predicted and target class indices.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def keep(target: np.ndarray, ignore_index: int | None) -> np.ndarray:
    """Boolean mask of the examples that count."""
    if ignore_index is None:
        return np.ones(target.shape, dtype=bool)
    return target != ignore_index


def ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


def accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    return ratio(np.sum(pred == target), pred.size)


def top_k_accuracy(scores: np.ndarray, target: np.ndarray, k: int) -> float:
    """Hit when the target is among the first k of a stable descending sort (ties: lower index)."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hits = [int(target[n]) in set(order[n].tolist()) for n in range(len(target))]
    return ratio(sum(hits), len(hits))


def mean_abs(pred: np.ndarray, target: np.ndarray, values: np.ndarray | None) -> float:
    v = np.arange(max(pred.max(initial=0), target.max(initial=0)) + 1) if values is None else values
    return ratio(np.abs(v[pred] - v[target]).sum(), pred.size)


def mean_sq(pred: np.ndarray, target: np.ndarray, values: np.ndarray | None) -> float:
    v = np.arange(max(pred.max(initial=0), target.max(initial=0)) + 1) if values is None else values
    return ratio(((v[pred] - v[target]) ** 2).sum(), pred.size)


def off_by_k(pred: np.ndarray, target: np.ndarray, k: float, values: np.ndarray | None) -> float:
    v = np.arange(max(pred.max(initial=0), target.max(initial=0)) + 1) if values is None else values
    return ratio(np.sum(np.abs(v[pred] - v[target]) <= k), pred.size)


def superclass_acc(pred: np.ndarray, target: np.ndarray, coarse: np.ndarray) -> float:
    hits = sum(1 for p, t in zip(pred, target, strict=True) if coarse[p] == coarse[t])
    return ratio(hits, len(pred))


def failed_superclass_acc(pred: np.ndarray, target: np.ndarray, coarse: np.ndarray) -> float:
    mistakes = [(p, t) for p, t in zip(pred, target, strict=True) if p != t]
    return ratio(sum(1 for p, t in mistakes if coarse[p] == coarse[t]), len(mistakes))


def mean_sim(pred: np.ndarray, target: np.ndarray, S: np.ndarray) -> float:
    return ratio(sum(S[t, p] for p, t in zip(pred, target, strict=True)), len(pred))


def severity(pred: np.ndarray, target: np.ndarray, D: np.ndarray) -> float:
    mistakes = [D[t, p] for p, t in zip(pred, target, strict=True) if p != t]
    return ratio(sum(mistakes), len(mistakes))


def distribution(
    probs: np.ndarray, target: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overall mean (C,), per-true-class means (C, C) with nan rows, counts (C,)."""
    mean = probs.mean(axis=0) if len(probs) else np.full(num_classes, np.nan)
    per_class = np.full((num_classes, num_classes), np.nan)
    counts = np.zeros(num_classes, dtype=np.int64)
    for c in range(num_classes):
        rows = probs[target == c]
        counts[c] = len(rows)
        if len(rows):
            per_class[c] = rows.mean(axis=0)
    return mean, per_class, counts


def expectation(probs: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean class value under each row's distribution, a loop over classes."""
    out = np.zeros(len(probs))
    for c, v in enumerate(values):
        out += probs[:, c] * v
    return out


def median(probs: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Smallest class value whose cumulative probability (classes sorted by value) reaches 1/2."""
    order = sorted(range(len(values)), key=lambda c: (values[c], c))
    out = np.empty(len(probs))
    for n, row in enumerate(probs):
        total = 0.0
        for c in order:
            total += row[c]
            if total >= 0.5:
                break
        out[n] = values[c]
    return out
