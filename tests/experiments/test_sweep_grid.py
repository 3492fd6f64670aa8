"""Grids, defaults, thread shares and fixed settings of sweeps (no training)."""

from __future__ import annotations

import numpy as np
import pytest

from simloss.experiments.config import TrainConfig
from simloss.experiments.sweep import (
    Grid,
    default_grid,
    fixed_settings,
    threads_per_worker,
)
from simloss.experiments.task import BUILTIN_TASKS as DATASETS


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("r=0:0.9:0.1", (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)),
        ("r=0,0.3,0.6,0.9", (0.0, 0.3, 0.6, 0.9)),
        ("l=0.99", (0.99,)),
        ("r = 0.2:0.2:0.5", (0.2,)),
        ("r=0:1e-9:1e-10", tuple(round(i * 1e-10, 10) for i in range(11))),
    ],
    ids=["range", "list", "single", "range-one", "tiny-steps"],
)
def test_parse(text: str, values: tuple[float, ...]) -> None:
    grid = Grid.parse(text, runs=3)
    assert grid.values == values
    assert grid.param == text.split("=")[0].strip()
    assert grid.runs == 3


def test_range_has_no_float_drift() -> None:
    # 0.1 * 3 == 0.30000000000000004 in binary floats; the grid value is 0.3 exactly.
    values = Grid.parse("r=0:0.9:0.1").values
    assert values[3] == 0.3
    assert values[7] == 0.7
    assert len(values) == 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0:0.9:0.1", "Expected a grid like"),
        ("r=0:0.9", "start:stop:step"),
        ("r=0:0.9:0", "step must be > 0"),
        ("r=0.5:0.1:0.1", "below start"),
        ("r=0:0.95:0.1", "whole number of steps"),
        ("r=a,b", "Expected a grid like"),
        ("x=0.1", "'r' or 'l'"),
        ("r=0.1,0.1", "distinct"),
        ("r=nan", "finite"),
    ],
    ids=[
        "no-param",
        "two-parts",
        "zero-step",
        "reversed",
        "off-grid",
        "words",
        "param",
        "dup",
        "nan",
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Grid.parse(text)


def test_runs_must_be_positive_int() -> None:
    with pytest.raises(ValueError, match="runs"):
        Grid("r", (0.0,), 0)
    with pytest.raises(ValueError, match="runs"):
        Grid("r", (0.0,), True)  # type: ignore[arg-type]


def test_points_are_run_major() -> None:
    grid = Grid("r", (0.0, 0.5, 0.9), 2)
    assert grid.points() == [(0.0, 0), (0.5, 0), (0.9, 0), (0.0, 1), (0.5, 1), (0.9, 1)]


def test_merged_is_a_union() -> None:
    merged = Grid("r", (0.0, 0.5), 2).merged(Grid("r", (0.3, 0.5), 1))
    assert merged == Grid("r", (0.0, 0.3, 0.5), 2)
    with pytest.raises(ValueError, match="over 'r'"):
        Grid("r", (0.0,), 1).merged(Grid("l", (0.0,), 1))


def test_paper_default_grids() -> None:
    r_grid = DATASETS["utkface"].grid
    l_grid = DATASETS["cifar100"].grid
    np.testing.assert_allclose(r_grid, np.arange(10) / 10)
    assert l_grid[-1] == 0.99 and len(l_grid) == 11
    for dataset in ("utkface", "afad", "abalone"):
        assert default_grid(dataset) == Grid("r", r_grid, 10)
    assert default_grid("cifar100", runs=2) == Grid("l", l_grid, 2)
    with pytest.raises(ValueError, match="dataset"):
        default_grid("mnist")


def test_threads_per_worker() -> None:
    assert threads_per_worker(1, cores=2) == 2
    assert threads_per_worker(2, cores=2) == 1
    assert threads_per_worker(3, cores=16) == 5
    assert threads_per_worker(8, cores=2) == 1
    assert threads_per_worker(1) >= 1
    with pytest.raises(ValueError, match="workers"):
        threads_per_worker(0)


def test_fixed_settings_leave_out_local_ones() -> None:
    base = TrainConfig(dataset="abalone", epochs=3, seed=5, device="cpu", num_threads=1)
    fixed = fixed_settings(base, "r")
    assert fixed["epochs"] == 3 and fixed["seed"] == 5
    assert fixed["model"] == "mlp" and fixed["monitor"] == "mae"  # resolved defaults
    for key in ("r", "data_dir", "device", "num_threads", "progress", "cache_dir"):
        assert key not in fixed
    # r in the base config does not matter: it is the swept parameter.
    assert fixed_settings(TrainConfig(dataset="abalone", epochs=3, seed=5, r=0.7), "r") == fixed


def test_fixed_settings_hash_vectors(tmp_path) -> None:
    vectors = tmp_path / "v.npy"
    np.save(vectors, np.eye(3, dtype=np.float32))
    copy = tmp_path / "other" / "v.npy"
    copy.parent.mkdir()
    copy.write_bytes(vectors.read_bytes())
    base = TrainConfig(dataset="cifar100", data_dir="x", vectors=str(vectors))
    moved = TrainConfig(dataset="cifar100", data_dir="y", vectors=str(copy))
    assert fixed_settings(base, "l") == fixed_settings(moved, "l")
    assert len(fixed_settings(base, "l")["vectors_sha256"]) == 64
    with pytest.raises(FileNotFoundError, match="vectors"):
        fixed_settings(TrainConfig(dataset="cifar100", data_dir="x", vectors="nope.npy"), "l")
