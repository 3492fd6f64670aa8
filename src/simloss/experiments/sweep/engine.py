"""The sweep engine: one folder, one study, the workers; what a sweep, a tune and a benchmark share.

A command on the engine (``simloss sweep``, ``simloss tune``) makes the same
steps, each one function here:

1. :func:`check_engine_args`: its arguments, before any work;
2. :func:`prepare_folder`: the folder checked (it holds only the command's
   own entries), the data fetched and fingerprinted, the workers' local settings;
3. under :func:`folder_lock`, :func:`folder_storage` (the storage URL and
   study name the folder already has, else the arguments), then
   :func:`study_session` (create or load the study) and :func:`claim_settings`
   (store the command's settings, or check them against the stored ones);
   the command enqueues its trials (:mod:`.queue`) and writes its settings
   file (:func:`write_settings_file`);
4. :func:`run_engine`: the worker processes (:mod:`.workers`), each claiming,
   training and recording trials (:mod:`.trials`) until none is left.

Every storage error inside becomes one line naming the server
(:func:`~simloss.experiments.sweep.storage_errors.named_storage_errors`).
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import optuna

from simloss.experiments._files import atomic_write_json
from simloss.experiments._runtime import resolve_device
from simloss.experiments.config import MAX_SEED, TrainConfig
from simloss.experiments.sweep.settings import LOCAL_KEYS, check_settings, data_fingerprint
from simloss.experiments.sweep.storage import (
    DB_FILE,
    SWEEP_FILE,
    check_driver,
    dispose,
    hide_password,
    open_with_retry,
    sqlite_path,
    sqlite_url,
)
from simloss.experiments.sweep.storage_errors import (
    named_storage_errors,
    reconnecting,
    storage_error,
)
from simloss.experiments.sweep.trials import DiskFullError, WorkerArgs
from simloss.experiments.sweep.workers import Progress, WorkerLoop, run_workers, work

__all__ = [
    "LOCK_FILE",
    "SWEEP_ENTRIES",
    "check_engine_args",
    "check_storage_arg",
    "check_study_name",
    "check_sweep_folder",
    "claim_settings",
    "folder_lock",
    "folder_storage",
    "insert_once",
    "prepare_folder",
    "run_engine",
    "startup",
    "stored_url",
    "study_session",
    "worker_args",
    "worker_slot",
    "write_settings_file",
]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

#: The lock file that serialises the setup of the commands sharing one folder.
LOCK_FILE = ".sweep.lock"


#: What a sweep writes into its folder (``report`` is ``simloss report``'s default output).
SWEEP_ENTRIES: frozenset[str] = frozenset(
    {
        SWEEP_FILE,
        DB_FILE,
        *(f"{DB_FILE}{suffix}" for suffix in ("-wal", "-shm", "-journal")),
        LOCK_FILE,
        "trials",
        "logs",
        "report",
    }
)


def check_sweep_folder(
    out: Path, entries: frozenset[str] = SWEEP_ENTRIES, *, what: str = "sweep"
) -> None:
    """Refuse a sweep folder that holds anything a sweep does not write.

    A new or empty folder starts a sweep; one holding only a sweep's entries
    (:data:`SWEEP_ENTRIES`) resumes it. Anything else (a ``simloss train`` run's
    ``model.pt``, a tune's ``tune.json``, a user's files) would end up beside
    the sweep's files: a folder never holds the files of two different runs.

    Args:
        out: the folder.
        entries: the names the command writes there (a tune passes its own).
        what: the command's kind of folder, for the messages.

    Raises:
        FileExistsError: ``out`` is a file, or holds entries the command does not write.
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"Expected the {what} folder {out} to be a folder, but it is a file")
    foreign = sorted(p.name for p in out.iterdir() if p.name not in entries) if out.is_dir() else []
    if foreign:
        raise FileExistsError(
            f"Expected the {what} folder {out} to be new, empty or a {what}'s, but it also "
            f"holds {foreign[:5]}{' ...' if len(foreign) > 5 else ''}; choose another --out"
        )


