"""Nothing lost, nothing twice: sweeps killed with SIGKILL, and processes started together.

Real (short) Abalone trainings in real worker processes; each test checks that
every grid point x run ends with exactly one finished trial. The kill and the
two-machine tests run on SQLite and on PostgreSQL (``storage_url`` in
``tests/conftest.py``; the PostgreSQL runs skip without a server).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from simloss.experiments.config import TrainConfig
from simloss.experiments.sweep import Grid, load_records, run_sweep, sqlite_url
from simloss.experiments.sweep.storage import sqlite_path

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


class _Peek:
    """Trial states and the age in seconds of the youngest running trial, read straight
    from the database with one open connection: a fast look, so that the kill comes
    right after it."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._connection: Any = None

    def __call__(self) -> tuple[Counter[str], float | None]:
        rows = self._rows()
        now = datetime.datetime.now()
        ages = [
            (now - _as_datetime(start)).total_seconds()
            for state, start in rows
            if state == "RUNNING" and start
        ]
        return Counter(state for state, _ in rows), min(ages, default=None)

    def _rows(self) -> list[tuple[str, Any]]:
        query = "SELECT state, datetime_start FROM trials"
        if self._url.startswith("sqlite"):
            db = sqlite_path(self._url)
            if db is None or not db.exists():
                return []
            try:
                with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
                    return con.execute(query).fetchall()
            except sqlite3.OperationalError:  # tables not created yet
                return []
        import psycopg

        if self._connection is None:
            libpq = self._url.replace("postgresql+psycopg://", "postgresql://", 1)
            self._connection = psycopg.connect(libpq, autocommit=True)
        try:
            return [(str(state), start) for state, start in self._connection.execute(query)]
        except psycopg.errors.UndefinedTable:  # tables not created yet
            return []

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def _as_datetime(value: Any) -> datetime.datetime:
    return value if isinstance(value, datetime.datetime) else datetime.datetime.fromisoformat(value)


def _assert_exactly_once(url: str) -> None:
    complete = Counter(point for state, point in _states(url) if state == TrialState.COMPLETE)
    assert complete == Counter(GRID.points()), complete


def _kill_when_a_run_has_just_started(procs: list[subprocess.Popen[Any]], peek: _Peek) -> None:
    """SIGKILL the process groups once a trial has finished and another has just started."""
    deadline = time.monotonic() + 120
    try:
        while True:
            for proc in procs:
                assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the sweep never got going"
            states, youngest = peek()
            if states["COMPLETE"] >= 1 and youngest is not None and youngest < 0.05:
                break
            time.sleep(0.005)
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):  # a group already gone
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def test_killed_sweep_resumes_and_finishes_each_point_once(
    tmp_path: Path, storage_url: str
) -> None:
    out = tmp_path / "sweep"
    if storage_url.startswith("sqlite"):  # the default: study.db in the sweep folder
        url, extra = sqlite_url(out / "study.db"), []
    else:
        url, extra = storage_url, [f"--storage={storage_url}"]
    proc = subprocess.Popen(
        _command(out, "--workers=2", *extra),
        start_new_session=True,  # its own process group: the workers die with it
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    peek = _Peek(url)
    try:
        _kill_when_a_run_has_just_started([proc], peek)
    finally:
        peek.close()
    after_kill = Counter(state for state, _ in _states(url))
    assert after_kill[TrialState.RUNNING] >= 1  # killed in the middle of a run
    assert after_kill[TrialState.COMPLETE] < len(GRID.points())

    # The same sweep again (its storage is the one named in sweep.json).
    result = run_sweep(TrainConfig(**SETTINGS), GRID, out, threads=1, progress=False)
    assert result.ok, result.summary()
    assert result.storage == url
    _assert_exactly_once(url)
    states = Counter(state for state, _ in _states(url))
    # The runs that were killed are marked failed (no heartbeat) and were run again.
    assert states[TrialState.FAIL] == after_kill[TrialState.RUNNING]
    assert states[TrialState.RUNNING] == 0
    assert len(load_records(out)) == len(GRID.points())


def test_two_processes_started_at_once_share_one_storage(tmp_path: Path, storage_url: str) -> None:
    # Two "machines" (own folders, one storage) start together, are both killed in the
    # middle, and start together again.
    url = storage_url

    def start(i: int) -> subprocess.Popen[str]:
        machine = tmp_path / f"machine{i}"
        return subprocess.Popen(
            _command(machine / "sweep", f"--storage={url}"),
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    procs = [start(0), start(1)]
    peek = _Peek(url)
    try:
        _kill_when_a_run_has_just_started(procs, peek)
        assert peek()[0]["RUNNING"] >= 1
    finally:
        peek.close()

    procs = [start(0), start(1)]
    outputs = [proc.communicate(timeout=240) for proc in procs]
    for proc, (stdout, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr
        assert "12/12 finished" in stdout
    _assert_exactly_once(url)
    # No trial was claimed twice: across both machines' worker logs (the killed
    # commands' included) each trial number started once, and each finished trial's
    # record is in the folder of exactly one machine.
    starts = Counter(
        int(match)
        for log in tmp_path.glob("machine*/sweep/logs/*.log")
        for match in re.findall(r"trial (\d+): r=\S+ run \d+ starts", log.read_text())
    )
    assert starts and max(starts.values()) == 1, starts
    study = optuna.load_study(study_name=STUDY, storage=url)
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        machines = [
            i
            for i in range(2)
            if (tmp_path / f"machine{i}" / "sweep" / trial.user_attrs["record_path"]).is_file()
        ]
        assert len(machines) == 1, (trial.number, machines)
    # Both folders read the same sweep through the storage named in their sweep.json.
    for i in range(2):
        records = load_records(tmp_path / f"machine{i}" / "sweep")
        assert sorted((r["value"], r["run"]) for r in records) == sorted(GRID.points())


def test_sigterm_stops_gracefully_and_rerun_finishes(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    url = sqlite_url(out / "study.db")
    proc = subprocess.Popen(
        _command(out, "--workers=2"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    peek = _Peek(url)
    try:
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the sweep never got going"
            states, youngest = peek()
            if states["COMPLETE"] >= 1 and youngest is not None and youngest < 0.05:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)  # the sweep process only, as `kill PID` does
        _, stderr = proc.communicate(timeout=120)
    finally:
        peek.close()
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
