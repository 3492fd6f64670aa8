"""Per-sample SimLoss as plain differentiable operations (the reference path).

These formulas are what the loss means; every PyTorch transform differentiates
them: autograd to any order, ``torch.func`` (``grad``, ``vmap``, ``jacrev``,
``jvp``) and ``torch.compile``. Gradients reach every differentiable input:
the scores, the similarity (dense or sparse values) and probability targets.
The eager fast path (:mod:`simloss._fused`) computes the same values with a
closed-form first-order gradient and falls back to these for higher orders.
"""

from __future__ import annotations

import torch
from torch import Tensor

from simloss._logsumexp import apply_weighted_logsumexp
from simloss.similarity.operator import LossOperator, SimilarityRows

__all__ = ["index_losses", "row_dot", "soft_losses"]


def row_dot(rows: SimilarityRows, probs: Tensor) -> Tensor:
    """``sum_c S[y_i, c] p_i[c]`` for each row (differentiable)."""
    if rows.dense is not None:
        return (rows.dense * probs).sum(1)
    assert rows.columns is not None and rows.values is not None
    return (rows.values * probs.gather(1, rows.columns)).sum(1)


def index_losses(scores: Tensor, rows: SimilarityRows, input_type: str) -> Tensor:
    """Per-sample loss ``-log sum_c S[y_i, c] p_i[c]`` for index targets, shape (N,).

    ``logits``: ``logsumexp(z) - wlse(z, S[y])``; ``log_probs``:
    ``-wlse(x, S[y])`` (no renormalisation, as ``nll_loss`` does not
    renormalise); ``probs``: ``-log(S[y] . p)``.
    """
    if input_type == "probs":
        return -torch.log(row_dot(rows, scores))
    if rows.columns is None:
        assert rows.dense is not None
        logits, weights = scores, rows.dense
    else:
        assert rows.values is not None
        logits, weights = scores.gather(1, rows.columns), rows.values
    similar = apply_weighted_logsumexp(logits, weights)
    if input_type == "logits":
        return torch.logsumexp(scores, 1) - similar
    return -similar


def soft_losses(
    scores: Tensor, target_weights: Tensor, operator: LossOperator, input_type: str
) -> Tensor:
    """Per-sample ``-sum_k T_ik log A_ik`` with ``A = p S^T``, for weights ``T >= 0`` (N, C).

    Computed in linear space: exact unless every class similar to a class
    ``k`` with ``T_k > 0`` has a probability below the dtype's smallest
    normal number, where the term is ``inf`` (the eager path recomputes such
    rows in log space). ``log_probs`` inputs are not renormalised.
    """
    probs = scores if input_type == "probs" else torch.softmax(scores, 1)
    mass = operator.similar_mass(probs)
    active = target_weights != 0
    # Classes with T_k = 0 contribute 0, also where A_k underflowed to 0; their
    # derivative in T_k is -log A_k wherever A_k > 0.
    used = active | (mass > 0)
    safe_mass = torch.where(used, mass, 1.0)
    terms = torch.where(used, target_weights * torch.log(safe_mass), 0.0)
    loss = -terms.sum(1)
    if input_type == "log_probs":
        loss = loss - target_weights.sum(1) * torch.logsumexp(scores, 1)
    return loss
