"""Accumulating metric classes: ``update(preds, target)``, ``compute()``, ``reset()``.

Each class keeps the sums of its metric (see :mod:`simloss.metrics.functional`) in
registered buffers ("states"), adds each batch's sums in :meth:`update` and divides
in :meth:`compute`, so any batching gives exactly the value of the matching function
on the whole set. States follow the input: the first ``update`` moves them (and the
metric's configuration tensors) to the device of ``preds``; ``.to(device)`` moves
them too, while dtype casts (``.half()``, ``.double()``) leave them as they are, so a
metric inside a model converted to half precision still sums in float64/int64.

Under :mod:`torch.distributed` (when ``is_available()`` and ``is_initialized()``),
:meth:`compute` sums every state over the processes of ``process_group`` with
``all_reduce(SUM)`` before dividing; the local states are not modified, so updating
may continue afterwards. Every process must call ``compute`` (it is a collective),
and with NCCL the states must already be on the GPU (call ``update`` or ``.to``).

Calling a metric (``metric(preds, target)``) updates it and returns the value of
that batch alone, as torchmetrics does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

import torch
from torch import Tensor, nn

from simloss.metrics._checks import (
    check_class_values,
    check_decoder,
    check_fine_to_coarse,
    check_ignore_index,
    check_input_type,
    check_nonnegative_real,
    check_num_classes,
    check_square_matrix,
    check_tensor,
    check_top_k,
    resolve_num_classes,
)
from simloss.metrics.functional import (
    ArrayLike,
    PredictedDistribution,
    Stats,
    StructuredSimilarity,
    _accuracy_stats,
    _check_similarity,
    _distribution_compute,
    _distribution_stats,
    _error_stats,
    _mean_similarity_stats,
    _mistake_severity_stats,
    _off_by_k_stats,
    _ratio,
    _superclass_stats,
    decoded_key,
)

__all__ = [
    "Accuracy",
    "FailedSuperclassAccuracy",
    "MeanAbsoluteError",
    "MeanPredictedDistribution",
    "MeanSimilarity",
    "MeanSquaredError",
    "MistakeSeverity",
    "OffByKAccuracy",
    "SuperclassAccuracy",
]

ResultT = TypeVar("ResultT")


def decoded_label(label: str, decoder: str) -> str:
    """The label of a metric under a decoder: ``"MAE"``, ``"MAE (expectation)"``, ..."""
    return label if decoder == "argmax" else f"{label} ({decoder})"


class _SumMetric(nn.Module, Generic[ResultT]):
    """Base: states are sums held in buffers; subclasses define ``_stats`` and ``_compute``.

    Facts a report asks the metric instead of keeping its own table (as
    torchmetrics' ``higher_is_better``):

    * ``higher_is_better``: ``True``/``False``, or ``None`` where the result is
      not a score (the predicted distribution);
    * ``is_percent``: the value is a fraction of examples in [0, 1], shown as a
      percentage (accuracy, SA, FSA, off-by-k);
    * ``key``: the key of the value in a training record and in
      :func:`~simloss.metrics.compute_metrics` (``"mae_expectation"`` for MAE
      under the expectation decoder), or ``None`` where records do not hold it;
    * ``label``: a short human label for tables and figure axes (``"MAE"``,
      ``"MAE (expectation)"``).
    """

    higher_is_better: ClassVar[bool | None] = None
    is_percent: ClassVar[bool] = False
    _base_key: ClassVar[str | None] = None
    _base_label: ClassVar[str] = ""

    def __init__(self, *, process_group: Any = None) -> None:
        super().__init__()
        self.process_group = process_group
        self._state_names: list[str] = []

    # -- state handling ---------------------------------------------------------------
    @property
    def key(self) -> str | None:
        """The record / :func:`~simloss.metrics.compute_metrics` key of this metric's value."""
        return self._base_key

    @property
    def label(self) -> str:
        """A short human label (table headers, figure axes)."""
        return self._base_label

    def _add_state(self, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        self.register_buffer(name, torch.zeros(shape, dtype=dtype), persistent=False)
        self._state_names.append(name)

    def _add_constant(self, name: str, value: Tensor) -> None:
        self.register_buffer(name, value, persistent=False)

    def _tensor(self, name: str) -> Tensor:
        value = self._buffers[name]
        if value is None:  # pragma: no cover - buffers are never set to None here
            raise RuntimeError(f"buffer `{name}` is missing")
        return value

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> _SumMetric[ResultT]:
        """Apply device moves to the states but keep their dtypes (no silent precision loss)."""

        def keep_dtype(t: Tensor) -> Tensor:
            moved = fn(t)
            return moved if moved.dtype == t.dtype else t.to(device=moved.device)

        super()._apply(keep_dtype, recurse)
        return self

    def _follow(self, preds: object) -> Tensor:
        """Move states and constants to the device of ``preds`` (checked to be a tensor)."""
        tensor = check_tensor(preds, "preds")
        if any(b is not None and b.device != tensor.device for b in self._buffers.values()):
            self.to(tensor.device)
        return tensor

    def _add(self, stats: Stats) -> None:
        for name, value in zip(self._state_names, stats, strict=True):
            self._tensor(name).add_(value.to(self._tensor(name).dtype))

    def _synced_states(self) -> list[Tensor]:
        states = [self._tensor(name) for name in self._state_names]
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return states
        synced = []
        for state in states:
            total = state.clone()
            torch.distributed.all_reduce(
                total, op=torch.distributed.ReduceOp.SUM, group=self.process_group
            )
            synced.append(total)
        return synced

    # -- the metric protocol ----------------------------------------------------------
    def _stats(self, preds: Tensor, target: Tensor) -> Stats:
        raise NotImplementedError

    def _compute(self, *states: Tensor) -> ResultT:
        raise NotImplementedError

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add one batch: ``preds`` scores (N, C) or indices (N,), ``target`` indices (N,).

        Invalid input raises before any state changes.
        """
        preds = self._follow(preds)
        self._add(self._stats(preds, target))

    def compute(self) -> ResultT:
        """The metric over everything added since the last :meth:`reset`
        (summed over processes under ``torch.distributed``)."""
        return self._compute(*self._synced_states())

    def reset(self) -> None:
        """Zero all states (keeping their device and dtype)."""
        for name in self._state_names:
            self._tensor(name).zero_()

    def forward(self, preds: Tensor, target: Tensor) -> ResultT:
        """Update with this batch and return the metric of this batch alone (not synced)."""
        preds = self._follow(preds)
        stats = self._stats(preds, target)
        self._add(stats)
        return self._compute(*stats)


class _RatioMetric(_SumMetric[Tensor]):
    """A metric that is ``numerator / denominator`` (``nan`` when the denominator is 0)."""

    def __init__(self, numerator_dtype: torch.dtype, *, process_group: Any = None) -> None:
        super().__init__(process_group=process_group)
        self._add_state("numerator", (), numerator_dtype)
        self._add_state("denominator", (), torch.int64)

    def _compute(self, *states: Tensor) -> Tensor:
        numerator, denominator = states
        return _ratio(numerator, denominator)


class Accuracy(_RatioMetric):
    """Accumulating (top-k) accuracy; see :func:`simloss.metrics.accuracy`.

    Args:
        top_k: how many of the highest-scored classes count as a hit.
        ignore_index: target value whose examples are left out.
        num_classes: C, to check index ranges when ``preds`` are indices.
        process_group: ``torch.distributed`` group to sum over (default: the world).

    Example:
        >>> metric = Accuracy()
        >>> metric.update(torch.tensor([0, 1]), torch.tensor([0, 0]))
        >>> metric.update(torch.tensor([[0.1, 0.9]]), torch.tensor([1]))
        >>> round(float(metric.compute()), 4)
        0.6667
        >>> metric.reset(); metric.compute().isnan().item()
        True
        >>> metric.key, metric.label, metric.higher_is_better, metric.is_percent
        ('acc', 'Acc', True, True)
    """

    higher_is_better = True
    is_percent = True
    _base_key = "acc"
    _base_label = "Acc"

    def __init__(
        self,
        top_k: int = 1,
        *,
        ignore_index: int | None = None,
        num_classes: int | None = None,
        process_group: Any = None,
    ) -> None:
        super().__init__(torch.int64, process_group=process_group)
        self.top_k = check_top_k(top_k)
        self.ignore_index = check_ignore_index(ignore_index)
        self.num_classes = check_num_classes(num_classes)

    @property
    def key(self) -> str:
        return "acc" if self.top_k == 1 else f"acc_top{self.top_k}"

    @property
    def label(self) -> str:
        return self._base_label if self.top_k == 1 else f"Top-{self.top_k} acc"

    def _stats(self, preds: Tensor, target: Tensor) -> Stats:
        return _accuracy_stats(
            preds,
            target,
            top_k=self.top_k,
            ignore_index=self.ignore_index,
            num_classes=self.num_classes,
        )

    def extra_repr(self) -> str:
        return f"top_k={self.top_k}, ignore_index={self.ignore_index}"


class _OrderedMetric(_RatioMetric):
    """Shared set-up of the metrics on ordered classes (optional ``class_values``, a decoder)."""

    def __init__(
        self,
        numerator_dtype: torch.dtype,
        class_values: ArrayLike | None,
        ignore_index: int | None,
        num_classes: int | None,
        process_group: Any,
        decoder: str = "argmax",
        input_type: str = "logits",
    ) -> None:
        super().__init__(numerator_dtype, process_group=process_group)
        self.ignore_index = check_ignore_index(ignore_index)
        self.num_classes = check_num_classes(num_classes)
        self.decoder = check_decoder(decoder)
        self.input_type = check_input_type(input_type)
        self.has_class_values = class_values is not None
        if class_values is not None:
            values = check_class_values(class_values)
            self.num_classes = resolve_num_classes(self.num_classes, values.numel(), "class_values")
            self._add_constant("class_values", values)

    @property
    def key(self) -> str | None:
        return None if self._base_key is None else decoded_key(self._base_key, self.decoder)

    @property
    def label(self) -> str:
        return decoded_label(self._base_label, self.decoder)

    def _values(self) -> Tensor | None:
        return self._tensor("class_values") if self.has_class_values else None

    def extra_repr(self) -> str:
        return (
            f"decoder={self.decoder!r}, input_type={self.input_type!r}, "
            f"ignore_index={self.ignore_index}"
        )


class MeanAbsoluteError(_OrderedMetric):
    """Accumulating MAE; see :func:`simloss.metrics.mean_absolute_error`.

    Args:
        class_values: (C,) value of each class (e.g. ages); without it, class indices.
        ignore_index: target value whose examples are left out.
        num_classes: C, to check index ranges when neither scores nor values give it.
        process_group: ``torch.distributed`` group to sum over (default: the world).
        decoder: ``"argmax"`` (default), ``"expectation"`` or ``"median"``: how the
            predicted value is read from the scores (see
            :func:`simloss.metrics.mean_absolute_error`); the last two need scores.
        input_type: ``"logits"`` (default) or ``"probs"``, for those two decoders.

    Example:
        >>> metric = MeanAbsoluteError(class_values=[10.0, 20.0, 30.0])
        >>> metric.update(torch.tensor([0, 2]), torch.tensor([1, 2]))
        >>> metric.update(torch.tensor([2]), torch.tensor([0]))
        >>> float(metric.compute())
        10.0
        >>> expected = MeanAbsoluteError(class_values=[10.0, 20.0, 30.0], decoder="expectation")
        >>> expected.update(torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([2]))  # mean 20
        >>> float(expected.compute()), expected.key, expected.label, expected.higher_is_better
        (10.0, 'mae_expectation', 'MAE (expectation)', False)
    """

    higher_is_better = False
    _base_key = "mae"
    _base_label = "MAE"

    def __init__(
        self,
        *,
        class_values: ArrayLike | None = None,
        ignore_index: int | None = None,
        num_classes: int | None = None,
        process_group: Any = None,
        decoder: str = "argmax",
        input_type: str = "logits",
    ) -> None:
        super().__init__(
            torch.float64,
            class_values,
            ignore_index,
            num_classes,
            process_group,
            decoder,
            input_type,
        )

    def _stats(self, preds: Tensor, target: Tensor) -> Stats:
        return _error_stats(
            preds,
            target,
            class_values=self._values(),
            ignore_index=self.ignore_index,
            num_classes=self.num_classes,
            squared=False,
            decoder=self.decoder,
            input_type=self.input_type,
        )


class MeanSquaredError(_OrderedMetric):
    """Accumulating MSE; see :func:`simloss.metrics.mean_squared_error`.

    Args:
        class_values: (C,) value of each class (e.g. ages); without it, class indices.
        ignore_index: target value whose examples are left out.
        num_classes: C, to check index ranges when neither scores nor values give it.
        process_group: ``torch.distributed`` group to sum over (default: the world).
        decoder: ``"argmax"`` (default), ``"expectation"`` or ``"median"``: how the
            predicted value is read from the scores (see
            :func:`simloss.metrics.mean_absolute_error`); the last two need scores.
        input_type: ``"logits"`` (default) or ``"probs"``, for those two decoders.

    Example:
        >>> metric = MeanSquaredError()
        >>> metric.update(torch.tensor([0, 2]), torch.tensor([1, 2]))
        >>> metric.update(torch.tensor([2]), torch.tensor([0]))
        >>> float(metric.compute())
        1.6666666666666667
    """

    higher_is_better = False
    _base_key = "mse"
    _base_label = "MSE"

    def __init__(
        self,
        *,
        class_values: ArrayLike | None = None,
        ignore_index: int | None = None,
        num_classes: int | None = None,
        process_group: Any = None,
        decoder: str = "argmax",
        input_type: str = "logits",
    ) -> None:
        super().__init__(
            torch.float64,
            class_values,
            ignore_index,
            num_classes,
            process_group,
            decoder,
            input_type,
        )

    def _stats(self, preds: Tensor, target: Tensor) -> Stats:
        return _error_stats(
            preds,
            target,
            class_values=self._values(),
            ignore_index=self.ignore_index,
            num_classes=self.num_classes,
            squared=True,
            decoder=self.decoder,
            input_type=self.input_type,
        )


class OffByKAccuracy(_OrderedMetric):
    """Accumulating off-by-k accuracy; see :func:`simloss.metrics.off_by_k_accuracy`.

    Args:
        k: tolerance >= 0, in class indices or, with ``class_values``, in their units.
        class_values: (C,) value of each class.
        ignore_index: target value whose examples are left out.
        num_classes: C, to check index ranges when neither scores nor values give it.
        process_group: ``torch.distributed`` group to sum over (default: the world).
        decoder: ``"argmax"`` (default), ``"expectation"`` or ``"median"``: how the
            predicted value is read from the scores (see
            :func:`simloss.metrics.mean_absolute_error`); the last two need scores.
        input_type: ``"logits"`` (default) or ``"probs"``, for those two decoders.

    Example:
        >>> metric = OffByKAccuracy(1)
        >>> metric.update(torch.tensor([3, 5]), torch.tensor([4, 3]))
        >>> float(metric.compute())
        0.5
        >>> metric.key, metric.label
        ('off_by_1', 'Acc ±1')
    """

    higher_is_better = True
    is_percent = True

    def __init__(
        self,
        k: float,
        *,
        class_values: ArrayLike | None = None,
        ignore_index: int | None = None,
        num_classes: int | None = None,
        process_group: Any = None,
        decoder: str = "argmax",
        input_type: str = "logits",
    ) -> None:
        super().__init__(
            torch.int64,
            class_values,
            ignore_index,
            num_classes,
            process_group,
            decoder,
            input_type,
        )
        self.k = check_nonnegative_real(k, "k")

    @property
    def key(self) -> str:
        return decoded_key(f"off_by_{self.k:g}", self.decoder)

    @property
    def label(self) -> str:
        return decoded_label(f"Acc ±{self.k:g}", self.decoder)

    def _stats(self, preds: Tensor, target: Tensor) -> Stats:
        return _off_by_k_stats(
            preds,
            target,
            k=self.k,
            class_values=self._values(),
            ignore_index=self.ignore_index,
            num_classes=self.num_classes,
            decoder=self.decoder,
            input_type=self.input_type,
        )

    def extra_repr(self) -> str:
        return f"k={self.k}, {super().extra_repr()}"


class _HierarchyMetric(_RatioMetric):
    """Shared set-up of SA and FSA (a fine-to-coarse mapping buffer)."""

    def __init__(
        self, fine_to_coarse: ArrayLike, ignore_index: int | None, process_group: Any
    ) -> None:
        super().__init__(torch.int64, process_group=process_group)
        self.ignore_index = check_ignore_index(ignore_index)
        self._add_constant("fine_to_coarse", check_fine_to_coarse(fine_to_coarse))

    def _all_stats(self, preds: Tensor, target: Tensor) -> Stats:
        return _superclass_stats(
            preds,
            target,
            fine_to_coarse=self._tensor("fine_to_coarse"),
            ignore_index=self.ignore_index,
        )


class SuperclassAccuracy(_HierarchyMetric):
    """Accumulating Superclass Accuracy (SA); see :func:`simloss.metrics.superclass_accuracy`.

    Args:
        fine_to_coarse: (C,) integer superclass index of every fine class.
        ignore_index: target value whose examples are left out.
        process_group: ``torch.distributed`` group to sum over (default: the world).

    Example:
        >>> metric = SuperclassAccuracy([0, 0, 1, 1])
        >>> metric.update(torch.tensor([0, 1]), torch.tensor([0, 0]))
        >>> metric.update(torch.tensor([0, 3]), torch.tensor([2, 3]))
        >>> float(metric.compute())
        0.75
    """

    higher_is_better = True
    is_percent = True
    _base_key = "sa"
    _base_label = "SA"

    def __init__(
        self,
        fine_to_coarse: ArrayLike,
        *,
        ignore_index: int | None = None,
        process_group: Any = None,
    ) -> None:
        super().__init__(fine_to_coarse, ignore_index, process_group)

    def _stats(self, preds: Tensor, target: Tensor) -> Stats:
        same, total, _, _ = self._all_stats(preds, target)
        return same, total


class FailedSuperclassAccuracy(_HierarchyMetric):
    """Accumulating Failed Superclass Accuracy (FSA).

    See :func:`simloss.metrics.failed_superclass_accuracy`; ``nan`` while nothing
    has been misclassified.

    Args:
        fine_to_coarse: (C,) integer superclass index of every fine class.
        ignore_index: target value whose examples are left out.
        process_group: ``torch.distributed`` group to sum over (default: the world).

    Example:
        >>> metric = FailedSuperclassAccuracy([0, 0, 1, 1])
        >>> metric.update(torch.tensor([0, 1]), torch.tensor([0, 0]))
        >>> float(metric.compute())
        1.0
        >>> metric.update(torch.tensor([0, 3]), torch.tensor([2, 3]))
        >>> float(metric.compute())
        0.5
    """

    higher_is_better = True
    is_percent = True
    _base_key = "fsa"
    _base_label = "FSA"

    def __init__(
        self,
        fine_to_coarse: ArrayLike,
        *,
        ignore_index: int | None = None,
        process_group: Any = None,
    ) -> None:
        super().__init__(fine_to_coarse, ignore_index, process_group)

    def _stats(self, preds: Tensor, target: Tensor) -> Stats:
        _, _, same_wrong, wrong = self._all_stats(preds, target)
        return same_wrong, wrong


class MeanSimilarity(_RatioMetric):
    """Accumulating mean similarity ``S[y, y_hat]``; see :func:`simloss.metrics.mean_similarity`.

    Args:
        similarity: (C, C) finite similarity matrix, rows by target, columns by prediction,
            or a structured :class:`~simloss.SimilarityOperator` (e.g. :class:`~simloss.ClassOrder`).
        ignore_index: target value whose examples are left out.
        process_group: ``torch.distributed`` group to sum over (default: the world).

    Example:
        >>> metric = MeanSimilarity([[1.0, 0.5], [0.5, 1.0]])
        >>> metric.update(torch.tensor([0, 1]), torch.tensor([1, 1]))
        >>> float(metric.compute())
        0.75
    """

    higher_is_better = True
    _base_key = "mean_similarity"
    _base_label = "Mean similarity"

    def __init__(
        self,
        similarity: ArrayLike | StructuredSimilarity,
        *,
        ignore_index: int | None = None,
        process_group: Any = None,
    ) -> None:
        super().__init__(torch.float64, process_group=process_group)
        self.ignore_index = check_ignore_index(ignore_index)
        checked = _check_similarity(similarity)
        if isinstance(checked, Tensor):
            self._add_constant("similarity_matrix", checked)
            self.structured: StructuredSimilarity | None = None
        else:
            self.structured = checked  # a submodule: moves with .to()

    def _stats(self, preds: Tensor, target: Tensor) -> Stats:
        similarity = (
            self.structured if self.structured is not None else self._tensor("similarity_matrix")
        )
        return _mean_similarity_stats(
            preds, target, similarity=similarity, ignore_index=self.ignore_index
        )


class MistakeSeverity(_RatioMetric):
    """Accumulating mistake severity; see :func:`simloss.metrics.mistake_severity`.

    ``nan`` while nothing has been misclassified.

    Args:
        distance: (C, C) non-negative distances (e.g. LCA heights), rows by target.
        ignore_index: target value whose examples are left out.
        process_group: ``torch.distributed`` group to sum over (default: the world).

    Example:
        >>> metric = MistakeSeverity([[0.0, 1.0, 2.0], [1.0, 0.0, 2.0], [2.0, 2.0, 0.0]])
        >>> metric.update(torch.tensor([1, 1]), torch.tensor([0, 1]))
        >>> metric.update(torch.tensor([0]), torch.tensor([2]))
        >>> float(metric.compute())
        1.5
    """

    higher_is_better = False
    _base_key = "mistake_severity"
    _base_label = "Mistake severity"

    def __init__(
        self,
        distance: ArrayLike,
        *,
        ignore_index: int | None = None,
        process_group: Any = None,
    ) -> None:
        super().__init__(torch.float64, process_group=process_group)
        self.ignore_index = check_ignore_index(ignore_index)
        self._add_constant("distance", check_square_matrix(distance, "distance", nonnegative=True))

    def _stats(self, preds: Tensor, target: Tensor) -> Stats:
        return _mistake_severity_stats(
            preds, target, distance=self._tensor("distance"), ignore_index=self.ignore_index
        )


class MeanPredictedDistribution(_SumMetric[PredictedDistribution]):
    """Accumulating mean predicted distribution, overall and per true class.

    See :func:`simloss.metrics.mean_predicted_distribution`. ``compute()`` returns a
    :class:`~simloss.metrics.PredictedDistribution` ``(mean, per_class, class_counts)``;
    rows of ``per_class`` for classes without an example are ``nan``.

    Args:
        num_classes: C (fixes the state shapes, needed before the first batch).
        input_type: ``"logits"`` (default) or ``"probs"``.
        ignore_index: target value whose examples are left out.
        process_group: ``torch.distributed`` group to sum over (default: the world).

    Example:
        >>> metric = MeanPredictedDistribution(2, input_type="probs")
        >>> metric.update(torch.tensor([[0.2, 0.8]]), torch.tensor([1]))
        >>> metric.update(torch.tensor([[0.6, 0.4]]), torch.tensor([1]))
        >>> [round(x, 4) for x in metric.compute().per_class[1].tolist()]
        [0.4, 0.6]
        >>> metric.compute().class_counts.tolist()
        [0, 2]
    """

    higher_is_better = None
    _base_label = "Mean predicted distribution"

    def __init__(
        self,
        num_classes: int,
        *,
        input_type: str = "logits",
        ignore_index: int | None = None,
        process_group: Any = None,
    ) -> None:
        super().__init__(process_group=process_group)
        classes = check_num_classes(num_classes)
        if classes is None:
            raise TypeError("Expected `num_classes` to be a positive int, but found None")
        self.num_classes = classes
        self.input_type = check_input_type(input_type)
        self.ignore_index = check_ignore_index(ignore_index)
        self._add_state("prob_sum", (classes,), torch.float64)
        self._add_state("per_class_sum", (classes, classes), torch.float64)
        self._add_state("class_counts", (classes,), torch.int64)
        self._add_state("total", (), torch.int64)

    def _stats(self, preds: Tensor, target: Tensor) -> Stats:
        check_tensor(target, "target")
        return _distribution_stats(
            preds,
            target,
            num_classes=self.num_classes,
            input_type=self.input_type,
            ignore_index=self.ignore_index,
        )

    def _compute(self, *states: Tensor) -> PredictedDistribution:
        prob_sum, per_class_sum, counts, total = states
        return _distribution_compute(prob_sum, per_class_sum, counts, total)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, input_type={self.input_type!r}"
