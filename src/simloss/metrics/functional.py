"""Classification metrics that look past exact hits, as pure functions over a whole set.

Every metric is a ratio of sums. Each has a private ``_<name>_stats`` function that
returns those sums for one batch and a ``_<name>_compute`` function that turns
(accumulated) sums into the value; the public function chains the two, and the
classes in :mod:`simloss.metrics.modules` accumulate the same sums batch by batch,
so any batching gives the same value as the whole set at once.

``preds`` is either class scores of floating dtype and shape (N, C) (logits or
probabilities: softmax is monotonic, so both give the same argmax; ties go to the
lowest class index, like :func:`torch.argmax`) or predicted class indices of
integer dtype and shape (N,). ``target`` holds integer class indices (N,). When
``ignore_index`` is given, examples whose target equals it are left out of every
sum. A metric over no example (empty input, everything ignored, or FSA / mistake
severity without a single mistake) is undefined and returns ``nan``, never a
made-up 0 or 1.

References:
    Kobs, Steininger, Zehe, Lautenschlager, Hotho. "SimLoss: Class Similarities in
    Cross Entropy." ISMIS 2020. https://arxiv.org/abs/2003.03182

    Bertinetto, Mueller, Tertikas, Samangooei, Lord. "Making Better Mistakes:
    Leveraging Class Hierarchies with Deep Networks." CVPR 2020.
    https://arxiv.org/abs/1912.09393
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, TypeAlias

import numpy as np
import torch
from torch import Tensor

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
    float_dtype,
    prepare,
    resolve_num_classes,
    scores_to_probs,
)
from simloss.similarity.operator import SimilarityOperator

__all__ = [
    "PredictedDistribution",
    "accuracy",
    "compute_metrics",
    "decoded_key",
    "failed_superclass_accuracy",
    "mean_absolute_error",
    "mean_predicted_distribution",
    "mean_similarity",
    "mean_squared_error",
    "mistake_severity",
    "off_by_k_accuracy",
    "superclass_accuracy",
]

#: A per-class vector or (C, C) matrix given as a tensor, a NumPy array or a sequence.
ArrayLike: TypeAlias = Tensor | np.ndarray | Sequence[float] | Sequence[Sequence[float]]

Stats: TypeAlias = tuple[Tensor, ...]


def _count(x: Tensor) -> Tensor:
    """Number of elements of ``x`` as an int64 0-dim tensor on its device."""
    return torch.full((), x.numel(), dtype=torch.int64, device=x.device)


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` in floating point, ``nan`` where ``den`` is 0 (nothing was counted).

    Every numerator is a sum over the examples its denominator counts, so it is
    0 wherever the denominator is 0, and IEEE division gives 0 / 0 = nan there.
    """
    dtype = float_dtype(num.device)
    return num.to(dtype) / den.to(dtype)


def _target_rank(scores: Tensor, target: Tensor) -> Tensor:
    """Position of the target in each row's ranking, ties broken toward lower indices.

    The rank is the number of classes scored higher than the target plus the
    number scored equal with a lower index; rank 0 is exactly ``argmax == target``.
    """
    target_score = scores.gather(1, target[:, None])
    classes = torch.arange(scores.shape[1], device=scores.device)
    higher = (scores > target_score).sum(dim=1)
    tied_before = ((scores == target_score) & (classes[None, :] < target[:, None])).sum(dim=1)
    return higher + tied_before


# ----------------------------------------------------------------------------------------
# accuracy


def _accuracy_stats(
    preds: Tensor,
    target: Tensor,
    *,
    top_k: int,
    ignore_index: int | None,
    num_classes: int | None,
) -> Stats:
    p = prepare(
        preds,
        target,
        num_classes=num_classes,
        ignore_index=ignore_index,
        need_scores="for top_k > 1" if top_k > 1 else None,
    )
    if p.scores is None or top_k == 1:
        hit = p.pred == p.target
    else:
        if top_k > p.scores.shape[1]:
            raise ValueError(
                f"Expected `top_k` <= number of classes ({p.scores.shape[1]}), but found {top_k}"
            )
        hit = _target_rank(p.scores, p.target) < top_k
    return hit.sum(), _count(hit)


def _accuracy_compute(correct: Tensor, total: Tensor) -> Tensor:
    return _ratio(correct, total)


