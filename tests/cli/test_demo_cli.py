"""The ``simloss demo`` command: a small real sweep on the embedded Abalone data, then its report."""

from __future__ import annotations

from pathlib import Path

import pytest

from simloss.cli import main
from simloss.cli.demo import DEMO_GRID, DEMO_RUNS
from simloss.experiments.sweep import load_records


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "simloss demo --out" in text and "Abalone" in text
    assert DEMO_GRID == "r=0,0.3,0.6,0.9" and DEMO_RUNS == 6


def test_small_demo_prints_table_and_report_path_last(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    args = ["demo", f"--out={out}", "--grid=r=0,0.9", "--runs=2", "--epochs=2", "--limit=300"]
    code = main([*args, "--workers=1", "--no-progress"])
    stdout = capsys.readouterr().out
    assert code == 0
    lines = stdout.strip().splitlines()
    # The last printed line is the path of the report.
    assert lines[-1] == str((out / "report" / "report.md").resolve())
    assert "4/4 finished" in lines[0]
    table = [line for line in lines if line.startswith("|")]
    assert table, stdout  # the report's Markdown table is printed
    assert any("0.9" in line for line in table)
    records = load_records(out)
    assert len(records) == 4
    report = out / "report"
    assert report.is_dir() and any(report.glob("*.md"))
