"""Doctest collection of the framework ports (pytest imports every module under src/simloss).

``simloss.keras`` imports Keras, which binds its backend at import: the main
test process uses the JAX backend unless ``KERAS_BACKEND`` says otherwise
(tests/frameworks/test_keras_loss.py runs the Keras checks on every backend
in child processes). A port whose packages are not installed is not collected.
"""

from __future__ import annotations

import importlib.util
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

collect_ignore: list[str] = []
if importlib.util.find_spec("jax") is None or importlib.util.find_spec("optax") is None:
    collect_ignore.append("src/simloss/jax")
if (
    importlib.util.find_spec("keras") is None
    or importlib.util.find_spec(os.environ["KERAS_BACKEND"]) is None
):
    collect_ignore.append("src/simloss/keras")
