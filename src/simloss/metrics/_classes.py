"""The accumulating classes: one :class:`torchmetrics.Metric` per metric declaration (private).

A class is derived from its :class:`~simloss.metrics._declaration.MetricDeclaration`
the first time it is asked for (``simloss.metrics.Accuracy``): it takes exactly
the configuration arguments of the metric's function (plus torchmetrics'
``process_group``, ``dist_sync_on_step``, ``sync_on_compute``,
``compute_on_cpu``), keeps the checked configuration as attributes, buffers
(tensors) and sub-modules (structured similarities), and registers the
declaration's statistics as torchmetrics states with ``dist_reduce_fx="sum"``:

* ``update(preds, target)`` adds the statistics of one batch (the whole batch is
  validated before any state changes);
* ``compute()`` returns the declaration's value of the summed statistics, summed
  over the processes under :mod:`torch.distributed` by torchmetrics (every
  process must call it);
* ``forward`` (calling the metric) adds the batch and returns its value alone;
* ``reset()``, ``MetricCollection``, Lightning's ``self.log(name, metric)`` and
  ``state_dict`` work as for any torchmetrics metric.

States and configuration follow the input: the first ``update`` moves them to
the device of ``preds``; ``.to(device)`` moves them too. torchmetrics leaves
their dtypes alone under ``.half()``/``.double()``, so sums stay int64/float64.

torchmetrics is a core dependency, imported here, when a class is first used:
``import simloss`` and the metric functions do not import it (with
``transformers`` or SciPy installed, importing torchmetrics takes seconds).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from simloss.metrics._batch import Batch
from simloss.metrics._checks import check_tensor
from simloss.metrics._declaration import MetricDeclaration

__all__ = ["TORCHMETRICS_ARGUMENTS", "metric_class"]

#: torchmetrics' own keyword arguments, accepted by every class.
TORCHMETRICS_ARGUMENTS = ("process_group", "dist_sync_on_step", "sync_on_compute", "compute_on_cpu")


@functools.cache
def _base() -> type[Any]:
    from torchmetrics import Metric

    class SimlossMetric(Metric):
        """Base of simloss's accumulating classes: the states are a declaration's statistics."""

        full_state_update = False
        is_differentiable = False
        higher_is_better: bool | None = None
        is_percent: ClassVar[bool] = False
        declaration: ClassVar[MetricDeclaration]

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            own = {k: kwargs.pop(k) for k in TORCHMETRICS_ARGUMENTS if k in kwargs}
            super().__init__(**own)
            ignore_index, config = self.declaration.bind(*args, **kwargs)
            self.ignore_index = ignore_index
            self._config_names = tuple(config)
            for name, value in config.items():
                if isinstance(value, Tensor):  # a copy: never the caller's tensor or array
                    self.register_buffer(name, value.clone(), persistent=False)
                elif isinstance(value, nn.Module):
                    self.add_module(name, value)
                else:
                    setattr(self, name, value)
            # States are named after the statistic and a digest of the metric and its
            # configuration: a MetricCollection shares states between metrics whose state
            # names and first values agree, which is right only for the same statistics.
            digest = _digest(self.declaration.class_name, config, ignore_index)
            self._state_names: tuple[str, ...] = ()
            for name, shape, dtype in self.declaration.states(config):
                state = f"{name}_{digest}"
                self.add_state(
                    state, torch.zeros(shape, dtype=dtype), dist_reduce_fx="sum", persistent=False
                )
                self._state_names += (state,)

        def _apply(self, fn: Any, exclude_state: Any = "") -> Any:
            """Move the configuration tensors with the metric but keep their dtypes.

            torchmetrics keeps the states' dtypes when the metric is cast; a cast of a
            model holding the metric (``model.half()``) reaches the buffers too, so
            class values or a cost matrix would lose precision without this.
            """
            config = getattr(self, "_config_names", ())
            saved: dict[str, Tensor] = {}
            for name in config:
                tensor = self._buffers.get(name)
                if tensor is not None:
                    saved[name] = tensor
                    del self._buffers[name]
            try:
                this = super()._apply(fn, exclude_state)
            finally:
                for name, tensor in saved.items():
                    moved = fn(tensor)
                    same = moved.dtype == tensor.dtype
                    self._buffers[name] = moved if same else tensor.to(device=moved.device)
            return this

        def _config(self) -> dict[str, Any]:
            return {name: getattr(self, name) for name in self._config_names}

        @property
        def key(self) -> str | None:
            """The key of this metric's value in :func:`~simloss.metrics.compute_metrics` and
            in training records (``"mae_expectation"``, ``"acc_top3"``), or ``None``."""
            return self.declaration.record_key(self._config())

        @property
        def label(self) -> str:
            """A short label for tables and figure axes (``"MAE (expectation)"``)."""
            return self.declaration.record_label(self._config())

        def update(self, preds: Tensor, target: Tensor) -> None:
            """Add one batch: ``preds`` scores (N, C) or indices (N,), ``target`` indices (N,).

            Invalid input raises before any state changes.
            """
            tensor = check_tensor(preds, "preds")
            if self.device != tensor.device:
                self.to(tensor.device)
            batch = Batch(tensor, target, ignore_index=self.ignore_index)
            stats = self.declaration.stats(batch, **self._config())
            for name, value in zip(self._state_names, stats, strict=True):
                state = getattr(self, name)  # a state of its own (reset gives fresh copies)
                state.add_(value.to(state.dtype) if isinstance(value, Tensor) else value)

        def compute(self) -> Any:
            """The metric over everything added since the last :meth:`reset`."""
            states = [getattr(self, name) for name in self._state_names]
            return self.declaration.value(states, self._config())

        def extra_repr(self) -> str:
            shown = [
                f"{name}={value!r}"
                for name, value in self._config().items()
                if not isinstance(value, (Tensor, nn.Module))
            ]
            if self.ignore_index is not None:
                shown.append(f"ignore_index={self.ignore_index}")
            return ", ".join(shown)

    return SimlossMetric


def _digest(class_name: str, config: dict[str, Any], ignore_index: int | None) -> str:
    """8 hex digits that differ between metrics computing different statistics."""
    hasher = hashlib.sha1(usedforsecurity=False)
    hasher.update(f"{class_name}|{ignore_index}".encode())
    for name in sorted(config):
        value = config[name]
        tensors: list[Tensor] = []
        shown = repr(value)
        if isinstance(value, Tensor):
            tensors, shown = [value], ""
        elif isinstance(value, nn.Module):  # a structured similarity: its repr and tensors
            tensors = [*value.buffers(), *value.parameters()]
        hasher.update(f"|{name}={type(value).__name__}:{shown}".encode())
        for tensor in tensors:
            data = tensor.detach().cpu().contiguous()
            hasher.update(f"{data.dtype}{tuple(data.shape)}".encode())
            hasher.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return hasher.hexdigest()[:8]


@functools.cache
def metric_class(declaration: MetricDeclaration) -> type[Any]:
    """The accumulating class of a declaration (one class per declaration, cached)."""
    base = _base()
    parameters = list(declaration.signature.parameters.values())
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None)
        for name in TORCHMETRICS_ARGUMENTS
    ]
    keyword_only = [p for p in parameters if p.kind == inspect.Parameter.KEYWORD_ONLY]
    positional = [p for p in parameters if p.kind != inspect.Parameter.KEYWORD_ONLY]
    namespace = {
        "__module__": "simloss.metrics",
        "__qualname__": declaration.class_name,
        "__doc__": declaration.class_doc
        or f"Accumulating form of :func:`simloss.metrics.{declaration.function.__name__}`.",
        "__signature__": inspect.Signature([*positional, *keyword_only, *extra]),
        "declaration": declaration,
        "higher_is_better": declaration.higher_is_better,
        "is_percent": declaration.is_percent,
    }
    return type(declaration.class_name, (base,), namespace)
