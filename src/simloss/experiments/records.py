"""Training records stored with a sweep: writing them to trials, reading them back.

A sweep (:mod:`simloss.experiments.sweep`) is an Optuna study. Each finished
trial carries the user attributes ``param`` (``"r"`` or ``"l"``), ``value``
(float), ``run`` (int), ``record`` (the training record of
:func:`simloss.experiments.train.run_training`) and ``record_path`` (the
record file, relative to the sweep folder), plus flat ``val_<metric>`` /
``test_<metric>`` attributes so that ``optuna-dashboard`` shows the metrics as
columns. :func:`load_records` reads them back from a sweep folder or from any
Optuna storage URL.

A sweep folder holds ``sweep.json`` (fixed settings, grid, storage URL, study
name) and, with the default storage, ``study.db`` (SQLite).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna

__all__ = [
    "DB_FILE",
    "SWEEP_FILE",
    "attach_record",
    "load_records",
    "open_storage",
    "point_key",
    "read_sweep_file",
    "resolve_source",
    "sqlite_url",
]

#: The sweep's settings file inside a sweep folder.
SWEEP_FILE = "sweep.json"
#: The default SQLite storage inside a sweep folder.
DB_FILE = "study.db"
#: Seconds SQLite waits for a lock held by another process before giving up.
SQLITE_TIMEOUT_S = 120.0
#: Decimals grid values are rounded to, so ``0.1 * 3`` and ``0.3`` are one point.
VALUE_DECIMALS = 10


def point_key(value: float, run: int) -> tuple[float, int]:
    """The identity of one grid point x run index (the value rounded against float drift).

    Example:
        >>> point_key(0.1 * 3, 2) == point_key(0.3, 2)
        True
    """
    if isinstance(run, bool) or not isinstance(run, int):
        raise TypeError(f"Expected `run` to be an int, but found {type(run).__name__} {run!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Expected `value` to be a number, but found {type(value).__name__}")
    return (round(float(value), VALUE_DECIMALS), run)


def sqlite_url(path: str | Path) -> str:
    """The SQLAlchemy URL of a SQLite file (absolute path).

    Example:
        >>> sqlite_url("/tmp/s/study.db")
        'sqlite:////tmp/s/study.db'
    """
    return "sqlite:///" + str(Path(path).resolve())


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = None,
    must_exist: bool = False,
    read_only: bool = False,
) -> optuna.storages.RDBStorage:
    """Open an Optuna RDB storage with settings fit for several processes.

    SQLite waits up to :data:`SQLITE_TIMEOUT_S` for locks instead of failing at
    once; other databases get pre-ping so that connections broken by a server
    restart are renewed.

    Args:
        url: an SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``, ...).
        heartbeat_interval: seconds between heartbeats of running trials;
            ``None`` disables the heartbeat.
        grace_period: seconds without a heartbeat after which a running trial
            counts as dead.
        max_retry: how often a dead worker's trial is put back in the queue
            (Optuna's ``RetryHeartbeatStaleTrialCallback``); used with the heartbeat.
        must_exist: for SQLite, refuse a file that does not exist (reading only).
        read_only: for SQLite, the caller only reads: the file is left as it is
            (otherwise it is switched to write-ahead logging and every
            transaction starts with ``BEGIN IMMEDIATE``, see :func:`_tune_sqlite`).

    Returns:
        The storage.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(
            f"Expected `url` to be a storage URL such as sqlite:///x.db, found {url!r}"
        )
    engine_kwargs: dict[str, Any]
    if url.startswith("sqlite:"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if must_exist and (not path or not Path(path).is_file()):
            raise FileNotFoundError(f"SQLite storage {url!r}: no such file {path!r}")
        engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    callback = None
    if heartbeat_interval is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=callback,
        )
    if url.startswith("sqlite:") and not read_only:
        _tune_sqlite(storage)
    return storage


def _tune_sqlite(storage: optuna.storages.RDBStorage) -> None:
    """Make SQLite transactions atomic across processes, and fast.

    Python's ``sqlite3`` driver runs a ``SELECT`` outside any transaction and
    opens one only at the first write, so Optuna's read-check-write steps (the
    ``WAITING -> RUNNING`` claim of a trial, failing a stale trial) are not
    atomic between processes: two workers could both claim one trial. Here every
    transaction starts with ``BEGIN IMMEDIATE``, which takes SQLite's write lock
    at once, so such steps run one process at a time (the driver's own
    transaction handling is switched off, as SQLAlchemy's documentation
    describes for pysqlite).

    The file uses write-ahead logging (a lasting property of the file): plain
    readers such as optuna-dashboard or :func:`load_records` do not block the
    sweep, and with ``synchronous=NORMAL`` commits do not wait for the disk
    (still consistent after a crash of the process; a power loss may drop the
    last commits).

    Applies to every connection the engine opens from now on; the connections
    opened to create the tables are closed.
    """
    import sqlalchemy

    def on_connect(connection: Any, record: Any) -> None:
        connection.isolation_level = None  # the driver issues no BEGIN of its own
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    sqlalchemy.event.listen(storage.engine, "connect", on_connect)
    sqlalchemy.event.listen(storage.engine, "begin", on_begin)
    storage.engine.dispose()


def read_sweep_file(folder: str | Path) -> dict[str, Any]:
    """Read a sweep folder's ``sweep.json``.

    Args:
        folder: the sweep folder.

    Returns:
        The parsed settings.
    """
    path = Path(folder) / SWEEP_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a sweep folder: {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or "study_name" not in data:
        raise ValueError(f"Expected {path} to be a sweep file with a 'study_name', found {data!r}")
    return data


def resolve_source(source: str | Path, study_name: str | None = None) -> tuple[str, str | None]:
    """Turn a sweep folder or a storage URL into ``(storage_url, study_name)``.

    Args:
        source: a sweep folder (with ``sweep.json``) or an Optuna storage URL.
        study_name: overrides the study name (needed for a URL holding several
            studies; ``None`` for a folder uses the one in ``sweep.json``).

    Returns:
        The storage URL and the study name (``None``: the storage's only study).
    """
    if isinstance(source, str) and "://" in source:
        return source, study_name
    if not isinstance(source, (str, Path)):
        raise TypeError(
            "Expected `source` to be a sweep folder or a storage URL, found "
            f"{type(source).__name__}"
        )
    folder = Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Expected `source` to be a sweep folder or a storage URL, but {source} is neither"
        )
    settings = read_sweep_file(folder)
    url = settings.get("storage") or sqlite_url(folder / DB_FILE)
    return url, study_name if study_name is not None else settings["study_name"]


def attach_record(
    storage: optuna.storages.BaseStorage,
    trial_id: int,
    record: Mapping[str, Any],
    record_path: str,
) -> None:
    """Store a training record with a running trial (user attributes).

    Sets ``record``, ``record_path`` and one flat attribute per metric
    (``val_acc``, ``test_mae``, ...) for the dashboard.

    Args:
        storage: the study's storage.
        trial_id: the storage's id of the trial (running).
        record: the record returned by ``run_training``.
        record_path: the record file, relative to the sweep folder.
    """
    metrics = record.get("metrics")
    if not isinstance(metrics, Mapping):
        raise ValueError(f"Expected the record to have a 'metrics' mapping, found {metrics!r}")
    storage.set_trial_user_attr(trial_id, "record", dict(record))
    storage.set_trial_user_attr(trial_id, "record_path", record_path)
    for split in ("val", "test"):
        for name, metric in (metrics.get(split) or {}).items():
            if isinstance(metric, (int, float)) and math.isfinite(metric):
                storage.set_trial_user_attr(trial_id, f"{split}_{name}", float(metric))


def _pick_study(storage: optuna.storages.BaseStorage, url: str, study_name: str | None) -> str:
    names = optuna.get_all_study_names(storage)
    if study_name is not None:
        if study_name not in names:
            raise ValueError(f"Expected a study named {study_name!r} in {url}, found {names}")
        return study_name
    if len(names) != 1:
        raise ValueError(
            f"Expected `study_name` for storage {url}, which holds {len(names)} studies: {names}"
        )
    return names[0]


def load_records(source: str | Path, study_name: str | None = None) -> list[dict[str, Any]]:
    """The records of a sweep's finished trials.

    Args:
        source: a sweep folder (``sweep.json`` names the storage and study) or an
            Optuna storage URL.
        study_name: the study; needed for a URL whose storage holds several.

    Returns:
        One dict per finished trial, sorted by (value, run): the training record
        plus the keys ``param``, ``value`` and ``run``. Raises ``ValueError`` if
        two finished trials hold the same grid point and run.

    Example:
        >>> import tempfile, optuna
        >>> from optuna.trial import create_trial
        >>> url = sqlite_url(tempfile.mkdtemp() + "/s.db")
        >>> study = optuna.create_study(study_name="demo", storage=url)
        >>> rec = {"metrics": {"val": {"mae": 1.5}, "test": {"mae": 1.7}}}
        >>> attrs = {"param": "r", "value": 0.3, "run": 0, "record": rec,
        ...          "record_path": "trials/r=0.3_run=0/record.json"}
        >>> study.add_trial(create_trial(value=1.5, user_attrs=attrs))
        >>> [(r["param"], r["value"], r["run"], r["metrics"]["test"]["mae"])
        ...  for r in load_records(url)]
        [('r', 0.3, 0, 1.7)]
    """
    url, name = resolve_source(source, study_name)
    storage = open_storage(url, must_exist=True, read_only=True)
    try:
        name = _pick_study(storage, url, name)
        study = optuna.load_study(study_name=name, storage=storage)
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        seen: dict[tuple[float, int], int] = {}
        records: list[dict[str, Any]] = []
        for trial in complete:
            attrs = trial.user_attrs
            missing = [k for k in ("param", "value", "run", "record") if k not in attrs]
            if missing:
                raise ValueError(
                    f"Expected finished trial {trial.number} of study {name!r} to carry the "
                    f"user attributes param, value, run and record, but {missing} are missing"
                )
            key = point_key(attrs["value"], attrs["run"])
            if key in seen:
                raise ValueError(
                    f"Study {name!r} holds two finished trials ({seen[key]} and {trial.number}) "
                    f"for {attrs['param']}={key[0]} run {key[1]}"
                )
            seen[key] = trial.number
            record = dict(attrs["record"])
            record.update(param=attrs["param"], value=key[0], run=key[1])
            records.append(record)
    finally:
        storage.remove_session()
        storage.engine.dispose()
    records.sort(key=lambda r: (r["value"], r["run"]))
    return records
