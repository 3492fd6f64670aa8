"""Errors on ordered classes: MAE and MSE of the predicted value, under any decoder.

One statistic, the sum of ``|v_hat - v_y|`` (or its square) with the count of
examples, serves both metrics, their functions and their classes.

Example:
    >>> import torch
    >>> from simloss.metrics import MeanAbsoluteError, MeanSquaredError
    >>> metric = MeanAbsoluteError(class_values=[10.0, 20.0, 30.0])
    >>> metric.update(torch.tensor([0, 2]), torch.tensor([1, 2]))
    >>> metric.update(torch.tensor([2]), torch.tensor([0]))
    >>> float(metric.compute())
    10.0
    >>> expected = MeanAbsoluteError(class_values=[10.0, 20.0, 30.0], decoder="expectation")
    >>> expected.update(torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([2]))  # mean 20
    >>> float(expected.compute()), expected.key, expected.label, expected.higher_is_better
    (10.0, 'mae_expectation', 'MAE (expectation)', False)
    >>> squared = MeanSquaredError()
    >>> squared.update(torch.tensor([0, 2]), torch.tensor([1, 2])); squared.update(torch.tensor([2]), torch.tensor([0]))
    >>> float(squared.compute())
    1.6666666666666667
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from torch import Tensor

from simloss.metrics._batch import Batch
from simloss.metrics._checks import check_class_values, check_num_classes, resolve_num_classes
from simloss.metrics._declaration import MetricDeclaration, MetricTask, register
from simloss.metrics._stats import ArrayLike, Stats, count, ratio
from simloss.metrics.decoders import DECODERS, check_decoding

__all__ = [
    "MEAN_ABSOLUTE_ERROR",
    "MEAN_SQUARED_ERROR",
    "configure_ordered",
    "mean_absolute_error",
    "mean_squared_error",
    "value_differences",
]


def configure_ordered(
    *,
    class_values: object,
    num_classes: object,
    decoder: object = "argmax",
    input_type: object = "logits",
    cost: object = None,
    decoders: tuple[str, ...] = DECODERS,
) -> dict[str, Any]:
    """The checked configuration of a metric on ordered classes (values, class count, decoder)."""
    classes = check_num_classes(num_classes)
    values = None if class_values is None else check_class_values(class_values, copy=False)
    if values is not None:
        classes = resolve_num_classes(classes, values.numel(), "class_values")
    decoding = check_decoding(decoder, input_type, cost, allowed=decoders, num_classes=classes)
    return {"class_values": values, "num_classes": classes, **decoding}


def classes_source(class_values: Tensor | None) -> str:
    """Where an ordered metric's class count comes from, for messages."""
    return "`num_classes`" if class_values is None else "the length of `class_values`"


def value_differences(
    batch: Batch,
    *,
    class_values: Tensor | None,
    num_classes: int | None,
    decoder: str,
    input_type: str,
    cost: Tensor | None,
) -> Tensor:
    """``v_hat - v_y`` of every counted example, (M,) float64."""
    batch.check_classes(num_classes, classes_source(class_values))
    predicted = batch.predicted_values(decoder, class_values, input_type=input_type, cost=cost)
    return predicted - batch.target_values(class_values)


def _error_stats(batch: Batch, *, squared: bool, **config: Any) -> Stats:
    diff = value_differences(batch, **config)
    error = diff.square() if squared else diff.abs()
    return error.sum(), count(error)


def _record(task: MetricTask) -> Iterator[dict[str, Any]]:
    for decoding in task.decoding(DECODERS):
        yield {"class_values": task.class_values, "num_classes": task.num_classes, **decoding}


_CLASS_DOC = """Accumulating {what}; see :func:`simloss.metrics.{function}`.

    Args: those of :func:`simloss.metrics.{function}` after ``preds`` and ``target``
    (``class_values``, ``ignore_index``, ``num_classes``, ``decoder``, ``input_type``,
    ``cost``), and torchmetrics' ``process_group``, ``dist_sync_on_step``,
    ``sync_on_compute``, ``compute_on_cpu``.
    """


