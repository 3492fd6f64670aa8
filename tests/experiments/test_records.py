"""load_records and the trial attributes it reads, on hand-made Optuna storages."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from simloss.experiments.points import point_key
from simloss.experiments.sweep import (
    attach_record,
    load_records,
    open_storage,
    resolve_source,
    sqlite_url,
)


def _record(mae: float) -> dict[str, Any]:
    return {"schema_version": 1, "metrics": {"val": {"mae": mae}, "test": {"mae": mae + 1}}}


def _add(study: optuna.Study, value: float, run: int, mae: float, **kw: Any) -> None:
    attrs = {"param": "r", "value": value, "run": run, "record": _record(mae)}
    attrs["record_path"] = f"trials/r={value}_run={run}/record.json"
    study.add_trial(create_trial(value=mae, user_attrs=attrs, **kw))


def _study(url: str, name: str = "s") -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name=name, storage=url)


def test_load_from_url_sorted_with_point_keys(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "s.db")
    study = _study(url)
    _add(study, 0.5, 1, 3.0)
    _add(study, 0.1 * 3, 0, 2.0)  # float drift: stored as 0.30000000000000004
    _add(study, 0.5, 0, 1.0)
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"param": "r", "value": 0.9}))
    records = load_records(url)
    assert [(r["value"], r["run"]) for r in records] == [(0.3, 0), (0.5, 0), (0.5, 1)]
    assert [r["metrics"]["val"]["mae"] for r in records] == [2.0, 1.0, 3.0]
    assert all(r["param"] == "r" and r["schema_version"] == 1 for r in records)


def test_load_from_sweep_folder(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "study.db")
    _add(_study(url, "simloss-abalone"), 0.0, 0, 1.0)
    (tmp_path / "sweep.json").write_text(json.dumps({"study_name": "simloss-abalone"}))
    assert resolve_source(tmp_path) == (url, "simloss-abalone")
    assert [r["value"] for r in load_records(tmp_path)] == [0.0]
    assert [r["value"] for r in load_records(str(tmp_path))] == [0.0]


def test_study_name_needed_when_several(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "s.db")
    _add(_study(url, "a"), 0.0, 0, 1.0)
    _add(_study(url, "b"), 0.9, 0, 2.0)
    with pytest.raises(ValueError, match=r"holds 2 studies: \['a', 'b'\]"):
        load_records(url)
    assert [r["value"] for r in load_records(url, study_name="b")] == [0.9]
    with pytest.raises(ValueError, match="study named 'c'"):
        load_records(url, study_name="c")


def test_a_point_finished_twice_keeps_its_first_trial(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Two commands that ran one point at once: every read keeps trial 0 and names trial 1.
    url = sqlite_url(tmp_path / "s.db")
    study = _study(url)
    _add(study, 0.3, 0, 1.0)
    _add(study, 0.3, 0, 2.0)
    with caplog.at_level("WARNING"):
        records = load_records(url)
    assert [r["metrics"]["val"]["mae"] for r in records] == [1.0]
    assert "trial 1 repeats r=0.3 run 0 of trial 0" in caplog.text


def test_finished_trial_without_record_is_an_error(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "s.db")
    _study(url).add_trial(create_trial(value=1.0, user_attrs={"param": "r", "value": 0.1}))
    with pytest.raises(ValueError, match=r"\['run', 'record'\] are missing"):
        load_records(url)


def test_missing_sources_are_not_created(tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_records(sqlite_url(db))
    assert not db.exists()
    with pytest.raises(FileNotFoundError, match="sweep folder or a storage URL"):
        load_records(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="sweep.json"):
        load_records(tmp_path)
    with pytest.raises(TypeError, match="source"):
        load_records(3)  # type: ignore[arg-type]
    (tmp_path / "sweep.json").write_text("{not json")
    with pytest.raises(ValueError, match="Could not parse sweep file .*sweep.json as JSON"):
        load_records(tmp_path)


def test_attach_record_sets_flat_metrics(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "s.db")
    study = _study(url)
    trial = study.ask()
    storage = open_storage(url)
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name("s"), trial.number
    )
    record = {"metrics": {"val": {"acc": 0.5, "fsa": None}, "test": {"acc": 0.25}}}
    attach_record(storage, trial_id, record, "trials/x/record.json")
    attrs = storage.get_trial_user_attrs(trial_id)
    assert attrs["record"] == record and attrs["record_path"] == "trials/x/record.json"
    assert attrs["val_acc"] == 0.5 and attrs["test_acc"] == 0.25 and "val_fsa" not in attrs
    with pytest.raises(ValueError, match="'metrics'"):
        attach_record(storage, trial_id, {"history": []}, "x")


def test_point_key_rounds_values() -> None:
    assert point_key(0.1 + 0.2, 1) == (0.3, 1)
    with pytest.raises(TypeError, match="run"):
        point_key(0.99, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="storage URL"):
        open_storage("study.db")


def _claim_all(url: str, ready: Any, go: Any, claims: Any) -> None:
    storage = open_storage(url)
    study = optuna.load_study(study_name="race", storage=storage)
    study_id = storage.get_study_id_from_name("race")
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    ready.release()
    go.wait()
    got = []
    for trial in waiting:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            if storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                got.append(trial.number)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass
    storage.engine.dispose()
    claims.put(got)


def test_claims_are_atomic_across_processes(storage_url: str) -> None:
    # Three processes claim the same 150 waiting trials at once, in the same order.
    # Plain Optuna on SQLite lets two processes both move one trial from WAITING to
    # RUNNING (the driver reads outside a transaction); open_storage must not. On
    # PostgreSQL, Optuna reads the trial with SELECT ... FOR UPDATE, so the second
    # claimant waits for the first one's commit and then sees RUNNING.
    url = storage_url
    storage = open_storage(url)
    study = optuna.create_study(study_name="race", storage=storage)
    for _ in range(150):
        study.add_trial(create_trial(state=TrialState.WAITING))
    storage.engine.dispose()
    context = multiprocessing.get_context("spawn")
    ready, go, claims = context.Semaphore(0), context.Event(), context.Queue()
    procs = [context.Process(target=_claim_all, args=(url, ready, go, claims)) for _ in range(3)]
    for proc in procs:
        proc.start()
    for _ in procs:
        assert ready.acquire(timeout=120)
    go.set()  # all start claiming the same list at once
    claimed = [number for _ in procs for number in claims.get(timeout=120)]
    for proc in procs:
        proc.join(timeout=60)
    assert sorted(claimed) == list(range(150))  # each trial claimed exactly once


def test_a_damaged_stored_attribute_names_the_storage(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "s.db"
    url = sqlite_url(db)
    _add(_study(url), 0.3, 0, 1.0)
    with sqlite3.connect(db) as con:  # a file damaged outside Optuna
        con.execute("UPDATE trial_user_attributes SET value_json = '{broken' WHERE key = 'record'")
    with pytest.raises(ValueError, match=rf"storage sqlite:///{db} to hold .* but one is damaged"):
        load_records(url)
