"""Seeds and devices, and the atomic writer behind every result file."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from simloss.experiments._files import atomic_path, atomic_write_json
from simloss.experiments._runtime import resolve_device, seed_everything


def test_seed_everything_seeds_every_generator() -> None:
    def draw() -> tuple[float, float, float, float]:
        g = seed_everything(7)
        return (random.random(), float(np.random.rand()), float(torch.rand(1)),  # noqa: NPY002
                float(torch.rand(1, generator=g)))  # fmt: skip

    assert draw() == draw()
    first = draw()
    seed_everything(8)
    assert random.random() != first[0]


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_seed_must_be_a_non_negative_int(seed: object) -> None:
    with pytest.raises(ValueError, match="Expected `seed` to be a non-negative int"):
        seed_everything(seed)  # type: ignore[arg-type]


def test_device_resolution() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="Expected `device`"):
        resolve_device("mps")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")


def test_atomic_write_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    with pytest.raises(ValueError):  # NaN is not JSON
        atomic_write_json(target, {"a": float("nan")})
    assert json.loads(target.read_text()) == {"a": 1}
