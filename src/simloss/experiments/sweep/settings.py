"""What a sweep is: its fixed settings, the fingerprint of its data, and their checks.

Every trial of a sweep shares its fixed settings (all resolved
:class:`~simloss.experiments.config.TrainConfig` settings except the loss,
its parameter (:data:`~simloss.experiments.config.LOSS_KEYS`) and the local
ones) and its data, so the losses of one study are compared on the same
model, data, splits, seeds and training. Both are stored with the study;
a later command with other settings or other data is refused, naming what
differs, so one sweep never mixes runs of two setups.
"""

from __future__ import annotations

import hashlib
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from simloss.experiments._files import walk_files
from simloss.experiments.config import LOSS_KEYS, TrainConfig, point_config
from simloss.experiments.specs import swept_param

__all__ = [
    "LOCAL_KEYS",
    "check_settings",
    "comparable",
    "data_fingerprint",
    "data_place",
    "differences",
    "fixed_settings",
    "hashed_files",
    "sweep_base",
]

#: Settings that say where things are or how to run them, not what is computed:
#: they may differ between machines and reruns of one sweep (``local`` fields).
LOCAL_KEYS: tuple[str, ...] = tuple(TrainConfig.local_names())
#: Files that enter the fixed settings through their SHA-256 (the same file at another
#: path is the same sweep): setting -> key.
_HASHED_FILES = {
    "vectors": "vectors_sha256",
    "hierarchy": "hierarchy_sha256",
    "hierarchy_names": "hierarchy_names_sha256",
}
#: The declaration of a user's task enters through its SHA-256 (its file is local).
_EXTRA_KEYS = (*_HASHED_FILES.values(), "task_sha256")


def fixed_settings(base: TrainConfig, param: str | None = None) -> dict[str, Any]:
    """The settings every trial of a sweep shares, which a rerun may not change.

    All resolved :class:`TrainConfig` settings except the loss settings
    (:data:`~simloss.experiments.config.LOSS_KEYS`: the loss, ``r``, ``l``,
    ``loss_param``, ``similarity``, which a study's points set) and the local
    ones (:data:`LOCAL_KEYS`: paths, device, threads, progress bars). The
    ``seed`` is the base seed (run ``i`` trains with ``seed + i``). A vectors or
    hierarchy file, given as a run setting or declared by the task
    (:func:`hashed_files`), enters through its SHA-256, and a task file through the
    SHA-256 of its declaration (``task_sha256``), so the same file at another
    path is the same sweep and a changed task is another.

    Args:
        base: the sweep's base config (its loss settings are ignored).
        param: unused (kept for callers of the single-parameter sweeps).

    Returns:
        A dict of plain JSON types.

    Example:
        >>> fixed = fixed_settings(TrainConfig(dataset="abalone", epochs=3))
        >>> fixed["epochs"], "similarity" in fixed, "r" in fixed, "data_dir" in fixed
        (3, False, False, False)
    """
    loss = base.inferred_loss
    task = base.task_spec
    swept = swept_param(task, loss)
    value = None if swept is None else (swept.grid[0] if swept.spec is None else swept.spec.default)
    config = point_config(base, None if swept is None else swept.name, value, 0, loss=loss)
    resolved = config.resolve()
    fixed = {
        k: v for k, v in resolved.to_dict().items() if k not in LOCAL_KEYS and k not in LOSS_KEYS
    }
    fixed["seed"] = base.seed
    if task.sha256 is not None:
        fixed["task_sha256"] = task.sha256
    for key, path in hashed_files(resolved).items():
        fixed[key] = _sha256_file(Path(path), key.removesuffix("_sha256"))
    return fixed


def hashed_files(config: TrainConfig) -> dict[str, str]:
    """The files a sweep compares by content: ``vectors_sha256`` -> the class-vectors file, ...

    The resolved config's files: those given as run settings, else those the
    task declares (``similarity.vectors``, ``classes.hierarchy``,
    ``classes.hierarchy_names``), which :meth:`TrainConfig.resolve` fills in.

    Example:
        >>> hashed_files(TrainConfig(dataset="abalone"))
        {}
    """
    resolved = config if config.is_resolved else config.resolve()
    return {
        key: str(getattr(resolved, setting))
        for setting, key in _HASHED_FILES.items()
        if getattr(resolved, setting) is not None
    }


def data_place(config: TrainConfig) -> str:
    """Where a run's data is, in words, for messages: ``data_dir``, else the task's declared path.

    Example:
        >>> data_place(TrainConfig(dataset="abalone"))
        'the embedded data simloss/data/abalone.data'
    """
    task = config.task_spec
    if config.data_dir is not None:
        return str(config.data_dir)
    if task.data.path is not None:
        return f"{task.data.path} (`data.path` of task file {task.file})"
    if task.data.kind == "factory":
        return f"the files of factory {task.data.factory} (task file {task.file})"
    return f"the embedded data simloss/data/{task.embedded}"


