"""Sweep and storage faults: a sweep refuses other data by name; reading a sweep never
writes to it; a truncated study.db, --storage in a missing folder, a full disk, a missing
device and a 9-million-point grid are one-line errors before any work.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from importlib import resources
from pathlib import Path

import optuna
import pytest

from simloss.cli import main
from simloss.experiments.config import TrainConfig
from simloss.experiments.sweep import (
    Grid,
    data_fingerprint,
    load_records,
    open_storage,
    run_sweep,
    sqlite_url,
)

TINY = {"dataset": "abalone", "epochs": 1, "limit": 200, "progress": False}
CLI_TINY = ["--epochs=1", "--limit=200", "--no-progress", "--runs=1"]


def _abalone_rows(folder: Path, rows: int) -> Path:
    """The first ``rows`` lines of the embedded Abalone file, as a data folder."""
    text = resources.files("simloss").joinpath("data", "abalone.data").read_text()
    folder.mkdir(parents=True)
    (folder / "abalone.data").write_text("".join(text.splitlines(keepends=True)[:rows]))
    return folder


def _one_line_error(capsys: pytest.CaptureFixture[str], command: str) -> str:
    """The error: one line, the last; before it only the sweep's status lines (no terminal)."""
    lines = capsys.readouterr().err.splitlines()
    assert lines and lines[-1].startswith(f"simloss {command}: error: "), lines
    assert all(line.startswith("sweep ") for line in lines[:-1]), lines
    return lines[-1] + "\n"


# ----------------------------------------------------------------- (2) data identity
def test_a_sweep_refuses_other_data_by_name(tmp_path: Path) -> None:
    # The issue: rerunning with --data-dir on 900-row data beside 2,507-row runs was
    # accepted, and the report averaged both as "4 runs".
    big = _abalone_rows(tmp_path / "big", 2507)
    small = _abalone_rows(tmp_path / "small", 900)
    out = tmp_path / "sweep"
    grid = Grid("r", (0.0,), 1)
    assert run_sweep(TrainConfig(**TINY, data_dir=str(big)), grid, out).ok
    with pytest.raises(ValueError, match=r"was made on other data: 1 file\(s\), \d+ bytes") as info:
        run_sweep(TrainConfig(**TINY, data_dir=str(small)), Grid("r", (0.0,), 2), out)
    assert str(small) in str(info.value)
    assert len(load_records(out)) == 1  # nothing ran on the other data
    # The same bytes at another path (another machine's copy) are the same data.
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "abalone.data").write_bytes((big / "abalone.data").read_bytes())
    assert run_sweep(TrainConfig(**TINY, data_dir=str(copy)), Grid("r", (0.0,), 2), out).ok
    assert json.loads((out / "sweep.json").read_text())["data"]["files"] == 1


def test_fingerprint_against_hashlib(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "b.jpg").write_bytes(b"bb")
    (folder / "a.jpg").write_bytes(b"a")
    (folder / ".hidden").write_bytes(b"ignored")
    expected = hashlib.sha256(b"a.jpg\x001\x00a" + b"sub/b.jpg\x002\x00bb").hexdigest()
    config = TrainConfig(dataset="utkface", data_dir=str(folder))
    assert data_fingerprint(config) == {"files": 2, "bytes": 3, "sha256": expected}
    (folder / "a.jpg").write_bytes(b"c")  # same size, other bytes: other data
    assert data_fingerprint(config)["sha256"] != expected


def test_a_sweep_from_before_fingerprints_adopts_the_data(tmp_path: Path) -> None:
    # Sweeps written by earlier versions stored no fingerprint; they resume and keep one.
    out = tmp_path / "sweep"
    run_sweep(TrainConfig(**TINY), Grid("r", (0.0,), 1), out)
    storage = open_storage(sqlite_url(out / "study.db"))
    study = optuna.load_study(study_name="simloss-abalone", storage=storage)
    settings = dict(study.user_attrs["simloss_sweep"])
    del settings["data"]
    study.set_user_attr("simloss_sweep", settings)
    result = run_sweep(TrainConfig(**TINY), Grid("r", (0.0, 0.5), 1), out)
    assert result.ok
    again = optuna.load_study(study_name="simloss-abalone", storage=storage)
    assert again.user_attrs["simloss_sweep"]["data"] == data_fingerprint(TrainConfig(**TINY))


