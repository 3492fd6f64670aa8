"""Every value a choice flag accepts either works end to end on Abalone or is refused up front.

``--monitor loss`` was accepted by ``simloss sweep`` and failed in every trial after
training: a value a command accepts must run, or be refused before any work (one line,
no run folder, no trial).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simloss.cli import main
from simloss.experiments.config import TrainConfig, setting_choices
from simloss.experiments.specs import LOSSES, MODELS, MONITORS

TINY = ["--epochs", "1", "--limit", "150", "--batch-size", "64", "--no-progress"]
# What a value needs beside it to be a complete request (else it is refused, which is fine too).
COMPANIONS = {
    ("similarity", "order"): ["--r", "0.5"],
    ("similarity", "values"): ["--r", "0.5"],
    ("similarity", "names"): ["--l", "0.3"],
    ("loss", "simloss"): ["--r", "0.5"],
    ("loss", "soft-labels"): ["--r", "0.5"],
}
TRAIN_CHOICES = (
    [
        (name, value)
        for name in TrainConfig.field_names()
        for value in setting_choices(name)
        if name not in ("dataset",)
    ]
    + [("model", m) for m in MODELS]
    + [("device", "cpu"), ("device", "auto")]
)


def _outcome(code: int, err: str, made: bool) -> None:
    if code == 0:
        return
    lines = [line for line in err.strip().splitlines() if line.startswith("simloss ")]
    assert code == 1 and lines and len(err.strip().splitlines()) == 1, err
    assert not made, f"refused after work began: {err.strip()}"


@pytest.mark.parametrize(("name", "value"), TRAIN_CHOICES, ids=lambda v: str(v))
def test_train_runs_or_refuses_every_choice(
    name: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = "--" + name.replace("_", "-")
    extra = COMPANIONS.get((name, value), [])
    out = tmp_path / "run"
    code = main(["train", *TINY, flag, value, *extra, "--out", str(out)])
    err = capsys.readouterr().err
    _outcome(code, err, out.exists())


# The losses Abalone's 17 ordered classes (4 to 20 rings) cannot take, and why; every other loss must run.
REFUSED_ON_ABALONE = {"beta": "at most 14 classes", "hxe": "semantic classes"}


def _grid(loss: str) -> list[str]:
    spec = LOSSES[loss]
    if spec.uses_similarity:
        return ["--grid", "r=0.5"]
    return [] if spec.param is None else ["--grid", f"{spec.param.name}={spec.param.default:g}"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("monitor", m) for m in MONITORS] + [("loss", loss) for loss in LOSSES],
    ids=lambda v: str(v),
)
def test_sweep_runs_or_refuses_every_choice(
    name: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = "--" + name.replace("_", "-")
    grid = _grid(value) if name == "loss" else ["--grid", "r=0,0.5"]
    out = tmp_path / "sweep"
    code = main(["sweep", *TINY, flag, value, *grid, "--runs", "1", "--out", str(out)])
    captured = capsys.readouterr()
    _outcome(code, captured.err, (out / "trials").exists())
    assert code != 0 or "finished, 0 failed, 0 missing" in captured.out
    if name == "loss":  # a valid request must run: a refusal is only right for a misfit
        assert (code != 0) == (value in REFUSED_ON_ABALONE), captured.err
        assert code == 0 or REFUSED_ON_ABALONE[value] in captured.err


@pytest.mark.parametrize("monitor", MONITORS)
def test_tune_runs_or_refuses_every_monitor(
    monitor: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tune"
    argv = ["tune", *TINY, "--monitor", monitor, "--objective", "val_mae", "--budget", "12",
            "--runs", "2", "--patience", "1", "--out", str(out)]  # fmt: skip
    code = main(argv)
    err = capsys.readouterr().err
    _outcome(code, err, (out / "trials").exists())


def _tune_choices() -> list[tuple[str, str]]:
    """Every choice of every ``simloss tune`` flag that has choices, read from its parser."""
    import argparse

    from simloss.cli import build_parser

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return [
        (action.option_strings[0], str(choice))
        for action in commands.choices["tune"]._actions
        if action.choices and action.option_strings and action.option_strings[0] != "--monitor"
        for choice in action.choices
    ]


TUNE_CHOICES = _tune_choices()
# What a tune value needs beside it to be a complete request (else it is refused, which is fine).
TUNE_COMPANIONS = {("--param", "l"): ["--similarity", "names"]}


def test_the_tune_choices_are_read_from_its_parser() -> None:
    flags = {flag for flag, _ in TUNE_CHOICES}
    assert {"--sampler", "--pruner", "--param", "--loss", "--similarity"} <= flags
    assert ("--pruner", "none") in TUNE_CHOICES and ("--sampler", "gp") in TUNE_CHOICES


@pytest.mark.parametrize(("flag", "value"), TUNE_CHOICES, ids=lambda v: str(v))
def test_tune_runs_or_refuses_every_choice(
    flag: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tune"
    extra = TUNE_COMPANIONS.get((flag, value), [])
    argv = ["tune", *TINY, flag, value, *extra, "--objective", "val_mae", "--budget", "12",
            "--runs", "2", "--patience", "1", "--out", str(out)]  # fmt: skip
    code = main(argv)
    err = capsys.readouterr().err
    _outcome(code, err, (out / "trials").exists())
    if (flag, value) in (("--sampler", "tpe"), ("--sampler", "gp"), ("--pruner", "median"),
                         ("--pruner", "halving"), ("--pruner", "none")):  # fmt: skip
        assert code == 0 and (out / "result" / "report.md").is_file(), err


@pytest.fixture(scope="module")
def abalone_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("choices") / "run"
    assert main(["train", *TINY, "--r", "0.5", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("decoder", ["argmax", "median", "min_risk"])
def test_predict_runs_every_decoder(
    decoder: str, abalone_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "shells.data"
    rows.write_text("M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15\n")
    capsys.readouterr()
    code = main(["predict", "--run", str(abalone_run), "--decoder", decoder, str(rows)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    header, row = printed.out.splitlines()
    assert header == "input,class,value,name,probability" and row.startswith(f"{rows}:1,")
