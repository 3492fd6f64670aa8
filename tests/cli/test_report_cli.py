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
