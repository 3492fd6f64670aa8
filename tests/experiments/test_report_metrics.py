"""``simloss report`` on an Abalone study shows the metrics beyond the paper's, with marks,
and says so when older runs of a resumed sweep lack them."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from simloss.experiments.config import TrainConfig
from simloss.experiments.report import summarize_sweep, to_markdown, write_report
from simloss.experiments.report.tables import extra_table
from simloss.experiments.sweep import Grid, load_records, run_sweep

RUNS = 7


@pytest.fixture(scope="module")
def abalone_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real sweep: CCE and r = 0.9, 7 runs each, 3 epochs on 400 Abalone rows."""
    out = tmp_path_factory.mktemp("sweep") / "abalone"
    base = TrainConfig(dataset="abalone", epochs=3, limit=400, batch_size=64, progress=False)
    result = run_sweep(base, Grid("r", (0.0, 0.9), RUNS), out)
    assert result.ok, result.summary()
    return out


def test_report_shows_qwk_amae_and_rps_with_marks(abalone_sweep: Path) -> None:
    records = load_records(abalone_sweep)
    for record in records:
        assert {"qwk", "amae", "mmae", "rps", "ms"} <= set(record["metrics"]["test"])
    summary = summarize_sweep(records)
    table = extra_table(summary)
    assert table is not None
    shown = [metric for split, metric in table.columns if split == "test"]
    assert shown[:5] == ["qwk", "amae", "mmae", "rps", "ms"]
    # every test cell carries the mark of its test against CCE, and the tests were made
    row = next(r for r in table.rows if r.label == "0.9")
    for (split, metric), cell in zip(table.columns, row.cells, strict=True):
        if split == "test":
            test = summary.tests[(0.9, metric)]
            assert cell.mark == test.mark, metric
            if metric in ("qwk", "amae", "rps"):  # MMAE and MS (worst classes) may tie
                assert test.made, test.reason
    marked = [m for m in shown if summary.tests[(0.9, m)].mark]
    assert {"qwk", "amae", "rps"} & set(marked), {m: summary.tests[(0.9, m)].reason for m in shown}
    text = write_report(records, abalone_sweep / "report").read_text()
    assert "## More metrics: QWK, AMAE, MMAE, RPS, MS" in text
    for metric in marked:
        cell = summary.cells[(0.9, "test", metric)]
        assert (
            f"{cell.mean * (100 if metric == 'ms' else 1):.2f}{summary.tests[(0.9, metric)].mark}"
            in text
        )
    assert "rank-biserial r_rb =" in text and "exact" in text


def test_older_runs_without_the_new_metrics_are_counted_not_mixed(abalone_sweep: Path) -> None:
    records = copy.deepcopy(load_records(abalone_sweep))
    for record in records:
        if record["run"] < 3:  # written before QWK and RPS were recorded
            for split in ("val", "test"):
                for key in ("qwk", "rps"):
                    del record["metrics"][split][key]
    summary = summarize_sweep(records)
    for value in (0.0, 0.9):
        assert summary.cells[(value, "test", "qwk")].n == RUNS - 3
        assert summary.cells[(value, "test", "amae")].n == RUNS
        newer = [
            r["metrics"]["test"]["rps"] for r in records if r["value"] == value and r["run"] >= 3
        ]
        assert summary.cells[(value, "test", "rps")].mean == pytest.approx(sum(newer) / len(newer))
    assert summary.tests[(0.9, "qwk")].n_pairs == RUNS - 3
    text = to_markdown(summary)
    assert "test qwk: 6 of 14 runs do not record it" in text
    extra = text.split("## More metrics")[1].split("## ")[0]
    assert f"| 0.9 | {RUNS - 3}-{RUNS} |" in extra  # the runs column says the cells differ
