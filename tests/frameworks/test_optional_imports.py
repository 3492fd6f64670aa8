"""The core stays light: `import simloss` imports neither JAX nor Keras; a missing port names its fix.

A missing package names its extra; Keras installed without a usable backend names
``KERAS_BACKEND``; the frameworks page runs as a reader runs it, with no backend set.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )


def test_import_simloss_imports_neither_jax_nor_keras():
    done = _run(
        "import sys, simloss, simloss.similarity, simloss.metrics\n"
        "print(sorted(m for m in ('jax', 'keras', 'optax', 'tensorflow') if m in sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(("module", "extra"), [("jax", "jax"), ("keras", "keras")])
def test_a_missing_framework_raises_an_import_error_naming_the_extra(module, extra):
    done = _run(f"import sys\nsys.modules[{module!r}] = None\nimport simloss.{module}")
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError") and f"pip install 'simloss[{extra}]'" in last, last


def _without_backend(tmp_path: Path) -> dict[str, str]:
    """A reader's environment: no KERAS_BACKEND, no ~/.keras config, TensorFlow absent."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path)
    return env


_NO_TENSORFLOW = "import sys\nsys.modules['tensorflow'] = None\n"


@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="keras is not installed")
def test_keras_without_a_backend_names_keras_backend_not_the_extra(tmp_path):
    done = _run(_NO_TENSORFLOW + "import simloss.keras", env=_without_backend(tmp_path))
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError") and "KERAS_BACKEND=torch" in last, last
    assert "simloss[keras]" not in last, last


@pytest.mark.skipif(
    importlib.util.find_spec("keras") is None or importlib.util.find_spec("jax") is None,
    reason="the page's block needs keras and jax",
)
def test_the_frameworks_page_runs_without_keras_backend_set(tmp_path):
    page = (ROOT / "docs" / "frameworks.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "simloss.keras" in b]
    done = _run(_NO_TENSORFLOW + block, env=_without_backend(tmp_path))
    assert done.returncode == 0, done.stderr
