"""simloss.keras.SimLoss on each Keras backend: the checks of keras_checks.py, one process each.

Keras binds its backend at import, so each backend's checks run in a child
process (``KERAS_BACKEND`` set), started by tests/conftest.py as soon as
collection ends so that it runs beside the other tests; each ``check_*``
function there is one test here, failing with its traceback. TensorFlow is
tested where it is installed and skipped otherwise.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CHECKS_FILE = Path(__file__).parent / "keras_checks.py"
CHECKS = [
    node.name
    for node in ast.parse(CHECKS_FILE.read_text()).body
    if isinstance(node, ast.FunctionDef) and node.name.startswith("check_")
]
BACKENDS = ["jax", "torch", "tensorflow"]


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_keras_backend(backend, check, keras_results):
    results = keras_results(backend)
    assert check in results, f"{check} did not run on {backend}"
    failure = results[check]
    if failure is not None:
        pytest.fail(f"{check} on the {backend} backend:\n{failure}", pytrace=False)
