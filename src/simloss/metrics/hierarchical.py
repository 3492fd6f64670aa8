"""Metrics of a class hierarchy: the average hierarchical distance of the top-k predictions,
and hierarchical precision, recall and F (Kiritchenko et al.).

* **Average hierarchical distance @k** (Bertinetto et al., CVPR 2020): the mean,
  over examples and over the k highest-scored classes, of the height of their
  lowest common ancestor with the target (``lca_height``). Correct predictions
  count 0. With k = 1 it is the mistake severity times the error rate; the
  severity of the mistakes alone is :func:`~simloss.metrics.mistake_severity`
  with ``distance=hierarchy.lca_height``. Ties in the ranking go to the lower
  class index, as the argmax.
* **Hierarchical precision, recall and F** (Kiritchenko, Matwin, Nock & Famili
  2006): the ancestor sets (root excluded, class included) of the prediction
  :math:`\\hat A_n` and of the target :math:`A_n`, micro-averaged:

  .. math::
      hP = \\frac{\\sum_n |\\hat A_n \\cap A_n|}{\\sum_n |\\hat A_n|}, \\quad
      hR = \\frac{\\sum_n |\\hat A_n \\cap A_n|}{\\sum_n |A_n|}, \\quad
      hF = \\frac{2\\, hP\\, hR}{hP + hR}

  For classes at one depth (CIFAR-100's superclass tree) the three are equal.

Example:
    >>> import torch
    >>> from simloss.metrics import AverageHierarchicalDistance, ClassHierarchy
    >>> h = ClassHierarchy.from_superclasses([0, 0, 1, 1])
    >>> metric = AverageHierarchicalDistance(h, top_k=2)
    >>> metric.update(torch.tensor([[3.0, 2.0, 1.0, 0.0]]), torch.tensor([0]))
    >>> float(metric.compute()), metric.key  # (0 + 1) / 2
    (0.5, 'hdist_top2')

References:
    Bertinetto, Mueller, Tertikas, Samangooei, Lord. "Making Better Mistakes: Leveraging
    Class Hierarchies with Deep Networks." CVPR 2020. https://arxiv.org/abs/1912.09393
    Kiritchenko, Matwin, Nock, Famili. "Learning and Evaluation in the Presence of Class
    Hierarchies: Application to Text Categorization." Canadian AI 2006.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor

from simloss.metrics._batch import Batch
from simloss.metrics._checks import check_top_k, float_dtype
from simloss.metrics._declaration import (
    MetricDeclaration,
    MetricTask,
    State,
    decoded_key,
    decoded_label,
    numeric_key,
    register,
)
from simloss.metrics._stats import ArrayLike, Stats, count, ratio
from simloss.metrics.decoders import CLASS_DECODERS, check_decoding
from simloss.metrics.hierarchy import ClassHierarchy

__all__ = [
    "AVERAGE_HIERARCHICAL_DISTANCE",
    "HIERARCHICAL_F",
    "HIERARCHICAL_PRECISION",
    "HIERARCHICAL_RECALL",
    "average_hierarchical_distance",
    "hierarchical_f1",
    "hierarchical_precision",
    "hierarchical_recall",
]

_SOURCE = "the classes of `hierarchy`"


def _check_hierarchy(hierarchy: object) -> ClassHierarchy:
    if not isinstance(hierarchy, ClassHierarchy):
        raise TypeError(
            "Expected `hierarchy` to be a simloss.metrics.ClassHierarchy (from_tree or "
            f"from_superclasses), but found {type(hierarchy).__name__} (a (C, C) distance "
            "matrix is mistake_severity's `distance`)"
        )
    return hierarchy


# ----------------------------------------------------------------------------- hdist@k


def _distance_configure(
    *, hierarchy: object, top_k: object, decoder: object, input_type: object, cost: object
) -> dict[str, Any]:
    tree = _check_hierarchy(hierarchy)
    k = check_top_k(top_k)
    decoding = check_decoding(decoder, input_type, cost, num_classes=tree.num_classes)
    if k > 1 and decoding["decoder"] != "argmax":
        raise ValueError(
            f"Expected `top_k` = 1 with decoder={decoding['decoder']!r}, but found top_k = {k}"
        )
    return {"lca_height": tree.lca_height.clone(), "top_k": k, **decoding}


def _distance_stats(
    batch: Batch,
    *,
    lca_height: Tensor,
    top_k: int,
    decoder: str,
    input_type: str,
    cost: Tensor | None,
) -> Stats:
    batch.check_classes(lca_height.shape[0], _SOURCE)
    height = lca_height.to(device=batch.device, dtype=float_dtype(batch.device))
    if top_k == 1:
        pred = batch.classes(decoder, input_type=input_type, cost=cost)
        values = height[batch.target, pred]
    else:
        scores = batch.scores("for top_k > 1")
        if top_k > scores.shape[1]:
            raise ValueError(
                f"Expected `top_k` <= number of classes ({scores.shape[1]}), but found {top_k}"
            )
        ranked = torch.argsort(scores, dim=1, descending=True, stable=True)[:, :top_k]
        values = height[batch.target[:, None], ranked].mean(dim=1)
    return values.sum(), count(values)


def average_hierarchical_distance(
    preds: Tensor,
    target: Tensor,
    hierarchy: ClassHierarchy,
    *,
    top_k: int = 1,
    ignore_index: int | None = None,
    decoder: str = "argmax",
    input_type: str = "logits",
    cost: ArrayLike | None = None,
) -> Tensor:
    r"""Average hierarchical distance of the ``top_k`` predictions (Bertinetto et al. 2020).

    .. math::
        \frac{1}{N k} \sum_{n=1}^{N} \sum_{j=1}^{k} \mathrm{height}(\mathrm{lca}(y_n, \hat y_{n,j}))

    with :math:`\hat y_{n,1..k}` the k highest-scored classes (ties: lower index
    first). Lower is better.

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,)
            (``top_k = 1`` only).
        target: integer class indices (N,).
        hierarchy: a :class:`~simloss.metrics.ClassHierarchy` of the C classes.
        top_k: how many of the highest-scored classes (1 <= k <= C).
        ignore_index: target value whose examples are left out.
        decoder: for ``top_k = 1``: ``"argmax"`` (default), ``"median"`` or ``"min_risk"``.
        input_type: ``"logits"`` (default) or ``"probs"``, for the decoders.
        cost: (C, C) cost of ``"min_risk"`` (e.g. ``hierarchy.lca_height``).

    Returns:
        A 0-dim float64 tensor; ``nan`` when no example is counted.

    Example:
        >>> import torch
        >>> h = ClassHierarchy.from_superclasses([0, 0, 1])
        >>> float(average_hierarchical_distance(torch.tensor([1, 2, 2]), torch.tensor([0, 0, 2]), h))
        1.0
    """
    return AVERAGE_HIERARCHICAL_DISTANCE.evaluate(
        preds,
        target,
        hierarchy=hierarchy,
        top_k=top_k,
        ignore_index=ignore_index,
        decoder=decoder,
        input_type=input_type,
        cost=cost,
    )


def _distance_key(config: Mapping[str, Any]) -> str | None:
    decoder = str(config.get("decoder", "argmax"))
    if config["top_k"] != 1 and decoder != "argmax":
        return None  # no such configuration: a decoder predicts one class
    return decoded_key(f"hdist_top{config['top_k']}", decoder)


def _distance_label(config: Mapping[str, Any]) -> str:
    return decoded_label(f"Hier. dist@{config['top_k']}", str(config.get("decoder", "argmax")))


def _distance_record(task: MetricTask) -> Iterator[dict[str, Any]]:
    classes = task.hierarchy.num_classes
    if task.scores and (classes is None or classes >= 5):
        yield {"hierarchy": task.hierarchy, "top_k": 5, "decoder": "argmax", "cost": None}


AVERAGE_HIERARCHICAL_DISTANCE = register(
    MetricDeclaration(
        key=None,
        label="Hier. dist@k",
        class_name="AverageHierarchicalDistance",
        function=average_hierarchical_distance,
        configure=_distance_configure,
        stats=_distance_stats,
        compute=ratio,
        higher_is_better=False,
        needs=frozenset({"hierarchy"}),
        decoders=CLASS_DECODERS,
        record=_distance_record,
        key_of=_distance_key,
        label_of=_distance_label,
        parse_key=numeric_key("hdist_top", "top_k", lambda text: check_top_k(int(text))),
        class_doc="""Accumulating average hierarchical distance @k; see
    :func:`simloss.metrics.average_hierarchical_distance`.

    Args: those of the function after ``preds`` and ``target`` (``hierarchy``,
    ``top_k``, ``ignore_index``, ``decoder``, ``input_type``, ``cost``), and
    torchmetrics' ``process_group``, ...
    """,
    )
)


# ----------------------------------------------------------------------------- hP, hR, hF


def _sets_configure(
    *, hierarchy: object, decoder: object, input_type: object, cost: object
) -> dict[str, Any]:
    tree = _check_hierarchy(hierarchy)
    decoding = check_decoding(decoder, input_type, cost, num_classes=tree.num_classes)
    return {"depth": tree.depth.clone(), "lca_depth": tree.lca_depth.clone(), **decoding}


def _sets_states(config: Mapping[str, Any]) -> tuple[State, ...]:
    return (
        ("common", (), torch.int64),
        ("predicted", (), torch.int64),
        ("true", (), torch.int64),
    )


def _sets_stats(
    batch: Batch,
    *,
    depth: Tensor,
    lca_depth: Tensor,
    decoder: str,
    input_type: str,
    cost: Tensor | None,
) -> Stats:
    """Sums of |common ancestors|, |ancestors of the prediction|, |ancestors of the target|."""
    batch.check_classes(depth.numel(), _SOURCE)
    pred = batch.classes(decoder, input_type=input_type, cost=cost)
    depth, lca_depth = depth.to(pred.device), lca_depth.to(pred.device)
    return lca_depth[batch.target, pred].sum(), depth[pred].sum(), depth[batch.target].sum()


def _precision(common: Tensor, predicted: Tensor, true: Tensor) -> Tensor:
    return ratio(common, predicted)


def _recall(common: Tensor, predicted: Tensor, true: Tensor) -> Tensor:
    return ratio(common, true)


def _f1(common: Tensor, predicted: Tensor, true: Tensor) -> Tensor:
    return ratio(2 * common, predicted + true)


def hierarchical_precision(
    preds: Tensor,
    target: Tensor,
    hierarchy: ClassHierarchy,
    *,
    ignore_index: int | None = None,
    decoder: str = "argmax",
    input_type: str = "logits",
    cost: ArrayLike | None = None,
) -> Tensor:
    r"""Hierarchical precision: the share of the predictions' ancestors that are the targets' ancestors.

    See the module for the formula (Kiritchenko et al. 2006).

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        hierarchy: a :class:`~simloss.metrics.ClassHierarchy` of the C classes.
        ignore_index: target value whose examples are left out.
        decoder: ``"argmax"`` (default), ``"median"`` or ``"min_risk"``.
        input_type: ``"logits"`` (default) or ``"probs"``, for the decoders.
        cost: (C, C) cost of ``"min_risk"``.

    Returns:
        A 0-dim float64 tensor in [0, 1]; ``nan`` when no example is counted.

    Example:
        >>> import torch
        >>> h = ClassHierarchy.from_tree([("r", "a"), ("a", "x"), ("a", "y"), ("r", "z")])
        >>> round(float(hierarchical_precision(torch.tensor([1, 2]), torch.tensor([0, 0]), h)), 4)
        0.3333
    """
    return HIERARCHICAL_PRECISION.evaluate(
        preds,
        target,
        hierarchy=hierarchy,
        ignore_index=ignore_index,
        decoder=decoder,
        input_type=input_type,
        cost=cost,
    )


def hierarchical_recall(
    preds: Tensor,
    target: Tensor,
    hierarchy: ClassHierarchy,
    *,
    ignore_index: int | None = None,
    decoder: str = "argmax",
    input_type: str = "logits",
    cost: ArrayLike | None = None,
) -> Tensor:
    r"""Hierarchical recall: the share of the targets' ancestors that are the predictions' ancestors.

    See the module for the formula (Kiritchenko et al. 2006).

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        hierarchy: a :class:`~simloss.metrics.ClassHierarchy` of the C classes.
        ignore_index: target value whose examples are left out.
        decoder: ``"argmax"`` (default), ``"median"`` or ``"min_risk"``.
        input_type: ``"logits"`` (default) or ``"probs"``, for the decoders.
        cost: (C, C) cost of ``"min_risk"``.

    Returns:
        A 0-dim float64 tensor in [0, 1]; ``nan`` when no example is counted.

    Example:
        >>> import torch
        >>> h = ClassHierarchy.from_tree([("r", "a"), ("a", "x"), ("a", "y"), ("r", "z")])
        >>> round(float(hierarchical_recall(torch.tensor([1, 2]), torch.tensor([0, 0]), h)), 4)
        0.25
    """
    return HIERARCHICAL_RECALL.evaluate(
        preds,
        target,
        hierarchy=hierarchy,
        ignore_index=ignore_index,
        decoder=decoder,
        input_type=input_type,
        cost=cost,
    )


def hierarchical_f1(
    preds: Tensor,
    target: Tensor,
    hierarchy: ClassHierarchy,
    *,
    ignore_index: int | None = None,
    decoder: str = "argmax",
    input_type: str = "logits",
    cost: ArrayLike | None = None,
) -> Tensor:
    r"""Hierarchical F: the harmonic mean of hierarchical precision and recall.

    See the module for the formula (Kiritchenko et al. 2006).

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        hierarchy: a :class:`~simloss.metrics.ClassHierarchy` of the C classes.
        ignore_index: target value whose examples are left out.
        decoder: ``"argmax"`` (default), ``"median"`` or ``"min_risk"``.
        input_type: ``"logits"`` (default) or ``"probs"``, for the decoders.
        cost: (C, C) cost of ``"min_risk"``.

    Returns:
        A 0-dim float64 tensor in [0, 1]; ``nan`` when no example is counted.

    Example:
        >>> import torch
        >>> h = ClassHierarchy.from_tree([("r", "a"), ("a", "x"), ("a", "y"), ("r", "z")])
        >>> round(float(hierarchical_f1(torch.tensor([1, 2]), torch.tensor([0, 0]), h)), 4)
        0.2857
    """
    return HIERARCHICAL_F.evaluate(
        preds,
        target,
        hierarchy=hierarchy,
        ignore_index=ignore_index,
        decoder=decoder,
        input_type=input_type,
        cost=cost,
    )


def _sets_record(task: MetricTask) -> Iterator[dict[str, Any]]:
    for decoding in task.decoding(("argmax", "min_risk"), always_argmax=True):
        yield {"hierarchy": task.hierarchy, **decoding}


def _sets(
    key: str, label: str, class_name: str, function: Any, compute: Any, *, recorded: bool
) -> MetricDeclaration:
    return register(
        MetricDeclaration(
            key=key,
            label=label,
            class_name=class_name,
            function=function,
            configure=_sets_configure,
            stats=_sets_stats,
            compute=compute,
            states=_sets_states,
            higher_is_better=True,
            is_percent=True,
            needs=frozenset({"hierarchy"}),
            decoders=CLASS_DECODERS,
            record=_sets_record if recorded else None,
            class_doc=f"""Accumulating {label}; see :func:`simloss.metrics.{function.__name__}`.

    Args: those of the function after ``preds`` and ``target`` (``hierarchy``,
    ``ignore_index``, ``decoder``, ``input_type``, ``cost``), and torchmetrics'
    ``process_group``, ...
    """,
        )
    )


# Runs record hF only: for classes at one depth (the usual tree) hP = hR = hF.
HIERARCHICAL_PRECISION = _sets(
    "hp", "hP", "HierarchicalPrecision", hierarchical_precision, _precision, recorded=False
)
HIERARCHICAL_RECALL = _sets(
    "hr", "hR", "HierarchicalRecall", hierarchical_recall, _recall, recorded=False
)
HIERARCHICAL_F = _sets("hf", "hF", "HierarchicalF1", hierarchical_f1, _f1, recorded=True)