def check_engine_args(
    base: TrainConfig,
    runs: int,
    *,
    heartbeat_interval: int | None,
    poll_interval: float,
    storage: str | None,
    study_name: str | None,
) -> str | None:
    """The checks of every command on the sweep engine (sweep, tune), before any work.

    Args:
        base: the runs' settings; run ``i`` trains with seed ``base.seed + i``.
        runs: runs per point (seeds ``base.seed`` to ``base.seed + runs - 1``).
        heartbeat_interval: seconds between heartbeats, an int >= 1, or ``None``.
        poll_interval: seconds between progress polls, > 0.
        storage: an Optuna storage URL, or ``None`` for the folder's SQLite file.
        study_name: the study's name, or ``None`` for the default.

    Returns:
        ``storage`` as the settings file keeps it (:func:`check_storage_arg`).

    Raises:
        ValueError: an argument out of range, naming it.
    """
    if heartbeat_interval is not None and (
        isinstance(heartbeat_interval, bool)
        or not isinstance(heartbeat_interval, int)
        or heartbeat_interval < 1
    ):
        raise ValueError(
            "Expected `heartbeat_interval` to be an int >= 1 (seconds), found "
            f"{heartbeat_interval!r}"
        )
    if not poll_interval > 0:
        raise ValueError(f"Expected `poll_interval` > 0, found {poll_interval!r}")
    if base.split_per_run and base.split_seed + runs - 1 > MAX_SEED:
        raise ValueError(
            f"Expected `split_seed` + runs - 1 <= {MAX_SEED} (run i splits with split_seed + i), "
            f"but found {base.split_seed} + {runs - 1}"
        )
    if base.seed + runs - 1 > MAX_SEED:
        raise ValueError(
            f"Expected `seed` + runs - 1 <= {MAX_SEED} (run i trains with seed + i), but found "
            f"{base.seed} + {runs - 1}"
        )
    resolve_device(base.device)
    if storage is not None:
        storage = check_storage_arg(storage)
    check_study_name(study_name)
    return storage


def prepare_folder(
    base: TrainConfig,
    out_dir: str | Path,
    threads: int,
    entries: frozenset[str] = SWEEP_ENTRIES,
    *,
    what: str = "sweep",
) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """Check and create a sweep's (or tune's) folder and fingerprint its data.

    The data is fetched first when ``base.download`` asks for it (it must be there
    to be fingerprinted); the folder is checked (:func:`check_sweep_folder`)
    before anything is written.

    Returns:
        The absolute folder, the data fingerprint and the workers' local settings
        (where and how to run: data and cache folders, device, ``threads``).
    """
    if base.download:
        from simloss.experiments.data import load_data

        load_data(base)
    out = Path(out_dir).resolve()
    check_sweep_folder(out, entries, what=what)
    data = data_fingerprint(base)
    out.mkdir(parents=True, exist_ok=True)
    local = {k: getattr(base, k) for k in LOCAL_KEYS}
    local.update(progress=False, num_threads=threads)
    return out, data, local


def check_storage_arg(url: str) -> str:
    """Check a ``storage`` argument and return it as the settings file keeps it.

    Refused: not a URL of a known database (with its driver installed), an
    in-memory SQLite database (private to one process: the workers would not
    share it), a SQLite file in a missing folder. A relative SQLite path is made
    absolute (against the current folder), so that a rerun from another folder
    opens the same file instead of a new, empty study.

    Example:
        >>> check_storage_arg("sqlite://")
        Traceback (most recent call last):
        ...
        ValueError: Expected `storage` to name a SQLite file (an in-memory database is private to one process and lost at its end), but found 'sqlite://'
    """
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(
            f"Expected `storage` to be a storage URL such as sqlite:///x.db or "
            f"postgresql://user@host/db, but found {hide_password(url)!r}"
        )
    check_driver(url)  # a database SQLAlchemy knows, with its driver installed
    if not url.startswith("sqlite:"):
        return url
    path = sqlite_path(url)
    if path is None or "mode=memory" in url:
        raise ValueError(
            "Expected `storage` to name a SQLite file (an in-memory database is private to "
            f"one process and lost at its end), but found {url!r}"
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"Expected the folder of --storage {url!r} to exist, but {path.parent} does not "
            "(create it first)"
        )
    if not path.is_absolute():
        query = url.partition("?")[2]
        url = sqlite_url(path) + (f"?{query}" if query else "")
    return url


