"""Storage URLs as users type them: passwords never shown, bad names refused at once.

Expected hidden forms come from SQLAlchemy's own ``URL.render_as_string(hide_password=True)``
and from :func:`urllib.parse.quote`, not from simloss.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy.engine import make_url

from simloss.cli import main
from simloss.experiments.config import TrainConfig
from simloss.experiments.sweep import Grid, run_sweep
from simloss.experiments.sweep.storage import (
    check_driver,
    hide_password,
    read_sweep_file,
    storage_error,
)
from simloss.experiments.tune import run_tune

TINY = {"dataset": "abalone", "epochs": 1, "limit": 200, "progress": False}
SECRET = "s3cr3t-Pw"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://simloss:{SECRET}@db:5432/sweeps",
        f"postgresql+psycopg://simloss:{quote('p@ss/w#rd', safe='')}@db/sweeps",
        f"mysql://root:{SECRET}@127.0.0.1/x?charset=utf8",
    ],
)
def test_hide_password_agrees_with_sqlalchemy(url: str) -> None:
    assert hide_password(url) == make_url(url).render_as_string(hide_password=True)


def test_hide_password_in_the_query_and_without_a_scheme() -> None:
    shown = hide_password(f"postgresql://simloss@db/sweeps?sslmode=require&password={SECRET}")
    assert SECRET not in shown and shown.endswith("sslmode=require&password=***")
    assert SECRET not in hide_password(f"simloss:{SECRET}@db/sweeps")  # no scheme typed
    assert SECRET not in hide_password(f"postgresql://u:p@{SECRET}@db/x")  # an unencoded '@'


def test_a_driver_message_quoting_the_password_is_scrubbed() -> None:
    url = f"postgresql://simloss:{quote(SECRET + '@x', safe='')}@db/x"
    error = storage_error(url, OSError(f"bad password {SECRET}@x for 'simloss'"))
    assert SECRET not in str(error) and str(error).count("\n") == 0


def test_an_unencoded_at_sign_in_the_password_is_refused_by_name() -> None:
    url = f"postgresql://simloss:p@{SECRET}@127.0.0.1:1/postgres"
    # SQLAlchemy itself would read a host cut out of the password:
    assert SECRET in str(make_url(url).host)
    with pytest.raises(ValueError, match="percent-encoded") as info:
        check_driver(url)
    assert SECRET not in str(info.value) and "\n" not in str(info.value)
    check_driver(f"postgresql://simloss:{quote('p@' + SECRET, safe='')}@127.0.0.1:1/postgres")


@pytest.mark.parametrize("command", ["sweep", "tune"])
def test_the_cli_never_prints_the_password(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens on port 1: the connection is refused, and said so in one line.
    url = f"postgresql://simloss:{SECRET}@127.0.0.1:1/postgres"
    extra = ["--grid", "r=0", "--runs", "1"] if command == "sweep" else ["--objective", "val_mae"]
    extra += ["--budget", "30"] if command == "tune" else []
    argv = [command, "--out", str(tmp_path / "o"), "--storage", url, "--epochs", "1"]
    code = main([*argv, "--limit", "200", *extra])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert SECRET not in err and "simloss:***@127.0.0.1:1" in err


def test_an_empty_study_name_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="`study_name` to be a non-empty name, but found ''"):
        run_sweep(TrainConfig(**TINY), Grid("r", (0.0,), 1), tmp_path / "s", study_name="")
    with pytest.raises(ValueError, match="`study_name` to be a non-empty name, but found ' '"):
        run_tune(
            TrainConfig(**TINY),
            tmp_path / "t",
            objectives=["val_mae"],
            budget=30,
            study_name=" ",
        )
    assert list(tmp_path.iterdir()) == []


def test_a_tune_on_a_sweeps_study_hides_the_password(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_sweep(
        TrainConfig(**TINY), Grid("r", (0.0,), 1), tmp_path / "s", storage=postgres_url
    )
    assert result.ok
    password = make_url(postgres_url).password
    assert password
    code = main(
        [
            "tune",
            "--out",
            str(tmp_path / "t"),
            "--storage",
            postgres_url,
            "--objective",
            "val_mae",
            "--budget",
            "30",
            "--epochs",
            "1",
            "--limit",
            "200",
            "--study-name",
            result.study_name,
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "is no simloss tune" in err
    assert password not in err


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_sqlite_storage_is_refused_by_name(url: str, tmp_path: Path) -> None:
    # Each worker process would get its own empty database.
    with pytest.raises(ValueError, match="in-memory database is private to one process"):
        run_sweep(TrainConfig(**TINY), Grid("r", (0.0,), 1), tmp_path / "s", storage=url)
    assert not (tmp_path / "s").exists()


def test_a_relative_sqlite_storage_is_stored_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rerun from another folder must open the same file, not a new empty study.
    monkeypatch.chdir(tmp_path)
    result = run_sweep(
        TrainConfig(**TINY), Grid("r", (0.0,), 1), tmp_path / "s", storage="sqlite:///shared.db"
    )
    assert result.ok
    stored = json.loads((tmp_path / "s" / "sweep.json").read_text())["storage"]
    assert stored == "sqlite:///" + os.path.join(os.path.realpath(tmp_path), "shared.db")
    monkeypatch.chdir(tmp_path / "s")
    again = run_sweep(TrainConfig(**TINY), Grid("r", (0.0,), 1), tmp_path / "s")
    assert again.ok and again.finished == 1 and again.storage == stored


def test_a_settings_file_holding_a_password_is_readable_by_its_owner_only(
    tmp_path: Path, postgres_url: str
) -> None:
    # sweep.json keeps the storage URL (a rerun needs it); with a password it is mode 0600.
    out = tmp_path / "s"
    assert run_sweep(TrainConfig(**TINY), Grid("r", (0.0,), 1), out, storage=postgres_url).ok
    assert make_url(postgres_url).password
    assert (out / "sweep.json").stat().st_mode & 0o777 == 0o600
    local = tmp_path / "local"
    assert run_sweep(TrainConfig(**TINY), Grid("r", (0.0,), 1), local).ok
    mask = os.umask(0)
    os.umask(mask)
    assert (local / "sweep.json").stat().st_mode & 0o777 == 0o666 & ~mask  # the usual


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"study_name": "s", "x": -1e999}', r"float range in sweep file .*sweep.json, but found"),
        ('{"study_name": "s", "a": {"b": 1, "b": 2}}', r"each key once in sweep file .*'b'"),
        ('{"study_name": "s", "x": [Infinity]}', r"JSON numbers in sweep file .*Infinity"),
    ],
    ids=["overflow", "nested-duplicate", "nested-infinity"],
)
def test_sweep_file_is_standard_json(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "sweep.json").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_sweep_file(tmp_path)


def test_sweep_file_that_is_a_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "sweep.json").mkdir()
    with pytest.raises(IsADirectoryError, match=r"sweep file .*sweep.json to be a file, but it"):
        read_sweep_file(tmp_path)


def test_a_sqlite_file_a_peer_is_creating_is_no_foreign_database(tmp_path: Path) -> None:
    # Two commands started on one new file: the second may find Optuna's schema half made.
    import sqlite3

    from simloss.experiments.sweep.storage import _check_sqlite_file, sqlite_url

    half = tmp_path / "half.db"
    with sqlite3.connect(half) as con:  # with an index and SQLite's own sqlite_sequence
        con.execute("CREATE TABLE studies (study_id INTEGER PRIMARY KEY AUTOINCREMENT, n TEXT)")
        con.execute("CREATE UNIQUE INDEX ix_studies_n ON studies (n)")
        con.execute("INSERT INTO studies (n) VALUES ('a')")
    _check_sqlite_file(sqlite_url(half), half, must_exist=False)  # a writer goes on
    with pytest.raises(ValueError, match=r"lacks the tables \['trials', 'version_info'\]"):
        _check_sqlite_file(sqlite_url(half), half, must_exist=True)  # a reader refuses
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(ValueError, match=r"lacks the tables \['studies', 'trials'"):
        _check_sqlite_file(sqlite_url(other), other, must_exist=False)
    with sqlite3.connect(other) as con:  # another program's table named like one of Optuna's
        con.execute("CREATE TABLE studies (study_id INTEGER)")
    with pytest.raises(ValueError, match=r"and holds other tables \['invoices'\]"):
        _check_sqlite_file(sqlite_url(other), other, must_exist=False)
