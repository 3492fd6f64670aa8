"""The data of a run: a task's examples read, mapped to classes, split and standardised.

:func:`load_data` turns a :class:`~simloss.experiments.config.TrainConfig`
into a :class:`PreparedData` (three splits, classes, standardisation) through
the reader of its task's data kind: a table (:mod:`.tables`), an image folder
(:mod:`.images`), feature arrays (:mod:`.arrays`) or a Python factory
(:mod:`.factory`). The built-in datasets are tasks of these kinds
(:mod:`simloss.experiments.task.builtin`), read by the same code.
"""

from __future__ import annotations

from typing import Any

from simloss.experiments.config import TrainConfig
from simloss.experiments.data._types import PreparedData, Preprocessing, Split
from simloss.experiments.data.abalone import load_abalone
from simloss.experiments.data.afad import load_afad
from simloss.experiments.data.arrays import load_array_task
from simloss.experiments.data.cifar100 import load_cifar100
from simloss.experiments.data.factory import load_factory_task
from simloss.experiments.data.images import load_image_task
from simloss.experiments.data.tables import load_table_task
from simloss.experiments.data.utkface import load_utkface
from simloss.experiments.task import Task

__all__ = [
    "PreparedData",
    "Preprocessing",
    "Split",
    "load_abalone",
    "load_afad",
    "load_cifar100",
    "load_data",
    "load_task",
    "load_utkface",
]

_READERS = {
    "table": load_table_task,
    "images": load_image_task,
    "arrays": load_array_task,
    "factory": load_factory_task,
}


def load_task(task: Task, **settings: Any) -> PreparedData:
    """Load a task's data with the reader of its kind; ``settings`` by the reader's keyword."""
    reader: Any = _READERS[task.data.kind]
    data: PreparedData = reader(task, **settings)
    return data


def load_data(config: TrainConfig) -> PreparedData:
    """Load the task a (resolved or not) config names, with the settings its reader takes.

    The settings a task's reader takes are declared with its data
    (:attr:`simloss.experiments.task.DataSource.settings`); a setting left at
    ``None`` is not passed (``data_dir`` for a declared path; the fractions of
    a task without defaults take the reader's 0.2 and 0.2).

    Example:
        >>> data = load_data(TrainConfig(dataset="abalone", limit=100))
        >>> len(data.train) + len(data.val) + len(data.test)
        100
    """
    resolved = config if config.is_resolved else config.resolve()
    task = resolved.task_spec
    kwargs = {
        arg: getattr(resolved, setting)
        for setting, arg in task.data.settings.items()
        if getattr(resolved, setting) is not None
    }
    return load_task(task, **kwargs)
