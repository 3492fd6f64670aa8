"""``simloss train``: flags and config files map onto TrainConfig; errors exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simloss.cli import main


def test_train_writes_a_record_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code = main(
        ["train", "--out", str(out), "--r", "0.5", "--epochs", "2", "--limit", "300",
         "--seed", "3", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    record = json.loads((out / "record.json").read_text())
    assert record["config"]["r"] == 0.5 and record["config"]["seed"] == 3
    assert record["config"]["progress"] is False and record["config"]["dataset"] == "abalone"
    assert len(record["history"]) == 2
    printed = capsys.readouterr().out
    assert str(out / "record.json") in printed and "test Acc (%)" in printed


def test_config_file_with_flag_overrides(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"r": 0.2, "epochs": 1, "limit": 100, "progress": False}))
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(out), "--epochs", "2"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["r"], config["epochs"], config["limit"]) == (0.2, 2, 100)


def test_a_record_config_can_be_rerun(tmp_path: Path) -> None:
    first = tmp_path / "a"
    main(["train", "--out", str(first), "--r", "0.7", "--epochs", "2", "--limit", "100",
          "--no-progress"])  # fmt: skip
    second = tmp_path / "b"
    assert main(["train", "--config", str(first / "config.json"), "--out", str(second)]) == 0
    a = json.loads((first / "record.json").read_text())
    b = json.loads((second / "record.json").read_text())
    assert a["metrics"] == b["metrics"] and a["config"] == b["config"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--r", "1.5"], "Expected `--r` in [0, 1), but found 1.5"),
        (["--dataset", "utkface"], "Expected `--data-dir` for dataset 'utkface'"),
        (
            ["--dataset", "utkface", "--data-dir", "/nonexistent/x", "--limit", "5"],
            "does not exist",
        ),
    ],
)
def test_errors_are_one_line_with_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["train", "--out", str(tmp_path / "o"), "--no-progress", *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("simloss train: error:") and message in err and "\n" not in err


def test_unknown_config_keys_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"r": 0.2, "learning_rate": 0.1}))
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "o")]) == 1
    assert "Unknown TrainConfig keys: ['learning_rate']" in capsys.readouterr().err


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_config_numbers_outside_json_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], token: str
) -> None:
    """Python's json reader takes NaN/Infinity; JSON (RFC 8259) has no such numbers."""
    path = tmp_path / "c.json"
    path.write_text('{"r": 0.2, "lr": ' + token + "}")
    lr = json.loads(path.read_text())["lr"]  # what Python alone would accept
    assert lr != lr or abs(lr) == float("inf")
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert f"Expected JSON numbers in config file {path}, but found {token}" in err
    assert "\n" not in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1e999", "numbers within the float range in config file {path}, but found 1e999"),
        ("-1e999", "numbers within the float range in config file {path}, but found -1e999"),
        ("1" + "0" * 400, "numbers within the float range in config file {path}, but found 1000"),
        ("1" * 5000, "Could not parse config file {path} as JSON: Exceeds the limit"),
        (
            "[" * 100_000 + "]" * 100_000,
            "Could not parse config file {path} as JSON: nested deeper",
        ),
    ],
    ids=["overflow", "negative-overflow", "huge-int", "int-digit-limit", "deep"],
)
def test_config_numbers_beyond_a_float_are_refused_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    """Python reads 1e999 as inf and 10**400 as an int no float holds; its limits name no file."""
    path = tmp_path / "c.json"
    path.write_text('{"r": 0.2, "lr": ' + value + "}")
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert message.format(path=path) in err
    assert "\n" not in err and not (tmp_path / "o").exists()


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--dataset", "--data-dir", "--r", "--l", "--vectors", "--no-progress", "--out"):
        assert flag in text


def test_progress_bars_only_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A log of a run without a terminal (nohup) holds no \r or escape codes.
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--r", "0.5", "--epochs", "2", "--limit", "100"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "it/s" not in err and "epoch 1" not in err
    assert json.loads((out / "record.json").read_text())["config"]["progress"] is False
    assert main(["train", "--out", str(tmp_path / "b"), "--r", "0.5", "--epochs", "1",
                 "--limit", "100", "--progress"]) == 0  # fmt: skip
    assert "\r" in capsys.readouterr().err  # asked for: drawn anyway


def test_a_finished_run_is_refused_unless_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    base = ["train", "--out", str(out), "--epochs", "2", "--limit", "200", "--no-progress"]
    assert main([*base, "--r", "0.5"]) == 0
    before = (out / "record.json").read_bytes()
    capsys.readouterr()
    assert main([*base, "--r", "0.9"]) == 1
    err = capsys.readouterr().err.strip()
    assert "to be a new or empty folder" in err and "--overwrite" in err and "\n" not in err
    assert (out / "record.json").read_bytes() == before
    assert main([*base, "--r", "0.9", "--overwrite"]) == 0
    for name in ("config.json", "record.json"):
        text = json.loads((out / name).read_text())
        assert (text["config"] if name == "record.json" else text)["r"] == 0.9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr", "1e30", "--r", "0.5"], "Training diverged in epoch 1"),
        (["--dataset", "utkface", "--data-dir", "/nonexistent/x"], "does not exist"),
    ],
    ids=["diverging", "missing_data"],
)
def test_a_failed_run_leaves_nothing_at_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--limit", "200", "--no-progress", *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []  # no config.json debris, no hidden folder
