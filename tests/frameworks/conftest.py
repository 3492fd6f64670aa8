"""The Keras checks' child processes, one per backend, started as soon as collection ends.

Keras binds its backend at import, so ``keras_checks.py`` runs once per
backend in a child process (``KERAS_BACKEND`` set). The children start when
pytest has collected the session (only for the backends whose tests are
selected and installed), so they run beside the other tests instead of after
them; ``keras_results`` waits for a backend's child and reads its results.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent
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
