"""Shared fixtures: the read-only real data beside the project, and storage URLs for sweeps."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Run by tests/frameworks/test_keras_loss.py in a child process per Keras backend, not collected.
collect_ignore = ["frameworks/keras_checks.py"]

SHARED_DATA = Path(
    os.environ.get("SIMLOSS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def shared_path(*parts: str) -> Path:
    """Path under the shared data folder; skips the test with a reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (set SIMLOSS_SHARED_DATA)")
    return path


@pytest.fixture
def shared_data() -> Path:
    """The shared real-data folder (``../shared/data``); skips when absent."""
    return shared_path()


#: The PostgreSQL server the storage tests use (`bash scripts/postgres.sh start DIR` prints one).
POSTGRES_URL_VAR = "SIMLOSS_TEST_POSTGRES_URL"
#: That server's folder, for the test that restarts it (set only for a throw-away server).
POSTGRES_DIR_VAR = "SIMLOSS_TEST_POSTGRES_DIR"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for this test (dropped afterwards).

    Made on the server of ``SIMLOSS_TEST_POSTGRES_URL`` (whose user may create
    databases); the test skips, naming the variable, when it is unset. A set
    variable with no driver or no server fails the test: CI sets it.
    """
    admin = os.environ.get(POSTGRES_URL_VAR)
    if not admin:
        pytest.skip(
            f"no PostgreSQL server: set {POSTGRES_URL_VAR} (bash scripts/postgres.sh start DIR "
            "starts a throw-away one and prints its URL)"
        )
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(admin)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"simloss_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A storage URL several processes share: a new SQLite file, or a new PostgreSQL
    database (:func:`postgres_url`, which skips without a server)."""
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "shared.db")
    return str(request.getfixturevalue("postgres_url"))
