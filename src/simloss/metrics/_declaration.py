"""A metric is one declaration: its statistics, its facts and its registration (private).

Every metric module of :mod:`simloss.metrics` holds one (or a small family of)
:class:`MetricDeclaration`: the public function, the function that checks its
configuration, the function that turns a :class:`~simloss.metrics._batch.Batch`
into sums (its *statistics*) and the one that turns summed statistics into the
value, the facts a report needs (record key, label, direction, percent, what
the metric needs of a task) and which configurations a training run records.
From it come

* the function's value: ``compute(*stats(batch))`` over the whole set;
* the accumulating class, a :class:`torchmetrics.Metric` whose states are the
  same statistics summed over batches and processes
  (:mod:`simloss.metrics._classes`, built on first use);
* the facts of every record key (:func:`metric_facts`);
* the metrics a run of a task records (:func:`record_configs`).

:func:`register` adds a declaration to the registry; :func:`discover` imports
every public module of the package, so a new metric module is registered
without editing another file.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor

from simloss.metrics._batch import Batch
from simloss.metrics._checks import check_ignore_index
from simloss.metrics.decoders import DECODERS

__all__ = [
    "BUILT_IN",
    "RATIO_STATES",
    "MetricDeclaration",
    "MetricFacts",
    "MetricTask",
    "NumericKey",
    "State",
    "declarations",
    "decoded_key",
    "decoded_label",
    "discover",
    "find",
    "metric_facts",
    "metric_goal",
    "numeric_key",
    "record_configs",
    "register",
]

#: A state of an accumulating class: name, shape, dtype (summed over batches and processes).
State = tuple[str, tuple[int, ...], torch.dtype]
Stats = tuple["Tensor | int", ...]

#: The states of a ratio of sums (``numerator / denominator``).
RATIO_STATES: tuple[State, ...] = (
    ("numerator", (), torch.float64),
    ("denominator", (), torch.int64),
)

#: What a metric may need of a task: ordered classes, a class hierarchy, superclasses
#: (a fine-to-coarse mapping), or class scores rather than predicted indices.
NEEDS = ("ordered", "hierarchy", "superclasses", "scores")


def decoded_key(name: str, decoder: str) -> str:
    """The record key of a metric under a decoder: ``"mae"``, ``"mae_expectation"``, ...

    The argmax keeps the plain key (the paper's metric); other decoders append
    ``_<decoder>``.

    Example:
        >>> decoded_key("mse", "argmax"), decoded_key("mse", "median"), decoded_key("acc", "min_risk")
        ('mse', 'mse_median', 'acc_min_risk')
    """
    if decoder not in DECODERS:
        raise ValueError(f"Expected `decoder` to be one of {DECODERS}, but found {decoder!r}")
    return name if decoder == "argmax" else f"{name}_{decoder}"


def decoded_label(label: str, decoder: str) -> str:
    """The label of a metric under a decoder: ``"MAE"``, ``"MAE (expectation)"``, ..."""
    return label if decoder == "argmax" else f"{label} ({decoder.replace('_', '-')})"


@dataclass(frozen=True)
class MetricTask:
    """The facts of a task that decide which metrics a run records and how they are set up.

    Built by :func:`simloss.metrics.compute_metrics` from its arguments (validated).

    Attributes:
        num_classes: C when known.
        class_values: (C,) float64 values of ordered classes, or ``None``.
        ordered: whether the classes are ordered (with or without values).
        fine_to_coarse: (C,) int64 superclass of every class, or ``None``.
        hierarchy: a :class:`~simloss.metrics.ClassHierarchy`, or ``None``.
        decoders: the decoders under which decoding metrics are recorded.
        input_type: ``"logits"`` or ``"probs"``: what the scores are.
        cost: (C, C) float64 cost of ``min_risk``, or ``None``.
        scores: whether ``preds`` are class scores (metrics that need scores are
            left out for predicted indices).
    """

    num_classes: int | None = None
    class_values: Tensor | None = None
    ordered: bool = False
    fine_to_coarse: Tensor | None = None
    hierarchy: Any = None
    decoders: tuple[str, ...] = ("argmax",)
    input_type: str = "logits"
    cost: Tensor | None = None
    scores: bool = True

    def has(self, need: str) -> bool:
        """Whether the task provides what a metric needs (one of :data:`NEEDS`)."""
        return {
            "ordered": self.ordered,
            "hierarchy": self.hierarchy is not None,
            "superclasses": self.fine_to_coarse is not None,
            "scores": self.scores,
        }[need]

    def decoding(
        self, allowed: Sequence[str], *, always_argmax: bool = False
    ) -> Iterator[dict[str, Any]]:
        """The decoder settings (``decoder``, ``input_type``, ``cost``) of each of the task's
        decoders that a metric accepts (``min_risk`` only with a cost); with
        ``always_argmax`` the argmax's first, whether the task lists it or not."""
        decoders = self.decoders
        if always_argmax and "argmax" not in decoders:
            decoders = ("argmax", *decoders)
        for decoder in decoders:
            if decoder not in allowed or (decoder == "min_risk" and self.cost is None):
                continue
            cost = self.cost if decoder == "min_risk" else None
            yield {"decoder": decoder, "input_type": self.input_type, "cost": cost}


@dataclass(frozen=True, eq=False)
class MetricDeclaration:
    """Everything simloss knows about one metric, declared once in the metric's module.

    Attributes:
        key: the record key of the plain metric (``"mae"``); ``None`` for a
            result that records do not hold (the mean predicted distribution).
        label: a short label for tables and axes (``"MAE"``).
        class_name: the accumulating class's name (``"MeanAbsoluteError"``).
        function: the public function ``function(preds, target, ...)``; its
            parameters after ``preds`` and ``target`` are the configuration,
            and the class takes exactly them.
        configure: checks the configuration (the function's parameters but
            ``ignore_index``) and returns it as a dict (tensors become buffers
            of the class, modules sub-modules).
        stats: ``stats(batch, **config) -> tuple of tensors``, the sums of one batch.
        compute: ``compute(*summed_stats, **uses) -> value``.
        compute_uses: the configuration entries ``compute`` takes by keyword.
        states: the states of the class for a configuration (name, shape, dtype), in
            the order of ``stats``'s results; default: a ratio of sums.
        higher_is_better: the direction in which the metric improves (``None``: none).
        is_percent: a fraction of examples in [0, 1] that reports show in percent.
        needs: what the metric needs of a task (:data:`NEEDS`).
        decoders: the decoders it takes (``("argmax",)``: no ``decoder`` argument).
        record: the configurations a run of a task records (each a dict of the
            function's keyword arguments), or ``None``: never recorded.
        key_of: the record key of a configuration (default: ``key`` under its decoder).
        label_of: the label of a configuration (default: ``label`` under its decoder).
        parse_key: the configuration a record key names, decoder suffix removed
            (default: ``{}`` for ``key`` itself), or ``None`` for another key.
        class_doc: the class's docstring.
    """

    key: str | None
    label: str
    class_name: str
    function: Callable[..., Any]
    configure: Callable[..., dict[str, Any]]
    stats: Callable[..., Stats]
    compute: Callable[..., Any]
    higher_is_better: bool | None
    is_percent: bool = False
    compute_uses: tuple[str, ...] = ()
    states: Callable[[Mapping[str, Any]], Sequence[State]] = lambda config: RATIO_STATES
    needs: frozenset[str] = frozenset()
    decoders: tuple[str, ...] = ("argmax",)
    record: Callable[[MetricTask], Iterable[dict[str, Any]]] | None = None
    key_of: Callable[[Mapping[str, Any]], str | None] | None = None
    label_of: Callable[[Mapping[str, Any]], str] | None = None
    parse_key: Callable[[str], dict[str, Any] | None] | None = None
    class_doc: str = ""
    _signature: inspect.Signature = field(init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.needs) - set(NEEDS)
        if unknown:
            raise ValueError(f"Expected `needs` among {NEEDS}, but found {sorted(unknown)}")
        params = list(inspect.signature(self.function).parameters.values())
        if [p.name for p in params[:2]] != ["preds", "target"]:
            raise TypeError(
                f"Expected {self.function.__name__}(preds, target, ...), but found its "
                f"parameters {[p.name for p in params]}"
            )
        object.__setattr__(self, "_signature", inspect.Signature(params[2:]))

    # -- configuration, statistics, value ------------------------------------------------
    @property
    def signature(self) -> inspect.Signature:
        """The configuration parameters: the function's, after ``preds`` and ``target``."""
        return self._signature

    def bind(self, *args: Any, **kwargs: Any) -> tuple[int | None, dict[str, Any]]:
        """``ignore_index`` and the checked configuration of arguments given as to the function."""
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.class_name}: {exc}") from None
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        ignore_index = check_ignore_index(arguments.pop("ignore_index", None))
        return ignore_index, self.configure(**arguments)

    def evaluate(self, preds: Tensor, target: Tensor, **arguments: Any) -> Any:
        """The metric over one whole set (what the public function returns).

        ``arguments`` are every configuration argument of the function, by keyword
        (the function has bound them already; no signature is bound again here).
        """
        ignore_index = check_ignore_index(arguments.pop("ignore_index", None))
        config = self.configure(**arguments)
        batch = Batch(preds, target, ignore_index=ignore_index)
        return self.value(self.stats(batch, **config), config)

    def value(self, stats: Sequence[Tensor | int], config: Mapping[str, Any]) -> Any:
        """The metric's value of (summed) statistics under a configuration."""
        return self.compute(*stats, **{name: config[name] for name in self.compute_uses})

    # -- facts -------------------------------------------------------------------------
    def record_key(self, config: Mapping[str, Any]) -> str | None:
        """The record key of a configuration (``"mae_median"``, ``"acc_top5"``)."""
        if self.key_of is not None:
            return self.key_of(config)
        if self.key is None:
            return None
        return decoded_key(self.key, str(config.get("decoder", "argmax")))

    def record_label(self, config: Mapping[str, Any]) -> str:
        """The label of a configuration (``"MAE (median)"``, ``"Top-5 acc"``)."""
        if self.label_of is not None:
            return self.label_of(config)
        return decoded_label(self.label, str(config.get("decoder", "argmax")))

    def match(self, key: str) -> dict[str, Any] | None:
        """The configuration a record key names (with its ``decoder``), or ``None``.

        Only a key in the spelling :meth:`record_key` gives that configuration names it:
        ``"acc_top05"`` and ``"acc_top1"`` are not keys (``"acc_top5"`` and ``"acc"``
        are), and a parameter the metric refuses (``"acc_top0"``) names nothing.
        """
        for name in self.decoders:
            suffix = f"_{name}"
            if name != "argmax" and key.endswith(suffix):
                config = self._parse(key[: -len(suffix)])
                if config is not None and self._canonical(key, {**config, "decoder": name}):
                    return {**config, "decoder": name}
        config = self._parse(key)
        if config is None or not self._canonical(key, {**config, "decoder": "argmax"}):
            return None
        return {**config, "decoder": "argmax"}

    def _canonical(self, key: str, config: Mapping[str, Any]) -> bool:
        return self.record_key(config) == key

    def claimed_keys(self) -> list[str]:
        """Record keys this metric names for certain: its key under each of its decoders,
        and an example of each key pattern it parses (``"acc_top2"``), where it accepts them.
        What :func:`register` checks against the other metrics' keys."""
        bases = [] if self.key is None else [self.key]
        bases += list(getattr(self.parse_key, "examples", ()))
        candidates = dict.fromkeys(decoded_key(b, d) for b in bases for d in self.decoders)
        return [k for k in candidates if self.match(k) is not None]

    def _parse(self, key: str) -> dict[str, Any] | None:
        if self.parse_key is not None:
            return self.parse_key(key)
        return {} if self.key is not None and key == self.key else None

    @property
    def metric_class(self) -> type[Any]:
        """The accumulating :class:`torchmetrics.Metric` (built on first use)."""
        from simloss.metrics._classes import metric_class

        return metric_class(self)