def check_study_name(study_name: str | None) -> None:
    """Refuse a ``study_name`` argument that is not a non-empty string (``None``: the default).

    An empty name would otherwise fall back to the default study, unnoticed.

    Example:
        >>> check_study_name("")
        Traceback (most recent call last):
        ...
        ValueError: Expected `study_name` to be a non-empty name, but found ''
    """
    if study_name is not None and (not isinstance(study_name, str) or not study_name.strip()):
        raise ValueError(f"Expected `study_name` to be a non-empty name, but found {study_name!r}")


@contextmanager
def folder_lock(out: Path) -> Iterator[None]:
    """Serialise the setup of processes that share one sweep (or tune) folder."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover (Windows): the storage's own locking remains
        yield
        return
    with open(out / LOCK_FILE, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def folder_storage(
    out: Path,
    previous: dict[str, Any] | None,
    default_study: str,
    storage: str | None,
    study_name: str | None,
) -> tuple[str, str]:
    """The storage URL and study name of a folder: those it has, else the arguments or defaults.

    Args:
        out: the folder (``study.db`` there is the default storage).
        previous: the folder's settings file (``sweep.json``, ``tune.json``), if any.
        default_study: the study name when neither ``previous`` nor ``study_name`` gives one.
        storage, study_name: this command's arguments (``None``: not given).

    Raises:
        ValueError: an argument differs from the folder's.
    """
    default = sqlite_url(out / DB_FILE)
    if previous is not None:
        before = previous.get("storage") or default
        if storage is not None and storage != before:
            raise ValueError(
                f"Expected `storage` {hide_password(before)!r} (the one of the study in {out}), "
                f"but found {hide_password(storage)!r}; use another --out for another storage"
            )
        if study_name is not None and study_name != previous["study_name"]:
            raise ValueError(
                f"Expected `study_name` {previous['study_name']!r} (the one of the study in "
                f"{out}), but found {study_name!r}; use another --out for another study"
            )
        storage = storage or previous.get("storage")
        study_name = previous["study_name"]
    return storage or default, study_name or default_study


@contextmanager
def study_session(
    url: str,
    name: str,
    *,
    directions: Sequence[str],
    metric_names: Sequence[str] | None = None,
) -> Iterator[optuna.Study]:
    """The study ``name`` at ``url``, created with ``directions`` (``"minimize"``/``"maximize"``)
    or loaded; the storage is closed after the block. Run it through :func:`startup` (retries
    while a database server cannot be reached, one-line errors).

    Args:
        url: the storage URL.
        name: the study.
        directions: one per objective, used when the study is created.
        metric_names: the objectives' names (shown by optuna-dashboard), set at creation.
    """
    storage = open_with_retry(url)
    try:
        try:
            study = optuna.create_study(
                study_name=name,
                storage=storage,
                directions=[optuna.study.StudyDirection[d.upper()] for d in directions],
            )
            if metric_names is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    study.set_metric_names(list(metric_names))
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(study_name=name, storage=storage)
        yield study
    finally:
        dispose(storage)


def insert_once(study: optuna.Study, key: str, value: Any, *, system: bool = False) -> bool:
    """Store a user attribute of ``study`` only where it has none yet, in one atomic insert.

    Optuna's ``set_user_attr`` reads, then inserts or overwrites: two commands
    that both find an attribute missing both write it, and the later one wins
    after the earlier one has gone on. The storage's table holds one row per
    study and key (a unique constraint), so an insert either creates the
    attribute or fails because another command created it first: the first
    writer wins, on SQLite and on a database server alike.

    Args:
        study: the study.
        key, value: the attribute (``value`` JSON-serialisable).
        system: a system attribute (Optuna's own, not shown as a user attribute).

    Returns:
        Whether this call stored the value (``False``: the attribute existed).
    """
    import sqlalchemy
    from optuna.storages._rdb import models  # the RDB storage's own table of study attributes

    storage = study._storage
    backend: Any = getattr(storage, "_backend", storage)  # optuna wraps an RDB storage in a cache
    model = models.StudySystemAttributeModel if system else models.StudyUserAttributeModel
    table = model.__table__
    row = {"study_id": study._study_id, "key": key, "value_json": json.dumps(value)}
    try:
        with backend.engine.begin() as connection:
            connection.execute(sqlalchemy.insert(table).values(**row))
    except sqlalchemy.exc.IntegrityError:
        return False
    return True


def worker_slot(study: optuna.Study, index: int, *, step: int = 1000) -> int:
    """A number no other worker of any command on this study holds: ``index``, else
    ``index + step``, ``index + 2 step``, ...

    The workers of one command (indices 0, 1, ...) get their own indices; a
    second command's workers started against the same study (another machine)
    get others, so what depends on it (a tune's sampler seed) differs between
    any two workers. Claimed by :func:`insert_once` on a system attribute.
    """
    slot = index
    while not insert_once(study, f"simloss:worker:{slot}", {"pid": os.getpid()}, system=True):
        slot += step
    return slot


def startup(url: str, call: Callable[[], _T]) -> _T:
    """A command's start-up step on the storage (create or load the study, claim settings,
    enqueue), repeated with backoff while a database server cannot be reached, as the
    workers repeat theirs (:func:`~simloss.experiments.sweep.storage_errors.reconnecting`);
    a step must be safe to repeat. When the server stays away, or for any other storage
    error, one line naming it (host and port, never the password).
    """

    def note(exc: BaseException, wait: float) -> None:
        logger.warning("%s; retrying in %.1f s", storage_error(url, exc), wait)

    with named_storage_errors(url):
        return reconnecting(call, on_retry=note)


def claim_settings(
    study: optuna.Study,
    attr: str,
    wanted: dict[str, Any],
    *,
    url: str,
    kind: str,
    heartbeat_given: bool,
    data_place: str | None,
    files: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The settings stored with a study under ``attr``: this command's if it is new, else checked.

    A new study gets ``wanted`` by :func:`insert_once` (the first of several
    commands started together wins; the others check against its settings);
    a study with settings must have the same fixed settings and data
    (:func:`~simloss.experiments.sweep.settings.check_settings`); a study with
    trials or other attributes but no settings, read after them, is someone else's.

    Raises:
        ValueError: the study is not a simloss one of this ``kind``, or its
            settings differ (naming what).
    """
    name = study.study_name
    stored = study.user_attrs.get(attr)
    if stored is None:
        trials = study.get_trials(deepcopy=False)
        attrs = study.user_attrs  # read after the trials: a peer's settings show here
        stored = attrs.get(attr)
        if stored is None and (trials or attrs):
            raise ValueError(
                f"Study {name!r} in {hide_password(url)} exists but is no simloss "
                f"{kind.lower()}; choose another --study-name"
            )
        if stored is None:
            insert_once(study, attr, wanted)
            stored = study.user_attrs[attr]  # ours, or the peer's that was first
    check_settings(
        stored, wanted, name, heartbeat_given, data_place=data_place, files=files, kind=kind
    )
    return dict(stored)


def write_settings_file(path: Path, content: dict[str, Any], url: str) -> None:
    """Write a folder's settings file (``sweep.json``, ``tune.json``); a URL with a password
    makes it readable by its owner only."""
    atomic_write_json(path, content, private=hide_password(url) != url)


def worker_args(
    out: Path,
    url: str,
    name: str,
    local: dict[str, Any],
    *,
    threads: int,
    heartbeat_interval: int,
    poll_interval: float,
) -> WorkerArgs:
    """What every worker process of this command gets (this process is the parent)."""
    return WorkerArgs(
        out_dir=str(out),
        url=url,
        study_name=name,
        local=local,
        threads=threads,
        heartbeat_interval=heartbeat_interval,
        poll_interval=poll_interval,
        parent_pid=os.getpid(),
    )


def run_engine(
    args: WorkerArgs,
    workers: int,
    monitor: Progress,
    loop: WorkerLoop = work,
) -> list[str]:
    """Run ``workers`` worker processes (one in this process) until no trial is left.

    Returns:
        One line per worker process that exited abnormally.

    Raises:
        RuntimeError: the disk is full, or the storage failed (one line naming it).
    """
    try:
        with named_storage_errors(args.url):
            return run_workers(args, workers, monitor, loop=loop)
    except DiskFullError as exc:
        raise RuntimeError(f"{exc}. Free disk space and rerun the same command") from exc


def stored_url(out: Path, url: str) -> str | None:
    """The URL as a settings file keeps it: ``None`` for the folder's own ``study.db``.

    The default storage is written as null, so the folder can move.
    """
    return None if url == sqlite_url(out / DB_FILE) else url