def accuracy(
    preds: Tensor,
    target: Tensor,
    *,
    top_k: int = 1,
    ignore_index: int | None = None,
    num_classes: int | None = None,
) -> Tensor:
    r"""Fraction of examples whose target is among the ``top_k`` highest-scored classes.

    .. math::
        \mathrm{acc@k} = \frac{1}{N} \sum_{n=1}^{N} [\operatorname{rank}_n(y_n) < k]

    where :math:`\operatorname{rank}_n(y)` is the number of classes scored above
    :math:`y` plus those tied with it at a lower index (so ``top_k=1`` is exactly
    ``argmax == target``).

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,);
            ``top_k > 1`` needs scores.
        target: integer class indices (N,).
        top_k: how many of the highest-scored classes count as a hit (1 <= k <= C).
        ignore_index: target value whose examples are left out.
        num_classes: C, to check index ranges when ``preds`` are indices.

    Returns:
        A 0-dim float64 tensor in [0, 1]; ``nan`` when no example is counted.

    Example:
        >>> preds = torch.tensor([[2.0, 1.0, 0.1], [0.2, 0.5, 0.3], [0.9, 0.02, 0.08]])
        >>> target = torch.tensor([0, 2, 1])
        >>> round(float(accuracy(preds, target)), 4)
        0.3333
        >>> round(float(accuracy(preds, target, top_k=2)), 4)
        0.6667
        >>> float(accuracy(torch.tensor([0, 2, 2]), target))
        0.6666666666666666
    """
    stats = _accuracy_stats(
        preds,
        target,
        top_k=check_top_k(top_k),
        ignore_index=check_ignore_index(ignore_index),
        num_classes=check_num_classes(num_classes),
    )
    return _accuracy_compute(*stats)


# ----------------------------------------------------------------------------------------
# ordered classes: MAE, MSE, off-by-k


def _resolve_values(
    class_values: ArrayLike | None, num_classes: int | None
) -> tuple[Tensor | None, int | None]:
    """Validated class values and the class count they imply."""
    num_classes = check_num_classes(num_classes)
    if class_values is None:
        return None, num_classes
    values = check_class_values(class_values, copy=False)  # read in this call only
    return values, resolve_num_classes(num_classes, values.numel(), "class_values")


def _difference(pred: Tensor, target: Tensor, values: Tensor | None) -> Tensor:
    """``v[pred] - v[target]`` (or ``pred - target`` without values) in float64."""
    if values is None:
        return (pred - target).to(float_dtype(pred.device))
    values = values.to(device=pred.device, dtype=float_dtype(pred.device))
    return values.index_select(0, pred) - values.index_select(0, target)


def _decoded(probs: Tensor, values: Tensor, decoder: str) -> Tensor:
    """The value each row of ``probs`` (N, C) predicts under ``decoder`` (not argmax), (N,).

    ``expectation``: :math:`\\sum_c p_c v_c`; ``median``: the smallest class
    value whose cumulative probability, over the classes sorted by value,
    reaches 1/2.
    """
    if decoder == "expectation":
        return probs @ values
    order = torch.argsort(values, stable=True)
    cumulative = probs[:, order].cumsum(dim=1)
    first = (cumulative < 0.5).sum(dim=1).clamp_(max=values.numel() - 1)
    return values[order][first]


def _value_difference(
    preds: Tensor,
    target: Tensor,
    *,
    class_values: Tensor | None,
    ignore_index: int | None,
    num_classes: int | None,
    decoder: str,
    input_type: str,
) -> Tensor:
    """Predicted value minus target value per counted example, (M,), in float64."""
    classes_from = "`num_classes`" if class_values is None else "the length of `class_values`"
    if decoder == "argmax":
        p = prepare(
            preds,
            target,
            num_classes=num_classes,
            ignore_index=ignore_index,
            classes_from=classes_from,
        )
        return _difference(p.pred, p.target, class_values)
    p = prepare(
        preds,
        target,
        num_classes=num_classes,
        ignore_index=ignore_index,
        need_scores=f"for decoder={decoder!r}",
        classes_from=classes_from,
    )
    if p.scores is None:  # unreachable: prepare refuses indices when scores are needed
        raise TypeError("Expected `preds` to be class scores")
    probs = scores_to_probs(p.scores, input_type)
    dtype = probs.dtype
    if class_values is None:
        values = torch.arange(probs.shape[1], device=probs.device, dtype=dtype)
    else:
        values = class_values.to(device=probs.device, dtype=dtype)
    return _decoded(probs, values, decoder) - values[p.target]


