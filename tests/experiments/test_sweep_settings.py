"""Flags derived from TrainConfig: every setting reachable from train, sweep and demo.

Every run setting (``--lr``, ``--model``, ``--batch-size``, ``--split-seed``,
``--config``, ``--cifar-classes paper96``, ...) is a flag of ``simloss sweep`` as
of ``simloss train``, so the paper's own CIFAR-100 experiment can be swept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from data_fixtures import write_cifar100

from simloss.cli import build_parser, main
from simloss.cli._settings import config_from_args
from simloss.cli.sweep import sweep_from_args
from simloss.experiments.config import TrainConfig, point_config
from simloss.experiments.data.cifar100 import CIFAR100_FINE_TO_COARSE
from simloss.experiments.sweep import load_records
from simloss.experiments.task import BUILTIN_TASKS as DATASETS

# Two command lines that together set every TrainConfig field but r, l and loss_param to a
# value other than its default (the datasets differ in the settings they take).
UTK = {
    "dataset": "utkface",
    "data_dir": "/data/UTKFace",
    "cache_dir": "/tmp/cache",
    "similarity": "order",
    "model": "lenet",
    "epochs": 7,
    "patience": 3,
    "monitor": "mse",
    "lr": 0.004,
    "batch_size": 64,
    "seed": 5,
    "split_seed": 9,
    "split_per_run": True,
    "val_fraction": 0.15,
    "test_fraction": 0.25,
    "min_age": 3,
    "max_age": 60,
    "limit": 500,
    "skip_unreadable": True,
    "channels_last": False,
    "progress": False,
    "device": "cpu",
    "num_threads": 2,
}
CIFAR = {
    "dataset": "cifar100",
    "data_dir": "/data/cifar",
    "similarity": "embeddings",
    "vectors": "/data/vectors.npy",
    "cifar_classes": "paper96",
    "download": True,
    "monitor": "fsa",
    "loss": "soft-labels",
    "hierarchy": "/data/tree.txt",
    "hierarchy_names": "/data/names.txt",
}


def _argv(settings: dict[str, Any]) -> list[str]:
    argv = []
    for name, value in settings.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else flag.replace("--", "--no-", 1))
        else:
            argv.append(f"{flag}={value}")
    return argv


def test_the_two_command_lines_cover_every_setting_but_the_swept_ones() -> None:
    defaults = TrainConfig().to_dict()
    covered = {k for k, v in UTK.items() if v != defaults[k]}
    covered |= {k for k, v in CIFAR.items() if v != defaults[k]}
    # `task` (a task file) is covered by the task tests (tests/experiments/test_tasks*.py).
    assert covered == set(TrainConfig.field_names()) - {"r", "l", "loss_param", "task"}


@pytest.mark.parametrize("settings", [UTK, CIFAR], ids=["utkface", "cifar100"])
@pytest.mark.parametrize("command", ["train", "sweep", "demo"])
def test_every_setting_is_a_flag_of_train_sweep_and_demo(
    command: str, settings: dict[str, Any]
) -> None:
    argv = [command, "--out=/tmp/x", *_argv(settings)]
    if command == "train":
        argv.append("--r=0.3" if settings is UTK else "--l=0.9")
    args = build_parser().parse_args(argv)
    config = config_from_args(args) if command == "train" else sweep_from_args(args)[0]
    for name, value in settings.items():
        assert getattr(config, name) == value, name
    if command != "train":  # the swept parameter is not a flag of sweep or demo
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--out=/tmp/x", "--r=0.3"])
        # and each trial's config carries every setting (seed: base seed + run index; the
        # split seed too where each run splits anew)
        param = "r" if settings is UTK else "l"
        trial = point_config(config, param, 0.5, 2)
        moved = {"seed"} | ({"split_seed"} if settings.get("split_per_run") else set())
        for name, value in settings.items():
            assert getattr(trial, name) == (value + 2 if name in moved else value), name


def test_config_file_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "base.json"
    path.write_text(json.dumps({"dataset": "abalone", "lr": 0.01, "epochs": 4, "r": 0.7}))
    for command in ("train", "sweep", "demo"):
        args = build_parser().parse_args([command, "--out=o", f"--config={path}", "--epochs=5"])
        config = config_from_args(args)
        r = 0.7 if command == "train" else None  # a sweep's r comes from its grid
        assert (config.lr, config.epochs, config.r) == (0.01, 5, r)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"learning_rate": 0.1}))
    args = build_parser().parse_args(["sweep", "--out=o", f"--config={bad}"])
    with pytest.raises(ValueError, match=r"Unknown TrainConfig keys: \['learning_rate'\]"):
        config_from_args(args)


@pytest.mark.parametrize(
    ("loss", "grid", "param"),
    [("ce", None, None), ("sord", "alpha=1,2", "alpha"), ("simloss", None, "r")],
)
def test_a_runs_config_is_the_base_of_a_sweep_of_any_loss(
    tmp_path: Path, loss: str, grid: str | None, param: str | None
) -> None:
    # A finished SimLoss run's config.json (resolved: loss simloss, similarity order,
    # r 0.5) as --config of a sweep of another loss was refused ("Expected `r` only
    # with a loss built from a similarity"): r, l and loss_param are the grid's.
    run_config = TrainConfig(dataset="abalone", r=0.5, lr=0.01, epochs=3).resolve().to_dict()
    assert (run_config["similarity"], run_config["r"]) == ("order", 0.5)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(run_config))
    argv = ["sweep", "--out=o", f"--config={path}", f"--loss={loss}"]
    argv += [f"--grid={grid}"] if grid else []
    base, parsed = sweep_from_args(build_parser().parse_args(argv))
    assert (base.inferred_loss, base.lr, base.epochs) == (loss, 0.01, 3)
    assert parsed.param == param
    trial = point_config(base, parsed.param, parsed.points()[-1][0], 1, loss=loss)
    assert trial.param == param and trial.seed == 1
    assert trial.r == (0.9 if loss == "simloss" else None)  # the paper's grid ends at 0.9
    if loss == "ce":  # a similarity given as a flag still has to fit the loss
        with pytest.raises(ValueError, match="Expected `r` for similarity 'order'"):
            sweep_from_args(build_parser().parse_args([*argv, "--similarity=order"]))


def test_wrong_types_are_argparse_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["sweep", "--out=o", "--batch-size=many"])
    assert info.value.code == 2
    assert "--batch-size: invalid int value: 'many'" in capsys.readouterr().err


def test_a_sweep_with_settings_from_flags_and_file_records_them(tmp_path: Path) -> None:
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"limit": 300, "epochs": 2, "patience": 2}))
    out = tmp_path / "sweep"
    argv = [
        "sweep", f"--out={out}", f"--config={base}", "--grid=r=0,0.5", "--runs=2",
        "--lr=0.01", "--batch-size=32", "--split-seed=4", "--seed=10", "--monitor=acc",
        "--val-fraction=0.25", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    records = load_records(out)
    assert len(records) == 4
    for record in records:
        config = record["config"]
        assert (config["lr"], config["batch_size"], config["split_seed"]) == (0.01, 32, 4)
        assert (config["limit"], config["epochs"], config["monitor"]) == (300, 2, "acc")
        assert config["val_fraction"] == 0.25 and config["seed"] == 10 + record["run"]
        assert config["r"] == record["value"]
        assert record["num_examples"]["val"] == 75  # round(300 * 0.25)


def _cifar(root: Path) -> Path:
    rng = np.random.default_rng(0)
    n, test = 1200, 200  # 10 training images per class: one for validation
    fine = np.arange(n) % 100
    coarse = np.asarray(CIFAR100_FINE_TO_COARSE)[fine]  # the loader checks the standard map
    fine_names = [f"class_{i}" for i in range(100)]
    fine_names[1], fine_names[83], fine_names[39], fine_names[58] = (
        "aquarium_fish", "sweet_pepper", "keyboard", "pickup_truck",
    )  # fmt: skip
    coarse_names = [f"super_{i}" for i in range(20)]
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return write_cifar100(root, images, fine, coarse, fine_names, coarse_names, test_count=test)


def test_the_papers_cifar100_setup_can_be_swept(tmp_path: Path) -> None:
    # `simloss sweep --dataset cifar100 --cifar-classes paper96 --lr ... --model ...
    # --batch-size ... --split-seed ...`: the paper's own CIFAR-100 experiment.
    data = _cifar(tmp_path / "data")
    vectors = tmp_path / "vectors.npy"
    np.save(vectors, np.random.default_rng(1).normal(size=(100, 8)).astype(np.float32))
    out = tmp_path / "sweep"
    argv = [
        "sweep", "--dataset=cifar100", f"--data-dir={data}", f"--vectors={vectors}",
        "--cifar-classes=paper96", "--lr=0.002", "--model=lenet", "--batch-size=64",
        "--split-seed=3", "--epochs=1", "--grid=l=0.5,0.99", "--runs=1", f"--out={out}",
        "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    records = load_records(out)
    assert [r["value"] for r in records] == [0.5, 0.99]
    for record in records:
        config = record["config"]
        assert config["cifar_classes"] == "paper96" and len(record["class_values"]) == 96
        assert (config["lr"], config["model"], config["batch_size"]) == (0.002, "lenet", 64)
        assert config["split_seed"] == 3 and config["l"] == record["value"]
        assert tuple(record["metrics"]["test"]) == DATASETS["cifar100"].record_metrics
