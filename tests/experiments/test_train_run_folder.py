"""Run folders: never two runs in one folder, nothing left by failed, diverged or killed runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import simloss.experiments.train as train_module
from simloss.experiments.config import TrainConfig
from simloss.experiments.train import run_training

SRC = Path(__file__).resolve().parents[2] / "src"


def abalone(**kwargs: Any) -> TrainConfig:
    settings: dict[str, Any] = {"dataset": "abalone", "progress": False, "limit": 300, "epochs": 2}
    settings.update(kwargs)
    return TrainConfig(**settings)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir())


def test_a_finished_run_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    run_training(abalone(r=0.5), out)
    before = snapshot(out)

    def no_work(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("data was loaded before the folder was checked")

    monkeypatch.setattr(train_module, "load_data", no_work)
    with pytest.raises(FileExistsError, match=r"to be a new or empty folder.*--overwrite"):
        run_training(abalone(r=0.9), out)
    assert snapshot(out) == before and siblings(out) == ["run"]


def test_overwrite_replaces_the_whole_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    old = run_training(abalone(r=0.5), out)
    new = run_training(abalone(r=0.9, seed=1), out, overwrite=True)
    assert new["param_value"] == 0.9 and old["param_value"] == 0.5
    assert json.loads((out / "config.json").read_text())["r"] == 0.9
    assert json.loads((out / "record.json").read_text()) == new
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.pt", "record.json"]
    assert siblings(out) == ["run"]


def test_an_empty_existing_folder_is_used(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    run_training(abalone(r=0.5), out)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.pt", "record.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700


def test_a_failing_run_leaves_no_debris_and_keeps_the_old_run(tmp_path: Path) -> None:
    bad = TrainConfig(dataset="utkface", data_dir=str(tmp_path / "absent"), progress=False)
    fresh = tmp_path / "fresh"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_training(bad, fresh)
    assert not fresh.exists()
    out = tmp_path / "run"
    run_training(abalone(r=0.5), out)
    before = snapshot(out)
    with pytest.raises(FileNotFoundError):
        run_training(bad, out, overwrite=True)
    assert snapshot(out) == before
    assert siblings(out) == ["run"]


def test_folders_that_are_not_runs_are_never_replaced(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match=r"notes\.txt"):
            run_training(abalone(r=0.5), home, overwrite=overwrite)
    assert (home / "notes.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="it is a file"):
        run_training(abalone(r=0.5), tmp_path / "file", overwrite=True)


def test_a_diverging_run_says_so_and_leaves_no_half_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match=r"^Training diverged in epoch 1: .*lr=1e\+30"):
        run_training(abalone(r=0.5, lr=1e30), out)
    assert not out.exists() and siblings(out) == []


# ------------------------------------------------------------------ killed processes
KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import simloss.experiments._run_folder as run_folder
    import simloss.experiments.train as train

    where = sys.argv[1]
    if where == "mid_run":  # after the first epoch's validation
        real, calls = train.evaluate, [0]

        def evaluate(*args, **kwargs):
            calls[0] += 1
            if calls[0] == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        train.evaluate = evaluate
    else:  # "between_renames": the old run moved aside, the new one not yet in place
        real_rename = os.rename

        def rename(source, target):
            if ".replaced-" in str(target):
                real_rename(source, target)
                os.kill(os.getpid(), signal.SIGKILL)
            return real_rename(source, target)

        run_folder.os.rename = rename
    from simloss.cli import main

    sys.exit(main(sys.argv[2:]))
    """
)


def killed_train(where: str, out: Path, *flags: str) -> int:
    argv = ["train", "--out", str(out), "--r", "0.9", "--epochs", "3", "--limit", "300",
            "--no-progress", *flags]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", KILLER, where, *argv], env=env, capture_output=True, timeout=300
    )
    return done.returncode


def test_a_killed_fresh_run_leaves_nothing_that_looks_like_a_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert killed_train("mid_run", out) == -signal.SIGKILL
    assert not out.exists()
    (leftover,) = siblings(out)  # hidden, not at --out
    assert leftover.startswith(".run.partial-") and (tmp_path / leftover / "config.json").exists()
    # The next run into the same place removes the dead process's leftover.
    run_training(abalone(r=0.5), out)
    assert siblings(out) == ["run"]


def test_a_killed_runs_leftover_goes_with_the_next_run_of_another_name(tmp_path: Path) -> None:
    # A sweep retries a killed trial under a new folder name (trial=1 -> trial=6):
    # the killed one's partial folder must not stay in the sweep folder for ever.
    assert killed_train("mid_run", tmp_path / "r=0.5_run=0_trial=1") == -signal.SIGKILL
    (leftover,) = siblings(tmp_path / "x")
    assert leftover.startswith(".r=0.5_run=0_trial=1.partial-")
    run_training(abalone(r=0.5), tmp_path / "r=0.5_run=0_trial=6")
    assert siblings(tmp_path / "x") == ["r=0.5_run=0_trial=6"]


def test_a_killed_overwrite_keeps_the_old_run_whole(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_training(abalone(r=0.5), out)
    before = snapshot(out)
    assert killed_train("mid_run", out, "--overwrite") == -signal.SIGKILL
    assert snapshot(out) == before  # config.json says r = 0.5 beside r = 0.5's files


def test_a_kill_between_the_two_renames_brings_the_old_run_back(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_training(abalone(r=0.5), out)
    before = snapshot(out)
    assert killed_train("between_renames", out, "--overwrite") == -signal.SIGKILL
    assert not out.exists()  # the old run is aside, the new one not yet in place
    with pytest.raises(FileExistsError):  # the next run restores the old one first ...
        run_training(abalone(r=0.7), out)
    assert snapshot(out) == before  # ... whole, and refuses to replace it silently
    assert siblings(out) == ["run"]
