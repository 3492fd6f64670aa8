"""A tune killed with SIGKILL in the middle of a run resumes without redoing finished trials."""

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

from simloss.cli import main
from simloss.experiments.sweep import sqlite_url
from simloss.experiments.tune import load_tune

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

ARGS = [
    "tune",
    "--dataset=abalone",
    "--epochs=30",
    "--patience=30",
    "--limit=1000",
    "--objective=val_mae",
    "--budget=420",
    "--runs=2",
    "--heartbeat=1",
    "--threads=1",
    "--no-progress",
]


def _running_search_age(db: Path) -> tuple[int, float | None]:
    """Complete trials and the age in seconds of the youngest running trial (read raw, fast)."""
    if not db.exists():
        return 0, None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            rows = con.execute("SELECT state, datetime_start FROM trials").fetchall()
    except sqlite3.OperationalError:
        return 0, None
    now = datetime.datetime.now()
    ages = [
        (now - datetime.datetime.fromisoformat(start)).total_seconds()
        for state, start in rows
        if state == "RUNNING" and start
    ]
    return sum(state == "COMPLETE" for state, _ in rows), min(ages, default=None)


def test_killed_tune_resumes_and_keeps_finished_trials(tmp_path: Path) -> None:
    out = tmp_path / "tune"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simloss", *ARGS, f"--out={out}"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 180
    try:
        # Kill once CCE and a search trial have finished and another run has just started.
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the tune never got going"
            complete, youngest = _running_search_age(out / "study.db")
            if complete >= 2 and youngest is not None and youngest < 0.1:
                break
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    storage = sqlite_url(out / "study.db")
    before = optuna.load_study(study_name="simloss-tune-abalone", storage=storage).get_trials()
    finished = {t.number: t.values for t in before if t.state == TrialState.COMPLETE}
    killed = [t.number for t in before if t.state == TrialState.RUNNING]
    assert finished and killed

    assert main([*ARGS, f"--out={out}"]) == 0
    after = optuna.load_study(study_name="simloss-tune-abalone", storage=storage).get_trials()
    # Every trial finished before the kill is kept as it was; the killed one failed (no heartbeat).
    for number, values in finished.items():
        assert after[number].state == TrialState.COMPLETE and after[number].values == values
    for number in killed:
        assert after[number].state == TrialState.FAIL
    # Nothing trained twice: one finished trial per point (repeats hold no record).
    trained = Counter(
        (t.user_attrs["value"], t.user_attrs["run"])
        for t in after
        if t.state == TrialState.COMPLETE and "duplicate_of" not in t.user_attrs
    )
    assert max(trained.values()) == 1
    assert not [t for t in after if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    result = load_tune(out)
    assert result.complete and (out / "result" / "tune.md").is_file()
    # The killed trials are noted with why they failed (their worker was lost), and no
    # failure is noted that the storage does not hold.
    failed_notes = [n for n in result.notes if " trial(s) failed: " in n]
    assert sum(int(n.split()[0]) for n in failed_notes) == len(killed), result.notes
    assert all("worker" in n and "heartbeat" in n for n in failed_notes), result.notes