def comparable(fixed: dict[str, Any]) -> dict[str, Any]:
    """Fixed settings without the loss settings, as stored sweeps are compared.

    The loss settings (:data:`~simloss.experiments.config.LOSS_KEYS`) belong to
    the points; a stored sweep that keeps ``similarity`` among its fixed
    settings is compared without it.
    """
    return {k: v for k, v in fixed.items() if k not in LOSS_KEYS}


def sweep_base(fixed: dict[str, Any], local: dict[str, Any]) -> TrainConfig:
    """The base config of a stored sweep: its fixed settings plus this machine's local ones.

    The inverse of :func:`fixed_settings` (the loss and its parameter follow
    from each point, which :func:`simloss.experiments.config.point_config` sets).

    Example:
        >>> fixed = fixed_settings(TrainConfig(dataset="abalone", epochs=3, seed=4))
        >>> base = sweep_base(fixed, {"device": "cpu"})
        >>> point_config(base, "r", 0.5, 1).resolve() == TrainConfig(
        ...     dataset="abalone", epochs=3, seed=5, r=0.5, device="cpu").resolve()
        True
    """
    data = {k: v for k, v in comparable(fixed).items() if k not in _EXTRA_KEYS}
    data.update(local)
    return TrainConfig.from_dict(data)


def _sha256_file(path: Path, what: str) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"`{what}` file {path} does not exist")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_fingerprint(config: TrainConfig) -> dict[str, Any]:
    """The identity of a run's source data: files, bytes and a SHA-256 of their contents.

    A file (Abalone's ``abalone.data``, a table, an ``.npz``, a CIFAR-100
    tarball) is hashed whole; a folder is hashed over every file below it
    (hidden ones excepted), each entered with its path relative to the folder,
    its size and its bytes. An image manifest is hashed with every image it
    lists; a factory task with the factory's module file, the files and folders
    its task declares it reads (``data.files``) and ``data_dir``.
    The same data at another path or on another machine gives the same
    fingerprint; one changed byte gives another. The embedded Abalone data is
    its packaged file.

    Args:
        config: the sweep's base config (its task and ``data_dir``).

    Returns:
        ``{"files": n, "bytes": total, "sha256": hex}``.

    Raises:
        FileNotFoundError: the data does not exist.

    Example:
        >>> fp = data_fingerprint(TrainConfig(dataset="abalone"))
        >>> fp["files"], fp["bytes"] > 100_000, len(fp["sha256"])
        (1, True, 64)
    """
    task = config.task_spec
    source = task.data
    if config.data_dir is not None:
        path: Path | None = Path(config.data_dir)
    else:
        path = source.path
    if source.kind == "factory":
        from simloss.experiments.data.factory import import_factory

        function = import_factory(
            source.factory or "", "factory", None if task.file is None else task.file.parent
        )
        module = sys.modules.get(getattr(function, "__module__", ""), None)
        code = getattr(module, "__file__", None)
        files = [] if code is None or task.builtin else [(f"factory/{Path(code).name}", Path(code))]
        for index, declared in enumerate(source.files):
            if not declared.exists():
                raise FileNotFoundError(
                    f"File {declared} of `data.files` in task file {task.file} does not exist"
                )
            files += _listed(declared, f"files/{index}")
        if path is not None:
            files += _listed(path, "data")
        return _digest(files)
    if path is None:
        if source.embedded is None:
            raise ValueError(f"Expected `data_dir` for dataset {task.name!r}, but found None")
        packaged = resources.files("simloss").joinpath("data", source.embedded)
        with resources.as_file(packaged) as file:
            return _fingerprint(Path(file))
    if not path.exists():
        raise FileNotFoundError(f"Data {path} of dataset {task.name!r} does not exist")
    if source.kind == "images" and source.layout == "manifest" and path.is_file():
        from simloss.experiments.data.images import list_manifest

        images, _, _, _ = list_manifest(path, source.split_column)
        listed = [(path.name, path)] + [(f"images/{i}", f) for i, f in enumerate(images)]
        return _digest(listed)
    if source.kind == "arrays" and config.data_dir is None and source.path is None:
        arrays = [
            (name, Path(source.arrays[name]))
            for name in ("features_file", "labels_file", "split_file")
            if name in source.arrays
        ]
        return _digest(arrays)
    return _fingerprint(path)


def _listed(path: Path, prefix: str) -> list[tuple[str, Path]]:
    if path.is_file():
        return [(f"{prefix}/{path.name}", path)]
    return [(f"{prefix}/{p.relative_to(path).as_posix()}", p) for p in walk_files(path)]


