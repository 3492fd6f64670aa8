"""Many commands on one study: nothing mixed, nothing lost, on SQLite and on PostgreSQL.

Races are made deterministic where the code has a window (two commands both read
"no settings yet", then both write: a barrier holds each between its read and its
write); where they cannot be, the commands are started together several times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest

from simloss.cli import main
from simloss.experiments.config import TrainConfig
from simloss.experiments.report.write import check_report_folder
from simloss.experiments.sweep import Grid, engine, load_records, run_sweep
from simloss.experiments.sweep.engine import claim_settings, insert_once, worker_slot
from simloss.experiments.sweep.settings import fixed_settings
from simloss.experiments.sweep.trials import SETTINGS_ATTR
from simloss.experiments.train import run_training

TINY = {"epochs": 1, "limit": 150, "batch_size": 64, "progress": False, "num_threads": 1}
CLI_TINY = ["--epochs", "1", "--limit", "150", "--batch-size", "64", "--no-progress"]


def _settings(epochs: int) -> dict:
    fixed = fixed_settings(TrainConfig(**{**TINY, "epochs": epochs}))
    return {"dataset": "abalone", "fixed": fixed, "data": {"sha256": "x"}, "heartbeat_interval": 10}


def test_settings_are_claimed_once_when_two_commands_read_before_either_writes(
    storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both read "no settings", both try to write: the first insert wins, the other is refused."""
    optuna.create_study(study_name="s", storage=storage_url)
    barrier = threading.Barrier(2, timeout=60)
    real = engine.insert_once

    def after_both_read(*args: object, **kwargs: object) -> bool:
        barrier.wait()  # each command has read "no settings" before either writes
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "insert_once", after_both_read)
    outcomes: dict[int, object] = {}

    def command(epochs: int) -> None:
        study = optuna.load_study(study_name="s", storage=storage_url)
        try:
            outcomes[epochs] = claim_settings(
                study, SETTINGS_ATTR, _settings(epochs), url=storage_url, kind="Sweep",
                heartbeat_given=False, data_place=None,
            )  # fmt: skip
        except ValueError as exc:
            outcomes[epochs] = exc

    threads = [threading.Thread(target=command, args=(e,)) for e in (2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refused = [e for e, o in outcomes.items() if isinstance(o, ValueError)]
    assert len(refused) == 1, outcomes
    winner = 5 - refused[0]
    assert f"other fixed settings: epochs={winner} (now {refused[0]})" in str(outcomes[refused[0]])
    stored = optuna.load_study(study_name="s", storage=storage_url).user_attrs[SETTINGS_ATTR]
    assert stored["fixed"]["epochs"] == winner


def test_two_identical_commands_that_read_before_either_writes_both_go_on(
    storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two tunes or sweeps of the same settings started together: neither is refused."""
    optuna.create_study(study_name="s", storage=storage_url)
    barrier = threading.Barrier(2, timeout=60)
    real = engine.insert_once
    monkeypatch.setattr(engine, "insert_once", lambda *a, **k: (barrier.wait(), real(*a, **k))[1])
    outcomes = []

    def command() -> None:
        study = optuna.load_study(study_name="s", storage=storage_url)
        claimed = claim_settings(
            study, SETTINGS_ATTR, _settings(2), url=storage_url, kind="Tune",
            heartbeat_given=False, data_place=None,
        )  # fmt: skip
        outcomes.append(claimed)

    threads = [threading.Thread(target=command) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 2 and outcomes[0] == outcomes[1]


def test_insert_once_keeps_the_first_value(storage_url: str) -> None:
    study = optuna.create_study(study_name="s", storage=storage_url)
    assert insert_once(study, "k", 1) and not insert_once(study, "k", 2)
    assert study.user_attrs["k"] == 1
    # Workers of two commands get distinct slots (their tunes' sampler seeds).
    assert [worker_slot(study, i) for i in (0, 1)] == [0, 1]
    assert [worker_slot(study, i) for i in (0, 1)] == [1000, 1001]


def _command(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "simloss", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )


TRIES = 3


def test_two_sweeps_of_other_settings_started_together_never_both_run(
    storage_url: str, tmp_path: Path
) -> None:
    """Two machines' sweeps into one study with other --epochs: one runs, one is refused."""
    for attempt in range(TRIES):
        study = f"race{attempt}"
        argv = ["sweep", *CLI_TINY, "--grid", "r=0.5", "--runs", "1", "--storage",
                storage_url, "--study-name", study]  # fmt: skip
        commands = [
            _command([*argv, "--epochs", str(e), "--out", str(tmp_path / f"{study}-{e}")], tmp_path)
            for e in (2, 3)
        ]
        results = [(c.wait(timeout=600), c.stderr.read()) for c in commands]
        codes = sorted(code for code, _ in results)
        assert codes == [0, 1], results
        refused = next(err for code, err in results if code == 1)
        assert "made with other fixed settings: epochs=" in refused, refused
        ran = next(e for (code, _), e in zip(results, (2, 3), strict=True) if code == 0)
        records = load_records(storage_url, study)
        assert [r["config"]["epochs"] for r in records] == [ran]
        saved = json.loads((tmp_path / f"{study}-{ran}" / "sweep.json").read_text())
        assert saved["fixed"]["epochs"] == ran


def test_two_identical_tunes_started_together_finish_and_read(
    storage_url: str, tmp_path: Path
) -> None:
    """The docs' several-machines tune: the same command twice at once, a fixed sampler seed."""
    from simloss.experiments.tune import load_tune

    for attempt in range(TRIES):
        study = f"tune{attempt}"
        argv = ["tune", *CLI_TINY, "--epochs", "2", "--patience", "1", "--objective", "val_mae",
                "--budget", "40", "--runs", "2", "--sampler-seed", "7", "--storage", storage_url,
                "--study-name", study]  # fmt: skip
        commands = [
            _command([*argv, "--out", str(tmp_path / f"{study}-{k}")], tmp_path) for k in (0, 1)
        ]
        results = [(c.wait(timeout=900), c.stderr.read()) for c in commands]
        assert [code for code, _ in results] == [0, 0], results
        for k in (0, 1):
            result = load_tune(tmp_path / f"{study}-{k}")
            assert result.complete and (tmp_path / f"{study}-{k}" / "result" / "tune.md").exists()
        values = [t.value for t in result.trials if t.phase == "search" and t.duplicate_of is None]
        assert len(values) == len(set(values)), "two workers proposed one value"


def test_two_finished_trials_of_one_point_keep_the_first(tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert run_sweep(TrainConfig(**TINY), Grid("r", (0.5,), 1), out).ok
    study = optuna.load_study(study_name="simloss-abalone", storage=f"sqlite:///{out}/study.db")
    (first,) = study.get_trials()
    twin = optuna.trial.create_trial(
        params=first.params, distributions=first.distributions, value=first.value,
        user_attrs=first.user_attrs,
    )  # fmt: skip
    study.add_trial(twin)  # a second command ran the same point at once
    records = load_records(out)
    assert len(records) == 1 and records[0]["run"] == 0


def test_a_peers_temporary_file_is_no_foreign_entry_of_a_report_folder(tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text("x")
    (tmp_path / ".metrics_vs_r.pdf.iwrpi4dz.tmp").write_bytes(b"")  # another command writing
    check_report_folder(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"holds \['notes.txt'\]"):
        check_report_folder(tmp_path)


def test_startup_survives_a_server_that_drops_its_connections(
    postgres_url: str, tmp_path: Path
) -> None:
    """Every connection terminated every 0.4 s during start-up: retried, never a traceback."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    stop = threading.Event()

    def terminate() -> None:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            while not stop.is_set():
                connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (url.database,),
                )
                time.sleep(0.4)

    for attempt in range(TRIES):
        stop.clear()
        killer = threading.Thread(target=terminate)
        killer.start()
        threading.Timer(3.0, stop.set).start()  # the server comes back after 3 s
        try:
            result = run_sweep(
                TrainConfig(**TINY), Grid("r", (0.5,), 1), tmp_path / f"s{attempt}",
                storage=postgres_url, study_name=f"drop{attempt}",
            )  # fmt: skip
        finally:
            stop.set()
            killer.join()
        assert result.ok, result.summary()


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["predict", "--run", "{run}", "{rows}", "--out", "{run}/record.json"], "lies inside the run folder"),
        (["predict", "--run", "{run}", "{rows}", "--out", "{run}/model.pt"], "lies inside the run folder"),
        (["report", "{sweep}", "--out", "{run}/report"], "lies inside the run folder"),
        (["train", *CLI_TINY, "--r", "0.5", "--out", "{sweep}/trials/mine"], "lies inside the sweep folder"),
        (["matrix", "--order", "5", "--r", "0.5", "--out", "{run}/S"], "lies inside the run folder"),
        (["sweep", *CLI_TINY, "--grid", "r=0.5", "--runs", "1", "--out", "{run}/s"], "lies inside the run folder"),
    ],
    ids=["predict-record", "predict-weights", "report-in-run", "train-in-sweep", "matrix-in-run", "sweep-in-run"],
)  # fmt: skip
def test_no_command_writes_into_a_runs_or_sweeps_files(
    command: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, sweep = tmp_path / "run", tmp_path / "sweep"
    run_training(TrainConfig(r=0.5, **TINY), run)
    run_sweep(TrainConfig(**TINY), Grid("r", (0.5,), 1), sweep)
    rows = tmp_path / "rows.csv"
    rows.write_text("M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15\n")
    before = {p: p.read_bytes() for p in run.iterdir()}
    argv = [a.format(run=run, sweep=sweep, rows=rows) for a in command]
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert {p: p.read_bytes() for p in run.iterdir()} == before
    # A sweep's own report folder stays the report's default output.
    assert main(["report", str(sweep)]) == 0
