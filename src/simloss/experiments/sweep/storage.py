"""Where a sweep lives: its folder, its ``sweep.json`` and its Optuna storage.

A sweep folder holds ``sweep.json`` (fixed settings, grid, storage URL, study
name) and, with the default storage, ``study.db`` (SQLite). :func:`open_storage`
is the one way simloss opens an Optuna storage: for a sweep's workers (SQLite
tuned for several processes) or, with ``read_only=True``, for readers such as
``simloss report``, which then never write a byte, even to a zero-byte file or
a read-only folder. Damaged or missing storages give one-line errors that name
the file; a URL whose database driver is not installed names the driver and the
extra that installs it. What a storage's failures mean, and retrying a server
that cannot be reached, live in :mod:`~simloss.experiments.sweep.storage_errors`
(re-exported here).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna

from simloss._optional import install_hint
from simloss.experiments._files import read_json_object
from simloss.experiments.sweep.storage_errors import (
    RECONNECT_S,
    driver_error,
    hide_password,
    is_connection_error,
    is_storage_error,
    reconnecting,
    storage_error,
)

__all__ = [
    "DB_FILE",
    "RECONNECT_S",
    "SQLITE_TIMEOUT_S",
    "SWEEP_FILE",
    "TUNE_FILE",
    "check_driver",
    "dispose",
    "driver_error",
    "hide_password",
    "is_connection_error",
    "is_storage_error",
    "open_storage",
    "read_sweep_file",
    "reading_storage",
    "reconnecting",
    "resolve_source",
    "sqlite_path",
    "sqlite_url",
    "storage_error",
]

#: The sweep's settings file inside a sweep folder.
SWEEP_FILE = "sweep.json"
#: A tune's settings file inside a tune folder (``simloss tune``).
TUNE_FILE = "tune.json"
#: The default SQLite storage inside a sweep folder.
DB_FILE = "study.db"
#: Seconds SQLite waits for a lock held by another process before giving up.
SQLITE_TIMEOUT_S = 120.0
# The extra that installs the PostgreSQL driver (psycopg 3) and optuna-dashboard.
_DISTRIBUTED_EXTRA = "distributed"
# The tables every Optuna RDB storage has (a file without them is not one).
_OPTUNA_TABLES = ("studies", "trials", "version_info")


def sqlite_url(path: str | Path) -> str:
    """The SQLAlchemy URL of a SQLite file (absolute path).

    Example:
        >>> sqlite_url("/tmp/s/study.db")
        'sqlite:////tmp/s/study.db'
    """
    return "sqlite:///" + str(Path(path).resolve())


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (``None`` for an in-memory database).

    Example:
        >>> sqlite_path("sqlite:////tmp/s/study.db"), sqlite_path("sqlite://")
        (PosixPath('/tmp/s/study.db'), None)
    """
    path = url.split(":///", 1)[1] if ":///" in url else ""
    path = path.split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def _ro_uri(path: Path) -> str:
    """The SQLite URI that reads ``path`` without writing anything beside it.

    A reader of a write-ahead-log database normally creates its ``-wal`` and
    ``-shm`` files (and cannot, in a folder it may not write). When no ``-wal``
    file exists, no process has the database open and every commit is in the
    file itself, so it is read as an immutable file: no lock, no shared memory,
    no new file. With a ``-wal`` file (a sweep running, or one killed before it
    could fold its log back) the log is read too, as a plain read-only
    connection beside its files.
    """
    wal = path.with_name(path.name + "-wal")
    if _is_wal_database(path) and not wal.exists():
        return f"file:{path}?mode=ro&immutable=1"
    return f"file:{path}?mode=ro"


