"""The core stays light: `import simloss` imports neither JAX nor Keras; a missing port names its extra."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


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
