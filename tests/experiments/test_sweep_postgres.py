"""Sweeps on a PostgreSQL server: reading a study back, a server restart, the driver.

The tests that need a server take a new database on the server of
``SIMLOSS_TEST_POSTGRES_URL`` (``postgres_url`` in ``tests/conftest.py``) and skip
without one; the restart test also needs ``SIMLOSS_TEST_POSTGRES_DIR``, the folder
of a throw-away server started by ``scripts/postgres.sh`` (it stops and restarts
that server). The crash and two-machine tests run on PostgreSQL too, in
``test_sweep_crash.py``; the claim race in ``test_records.py``.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import wsgiref.util
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

from simloss.cli import main
from simloss.experiments.config import TrainConfig
from simloss.experiments.sweep import Grid, load_records, open_storage, run_sweep
from simloss.experiments.sweep.storage import (
    check_driver,
    is_connection_error,
    reconnecting,
)

ROOT = Path(__file__).resolve().parents[2]
TINY = {"dataset": "abalone", "epochs": 1, "limit": 200, "progress": False}
STUDY = "simloss-abalone"


# ------------------------------------------------------------ reading from the server
def _dashboard_get(app: Any, path: str) -> Any:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    wsgiref.util.setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    assert status[0].startswith("200"), (status, body[:200])
    return json.loads(body)


def test_a_sweep_on_the_server_is_read_by_report_load_records_and_the_dashboard(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before the sweep, the new database is named as empty, in one line, password hidden.
    code = main(["report", postgres_url, "--out", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and ":***@" in err
    assert "to be an Optuna storage, but the database lacks the tables" in err

    out = tmp_path / "sweep"
    grid = Grid("r", (0.0, 0.5), 1)
    result = run_sweep(TrainConfig(**TINY), grid, out, storage=postgres_url)
    assert result.ok, result.summary()
    assert not (out / "study.db").exists()  # everything is on the server
    assert json.loads((out / "sweep.json").read_text())["storage"] == postgres_url

    records = load_records(postgres_url)
    assert [(r["value"], r["run"]) for r in records] == sorted(grid.points())
    for record in records:  # the same records as the run folders of this machine
        trial_dirs = list((out / "trials").glob(f"r={record['value']}_run=0_trial=*"))
        assert len(trial_dirs) == 1
        on_disk = json.loads((trial_dirs[0] / "record.json").read_text())
        assert on_disk["metrics"] == record["metrics"]
    assert load_records(out) == records  # the folder names the server in sweep.json

    report = tmp_path / "report"
    code = main(["report", postgres_url, "--study-name", STUDY, "--out", str(report)])
    assert code == 0, capsys.readouterr().err
    with open(report / "report.csv", newline="") as handle:
        rows = [
            row
            for row in csv.DictReader(handle)
            if row["split"] == "test" and row["metric"] == "mae"
        ]
    # One row per value of r, with the one run's test MAE of the server's records.
    assert {float(row["value"]): float(row["mean"]) for row in rows} == {
        r["value"]: pytest.approx(r["metrics"]["test"]["mae"]) for r in records
    }

    # Readers open the server read-only: a write is refused by PostgreSQL itself.
    reader = open_storage(postgres_url, read_only=True)
    try:
        with pytest.raises(optuna.exceptions.StorageInternalError) as info:
            reader.create_new_study([optuna.study.StudyDirection.MINIMIZE], "new")
        assert "read-only transaction" in str(info.value.__cause__)
    finally:
        reader.engine.dispose()
    assert optuna.get_all_study_names(postgres_url) == [STUDY]

    # optuna-dashboard (simloss[distributed]) shows the study and the metric columns.
    from optuna_dashboard import wsgi

    app = wsgi(postgres_url)
    studies = _dashboard_get(app, "/api/studies")["study_summaries"]
    assert [s["study_name"] for s in studies] == [STUDY]
    detail = _dashboard_get(app, f"/api/studies/{studies[0]['study_id']}")
    shown = {
        (attr["key"], attr["value"])
        for trial in detail["trials"]
        for attr in trial["user_attrs"]
        if attr["key"] == "test_mae"
    }
    expected = {("test_mae", str(r["metrics"]["test"]["mae"])) for r in records}
    assert shown == expected


# ----------------------------------------------------------------- a server restart
def _sweep_command(out: Path, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "simloss",
        "sweep",
        "--dataset=abalone",
        "--grid=r=0,0.3,0.6,0.9",
        "--runs=3",
        "--epochs=30",
        "--patience=30",
        "--limit=1000",
        f"--out={out}",
        f"--storage={url}",
        "--workers=2",
        "--heartbeat=1",
        "--threads=1",
        "--no-progress",
    ]


def _server(action: str) -> None:
    folder = os.environ.get("SIMLOSS_TEST_POSTGRES_DIR")
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres.sh"), action, str(folder)],
        check=True,
        capture_output=True,
        timeout=120,
    )


def _complete_count(url: str) -> int:
    try:
        storage = open_storage(url, read_only=True)
    except (ValueError, RuntimeError):  # no tables yet, or being created
        return 0
    try:
        study = optuna.load_study(study_name=STUDY, storage=storage)
        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    except KeyError:  # the study is not there yet
        return 0
    finally:
        storage.engine.dispose()


def _logs(out: Path) -> str:
    return "".join(p.read_text() for p in sorted((out / "logs").glob("*.log")))


def test_a_server_restart_mid_sweep_loses_nothing(tmp_path: Path, postgres_url: str) -> None:
    if not os.environ.get("SIMLOSS_TEST_POSTGRES_DIR"):
        pytest.skip(
            "restarts the server: needs SIMLOSS_TEST_POSTGRES_DIR, the folder of a "
            "throw-away server started by scripts/postgres.sh"
        )
    out = tmp_path / "sweep"
    proc = subprocess.Popen(
        _sweep_command(out, postgres_url),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _complete_count(postgres_url) < 1:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the sweep never got going"
            time.sleep(0.05)
        # 1. `pg_ctl restart` while trials run: every connection is cut.
        _server("restart")
        # 2. The server gone for a while: stopped until a worker has had to wait for it.
        _server("stop")
        try:
            deadline = time.monotonic() + 60
            while "retrying in" not in _logs(out):
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "no worker noticed the server was gone"
                time.sleep(0.05)
        finally:
            _server("start")
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "12/12 finished" in stdout
    study = optuna.load_study(study_name=STUDY, storage=postgres_url)
    complete = Counter(
        (t.user_attrs["value"], t.user_attrs["run"])
        for t in study.get_trials(states=(TrialState.COMPLETE,))
    )
    grid = Grid("r", (0.0, 0.3, 0.6, 0.9), 3)
    assert complete == Counter(grid.points())
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


# ------------------------------------------------------- drivers and lost connections
def test_a_missing_postgresql_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` fails
    with pytest.raises(ImportError) as info:
        check_driver("postgresql://user:secret@db/simloss")
    message = str(info.value)
    assert "\n" not in message and "secret" not in message
    assert "needs the PostgreSQL driver psycopg (SQLAlchemy" in message
    assert "reads postgresql:// as postgresql+psycopg://" in message
    assert "pip install 'simloss[distributed]'" in message
    assert "postgresql+psycopg2://" in message
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(
        ImportError, match=r"driver psycopg2, which .*or write postgresql\+psycopg://"
    ):
        check_driver("postgresql+psycopg2://user@db/simloss")


def test_the_driver_is_checked_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    argv = ["sweep", "--grid=r=0", "--epochs=1", "--limit=200", "--runs=1", f"--out={out}"]
    assert main([*argv, "--storage=postgres://user:secret@db/simloss"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "secret" not in err
    assert "names 'postgres'; write postgresql://... for PostgreSQL" in err
    assert not out.exists()


def _lost(message: str) -> Exception:
    """A lost connection as a worker sees it: psycopg's error inside SQLAlchemy's
    inside Optuna's."""
    import psycopg

    try:
        try:
            raise sqlalchemy.exc.OperationalError("SELECT 1", {}, psycopg.OperationalError(message))
        except sqlalchemy.exc.OperationalError as exc:
            raise optuna.exceptions.StorageInternalError("commit failed") from exc
    except optuna.exceptions.StorageInternalError as exc:
        return exc


