"""Off-by-k accuracy on ordered classes: the fraction of predictions at most ``k`` away.

Example:
    >>> import torch
    >>> from simloss.metrics import OffByKAccuracy
    >>> metric = OffByKAccuracy(1)
    >>> metric.update(torch.tensor([3, 5]), torch.tensor([4, 3]))
    >>> float(metric.compute())
    0.5
    >>> metric.key, metric.label
    ('off_by_1', 'Acc ±1')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from simloss.metrics._batch import Batch
from simloss.metrics._checks import check_nonnegative_real
from simloss.metrics._declaration import (
    MetricDeclaration,
    decoded_key,
    decoded_label,
    numeric_key,
    register,
)
from simloss.metrics._stats import ArrayLike, Stats, count, ratio
from simloss.metrics.decoders import DECODERS
from simloss.metrics.value_error import configure_ordered, value_differences

__all__ = ["OFF_BY_K", "off_by_k_accuracy"]


def _configure(*, k: object, **ordered: Any) -> dict[str, Any]:
    return {"k": check_nonnegative_real(k, "k"), **configure_ordered(**ordered)}


def _stats(batch: Batch, *, k: float, **config: Any) -> Stats:
    within = value_differences(batch, **config).abs() <= k
    return within.sum(), count(within)


def off_by_k_accuracy(
    preds: Tensor,
    target: Tensor,
    k: float,
    *,
    class_values: ArrayLike | None = None,
    ignore_index: int | None = None,
    num_classes: int | None = None,
    decoder: str = "argmax",
    input_type: str = "logits",
    cost: ArrayLike | None = None,
) -> Tensor:
    r"""Fraction of predictions at most ``k`` away from the target (ordered classes).

    .. math::
        \mathrm{acc}_{\pm k} = \frac{1}{N} \sum_{n=1}^{N} [\,|\hat v_n - v_{y_n}| \le k\,]

    with :math:`\hat v_n` the predicted value under ``decoder`` (see
    :func:`~simloss.metrics.mean_absolute_error`). ``k = 0`` with the argmax is plain
    accuracy (for distinct class values).

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        k: tolerance >= 0, in class indices or, with ``class_values``, in their units.
        class_values: (C,) value of each class.
        ignore_index: target value whose examples are left out.
        num_classes: C, to check index ranges when neither scores nor values give it.
        decoder: ``"argmax"`` (default), ``"expectation"``, ``"median"`` or ``"min_risk"``.
        input_type: ``"logits"`` (default) or ``"probs"``, for the decoders.
        cost: (C, C) cost of ``"min_risk"``.

    Returns:
        A 0-dim float64 tensor in [0, 1]; ``nan`` when no example is counted.

    Example:
        >>> import torch
        >>> target = torch.tensor([30, 30, 30, 30])
        >>> preds = torch.tensor([30, 31, 28, 36])
        >>> float(off_by_k_accuracy(preds, target, 2))
        0.75
    """
    return OFF_BY_K.evaluate(
        preds,
        target,
        k=k,
        class_values=class_values,
        ignore_index=ignore_index,
        num_classes=num_classes,
        decoder=decoder,
        input_type=input_type,
        cost=cost,
    )


def _key(config: Mapping[str, Any]) -> str:
    return decoded_key(f"off_by_{float(config['k']):g}", str(config.get("decoder", "argmax")))


def _label(config: Mapping[str, Any]) -> str:
    return decoded_label(f"Acc ±{float(config['k']):g}", str(config.get("decoder", "argmax")))


OFF_BY_K = register(
    MetricDeclaration(
        key=None,
        label="Acc ±k",
        class_name="OffByKAccuracy",
        function=off_by_k_accuracy,
        configure=_configure,
        stats=_stats,
        compute=ratio,
        higher_is_better=True,
        is_percent=True,
        needs=frozenset({"ordered"}),
        decoders=DECODERS,
        key_of=_key,
        label_of=_label,
        parse_key=numeric_key(
            "off_by_", "k", lambda text: check_nonnegative_real(float(text), "k")
        ),
        class_doc="""Accumulating off-by-k accuracy; see :func:`simloss.metrics.off_by_k_accuracy`.

    Args: those of :func:`simloss.metrics.off_by_k_accuracy` after ``preds`` and
    ``target`` (``k``, ``class_values``, ``ignore_index``, ``num_classes``, ``decoder``,
    ``input_type``, ``cost``), and torchmetrics' ``process_group``, ...
    """,
    )
)
