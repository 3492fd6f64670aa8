"""Superclass accuracy (SA) and failed superclass accuracy (FSA) of Kobs et al. 2020, Section 4.

Example:
    >>> import torch
    >>> from simloss.metrics import FailedSuperclassAccuracy, SuperclassAccuracy
    >>> sa, fsa = SuperclassAccuracy([0, 0, 1, 1]), FailedSuperclassAccuracy([0, 0, 1, 1])
    >>> for metric in (sa, fsa):
    ...     metric.update(torch.tensor([0, 1]), torch.tensor([0, 0]))
    ...     metric.update(torch.tensor([0, 3]), torch.tensor([2, 3]))
    >>> float(sa.compute()), float(fsa.compute())
    (0.75, 0.5)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch import Tensor

from simloss.metrics._batch import Batch
from simloss.metrics._checks import check_fine_to_coarse
from simloss.metrics._declaration import MetricDeclaration, MetricTask, register
from simloss.metrics._stats import ArrayLike, Stats, count, ratio
from simloss.metrics.decoders import CLASS_DECODERS, check_decoding

__all__ = [
    "FAILED_SUPERCLASS_ACCURACY",
    "SUPERCLASS_ACCURACY",
    "failed_superclass_accuracy",
    "superclass_accuracy",
]


def _configure(
    *, fine_to_coarse: object, decoder: object, input_type: object, cost: object
) -> dict[str, Any]:
    mapping = check_fine_to_coarse(fine_to_coarse)
    decoding = check_decoding(decoder, input_type, cost, num_classes=mapping.numel())
    return {"fine_to_coarse": mapping, **decoding}


def superclass_stats(
    batch: Batch,
    *,
    fine_to_coarse: Tensor,
    decoder: str = "argmax",
    input_type: str = "logits",
    cost: Tensor | None = None,
) -> Stats:
    """SA and FSA sums: (same superclass, examples, mistakes within the superclass, mistakes)."""
    batch.check_classes(fine_to_coarse.numel(), "the length of `fine_to_coarse`")
    pred = batch.classes(decoder, input_type=input_type, cost=cost)
    mapping = fine_to_coarse.to(pred.device)
    same = mapping[pred] == mapping[batch.target]
    wrong = pred != batch.target
    return same.sum(), count(same), (same & wrong).sum(), wrong.sum()


def _sa_stats(batch: Batch, **config: Any) -> Stats:
    same, total, _, _ = superclass_stats(batch, **config)
    return same, total


def _fsa_stats(batch: Batch, **config: Any) -> Stats:
    _, _, same_wrong, wrong = superclass_stats(batch, **config)
    return same_wrong, wrong


def _record(task: MetricTask) -> Iterator[dict[str, Any]]:
    for decoding in task.decoding(("argmax", "min_risk"), always_argmax=True):
        yield {"fine_to_coarse": task.fine_to_coarse, **decoding}


def superclass_accuracy(
    preds: Tensor,
    target: Tensor,
    fine_to_coarse: ArrayLike,
    *,
    ignore_index: int | None = None,
    decoder: str = "argmax",
    input_type: str = "logits",
    cost: ArrayLike | None = None,
) -> Tensor:
    r"""Superclass Accuracy (SA): fraction of examples put into the right superclass.

    .. math::
        \mathrm{SA} = \frac{1}{N} \sum_{n=1}^{N} [\,g(\hat y_n) = g(y_n)\,]

    with :math:`g` the fine-to-coarse mapping. SA is never below accuracy, since
    a correct class implies the correct superclass (Kobs et al. 2020, Section 4).

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer fine class indices (N,).
        fine_to_coarse: (C,) integer superclass index of every fine class.
        ignore_index: target value whose examples are left out.
        decoder: ``"argmax"`` (default), ``"median"`` or ``"min_risk"``
            (:mod:`simloss.metrics.decoders`).
        input_type: ``"logits"`` (default) or ``"probs"``, for the decoders.
        cost: (C, C) cost of ``"min_risk"``.

    Returns:
        A 0-dim float64 tensor in [0, 1]; ``nan`` when no example is counted.

    Example:
        >>> import torch
        >>> fine_to_coarse = [0, 0, 1, 1]  # classes 0, 1 in superclass 0; 2, 3 in 1
        >>> target = torch.tensor([0, 0, 2, 3])
        >>> preds = torch.tensor([0, 1, 0, 3])
        >>> float(superclass_accuracy(preds, target, fine_to_coarse))
        0.75
    """
    return SUPERCLASS_ACCURACY.evaluate(
        preds,
        target,
        fine_to_coarse=fine_to_coarse,
        ignore_index=ignore_index,
        decoder=decoder,
        input_type=input_type,
        cost=cost,
    )


def failed_superclass_accuracy(
    preds: Tensor,
    target: Tensor,
    fine_to_coarse: ArrayLike,
    *,
    ignore_index: int | None = None,
    decoder: str = "argmax",
    input_type: str = "logits",
    cost: ArrayLike | None = None,
) -> Tensor:
    r"""Failed Superclass Accuracy (FSA): among the mistakes, the fraction in the right superclass.

    .. math::
        \mathrm{FSA} = \frac{\sum_n [\hat y_n \ne y_n] \, [g(\hat y_n) = g(y_n)]}
                            {\sum_n [\hat y_n \ne y_n]}

    FSA only looks at misclassified examples (Kobs et al. 2020, Section 4); a high
    FSA means the wrong predictions are still similar to the target. **When no
    example is misclassified FSA is undefined and the result is** ``nan`` (never
    0 or 1); callers that average FSA over runs must decide how to treat it.

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer fine class indices (N,).
        fine_to_coarse: (C,) integer superclass index of every fine class.
        ignore_index: target value whose examples are left out.
        decoder: ``"argmax"`` (default), ``"median"`` or ``"min_risk"``.
        input_type: ``"logits"`` (default) or ``"probs"``, for the decoders.
        cost: (C, C) cost of ``"min_risk"``.

    Returns:
        A 0-dim float64 tensor in [0, 1]; ``nan`` when nothing is misclassified.

    Example:
        >>> import torch
        >>> fine_to_coarse = [0, 0, 1, 1]
        >>> target = torch.tensor([0, 0, 2, 3])
        >>> preds = torch.tensor([0, 1, 0, 3])  # two mistakes, one within the superclass
        >>> float(failed_superclass_accuracy(preds, target, fine_to_coarse))
        0.5
        >>> failed_superclass_accuracy(target, target, fine_to_coarse).isnan().item()
        True
    """
    return FAILED_SUPERCLASS_ACCURACY.evaluate(
        preds,
        target,
        fine_to_coarse=fine_to_coarse,
        ignore_index=ignore_index,
        decoder=decoder,
        input_type=input_type,
        cost=cost,
    )


_CLASS_DOC = """Accumulating {what}; see :func:`simloss.metrics.{function}`.{extra}

    Args: those of :func:`simloss.metrics.{function}` after ``preds`` and ``target``
    (``fine_to_coarse``, ``ignore_index``, ``decoder``, ``input_type``, ``cost``), and
    torchmetrics' ``process_group``, ``dist_sync_on_step``, ``sync_on_compute``,
    ``compute_on_cpu``.
    """

SUPERCLASS_ACCURACY = register(
    MetricDeclaration(
        key="sa",
        label="SA",
        class_name="SuperclassAccuracy",
        function=superclass_accuracy,
        configure=_configure,
        stats=_sa_stats,
        compute=ratio,
        higher_is_better=True,
        is_percent=True,
        needs=frozenset({"superclasses"}),
        decoders=CLASS_DECODERS,
        record=_record,
        class_doc=_CLASS_DOC.format(
            what="Superclass Accuracy (SA)", function="superclass_accuracy", extra=""
        ),
    )
)
FAILED_SUPERCLASS_ACCURACY = register(
    MetricDeclaration(
        key="fsa",
        label="FSA",
        class_name="FailedSuperclassAccuracy",
        function=failed_superclass_accuracy,
        configure=_configure,
        stats=_fsa_stats,
        compute=ratio,
        higher_is_better=True,
        is_percent=True,
        needs=frozenset({"superclasses"}),
        decoders=CLASS_DECODERS,
        record=_record,
        class_doc=_CLASS_DOC.format(
            what="Failed Superclass Accuracy (FSA)",
            function="failed_superclass_accuracy",
            extra=" ``nan`` while nothing has been misclassified.",
        ),
    )
)