def _fingerprint(path: Path) -> dict[str, Any]:
    if path.is_file():
        return _digest([(path.name, path)])
    return _digest(sorted(_listed(path, "")))


def _digest(files: list[tuple[str, Path]]) -> dict[str, Any]:
    digest = hashlib.sha256()
    total = 0
    for name, file in files:
        name = name.lstrip("/")
        if file.is_symlink() and not file.exists():  # a broken link: its target is its content
            digest.update(f"{name}\0broken link\0{os.readlink(file)}\0".encode())
            continue
        size = file.stat().st_size
        total += size
        digest.update(f"{name}\0{size}\0".encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return {"files": len(files), "bytes": total, "sha256": digest.hexdigest()}


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key=old (now new)`` for every key whose value differs, sorted by key."""
    keys = sorted(set(old) | set(new))
    return [f"{k}={old.get(k)!r} (now {new.get(k)!r})" for k in keys if old.get(k) != new.get(k)]


def _describe(data: dict[str, Any]) -> str:
    return f"{data.get('files')} file(s), {data.get('bytes')} bytes, sha256 {data.get('sha256')}"


def check_settings(
    stored: dict[str, Any],
    wanted: dict[str, Any],
    name: str,
    heartbeat_given: bool,
    *,
    data_place: str | None = None,
    files: dict[str, str] | None = None,
    kind: str = "Sweep",
) -> None:
    """Refuse a command whose sweep settings differ from the stored ones, naming them.

    Args:
        stored: the settings stored with the study (``dataset``, ``fixed``,
            ``heartbeat_interval`` and, since the data fingerprint was
            introduced, ``data``; ``param``, the parameter of the study's first
            grid, is not compared: a study may hold several losses).
        wanted: the same for this command.
        name: the study name (for the message).
        heartbeat_given: whether this command set the heartbeat interval.
        data_place: where this command's data is, in words (:func:`data_place`), for
            the message.
        files: this command's files compared by content (:func:`hashed_files`), for
            the message.
        kind: what the study is, for the messages (``"Sweep"``, ``"Tune"``).

    Raises:
        ValueError: a fixed setting, the data or the heartbeat differ.
    """
    advice = f"Fixed settings of a {kind.lower()} cannot change: use another --out or --study-name"
    if stored.get("dataset") != wanted["dataset"]:
        raise ValueError(
            f"{kind} {name!r} is over dataset {stored.get('dataset')!r}; this command asks for "
            f"{wanted['dataset']!r}. {advice}"
        )
    old_task = stored.get("fixed", {}).get("task_sha256")
    new_task = wanted["fixed"].get("task_sha256")
    if old_task != new_task:
        builtin = "none: the built-in dataset"
        raise ValueError(
            f"{kind} {name!r} was made with another declaration of task {wanted['dataset']!r} "
            f"(task file sha256 {old_task or builtin}, now {new_task or builtin}). "
            f"A {kind.lower()}'s runs must share their task: restore the file, or use another "
            "--out or --study-name"
        )
    old_fixed, new_fixed = comparable(stored.get("fixed", {})), comparable(wanted["fixed"])
    changed = [k for k in _HASHED_FILES.values() if old_fixed.get(k) != new_fixed.get(k)]
    if changed and old_fixed.get(changed[0]) is not None and new_fixed.get(changed[0]):
        key = changed[0]
        raise ValueError(
            f"{kind} {name!r} was made with another {key.removesuffix('_sha256')} file: "
            f"{(files or {}).get(key, 'its file')} changed (sha256 {old_fixed[key]}, now "
            f"{new_fixed[key]}). A {kind.lower()}'s runs must share their similarity: restore "
            "the file, or use another --out or --study-name"
        )
    diffs = differences(old_fixed, new_fixed)
    if diffs:
        raise ValueError(
            f"{kind} {name!r} was made with other fixed settings: {'; '.join(diffs)}. {advice}"
        )
    old_data = stored.get("data")
    if old_data is not None and old_data != wanted["data"]:
        raise ValueError(
            f"{kind} {name!r} was made on other data: {_describe(old_data)} (now "
            f"{_describe(wanted['data'])} in {data_place or 'this command'}). "
            f"A {kind.lower()}'s runs must share their data: use another --out or --study-name"
        )
    if heartbeat_given and stored.get("heartbeat_interval") != wanted["heartbeat_interval"]:
        raise ValueError(
            f"{kind} {name!r} uses heartbeat_interval={stored.get('heartbeat_interval')} s "
            f"(now {wanted['heartbeat_interval']}); every worker of a {kind.lower()} must use the same"
        )