# ------------------------------------------------------------- (5) read-only reading
def _digest(folder: Path) -> dict[str, tuple[int, str]]:
    return {
        str(p.relative_to(folder)): (
            p.stat().st_mtime_ns,
            hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_report_leaves_the_sweep_folder_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    run_sweep(TrainConfig(**TINY), Grid("r", (0.0, 0.5), 1), out)
    before = _digest(out)
    time.sleep(0.01)
    assert main(["report", str(out), "--out", str(tmp_path / "rep"), "--quiet"]) == 0
    assert _digest(out) == before


def test_read_only_storage_refuses_writes(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    run_sweep(TrainConfig(**TINY), Grid("r", (0.0,), 1), out)
    before = (out / "study.db").read_bytes()
    storage = open_storage(sqlite_url(out / "study.db"), read_only=True)
    try:
        with pytest.raises(optuna.exceptions.StorageInternalError) as info:
            storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "new")
        assert "readonly database" in str(info.value.__cause__)
    finally:
        storage.engine.dispose()
    assert (out / "study.db").read_bytes() == before


def test_report_on_a_zero_byte_study_db_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The issue: `simloss report` wrote Optuna's schema into a zero-byte study.db.
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({"study_name": "s", "storage": None}))
    (out / "study.db").write_bytes(b"")
    assert main(["report", str(out), "--out", str(tmp_path / "rep")]) == 1
    err = _one_line_error(capsys, "report")
    assert f"{out / 'study.db'}" in err and "empty (0 bytes)" in err
    assert (out / "study.db").stat().st_size == 0
    assert sorted(p.name for p in out.iterdir()) == ["study.db", "sweep.json"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to a read-only folder")
def test_report_on_a_read_only_sweep_folder(tmp_path: Path) -> None:
    # The issue: a 27-frame sqlite traceback on a read-only sweep folder.
    out = tmp_path / "sweep"
    run_sweep(TrainConfig(**TINY), Grid("r", (0.0, 0.5), 1), out)
    os.chmod(out, 0o555)
    try:
        assert main(["report", str(out), "--out", str(tmp_path / "rep"), "--quiet"]) == 0
    finally:
        os.chmod(out, 0o755)


def test_report_reads_the_log_of_a_sweep_still_running(tmp_path: Path) -> None:
    # A writer holds the database open (its -wal file exists): the reader reads the
    # log too, so trials committed there are in the report.
    out = tmp_path / "sweep"
    run_sweep(TrainConfig(**TINY), Grid("r", (0.0,), 1), out)
    writer = open_storage(sqlite_url(out / "study.db"))
    try:
        study = optuna.load_study(study_name="simloss-abalone", storage=writer)
        record = dict(study.trials[0].user_attrs["record"])
        attrs = {"param": "r", "value": 0.9, "run": 0, "record": record, "record_path": "x"}
        study.add_trial(optuna.trial.create_trial(value=1.0, user_attrs=attrs))
        assert (out / "study.db-wal").exists()
        assert [r["value"] for r in load_records(out)] == [0.0, 0.9]
    finally:
        writer.engine.dispose()


# ------------------------------------------------------------ (6) one-line errors
def test_truncated_study_db_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    run_sweep(TrainConfig(**TINY), Grid("r", (0.0, 0.5), 1), out)
    db = out / "study.db"
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    assert main(["report", str(out), "--out", str(tmp_path / "rep")]) == 1
    err = _one_line_error(capsys, "report")
    assert str(db) in err and "truncated or damaged" in err
    assert main(["sweep", "--grid=r=0,0.5", *CLI_TINY, f"--out={out}"]) == 1
    assert str(db) in _one_line_error(capsys, "sweep")


def test_storage_in_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = sqlite_url(tmp_path / "absent" / "study.db")
    out = tmp_path / "sweep"
    assert main(["sweep", "--grid=r=0", *CLI_TINY, f"--out={out}", f"--storage={url}"]) == 1
    err = _one_line_error(capsys, "sweep")
    assert f"Expected the folder of --storage '{url}' to exist, but {tmp_path / 'absent'}" in err
    assert not out.exists() and not (tmp_path / "absent").exists()


def test_a_full_disk_stops_the_sweep_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every result file goes through the one atomic writer, which flushes it to the
    # disk; a full disk fails there (ENOSPC) and the sweep stops at once.
    fsync = os.fsync

    def full_below_trials(fd: int) -> None:
        if "/trials/" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", full_below_trials)
    out = tmp_path / "sweep"
    code = main(["sweep", "--grid=r=0,0.3,0.6", *CLI_TINY, f"--out={out}", "--workers=1"])
    monkeypatch.undo()
    assert code == 1
    err = _one_line_error(capsys, "sweep")
    assert "trial 0 (r=0.0 run 0) stopped: disk full: OSError: [Errno 28] No space left" in err
    assert f"{out / 'trials'}" in err and "Free disk space and rerun the same command" in err
    study = optuna.load_study(study_name="simloss-abalone", storage=sqlite_url(out / "study.db"))
    states = sorted(t.state.name for t in study.get_trials())
    assert states == ["FAIL", "WAITING", "WAITING"]  # it stopped after the first failure
    # With space again, the same command finishes the sweep.
    assert main(["sweep", "--grid=r=0,0.3,0.6", *CLI_TINY, f"--out={out}"]) == 0
    assert len(load_records(out)) == 3


def test_a_full_disk_before_the_first_trial_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    out = tmp_path / "sweep"
    code = main(["sweep", "--grid=r=0", *CLI_TINY, f"--out={out}"])
    monkeypatch.undo()
    assert code == 1
    err = _one_line_error(capsys, "sweep")
    assert f"[Errno 28] No space left on device (writing {out / 'sweep.json'})" in err
    assert not (out / "sweep.json").exists()


@pytest.mark.parametrize("command", ["sweep", "demo", "train"])
def test_a_missing_device_is_refused_before_any_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    # The issue: `sweep --device cuda` on CPU-only torch failed every trial, then said
    # "rerun to retry". Every command checks the device first, with train's message.
    out = tmp_path / "out"
    extra = ["--r=0.5"] if command == "train" else ["--grid=r=0"]
    argv = [command, *extra, *CLI_TINY, f"--out={out}", "--device=cuda:99"]
    if command == "train":
        argv.remove("--runs=1")
    assert main(argv) == 1
    assert "`--device` is 'cuda:99' but " in _one_line_error(capsys, command)
    assert not out.exists()


def test_a_nine_million_point_grid_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The issue: `--grid r=0:0.9:0.0000001` was silent for minutes. The size is checked
    # before a single value is made.
    assert main(["sweep", "--grid=r=0:0.9:0.0000001", f"--out={tmp_path / 's'}"]) == 1
    err = _one_line_error(capsys, "sweep")
    assert "Grid 'r=0:0.9:0.0000001' has 9,000,001 values; a sweep takes at most 1,000" in err
    assert not (tmp_path / "s").exists()


def test_load_records_takes_any_path_like(tmp_path):
    """Every argument that takes a file accepts str and os.PathLike alike."""
    import os

    from simloss.experiments.sweep.storage import resolve_source

    class Where(os.PathLike):
        def __fspath__(self) -> str:
            return str(tmp_path / "missing")

    with pytest.raises(FileNotFoundError, match="missing is neither"):
        resolve_source(Where())


def test_a_sweep_into_a_folder_of_something_else_is_refused_before_any_work(
    tmp_path: Path,
) -> None:
    # `simloss sweep --out RUN` put study.db, sweep.json, trials/ and logs/ beside a
    # `simloss train` run's config.json, model.pt and record.json.
    from simloss.experiments.train import run_training

    run = tmp_path / "run"
    run_training(TrainConfig(r=0.5, **TINY), run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    grid = Grid(param="r", values=(0.5,), runs=1)
    with pytest.raises(FileExistsError, match=r"also holds \['config.json', 'model.pt', 're"):
        run_sweep(TrainConfig(**TINY), grid, run)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    with pytest.raises(FileExistsError, match="to be a folder, but it is a file"):
        run_sweep(TrainConfig(**TINY), grid, run / "record.json")
    # a sweep's own folder (with its report) resumes
    sweep = tmp_path / "sweep"
    assert run_sweep(TrainConfig(**TINY), grid, sweep).ok
    assert main(["report", str(sweep), "--no-figures", "--quiet"]) == 0
    assert run_sweep(TrainConfig(**TINY), grid, sweep).finished == 1


def test_interrupted_trials_are_counted_as_interrupted_not_failed_and_are_requeued():
    from optuna.distributions import IntDistribution
    from optuna.trial import TrialState, create_trial

    from simloss.experiments.loss_catalog import DEFAULT_LOSS
    from simloss.experiments.points import loss_point_key
    from simloss.experiments.sweep.queue import INTERRUPTED, census, enqueue_missing

    def trial(run: int, error: str) -> optuna.trial.FrozenTrial:
        return create_trial(
            state=TrialState.FAIL,
            params={"run": run},
            distributions={"run": IntDistribution(0, 2)},
            user_attrs={"param": None, "value": None, "run": run, "error": error},
        )

    points = [loss_point_key(DEFAULT_LOSS, None, run) for run in range(3)]
    # run 0 interrupted twice (two resumed commands), run 1 failed, then interrupted on its rerun
    trials = [
        trial(0, INTERRUPTED),
        trial(0, INTERRUPTED),
        trial(1, "OSError: disk"),
        trial(1, INTERRUPTED),
    ]
    trials += [trial(2, "ValueError: diverged")]
    for number, frozen in enumerate(trials):
        frozen.number = number
    counts = census(trials, points)
    assert counts.interrupted == set(points[:2])
    assert set(counts.failed) == {points[2]}
    assert counts.failed[points[2]].error == "ValueError: diverged"
    study = optuna.create_study()
    enqueue_missing(study, None, points, 3, counts)
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert sorted(t.user_attrs["run"] for t in waiting) == [0, 1, 2]
