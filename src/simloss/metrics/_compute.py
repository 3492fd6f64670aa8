"""The metrics of a task in one call, as plain floats under their record keys (private).

:func:`compute_metrics` is what a training run records (``simloss.experiments.train``):
every registered metric that the task allows (``MetricDeclaration.needs`` and
``record``), each under its record key. :func:`metric_keys` lists those keys for a
task's facts alone (for a run's ``--monitor`` choices and tune objectives).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from simloss.metrics._batch import Batch
from simloss.metrics._checks import (
    check_class_values,
    check_fine_to_coarse,
    check_ignore_index,
    check_input_type,
    resolve_num_classes,
)
from simloss.metrics._declaration import MetricDeclaration, MetricTask, discover, record_configs
from simloss.metrics._stats import ArrayLike
from simloss.metrics.decoders import DECODERS, check_decoder, value_cost
from simloss.metrics.hierarchy import ClassHierarchy

__all__ = ["compute_metrics", "metric_keys"]


def _check_decoders(decoders: object) -> tuple[str, ...]:
    if isinstance(decoders, str) or not isinstance(decoders, Sequence):
        raise TypeError(
            f"Expected `decoders` to be a sequence of decoder names, but found {decoders!r}"
        )
    chosen = tuple(check_decoder(d) for d in decoders)
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"Expected distinct `decoders`, but found {list(decoders)}")
    return chosen


def metric_keys(
    *,
    ordered: bool = False,
    superclasses: bool = False,
    hierarchy: bool = False,
    decoders: Sequence[str] = ("argmax",),
    scores: bool = True,
) -> tuple[str, ...]:
    """The record keys :func:`compute_metrics` gives for a task with these facts.

    Args:
        ordered: the classes are ordered (class values or indices).
        superclasses: a fine-to-coarse mapping is given.
        hierarchy: a :class:`~simloss.metrics.ClassHierarchy` is given.
        decoders: the decoders of the task (``min_risk`` with the task's cost).
        scores: ``preds`` are class scores (not predicted indices).

    Raises:
        ValueError: a decoder that no metric of such a task reads (as
            :func:`compute_metrics`), e.g. ``"median"`` for unordered classes.

    Example:
        >>> keys = metric_keys(ordered=True, decoders=("argmax", "expectation"))
        >>> keys[:8], keys[-2:]
        (('acc', 'mae', 'mse', 'qwk', 'amae', 'mmae', 'rps', 'ms'), ('mae_expectation', 'mse_expectation'))
        >>> metric_keys(superclasses=True, hierarchy=True)[:6]
        ('acc', 'sa', 'fsa', 'mistake_severity', 'hdist_top5', 'hf')
    """
    chosen = _check_decoders(decoders)
    task = MetricTask(
        ordered=bool(ordered),
        fine_to_coarse=torch.zeros(0, dtype=torch.int64) if superclasses else None,
        hierarchy=_ANY_HIERARCHY if hierarchy else None,
        decoders=chosen,
        cost=torch.zeros(0) if "min_risk" in chosen else None,
        scores=bool(scores),
    )
    return tuple(key for key, _, _ in _configs(task))


class _AnyHierarchy:
    """Stands for a hierarchy when only the keys of a task are asked for."""

    num_classes = None
    lca_height = depth = lca_depth = None


_ANY_HIERARCHY = _AnyHierarchy()


def compute_metrics(
    preds: Tensor,
    target: Tensor,
    *,
    class_values: ArrayLike | None = None,
    fine_to_coarse: ArrayLike | None = None,
    hierarchy: ClassHierarchy | None = None,
    ordered: bool = False,
    ignore_index: int | None = None,
    decoders: Sequence[str] = ("argmax",),
    input_type: str = "logits",
    cost: ArrayLike | None = None,
    decoded: Mapping[str, Tensor] | None = None,
) -> dict[str, float]:
    """Every metric a task allows, as plain floats under the record's keys.

    Always ``"acc"`` (a fraction in [0, 1]). For ordered classes (``class_values``
    given, in their units, e.g. years, or ``ordered=True``, in class indices):
    ``"mae"``, ``"mse"`` (once per decoder, under
    :func:`~simloss.metrics.decoded_key`), ``"qwk"``, ``"amae"``, ``"mmae"``, ``"rps"``
    (scores only) and ``"ms"``. With ``fine_to_coarse``: ``"sa"`` and ``"fsa"``. With a
    ``hierarchy``: ``"mistake_severity"`` (its LCA heights), ``"hdist_top5"`` (scores
    only) and ``"hf"``. ``decoders`` containing ``"min_risk"`` also records the class
    metrics under the minimum-risk decision, with ``cost``, or by default the
    hierarchy's LCA heights, or ``|v_k - v_c|`` for ordered classes. A decoder that no
    metric of the task reads is an error (``"median"`` for unordered classes without a
    hierarchy: nothing would be recorded under it). ``"hdist_top5"`` needs 5 or more
    classes (the top 5 of fewer is not defined). Undefined
    values (FSA without a mistake) are ``nan``. :func:`metric_keys` lists the keys.

    ``preds`` and ``target`` are validated once, and every metric reads the same
    decoded predictions.

    Args:
        preds: scores (N, C), logits or probabilities, or predicted indices (N,).
        target: integer class indices (N,).
        class_values: (C,) value of each class (e.g. ages).
        fine_to_coarse: (C,) superclass of each fine class, for SA and FSA.
        hierarchy: a :class:`~simloss.metrics.ClassHierarchy` of the classes.
        ordered: the classes are ordered, also without values.
        ignore_index: target value whose examples are left out.
        decoders: the decoders of the decoding metrics (see :mod:`simloss.metrics.decoders`),
            distinct; all but ``"argmax"`` need scores.
        input_type: ``"logits"`` (default) or ``"probs"``: what scores are.
        cost: (C, C) cost of ``"min_risk"``.
        decoded: the classes (N,) one of ``decoders`` chose elsewhere, by decoder name,
            used instead of decoding ``preds``: a model head's own rule, e.g.
            ``{"median": corn_label(logits)}`` for CORN, whose median is coral-pytorch's
            count of ``P(y > k) > 1/2`` on its logits
            (:meth:`simloss.experiments.heads.Head.decisions`).

    Returns:
        ``dict`` from record key to value: the argmax's metrics first, then those of
        each other decoder in the order given.

    Example:
        >>> preds = torch.tensor([0, 1, 3, 3])
        >>> target = torch.tensor([0, 0, 2, 3])
        >>> result = compute_metrics(preds, target, class_values=[10, 20, 30, 40])
        >>> {k: round(result[k], 4) for k in ("acc", "mae", "mse", "qwk", "amae", "mmae", "ms")}
        {'acc': 0.5, 'mae': 5.0, 'mse': 50.0, 'qwk': 0.8621, 'amae': 5.0, 'mmae': 10.0, 'ms': 0.0}
        >>> compute_metrics(preds, target, fine_to_coarse=[0, 0, 1, 1])
        {'acc': 0.5, 'sa': 1.0, 'fsa': 1.0}
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
        >>> result = compute_metrics(logits, torch.tensor([0, 1]), ordered=True,
        ...                          decoders=("argmax", "expectation"))
        >>> {k: round(result[k], 4) for k in ("mae", "mse", "mae_expectation", "mse_expectation")}
        {'mae': 0.5, 'mse': 0.5, 'mae_expectation': 0.3096, 'mse_expectation': 0.1321}
    """
    if not isinstance(ordered, bool):
        raise TypeError(f"Expected `ordered` to be a bool, but found {type(ordered).__name__}")
    chosen = _check_decoders(decoders)
    kind = check_input_type(input_type)
    values = None if class_values is None else check_class_values(class_values)
    mapping = None if fine_to_coarse is None else check_fine_to_coarse(fine_to_coarse)
    if hierarchy is not None and not isinstance(hierarchy, ClassHierarchy):
        raise TypeError(
            "Expected `hierarchy` to be a simloss.metrics.ClassHierarchy, but found "
            f"{type(hierarchy).__name__}"
        )
    classes: int | None = None
    source = "`num_classes`"
    for given, length, name in (
        (values, None if values is None else values.numel(), "class_values"),
        (mapping, None if mapping is None else mapping.numel(), "fine_to_coarse"),
        (hierarchy, None if hierarchy is None else hierarchy.num_classes, "hierarchy"),
    ):
        if given is not None and length is not None:
            classes = resolve_num_classes(classes, length, name, source)
            source = f"the length of `{name}`"
    if isinstance(decoded, Mapping) and not set(decoded) <= set(chosen):
        raise ValueError(
            f"Expected `decoded` only for decoders among `decoders` {list(chosen)}, but found "
            f"{sorted(set(decoded) - set(chosen))}"
        )
    batch = Batch(preds, target, ignore_index=check_ignore_index(ignore_index), decoded=decoded)
    classes = batch.check_classes(classes, source)
    is_ordered = ordered or values is not None
    task = MetricTask(
        num_classes=classes,
        class_values=values,
        ordered=is_ordered,
        fine_to_coarse=mapping,
        hierarchy=hierarchy,
        decoders=chosen,
        input_type=kind,
        cost=_min_risk_cost(chosen, cost, hierarchy, values, is_ordered, classes),
        scores=batch.num_classes is not None,
    )
    result: dict[str, float] = {}
    for key, declaration, arguments in _configs(task):
        _, config = declaration.bind(**arguments)
        result[key] = float(declaration.value(declaration.stats(batch, **config), config))
    return result


def _configs(task: MetricTask) -> list[tuple[str, MetricDeclaration, dict[str, Any]]]:
    """:func:`record_configs` of a task, refusing a decoder that none of its metrics reads."""
    configs = record_configs(task)
    used = {str(config.get("decoder", "argmax")) for _, _, config in configs}
    unused = [d for d in task.decoders if d not in used]
    if unused:
        every = replace(task, decoders=DECODERS, cost=torch.zeros(0))
        readable = sorted(
            {str(config.get("decoder", "argmax")) for _, _, config in record_configs(every)},
            key=DECODERS.index,
        )
        hint = (
            "" if task.ordered else " (the value metrics and their decoders need ordered classes)"
        )
        raise ValueError(
            f"Expected `decoders` that a metric of this task reads, {readable}, but no metric "
            f"reads {unused}{hint}"
        )
    return configs


def _min_risk_cost(
    decoders: tuple[str, ...],
    cost: object,
    hierarchy: ClassHierarchy | None,
    values: Tensor | None,
    ordered: bool,
    classes: int | None,
) -> Any:
    """``min_risk``'s cost: given, or the hierarchy's LCA heights, or ``|v_k - v_c|``."""
    if "min_risk" not in decoders:
        if cost is not None:
            raise ValueError("Expected `cost` only with 'min_risk' in `decoders`, but found it")
        return None
    if cost is not None:
        return cost
    if hierarchy is not None:
        return hierarchy.lca_height
    if ordered and (values is not None or classes is not None):
        return value_cost(values if values is not None else torch.arange(float(classes or 0)))
    raise ValueError(
        "Expected `cost` for 'min_risk' in `decoders` (or a hierarchy, or ordered classes, whose "
        f"cost is the default), but found none; decoders {list(DECODERS)}"
    )


# Register every metric of the package, the built-in ones in the order of their keys; any
# other metric module registers itself here too: a new metric is one new file.
discover("simloss.metrics")
