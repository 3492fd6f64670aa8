"""Cohen's kappa with quadratic, linear or no weights (QWK: the standard of ordinal grading).

.. math::
    \\kappa_w = 1 - \\frac{\\sum_{ij} w_{ij} O_{ij}}{\\sum_{ij} w_{ij} E_{ij}}, \\qquad
    E_{ij} = \\frac{O_{i\\cdot} O_{\\cdot j}}{N}

with :math:`O` the confusion matrix (rows: target, columns: prediction) and
:math:`w_{ij} = (i - j)^2` (quadratic), :math:`|i - j|` (linear) or
:math:`[i \\ne j]` (unweighted), on class *indices* 0..C-1 (ranks), as torchmetrics'
``MulticlassCohenKappa`` and Kaggle do. It equals scikit-learn's
``cohen_kappa_score(target, preds, weights=..., labels=range(C))``. Without ``labels``
scikit-learn ranks only the labels that occur, so a class absent from both targets
and predictions (a gap in the ranks) gives it other weights: for targets
``[0, 1, 1, 4, 4, 0, 1]`` and predictions ``[0, 4, 1, 4, 1, 1, 0]`` QWK is 0.4355
here and with ``labels=range(5)``, 0.5 with scikit-learn's default. ``C`` is
``num_classes`` (there is no ``labels`` argument), else the scores' width, else the
largest index seen plus one.
The confusion matrix is the statistic, so any batching gives the whole set's value.

Undefined (``nan``): when :math:`\\sum w_{ij} E_{ij} = 0`, i.e. every target and
every prediction is one and the same class (chance agreement is then perfect:
0/0), and on empty input. Constant predictions with targets of several classes
give exactly 0.

Example:
    >>> import torch
    >>> from simloss.metrics import CohenKappa
    >>> metric = CohenKappa(num_classes=3)
    >>> metric.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    >>> metric.update(torch.tensor([1, 2, 2]), torch.tensor([2, 2, 1]))
    >>> round(float(metric.compute()), 4), metric.key, metric.label
    (0.6429, 'qwk', 'QWK')

References:
    Cohen. "Weighted kappa: Nominal scale agreement with provision for scaled
    disagreement or partial credit." Psychological Bulletin 70(4), 1968.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor

from simloss.metrics._batch import Batch
from simloss.metrics._checks import check_num_classes, float_dtype
from simloss.metrics._declaration import (
    MetricDeclaration,
    MetricTask,
    State,
    decoded_key,
    decoded_label,
    register,
)
from simloss.metrics._stats import ArrayLike, Stats
from simloss.metrics.decoders import CLASS_DECODERS, check_decoding

__all__ = ["COHEN_KAPPA", "WEIGHTS", "cohen_kappa", "confusion_matrix"]

#: The weightings and their record keys and labels.
WEIGHTS: dict[str | None, tuple[str, str]] = {
    "quadratic": ("qwk", "QWK"),
    "linear": ("lwk", "LWK"),
    None: ("kappa", "Kappa"),
}


def confusion_matrix(target: Tensor, pred: Tensor, num_classes: int) -> Tensor:
    """(C, C) int64 counts, rows by target, columns by prediction."""
    flat = target * num_classes + pred
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def _configure(
    *, weights: object, num_classes: object, decoder: object, input_type: object, cost: object
) -> dict[str, Any]:
    if weights not in WEIGHTS:
        raise ValueError(f"Expected `weights` to be one of {list(WEIGHTS)}, but found {weights!r}")
    classes = check_num_classes(num_classes)
    decoding = check_decoding(decoder, input_type, cost, num_classes=classes)
    return {"weights": weights, "num_classes": classes, **decoding}


def _states(config: Mapping[str, Any]) -> tuple[State, ...]:
    classes = config["num_classes"]
    if classes is None:
        raise TypeError(
            "Expected `num_classes` (the confusion matrix is the state), but found None"
        )
    return (("confusion", (classes, classes), torch.int64),)


def _stats(
    batch: Batch,
    *,
    weights: str | None,
    num_classes: int | None,
    decoder: str,
    input_type: str,
    cost: Tensor | None,
) -> Stats:
    classes = batch.check_classes(num_classes)
    pred = batch.classes(decoder, input_type=input_type, cost=cost)
    if classes is None:  # indices without a class count: the largest index seen
        classes = int(max(pred.max(), batch.target.max())) + 1 if pred.numel() else 1
    return (confusion_matrix(batch.target, pred, classes),)


def _kappa(confusion: Tensor, *, weights: str | None) -> Tensor:
    """``1 - N sum(w O) / sum(w r c^T)`` (``r``, ``c``: the row and column sums of ``O``);
    0 / 0 (``nan``) when chance agreement is perfect.

    Quadratic and unweighted kappa need only the marginals and one matrix-vector
    product (O(C^2) once, no (C, C) temporaries); linear weights form the matrix.
    """
    dtype = float_dtype(confusion.device)
    observed = confusion.to(dtype)
    classes = observed.shape[0]
    index = torch.arange(classes, device=observed.device, dtype=dtype)
    rows, columns = observed.sum(dim=1), observed.sum(dim=0)
    total = rows.sum()
    if weights == "quadratic":  # (i - j)^2 = i^2 - 2 i j + j^2
        square = index.square()
        disagreement = rows @ square + columns @ square - 2.0 * (index @ (observed @ index))
        chance = (
            rows @ square * total
            + columns @ square * total
            - 2.0 * (rows @ index) * (columns @ index)
        )
    elif weights is None:  # [i != j]
        disagreement = total - observed.diagonal().sum()
        chance = total * total - rows @ columns
    else:
        weight = (index[:, None] - index[None, :]).abs()
        disagreement = (weight * observed).sum()
        chance = rows @ weight @ columns
    return 1.0 - total * disagreement / chance


def cohen_kappa(
    preds: Tensor,
    target: Tensor,
    *,
    weights: str | None = "quadratic",
    ignore_index: int | None = None,
    num_classes: int | None = None,
    decoder: str = "argmax",
    input_type: str = "logits",
    cost: ArrayLike | None = None,
) -> Tensor:
    r"""Cohen's kappa between predicted and target classes, quadratically weighted by default.

    See the module for the formula. Weights act on class indices (ranks), not on
    class values: QWK is the same for ages 1..90 as for indices 0..89. The value is
    scikit-learn's ``cohen_kappa_score(target, preds, weights=weights,
    labels=range(C))``: every class of 0..C-1 keeps its rank, also one absent from
    both targets and predictions (scikit-learn's default re-ranks the labels present).

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        weights: ``"quadratic"`` (default, QWK), ``"linear"`` (LWK) or ``None`` (Cohen's
            unweighted kappa).
        ignore_index: target value whose examples are left out.
        num_classes: C (the class needs it; the function takes it from the scores, or
            from the largest index when ``preds`` are indices).
        decoder: ``"argmax"`` (default), ``"median"`` or ``"min_risk"``.
        input_type: ``"logits"`` (default) or ``"probs"``, for the decoders.
        cost: (C, C) cost of ``"min_risk"``.

    Returns:
        A 0-dim float64 tensor in [-1, 1]; ``nan`` when every target and prediction is
        one and the same class, or no example is counted.

    Example:
        >>> import torch
        >>> target = torch.tensor([0, 1, 2, 2, 3])
        >>> preds = torch.tensor([0, 1, 1, 2, 3])
        >>> round(float(cohen_kappa(preds, target)), 4)
        0.9057
        >>> round(float(cohen_kappa(preds, target, weights="linear")), 4)
        0.8276
        >>> cohen_kappa(torch.tensor([1, 1]), torch.tensor([1, 1])).isnan().item()
        True
        >>> float(cohen_kappa(torch.tensor([1, 1, 1]), torch.tensor([0, 1, 2])))
        0.0
    """
    return COHEN_KAPPA.evaluate(
        preds,
        target,
        weights=weights,
        ignore_index=ignore_index,
        num_classes=num_classes,
        decoder=decoder,
        input_type=input_type,
        cost=cost,
    )


def _key(config: Mapping[str, Any]) -> str:
    name = WEIGHTS[config.get("weights", "quadratic")][0]
    return decoded_key(name, str(config.get("decoder", "argmax")))


def _label(config: Mapping[str, Any]) -> str:
    label = WEIGHTS[config.get("weights", "quadratic")][1]
    return decoded_label(label, str(config.get("decoder", "argmax")))


def _parse(key: str) -> dict[str, Any] | None:
    return next(({"weights": w} for w, (k, _) in WEIGHTS.items() if k == key), None)


def _record(task: MetricTask) -> Iterator[dict[str, Any]]:
    for decoding in task.decoding(("argmax", "min_risk"), always_argmax=True):
        yield {"weights": "quadratic", "num_classes": task.num_classes, **decoding}


COHEN_KAPPA = register(
    MetricDeclaration(
        key="qwk",
        label="QWK",
        class_name="CohenKappa",
        function=cohen_kappa,
        configure=_configure,
        stats=_stats,
        compute=_kappa,
        compute_uses=("weights",),
        states=_states,
        higher_is_better=True,
        needs=frozenset({"ordered"}),
        decoders=CLASS_DECODERS,
        record=_record,
        key_of=_key,
        label_of=_label,
        parse_key=_parse,
    )
)
