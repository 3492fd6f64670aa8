"""``simloss report`` end to end on a sweep folder backed by a real Optuna SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simloss.cli import main

optuna = pytest.importorskip("optuna")
records = pytest.importorskip("simloss.experiments.sweep")


def _sweep(folder: Path, runs: int = 6) -> None:
    """r in {0.0, 0.5} x 6 runs finished; the grid also names r = 0.9 (not started)."""
    folder.mkdir()
    url = records.sqlite_url(folder / "study.db")
    study = optuna.create_study(study_name="cli", storage=url)
    for value in (0.0, 0.5):
        for run in range(runs):
            record = {
                "dataset": "abalone",
                "class_values": [1.0, 2.0, 3.0],
                "metrics": {
                    "val": {"acc": 0.3 + value, "mae": 2.0 - value},
                    "test": {"acc": 0.3 + value * (1 + run), "mae": 2.0 - value / 10 * run},
                },
            }
            attrs = {"param": "r", "value": value, "run": run, "record": record}
            attrs["record_path"] = f"trials/{value}_{run}/record.json"
            study.add_trial(optuna.trial.create_trial(value=1.0, user_attrs=attrs))
    settings = {
        "study_name": "cli",
        "storage": None,
        "dataset": "abalone",
        "grid": {"param": "r", "values": [0.0, 0.5, 0.9], "runs": runs},
    }
    (folder / "sweep.json").write_text(json.dumps(settings))


def test_report_command_writes_tables_and_prints_markdown(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep"
    _sweep(sweep)
    assert main(["report", str(sweep), "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "| 0.5 | 6 | **80.00** | **1.50** | 205.00+ | 1.88 |" in printed
    # run 0 has the same test MAE as CCE: 5 non-zero differences cannot reach 5 %
    assert "not made: too few runs (5 non-zero of 6 pairs; 6 needed)" in printed
    assert "r = 0.9: no finished runs" in printed
    for name in ("report.md", "report.tex", "report.csv"):
        assert (sweep / "report" / name).stat().st_size > 0


def test_report_command_with_figures_and_storage_url(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep"
    _sweep(sweep)
    url = records.sqlite_url(sweep / "study.db")
    out = tmp_path / "elsewhere"
    assert main(["report", url, "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == f"report written to {out}"
    assert (out / "metrics_vs_r.png").stat().st_size > 0
    assert (out / "similarity.pdf").stat().st_size > 0


def test_report_command_errors_are_one_line(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep"
    _sweep(sweep)
    url = records.sqlite_url(sweep / "study.db")
    assert main(["report", url]) == 1
    assert "Expected --out" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "absent")]) == 1
    assert "simloss report: error:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", str(sweep), "--figure2-values", "a,b"])


def test_help_has_examples(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    assert "examples:" in capsys.readouterr().out


def test_a_partial_study_of_several_losses_names_its_missing_runs(tmp_path: Path, capsys) -> None:
    # The study asked for SimLoss r in {0, 0.5} and SORD alpha in {1, 2}, 2 runs each;
    # SORD alpha=1 has run 0 only and alpha=2 none. The grids live in the study
    # (sweep.json mirrors them; here it is hand-edited to hide the SORD grid).
    from simloss.experiments.sweep.grid import GRID_ATTR

    folder = tmp_path / "sweep"
    folder.mkdir()
    url = records.sqlite_url(folder / "study.db")
    study = optuna.create_study(study_name="cli", storage=url)
    study.set_user_attr(
        GRID_ATTR,
        [
            {"param": "r", "values": [0.0, 0.5], "runs": 2},
            {"param": "alpha", "values": [1.0, 2.0], "runs": 2, "loss": "sord"},
        ],
    )
    done = [("simloss", "r", v, run) for v in (0.0, 0.5) for run in (0, 1)]
    for loss, param, value, run in [*done, ("sord", "alpha", 1.0, 0)]:
        record = {
            "dataset": "abalone",
            "monitor": "mae",
            "class_values": [1.0, 2.0, 3.0],
            "metrics": {"val": {"mae": 2.0 - value / 10}, "test": {"mae": 2.0 - run / 10}},
        }
        attrs = {"loss": loss, "param": param, "value": value, "run": run, "record": record}
        attrs["record_path"] = f"trials/{loss}{value}_{run}/record.json"
        study.add_trial(optuna.trial.create_trial(value=1.0, user_attrs=attrs))
    settings = {"study_name": "cli", "storage": None, "dataset": "abalone", "grid": []}
    (folder / "sweep.json").write_text(json.dumps(settings))
    for source in (str(folder), url):
        assert main(["report", source, "--out", str(tmp_path / "rep"), "--no-figures"]) == 0
        printed = capsys.readouterr().out
        assert "## Missing (partial sweep)" in printed
        assert "- sord alpha=1.0: run(s) [1] not finished (1 of 2)" in printed
        assert "- sord alpha=2.0: no finished runs" in printed
        assert "r=0.5: run" not in printed  # SimLoss is complete


def test_a_study_whose_other_losses_have_no_run_yet_is_a_comparison(tmp_path: Path, capsys) -> None:
    # Only SimLoss has finished runs, but the study also asks for CE: not a SimLoss-only report.
    from simloss.experiments.sweep.grid import GRID_ATTR

    sweep = tmp_path / "sweep"
    _sweep(sweep, runs=2)
    url = records.sqlite_url(sweep / "study.db")
    study = optuna.load_study(study_name="cli", storage=url)
    study.set_user_attr(
        GRID_ATTR,
        [
            {"param": "r", "values": [0.0, 0.5], "runs": 2},
            {"param": None, "values": [], "runs": 2, "loss": "ce"},
        ],
    )
    assert main(["report", str(sweep), "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# Loss comparison: abalone")
    assert "- ce: no finished runs" in printed


def test_a_sweep_file_grid_that_is_no_grid_is_named(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep"
    _sweep(sweep, runs=2)
    settings = json.loads((sweep / "sweep.json").read_text())
    settings["grid"] = {"param": "r", "values": "a", "runs": 2}
    (sweep / "sweep.json").write_text(json.dumps(settings))
    assert main(["report", str(sweep), "--no-figures"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Expected 'grid' in" in err and "sweep.json" in err


def test_a_report_into_a_folder_of_something_else_is_refused(tmp_path: Path, capsys) -> None:
    # `simloss report SWEEP --out RUN` wrote report.md/.tex/.csv beside a run's model.pt.
    sweep = tmp_path / "sweep"
    _sweep(sweep, runs=2)
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "model.pt", "record.json"):
        (run / name).write_text("x")
    assert main(["report", str(sweep), "--out", str(run), "--no-figures"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"Expected --out {run} outside" in err
    assert f"but it is the run folder {run}" in err
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "model.pt", "record.json"]
    assert main(["report", str(sweep), "--out", str(sweep), "--no-figures"]) == 1  # the sweep's
    assert f"but it is the sweep folder {sweep}" in capsys.readouterr().err
    out = tmp_path / "rep"  # a report's own folder is rewritten
    for _ in range(2):
        assert main(["report", str(sweep), "--out", str(out), "--no-figures", "--quiet"]) == 0
