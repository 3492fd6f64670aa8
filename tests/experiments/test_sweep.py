"""Sweeps of real (tiny) Abalone trainings: resume, extension, refusal, failures, duplicates."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from simloss.experiments.config import TrainConfig
from simloss.experiments.sweep import Grid, load_records, run_sweep, sqlite_url

TINY = {"dataset": "abalone", "epochs": 2, "limit": 300}


def _trials(out: Path, name: str = "simloss-abalone") -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=sqlite_url(out / "study.db"))
    return study.get_trials()


def _complete_points(trials: list[optuna.trial.FrozenTrial]) -> Counter[tuple[float, int]]:
    return Counter(
        (t.user_attrs["value"], t.user_attrs["run"])
        for t in trials
        if t.state == TrialState.COMPLETE
    )


def test_sweep_resumes_and_extends_without_rerunning(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    base = TrainConfig(**TINY)
    first = run_sweep(base, Grid("r", (0.0, 0.5), 1), out, workers=2, progress=False)
    assert first.ok and first.finished == 2 and first.total == 2
    before = {t.number: t.datetime_complete for t in _trials(out)}

    # A larger grid and more runs: only the new points run, finished ones stay as they were.
    second = run_sweep(base, Grid("r", (0.5, 0.9), 2), out, workers=1, progress=False)
    assert second.ok
    assert second.grid == Grid("r", (0.0, 0.5, 0.9), 2)
    trials = _trials(out)
    assert {t.number: t.datetime_complete for t in trials if t.number in before} == before
    assert _complete_points(trials) == Counter(second.grid.points())
    assert len(trials) == 6

    settings = json.loads((out / "sweep.json").read_text())
    assert settings["grid"] == {"param": "r", "values": [0.0, 0.5, 0.9], "runs": 2}
    assert settings["storage"] is None and settings["study_name"] == "simloss-abalone"

    records = load_records(out)
    assert [(r["value"], r["run"]) for r in records] == sorted(second.grid.points())
    for record in records:
        assert record["param"] == "r" and record["param_value"] == record["value"]
        # Abalone's thread default (1) went into every run, whatever the worker count.
        assert record["config"]["num_threads"] == 1
        assert record["config"]["progress"] is False
        assert record["config"]["seed"] == record["run"]  # base seed 0 + run index
        assert record["config"]["epochs"] == 2
    trial = next(t for t in trials if t.state == TrialState.COMPLETE)
    assert (out / trial.user_attrs["record_path"]).is_file()
    assert trial.value == trial.user_attrs["record"]["metrics"]["val"]["mae"]
    assert trial.user_attrs["test_mae"] == trial.user_attrs["record"]["metrics"]["test"]["mae"]
    assert trial.params == {"r": trial.user_attrs["value"], "run": trial.user_attrs["run"]}

    # A rerun of a finished sweep does nothing.
    third = run_sweep(base, Grid("r", (0.0,), 1), out, workers=1, progress=False)
    assert third.ok and len(_trials(out)) == 6


def test_changed_fixed_setting_is_refused_by_name(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    grid = Grid("r", (0.0,), 1)
    run_sweep(TrainConfig(**TINY), grid, out, progress=False)
    changed = TrainConfig(**{**TINY, "epochs": 3})
    with pytest.raises(ValueError, match=r"epochs=2 \(now 3\)"):
        run_sweep(changed, grid, out, progress=False)
    with pytest.raises(ValueError, match="heartbeat_interval"):
        run_sweep(TrainConfig(**TINY), grid, out, progress=False, heartbeat_interval=99)
    with pytest.raises(ValueError, match="study_name"):
        run_sweep(TrainConfig(**TINY), grid, out, progress=False, study_name="other")
    other = sqlite_url(tmp_path / "other.db")
    with pytest.raises(ValueError, match="Expected `storage`"):
        run_sweep(TrainConfig(**TINY), grid, out, progress=False, storage=other)
    assert not (tmp_path / "other.db").exists()
    # Local settings may differ between reruns.
    assert run_sweep(TrainConfig(**TINY, device="cpu"), grid, out, progress=False).ok


def test_wrong_parameter_for_dataset_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="over 'r' for dataset 'abalone'"):
        run_sweep(TrainConfig(**TINY), Grid("l", (0.5,), 1), tmp_path, progress=False)
    with pytest.raises(ValueError, match="workers"):
        run_sweep(TrainConfig(**TINY), Grid("r", (0.5,), 1), tmp_path, workers=0)


def test_failed_trial_is_recorded_and_others_finish(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    # Trial 1 is r=0.5 run 0 (points are enqueued run by run). Its folder is taken by
    # a file, so its training cannot write there: a real error in that trial only.
    blocker = out / "trials" / "r=0.5_run=0_trial=1"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    grid = Grid("r", (0.0, 0.5, 0.9), 1)
    result = run_sweep(TrainConfig(**TINY), grid, out, workers=1, progress=False)
    assert not result.ok
    assert result.finished == 2
    assert [(f.value, f.run, f.trial) for f in result.failed] == [(0.5, 0, 1)]
    assert "FileExistsError" in result.failed[0].error or "NotADirectory" in result.failed[0].error
    assert "failed: r=0.5 run 0 (trial 1)" in result.summary()
    failed = [t for t in _trials(out) if t.state == TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["error"] == result.failed[0].error

    # Rerunning retries the failed point, and only that one.
    blocker.unlink()
    again = run_sweep(TrainConfig(**TINY), grid, out, workers=1, progress=False)
    assert again.ok and not again.failed
    assert _complete_points(_trials(out)) == Counter(grid.points())


def test_duplicate_trials_of_a_point_run_once(tmp_path: Path) -> None:
    # Two machines starting at the same moment may both enqueue a point. Make that
    # happen on purpose: the sweep must still finish each point exactly once.
    out = tmp_path / "sweep"
    grid = Grid("r", (0.0, 0.5), 1)
    run_sweep(TrainConfig(**TINY), Grid("r", (0.0,), 1), out, progress=False)
    study = optuna.load_study(study_name="simloss-abalone", storage=sqlite_url(out / "study.db"))
    for _ in range(2):
        for value in (0.0, 0.5):
            study.add_trial(
                create_trial(
                    state=TrialState.WAITING,
                    params={"r": value, "run": 0},
                    distributions={"r": FloatDistribution(0, 1), "run": IntDistribution(0, 0)},
                    user_attrs={"param": "r", "value": value, "run": 0},
                )
            )
    result = run_sweep(TrainConfig(**TINY), grid, out, workers=1, progress=False)
    assert result.ok
    trials = _trials(out)
    assert _complete_points(trials) == Counter(grid.points())
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert len(pruned) == 3  # both copies of r=0.0 (already finished), one of r=0.5
    assert all("duplicate_of" in t.user_attrs for t in pruned)
    assert len(load_records(out)) == 2
