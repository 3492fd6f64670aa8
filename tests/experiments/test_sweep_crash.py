"""Nothing lost, nothing twice: sweeps killed with SIGKILL, and processes started together.

Real (short) Abalone trainings in real worker processes; each test checks that
every grid point x run ends with exactly one finished trial.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from simloss.experiments.config import TrainConfig
from simloss.experiments.sweep import Grid, load_records, run_sweep, sqlite_url

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

GRID = Grid("r", (0.0, 0.3, 0.6, 0.9), 3)
# Runs of a second or so: long enough to be killed in the middle of one.
SETTINGS = {"dataset": "abalone", "epochs": 30, "patience": 30, "limit": 1000}
STUDY = "simloss-abalone"


def _command(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "simloss",
        "sweep",
        "--dataset=abalone",
        "--grid=r=0,0.3,0.6,0.9",
        "--runs=3",
        f"--epochs={SETTINGS['epochs']}",
        f"--patience={SETTINGS['patience']}",
        f"--limit={SETTINGS['limit']}",
        f"--out={out}",
        "--heartbeat=1",
        "--threads=1",
        "--no-progress",
        *extra,
    ]


def _states(url: str) -> list[tuple[TrialState, tuple[float, int]]]:
    try:
        study = optuna.load_study(study_name=STUDY, storage=url)
    except KeyError:  # not created yet
        return []
    return [(t.state, (t.user_attrs["value"], t.user_attrs["run"])) for t in study.get_trials()]


def _raw_states(db: Path) -> tuple[Counter[str], float | None]:
    """Trial states and the age in seconds of the youngest running trial, read straight
    from the SQLite file: a fast look, so that the kill comes right after it."""
    if not db.exists():
        return Counter(), None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            rows = con.execute("SELECT state, datetime_start FROM trials").fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return Counter(), None
    now = datetime.datetime.now()
    ages = [
        (now - datetime.datetime.fromisoformat(start)).total_seconds()
        for state, start in rows
        if state == "RUNNING" and start
    ]
    return Counter(state for state, _ in rows), min(ages, default=None)


def _assert_exactly_once(url: str) -> None:
    complete = Counter(point for state, point in _states(url) if state == TrialState.COMPLETE)
    assert complete == Counter(GRID.points()), complete


def test_killed_sweep_resumes_and_finishes_each_point_once(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    url = sqlite_url(out / "study.db")
    proc = subprocess.Popen(
        _command(out, "--workers=2"),
        start_new_session=True,  # its own process group: the workers die with it
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    try:
        # Kill once a trial has finished and another has just started (its run ahead).
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the sweep never got going"
            states, youngest = _raw_states(out / "study.db")
            if states["COMPLETE"] >= 1 and youngest is not None and youngest < 0.05:
                break
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    after_kill = Counter(state for state, _ in _states(url))
    assert after_kill[TrialState.RUNNING] >= 1  # killed in the middle of a run
    assert after_kill[TrialState.COMPLETE] < len(GRID.points())

    result = run_sweep(TrainConfig(**SETTINGS), GRID, out, threads=1, progress=False)
    assert result.ok, result.summary()
    _assert_exactly_once(url)
    states = Counter(state for state, _ in _states(url))
    # The runs that were killed are marked failed (no heartbeat) and were run again.
    assert states[TrialState.FAIL] == after_kill[TrialState.RUNNING]
    assert states[TrialState.RUNNING] == 0
    assert len(load_records(out)) == len(GRID.points())


def test_two_processes_started_at_once_share_one_storage(tmp_path: Path) -> None:
    # Two "machines" (own folders, one storage) start together, are both killed in
    # the middle, and start together again.
    db = tmp_path / "shared.db"
    url = sqlite_url(db)

    def start(i: int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            _command(tmp_path / f"machine{i}", f"--storage={url}"),
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    procs = [start(0), start(1)]
    deadline = time.monotonic() + 120
    try:
        while True:
            assert all(p.poll() is None for p in procs), "a sweep ended before the kill"
            assert time.monotonic() < deadline, "the sweeps never got going"
            states, youngest = _raw_states(db)
            if states["COMPLETE"] >= 1 and youngest is not None and youngest < 0.05:
                break
            time.sleep(0.005)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert _raw_states(db)[0]["RUNNING"] >= 1

    procs = [start(0), start(1)]
    outputs = [proc.communicate(timeout=240) for proc in procs]
    for proc, (stdout, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr
        assert "12/12 finished" in stdout
    _assert_exactly_once(url)
    # Both folders read the same sweep through the storage named in their sweep.json.
    for i in range(2):
        records = load_records(tmp_path / f"machine{i}")
        assert sorted((r["value"], r["run"]) for r in records) == sorted(GRID.points())


def test_sigterm_stops_gracefully_and_rerun_finishes(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    url = sqlite_url(out / "study.db")
    proc = subprocess.Popen(
        _command(out, "--workers=2"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    try:
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the sweep never got going"
            states, youngest = _raw_states(out / "study.db")
            if states["COMPLETE"] >= 1 and youngest is not None and youngest < 0.05:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)  # the sweep process only, as `kill PID` does
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert stderr.strip().splitlines()[-1] == "simloss sweep: interrupted"
    study = optuna.load_study(study_name=STUDY, storage=url)
    interrupted = [t for t in study.get_trials() if t.state == TrialState.FAIL]
    assert interrupted and all(t.user_attrs["error"] == "interrupted" for t in interrupted)
    assert not [t for t in study.get_trials() if t.state == TrialState.RUNNING]

    # No heartbeat wait is needed: nothing was left running.
    result = run_sweep(TrainConfig(**SETTINGS), GRID, out, threads=1, progress=False)
    assert result.ok, result.summary()
    _assert_exactly_once(url)
