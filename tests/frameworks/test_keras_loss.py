"""simloss.keras.SimLoss on each Keras backend: the checks of keras_checks.py, one process each.

Keras binds its backend at import, so each backend's checks run in a child
process (``KERAS_BACKEND`` set, once per backend per session); each
``check_*`` function there is one test here, failing with its traceback.
TensorFlow is tested where it is installed and skipped otherwise.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
CHECKS_FILE = HERE / "keras_checks.py"
CHECKS = [
    node.name
    for node in ast.parse(CHECKS_FILE.read_text()).body
    if isinstance(node, ast.FunctionDef) and node.name.startswith("check_")
]
BACKENDS = ["jax", "torch", "tensorflow"]
_RESULTS: dict[str, dict[str, str | None]] = {}


def _backend_results(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str | None]:
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed (extra simloss[keras])")
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"Keras backend {backend} is not installed")
    if backend not in _RESULTS:
        out = tmp_path_factory.mktemp(f"keras-{backend}") / "results.json"
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(HERE)}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        done = subprocess.run(
            [sys.executable, str(CHECKS_FILE), str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        if done.returncode != 0 or not out.exists():
            pytest.fail(f"the {backend} checks did not run:\n{done.stdout}\n{done.stderr}")
        _RESULTS[backend] = json.loads(out.read_text())
    return _RESULTS[backend]


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_keras_backend(backend, check, tmp_path_factory):
    results = _backend_results(backend, tmp_path_factory)
    assert check in results, f"{check} did not run on {backend}"
    failure = results[check]
    if failure is not None:
        pytest.fail(f"{check} on the {backend} backend:\n{failure}", pytrace=False)
