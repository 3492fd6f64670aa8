"""AMAE and MMAE: the mean absolute error of each class, averaged (AMAE) or at its worst (MMAE).

.. math::
    \\mathrm{MAE}_c = \\frac{1}{N_c} \\sum_{n : y_n = c} |\\hat v_n - v_c|, \\qquad
    \\mathrm{AMAE} = \\frac{1}{|K|} \\sum_{c \\in K} \\mathrm{MAE}_c, \\qquad
    \\mathrm{MMAE} = \\max_{c \\in K} \\mathrm{MAE}_c

over the set :math:`K` of classes with at least one target example. Unlike MAE,
every class weighs the same, so a model that ignores rare classes (the old and
the young of an age scale) cannot hide behind the frequent ones (Baccianella,
Esuli & Sebastiani 2009; Cruz-Ramírez et al. 2014). The statistics are the
per-class sums of errors and the per-class counts, so any batching gives the
whole set's value.

Decided edge cases:

* **Classes absent from the targets** (e.g. no 90-year-old in a test set) are
  left out of the average and the maximum, never counted as error 0: their
  per-class MAE is undefined. With the accumulating class, "absent" means absent
  from everything added so far, not from one batch. The error is in class-value
  units (``class_values``) or class indices; imbalanced-learn's
  ``macro_averaged_mean_absolute_error`` uses the label values and every label
  seen in targets *or* predictions (a class seen only in predictions makes it
  fail), dlordinal's and skordinal's ``amae`` use class ranks.
* **Empty input** (or every example ignored): ``nan``.

Example:
    >>> import torch
    >>> from simloss.metrics import AverageMeanAbsoluteError
    >>> metric = AverageMeanAbsoluteError(num_classes=4)
    >>> metric.update(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]))
    >>> metric.update(torch.tensor([3]), torch.tensor([1]))
    >>> float(metric.compute())  # class 0: 0.5, class 1: 1.0; classes 2, 3 absent
    0.75

References:
    Baccianella, Esuli, Sebastiani. "Evaluation Measures for Ordinal Regression." ISDA 2009.
    Cruz-Ramírez, Hervás-Martínez, Sánchez-Monedero, Gutiérrez. "Metrics to guide a
    multi-objective evolutionary algorithm for ordinal classification." Neurocomputing 135, 2014.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor

from simloss.metrics._batch import Batch
from simloss.metrics._checks import float_dtype
from simloss.metrics._declaration import MetricDeclaration, MetricTask, State, register
from simloss.metrics._stats import ArrayLike, Stats, per_class_sums
from simloss.metrics.decoders import DECODERS
from simloss.metrics.value_error import configure_ordered, value_differences

__all__ = [
    "AVERAGE_MEAN_ABSOLUTE_ERROR",
    "MAXIMUM_MEAN_ABSOLUTE_ERROR",
    "average_mean_absolute_error",
    "maximum_mean_absolute_error",
]


def _states(config: Mapping[str, Any]) -> tuple[State, ...]:
    classes = config["num_classes"]
    if classes is None:
        raise TypeError(
            "Expected `num_classes` or `class_values` (the states are per class), but found None"
        )
    return (("error_sum", (classes,), torch.float64), ("count", (classes,), torch.int64))


def _stats(batch: Batch, **config: Any) -> Stats:
    errors = value_differences(batch, **config).abs()
    classes = config["num_classes"] or batch.num_classes
    if classes is None:  # indices without a class count: the largest target seen
        classes = int(batch.target.max()) + 1 if batch.target.numel() else 1
    return per_class_sums(batch.target, errors, classes)


def _per_class(error_sum: Tensor, count: Tensor) -> Tensor:
    present = count > 0
    return error_sum[present].to(float_dtype(error_sum.device)) / count[present]


def _average(error_sum: Tensor, count: Tensor) -> Tensor:
    return _per_class(error_sum, count).mean()  # nan without a class (torch: mean of nothing)


def _maximum(error_sum: Tensor, count: Tensor) -> Tensor:
    errors = _per_class(error_sum, count)
    if errors.numel() == 0:
        return torch.full((), float("nan"), dtype=errors.dtype, device=errors.device)
    return errors.max()


def _record(task: MetricTask) -> Iterator[dict[str, Any]]:
    for decoding in task.decoding(("argmax", "min_risk"), always_argmax=True):
        yield {"class_values": task.class_values, "num_classes": task.num_classes, **decoding}


def average_mean_absolute_error(
    preds: Tensor,
    target: Tensor,
    *,
    class_values: ArrayLike | None = None,
    ignore_index: int | None = None,
    num_classes: int | None = None,
    decoder: str = "argmax",
    input_type: str = "logits",
    cost: ArrayLike | None = None,
) -> Tensor:
    r"""AMAE: the mean over classes of each class's MAE (classes without targets left out).

    See the module for the formula and its edge cases; the arguments are those of
    :func:`~simloss.metrics.mean_absolute_error`.

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        class_values: (C,) value of each class; the error is then in these units.
        ignore_index: target value whose examples are left out.
        num_classes: C (the class needs it or ``class_values``).
        decoder: ``"argmax"`` (default), ``"expectation"``, ``"median"`` or ``"min_risk"``.
        input_type: ``"logits"`` (default) or ``"probs"``, for the decoders.
        cost: (C, C) cost of ``"min_risk"``.

    Returns:
        A 0-dim float64 tensor; ``nan`` when no example is counted.

    Example:
        >>> import torch
        >>> target = torch.tensor([0, 0, 1, 2, 3, 0, 0])
        >>> preds = torch.tensor([0, 1, 1, 2, 3, 0, 1])
        >>> float(average_mean_absolute_error(preds, target))  # (0.5 + 0 + 0 + 0) / 4
        0.125
    """
    return AVERAGE_MEAN_ABSOLUTE_ERROR.evaluate(
        preds,
        target,
        class_values=class_values,
        ignore_index=ignore_index,
        num_classes=num_classes,
        decoder=decoder,
        input_type=input_type,
        cost=cost,
    )


def maximum_mean_absolute_error(
    preds: Tensor,
    target: Tensor,
    *,
    class_values: ArrayLike | None = None,
    ignore_index: int | None = None,
    num_classes: int | None = None,
    decoder: str = "argmax",
    input_type: str = "logits",
    cost: ArrayLike | None = None,
) -> Tensor:
    r"""MMAE: the largest per-class MAE (classes without targets left out).

    Arguments as in :func:`average_mean_absolute_error`.

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        class_values: (C,) value of each class; the error is then in these units.
        ignore_index: target value whose examples are left out.
        num_classes: C (the class needs it or ``class_values``).
        decoder: ``"argmax"`` (default), ``"expectation"``, ``"median"`` or ``"min_risk"``.
        input_type: ``"logits"`` (default) or ``"probs"``, for the decoders.
        cost: (C, C) cost of ``"min_risk"``.

    Returns:
        A 0-dim float64 tensor; ``nan`` when no example is counted.

    Example:
        >>> import torch
        >>> target = torch.tensor([0, 0, 1, 2, 3, 0, 0])
        >>> preds = torch.tensor([0, 1, 1, 2, 3, 0, 1])
        >>> float(maximum_mean_absolute_error(preds, target))
        0.5
    """
    return MAXIMUM_MEAN_ABSOLUTE_ERROR.evaluate(
        preds,
        target,
        class_values=class_values,
        ignore_index=ignore_index,
        num_classes=num_classes,
        decoder=decoder,
        input_type=input_type,
        cost=cost,
    )


_CLASS_DOC = """Accumulating {what}; see :func:`simloss.metrics.{function}`.

    Args: those of the function after ``preds`` and ``target`` (``class_values``,
    ``ignore_index``, ``num_classes``: the class needs it or ``class_values``,
    ``decoder``, ``input_type``, ``cost``), and torchmetrics' ``process_group``, ...
    """

AVERAGE_MEAN_ABSOLUTE_ERROR = register(
    MetricDeclaration(
        key="amae",
        label="AMAE",
        class_name="AverageMeanAbsoluteError",
        function=average_mean_absolute_error,
        configure=configure_ordered,
        stats=_stats,
        compute=_average,
        states=_states,
        higher_is_better=False,
        needs=frozenset({"ordered"}),
        decoders=DECODERS,
        record=_record,
        class_doc=_CLASS_DOC.format(what="AMAE", function="average_mean_absolute_error"),
    )
)
MAXIMUM_MEAN_ABSOLUTE_ERROR = register(
    MetricDeclaration(
        key="mmae",
        label="MMAE",
        class_name="MaximumMeanAbsoluteError",
        function=maximum_mean_absolute_error,
        configure=configure_ordered,
        stats=_stats,
        compute=_maximum,
        states=_states,
        higher_is_better=False,
        needs=frozenset({"ordered"}),
        decoders=DECODERS,
        record=_record,
        class_doc=_CLASS_DOC.format(what="MMAE", function="maximum_mean_absolute_error"),
    )
)
