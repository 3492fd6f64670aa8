"""What a storage's failures mean: one-line messages, lost connections, retrying.

Database errors arrive wrapped (Optuna's ``StorageInternalError`` around
SQLAlchemy's error around the driver's); :func:`storage_error` turns one into a
single line that names the storage (password hidden) and the driver's own
first line. :func:`reconnecting` repeats a storage call with backoff while a
database server cannot be reached (:func:`is_connection_error`), so that a
server restart in the middle of a sweep costs a wait, not a run.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import optuna

__all__ = [
    "RECONNECT_S",
    "driver_error",
    "hide_password",
    "is_connection_error",
    "is_storage_error",
    "named_storage_errors",
    "reconnecting",
    "scrub_password",
    "storage_error",
]

#: Seconds a sweep keeps retrying a database server it cannot reach before it gives up.
RECONNECT_S = 120.0
_T = TypeVar("_T")


def storage_error(url: str, exc: BaseException) -> RuntimeError:
    """A one-line error for a failure of the storage at ``url`` (password hidden).

    SQLAlchemy's and Optuna's messages span several lines (the statement, a
    link) and wrap the driver's error; the first line of the innermost error
    (e.g. SQLite's ``database or disk is full``) is kept.

    Example:
        >>> str(storage_error("postgresql://u:secret@db/s", OSError("refused\\nmore")))
        'storage postgresql://u:***@db/s failed: OSError: refused'
    """
    original = driver_error(exc)
    text = str(original).strip().splitlines()
    first = text[0] if text else ""
    first = scrub_password(first, url)
    return RuntimeError(f"storage {hide_password(url)} failed: {type(original).__name__}: {first}")


def driver_error(exc: BaseException) -> BaseException:
    """The innermost error below SQLAlchemy's (``.orig``) and Optuna's (``__cause__``) wrappers."""
    seen = {id(exc)}
    while True:
        inner = getattr(exc, "orig", None) or exc.__cause__
        if not isinstance(inner, BaseException) or id(inner) in seen:
            return exc
        seen.add(id(inner))
        exc = inner


def is_storage_error(exc: BaseException) -> bool:
    """Whether an error comes from the database (SQLAlchemy or Optuna's storage layer)."""
    import sqlalchemy.exc

    return isinstance(exc, (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError))


def is_connection_error(exc: BaseException) -> bool:
    """Whether an error says the database server could not be reached or dropped the connection.

    True for a connection SQLAlchemy found broken, for a session whose
    transaction such a break left pending (``PendingRollbackError``: Optuna
    rolls it back when the call fails), and for the DB-API
    ``OperationalError``/``InterfaceError`` of a database server's driver
    (refused connection, server shutting down or starting up, connection
    lost). Never for SQLite's own errors, whose ``OperationalError`` means a
    locked, full or damaged file that waiting does not mend.

    Example:
        >>> import sqlite3
        >>> is_connection_error(sqlite3.OperationalError("database or disk is full"))
        False
    """
    import sqlalchemy.exc

    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, sqlalchemy.exc.PendingRollbackError):
            return True
        inner = getattr(error, "orig", None) or error.__cause__
        error = inner if isinstance(inner, BaseException) else None
    original = driver_error(exc)
    if type(original).__module__.split(".")[0] in ("sqlite3", "pysqlite2", "sqlalchemy"):
        return False
    names = {cls.__name__ for cls in type(original).__mro__}
    return bool(names & {"OperationalError", "InterfaceError"})


@contextmanager
def named_storage_errors(url: str) -> Iterator[None]:
    """Turn every error of the storage at ``url`` raised inside into one :func:`storage_error` line.

    The one place a database's error becomes ours (as Optuna's
    ``_scoped_session`` turns SQL errors into its own); other errors pass as they are.

    Example:
        >>> with named_storage_errors("sqlite:///x.db"):
        ...     pass
    """
    try:
        yield
    except Exception as exc:
        if is_storage_error(exc):
            raise storage_error(url, exc) from exc
        raise


def reconnecting(
    call: Callable[[], _T],
    *,
    patience: float = RECONNECT_S,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> _T:
    """``call()``, repeated with backoff while the database server cannot be reached.

    A database server restarted or briefly unreachable fails the calls made
    meanwhile (:func:`is_connection_error`); the pool then opens new
    connections (pre-ping). The waits double from 0.5 s up to 8 s, each with
    +-25 % jitter so that many workers do not come back at the same instant,
    until ``patience`` seconds have passed since the first failure; then the
    last error is raised. Any other error is raised at once. ``call`` must be
    safe to repeat: it may have taken effect before its connection broke.

    Args:
        call: the storage call (no arguments).
        patience: seconds to keep trying.
        on_retry: called with the error and the wait before each new try (a log line).

    Returns:
        What ``call`` returns.

    Example:
        >>> reconnecting(lambda: 42)
        42
    """
    first_failure: float | None = None
    wait = 0.5
    while True:
        try:
            return call()
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            now = time.monotonic()
            first_failure = now if first_failure is None else first_failure
            if now - first_failure >= patience:
                raise
            pause = min(wait * random.uniform(0.75, 1.25), patience - (now - first_failure))
            if on_retry is not None:
                on_retry(exc, pause)
            time.sleep(max(pause, 0.0))
            wait = min(2 * wait, 8.0)


def hide_password(url: str) -> str:
    """A storage URL as shown in messages: every password in it replaced by ``***``.

    Hides the password of the credentials (``user:password@host``, with or
    without a ``scheme://``; a password holding an unencoded ``@`` included) and
    a ``password=`` query parameter (libpq accepts one in PostgreSQL URLs).

    Example:
        >>> hide_password("postgresql://simloss:secret@db:5432/sweeps")
        'postgresql://simloss:***@db:5432/sweeps'
        >>> hide_password("postgresql://simloss@db/sweeps?sslmode=require&password=secret")
        'postgresql://simloss@db/sweeps?sslmode=require&password=***'
        >>> hide_password("simloss:p@ss@db/sweeps")
        'simloss:***@db/sweeps'
    """
    if not isinstance(url, str):
        return url
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    rest = _QUERY_PASSWORD.sub(r"\1***", rest)
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        if ":" in credentials:
            rest = f"{credentials.split(':', 1)[0]}:***@{host}"
    return f"{scheme}{sep}{rest}"


# ``password=...`` in a URL's query string (up to the next ``&``).
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)


def scrub_password(text: str, url: str) -> str:
    """``text`` (e.g. a driver's message about ``url``) without the URL's password.

    The password is replaced raw and percent-decoded (libpq may quote either).

    Example:
        >>> scrub_password("no user 'u' with 'p%40ss' or 'p@ss'", "postgresql://u:p%40ss@db/x")
        "no user 'u' with '***' or '***'"
    """
    from urllib.parse import unquote

    _, sep, rest = url.partition("://")
    credentials = (rest if sep else url).split("?", 1)[0].rpartition("@")[0]
    secrets = []
    if ":" in credentials:
        secrets.append(credentials.split(":", 1)[1])
    secrets += [m.group(1) for m in re.finditer(r"[?&]password=([^&]*)", url, re.IGNORECASE)]
    pieces = {form for secret in secrets for form in (secret, unquote(secret)) if form}
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, "***")
    return text
