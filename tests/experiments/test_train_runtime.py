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


def test_the_largest_seed_is_torchs() -> None:
    # torch's own range is the independent source: 2**64 - 1 is taken, 2**64 is not.
    torch.manual_seed(2**64 - 1)
    with pytest.raises((RuntimeError, ValueError)):
        torch.manual_seed(2**64)
    from simloss.experiments.config import TrainConfig

    assert TrainConfig(seed=2**64 - 1, split_seed=2**64 - 1).seed == 2**64 - 1
    for name in ("seed", "split_seed"):
        with pytest.raises(ValueError, match=f"Expected `{name}` in \\[0, 18446744073709551615\\]"):
            TrainConfig(**{name: 2**64})
    with pytest.raises(ValueError, match="non-negative int <= 18446744073709551615"):
        seed_everything(2**64)


def test_a_sweeps_last_seed_is_checked_before_any_work(tmp_path: Path) -> None:
    from simloss.experiments.config import TrainConfig
    from simloss.experiments.sweep import Grid, run_sweep

    base = TrainConfig(dataset="abalone", seed=2**64 - 2, epochs=1, progress=False)
    with pytest.raises(
        ValueError, match=r"seed` \+ runs - 1 <= .* found 18446744073709551614 \+ 2"
    ):
        run_sweep(base, Grid(param="r", values=(0.5,), runs=3), tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_threads_beyond_the_cores_are_refused_before_any_work(tmp_path: Path) -> None:
    # 4096 torch threads crash the process (a segmentation fault in a matrix product).
    import os

    from simloss.experiments._runtime import check_threads, usable_cores
    from simloss.experiments.config import TrainConfig
    from simloss.experiments.train import run_training

    assert usable_cores() == len(os.sched_getaffinity(0))
    check_threads(usable_cores())
    with pytest.raises(ValueError, match=f"Expected `num_threads` <= {usable_cores()} "):
        check_threads(usable_cores() + 1)
    config = TrainConfig(dataset="abalone", r=0.5, num_threads=4096, progress=False)
    with pytest.raises(ValueError, match="found 4096"):
        run_training(config, tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_json_files_with_a_key_twice_or_a_folder_are_refused(tmp_path: Path) -> None:
    from simloss.experiments._files import read_json_object

    twice = tmp_path / "c.json"
    twice.write_text('{"epochs": 1, "lr": 0.1, "epochs": 3}')
    assert json.loads(twice.read_text()) == {"epochs": 3, "lr": 0.1}  # what json keeps silently
    with pytest.raises(ValueError, match=r"each key once in config file .*c\.json.*'epochs'"):
        read_json_object(twice, "config file")
    nested = tmp_path / "n.json"
    nested.write_text('{"a": {"b": 1, "b": 2}}')
    with pytest.raises(ValueError, match="'b' more than once"):
        read_json_object(nested, "sweep file")
    with pytest.raises(IsADirectoryError, match="to be a file, but it is a folder"):
        read_json_object(tmp_path, "config file")


def test_an_atomic_write_onto_a_folder_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match=f"Expected {tmp_path} to be a file to write"):
        atomic_write_json(tmp_path, {"a": 1})
    assert list(tmp_path.iterdir()) == []  # no temporary file left


@pytest.mark.parametrize("command", ["sweep", "tune"])
def test_seeds_of_every_run_are_checked_before_any_work(command: str, tmp_path: Path) -> None:
    # Run i trains with seed + i: the last run's seed must be torch's too (2**64 - 1 at most).
    from simloss.experiments.config import TrainConfig
    from simloss.experiments.sweep import Grid, run_sweep
    from simloss.experiments.tune import run_tune

    base = TrainConfig(dataset="abalone", seed=2**64 - 2, epochs=1, limit=200, progress=False)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"Expected `seed` \+ runs - 1 <= 18446744073709551615"):
        if command == "sweep":
            run_sweep(base, Grid("r", (0.0,), 3), out)
        else:
            run_tune(base, out, objectives=["val_mae"], budget=100, runs=3)
    assert not out.exists()
