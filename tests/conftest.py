"""Shared fixtures: the read-only real data beside the project, and storage URLs for sweeps."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


# ---------------------------------------------------------------- the Keras checks
# The Keras checks' child processes, one per backend, started as soon as collection ends.
#
# Keras binds its backend at import, so ``keras_checks.py`` runs once per
# backend in a child process (``KERAS_BACKEND`` set). The children start when
# pytest has collected the session (only for the backends whose tests are
# selected and installed), so they run beside the other tests instead of after
# them; ``keras_results`` waits for a backend's child and reads its results.
# (Here, not in tests/frameworks/conftest.py: a second conftest module would shadow
# this one for the tests that import shared_path from it.)

HERE = Path(__file__).parent / "frameworks"
CHECKS_FILE = HERE / "keras_checks.py"
TIMEOUT_S = 1200


@dataclass
class _Child:
    process: subprocess.Popen[bytes]
    out: Path  # the results
    log: Path  # its stdout and stderr (a file: a pipe left unread could fill and block it)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


_CHILDREN: dict[str, _Child] = {}
_FOLDER = tempfile.TemporaryDirectory(prefix="simloss-keras-")


def missing_backend(backend: str) -> str | None:
    """Why the checks of ``backend`` cannot run here, or None."""
    if importlib.util.find_spec("keras") is None:
        return "keras is not installed (extra simloss[keras])"
    if importlib.util.find_spec(backend) is None:
        return f"Keras backend {backend} is not installed"
    return None


def _start(backend: str) -> _Child:
    if backend not in _CHILDREN:
        out = Path(_FOLDER.name) / f"{backend}.json"
        log = Path(_FOLDER.name) / f"{backend}.log"
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": _pythonpath()}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, str(CHECKS_FILE), str(out)],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        _CHILDREN[backend] = _Child(process, out, log)
    return _CHILDREN[backend]


def _pythonpath() -> str:
    """This folder (for ``reference.py``) and the caller's path (a source tree's ``src``)."""
    return os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)


def pytest_collection_finish(session: pytest.Session) -> None:
    backends = {
        item.callspec.params["backend"]
        for item in session.items
        if item.path == HERE / "test_keras_loss.py" and hasattr(item, "callspec")
    }
    for backend in sorted(backends):
        if missing_backend(backend) is None:
            _start(backend)


def pytest_sessionfinish(session: pytest.Session) -> None:
    for child in _CHILDREN.values():  # a run stopped early (-x) leaves none behind
        if child.process.poll() is None:
            child.process.kill()
            child.process.wait()


@pytest.fixture(scope="session")
def keras_results() -> Callable[[str], dict[str, str | None]]:
    """``results(backend)``: ``{check name: None or its traceback}``, from that backend's child."""
    cache: dict[str, dict[str, str | None]] = {}

    def results(backend: str) -> dict[str, str | None]:
        reason = missing_backend(backend)
        if reason is not None:
            pytest.skip(reason)
        if backend not in cache:
            child = _start(backend)
            try:
                child.process.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
                pytest.fail(f"the {backend} checks ran past {TIMEOUT_S} s:\n{child.output()}")
            if child.process.returncode != 0 or not child.out.exists():
                pytest.fail(f"the {backend} checks did not run:\n{child.output()}")
            cache[backend] = json.loads(child.out.read_text())
        return cache[backend]

    return results
