"""Tasks: what a run learns, declared once (a built-in dataset or the user's file).

:func:`get_task` gives the :class:`Task` of a run: a built-in dataset by name
(:data:`BUILTIN_TASKS`) or a user's declaration file (TOML or JSON, read by
:func:`read_task`). Every command reads the task through it; the data itself
is read by :func:`simloss.experiments.data.load_data`.
"""

from __future__ import annotations

import functools
from pathlib import Path

from simloss.experiments._files import BOM
from simloss.experiments.task.builtin import BUILTIN_TASKS
from simloss.experiments.task.declaration import (
    DATA_KINDS,
    IMAGE_LAYOUTS,
    MODEL_NAMES,
    PARAM_GRIDS,
    SIMILARITY_KINDS,
    ClassSpec,
    DataSource,
    SimilaritySpec,
    Task,
    TaskError,
    is_factory,
    is_task_name,
    parse_task,
)

__all__ = [
    "BUILTIN_TASKS",
    "DATA_KINDS",
    "IMAGE_LAYOUTS",
    "MODEL_NAMES",
    "PARAM_GRIDS",
    "SIMILARITY_KINDS",
    "TASK_SUFFIXES",
    "ClassSpec",
    "DataSource",
    "SimilaritySpec",
    "Task",
    "TaskError",
    "builtin_task",
    "get_task",
    "is_factory",
    "is_task_name",
    "parse_task",
    "read_task",
]

#: The file kinds a task declaration may be written in.
TASK_SUFFIXES: tuple[str, ...] = (".toml", ".json")


def builtin_task(name: str) -> Task:
    """A built-in dataset's task, with an error that lists them.

    Example:
        >>> builtin_task("utkface").param, builtin_task("cifar100").ordinal
        ('r', False)
        >>> builtin_task("mnist")
        Traceback (most recent call last):
        ...
        ValueError: Expected `dataset` to be one of ['abalone', 'utkface', 'afad', 'cifar100'] (or a task file given as `task`), but found 'mnist'
    """
    task = BUILTIN_TASKS.get(name) if isinstance(name, str) else None
    if task is None:
        raise ValueError(
            f"Expected `dataset` to be one of {list(BUILTIN_TASKS)} (or a task file given as "
            f"`task`), but found {name!r}"
        )
    return task


def read_task(path: str | Path) -> Task:
    """Read a task declaration file (``.toml`` or ``.json``); relative paths in it are the file's.

    The file is read on every call (a task file may change between two
    commands; sweeps compare its declaration, :attr:`Task.sha256`); a file
    already parsed is not parsed again (the cache is keyed by its bytes).

    Raises:
        FileNotFoundError: no such file.
        TaskError: not TOML/JSON, a declaration error, or a name a built-in
            dataset has (one line naming the file and the key).
    """
    file = Path(path).expanduser()
    if file.suffix.lower() not in TASK_SUFFIXES:
        raise TaskError(
            f"Expected a task file ending in {' or '.join(TASK_SUFFIXES)}, but found {str(file)!r}"
        )
    if not file.exists():
        raise FileNotFoundError(f"Task file {file} does not exist")
    if not file.is_file():
        raise TaskError(f"Expected task file {file} to be a file, but it is a folder")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise TaskError(f"Could not read task file {file}: {exc.strerror or exc}") from exc
    return _parse_cached(str(file.resolve()), data)


@functools.lru_cache(maxsize=64)
def _parse_cached(path: str, data: bytes) -> Task:
    file = Path(path)
    try:
        text = data.decode("utf-8").removeprefix(BOM)  # a byte-order mark is no part of a key
    except UnicodeDecodeError as exc:
        raise TaskError(f"Could not read task file {file}: not UTF-8 text ({exc.reason})") from exc
    if file.suffix.lower() == ".json":
        from simloss._json import parse_json

        raw = parse_json(text, f"task file {file}")
    else:
        import tomllib

        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise TaskError(f"Could not read task file {file}: {exc}") from exc
    task = parse_task(raw, str(file), base=file.parent)
    if task.name.casefold() in {name.casefold() for name in BUILTIN_TASKS}:
        raise TaskError(
            f"Expected `name` in {file} to be other than a built-in dataset's "
            f"{list(BUILTIN_TASKS)} (records, sweeps and reports know a dataset by its name: "
            f"yours would get the paper's tables), but found {task.name!r}"
        )
    return task


def get_task(dataset: str | None, task: str | Path | None = None) -> Task:
    """The task of a run: the declaration file ``task``, else the built-in ``dataset``.

    With a task file, ``dataset`` may only restate the file's ``name``.

    Example:
        >>> get_task(None).name, get_task("afad").paper_table
        ('abalone', 1)
    """
    if task is None:
        return builtin_task("abalone" if dataset is None else dataset)
    declared = read_task(task)
    if dataset is not None and dataset != declared.name:
        raise TaskError(
            f"Expected `dataset` to be the name of task file {task} ({declared.name!r}) or "
            f"left out, but found {dataset!r}"
        )
    return declared