def test_which_errors_count_as_a_lost_connection() -> None:
    assert is_connection_error(_lost("connection refused"))
    assert is_connection_error(RuntimeError("storage failed").with_traceback(None)) is False
    assert not is_connection_error(sqlite3.OperationalError("database or disk is full"))
    locked = sqlalchemy.exc.OperationalError("x", {}, sqlite3.OperationalError("locked"))
    assert not is_connection_error(locked)
    assert not is_connection_error(ValueError("bad value"))
    # What Optuna's next call on a session cut by a restart raises (seen in this test
    # file's restart test without retries); Optuna rolls the session back.
    assert (
        is_connection_error(optuna.exceptions.StorageInternalError("x").with_traceback(None))
        is False
    )
    pending = sqlalchemy.exc.PendingRollbackError("Can't reconnect until invalid transaction")
    assert is_connection_error(pending)


def test_reconnecting_backs_off_then_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    clock = [0.0]

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    calls = iter([_lost("refused"), _lost("refused"), _lost("refused"), "answer"])

    def flaky() -> str:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    seen: list[float] = []
    assert reconnecting(flaky, on_retry=lambda exc, wait: seen.append(wait)) == "answer"
    assert seen == waits and len(waits) == 3
    for wait, nominal in zip(waits, (0.5, 1.0, 2.0), strict=True):
        assert 0.75 * nominal <= wait <= 1.25 * nominal

    # A server that stays away: the last error after `patience` seconds.
    waits.clear()

    def down() -> None:
        raise _lost("refused for good")

    with pytest.raises(optuna.exceptions.StorageInternalError):
        reconnecting(down, patience=30.0)
    assert 30.0 - 1e-9 <= sum(waits) <= 30.0 + 1e-9 and max(waits) <= 8.0 * 1.25

    # Any other error at once, without waiting.
    waits.clear()

    def bad() -> None:
        raise ValueError("not a connection problem")

    with pytest.raises(ValueError, match="not a connection problem"):
        reconnecting(bad)
    assert waits == []