def _error_stats(
    preds: Tensor,
    target: Tensor,
    *,
    class_values: Tensor | None,
    ignore_index: int | None,
    num_classes: int | None,
    squared: bool,
    decoder: str = "argmax",
    input_type: str = "logits",
) -> Stats:
    diff = _value_difference(
        preds,
        target,
        class_values=class_values,
        ignore_index=ignore_index,
        num_classes=num_classes,
        decoder=decoder,
        input_type=input_type,
    )
    error = diff.square() if squared else diff.abs()
    return error.sum(), _count(error)


def _error_compute(error_sum: Tensor, total: Tensor) -> Tensor:
    return _ratio(error_sum, total)


def mean_absolute_error(
    preds: Tensor,
    target: Tensor,
    *,
    class_values: ArrayLike | None = None,
    ignore_index: int | None = None,
    num_classes: int | None = None,
    decoder: str = "argmax",
    input_type: str = "logits",
) -> Tensor:
    r"""Mean absolute distance between the predicted and the target value (ordered classes).

    .. math::
        \mathrm{MAE} = \frac{1}{N} \sum_{n=1}^{N} |\hat v_n - v_{y_n}|

    with :math:`v_c` the value class :math:`c` stands for (e.g. the age), or
    :math:`v_c = c` when ``class_values`` is not given, and :math:`\hat v_n` the
    predicted value under ``decoder``: :math:`v_{\arg\max_c z_{nc}}` (``"argmax"``),
    :math:`\sum_c p_{nc} v_c` (``"expectation"``) or the smallest :math:`v_c` with
    :math:`\sum_{c' : v_{c'} \le v_c} p_{nc'} \ge 1/2` (``"median"``), where
    :math:`p_n` is the softmax of the logits (or the given probabilities).

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        class_values: (C,) value of each class; the error is then in these units.
        ignore_index: target value whose examples are left out.
        num_classes: C, to check index ranges when neither scores nor values give it.
        decoder: how the predicted value is read from ``preds``: ``"argmax"``
            (default: the value of the highest-scored class, as in the paper),
            ``"expectation"`` (the mean of the class values under the predicted
            distribution) or ``"median"`` (the smallest class value whose cumulative
            probability reaches 1/2); the last two need scores.
        input_type: what the scores are, for ``"expectation"`` and ``"median"``:
            ``"logits"`` (default, softmax applied) or ``"probs"`` (checked: values in
            [0, 1], rows summing to 1); the argmax is the same for both and ignores it.

    Returns:
        A 0-dim float64 tensor; ``nan`` when no example is counted.

    Example:
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
    values, classes = _resolve_values(class_values, num_classes)
    diff = _value_difference(
        preds,
        target,
        class_values=values,
        ignore_index=check_ignore_index(ignore_index),
        num_classes=classes,
        decoder=check_decoder(decoder),
        input_type=check_input_type(input_type),
    )
    return diff.abs().mean()  # the sums of `_error_stats` at once; nan for no example


def mean_squared_error(
    preds: Tensor,
    target: Tensor,
    *,
    class_values: ArrayLike | None = None,
    ignore_index: int | None = None,
    num_classes: int | None = None,
    decoder: str = "argmax",
    input_type: str = "logits",
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
        decoder: how the predicted value is read from ``preds``: ``"argmax"``
            (default: the value of the highest-scored class, as in the paper),
            ``"expectation"`` (the mean of the class values under the predicted
            distribution) or ``"median"`` (the smallest class value whose cumulative
            probability reaches 1/2); the last two need scores.
        input_type: what the scores are, for ``"expectation"`` and ``"median"``:
            ``"logits"`` (default, softmax applied) or ``"probs"`` (checked: values in
            [0, 1], rows summing to 1); the argmax is the same for both and ignores it.

    Returns:
        A 0-dim float64 tensor; ``nan`` when no example is counted.

    Example:
        >>> target = torch.tensor([29, 9])
        >>> preds = torch.tensor([31, 9])
        >>> float(mean_squared_error(preds, target))
        2.0
    """
    values, classes = _resolve_values(class_values, num_classes)
    diff = _value_difference(
        preds,
        target,
        class_values=values,
        ignore_index=check_ignore_index(ignore_index),
        num_classes=classes,
        decoder=check_decoder(decoder),
        input_type=check_input_type(input_type),
    )
    return diff.square().mean()  # the sums of `_error_stats` at once; nan for no example


