"""Datasets of the paper's experiments, each read from its raw public layout.

:func:`load_data` turns a :class:`~simloss.experiments.config.TrainConfig` into
a :class:`PreparedData` (three splits, class values, standardisation).
"""

from __future__ import annotations

import importlib

from simloss.experiments.config import TrainConfig
from simloss.experiments.data._types import PreparedData, Preprocessing, Split
from simloss.experiments.data.abalone import load_abalone
from simloss.experiments.data.afad import load_afad
from simloss.experiments.data.cifar100 import load_cifar100
from simloss.experiments.data.utkface import load_utkface
from simloss.experiments.specs import dataset_spec

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


def load_data(config: TrainConfig) -> PreparedData:
    """Load the dataset a (resolved or not) config names, through its spec's loader.

    The loader and the settings it takes are declared with the dataset in
    :data:`simloss.experiments.specs.DATASETS`.

    Example:
        >>> data = load_data(TrainConfig(dataset="abalone", limit=100))
        >>> len(data.train) + len(data.val) + len(data.test)
        100
    """
    resolved = config.resolve()
    spec = dataset_spec(resolved.dataset)
    module, name = spec.loader.split(":")
    loader = getattr(importlib.import_module(module), name)
    kwargs = {arg: getattr(resolved, setting) for setting, arg in spec.loader_args.items()}
    data: PreparedData = loader(**kwargs)
    return data
