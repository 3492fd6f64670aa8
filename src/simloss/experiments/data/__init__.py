"""Datasets of the paper's experiments, each read from its raw public layout.

:func:`load_data` turns a :class:`~simloss.experiments.config.TrainConfig` into
a :class:`PreparedData` (three splits, class values, standardisation).
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from simloss.experiments.config import TrainConfig
from simloss.experiments.data._types import PreparedData, Preprocessing, Split
from simloss.experiments.data.abalone import load_abalone
from simloss.experiments.data.afad import load_afad
from simloss.experiments.data.cifar100 import load_cifar100
from simloss.experiments.data.utkface import load_utkface

__all__ = [
    "PreparedData",
    "Preprocessing",
    "Split",
    "load_abalone",
    "load_afad",
    "load_cifar100",
    "load_data",
    "load_utkface",
]


_T = TypeVar("_T")


def _filled(value: _T | None, name: str) -> _T:
    if value is None:
        raise ValueError(f"Expected `{name}` to be set by TrainConfig.resolve(), but found None")
    return value


def load_data(config: TrainConfig) -> PreparedData:
    """Load the dataset a (resolved or not) config names, with its split settings.

    Example:
        >>> data = load_data(TrainConfig(dataset="abalone", limit=100))
        >>> len(data.train) + len(data.val) + len(data.test)
        100
    """
    c = config.resolve()
    val_fraction = _filled(c.val_fraction, "val_fraction")
    if c.dataset == "abalone":
        return load_abalone(
            c.data_dir,
            val_fraction=val_fraction,
            test_fraction=_filled(c.test_fraction, "test_fraction"),
            split_seed=c.split_seed,
            limit=c.limit,
        )
    if c.data_dir is None:
        raise ValueError(f"Expected `data_dir` for dataset {c.dataset!r}, but found None")
    if c.dataset == "cifar100":
        return load_cifar100(
            c.data_dir,
            classes=c.cifar_classes,
            val_fraction=val_fraction,
            split_seed=c.split_seed,
            limit=c.limit,
            download=c.download,
            progress=c.progress,
        )
    loader = load_utkface if c.dataset == "utkface" else load_afad
    return loader(
        Path(c.data_dir),
        min_age=_filled(c.min_age, "min_age"),
        max_age=_filled(c.max_age, "max_age"),
        val_fraction=val_fraction,
        test_fraction=_filled(c.test_fraction, "test_fraction"),
        split_seed=c.split_seed,
        limit=c.limit,
        cache_dir=c.cache_dir,
        skip_unreadable=c.skip_unreadable,
        progress=c.progress,
    )
