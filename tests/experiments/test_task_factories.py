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


def keyerror():
    return {}["x"]


def runtime(split_seed=0):
    raise RuntimeError("the database is down\\n(retry later)")


class Broken(torch.utils.data.Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, i):
        raise IndexError(f"no item {i}")


def broken_items():
    x, y = splits()["train"]
    return {"train": Broken(), "val": (x, y), "test": (x, y)}


def bad_model(input_shape, num_outputs):
    raise TypeError("make_model() got shapes it cannot use")
"""


def _factory_task(tmp_path: Path, function: str) -> Path:
    (tmp_path / "mydata.py").write_text(FACTORY)
    return write_task(
        tmp_path / "f.toml",
        f'name = "f"\n[data]\nkind = "factory"\nfactory = "mydata:{function}"\nfiles = []\n',
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


READER = """
import numpy as np
from pathlib import Path


def splits():
    table = np.loadtxt(Path(__file__).parent / "rings.csv", delimiter=",")
    x, y = table[:, :-1], table[:, -1].astype(int)
    return {"train": (x[:60], y[:60]), "val": (x[60:80], y[60:80]), "test": (x[80:], y[80:])}
"""


def test_a_sweep_refuses_a_changed_file_the_factory_declares(tmp_path: Path) -> None:
    from simloss.experiments.sweep import Grid, run_sweep

    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.normal(size=(100, 3)), np.arange(100) % 3])
    np.savetxt(tmp_path / "rings.csv", rows, delimiter=",", fmt="%.6f")
    (tmp_path / "reader.py").write_text(READER)
    task = write_task(
        tmp_path / "r.toml",
        'name = "r"\n[data]\nkind = "factory"\nfactory = "reader:splits"\nfiles = ["rings.csv"]\n',
    )
    base = TrainConfig(task=str(task), epochs=1, progress=False, num_threads=1)
    assert run_sweep(base, Grid("r", (0.5,), 1), tmp_path / "s").ok
    rows[5, 0] += 1.0  # one value of the factory's own data
    np.savetxt(tmp_path / "rings.csv", rows, delimiter=",", fmt="%.6f")
    with pytest.raises(ValueError, match=r"was made on other data: 2 file\(s\)"):
        run_sweep(base, Grid("r", (0.5,), 1), tmp_path / "s")


def test_a_factory_task_must_list_the_files_it_reads(tmp_path: Path) -> None:
    task = _factory_task(tmp_path, "splits")
    task.write_text(task.read_text().replace("files = []\n", ""))
    with pytest.raises(
        ValueError,
        match=r"Expected `data.files` in .*f.toml to be the list of files and folders the "
        r"factory reads besides its module \(\[\] for none; .*\), but found None",
    ):
        load_data(TrainConfig(task=str(task)))
    task.write_text(task.read_text().replace('splits"\n', 'splits"\nfiles = ["nope.csv"]\n'))
    with pytest.raises(FileNotFoundError, match=r"File .*nope.csv of `data.files` in task file"):
        load_data(TrainConfig(task=str(task)))


def test_object_arrays_are_refused_naming_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "o.npz"
    x = np.random.default_rng(0).normal(size=(30, 2))
    y = np.array([("a", "b", "c")[i % 3] for i in range(30)], dtype=object)
    np.savez(path, X=x, y=y)
    task = write_task(
        tmp_path / "o.toml",
        f'name = "o"\n[data]\nkind = "arrays"\npath = "{path}"\n[classes]\nordered = false\n',
    )
    with pytest.raises(
        ValueError,
        match=rf"Could not read array 'y' of {path}: it holds Python objects \(dtype object\), "
        r"which simloss does not unpickle",
    ):
        load_data(TrainConfig(task=str(task)))
    np.savez(path, X=x, y=y.astype(str))  # the advice: text labels
    assert load_data(TrainConfig(task=str(task))).class_names == ["a", "b", "c"]
    npy = tmp_path / "x.npy"
    np.save(npy, x.astype(object), allow_pickle=True)
    from simloss.experiments.data.arrays import read_feature_file

    with pytest.raises(ValueError, match=rf"Could not read feature file {npy}: the array holds"):
        read_feature_file(npy)


def test_a_table_given_as_features_is_named_not_unpickled(tmp_path: Path) -> None:
    from simloss.experiments.data.arrays import read_feature_file

    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n1,2\n")
    with pytest.raises(
        ValueError,
        match=rf"Expected feature file {rows} to be a NumPy .npy/.npz file, but it is none "
        r"\(it starts with b'a,b\\n1,'\)",
    ):
        read_feature_file(rows)


def test_a_factory_model_run_predicts_from_another_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from simloss.cli import main

    (tmp_path / "project").mkdir()
    task = _factory_task(tmp_path / "project", "splits")
    monkeypatch.chdir(tmp_path / "project")
    argv = ["train", "--task", "f.toml", "--r", "0.5", "--epochs", "1", "--no-progress"]
    assert main([*argv, "--out", "run"]) == 0
    config = (tmp_path / "project" / "run" / "config.json").read_text()
    assert f'"task": "{task.resolve()}"' in config
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    np.save(elsewhere / "x.npy", np.zeros((2, 10), dtype=np.float32))
    monkeypatch.chdir(elsewhere)
    monkeypatch.delitem(__import__("sys").modules, "mydata", raising=False)
    assert main(["predict", "--run", str(tmp_path / "project" / "run"), "x.npy"]) == 0


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("keyerror", r"^Factory mydata:keyerror failed: KeyError: 'x'$"),
        ("runtime", r"^Factory mydata:runtime failed: RuntimeError: the database is down \(retry later\)$"),
        ("broken_items", r"^Factory mydata:broken_items split 'train' \(reading its items\) failed: IndexError: no item 0$"),
    ],
)  # fmt: skip
def test_an_error_inside_a_factory_is_one_line_naming_it(
    tmp_path: Path, function: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as info:
        load_data(TrainConfig(task=str(_factory_task(tmp_path, function))))
    assert info.value.__cause__ is not None  # the user's own error, for a traceback


def test_errors_importing_a_factory_or_in_its_model_name_it(tmp_path: Path) -> None:
    task = _factory_task(tmp_path, "splits")
    with pytest.raises(
        ValueError, match=r"^Model factory mydata:bad_model failed: TypeError: make_model\(\) got"
    ):
        run_training(TrainConfig(task=str(task), model="mydata:bad_model", epochs=1, progress=False), tmp_path / "run")  # fmt: skip
    (tmp_path / "other.py").write_text("import numpy\nvalue = undefined_name\n")
    task.write_text(task.read_text().replace("mydata:splits", "other:splits"))
    with pytest.raises(
        ValueError,
        match=r"^Importing factory 'other:splits' failed: NameError: name 'undefined_name' is not defined$",
    ):
        load_data(TrainConfig(task=str(task)))