def _off_by_k_stats(
    preds: Tensor,
    target: Tensor,
    *,
    k: float,
    class_values: Tensor | None,
    ignore_index: int | None,
    num_classes: int | None,
    decoder: str = "argmax",
    input_type: str = "logits",
) -> Stats:
    diff = _value_difference(
        preds,
        target,
        class_values=class_values,
        ignore_index=ignore_index,
        num_classes=num_classes,
        decoder=decoder,
        input_type=input_type,
    )
    within = diff.abs() <= k
    return within.sum(), _count(within)


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
) -> Tensor:
    r"""Fraction of predictions at most ``k`` away from the target (ordered classes).

    .. math::
        \mathrm{acc}_{\pm k} = \frac{1}{N} \sum_{n=1}^{N} [\,|\hat v_n - v_{y_n}| \le k\,]

    with :math:`\hat v_n` the predicted value under ``decoder`` (see
    :func:`mean_absolute_error`). ``k = 0`` with the argmax is plain accuracy (for
    distinct class values).

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        k: tolerance >= 0, in class indices or, with ``class_values``, in their units.
        class_values: (C,) value of each class.
        ignore_index: target value whose examples are left out.
        num_classes: C, to check index ranges when neither scores nor values give it.
        decoder: how the predicted value is read from ``preds``: ``"argmax"``
            (default: the value of the highest-scored class, as in the paper),
            ``"expectation"`` (the mean of the class values under the predicted
            distribution) or ``"median"`` (the smallest class value whose cumulative
            probability reaches 1/2); the last two need scores.
        input_type: what the scores are, for ``"expectation"`` and ``"median"``:
            ``"logits"`` (default, softmax applied) or ``"probs"`` (checked: values in
            [0, 1], rows summing to 1); the argmax is the same for both and ignores it.

    Returns:
        A 0-dim float64 tensor in [0, 1]; ``nan`` when no example is counted.

    Example:
        >>> target = torch.tensor([30, 30, 30, 30])
        >>> preds = torch.tensor([30, 31, 28, 36])
        >>> float(off_by_k_accuracy(preds, target, 2))
        0.75
    """
    values, classes = _resolve_values(class_values, num_classes)
    stats = _off_by_k_stats(
        preds,
        target,
        k=check_nonnegative_real(k, "k"),
        class_values=values,
        ignore_index=check_ignore_index(ignore_index),
        num_classes=classes,
        decoder=check_decoder(decoder),
        input_type=check_input_type(input_type),
    )
    return _accuracy_compute(*stats)


# ----------------------------------------------------------------------------------------
# hierarchy: superclass accuracy and failed superclass accuracy


def _superclass_stats(
    preds: Tensor, target: Tensor, *, fine_to_coarse: Tensor, ignore_index: int | None
) -> Stats:
    """SA and FSA sums: (same superclass, examples, mistakes within the superclass, mistakes)."""
    p = prepare(
        preds,
        target,
        num_classes=fine_to_coarse.numel(),
        ignore_index=ignore_index,
        classes_from="the length of `fine_to_coarse`",
    )
    mapping = fine_to_coarse.to(p.pred.device)
    same = mapping[p.pred] == mapping[p.target]
    wrong = p.pred != p.target
    return same.sum(), _count(same), (same & wrong).sum(), wrong.sum()


