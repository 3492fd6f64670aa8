"""What the command line prints: settings named as flags, metrics as reports show them, where
a long command is when its output is no terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from simloss.cli import main


def test_errors_name_the_flag_not_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["train", "--dataset", "utkface", "--out", str(tmp_path / "r")]) == 1
    assert "Expected `--data-dir` for dataset 'utkface', but found None" in capsys.readouterr().err
    argv = ["train", "--dataset", "cifar100", "--data-dir", str(tmp_path / "none"), "--l", "0.5",
            "--vectors", str(tmp_path / "v.npy"), "--out", str(tmp_path / "r")]  # fmt: skip
    assert main(argv) == 1
    assert "`--download` fetches CIFAR-100" in capsys.readouterr().err


def test_train_prints_accuracy_in_percent_as_reports_do(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["train", "--r", "0.5", "--epochs", "1", "--limit", "200", "--out", str(tmp_path / "r")]
    assert main(argv) == 0
    line = capsys.readouterr().out
    assert "test Acc (%) " in line and ", MAE " in line and "acc 0." not in line


def test_a_sweep_without_a_terminal_prints_a_status_line_per_finished_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["sweep", "--grid", "r=0,0.5", "--runs", "1", "--epochs", "1", "--limit", "200",
            "--out", str(tmp_path / "s")]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    status = [line for line in captured.err.splitlines() if line.startswith("sweep ")]
    assert status and status[-1].startswith("sweep simloss-abalone: 2/2 finished, 0 failed")
    assert "sweep simloss-abalone, SimLoss r=0.0,0.5 x 1 run: 2/2 finished" in captured.out