def mean_absolute_error(
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
    r"""Mean absolute distance between the predicted and the target value (ordered classes).

    .. math::
        \mathrm{MAE} = \frac{1}{N} \sum_{n=1}^{N} |\hat v_n - v_{y_n}|

    with :math:`v_c` the value class :math:`c` stands for (e.g. the age), or
    :math:`v_c = c` when ``class_values`` is not given, and :math:`\hat v_n` the
    predicted value under ``decoder``: :math:`v_{\arg\max_c z_{nc}}` (``"argmax"``),
    :math:`\sum_c p_{nc} v_c` (``"expectation"``), the smallest :math:`v_c` with
    :math:`\sum_{c' : v_{c'} \le v_c} p_{nc'} \ge 1/2` (``"median"``), or the value
    of :math:`\arg\min_k \sum_c p_{nc}\,\mathrm{cost}_{kc}` (``"min_risk"``), where
    :math:`p_n` is the softmax of the logits (or the given probabilities).

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        class_values: (C,) value of each class; the error is then in these units.
        ignore_index: target value whose examples are left out.
        num_classes: C, to check index ranges when neither scores nor values give it.
        decoder: how the predicted value is read from ``preds``: ``"argmax"``
            (default: the value of the highest-scored class, as in the paper),
            ``"expectation"``, ``"median"`` or ``"min_risk"`` (see
            :mod:`simloss.metrics.decoders`); all but the argmax need scores.
        input_type: what the scores are, for the decoders other than the argmax:
            ``"logits"`` (default, softmax applied) or ``"probs"`` (checked: values in
            [0, 1], rows summing to 1); the argmax is the same for both and ignores it.
        cost: (C, C) cost of ``"min_risk"``, rows by decision, columns by true class
            (e.g. :func:`~simloss.metrics.value_cost` gives the median).

    Returns:
        A 0-dim float64 tensor; ``nan`` when no example is counted.

    Example:
        >>> import torch
        >>> ages = torch.arange(1, 91)  # class c stands for age c + 1
        >>> target = torch.tensor([29, 9])
        >>> preds = torch.tensor([31, 9])
        >>> float(mean_absolute_error(preds, target, class_values=ages))
        1.0
        >>> probs = torch.tensor([[0.5, 0.0, 0.5], [0.1, 0.3, 0.6]], dtype=torch.float64)
        >>> float(mean_absolute_error(probs, torch.tensor([1, 2]), decoder="expectation",
        ...                           input_type="probs"))  # |1.0 - 1|, |1.5 - 2|
        0.25
        >>> float(mean_absolute_error(probs, torch.tensor([1, 2]), decoder="median",
        ...                           input_type="probs"))  # medians 0 and 2
        0.5
    """
    return MEAN_ABSOLUTE_ERROR.evaluate(
        preds,
        target,
        class_values=class_values,
        ignore_index=ignore_index,
        num_classes=num_classes,
        decoder=decoder,
        input_type=input_type,
        cost=cost,
    )


def mean_squared_error(
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
    r"""Mean squared distance between the predicted and the target value (ordered classes).

    .. math::
        \mathrm{MSE} = \frac{1}{N} \sum_{n=1}^{N} (\hat v_n - v_{y_n})^2

    Arguments, decoders and conventions as in :func:`mean_absolute_error`; the result
    is in squared class-value units.

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        class_values: (C,) value of each class; the error is then in these units squared.
        ignore_index: target value whose examples are left out.
        num_classes: C, to check index ranges when neither scores nor values give it.
        decoder: ``"argmax"`` (default), ``"expectation"``, ``"median"`` or ``"min_risk"``.
        input_type: ``"logits"`` (default) or ``"probs"``, for the decoders.
        cost: (C, C) cost of ``"min_risk"`` (``value_cost(v, squared=True)``: the class
            nearest to the expected value).

    Returns:
        A 0-dim float64 tensor; ``nan`` when no example is counted.

    Example:
        >>> import torch
        >>> target = torch.tensor([29, 9])
        >>> preds = torch.tensor([31, 9])
        >>> float(mean_squared_error(preds, target))
        2.0
    """
    return MEAN_SQUARED_ERROR.evaluate(
        preds,
        target,
        class_values=class_values,
        ignore_index=ignore_index,
        num_classes=num_classes,
        decoder=decoder,
        input_type=input_type,
        cost=cost,
    )


MEAN_ABSOLUTE_ERROR = register(
    MetricDeclaration(
        key="mae",
        label="MAE",
        class_name="MeanAbsoluteError",
        function=mean_absolute_error,
        configure=configure_ordered,
        stats=functools.partial(_error_stats, squared=False),
        compute=ratio,
        higher_is_better=False,
        needs=frozenset({"ordered"}),
        decoders=DECODERS,
        record=_record,
        class_doc=_CLASS_DOC.format(what="MAE", function="mean_absolute_error"),
    )
)
MEAN_SQUARED_ERROR = register(
    MetricDeclaration(
        key="mse",
        label="MSE",
        class_name="MeanSquaredError",
        function=mean_squared_error,
        configure=configure_ordered,
        stats=functools.partial(_error_stats, squared=True),
        compute=ratio,
        higher_is_better=False,
        needs=frozenset({"ordered"}),
        decoders=DECODERS,
        record=_record,
        class_doc=_CLASS_DOC.format(what="MSE", function="mean_squared_error"),
    )
)
