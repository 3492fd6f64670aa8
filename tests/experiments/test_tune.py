"""run_tune end to end on the embedded Abalone data: search, pruning, confirmation, result files.

One small tune is run once for the module; the tests read it, rerun it and
check it against independent computations (the records' own numbers, scipy's
Wilcoxon test, a brute-force dominance check).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from scipy import stats

from simloss.experiments.config import TrainConfig
from simloss.experiments.sweep import load_records, sqlite_url
from simloss.experiments.tune import TuneResult, load_tune, run_tune

# Short runs that early-stop after 5 epochs without improvement; the pruner judges
# a run from epoch 10 (twice the patience) on.
BASE = {"dataset": "abalone", "epochs": 40, "patience": 5, "limit": 800, "progress": False}
RUNS = 6  # the fewest with which the Wilcoxon test against CCE can reach p < 0.05
BUDGET = 700


def _tune(out: Path, **changes: object) -> TuneResult:
    kwargs: dict = {
        "objectives": ["val_mae"],
        "budget": BUDGET,
        "runs": RUNS,
        "threads": 1,
        "progress": False,
    }
    kwargs.update(changes)
    return run_tune(TrainConfig(**BASE), out, **kwargs)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TuneResult]:
    out = tmp_path_factory.mktemp("tune") / "ab"
    return out, _tune(out)


def _study(out: Path) -> optuna.Study:
    return optuna.load_study(
        study_name="simloss-tune-abalone", storage=sqlite_url(out / "study.db")
    )


def _records_on_disk(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "trials").glob("*/record.json"))]


def test_tune_finishes_with_cce_and_a_confirmed_choice(tuned: tuple[Path, TuneResult]) -> None:
    out, result = tuned
    assert result.complete, result.text()
    cce = 0.0
    assert result.confirmed[0] == cce and len(result.confirmed) == 2
    for value in result.confirmed:  # CCE and the candidate, RUNS seeds each
        cell = result.stats(value, "val", "mae")
        assert cell is not None and sorted(cell.runs) == list(range(RUNS))
    # The choice is the confirmed value with the best mean validation MAE, recomputed
    # from the records of the confirmation runs.
    by_value: dict[float, list[float]] = {}
    for record in load_records(sqlite_url(out / "study.db")):
        if record["value"] in result.confirmed and record["run"] < RUNS:
            by_value.setdefault(record["value"], []).append(record["metrics"]["val"]["mae"])
    assert {v: len(x) for v, x in by_value.items()} == dict.fromkeys(result.confirmed, RUNS)
    assert result.best == (min(by_value, key=lambda v: np.mean(by_value[v])),)


def test_the_test_against_cce_is_the_reports_wilcoxon(tuned: tuple[Path, TuneResult]) -> None:
    out, result = tuned
    candidate = result.candidates[0] if result.candidates else None
    assert candidate is not None and candidate != 0.0
    records = {(r["value"], r["run"]): r for r in load_records(sqlite_url(out / "study.db"))}
    diffs = [
        records[(candidate, run)]["metrics"]["test"]["mae"]
        - records[(0.0, run)]["metrics"]["test"]["mae"]
        for run in range(RUNS)
    ]
    test = result.versus_cce(candidate, "mae")
    assert test is not None and test.n_pairs == RUNS
    # Rounded as the report rounds them: MAE is a multiple of 1 / (examples), and the
    # float subtraction must not split tied differences.
    diffs = [round(d, 12) for d in diffs]
    nonzero = [d for d in diffs if d != 0]
    if len(nonzero) >= 6:
        expected = stats.wilcoxon(diffs, zero_method="wilcox", alternative="two-sided")
        assert test.status == "tested"
        assert test.p_value == pytest.approx(float(expected.pvalue))
        assert test.mean_difference == pytest.approx(float(np.mean(diffs)))
    else:
        assert test.status in ("too_few_runs", "all_zero")


def test_pruning_happens_and_is_recorded(tuned: tuple[Path, TuneResult]) -> None:
    out, result = tuned
    pruned = [t for t in _study(out).get_trials() if t.state == TrialState.PRUNED]
    pruned = [t for t in pruned if "duplicate_of" not in t.user_attrs]
    assert pruned, "no search trial was pruned"
    for trial in pruned:
        assert trial.user_attrs["phase"] == "search" and trial.user_attrs["stop_reason"] == "pruned"
        record = json.loads((out / trial.user_attrs["record_path"]).read_text())
        assert record["stop_reason"] == "pruned"
        # Judged only from twice the patience on, stopped before the cap, every epoch reported.
        assert 2 * BASE["patience"] <= record["epochs_run"] < BASE["epochs"]
        assert max(trial.intermediate_values) == record["epochs_run"] == trial.user_attrs["epochs"]
        # The last report is the objective at the epoch early stopping kept.
        assert trial.intermediate_values[record["epochs_run"]] == record["metrics"]["val"]["mae"]
    assert result.count("search", "pruned") == len(pruned)
    assert "pruned" in (out / "result" / "tune.md").read_text()


def test_compute_is_the_epochs_of_the_runs_on_disk(tuned: tuple[Path, TuneResult]) -> None:
    out, result = tuned
    on_disk = _records_on_disk(out)
    assert result.epochs() == sum(r["epochs_run"] for r in on_disk)
    assert result.seconds() == pytest.approx(sum(r["wall_time_s"] for r in on_disk))
    assert result.count() == len(on_disk)  # every trained trial has its folder
    phases = Counter(t.phase for t in result.trials if t.duplicate_of is None)
    assert phases["cce"] == RUNS and phases["confirm"] == RUNS - 1  # run 0 is the search's
    if result.epochs() > BUDGET:  # the budget is planned from run lengths so far: said when missed
        assert any("more than its budget" in note for note in result.notes)


def test_result_files(tuned: tuple[Path, TuneResult]) -> None:
    out, result = tuned
    folder = out / "result"
    names = {p.name for p in folder.iterdir()}
    assert {"tune.md", "tune.csv", "tune.json", "tune_r.png", "tune_r.pdf", "report.md"} <= names
    data = json.loads((folder / "tune.json").read_text())
    assert [b["value"] for b in data["best"]] == list(result.best)
    assert data["compute"]["total"]["epochs"] == result.epochs()
    # Wall time: the first start to the last end of the trials, at least their training.
    assert data["elapsed_s"] == pytest.approx(result.elapsed_s) and result.elapsed_s is not None
    assert result.elapsed_s >= result.seconds() * 0.99
    for entry in data["best"]:  # the test against CCE gives its effect, shift and null
        for test in entry["versus_cce_test"].values():
            assert {"effect", "hodges_lehmann", "null", "p_value"} <= set(test)
            if test["status"] == "tested":
                assert test["null"] in ("exact", "normal approximation")
                assert -1.0 <= test["effect"] <= 1.0
    best = data["best"][0]
    runs = [best["val"]["mae"]["runs"][str(i)] for i in range(RUNS)]
    assert best["val"]["mae"]["mean"] == pytest.approx(np.mean(runs))
    assert best["val"]["mae"]["se"] == pytest.approx(np.std(runs, ddof=1) / math.sqrt(RUNS))
    csv_lines = (folder / "tune.csv").read_text().splitlines()
    assert csv_lines[0].startswith("table,param,row,runs,split,column,value")
    markdown = (folder / "tune.md").read_text()
    assert "## Chosen value" in markdown and "## Compute" in markdown and "(CCE)" in markdown
    tuned_json = json.loads((out / "tune.json").read_text())
    assert tuned_json["tune"]["budget"] == BUDGET and tuned_json["storage"] is None


def test_rerun_of_a_finished_tune_trains_nothing(tuned: tuple[Path, TuneResult]) -> None:
    out, result = tuned
    before = [(t.number, t.state, t.values) for t in _study(out).get_trials()]
    again = _tune(out)
    assert [(t.number, t.state, t.values) for t in _study(out).get_trials()] == before
    assert again.best == result.best and again.epochs() == result.epochs()


def test_budget_cannot_change_once_the_confirmation_is_planned(
    tuned: tuple[Path, TuneResult],
) -> None:
    out, _ = tuned
    with pytest.raises(ValueError, match="has planned its confirmation") as info:
        _tune(out, budget=BUDGET + 1)
    assert "budget=700, now 701" in str(info.value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"runs": RUNS + 1}, "runs=6 (now 7)"),
        ({"sampler": "gp"}, "sampler='tpe' (now 'gp')"),
    ],
    ids=["runs", "sampler"],
)
def test_changed_tune_settings_are_refused_by_name(
    tuned: tuple[Path, TuneResult], changes: dict, message: str
) -> None:
    out, _ = tuned
    with pytest.raises(ValueError, match="other tune settings") as info:
        _tune(out, **changes)
    assert message in str(info.value)


def test_changed_run_setting_is_refused_by_name(tuned: tuple[Path, TuneResult]) -> None:
    out, _ = tuned
    with pytest.raises(ValueError, match=r"epochs=40 \(now 41\)"):
        run_tune(TrainConfig(**{**BASE, "epochs": 41}), out, objectives=["val_mae"], budget=BUDGET)


def test_load_tune_reads_without_writing(tuned: tuple[Path, TuneResult]) -> None:
    out, result = tuned
    stamp = (out / "study.db").stat().st_mtime_ns
    again = load_tune(out)
    assert again.best == result.best and again.epochs() == result.epochs()
    assert (out / "study.db").stat().st_mtime_ns == stamp
    with pytest.raises(FileNotFoundError, match="is not a tune folder"):
        load_tune(out / "trials")


def test_a_tune_into_a_sweeps_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    # A sweep's folder has a study.db: a tune there opened it and added its study
    # to the sweep's storage, its trials beside the sweep's.
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    for name in ("sweep.json", "study.db"):
        (sweep / name).write_text("x")
    with pytest.raises(FileExistsError, match=r"tune folder .* also holds \['sweep.json'\]"):
        _tune(sweep)
    assert sorted(p.name for p in sweep.iterdir()) == ["study.db", "sweep.json"]
    assert (sweep / "study.db").read_text() == "x"


def test_load_records_reads_a_tune_folder_as_its_storage(tuned: tuple[Path, TuneResult]) -> None:
    out, _ = tuned
    by_url = load_records(sqlite_url(out / "study.db"), "simloss-tune-abalone")
    by_folder = load_records(out)
    assert by_folder == by_url
    # One per finished trial that is not a repeat of another (repeats hold no record).
    finished = [
        t
        for t in _study(out).get_trials(states=(TrialState.COMPLETE,))
        if "duplicate_of" not in t.user_attrs
    ]
    assert len(by_folder) == len(finished) > 0


def test_report_refuses_a_tune_folder_and_study_in_one_line(
    tuned: tuple[Path, TuneResult], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A sweep report would rank the one-run search values beside the confirmed means.
    from simloss.cli import main

    out, _ = tuned
    for argv in (
        [str(out)],
        [sqlite_url(out / "study.db"), "--out", str(tmp_path / "r")],
    ):
        code = main(["report", *argv, "--quiet"])
        err = capsys.readouterr().err
        assert code == 1 and err.count("\n") == 1 and "result/report.md" in err, err
    assert not (out / "report").exists() and not (tmp_path / "r").exists()
