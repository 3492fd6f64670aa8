"""Python factories as tasks: ``module:function`` returns the splits (and optionally a model).

A factory task (:class:`~simloss.experiments.task.DataSource` of kind
``"factory"``) names a function that simloss imports (from the task file's
folder first, then ``sys.path``) and calls with the keywords it accepts among
``data_dir`` and ``split_seed``. The task lists the files and folders the
function reads besides its module (``data.files``, ``[]`` for none), so a
sweep can fingerprint them. It returns a mapping:

.. code-block:: python

    {"train": (X, y), "val": (X, y), "test": (X, y),   # arrays or tensors, or
                                                       # torch Datasets of (x, y)
     "model": make_model}                              # optional

``X`` is ``(N, F)`` features (standardised with the training split's
statistics) or ``(N, C, H, W)`` uint8 images (``C`` 1 or 3, scaled by 1/255
and standardised per channel); ``y`` holds labels, mapped to the task's
classes as a table's are. ``model``, if given, is a module-level function
``make_model(input_shape, num_outputs) -> torch.nn.Module`` used when the run
names no model. A factory may also return a
:class:`~simloss.experiments.data.PreparedData` (CIFAR-100's does). Anything
else is refused in one line naming the factory and what it returned.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simloss.experiments.data._types import PreparedData, Split, channel_stats
from simloss.experiments.data.arrays import check_features
from simloss.experiments.data.classes import build_classes, check_training_classes, encode_labels
from simloss.experiments.data.tables import feature_stats
from simloss.experiments.task import Task

__all__ = ["import_factory", "load_factory_task", "user_code"]

_SPLITS = ("train", "val", "test")


@contextmanager
def user_code(what: str) -> Iterator[None]:
    """Run a user's function: any exception it raises becomes one line naming it (cause chained).

    Example:
        >>> with user_code("Factory mydata:splits"):
        ...     {}["x"]
        Traceback (most recent call last):
        ...
        ValueError: Factory mydata:splits failed: KeyError: 'x'
    """
    try:
        yield
    except Exception as exc:
        raise ValueError(f"{what} failed: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text if len(text) <= 300 else text[:297] + '...'}"


def import_factory(name: str, what: str, search: Path | None = None) -> Callable[..., Any]:
    """Import ``module:function`` (from ``search`` first, then ``sys.path``).

    Raises:
        ValueError: not ``module:function``, the module cannot be imported, or
            it has no such callable (one line naming ``what``).

    Example:
        >>> import_factory("math:sqrt", "model")(4.0)
        2.0
    """
    module_name, _, function = name.partition(":")
    if not module_name or not function:
        raise ValueError(f"Expected {what} to be 'module:function', but found {name!r}")
    added = search is not None and str(search) not in sys.path
    if added:
        sys.path.insert(0, str(search))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"Could not import {what} {name!r}: {exc} (the module is looked up in "
            f"{search or 'the current folder'} and on sys.path)"
        ) from exc
    except Exception as exc:  # the module's own code failed (a SyntaxError, a NameError, ...)
        raise ValueError(f"Importing {what} {name!r} failed: {_one_line(exc)}") from exc
    finally:
        if added:
            sys.path.remove(str(search))
    target = getattr(module, function, None)
    if not callable(target):
        raise ValueError(
            f"Expected {what} {name!r} to be a callable in {module_name}, but found {target!r}"
        )
    return target


def _kwargs(function: Callable[..., Any], offered: Mapping[str, Any]) -> dict[str, Any]:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(offered)
    return {k: v for k, v in offered.items() if k in parameters}


def _as_arrays(part: Any, name: str, factory: str) -> tuple[np.ndarray, list[Any]]:
    """``(X, labels)`` of one returned split: a pair of arrays/tensors or a Dataset of pairs."""
    if isinstance(part, tuple) and len(part) == 2:
        x, y = part
    elif (
        hasattr(part, "__len__")
        and hasattr(part, "__getitem__")
        and not isinstance(part, (list, tuple, np.ndarray, torch.Tensor))
    ):
        with user_code(f"Factory {factory} split {name!r} (reading its items)"):
            items = [part[i] for i in range(len(part))]
        if not items or not all(isinstance(it, (tuple, list)) and len(it) == 2 for it in items):
            raise ValueError(
                f"Expected factory {factory} split {name!r} to be a Dataset of (x, y) pairs, but "
                f"found items of {type(items[0]).__name__ if items else 'none'}"
            )
        x = np.stack([np.asarray(it[0]) for it in items])
        y = [
            it[1].item() if isinstance(it[1], (torch.Tensor, np.ndarray)) else it[1] for it in items
        ]
    else:
        raise ValueError(
            f"Expected factory {factory} split {name!r} to be a pair (X, y) or a torch Dataset, "
            f"but found {type(part).__name__}"
        )
    x_array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    labels = y.tolist() if isinstance(y, np.ndarray) else list(y)
    if len(labels) != len(x_array):
        raise ValueError(
            f"Expected as many labels as examples in factory {factory} split {name!r}, but found "
            f"{len(x_array)} examples and {len(labels)} labels"
        )
    return x_array, labels


def load_factory_task(task: Task, **settings: Any) -> PreparedData:
    """Call a factory task's function and prepare what it returns (see the module).

    Args:
        task: a task of data kind ``"factory"``.
        settings: the run settings the task's source reads, by the factory's
            keyword (``data_dir``, ``split_seed``; CIFAR-100's more).

    Raises:
        ValueError: the factory cannot be imported, or returns the wrong
            types (naming the factory and what it returned).
    """
    name = task.data.factory or ""
    search = None if task.file is None else task.file.parent
    for declared in task.data.files:
        if not declared.exists():
            raise FileNotFoundError(
                f"File {declared} of `data.files` in task file {task.file} does not exist"
            )
    function = import_factory(name, "factory", search)
    # A built-in factory takes exactly its declared settings; a user's the ones it names.
    if task.builtin:
        result = function(**settings)
    else:
        with user_code(f"Factory {name}"):
            result = function(**_kwargs(function, settings))
    if isinstance(result, PreparedData):
        return result
    if not isinstance(result, Mapping):
        raise ValueError(
            f"Expected factory {name} to return a mapping with keys 'train', 'val', 'test' "
            f"(and optionally 'model') or a PreparedData, but found {type(result).__name__}"
        )
    unknown = sorted(set(result) - {*_SPLITS, "model"})
    missing = [k for k in _SPLITS if k not in result]
    if unknown or missing:
        raise ValueError(
            f"Expected factory {name} to return the keys {list(_SPLITS)} (and optionally "
            f"'model'), but found missing {missing} and unknown {unknown}"
        )
    model = result.get("model")
    model_name = None
    if model is not None:
        module, qualname = getattr(model, "__module__", None), getattr(model, "__qualname__", "")
        if not callable(model) or module is None or "." in qualname or "<" in qualname:
            raise ValueError(
                f"Expected factory {name}'s 'model' to be a module-level function "
                "make_model(input_shape, num_outputs), so a trained run can rebuild it, but "
                f"found {model!r}"
            )
        model_name = f"{module}:{qualname}"
    parts = {k: _as_arrays(result[k], k, name) for k in _SPLITS}
    labels = [label for k in _SPLITS for label in parts[k][1]]
    where = f"factory {name}"
    label_rows = [
        f"{where} split {k!r} example {i}" for k in _SPLITS for i in range(len(parts[k][1]))
    ]
    classes = build_classes(task.classes, labels, where, rows=label_rows)
    targets: dict[str, np.ndarray] = {}
    inputs: dict[str, np.ndarray] = {}
    for k in _SPLITS:
        x, y = parts[k]
        rows = [f"{where} split {k!r} example {i}" for i in range(len(y))]
        codes = encode_labels(classes, task.classes, y, rows, where)
        targets[k] = codes.targets
        inputs[k] = x[codes.keep]
        if len(targets[k]) == 0:
            raise ValueError(f"Expected examples in {where} split {k!r}, but found none")
    check_training_classes(classes, task.classes, targets["train"], where)
    first = inputs["train"]
    if first.ndim == 2:
        arrays = {k: check_features(v, f"{where} split {k!r}") for k, v in inputs.items()}
        scaled = np.ones(first.shape[1], dtype=bool)
        mean, std = feature_stats(arrays["train"], np.arange(len(arrays["train"])), scaled)
        scale = 1.0
        feature_names: tuple[str, ...] | None = tuple(f"x{i}" for i in range(first.shape[1]))
        channels = "RGB"
    elif first.ndim == 4 and first.dtype == np.uint8 and first.shape[1] in (1, 3):
        arrays = dict(inputs)
        mean, std = channel_stats(
            np.ascontiguousarray(first.transpose(0, 2, 3, 1)), per_channel=True
        )
        scale = 1.0 / 255.0
        feature_names = None
        channels = "RGB" if first.shape[1] == 3 else "L"
    else:
        raise ValueError(
            f"Expected {where} to return features (N, F) or uint8 images (N, C, H, W) with C "
            f"1 or 3, but found {first.dtype} {first.shape}"
        )
    shapes = {k: v.shape[1:] for k, v in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(
            f"Expected the same input shape in every split of {where}, but found {shapes}"
        )

    def split(k: str) -> Split:
        return Split(
            torch.from_numpy(np.ascontiguousarray(arrays[k])),
            torch.from_numpy(targets[k].astype(np.int64)),
        )

    return PreparedData(
        name=task.name,
        train=split("train"),
        val=split("val"),
        test=split("test"),
        num_classes=len(classes),
        class_values=list(classes.values),
        class_names=list(classes.names),
        ordinal=classes.ordered,
        scale=scale,
        mean=mean,
        std=std,
        fine_to_coarse=(
            None if task.classes.superclasses is None else list(task.classes.superclasses)
        ),
        feature_names=feature_names,
        channels=channels,
        model=model_name,
        info={"source": where, "used": int(sum(len(t) for t in targets.values()))},
    )