class MetricFacts(NamedTuple):
    """The facts of one record key, read from its metric's declaration."""

    key: str  # the record key, e.g. "mae_expectation"
    label: str  # e.g. "MAE (expectation)"
    higher_is_better: bool | None
    is_percent: bool  # a fraction in [0, 1] shown as a percentage
    metric: MetricDeclaration  # the declaration (its class: .metric_class)
    decoder: str  # "argmax" unless the key names another decoder


_REGISTRY: dict[str, MetricDeclaration] = {}


def register(declaration: MetricDeclaration) -> MetricDeclaration:
    """Add a metric to the registry (by its class name) and return it.

    A record key names one metric: a declaration whose keys (its key under each of its
    decoders, e.g. ``"mae_median"``) another metric already names (``"acc_top3"`` is
    :class:`Accuracy`'s key pattern ``acc_top<k>``, ``"mse_min_risk"`` is MSE's under a
    decoder), or whose key pattern names another metric's keys, is refused: its facts
    and its direction would be the other metric's.

    Raises:
        ValueError: a second metric of the same class name, or a key another metric names.
    """
    known = _REGISTRY.get(declaration.class_name)
    if known is not None and known.function.__module__ != declaration.function.__module__:
        raise ValueError(
            f"Expected one metric named {declaration.class_name}, but found it declared in "
            f"{known.function.__module__} and {declaration.function.__module__}"
        )
    for other in _REGISTRY.values():
        if other.class_name == declaration.class_name:
            continue
        for owner, key, claimant in (
            *((other, k, declaration) for k in declaration.claimed_keys()),
            *((declaration, k, other) for k in other.claimed_keys()),
        ):
            if owner.match(key) is not None:
                raise ValueError(
                    f"Expected record keys that name one metric, but {key!r} of "
                    f"{claimant.class_name} also names {owner.class_name}'s "
                    f"{owner.record_label(owner.match(key) or {})!r}; choose another key"
                )
    _REGISTRY[declaration.class_name] = declaration
    return declaration