def _is_wal_database(path: Path) -> bool:
    """Whether a SQLite file is in write-ahead-log mode (header bytes 18-19 are 2)."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(20)
    except OSError:
        return False
    return (
        len(header) == 20 and header[:16] == b"SQLite format 3\x00" and header[18:20] == b"\x02\x02"
    )


def _check_sqlite_file(url: str, path: Path, *, must_exist: bool) -> None:
    # Readers look without leaving a trace (see _ro_uri); a writer's check may run
    # while another process writes, so it reads through the normal locks.
    """Refuse a SQLite file that is absent, damaged or not an Optuna storage, by name."""
    if not path.exists():
        if must_exist:
            raise FileNotFoundError(f"SQLite storage {url!r}: no such file {str(path)!r}")
        if not path.parent.is_dir():
            raise FileNotFoundError(
                f"Expected the folder of SQLite storage {url!r} to exist, but {path.parent} "
                "does not (create it first)"
            )
        return
    if not path.is_file():
        raise ValueError(f"Expected SQLite storage {url!r} to be a file, but {path} is not one")
    size = path.stat().st_size
    if size == 0:
        if must_exist:
            raise ValueError(
                f"Expected {path} to be an Optuna SQLite storage, but it is empty (0 bytes)"
            )
        return
    try:
        uri = _ro_uri(path) if must_exist else f"file:{path}?mode=ro"
        connection = sqlite3.connect(uri, uri=True, timeout=SQLITE_TIMEOUT_S)
        try:
            tables = {
                row[0]
                for row in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )
            }  # tables only: not indexes, nor SQLite's own (sqlite_sequence)
            check = connection.execute("PRAGMA quick_check").fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise ValueError(
            f"Expected {path} to be an Optuna SQLite storage, but SQLite cannot read it "
            f"({exc}; {size} bytes: truncated or damaged?)"
        ) from exc
    if check is None or check[0] != "ok":
        raise ValueError(
            f"Expected {path} to be an Optuna SQLite storage, but SQLite finds it damaged "
            f"({check[0] if check else 'no answer'}; {size} bytes)"
        )
    missing = [t for t in _OPTUNA_TABLES if t not in tables]
    # A writer may find the schema half made: another command started on the same new
    # file is creating Optuna's tables one by one (Optuna completes them). A table that
    # is not Optuna's makes the file another program's database, never to be written.
    others = sorted(tables - _optuna_schema())
    if missing and (must_exist or others):
        held = f" and holds other tables {others}" if others else ""
        raise ValueError(
            f"Expected {path} to be an Optuna SQLite storage, but it lacks the tables "
            f"{missing}{held}"
        )


def _optuna_schema() -> set[str]:
    """Every table Optuna's RDB storage creates (its models and Alembic's version table)."""
    from optuna.storages._rdb import models  # Optuna's own schema, read not copied

    return set(models.BaseModel.metadata.tables) | {"alembic_version"}


def check_driver(url: str) -> None:
    """Check that SQLAlchemy knows the URL's database and that its driver imports.

    SQLAlchemy picks the driver from the URL: ``postgresql+psycopg://`` is
    psycopg 3, ``postgresql+psycopg2://`` is psycopg2, and a bare
    ``postgresql://`` is SQLAlchemy's default, which is psycopg 3 from
    SQLAlchemy 2.1 on (psycopg2 before). ``simloss[distributed]`` installs
    psycopg 3 and SQLAlchemy >= 2.1, so the bare form works with it.

    Raises:
        ValueError: a URL SQLAlchemy cannot parse, or a database it does not
            know (``postgres://`` is not PostgreSQL's name there).
        ImportError: the driver is not installed (names it and what to install).

    Example:
        >>> check_driver("sqlite:///x.db")
        >>> check_driver("postgres://u@db/s")
        Traceback (most recent call last):
        ...
        ValueError: Expected a storage URL of a database SQLAlchemy knows, but 'postgres://u@db/s' names 'postgres'; write postgresql://... for PostgreSQL
    """
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    shown = hide_password(url)
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError as exc:
        raise ValueError(f"Expected a storage URL such as sqlite:///x.db, found {shown!r}") from exc
    authority = url.partition("://")[2].split("?", 1)[0]
    if not url.startswith("sqlite:") and authority.count("@") > 1:
        # SQLAlchemy would cut the host out of the password (and a driver's error quote it).
        raise ValueError(
            f"Expected the user name and password of storage URL {shown!r} to be "
            "percent-encoded ('@' as %40, e.g. urllib.parse.quote(password, safe='')), but "
            f"found {authority.count('@')} '@' before the database name"
        )
    try:
        dialect = parsed.get_dialect()
    except sqlalchemy.exc.NoSuchModuleError as exc:
        hint = "; write postgresql://... for PostgreSQL" if parsed.drivername == "postgres" else ""
        raise ValueError(
            "Expected a storage URL of a database SQLAlchemy knows, but "
            f"{shown!r} names {parsed.drivername!r}{hint}"
        ) from exc
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        driver = str(dialect.driver)
        if dialect.name != "postgresql":
            raise ImportError(
                f"storage {shown} needs the {dialect.name} driver {driver}, which cannot be "
                f"imported ({exc})"
            ) from exc
        alternative = "postgresql+psycopg2://" if driver == "psycopg" else "postgresql+psycopg://"
        implied = (
            f" (SQLAlchemy {sqlalchemy.__version__} reads postgresql:// as postgresql+{driver}://)"
            if "+" not in parsed.drivername
            else ""
        )
        raise ImportError(
            f"storage {shown} needs the PostgreSQL driver {driver}{implied}, which cannot be "
            f"imported ({exc}); install it (psycopg 3) with: {install_hint(_DISTRIBUTED_EXTRA)}, "
            f"or write {alternative}... to use the other driver if it is installed"
        ) from exc


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = None,
    read_only: bool = False,
    check_file: bool | None = None,
) -> optuna.storages.RDBStorage:
    """Open an Optuna RDB storage, for a sweep's workers or read-only.

    For writers, SQLite waits up to :data:`SQLITE_TIMEOUT_S` for locks instead of
    failing at once and runs every transaction with ``BEGIN IMMEDIATE`` in
    write-ahead-log mode (:func:`_tune_sqlite`); other databases get pre-ping so
    that connections broken by a server restart are renewed.

    Read-only (``read_only=True``): the storage must exist and hold Optuna's
    tables; nothing is created or migrated. SQLite files are opened with
    ``mode=ro``, PostgreSQL sessions with ``default_transaction_read_only``; any write attempt fails.

    Args:
        url: an SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``, ...).
        heartbeat_interval: seconds between heartbeats of running trials;
            ``None`` disables the heartbeat.
        grace_period: seconds without a heartbeat after which a running trial
            counts as dead.
        max_retry: how often a dead worker's trial is put back in the queue
            (Optuna's ``RetryHeartbeatStaleTrialCallback``); used with the heartbeat.
        read_only: open for reading only.
        check_file: check a SQLite file first (absent, damaged, not Optuna's);
            ``None``: when reading only. A sweep checks once, when it starts.

    Returns:
        The storage.

    Raises:
        ValueError: not a URL, or of a database SQLAlchemy does not know; a SQLite
            file that is damaged, truncated or not an Optuna storage (named); read
            only, a server database without Optuna's tables.
        ImportError: the URL's database driver is not installed (:func:`check_driver`).
        FileNotFoundError: a read-only SQLite file that does not exist, or the
            missing folder of a new SQLite file.
        RuntimeError: the database refuses the connection (its message, one line).
    """
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(
            "Expected `url` to be a storage URL such as sqlite:///x.db, found "
            f"{hide_password(url)!r}"
        )
    check_driver(url)
    engine_kwargs: dict[str, Any]
    sqlite = url.startswith("sqlite:")
    if sqlite:
        path = sqlite_path(url)
        if path is not None and (read_only if check_file is None else check_file):
            _check_sqlite_file(url, path, must_exist=read_only)
        engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
        if read_only and path is not None:
            uri = _ro_uri(path)
            engine_kwargs = {
                "creator": lambda: sqlite3.connect(
                    uri, uri=True, timeout=SQLITE_TIMEOUT_S, check_same_thread=False
                )
            }
    else:
        engine_kwargs = {"pool_pre_ping": True}
        if read_only and url.startswith(("postgresql", "postgres")):
            engine_kwargs["connect_args"] = {"options": "-c default_transaction_read_only=on"}
    callback = None
    if heartbeat_interval is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=callback,
                skip_table_creation=read_only,
            )
    except Exception as exc:
        if read_only and not sqlite:
            _check_server_tables(url, storage_error(url, exc))
        raise storage_error(url, exc) from exc
    if sqlite and not read_only:
        _tune_sqlite(storage)
    return storage


def _check_server_tables(url: str, error: RuntimeError) -> None:
    """Refuse, by name, a server database without Optuna's tables (after a failed read)."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url)
        try:
            tables = set(sqlalchemy.inspect(engine).get_table_names())
        finally:
            engine.dispose()
    except Exception:  # the server itself failed: its error says more
        return
    missing = [t for t in _OPTUNA_TABLES if t not in tables]
    if missing:
        raise ValueError(
            f"Expected {hide_password(url)} to be an Optuna storage, but the database lacks "
            f"the tables {missing} (no sweep has written to it)"
        ) from error


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
    readers such as optuna-dashboard or ``simloss report`` do not block the
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


def open_with_retry(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """Open a storage for writing; retry when another process creates its tables at once."""
    for attempt in range(attempts):
        try:
            return open_storage(url, check_file=True)
        except RuntimeError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def dispose(storage: optuna.storages.RDBStorage) -> None:
    """Close a storage's sessions and connections."""
    storage.remove_session()
    storage.engine.dispose()


@contextmanager
def reading_storage(url: str) -> Iterator[optuna.storages.RDBStorage]:
    """The storage at ``url`` opened read-only for the block, then closed.

    A stored attribute that is no JSON is named with the storage; another
    ``ValueError`` (what the block finds wrong with the study: named by the caller)
    passes as it is; any other error of a database that fails while being read
    becomes one :func:`storage_error` line naming the storage (password hidden).

    Example:
        >>> import tempfile
        >>> url = sqlite_url(tempfile.mkdtemp() + "/s.db")
        >>> _ = optuna.create_study(study_name="demo", storage=url)
        >>> with reading_storage(url) as storage:
        ...     optuna.get_all_study_names(storage)
        ['demo']
    """
    storage = open_storage(url, read_only=True)
    try:
        yield storage
    except json.JSONDecodeError as exc:  # an attribute Optuna stored as JSON is damaged
        raise ValueError(
            f"Expected the storage {hide_password(url)} to hold Optuna's JSON attributes, but "
            f"one is damaged ({exc})"
        ) from exc
    except ValueError:
        raise
    except Exception as exc:  # a database that fails while being read
        raise storage_error(url, exc) from exc
    finally:
        dispose(storage)


def read_sweep_file(folder: str | Path) -> dict[str, Any]:
    """Read a sweep folder's ``sweep.json``.

    Args:
        folder: the sweep folder.

    Returns:
        The parsed settings.
    """
    path = Path(folder) / SWEEP_FILE
    if not path.exists():  # a folder in its place: read_json_object says so
        raise FileNotFoundError(f"{folder} is not a sweep folder: {path} does not exist")
    data = read_json_object(path, "sweep file")
    if "study_name" not in data:
        # Not the data itself: it may hold the storage URL with its password.
        raise ValueError(
            f"Expected {path} to be a sweep file with a 'study_name', found the keys {sorted(data)}"
        )
    return data


def resolve_source(
    source: str | os.PathLike[str], study_name: str | None = None
) -> tuple[str, str | None]:
    """Turn a sweep or tune folder or a storage URL into ``(storage_url, study_name)``.

    Args:
        source: a sweep folder (with ``sweep.json``), a tune folder (with
            ``tune.json``) or an Optuna storage URL.
        study_name: overrides the study name (needed for a URL holding several
            studies; ``None`` for a folder uses the one in ``sweep.json``).

    Returns:
        The storage URL and the study name (``None``: the storage's only study).
    """
    if isinstance(source, str) and "://" in source:
        return source, study_name
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "Expected `source` to be a sweep folder or a storage URL, found "
            f"{type(source).__name__}"
        )
    folder = Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Expected `source` to be a sweep folder or a storage URL, but {folder} is neither"
        )
    if not (folder / SWEEP_FILE).is_file() and (folder / TUNE_FILE).is_file():
        settings = read_json_object(folder / TUNE_FILE, "tune file")  # a tune folder
        if not isinstance(settings.get("study_name"), str):
            raise ValueError(
                f"Expected {folder / TUNE_FILE} to be a tune file with a 'study_name', found the "
                f"keys {sorted(settings)}"
            )
    else:
        settings = read_sweep_file(folder)
    url = settings.get("storage") or sqlite_url(folder / DB_FILE)
    return url, study_name if study_name is not None else settings["study_name"]
