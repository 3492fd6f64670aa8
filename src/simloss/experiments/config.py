"""The settings of one training run, in one dataclass saved next to its results.

A :class:`TrainConfig` holds every setting of a run. Settings left at ``None``
take the dataset's default (the paper's values, see :data:`DATASET_DEFAULTS`)
when :meth:`TrainConfig.resolve` is called; the training record stores the
resolved config, so a record always states the values that were used.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "DATASETS",
    "DATASET_DEFAULTS",
    "METRIC_GOALS",
    "MODELS",
    "SIMILARITIES",
    "TrainConfig",
]

#: Datasets a run can use.
DATASETS: tuple[str, ...] = ("abalone", "utkface", "afad", "cifar100")
#: Datasets whose classes are ordered (ages, ring counts).
ORDINAL_DATASETS: tuple[str, ...] = ("abalone", "utkface", "afad")
#: Models by name (see :mod:`simloss.experiments.models`).
MODELS: tuple[str, ...] = ("mlp", "age_cnn", "lenet")
#: Similarity sources: class order (``r``), class-name vectors (``l``), identity (CCE).
SIMILARITIES: tuple[str, ...] = ("order", "embeddings", "identity")
#: Validation metrics early stopping can monitor, with the direction that is better.
METRIC_GOALS: dict[str, str] = {
    "acc": "max",
    "mae": "min",
    "mse": "min",
    "sa": "max",
    "fsa": "max",
    "loss": "min",
}
#: CIFAR-100 class sets: all 100, or the paper's 96 (four names had no word2vec vector).
CIFAR_CLASS_SETS: tuple[str, ...] = ("all", "paper96")

#: Defaults per dataset, filled in by :meth:`TrainConfig.resolve`. Age sets follow
#: the paper (max 200 epochs as in the authors' code, patience 10 on validation
#: MAE, 60/20/20 splits); CIFAR-100 follows the paper (patience 20 on accuracy, max
#: 1000 epochs as in the authors' code, 10 % of each class's training images for
#: validation); Abalone is the small embedded demo (batch 256 so that an epoch has
#: several steps; one CPU thread, faster than several for so small a model).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "abalone": {
        "model": "mlp",
        "epochs": 500,
        "patience": 20,
        "monitor": "mae",
        "batch_size": 256,
        "num_threads": 1,
        "val_fraction": 0.2,
        "test_fraction": 0.2,
    },
    "utkface": {
        "model": "age_cnn",
        "epochs": 200,
        "patience": 10,
        "monitor": "mae",
        "batch_size": 1024,
        "val_fraction": 0.2,
        "test_fraction": 0.2,
        "min_age": 1,
        "max_age": 90,
    },
    "afad": {
        "model": "age_cnn",
        "epochs": 200,
        "patience": 10,
        "monitor": "mae",
        "batch_size": 1024,
        "val_fraction": 0.2,
        "test_fraction": 0.2,
        "min_age": 15,
        "max_age": 75,
    },
    "cifar100": {
        "model": "lenet",
        "epochs": 1000,
        "patience": 20,
        "monitor": "acc",
        "batch_size": 1024,
        "val_fraction": 0.1,
    },
}

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of one training run.

    Args:
        dataset: one of :data:`DATASETS`.
        data_dir: the dataset's folder (UTKFace images, ``AFAD-Full``,
            ``cifar-100-python`` or its tarball); ``None`` for the embedded Abalone.
        cache_dir: where decoded images are cached; ``None``: ``$SIMLOSS_CACHE_DIR``,
            else ``$XDG_CACHE_HOME/simloss``, else ``~/.cache/simloss``.
        similarity: ``"order"`` (needs ``r``), ``"embeddings"`` (needs ``l`` and
            ``vectors``) or ``"identity"`` (plain cross-entropy); ``None`` infers
            it: ``order`` when ``r`` is set, ``embeddings`` when ``l`` is set,
            else ``identity``.
        r: class-order reduction factor in [0, 1), ``S_ij = r^|i-j|``.
        l: lower bound in [0, 1) for class-name similarity,
            ``S_ij = max(0, sim_ij - l) / (1 - l)``.
        vectors: a ``.npy`` file of class-name vectors, one row per class in the
            dataset's original label order (100 rows for CIFAR-100).
        model: one of :data:`MODELS`; ``None``: the dataset's model.
        epochs: the most epochs to train.
        patience: stop after this many epochs without a strict improvement of
            ``monitor`` on the validation set.
        monitor: the validation metric of early stopping (:data:`METRIC_GOALS`).
        lr: Adam's learning rate.
        batch_size: examples per step (evaluation uses the same size).
        seed: training seed (weights, batch order).
        split_seed: seed of the train/validation/test split and of ``limit``'s
            subset, independent of ``seed``.
        val_fraction: fraction of examples for validation (CIFAR-100: of each
            class's official training images).
        test_fraction: fraction for test (not for CIFAR-100, which has its own).
        min_age, max_age: the age classes kept (UTKFace 1..90, AFAD 15..75);
            other ages are excluded and counted, never clipped.
        cifar_classes: ``"all"`` (100 classes) or ``"paper96"`` (without
            aquarium_fish, sweet_pepper, keyboard and pickup_truck).
        limit: use a random subset (drawn with ``split_seed``) of at most this
            many examples before splitting (CIFAR-100: of each official set).
        skip_unreadable: skip images that cannot be decoded (counted and logged)
            instead of stopping with an error.
        download: download CIFAR-100 (checksum verified) when it is absent.
        channels_last: use the channels-last memory format for image models.
        progress: show tqdm progress bars.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:N]"``.
        num_threads: torch CPU threads; ``None`` leaves torch's default.

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

    dataset: str = "abalone"
    data_dir: str | None = None
    cache_dir: str | None = None
    similarity: str | None = None
    r: float | None = None
    l: float | None = None  # noqa: E741 (the paper's name for the lower bound)
    vectors: str | None = None
    model: str | None = None
    epochs: int | None = None
    patience: int | None = None
    monitor: str | None = None
    lr: float = 1e-3
    batch_size: int | None = None
    seed: int = 0
    split_seed: int = 0
    val_fraction: float | None = None
    test_fraction: float | None = None
    min_age: int | None = None
    max_age: int | None = None
    cifar_classes: str = "all"
    limit: int | None = None
    skip_unreadable: bool = False
    download: bool = False
    channels_last: bool = True
    progress: bool = True
    device: str = "auto"
    num_threads: int | None = None

    def __post_init__(self) -> None:
        self._check_types()
        self._check_values()

    # ------------------------------------------------------------------ checks
    def _check_types(self) -> None:
        kinds: dict[str, tuple[type, ...]] = {
            "dataset": (str,),
            "data_dir": (str,),
            "cache_dir": (str,),
            "similarity": (str,),
            "r": (float,),
            "l": (float,),
            "vectors": (str,),
            "model": (str,),
            "epochs": (int,),
            "patience": (int,),
            "monitor": (str,),
            "lr": (float,),
            "batch_size": (int,),
            "seed": (int,),
            "split_seed": (int,),
            "val_fraction": (float,),
            "test_fraction": (float,),
            "min_age": (int,),
            "max_age": (int,),
            "cifar_classes": (str,),
            "limit": (int,),
            "skip_unreadable": (bool,),
            "download": (bool,),
            "channels_last": (bool,),
            "progress": (bool,),
            "device": (str,),
            "num_threads": (int,),
        }
        optional = {f.name for f in fields(self) if f.default is None and f.name in kinds}
        for name, allowed in kinds.items():
            value = getattr(self, name)
            if value is None and name in optional:
                continue
            if allowed == (float,) and isinstance(value, int) and not isinstance(value, bool):
                # An integer is an exact float (JSON writes 0.0 as 0 in some tools).
                object.__setattr__(self, name, float(value))
                continue
            if allowed == (int,) and isinstance(value, bool):
                raise TypeError(f"Expected `{name}` to be an int, but found bool {value!r}")
            if not isinstance(value, allowed):
                expected = " or ".join(t.__name__ for t in allowed)
                if name in optional:
                    expected += " or None"
                raise TypeError(
                    f"Expected `{name}` to be {expected}, but found "
                    f"{type(value).__name__} {value!r}"
                )

    def _check_values(self) -> None:
        _choice("dataset", self.dataset, DATASETS)
        if self.similarity is not None:
            _choice("similarity", self.similarity, SIMILARITIES)
        if self.model is not None:
            _choice("model", self.model, MODELS)
        if self.monitor is not None:
            _choice("monitor", self.monitor, tuple(METRIC_GOALS))
        _choice("cifar_classes", self.cifar_classes, CIFAR_CLASS_SETS)
        for name in ("r", "l"):
            value = getattr(self, name)
            if value is not None and not (0.0 <= value < 1.0):
                raise ValueError(f"Expected `{name}` in [0, 1), but found {value}")
        if self.r is not None and self.l is not None:
            raise ValueError(
                "Expected at most one of `r` (class order) and `l` (class-name vectors), "
                f"but found r={self.r} and l={self.l}"
            )
        for name in ("epochs", "patience", "batch_size", "limit", "num_threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"Expected `{name}` >= 1, but found {value}")
        for name in ("seed", "split_seed"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"Expected `{name}` >= 0, but found {value}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"Expected `lr` > 0 and finite, but found {self.lr}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if value is not None and not (0.0 < value < 1.0):
                raise ValueError(f"Expected `{name}` in (0, 1), but found {value}")
        if (
            self.val_fraction is not None
            and self.test_fraction is not None
            and self.val_fraction + self.test_fraction >= 1.0
        ):
            raise ValueError(
                "Expected `val_fraction` + `test_fraction` < 1 (a training set must remain), "
                f"but found {self.val_fraction} + {self.test_fraction}"
            )
        if self.dataset == "cifar100" and self.test_fraction is not None:
            raise ValueError(
                "Expected `test_fraction` to be None for cifar100 (it has an official test "
                f"set), but found {self.test_fraction}"
            )
        if self.dataset not in ("utkface", "afad"):
            for name in ("min_age", "max_age"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"Expected `{name}` to be None for dataset {self.dataset!r} "
                        f"(ages apply to utkface and afad), but found {getattr(self, name)}"
                    )
        if self.min_age is not None and self.min_age < 0:
            raise ValueError(f"Expected `min_age` >= 0, but found {self.min_age}")
        if self.min_age is not None and self.max_age is not None and self.max_age < self.min_age:
            raise ValueError(
                f"Expected `max_age` >= `min_age`, but found {self.max_age} < {self.min_age}"
            )
        if self.dataset != "cifar100" and self.cifar_classes != "all":
            raise ValueError(
                "Expected `cifar_classes` to be 'all' unless dataset is cifar100, "
                f"but found {self.cifar_classes!r} for {self.dataset!r}"
            )
        if self.dataset != "cifar100" and self.download:
            raise ValueError(
                f"Expected `download` to be False for {self.dataset!r} (only cifar100 "
                "can be downloaded), but found True"
            )
        if self.dataset != "abalone" and self.data_dir is None:
            raise ValueError(f"Expected `data_dir` for dataset {self.dataset!r}, but found None")
        if not _DEVICE_RE.match(self.device):
            raise ValueError(
                f"Expected `device` to be 'auto', 'cpu' or 'cuda[:N]', but found {self.device!r}"
            )
        similarity = self.inferred_similarity
        if similarity == "order":
            if self.r is None:
                raise ValueError("Expected `r` for similarity 'order', but found None")
            if self.dataset not in ORDINAL_DATASETS:
                raise ValueError(
                    f"Expected an ordinal dataset {ORDINAL_DATASETS} for similarity 'order', "
                    f"but found {self.dataset!r}"
                )
        if similarity == "embeddings":
            if self.l is None:
                raise ValueError("Expected `l` for similarity 'embeddings', but found None")
            if self.vectors is None:
                raise ValueError(
                    "Expected `vectors` (a .npy file of class-name vectors) for similarity "
                    "'embeddings', but found None"
                )
        if similarity != "order" and self.r is not None:
            raise ValueError(f"Expected `r` only with similarity 'order', but found {similarity!r}")
        if similarity != "embeddings" and self.l is not None:
            raise ValueError(
                f"Expected `l` only with similarity 'embeddings', but found {similarity!r}"
            )
        if (self.monitor in ("mae", "mse") and self.dataset not in ORDINAL_DATASETS) or (
            self.monitor in ("sa", "fsa") and self.dataset != "cifar100"
        ):
            raise ValueError(
                f"Expected a monitor metric that dataset {self.dataset!r} has, but found "
                f"{self.monitor!r}"
            )

    # ---------------------------------------------------------------- helpers
    @property
    def inferred_similarity(self) -> str:
        """The similarity source: the explicit one, else inferred from ``r``/``l``."""
        if self.similarity is not None:
            return self.similarity
        if self.r is not None:
            return "order"
        if self.l is not None:
            return "embeddings"
        return "identity"

    @property
    def param(self) -> str | None:
        """The name of the similarity hyper-parameter (``"r"``, ``"l"``) or ``None``."""
        return {"order": "r", "embeddings": "l"}.get(self.inferred_similarity)

    @property
    def param_value(self) -> float | None:
        """The value of :attr:`param` (``None`` for identity)."""
        name = self.param
        return None if name is None else getattr(self, name)

    @property
    def ordinal(self) -> bool:
        """Whether the dataset's classes are ordered."""
        return self.dataset in ORDINAL_DATASETS

    def resolve(self) -> TrainConfig:
        """Fill every ``None`` that has a dataset default, and ``similarity``.

        Returns:
            A new config; resolving twice gives the same config.
        """
        updates: dict[str, Any] = {"similarity": self.inferred_similarity}
        for key, value in DATASET_DEFAULTS[self.dataset].items():
            if getattr(self, key) is None:
                updates[key] = value
        return dataclasses.replace(self, **updates)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, one key per setting."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def field_names(cls) -> list[str]:
        """The names of all settings."""
        return [f.name for f in fields(cls)]

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


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"Expected `{name}` to be one of {list(allowed)}, but found {value!r}")
