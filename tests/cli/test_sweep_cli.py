"""The ``simloss sweep`` command: help, exit codes, a tiny real sweep and a refused rerun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simloss.cli import main

TINY = ["--dataset=abalone", "--epochs=2", "--limit=300", "--threads=1", "--no-progress"]


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--storage postgresql://" in text
    assert "optuna-dashboard" in text and "r=0:0.9:0.1" in text


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--grid=r=0:0.9"], "Expected a grid like"),
        (["--grid=l=0.5"], "Expected a grid over 'r' for dataset 'abalone'"),
        (["--runs=0"], "Expected --runs >= 1"),
        (["--workers=0"], "Expected `--workers` to be an int >= 1"),
        (["--epochs=0"], "Expected `--epochs` >= 1"),
    ],
    ids=["grid-syntax", "grid-param", "runs", "workers", "epochs"],
)
def test_bad_arguments_exit_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], reason: str
) -> None:
    code = main(["sweep", *TINY, f"--out={tmp_path / 'out'}", *args])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("simloss sweep: error: ") and reason in err
    assert err.count("\n") == 1


def test_tiny_sweep_then_refused_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    with_bar = [a if a != "--no-progress" else "--progress" for a in TINY]
    code = main(["sweep", *with_bar, "--grid=r=0,0.5", "--runs=1", f"--out={out}"])
    stdout, stderr = capsys.readouterr()
    assert code == 0
    # One bar over the trials, with the counts and tqdm's estimate of the time left.
    assert "sweep simloss-abalone" in stderr and "2/2" in stderr
    assert "finished=2" in stderr and "failed=0" in stderr and "running=" in stderr
    assert "<" in stderr  # elapsed<remaining
    assert (
        "sweep simloss-abalone, SimLoss r=0.0,0.5 x 1 run: 2/2 finished, 0 failed, 0 missing"
        in stdout
    )
    assert stdout.strip().splitlines()[-1] == str(out.resolve())
    assert json.loads((out / "sweep.json").read_text())["grid"]["values"] == [0.0, 0.5]

    code = main(["sweep", *TINY[:1], "--epochs=3", *TINY[2:], "--grid=r=0", f"--out={out}"])
    err = capsys.readouterr().err
    assert code == 1
    assert "epochs=2 (now 3)" in err and err.count("\n") == 1


def test_no_progress_bar_when_stderr_is_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A log of a sweep without a terminal (nohup) holds no \r or escape codes.
    args = [a for a in TINY if a != "--no-progress"]
    assert main(["sweep", *args, "--grid=r=0", "--runs=1", f"--out={tmp_path / 's'}"]) == 0
    stderr = capsys.readouterr().err
    assert "\r" not in stderr and "\x1b" not in stderr and "it/s" not in stderr
