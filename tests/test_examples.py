"""Every recipe in examples/ runs, as a user runs it, on tiny real data (a few steps).

Each recipe is a complete program run as a subprocess from a temporary folder,
with arguments that keep it to seconds; it must exit 0 and print its final
metrics (finite numbers). A recipe whose framework is not installed is skipped,
naming the extra; CI installs them all (the ``test`` extra includes them).
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# recipe -> (the module its extra provides, the extra, tiny arguments, metrics it must print)
RECIPES = {
    "lightning_abalone.py": ("lightning", "lightning", ["--epochs=1"], ("val_acc", "val_mae")),
    "hf_trainer_text.py": (
        "transformers",
        "hf",
        ["--max-steps=3", "--train-rows=64", "--eval-rows=32"],
        ("eval_acc", "eval_mae", "eval_loss"),
    ),
    "skorch_grid_search.py": (
        "skorch",
        "skorch",
        ["--epochs=2", "--rows=600", "--r", "0", "0.9"],
        ("MAE",),
    ),
    "compile_autocast.py": (
        "torch",
        "core",
        ["--epochs=1", "--max-steps=5"],
        ("test_acc", "test_mae"),
    ),
}


def test_every_example_has_a_test() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(RECIPES)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_example_runs(name: str, tmp_path: Path) -> None:
    module, extra, args, printed = RECIPES[name]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{name} needs simloss[{extra}] ({module} is not installed)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stderr[-4000:]}"
    last = result.stdout.strip().splitlines()[-1]
    for metric in printed:
        values = re.findall(rf"{metric}=(\S+)", last)
        assert values, f"{name} did not print {metric}= last: {last!r}"
        assert all(math.isfinite(float(v)) for v in values), last
