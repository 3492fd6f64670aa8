"""The plain float64 SimLoss formulas in PyTorch: the independent reference of the ports.

``logsumexp(z) - logsumexp(z + log S[y])`` for index labels (and its
``log_probs``/``probs`` forms), ``-sum_k T_k log (p S^T)_k`` for label
weights, each term in log space; autograd of these gives the reference
gradients and Hessians. Shared by the JAX tests and the Keras backend checks.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from simloss import ClassOrder, SparseSimilarity
from simloss.similarity import class_order

__all__ = ["PROBLEM", "make_problem", "reference_losses", "similarity_forms"]

F64 = torch.float64


def _log_similar_mass(scores: Tensor, log_rows: Tensor, input_type: str) -> Tensor:
    """``log sum_c S[k, c] p[c]`` for rows ``log S[k]`` (..., C), in log space."""
    if input_type == "probs":
        return torch.log((log_rows.exp() * scores).sum(-1))
    similar = torch.logsumexp(scores + log_rows, -1)
    if input_type == "logits":
        return similar - torch.logsumexp(scores, -1)
    return similar  # log-probabilities are not renormalised


def reference_losses(
    scores: Tensor,
    labels: Tensor,
    S: Tensor,
    *,
    input_type: str = "logits",
    label_smoothing: float = 0.0,
    keep: Tensor | None = None,
) -> Tensor:
    """Per-example float64 SimLoss of (N, C) scores; ``keep`` False gives 0."""
    scores = scores.to(F64)
    log_s = torch.log(S.to(F64))
    num_classes = scores.shape[1]
    # log A_nk for every class k: (N, C)
    all_classes = _log_similar_mass(scores[:, None, :], log_s[None, :, :], input_type)
    if labels.is_floating_point():
        weights = labels.to(F64) * (1 - label_smoothing) + label_smoothing / num_classes
        terms = torch.where(weights != 0, weights * all_classes, 0.0)
        losses = -terms.sum(1)
    else:
        safe = labels.clamp(0, num_classes - 1)
        losses = -_log_similar_mass(scores, log_s[safe], input_type)
        if label_smoothing:
            losses = (1 - label_smoothing) * losses - (
                label_smoothing / num_classes
            ) * all_classes.sum(1)
    if keep is not None:
        losses = torch.where(keep, losses, 0.0)
    return losses


def random_similarity(num_classes: int, seed: int) -> Tensor:
    """A float64 S in [0, 1] with a unit diagonal and about 40% zeros off it."""
    gen = torch.Generator().manual_seed(seed)
    S = torch.rand(num_classes, num_classes, generator=gen, dtype=F64)
    S = S * (torch.rand(num_classes, num_classes, generator=gen, dtype=F64) > 0.4)
    S.fill_diagonal_(1.0)
    return S


def similarity_forms(num_classes: int, seed: int = 3) -> dict[str, tuple[object, Tensor]]:
    """``form -> (similarity as the ports take it, its dense float64 matrix)``."""
    dense = random_similarity(num_classes, seed)
    order = class_order(num_classes, 0.6, dtype=F64)
    return {
        "dense": (dense.numpy(), dense),
        "order": (ClassOrder(num_classes, 0.6), order),
        "sparse": (SparseSimilarity.from_dense(dense), dense),
    }


PROBLEM = {"rows": 6, "classes": 5}


def make_problem(input_type: str, target: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Scores, labels and the example mask of a small float64 problem.

    ``target``: ``index``, ``masked`` (two examples masked, their labels -100),
    ``soft`` (probability labels) or ``soft_masked``.
    """
    rng = np.random.default_rng(seed)
    n, c = PROBLEM["rows"], PROBLEM["classes"]
    z = rng.normal(size=(n, c)) * 2.5
    if input_type == "probs":
        z = np.exp(z - z.max(1, keepdims=True))
        z = z / z.sum(1, keepdims=True)
    elif input_type == "log_probs":
        z = z - np.log(np.exp(z).sum(1, keepdims=True))
    keep = np.ones(n, dtype=bool)
    if target.startswith("soft"):
        t = rng.random((n, c))
        labels = t / t.sum(1, keepdims=True)
    else:
        labels = rng.integers(0, c, size=n)
    if target.endswith("masked"):
        keep[[1, 4]] = False
        if not target.startswith("soft"):
            labels[[1, 4]] = -100
    return {"scores": z, "labels": labels, "keep": keep, "upstream": rng.random(n) + 0.5}
