"""The settings of one training run, in one dataclass saved next to its results.

:class:`TrainConfig` is the single declaration of every setting: its fields
(names, types, defaults, help texts) give the type checks here and the flags of
``simloss train``, ``simloss sweep`` and ``simloss demo``
(:mod:`simloss.cli._settings`). Settings left at ``None`` take the task's
default (:mod:`simloss.experiments.task`: a built-in dataset or the user's
task file) when :meth:`TrainConfig.resolve` is called; the training record stores the resolved
config, so a record always states the values that were used.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from simloss.experiments._files import read_json_object
from simloss.experiments.loss_catalog import stored_loss
from simloss.experiments.specs import (
    CIFAR_CLASS_SETS,
    DATA_OPTIONS,
    LOSS,
    LOSSES,
    MODELS,
    MONITORS,
    PARAMS,
    loss_spec,
    swept_param,
)
from simloss.experiments.task import (
    BUILTIN_TASKS,
    SIMILARITY_KINDS,
    Task,
    TaskError,
    get_task,
    is_factory,
)
from simloss.metrics import metric_goal

__all__ = [
    "LOSS_KEYS",
    "MAX_SEED",
    "METRIC_GOALS",
    "SIMILARITIES",
    "TrainConfig",
    "point_config",
    "read_config_file",
    "setting_choices",
    "setting_help",
    "setting_type",
]

#: Similarity sources (:data:`simloss.experiments.task.SIMILARITY_KINDS`): class order and
#: class values (``r``), class-name vectors, sentence embeddings of the names and a
#: hierarchy (``l``), identity (CCE).
SIMILARITIES: tuple[str, ...] = tuple(SIMILARITY_KINDS)
#: The direction in which each monitorable metric improves, from the metric's declaration
#: (simloss.metrics.metric_goal: a key without a known direction is an error at import,
#: never silently minimised); the validation loss is minimised.
METRIC_GOALS: dict[str, str] = {
    name: "min" if name == LOSS else metric_goal(name) for name in MONITORS
}

#: The settings that say which loss a run trains with and its parameter: a sweep's
#: points set them, so the runs of one study may differ in them and nothing else.
LOSS_KEYS: tuple[str, ...] = ("loss", "loss_param", "similarity", *PARAMS)

#: The largest seed: torch.manual_seed takes at most 0xffff_ffff_ffff_ffff (its docs).
MAX_SEED: int = 2**64 - 1

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def _loss_help() -> tuple[str, str]:
    """The help texts of ``loss`` and ``loss_param``, read from the loss catalog."""
    by_task: dict[str, list[str]] = {}
    for name, spec in LOSSES.items():
        needs = f" (needs {', '.join(spec.needs)})" if spec.needs else ""
        by_task.setdefault(spec.task, []).append(name + needs)
    groups = {
        "any": "",
        "semantic": "for unordered related classes ",
        "ordinal": "for ordered classes ",
    }
    listed = "; ".join(f"{groups[task]}{', '.join(names)}" for task, names in by_task.items())
    own = [f"{name} {spec.param.name}" for name, spec in LOSSES.items() if spec.param is not None]
    shared = [name for name, spec in LOSSES.items() if spec.uses_similarity]
    return (
        f"the training loss: {listed} (see docs/losses.md); default: simloss with r or l, else ce",
        f"the loss's own hyper-parameter: {', '.join(own)} (default: its paper's, "
        f"docs/losses.md); {' and '.join(shared)} take r or l",
    )


_LOSS_HELP, _LOSS_PARAM_HELP = _loss_help()


def _setting(default: Any, help: str, *, choices: tuple[str, ...] = (), local: bool = False) -> Any:
    """A TrainConfig field with its help text (shown by ``--help``) and choices.

    ``local`` marks settings that say where or how a run happens, not what it
    computes (paths, device, threads, progress bars): they may differ between
    the machines and reruns of one sweep.
    """
    return field(default=default, metadata={"help": help, "choices": choices, "local": local})


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of one training run.

    Each field's help text (``setting_help(name)``, also ``simloss train
    --help``) says what it does; ``None`` takes the dataset's default from
    :mod:`simloss.experiments.task` when the config is resolved.

    Example:
        >>> config = TrainConfig(dataset="abalone", r=0.5).resolve()
        >>> config.similarity, config.model, config.monitor, config.patience
        ('order', 'mlp', 'mae', 20)
        >>> TrainConfig.from_dict(config.to_dict()) == config
        True
        >>> TrainConfig.from_dict({"dataset": "abalone", "lr_rate": 0.1})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Unknown TrainConfig keys: ['lr_rate']; expected a subset of [...]
    """

    dataset: str | None = _setting(
        None,
        f"a built-in dataset {list(BUILTIN_TASKS)} (default abalone), or the name of the "
        "task file given as task",
    )
    task: str | None = _setting(
        None,
        "a task file (.toml or .json) declaring your own data (a table, an image folder, "
        "feature arrays or a Python factory), classes, similarity and model "
        "(docs/your-data.md)",
        local=True,
    )
    data_dir: str | None = _setting(
        None,
        "the dataset's folder (UTKFace images, AFAD-Full, cifar-100-python or its tarball; "
        "a file abalone.data); not needed for the embedded Abalone",
        local=True,
    )
    cache_dir: str | None = _setting(
        None,
        "where decoded images are cached (default $SIMLOSS_CACHE_DIR, else "
        "$XDG_CACHE_HOME/simloss, else ~/.cache/simloss)",
        local=True,
    )
    loss: str | None = _setting(None, _LOSS_HELP, choices=tuple(LOSSES))
    loss_param: float | None = _setting(None, _LOSS_PARAM_HELP)
    hierarchy: str | None = _setting(
        None,
        "a class hierarchy for loss hxe: 'parent child' lines (names, or integer ids with "
        "hierarchy_names) or a .json tree whose leaves are the class names",
        local=True,
    )
    hierarchy_names: str | None = _setting(
        None,
        "an 'id name' file for a hierarchy of integer ids (CIFAR-100's wordnet_node_names.txt)",
        local=True,
    )
    similarity: str | None = _setting(
        None,
        "order (needs r), embeddings (needs l and vectors) or identity (plain cross-entropy); "
        "default: order with r, embeddings with l, else identity",
        choices=SIMILARITIES,
    )
    r: float | None = _setting(None, "class-order reduction factor in [0, 1), S_ij = r^|i-j|")
    l: float | None = _setting(  # noqa: E741 (the paper's name for the lower bound)
        None, "lower bound in [0, 1) for class-name similarity, max(0, sim - l) / (1 - l)"
    )
    vectors: str | None = _setting(
        None,
        "a .npy file of class-name vectors, one row per class in the dataset's original "
        "label order (100 rows for CIFAR-100)",
        local=True,
    )
    model: str | None = _setting(
        None,
        f"the model: {', '.join(MODELS)} or a factory 'module:function' called as "
        "function(input_shape, num_outputs) (default: the task's)",
    )
    epochs: int | None = _setting(None, "the most epochs to train (default: the dataset's)")
    patience: int | None = _setting(
        None, "stop after this many epochs without a strict improvement of the monitor"
    )
    monitor: str | None = _setting(
        None,
        "the validation metric of early stopping (default: the dataset's)",
        choices=MONITORS,
    )
    lr: float = _setting(1e-3, "Adam's learning rate")
    batch_size: int | None = _setting(None, "examples per step (evaluation uses the same)")
    seed: int = _setting(0, "training seed (weights, batch order); a sweep's run i uses seed + i")
    split_seed: int = _setting(
        0, "seed of the train/validation/test split and of limit's subset, independent of seed"
    )
    split_per_run: bool = _setting(
        False,
        "in a sweep, run i also draws its own split with split_seed + i (repeated holdout, as "
        "the ordinal literature compares methods); off: every run shares one split",
    )
    val_fraction: float | None = _setting(
        None, "fraction of examples for validation (CIFAR-100: of each class's training images)"
    )
    test_fraction: float | None = _setting(
        None, "fraction of examples for test (not for CIFAR-100, which has its own)"
    )
    min_age: int | None = _setting(
        None, "the youngest age class kept (UTKFace 1, AFAD 15); others are excluded, not clipped"
    )
    max_age: int | None = _setting(None, "the oldest age class kept (UTKFace 90, AFAD 75)")
    cifar_classes: str = _setting(
        "all",
        "all 100 classes, or paper96 (the paper's: without aquarium_fish, sweet_pepper, "
        "keyboard and pickup_truck)",
        choices=CIFAR_CLASS_SETS,
    )
    limit: int | None = _setting(
        None,
        "use a random subset (drawn with split_seed) of at most this many examples "
        "(CIFAR-100: of each official set)",
    )
    skip_unreadable: bool = _setting(
        False, "skip images that cannot be decoded (counted and logged) instead of stopping"
    )
    download: bool = _setting(
        False, "download CIFAR-100 (checksum verified) when it is absent", local=True
    )
    channels_last: bool = _setting(True, "channels-last memory format for image models")
    progress: bool | None = _setting(
        None, "progress bars (default: only when stderr is a terminal)", local=True
    )
    device: str = _setting("auto", "auto (CUDA when available), cpu or cuda[:N]", local=True)
    num_threads: int | None = _setting(
        None, "torch CPU threads (default: the dataset's, else torch's)", local=True
    )

    def __post_init__(self) -> None:
        self._check_types()
        self._check_values()

    # ------------------------------------------------------------------ checks
    def _check_types(self) -> None:
        for f in fields(self):
            kind, optional = setting_type(f.name)
            value = getattr(self, f.name)
            if value is None and optional:
                continue
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                # An integer is an exact float (JSON writes 0.0 as 0 in some tools).
                if abs(value) > sys.float_info.max:  # float(value) would raise OverflowError
                    raise ValueError(
                        f"Expected `{f.name}` to be a float, but found an integer of "
                        f"{len(str(abs(value)))} digits, beyond the float range"
                    )
                object.__setattr__(self, f.name, float(value))
                continue
            if kind is int and isinstance(value, bool):
                raise TypeError(f"Expected `{f.name}` to be an int, but found bool {value!r}")
            if not isinstance(value, kind):
                expected = kind.__name__ + (" or None" if optional else "")
                raise TypeError(
                    f"Expected `{f.name}` to be {expected}, but found "
                    f"{type(value).__name__} {value!r}"
                )

    def _check_values(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            choices = setting_choices(f.name)
            if choices and value is not None and value not in choices:
                raise ValueError(
                    f"Expected `{f.name}` to be one of {list(choices)}, but found {value!r}"
                )
        spec = self.task_spec
        for f in fields(self):
            problem = _value_problem(f.name, getattr(self, f.name))
            if problem is not None:
                raise ValueError(problem)
        if self.r is not None and self.l is not None:
            raise ValueError(
                "Expected at most one of `r` (class order) and `l` (class-name vectors), "
                f"but found r={self.r} and l={self.l}"
            )
        if (
            self.val_fraction is not None
            and self.test_fraction is not None
            and self.val_fraction + self.test_fraction >= 1.0
        ):
            raise ValueError(
                "Expected `val_fraction` + `test_fraction` < 1 (a training set must remain), "
                f"but found {self.val_fraction} + {self.test_fraction}"
            )
        self._check_data_options(spec)
        if self.min_age is not None and self.max_age is not None and self.max_age < self.min_age:
            raise ValueError(
                f"Expected `max_age` >= `min_age`, but found {self.max_age} < {self.min_age}"
            )
        if spec.needs_data_dir and self.data_dir is None:
            raise ValueError(f"Expected `data_dir` for dataset {spec.name!r}, but found None")
        self._check_similarity()
        self._check_loss()
        if self.monitor is not None and self.monitor not in spec.monitors:
            raise ValueError(
                f"Expected a monitor metric that dataset {spec.name!r} has "
                f"{list(spec.monitors)}, but found {self.monitor!r}"
            )

    def _check_data_options(self, spec: Task) -> None:
        for name in DATA_OPTIONS:
            value = getattr(self, name)
            default = _field(name).default
            if spec.takes(name) or value == default:
                continue
            users = [d for d, s in BUILTIN_TASKS.items() if s.takes(name)]
            raise ValueError(
                f"Expected `{name}` to be {default!r} for dataset {spec.name!r} (it applies to "
                f"{', '.join(users)}), but found {value!r}"
            )

    def _check_similarity(self) -> None:
        similarity = self.inferred_similarity
        task = self.task_spec
        param = SIMILARITY_KINDS[similarity]
        if param is not None and getattr(self, param) is None:
            raise ValueError(f"Expected `{param}` for similarity {similarity!r}, but found None")
        if similarity in ("order", "values") and not task.ordinal:
            ordinal = [d for d, s in BUILTIN_TASKS.items() if s.ordinal]
            raise ValueError(
                f"Expected ordered classes (e.g. {ordinal}, or a task with ordered classes) for "
                f"similarity {similarity!r}, but dataset {task.name!r} has unordered ones"
            )
        if similarity == "embeddings" and self.vectors is None and task.similarity.vectors is None:
            raise ValueError(
                "Expected `vectors` (a .npy file of class-name vectors) for similarity "
                "'embeddings', but found None"
            )
        if similarity == "hierarchy" and self.hierarchy is None and task.classes.hierarchy is None:
            raise ValueError(
                "Expected `hierarchy` (a class hierarchy file) for similarity 'hierarchy', "
                "but found None"
            )
        for name, spec in PARAMS.items():
            if similarity not in spec.similarities and getattr(self, name) is not None:
                raise ValueError(
                    f"Expected `{name}` only with similarity {' or '.join(map(repr, spec.similarities))}, "
                    f"but found {similarity!r}"
                )

    def _check_loss(self) -> None:
        loss = self.inferred_loss
        spec = loss_spec(loss)
        task = self.task_spec
        if not spec.applies_to(task):
            users = [d for d, t in BUILTIN_TASKS.items() if spec.applies_to(t)]
            raise ValueError(
                f"Expected a dataset of {spec.task} classes (e.g. {users}) for loss {loss!r}, "
                f"but dataset {task.name!r} has {'ordered' if task.ordinal else 'unordered'} ones"
            )
        if not spec.uses_similarity:
            given = [n for n in PARAMS if getattr(self, n) is not None]
            if self.similarity not in (None, "identity") or given:
                users = [n for n, s in LOSSES.items() if s.uses_similarity]
                found = given[0] if given else "similarity"
                raise ValueError(
                    f"Expected `{found}` only with a loss built from a similarity {users}, "
                    f"but found loss {loss!r}"
                )
        elif loss == "soft-labels" and self.param is None:
            raise ValueError(
                f"Expected `{task.param or 'r` or `l'}` (the similarity) for loss "
                "'soft-labels', but found None"
            )
        if self.loss_param is not None:
            if spec.param is None:
                own = [n for n, s in LOSSES.items() if s.param is not None]
                raise ValueError(
                    f"Expected `loss_param` only with a loss of its own parameter {own}, but "
                    f"found loss {loss!r}"
                )
            if not spec.param.contains(self.loss_param):
                raise ValueError(
                    f"Expected `loss_param` ({loss} {spec.param.name}) in "
                    f"{spec.param.range_text()}, but found {self.loss_param}"
                )
        for name in spec.needs:
            if getattr(self, name) is None:
                raise ValueError(f"Expected `{name}` for loss {loss!r}, but found None")
        if self.hierarchy_names is not None and self.hierarchy is None:
            raise ValueError(
                "Expected `hierarchy_names` only with `hierarchy` (an id edge list), but found "
                "no hierarchy"
            )

    # ---------------------------------------------------------------- helpers
    @property
    def inferred_loss(self) -> str:
        """The loss: the explicit one, else ``simloss`` with ``r``/``l`` or a similarity, else ``ce``.

        Example:
            >>> TrainConfig(r=0.3).inferred_loss, TrainConfig().inferred_loss
            ('simloss', 'ce')
        """
        if self.loss is not None:
            return self.loss
        if self.similarity not in (None, "identity"):
            return "simloss"
        if any(getattr(self, n) is not None for n in PARAMS):
            return "simloss"
        return "simloss" if self.similarity == "identity" else "ce"

    @property
    def inferred_similarity(self) -> str:
        """The similarity source: the explicit one, else the task's for ``r``/``l``.

        ``r`` alone means the task's similarity when it takes ``r`` (the class
        order, or class values), else the class order; ``l`` alone the task's
        when it takes ``l``, else class-name vectors.

        Example:
            >>> TrainConfig(r=0.3).inferred_similarity, TrainConfig().inferred_similarity
            ('order', 'identity')
        """
        if self.similarity is not None:
            return self.similarity
        declared = self.task_spec.similarity.kind
        for name, param in PARAMS.items():
            if getattr(self, name) is not None:
                return declared if declared in param.similarities else param.similarity
        return "identity"

    @property
    def task_spec(self) -> Task:
        """The run's task: the file ``task``, else the built-in ``dataset`` (default abalone).

        Example:
            >>> TrainConfig().task_spec.name, TrainConfig(dataset="utkface", data_dir="d").task_spec.title
            ('abalone', 'UTKFace')
        """
        task = get_task(self.dataset, self.task)
        if task.file is not None:
            _check_task_defaults(task)
        return task

    @property
    def param(self) -> str | None:
        """The name of the loss's hyper-parameter (``"r"``, ``"l"``, ``"alpha"``, ...) or ``None``.

        SimLoss and soft labels have their similarity's (``None`` for the
        identity); the other losses their own (:func:`~simloss.experiments.specs.swept_param`).

        Example:
            >>> TrainConfig(r=0.3).param, TrainConfig(loss="sord").param, TrainConfig().param
            ('r', 'alpha', None)
        """
        loss = self.inferred_loss
        if loss_spec(loss).uses_similarity:
            return SIMILARITY_KINDS[self.inferred_similarity]
        swept = swept_param(self.task_spec, loss)
        return None if swept is None else swept.name

    @property
    def param_value(self) -> float | None:
        """The value of :attr:`param` (``None`` without one; the loss's default when unset)."""
        name = self.param
        if name is None:
            return None
        if name in PARAMS:
            value: float | None = getattr(self, name)
            return value
        own = loss_spec(self.inferred_loss).param
        if self.loss_param is None and own is not None:
            return own.default
        return self.loss_param

    @property
    def ordinal(self) -> bool:
        """Whether the task's classes are ordered."""
        return self.task_spec.ordinal

    def resolve(self) -> TrainConfig:
        """Fill every ``None`` that has a task default, ``dataset``, ``similarity`` and ``progress``.

        The task's defaults are its ``[train]`` settings (a built-in dataset's
        paper setup), its model, and the files its declaration names (class
        vectors, hierarchy). ``progress`` left at ``None`` becomes whether
        stderr is a terminal, so logs redirected to a file get no progress bars.
        A task file given by a relative path becomes its absolute path (a run's
        record then finds it from any folder).

        Returns:
            A new config; resolving twice gives the same config.
        """
        task = self.task_spec
        updates: dict[str, Any] = {
            "dataset": task.name,
            "similarity": self.inferred_similarity,
            "loss": self.inferred_loss,
        }
        own = loss_spec(self.inferred_loss).param
        if own is not None and self.loss_param is None:
            updates["loss_param"] = own.default
        declared = {
            "model": task.model,
            "vectors": None if task.similarity.vectors is None else str(task.similarity.vectors),
            "hierarchy": None if task.classes.hierarchy is None else str(task.classes.hierarchy),
            "hierarchy_names": (
                None if task.classes.hierarchy_names is None else str(task.classes.hierarchy_names)
            ),
            **task.defaults,
        }
        for key, value in declared.items():
            if getattr(self, key) is None and value is not None:
                updates[key] = value
        if self.progress is None:
            updates["progress"] = _stderr_is_terminal()
        if self.task is not None:
            # The file itself, so a run's stored config finds it (and a factory model beside
            # it) from any folder: a path as given is relative to the folder of the command.
            updates["task"] = str(Path(self.task).expanduser().resolve())
        return dataclasses.replace(self, **updates)

    @property
    def is_resolved(self) -> bool:
        """Whether :meth:`resolve` made this config (what it fills is filled).

        Example:
            >>> TrainConfig().is_resolved, TrainConfig().resolve().is_resolved
            (False, True)
        """
        return None not in (self.dataset, self.loss, self.similarity, self.progress)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, one key per setting."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def field_names(cls) -> list[str]:
        """The names of all settings."""
        return [f.name for f in fields(cls)]

    @classmethod
    def local_names(cls) -> list[str]:
        """Settings that say where or how a run happens, not what it computes."""
        return [f.name for f in fields(cls) if f.metadata.get("local")]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build a config from a mapping, rejecting unknown keys by name."""
        if not isinstance(data, dict):
            raise TypeError(f"Expected a dict for TrainConfig, but found {type(data).__name__}")
        known = cls.field_names()
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(
                f"Unknown TrainConfig keys: {unknown}; expected a subset of {sorted(known)}"
            )
        return cls(**data)


def _value_problem(name: str, value: Any, label: str | None = None) -> str | None:
    """The message of a setting's value outside its range (``None``: within it).

    The checks of one value alone (the type is checked before); ``label`` names
    the setting in the message (default ```name```).

    Example:
        >>> _value_problem("epochs", -3), _value_problem("epochs", 3)
        ('Expected `epochs` >= 1, but found -3', None)
    """
    shown = label or f"`{name}`"
    if value is None:
        return None
    if name == "model" and value not in MODELS and not is_factory(value):
        return (
            f"Expected {shown} to be one of {list(MODELS)} or a factory 'module:function', "
            f"but found {value!r}"
        )
    if name in ("r", "l") and not (0.0 <= value < 1.0):
        return f"Expected {shown} in [0, 1), but found {value}"
    if name in ("epochs", "patience", "batch_size", "limit", "num_threads") and value < 1:
        return f"Expected {shown} >= 1, but found {value}"
    if name in ("seed", "split_seed") and not 0 <= value <= MAX_SEED:
        return f"Expected {shown} in [0, {MAX_SEED}] (the seeds torch accepts), but found {value}"
    if name == "lr" and not (math.isfinite(value) and value > 0):
        return f"Expected {shown} > 0 and finite, but found {value}"
    if name in ("val_fraction", "test_fraction") and not (0.0 < value < 1.0):
        return f"Expected {shown} in (0, 1), but found {value}"
    if name == "min_age" and value < 0:
        return f"Expected {shown} >= 0, but found {value}"
    if name == "device" and not _DEVICE_RE.match(value):
        return f"Expected {shown} to be 'auto', 'cpu' or 'cuda[:N]', but found {value!r}"
    return None


_NOT_TASK_DEFAULTS = frozenset({"dataset", "task", "loss", "loss_param", "similarity", "r", "l"})
#: Where a task declares what a local setting would say (the others are a run's own).
_DECLARED_INSTEAD = {
    "data_dir": "the data's path is `data.path`",
    "vectors": "class vectors are `similarity.vectors`",
    "hierarchy": "a hierarchy is `classes.hierarchy`",
    "hierarchy_names": "its names are `classes.hierarchy_names`",
}


def _check_task_defaults(task: Task) -> None:
    """A task file's ``[train]`` settings: run settings a task may set (named on error).

    Local settings (where or how a run happens: paths, device, threads, progress,
    caches) are no task's defaults; every value is checked as a run's would be,
    naming the file and the key.
    """
    local = set(TrainConfig.local_names())
    for key in sorted(set(task.defaults) & local):
        instead = _DECLARED_INSTEAD.get(key, f"give it to a run (--{key.replace('_', '-')})")
        raise TaskError(
            f"Expected no `train.{key}` in {task.file}: {key} is a local setting (where or how "
            f"a run happens), not a task default; {instead}"
        )
    known = set(TrainConfig.field_names()) - _NOT_TASK_DEFAULTS - local
    unknown = sorted(set(task.defaults) - known)
    if unknown:
        raise TaskError(
            f"Unknown key(s) {['train.' + k for k in unknown]} in {task.file}; expected run "
            f"settings among {sorted(known)}"
        )
    for key, value in task.defaults.items():
        kind, optional = setting_type(key)
        ok = (
            (value is None and optional)
            or (isinstance(value, kind) and not (kind is int and isinstance(value, bool)))
            or (kind is float and isinstance(value, int) and not isinstance(value, bool))
        )
        choices = setting_choices(key)
        if not ok or (choices and value not in choices):
            expected = f"one of {list(choices)}" if choices else kind.__name__
            raise TaskError(
                f"Expected `train.{key}` in {task.file} to be {expected}, but found {value!r}"
            )
        problem = _value_problem(key, value, f"`train.{key}` in {task.file}")
        if problem is not None:
            raise TaskError(problem)
    fractions = [task.defaults.get(k) for k in ("val_fraction", "test_fraction")]
    if None not in fractions and sum(fractions) >= 1.0:  # type: ignore[arg-type]
        raise TaskError(
            f"Expected `train.val_fraction` + `train.test_fraction` < 1 in {task.file} (a "
            f"training set must remain), but found {fractions[0]} + {fractions[1]}"
        )


def _stderr_is_terminal() -> bool:
    stream = sys.stderr
    return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())


def _field(name: str) -> dataclasses.Field[Any]:
    for f in fields(TrainConfig):
        if f.name == name:
            return f
    raise ValueError(f"Expected a TrainConfig setting, but found {name!r}")


def setting_type(name: str) -> tuple[type, bool]:
    """The Python type of a setting and whether it may be ``None``, from its type hint.

    Example:
        >>> setting_type("epochs"), setting_type("lr"), setting_type("progress")
        ((<class 'int'>, True), (<class 'float'>, False), (<class 'bool'>, True))
    """
    hint = _HINTS[_field(name).name]
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) != 1:  # pragma: no cover (a declaration error)
            raise TypeError(f"TrainConfig.{name}: expected one type besides None, found {hint}")
        return kinds[0], True
    return hint, False


def setting_help(name: str) -> str:
    """The help text of a setting.

    Example:
        >>> setting_help("lr")
        "Adam's learning rate"
    """
    return str(_field(name).metadata["help"])


def setting_choices(name: str) -> tuple[str, ...]:
    """The allowed values of a setting (empty: any value of its type).

    Example:
        >>> setting_choices("cifar_classes")
        ('all', 'paper96')
    """
    return tuple(_field(name).metadata["choices"])


_HINTS: dict[str, Any] = typing.get_type_hints(TrainConfig)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The settings of a JSON config file (e.g. a run's ``config.json``), keys checked.

    Args:
        path: a JSON object of :class:`TrainConfig` settings.

    Returns:
        The settings as a dict (only known keys; values are checked when a
        config is built from them).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not JSON, not an object, or unknown keys (named).
    """
    file = Path(path)
    settings = read_json_object(file, "config file")
    unknown = sorted(set(settings) - set(TrainConfig.field_names()))
    if unknown:
        raise ValueError(
            f"Unknown TrainConfig keys: {unknown} in {file}; expected a subset of "
            f"{sorted(TrainConfig.field_names())}"
        )
    return settings


def point_config(
    base: TrainConfig,
    param: str | None,
    value: float | None,
    run: int,
    *,
    loss: str | None = None,
) -> TrainConfig:
    """The config of one sweep trial: ``base`` with ``loss``, ``param = value`` and ``seed + run``
    (and ``split_seed + run`` with ``split_per_run``).

    The one way a grid point becomes a run: every other setting of ``base`` is
    kept; the loss settings (:data:`LOSS_KEYS`) are replaced, so a base config
    given as a run's ``config.json`` may carry another loss or parameter.

    Args:
        base: the sweep's settings (its ``seed`` is the base seed).
        param: the swept parameter (``"r"``, ``"l"``, or the loss's own, e.g.
            ``"alpha"``; :func:`~simloss.experiments.specs.swept_param`), or
            ``None`` for a loss without one.
        value: the grid value (``None`` with ``param=None``).
        run: the run index (>= 0).
        loss: the loss; ``None``: ``base.loss``, else SimLoss
            (:func:`~simloss.experiments.loss_catalog.stored_loss`).

    Returns:
        The trial's config (not resolved).

    Example:
        >>> c = point_config(TrainConfig(dataset="abalone", seed=5, lr=0.01), "r", 0.3, 2)
        >>> c.r, c.seed, c.lr, c.inferred_loss
        (0.3, 7, 0.01, 'simloss')
        >>> c = point_config(TrainConfig(r=0.5), "alpha", 2.0, 0, loss="sord")
        >>> c.loss, c.loss_param, c.r
        ('sord', 2.0, None)
    """
    if isinstance(run, bool) or not isinstance(run, int) or run < 0:
        raise ValueError(f"Expected `run` to be an int >= 0, but found {run!r}")
    chosen = loss if loss is not None else stored_loss(base.loss)
    task = base.task_spec
    swept = swept_param(task, loss_spec(chosen).name)
    expected = None if swept is None else swept.name
    if swept is not None and loss_spec(chosen).uses_similarity and param in PARAMS:
        expected = param  # r or l: the dataset's own is checked with the config
    if param != expected:
        raise ValueError(
            f"Expected `param` to be {expected!r} for loss {chosen!r} on dataset "
            f"{task.name!r}, but found {param!r}"
        )
    if (param is None) != (value is None):
        raise ValueError(
            f"Expected a value exactly when the loss has a parameter, but found "
            f"param={param!r} and value={value!r}"
        )
    changes: dict[str, Any] = {"loss": chosen, "seed": base.seed + run, "loss_param": None}
    if base.split_per_run:
        changes["split_seed"] = base.split_seed + run
    for other in PARAMS:
        changes[other] = None
    if param is not None:
        changes["loss_param" if param not in PARAMS else param] = value
    if param is not None and param in PARAMS:
        kinds = PARAMS[param].similarities
        if base.similarity is not None and base.similarity not in kinds:
            raise ValueError(
                f"Expected `similarity` among {list(kinds)} (or none) for a sweep over "
                f"{param!r}, but found {base.similarity!r}"
            )
    else:
        changes["similarity"] = None
    return dataclasses.replace(base, **changes)