def superclass_accuracy(
    preds: Tensor,
    target: Tensor,
    fine_to_coarse: ArrayLike,
    *,
    ignore_index: int | None = None,
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

    Returns:
        A 0-dim float64 tensor in [0, 1]; ``nan`` when no example is counted.

    Example:
        >>> fine_to_coarse = [0, 0, 1, 1]  # classes 0, 1 in superclass 0; 2, 3 in 1
        >>> target = torch.tensor([0, 0, 2, 3])
        >>> preds = torch.tensor([0, 1, 0, 3])
        >>> float(superclass_accuracy(preds, target, fine_to_coarse))
        0.75
    """
    same, total, _, _ = _superclass_stats(
        preds,
        target,
        fine_to_coarse=check_fine_to_coarse(fine_to_coarse),
        ignore_index=check_ignore_index(ignore_index),
    )
    return _ratio(same, total)


def failed_superclass_accuracy(
    preds: Tensor,
    target: Tensor,
    fine_to_coarse: ArrayLike,
    *,
    ignore_index: int | None = None,
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

    Returns:
        A 0-dim float64 tensor in [0, 1]; ``nan`` when nothing is misclassified.

    Example:
        >>> fine_to_coarse = [0, 0, 1, 1]
        >>> target = torch.tensor([0, 0, 2, 3])
        >>> preds = torch.tensor([0, 1, 0, 3])  # two mistakes, one within the superclass
        >>> float(failed_superclass_accuracy(preds, target, fine_to_coarse))
        0.5
        >>> failed_superclass_accuracy(target, target, fine_to_coarse).isnan().item()
        True
    """
    _, _, same_wrong, wrong = _superclass_stats(
        preds,
        target,
        fine_to_coarse=check_fine_to_coarse(fine_to_coarse),
        ignore_index=check_ignore_index(ignore_index),
    )
    return _ratio(same_wrong, wrong)


# ----------------------------------------------------------------------------------------
# similarity-aware: mean similarity and mistake severity


StructuredSimilarity: TypeAlias = SimilarityOperator


def _check_similarity(similarity: object) -> Tensor | StructuredSimilarity:
    """A validated dense (C, C) float64 matrix, or a structured similarity as it is."""
    if isinstance(similarity, SimilarityOperator):
        return similarity
    if isinstance(similarity, Tensor) and similarity.layout != torch.strided:
        raise TypeError(
            f"Expected `similarity` to be a dense tensor, but found layout {similarity.layout}; "
            "wrap a sparse matrix with simloss.SparseSimilarity.from_sparse(...)"
        )
    return check_square_matrix(similarity, "similarity")


def _similarity_size(similarity: Tensor | StructuredSimilarity) -> int:
    if isinstance(similarity, Tensor):
        return int(similarity.shape[0])
    return int(similarity.num_classes)


def _similarity_entries(
    similarity: Tensor | StructuredSimilarity, target: Tensor, pred: Tensor
) -> Tensor:
    """``S[target[n], pred[n]]`` for every n, in float64, without a dense matrix when structured."""
    dtype = float_dtype(pred.device)
    if isinstance(similarity, SimilarityOperator):  # any structured form, through its protocol
        home = similarity._device_marker.device
        entries = similarity.entries(target.to(home), pred.to(home), dtype)
        return entries.to(device=pred.device, dtype=dtype)
    return similarity.to(device=pred.device, dtype=dtype)[target, pred]


def _mean_similarity_stats(
    preds: Tensor,
    target: Tensor,
    *,
    similarity: Tensor | StructuredSimilarity,
    ignore_index: int | None,
) -> Stats:
    p = prepare(
        preds,
        target,
        num_classes=_similarity_size(similarity),
        ignore_index=ignore_index,
        classes_from="the size of `similarity`",
    )
    values = _similarity_entries(similarity, p.target, p.pred)
    return values.sum(), _count(values)


def mean_similarity(
    preds: Tensor,
    target: Tensor,
    similarity: ArrayLike | StructuredSimilarity,
    *,
    ignore_index: int | None = None,
) -> Tensor:
    r"""Mean similarity :math:`S_{y, \hat y}` of the predicted class to the target class.

    .. math::
        \bar S = \frac{1}{N} \sum_{n=1}^{N} S_{y_n, \hat y_n}

    Rows of ``similarity`` are indexed by the target, columns by the prediction. With
    a SimLoss similarity matrix (unit diagonal, values in [0, 1]) the value lies in
    [accuracy, 1]; with the identity it is accuracy.

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        similarity: (C, C) finite similarity matrix (a dense tensor, array or nested
            list), or a structured :class:`~simloss.SimilarityOperator` such as
            :class:`~simloss.ClassOrder` or :class:`~simloss.SparseSimilarity` (read
            through :meth:`~simloss.SimilarityOperator.entries`, without a dense matrix).
        ignore_index: target value whose examples are left out.

    Returns:
        A 0-dim float64 tensor; ``nan`` when no example is counted.

    Example:
        >>> S = torch.tensor([[1.0, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 1.0]])
        >>> target = torch.tensor([0, 1, 2, 2])
        >>> preds = torch.tensor([0, 0, 0, 2])
        >>> float(mean_similarity(preds, target, S))
        0.6875
        >>> from simloss import ClassOrder
        >>> float(mean_similarity(preds, target, ClassOrder(3, 0.5)))  # same S, no matrix
        0.6875
    """
    stats = _mean_similarity_stats(
        preds,
        target,
        similarity=_check_similarity(similarity),
        ignore_index=check_ignore_index(ignore_index),
    )
    return _ratio(*stats)


def _mistake_severity_stats(
    preds: Tensor, target: Tensor, *, distance: Tensor, ignore_index: int | None
) -> Stats:
    p = prepare(
        preds,
        target,
        num_classes=distance.shape[0],
        ignore_index=ignore_index,
        classes_from="the size of `distance`",
    )
    wrong = p.pred != p.target
    matrix = distance.to(device=p.pred.device, dtype=float_dtype(p.pred.device))
    values = matrix[p.target[wrong], p.pred[wrong]]
    return values.sum(), _count(values)


def mistake_severity(
    preds: Tensor,
    target: Tensor,
    distance: ArrayLike,
    *,
    ignore_index: int | None = None,
) -> Tensor:
    r"""Mistake severity: mean class distance of the wrong predictions (Bertinetto et al. 2020).

    .. math::
        \mathrm{severity} = \frac{\sum_n [\hat y_n \ne y_n] \, D_{y_n, \hat y_n}}
                                 {\sum_n [\hat y_n \ne y_n]}

    Bertinetto et al. take :math:`D` as the height of the lowest common ancestor of
    the two classes in a class hierarchy; any (C, C) non-negative distance works
    (the tree distance, :math:`1 - S`, ...), so this function does not depend on
    how a hierarchy is stored. Lower is better. Correct predictions are left out;
    **with no mistake at all the value is undefined and** ``nan``.

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        distance: (C, C) non-negative finite distances, rows by target, columns by prediction.
        ignore_index: target value whose examples are left out.

    Returns:
        A 0-dim float64 tensor; ``nan`` when nothing is misclassified.

    Example:
        >>> # LCA heights for classes {0, 1} under one parent and {2} elsewhere
        >>> D = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 2.0], [2.0, 2.0, 0.0]])
        >>> target = torch.tensor([0, 1, 2, 2])
        >>> preds = torch.tensor([1, 1, 0, 2])
        >>> float(mistake_severity(preds, target, D))
        1.5
    """
    stats = _mistake_severity_stats(
        preds,
        target,
        distance=check_square_matrix(distance, "distance", nonnegative=True),
        ignore_index=check_ignore_index(ignore_index),
    )
    return _ratio(*stats)


# ----------------------------------------------------------------------------------------
# mean predicted distribution (Figure 2 of the paper)


class PredictedDistribution(NamedTuple):
    """Mean predicted class distribution, overall and per true class.

    Attributes:
        mean: (C,) mean of the predicted probability vectors over all counted examples
            (``nan`` everywhere when there is none).
        per_class: (C, C) row ``c`` is the mean predicted distribution over the examples
            of true class ``c``; rows of classes without an example are ``nan``.
            ``None`` when no target was given.
        class_counts: (C,) int64 number of counted examples per true class (the real
            label distribution is ``class_counts / class_counts.sum()``); ``None``
            when no target was given.
    """

    mean: Tensor
    per_class: Tensor | None
    class_counts: Tensor | None


def _distribution_stats(
    preds: Tensor,
    target: Tensor | None,
    *,
    num_classes: int | None,
    input_type: str,
    ignore_index: int | None,
) -> Stats:
    """(sum of probabilities (C,), per-class sums (C, C), class counts (C,), examples)."""
    preds = check_tensor(preds, "preds")
    if preds.ndim != 2 or not preds.is_floating_point():
        raise TypeError(
            "Expected `preds` to be class scores (logits or probabilities) of floating dtype and "
            f"shape (N, C), but found dtype {preds.dtype} and shape {tuple(preds.shape)}"
        )
    if target is None:
        if ignore_index is not None:
            raise ValueError("Expected `target` when `ignore_index` is given, but found None")
        target = torch.zeros(preds.shape[0], dtype=torch.int64, device=preds.device)
    p = prepare(
        preds,
        target,
        num_classes=num_classes,
        ignore_index=ignore_index,
        need_scores="for the predicted distribution",
    )
    if p.scores is None:  # unreachable: floating 2-D preds are read as scores
        raise TypeError(f"Expected `preds` to be class scores, but found dtype {preds.dtype}")
    probs = scores_to_probs(p.scores, input_type)
    classes = probs.shape[1]
    per_class = torch.zeros(classes, classes, dtype=probs.dtype, device=probs.device)
    per_class.index_add_(0, p.target, probs)
    counts = torch.bincount(p.target, minlength=classes)
    return probs.sum(dim=0), per_class, counts, _count(p.target)


def _distribution_compute(
    prob_sum: Tensor, per_class_sum: Tensor, counts: Tensor, total: Tensor
) -> PredictedDistribution:
    mean = _ratio(prob_sum, total)
    per_class = _ratio(per_class_sum, counts[:, None])
    return PredictedDistribution(mean, per_class, counts.clone())


def mean_predicted_distribution(
    preds: Tensor,
    target: Tensor | None = None,
    *,
    input_type: str = "logits",
    ignore_index: int | None = None,
    num_classes: int | None = None,
) -> PredictedDistribution:
    r"""Mean predicted probability distribution, over all examples and per true class.

    .. math::
        \bar p = \frac{1}{N} \sum_{n=1}^{N} p_n, \qquad
        \bar p^{(c)} = \frac{1}{N_c} \sum_{n : y_n = c} p_n

    with :math:`p_n` the softmax of the logits (or the given probabilities). These
    are the curves of Figure 2 of Kobs et al. 2020: the overall mean against the
    real label distribution (a), and the mean over the examples of one class (b).

    Args:
        preds: scores (N, C): logits, or probabilities with ``input_type="probs"``
            (checked to be in [0, 1] with rows summing to 1 within 1e-3, 2e-2 for
            16-bit dtypes).
        target: integer class indices (N,), needed for the per-class means.
        input_type: ``"logits"`` (default, like the loss) or ``"probs"``.
        ignore_index: target value whose examples are left out (needs ``target``).
        num_classes: C, checked against ``preds.shape[1]`` when given.

    Returns:
        A :class:`PredictedDistribution` ``(mean, per_class, class_counts)`` of float64
        tensors (counts int64); ``per_class`` and ``class_counts`` are ``None``
        without a target, and rows of ``per_class`` for classes with no example are
        ``nan``.

    Example:
        >>> probs = torch.tensor([[0.5, 0.5, 0.0], [0.1, 0.9, 0.0], [0.3, 0.3, 0.4]])
        >>> result = mean_predicted_distribution(probs, torch.tensor([0, 0, 1]), input_type="probs")
        >>> [round(x, 4) for x in result.mean.tolist()]
        [0.3, 0.5667, 0.1333]
        >>> [round(x, 4) for x in result.per_class[0].tolist()]
        [0.3, 0.7, 0.0]
        >>> result.per_class[2].isnan().all().item()
        True
        >>> result.class_counts.tolist()
        [2, 1, 0]
    """
    has_target = target is not None
    prob_sum, per_class_sum, counts, total = _distribution_stats(
        preds,
        target,
        num_classes=check_num_classes(num_classes),
        input_type=check_input_type(input_type),
        ignore_index=check_ignore_index(ignore_index),
    )
    result = _distribution_compute(prob_sum, per_class_sum, counts, total)
    if not has_target:
        return PredictedDistribution(result.mean, None, None)
    return result


# ----------------------------------------------------------------------------------------
# the paper's metric set


def decoded_key(name: str, decoder: str) -> str:
    """The record key of an error metric under a decoder: ``"mae"``, ``"mae_expectation"``, ...

    The argmax keeps the plain key (the paper's metric); other decoders append
    ``_<decoder>``.

    Example:
        >>> decoded_key("mse", "argmax"), decoded_key("mse", "median")
        ('mse', 'mse_median')
    """
    return name if check_decoder(decoder) == "argmax" else f"{name}_{decoder}"


def compute_metrics(
    preds: Tensor,
    target: Tensor,
    *,
    class_values: ArrayLike | None = None,
    fine_to_coarse: ArrayLike | None = None,
    ordered: bool = False,
    ignore_index: int | None = None,
    decoders: Sequence[str] = ("argmax",),
    input_type: str = "logits",
) -> dict[str, float]:
    """The paper's evaluation metrics as plain floats under the record's keys.

    Always ``"acc"`` (a fraction in [0, 1]); ``"mae"`` and ``"mse"`` when
    ``class_values`` is given (in its units, e.g. years) or ``ordered=True`` (in
    class indices), once per decoder in ``decoders`` under :func:`decoded_key`
    (``"mae"``/``"mse"`` for the argmax, ``"mae_expectation"``, ``"mse_median"``,
    ...); ``"sa"`` and ``"fsa"`` when ``fine_to_coarse`` is given. ``fsa`` is
    ``nan`` when nothing is misclassified (see :func:`failed_superclass_accuracy`).

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        class_values: (C,) value of each class (e.g. ages), for MAE and MSE.
        fine_to_coarse: (C,) superclass of each fine class, for SA and FSA.
        ordered: also report MAE and MSE on class indices when no values are given.
        ignore_index: target value whose examples are left out.
        decoders: the decoders of MAE and MSE (see :func:`mean_absolute_error`),
            distinct; ``"expectation"`` and ``"median"`` need scores.
        input_type: ``"logits"`` (default) or ``"probs"``: what scores are, for the
            decoders other than the argmax.

    Returns:
        ``dict`` from metric key to value, in the order acc, mae, mse (per decoder,
        in the order given), sa, fsa.

    Example:
        >>> preds = torch.tensor([0, 1, 3, 3])
        >>> target = torch.tensor([0, 0, 2, 3])
        >>> compute_metrics(preds, target, class_values=[10, 20, 30, 40])
        {'acc': 0.5, 'mae': 5.0, 'mse': 50.0}
        >>> compute_metrics(preds, target, fine_to_coarse=[0, 0, 1, 1])
        {'acc': 0.5, 'sa': 1.0, 'fsa': 1.0}
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
        >>> result = compute_metrics(logits, torch.tensor([0, 1]), ordered=True,
        ...                          decoders=("argmax", "expectation"))
        >>> {k: round(v, 4) for k, v in result.items()}
        {'acc': 0.5, 'mae': 0.5, 'mse': 0.5, 'mae_expectation': 0.3096, 'mse_expectation': 0.1321}
    """
    if not isinstance(ordered, bool):
        raise TypeError(f"Expected `ordered` to be a bool, but found {type(ordered).__name__}")
    if isinstance(decoders, str) or not isinstance(decoders, Sequence):
        raise TypeError(
            f"Expected `decoders` to be a sequence of decoder names, but found {decoders!r}"
        )
    chosen = [check_decoder(d) for d in decoders]
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"Expected distinct `decoders`, but found {list(decoders)}")
    kind = check_input_type(input_type)
    ignore = check_ignore_index(ignore_index)
    values = None if class_values is None else check_class_values(class_values)
    mapping = None if fine_to_coarse is None else check_fine_to_coarse(fine_to_coarse)
    classes = None if values is None else values.numel()
    if mapping is not None:
        classes = resolve_num_classes(
            classes, mapping.numel(), "fine_to_coarse", "the length of `class_values`"
        )
    # Validate once, then work on plain class indices (and scores for the decoders).
    source = "the length of `class_values`" if values is not None else "`num_classes`"
    if mapping is not None:
        source = "the length of `fine_to_coarse`"
    errors = values is not None or ordered
    scored = [d for d in chosen if d != "argmax"] if errors else []
    p = prepare(
        preds,
        target,
        num_classes=classes,
        ignore_index=ignore,
        classes_from=source,
        need_scores=f"for decoders {scored}" if scored else None,
    )
    pred, tgt = p.pred, p.target
    hit = pred == tgt
    metrics = {"acc": float(_ratio(hit.sum(), _count(hit)))}
    if errors:
        probs = None if p.scores is None else scores_to_probs(p.scores, kind)
        for decoder in chosen:
            if decoder == "argmax":
                diff = _difference(pred, tgt, values)
            else:
                if probs is None:  # unreachable: prepare returns scores for these decoders
                    raise TypeError("Expected `preds` to be class scores for the decoders")
                grid = (
                    torch.arange(probs.shape[1], dtype=probs.dtype, device=probs.device)
                    if values is None
                    else values.to(device=probs.device, dtype=probs.dtype)
                )
                diff = _decoded(probs, grid, decoder) - grid[tgt]
            metrics[decoded_key("mae", decoder)] = float(_ratio(diff.abs().sum(), _count(diff)))
            metrics[decoded_key("mse", decoder)] = float(_ratio(diff.square().sum(), _count(diff)))
    if mapping is not None:
        same, total, same_wrong, wrong = _superclass_stats(
            pred, tgt, fine_to_coarse=mapping, ignore_index=None
        )
        metrics["sa"] = float(_ratio(same, total))
        metrics["fsa"] = float(_ratio(same_wrong, wrong))
    return metrics
