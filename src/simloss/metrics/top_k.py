"""Accuracy and top-k accuracy: ``accuracy`` and ``Accuracy``.

Example:
    >>> import torch
    >>> from simloss.metrics import Accuracy, accuracy
    >>> metric = Accuracy()
    >>> metric.update(torch.tensor([0, 1]), torch.tensor([0, 0]))
    >>> metric.update(torch.tensor([[0.1, 0.9]]), torch.tensor([1]))
    >>> round(float(metric.compute()), 4)
    0.6667
    >>> metric.key, metric.label, metric.higher_is_better, metric.is_percent
    ('acc', 'Acc', True, True)
    >>> Accuracy(top_k=3).key, Accuracy(decoder="min_risk", cost=[[0, 1], [1, 0]]).key
    ('acc_top3', 'acc_min_risk')
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from torch import Tensor

from simloss.metrics._batch import Batch
from simloss.metrics._checks import check_num_classes, check_top_k
from simloss.metrics._declaration import (
    MetricDeclaration,
    MetricTask,
    decoded_key,
    decoded_label,
    numeric_key,
    register,
)
from simloss.metrics._stats import Stats, count, ratio, target_rank
from simloss.metrics.decoders import CLASS_DECODERS, check_decoding

__all__ = ["ACCURACY", "accuracy"]


def _configure(
    *,
    top_k: object,
    num_classes: object,
    decoder: object,
    input_type: object,
    cost: object,
) -> dict[str, Any]:
    classes = check_num_classes(num_classes)
    k = check_top_k(top_k)
    decoding = check_decoding(decoder, input_type, cost, num_classes=classes)
    if k > 1 and decoding["decoder"] != "argmax":
        raise ValueError(
            f"Expected `top_k` = 1 with decoder={decoding['decoder']!r} (a decoder predicts one "
            f"class), but found top_k = {k}"
        )
    return {"top_k": k, "num_classes": classes, **decoding}


def _stats(
    batch: Batch,
    *,
    top_k: int,
    num_classes: int | None,
    decoder: str,
    input_type: str,
    cost: Tensor | None,
) -> Stats:
    batch.check_classes(num_classes)
    if top_k == 1:
        hit = batch.classes(decoder, input_type=input_type, cost=cost) == batch.target
    else:
        scores = batch.scores("for top_k > 1")
        if top_k > scores.shape[1]:
            raise ValueError(
                f"Expected `top_k` <= number of classes ({scores.shape[1]}), but found {top_k}"
            )
        hit = target_rank(scores, batch.target) < top_k
    return hit.sum(), count(hit)


def accuracy(
    preds: Tensor,
    target: Tensor,
    top_k: int = 1,
    *,
    ignore_index: int | None = None,
    num_classes: int | None = None,
    decoder: str = "argmax",
    input_type: str = "logits",
    cost: Any = None,
) -> Tensor:
    r"""Fraction of examples whose target is among the ``top_k`` highest-scored classes.

    .. math::
        \mathrm{acc@k} = \frac{1}{N} \sum_{n=1}^{N} [\operatorname{rank}_n(y_n) < k]

    where :math:`\operatorname{rank}_n(y)` is the number of classes scored above
    :math:`y` plus those tied with it at a lower index (so ``top_k=1`` is exactly
    ``argmax == target``). With another ``decoder`` (``top_k=1``), the fraction whose
    decoded class is the target, e.g. the accuracy of the minimum-risk decision.

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,);
            ``top_k > 1`` and the decoders other than the argmax need scores.
        target: integer class indices (N,).
        top_k: how many of the highest-scored classes count as a hit (1 <= k <= C).
        ignore_index: target value whose examples are left out.
        num_classes: C, to check index ranges when ``preds`` are indices.
        decoder: ``"argmax"`` (default), ``"median"`` (in class-index order) or
            ``"min_risk"`` (see :mod:`simloss.metrics.decoders`).
        input_type: ``"logits"`` (default) or ``"probs"``, for the decoders.
        cost: (C, C) cost of ``"min_risk"``, rows by decision, columns by true class.

    Returns:
        A 0-dim float64 tensor in [0, 1]; ``nan`` when no example is counted.

    Example:
        >>> import torch
        >>> preds = torch.tensor([[2.0, 1.0, 0.1], [0.2, 0.5, 0.3], [0.9, 0.02, 0.08]])
        >>> target = torch.tensor([0, 2, 1])
        >>> round(float(accuracy(preds, target)), 4)
        0.3333
        >>> round(float(accuracy(preds, target, top_k=2)), 4)
        0.6667
        >>> float(accuracy(torch.tensor([0, 2, 2]), target))
        0.6666666666666666
    """
    return ACCURACY.evaluate(
        preds,
        target,
        top_k=top_k,
        ignore_index=ignore_index,
        num_classes=num_classes,
        decoder=decoder,
        input_type=input_type,
        cost=cost,
    )


def _key(config: Mapping[str, Any]) -> str:
    if config.get("top_k", 1) != 1:
        return f"acc_top{config['top_k']}"
    return decoded_key("acc", str(config.get("decoder", "argmax")))


def _label(config: Mapping[str, Any]) -> str:
    if config.get("top_k", 1) != 1:
        return f"Top-{config['top_k']} acc"
    return decoded_label("Acc", str(config.get("decoder", "argmax")))


def _top_k(text: str) -> int:
    return check_top_k(int(text))


def _record(task: MetricTask) -> Iterator[dict[str, Any]]:
    for decoding in task.decoding(("argmax", "min_risk"), always_argmax=True):
        yield {"num_classes": task.num_classes, **decoding}


ACCURACY = register(
    MetricDeclaration(
        key="acc",
        label="Acc",
        class_name="Accuracy",
        function=accuracy,
        configure=_configure,
        stats=_stats,
        compute=ratio,
        higher_is_better=True,
        is_percent=True,
        decoders=CLASS_DECODERS,
        record=_record,
        key_of=_key,
        label_of=_label,
        parse_key=numeric_key("acc_top", "top_k", _top_k, plain="acc"),
        class_doc="""Accumulating (top-k) accuracy; see :func:`simloss.metrics.accuracy`.

    Args: those of :func:`simloss.metrics.accuracy` after ``preds`` and ``target``
    (``top_k``, ``ignore_index``, ``num_classes``, ``decoder``, ``input_type``, ``cost``),
    and torchmetrics' ``process_group`` (default: the world), ``dist_sync_on_step``,
    ``sync_on_compute``, ``compute_on_cpu``.
    """,
    )
)