def declarations() -> tuple[MetricDeclaration, ...]:
    """Every registered metric, in registration order."""
    return tuple(_REGISTRY.values())


def find(name: str) -> MetricDeclaration | None:
    """The declaration whose class or function is called ``name``."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    return next((d for d in _REGISTRY.values() if d.function.__name__ == name), None)


#: The built-in metric modules, in the order of their record keys; any other public
#: module of the package follows, in name order.
BUILT_IN = (
    "top_k",
    "value_error",
    "superclass",
    "kappa",
    "macro_error",
    "rps",
    "sensitivity",
    "severity",
    "hierarchical",
    "off_by_k",
    "similarity_score",
    "distribution",
)


def discover(package: str = "simloss.metrics") -> None:
    """Import every public module of the package, so that each registers its metrics.

    The modules of :data:`BUILT_IN` first, in that order (the order of record keys).
    """
    module = importlib.import_module(package)
    found = sorted(info.name for info in pkgutil.iter_modules(module.__path__))
    for name in (*BUILT_IN, *(n for n in found if n not in BUILT_IN and not n.startswith("_"))):
        importlib.import_module(f"{package}.{name}")


def metric_facts(key: str) -> MetricFacts:
    """The label, direction and percent flag of a record key, from its metric's declaration.

    Args:
        key: a key of :func:`~simloss.metrics.compute_metrics` or of a training
            record's ``metrics``: ``"acc"``, ``"mae"``, ``"qwk"``, ``"rps"``,
            ``"sa"``, ... or a metric under a decoder, ``"mae_expectation"``,
            ``"acc_min_risk"``, ...

    Raises:
        KeyError: an unknown key (the message lists the known plain keys).

    Example:
        >>> metric_facts("acc")[:4]
        ('acc', 'Acc', True, True)
        >>> metric_facts("mae_expectation")[:4]
        ('mae_expectation', 'MAE (expectation)', False, False)
        >>> metric_facts("qwk").higher_is_better, metric_facts("rps").higher_is_better
        (True, False)
    """
    if isinstance(key, str):
        for declaration in _REGISTRY.values():
            config = declaration.match(key)
            if config is not None:
                return MetricFacts(
                    key=key,
                    label=declaration.record_label(config),
                    higher_is_better=declaration.higher_is_better,
                    is_percent=declaration.is_percent,
                    metric=declaration,
                    decoder=str(config["decoder"]),
                )
    known = [d.key for d in _REGISTRY.values() if d.key is not None]
    raise KeyError(
        f"Expected a metric key among {known} (or one of them under a decoder, e.g. "
        f"'mae_median'), but found {key!r}"
    )


def metric_goal(key: str) -> str:
    """``"max"`` or ``"min"``: which way a record key improves, from its declaration.

    The one answer to "higher is better?" for early stopping, sweeps, tunes and
    reports. A key simloss does not know, or a result without a direction, is an
    error, never silently minimised.

    Example:
        >>> metric_goal("qwk"), metric_goal("mae_median"), metric_goal("acc_min_risk")
        ('max', 'min', 'max')
        >>> metric_goal("f1")
        Traceback (most recent call last):
        ...
        ValueError: Expected a metric with a known better direction, but 'f1' is not a metric key of simloss.metrics
    """
    try:
        facts = metric_facts(key)
    except KeyError:
        raise ValueError(
            f"Expected a metric with a known better direction, but {key!r} is not a metric key "
            "of simloss.metrics"
        ) from None
    if facts.higher_is_better is None:
        raise ValueError(
            f"Expected a metric with a known better direction, but {key!r} ({facts.label}) has none"
        )
    return "max" if facts.higher_is_better else "min"


def record_configs(task: MetricTask) -> list[tuple[str, MetricDeclaration, dict[str, Any]]]:
    """``(key, declaration, config)`` of every metric a run of ``task`` records.

    Ordered by decoder (the argmax's first, then the task's other decoders), then
    by registration order.
    """
    chosen: list[tuple[int, int, str, MetricDeclaration, dict[str, Any]]] = []
    for position, declaration in enumerate(_REGISTRY.values()):
        if declaration.record is None or not all(task.has(n) for n in declaration.needs):
            continue
        for config in declaration.record(task):
            key = declaration.record_key(config)
            if key is None:
                continue
            decoder = str(config.get("decoder", "argmax"))
            rank = 1 + task.decoders.index(decoder) if decoder != "argmax" else 0
            chosen.append((rank, position, key, declaration, config))
    chosen.sort(key=lambda item: (item[0], item[1]))
    return [(key, declaration, config) for _, _, key, declaration, config in chosen]


@dataclass(frozen=True)
class NumericKey:
    """A :attr:`MetricDeclaration.parse_key` for keys ``<prefix><number>`` (``acc_top5``).

    Attributes:
        prefix: the key before the number.
        param: the configuration entry the number sets.
        convert: the number's text to the parameter; a ``ValueError`` (a value the
            metric refuses, e.g. ``top_k = 0``) means the key names nothing.
        plain: a key that names the metric with the parameter's default (``"acc"``).
        example: a number the metric accepts, for :meth:`MetricDeclaration.claimed_keys`.
    """

    prefix: str
    param: str
    convert: Callable[[str], Any]
    plain: str | None = None
    example: str = "2"

    def __call__(self, key: str) -> dict[str, Any] | None:
        if self.plain is not None and key == self.plain:
            return {}
        found = re.fullmatch(re.escape(self.prefix) + r"([0-9]+(?:\.[0-9]+)?)", key)
        if found is None:
            return None
        try:
            return {self.param: self.convert(found.group(1))}
        except ValueError:
            return None

    @property
    def examples(self) -> tuple[str, ...]:
        """A key of the pattern (and the plain key)."""
        plain = () if self.plain is None else (self.plain,)
        return (*plain, self.prefix + self.example)


def numeric_key(
    prefix: str, param: str, convert: Callable[[str], Any], *, plain: str | None = None
) -> NumericKey:
    """A :attr:`MetricDeclaration.parse_key` for keys ``<prefix><number>`` (``acc_top5``).

    Example:
        >>> parse = numeric_key("acc_top", "top_k", int, plain="acc")
        >>> parse("acc_top5"), parse("acc"), parse("acc_topk")
        ({'top_k': 5}, {}, None)
    """
    return NumericKey(prefix, param, convert, plain)
