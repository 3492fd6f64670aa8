"""A Python factory and feature arrays as tasks: what they return is checked, as a table's cells are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from task_fixtures import write_abalone_npz, write_task

from simloss.experiments.config import TrainConfig
from simloss.experiments.data import load_data
from simloss.experiments.predict import load_run, predict_features
from simloss.experiments.train import run_training

FACTORY = """
import numpy as np
import torch
from simloss.experiments.data.abalone import read_abalone


def make_model(input_shape, num_outputs):
    return torch.nn.Sequential(torch.nn.Linear(input_shape[0], 32), torch.nn.ReLU(),
                               torch.nn.Linear(32, num_outputs))


def splits(split_seed=0):
    x, rings = read_abalone()
    order = np.random.default_rng(split_seed).permutation(len(rings))[:600]
    x, y = x[order], np.clip(rings[order], 4, 20)
    return {"train": (x[:400], y[:400]), "val": (x[400:500], y[400:500]),
            "test": (torch.from_numpy(x[500:]), torch.from_numpy(y[500:])), "model": make_model}


def wrong():
    return [1, 2, 3]


def unnamed():
    return {"train": 1, "val": 2}
"""


def _factory_task(tmp_path: Path, function: str) -> Path:
    (tmp_path / "mydata.py").write_text(FACTORY)
    return write_task(
        tmp_path / "f.toml",
        f'name = "f"\n[data]\nkind = "factory"\nfactory = "mydata:{function}"\n',
    )


def test_a_factory_task_trains_with_its_model_and_predicts(tmp_path: Path) -> None:
    task = _factory_task(tmp_path, "splits")
    record = run_training(
        TrainConfig(task=str(task), r=0.5, epochs=2, progress=False), tmp_path / "run"
    )
    assert record["config"]["model"] == "mydata:make_model"
    assert record["class_values"] == [float(v) for v in range(4, 21)]
    assert record["num_examples"] == {"train": 400, "val": 100, "test": 100}
    x = tmp_path / "x.npz"
    np.savez(x, X=np.zeros((3, 10), dtype=np.float32))
    assert len(predict_features(load_run(tmp_path / "run"), x)) == 3


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("wrong", r"Expected factory mydata:wrong to return a mapping .* but found list"),
        ("unnamed", r"Expected factory mydata:unnamed to return the keys \['train', 'val', 'test'\] .* missing \['test'\]"),
        ("absent", r"Expected factory 'mydata:absent' to be a callable in mydata, but found None"),
    ],
)  # fmt: skip
def test_a_factory_that_returns_the_wrong_types_is_named(
    tmp_path: Path, function: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        load_data(TrainConfig(task=str(_factory_task(tmp_path, function))))


def test_feature_arrays_are_checked_by_row_and_column(tmp_path: Path) -> None:
    path = write_abalone_npz(tmp_path)
    task = write_task(
        tmp_path / "a.toml",
        f'name = "a"\n[data]\nkind = "arrays"\npath = "{path}"\n[classes]\nrange = [4, 20]\noutside = "clip"\n',
    )
    assert load_data(TrainConfig(task=str(task))).num_classes == 17
    with np.load(path) as arrays:
        x, y = arrays["X"].astype(np.float64), arrays["y"]
    x[7, 4] = 1e300
    np.savez(path, X=x, y=y)
    with pytest.raises(
        ValueError, match=r"float32 range .*abalone.npz \(X\), but row 7, column 4 is 1e\+300"
    ):
        load_data(TrainConfig(task=str(task)))
    x[7, 4] = np.nan
    np.savez(path, X=x, y=y[:-1])
    with pytest.raises(ValueError, match=r"row 7, column 4 is nan"):
        load_data(TrainConfig(task=str(task)))
    np.savez(path, X=x[:, :], y=y[:-1])
    x[7, 4] = 0.5
    np.savez(path, X=x, y=y[:-1])
    with pytest.raises(
        ValueError,
        match=r"Expected labels y of shape \(4177,\) in .*abalone.npz, but found \(4176,\)",
    ):
        load_data(TrainConfig(task=str(task)))
