"""Report tables on a synthetic sweep with known values, checked against hand computation."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest

from simloss.experiments.report import (
    min_pairs_for_significance,
    summarize_sweep,
    to_csv,
    to_latex,
    to_markdown,
    wilcoxon_against_baseline,
    write_report,
)

RUNS = 7


def _record(value: float, run: int, val: dict[str, float], test: dict[str, float]) -> dict:
    return {
        "schema_version": 1,
        "dataset": "utkface",
        "param": "r",
        "value": value,
        "run": run,
        "class_values": [1, 2, 3],
        "metrics": {"val": val, "test": test},
    }


def _base_test(i: int) -> dict[str, float]:
    return {"acc": 0.10 + 0.01 * i, "mae": 7.5 - 0.05 * i, "mse": 130.0 + i}


def synthetic_records() -> list[dict[str, Any]]:
    """r = 0.0 and r = 0.5 with 7 runs each; r = 0.9 with runs 0..2 only (a partial sweep).

    - r = 0.5, test acc: CCE + 0.02 + 0.001 i, all 7 differences positive -> "+".
    - r = 0.5, test mae: CCE + 0.1 (i + 1), all worse -> "-".
    - r = 0.5, test mse: CCE + (-1)^i (i + 1): mixed signs -> no mark.
    - r = 0.9, test acc: equal to CCE -> all differences zero, test not made.
    - r = 0.9, test mae/mse: 3 pairs -> too few runs, test not made.
    - validation: acc best at r = 0.5; mae best at r = 0.9; mse tied at r = 0.5 and 0.9.
    """
    records = []
    for i in range(RUNS):
        base = _base_test(i)
        records.append(_record(0.0, i, {"acc": 0.20, "mae": 7.0, "mse": 120.0}, base))
        records.append(
            _record(
                0.5,
                i,
                {"acc": 0.25, "mae": 6.8, "mse": 100.0},
                {
                    "acc": base["acc"] + 0.02 + 0.001 * i,
                    "mae": base["mae"] + 0.1 * (i + 1),
                    "mse": base["mse"] + (-1) ** i * (i + 1),
                },
            )
        )
    for i in range(3):
        base = _base_test(i)
        records.append(
            _record(
                0.9,
                i,
                {"acc": 0.22, "mae": 6.5, "mse": 100.0},
                {"acc": base["acc"], "mae": base["mae"] - 0.3, "mse": base["mse"] - 5.0},
            )
        )
    return records


def exact_two_sided_p(diffs: list[float]) -> float:
    """Reference: exact two-sided signed-rank p-value by enumerating all sign flips."""
    ranks = {abs(d): r for r, d in enumerate(sorted(diffs, key=abs), start=1)}
    rank_list = [ranks[abs(d)] for d in diffs]
    observed = sum(r for r, d in zip(rank_list, diffs, strict=True) if d > 0)
    total = sum(rank_list)
    stat = min(observed, total - observed)
    count = 0
    for signs in itertools.product((0, 1), repeat=len(diffs)):
        plus = sum(r for r, s in zip(rank_list, signs, strict=True) if s)
        if min(plus, total - plus) <= stat:
            count += 1
    return min(1.0, count / 2 ** len(diffs))


@pytest.fixture
def summary():
    return summarize_sweep(synthetic_records())


def test_rows_order_and_counts(summary) -> None:
    assert summary.param == "r"
    assert summary.baseline == 0.0
    assert summary.values == [0.0, 0.5, 0.9]
    assert summary.metrics == ["acc", "mae", "mse"]
    assert summary.runs[0.9] == [0, 1, 2]


def test_cell_means_and_std(summary) -> None:
    base_acc = [0.10 + 0.01 * i for i in range(RUNS)]
    cell = summary.cells[(0.0, "test", "acc")]
    assert cell.mean == pytest.approx(0.13)
    assert cell.std == pytest.approx(statistics.stdev(base_acc))
    assert summary.cells[(0.5, "test", "acc")].mean == pytest.approx(0.153)
    assert summary.cells[(0.5, "test", "mae")].mean == pytest.approx(7.75)
    assert summary.cells[(0.5, "test", "mse")].mean == pytest.approx(133 + 4 / 7)
    assert summary.cells[(0.9, "test", "mae")].n == 3
    assert summary.cells[(0.9, "val", "acc")].std == 0.0


def test_bold_choices(summary) -> None:
    assert summary.best[("val", "acc")] == [0.5]
    assert summary.best[("val", "mae")] == [0.9]
    assert summary.best[("val", "mse")] == [0.5, 0.9]


def test_significance_marks_against_hand_computation(summary) -> None:
    acc = summary.tests[(0.5, "acc")]
    assert (acc.status, acc.mark, acc.n_pairs, acc.n_nonzero) == ("tested", "+", 7, 7)
    assert acc.p_value == pytest.approx(2 / 2**7)
    mae = summary.tests[(0.5, "mae")]
    assert (mae.mark, mae.n_pairs) == ("-", 7)
    assert mae.p_value == pytest.approx(2 / 2**7)
    mse = summary.tests[(0.5, "mse")]
    diffs = [(-1) ** i * (i + 1) for i in range(RUNS)]
    assert mse.status == "tested"
    assert mse.mark == ""
    assert mse.statistic == 12.0
    assert mse.p_value == pytest.approx(exact_two_sided_p(diffs))


def test_tests_that_cannot_be_made(summary) -> None:
    zero = summary.tests[(0.9, "acc")]
    assert (zero.status, zero.mark, zero.n_pairs, zero.p_value) == ("all_zero", "", 3, None)
    assert "all 3 paired differences are zero" in zero.reason
    few = summary.tests[(0.9, "mae")]
    assert (few.status, few.mark, few.n_pairs, few.n_nonzero) == ("too_few_runs", "", 3, 3)
    assert few.reason == "not made: too few runs (3 non-zero of 3 pairs; 6 needed)"
    assert (0.0, "acc") not in summary.tests


def test_partial_sweep_lists_missing_runs(summary) -> None:
    assert summary.missing == ["r = 0.9: run(s) [3, 4, 5, 6] not finished (3 of 7)"]
    full = summarize_sweep(synthetic_records(), expected_values=[0.0, 0.3, 0.5, 0.9])
    assert "r = 0.3: no finished runs" in full.missing


def test_no_cce_row_is_reported() -> None:
    records = [r for r in synthetic_records() if r["value"] != 0.0]
    summary = summarize_sweep(records)
    assert summary.tests[(0.5, "acc")].status == "no_baseline"
    assert any("no CCE runs (r = 0.0)" in m for m in summary.missing)


def test_markdown_cells(summary) -> None:
    md = to_markdown(summary)
    assert "| 0.0 | 7 | 20.00 | 7.00 | 120.00 | 13.00 | 7.35 | 133.00 |" in md
    assert "| 0.5 | 7 | **25.00** | 6.80 | **100.00** | 15.30+ | 7.75- | 133.57 |" in md
    assert "| 0.9 | 3 | 22.00 | **6.50** | **100.00** | 11.00 | 7.15 | 126.00 |" in md
    std_acc = f"{statistics.stdev([10.0 + i for i in range(RUNS)]):.2f}"
    assert f"| 0.0 | 7 | 0.00 | 0.00 | 0.00 | {std_acc} |" in md
    assert "not made: all 3 paired differences are zero" in md
    assert "## Missing (partial sweep)" in md
    # The paper's Table 1 numbers for UTKFace appear beside ours.
    assert "| 0.5 | 16.10 | 6.89 | 115.59 | 15.09 | 7.18+ | 123.94 |" in md


def test_latex_marks_and_bold(summary) -> None:
    tex = to_latex(summary)
    assert (
        r"0.5 & \textbf{25.00} & 6.80 & \textbf{100.00} & 15.30$^{+}$ & 7.75$^{-}$ & 133.57 \\"
        in tex
    )
    assert tex.count(r"\begin{table}") == 3  # means, std, the paper's


def test_csv_long_form(summary) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(summary))))
    assert len(rows) == 3 * 2 * 3
    row = next(r for r in rows if (r["value"], r["split"], r["metric"]) == ("0.5", "test", "acc"))
    assert float(row["mean"]) == pytest.approx(0.153)
    assert (row["mark"], row["test_status"], row["n_pairs"]) == ("+", "tested", "7")
    assert float(row["p_value"]) == pytest.approx(2 / 2**7)
    assert float(row["paper_mean"]) == pytest.approx(0.1509)
    zero = next(r for r in rows if (r["value"], r["split"], r["metric"]) == ("0.9", "test", "acc"))
    assert (zero["test_status"], zero["p_value"]) == ("all_zero", "")
    best = {(r["value"], r["metric"]) for r in rows if r["split"] == "val" and r["best"] == "1"}
    assert best == {("0.5", "acc"), ("0.9", "mae"), ("0.5", "mse"), ("0.9", "mse")}


def test_write_report_files(tmp_path: Path) -> None:
    path = write_report(synthetic_records(), tmp_path / "report", figures=False)
    assert path == tmp_path / "report" / "report.md"
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "report.csv",
        "report.md",
        "report.tex",
    ]
    assert "15.30+" in path.read_text()


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda rs: rs[0].update(param="l"), ValueError, "one parameter"),
        (lambda rs: rs[0].update(dataset="afad"), ValueError, "one dataset"),
        (lambda rs: rs[1].update(value=0.0, run=0), ValueError, "one record per"),
        (lambda rs: rs[0]["metrics"]["test"].update(mae=math.nan), ValueError, "finite"),
        (lambda rs: rs[0].update(run="0"), TypeError, "`run`"),
        (lambda rs: rs[0].pop("value"), ValueError, "'value'"),
    ],
    ids=["mixed-param", "mixed-dataset", "duplicate", "nan", "run-type", "missing-key"],
)
def test_invalid_records_are_rejected(change, error, match) -> None:
    records = synthetic_records()
    change(records)
    with pytest.raises(error, match=match):
        summarize_sweep(records)


def test_dataset_mismatch_and_empty() -> None:
    with pytest.raises(ValueError, match="`dataset`"):
        summarize_sweep(synthetic_records(), dataset="cifar100")
    with pytest.raises(ValueError, match="at least one"):
        summarize_sweep([])


def test_lower_bound_sweep_uses_l_099_as_cce() -> None:
    records = []
    for i in range(6):
        for value, acc in ((0.99, 0.40), (0.9, 0.41)):
            rec = _record(value, i, {"acc": acc, "sa": 0.5, "fsa": 0.2}, {"acc": acc + 0.01 * i})
            rec.update(param="l", dataset="cifar100")
            records.append(rec)
    summary = summarize_sweep(records)
    assert summary.baseline == 0.99
    assert summary.values == [0.99, 0.9]
    assert summary.metrics == ["acc", "sa", "fsa"]
    test = summary.tests[(0.9, "acc")]
    assert (test.mark, test.n_nonzero) == ("+", 6)
    assert test.p_value == pytest.approx(2 / 2**6)
    assert "| 0.9 | **47.42** | 56.32 | 16.95 | 40.15+ | 49.93+ | 16.36 |" in to_markdown(summary)


def test_unknown_metric_is_kept_without_direction() -> None:
    records = synthetic_records()
    for rec in records:
        rec["metrics"]["test"]["top5"] = 0.5
    summary = summarize_sweep(records)
    assert summary.metrics[-1] == "top5"
    assert summary.tests[(0.5, "top5")].status == "unknown_direction"
    assert any("top5" in note for note in summary.notes)


def test_min_pairs_and_alpha_validation() -> None:
    assert min_pairs_for_significance(0.05) == 6
    assert min_pairs_for_significance(0.01) == 8
    with pytest.raises(ValueError, match="`alpha`"):
        min_pairs_for_significance(1.5)


def test_wilcoxon_pairs_by_run_index() -> None:
    base = {i: float(i) for i in range(8)}
    # Same values shifted by one run index: unpaired they would look equal.
    shifted = {i + 1: float(i) + 0.5 for i in range(8)}
    res = wilcoxon_against_baseline(shifted, base, lower_is_better=True)
    assert res.n_pairs == 7
    assert res.mean_difference == pytest.approx(-0.5)
    assert res.mark == "+"


# A real Optuna SQLite store read back through load_records (the sweep's contract).


def _store(folder: Path) -> str:
    optuna_mod = pytest.importorskip("optuna")
    records = pytest.importorskip("simloss.experiments.sweep")
    url = records.sqlite_url(folder / "study.db")
    study = optuna_mod.create_study(study_name="synthetic", storage=url)
    for number, rec in enumerate(synthetic_records()):
        record = {k: v for k, v in rec.items() if k not in ("param", "value", "run")}
        attrs = {
            "param": rec["param"],
            "value": rec["value"],
            "run": rec["run"],
            "record": record,
            "record_path": f"trials/{number}/record.json",
        }
        study.add_trial(
            optuna_mod.trial.create_trial(value=rec["metrics"]["val"]["mae"], user_attrs=attrs)
        )
    # A trial that failed carries no record and must not enter the report.
    study.add_trial(optuna_mod.trial.create_trial(state=optuna_mod.trial.TrialState.FAIL))
    (folder / "sweep.json").write_text(json.dumps({"study_name": "synthetic", "storage": url}))
    return url


def test_report_from_optuna_storage_matches_hand_values(tmp_path: Path) -> None:
    records = pytest.importorskip("simloss.experiments.sweep")
    url = _store(tmp_path)
    loaded = records.load_records(url)
    assert len(loaded) == len(synthetic_records())
    summary = summarize_sweep(loaded)
    assert summary.tests[(0.5, "acc")].mark == "+"
    assert summary.tests[(0.5, "mae")].mark == "-"
    assert summary.tests[(0.9, "acc")].status == "all_zero"
    assert summary.best[("val", "mse")] == [0.5, 0.9]
    assert summary.missing == ["r = 0.9: run(s) [3, 4, 5, 6] not finished (3 of 7)"]


def test_write_report_from_sweep_folder(tmp_path: Path) -> None:
    records = pytest.importorskip("simloss.experiments.sweep")
    _store(tmp_path)
    path = write_report(records.load_records(tmp_path), tmp_path / "report", figures=False)
    text = path.read_text()
    assert "| 0.5 | 7 | **25.00** | 6.80 | **100.00** | 15.30+ | 7.75- | 133.57 |" in text


def test_null_metric_values_are_left_out_with_a_note() -> None:
    records = synthetic_records()
    records[0]["metrics"]["test"]["mae"] = None  # r = 0.0, run 0: undefined
    summary = summarize_sweep(records)
    assert summary.cells[(0.0, "test", "mae")].n == RUNS - 1
    assert summary.tests[(0.5, "mae")].n_pairs == RUNS - 1
    assert summary.notes == ["r = 0.0, run 0: test mae is undefined (null) and left out"]


def test_report_states_the_settings_that_differ_from_the_papers() -> None:
    # The paper's Table 1 beside a 2-epoch, 600-image sweep comes with what differs from the paper.
    records = synthetic_records()
    config = {"model": "age_cnn", "epochs": 2, "patience": 10, "monitor": "mae", "lr": 0.001,
              "batch_size": 1024, "limit": 600, "val_fraction": 0.2, "test_fraction": 0.2,
              "min_age": 1, "max_age": 90}  # fmt: skip
    for record in records:
        record["config"] = dict(config)
        record["num_examples"] = {"train": 360, "val": 120, "test": 120}
    summary = summarize_sweep(records)
    assert summary.setup == [
        "epochs = 2 (paper: 200)",
        "limit = 600 (paper: all)",
        "runs per value = 3-7 (paper: 10)",
        "examples (train/val/test) = 360/120/120 (paper: all UTKFace images of ages 1..90, "
        "60/20/20)",
    ]
    md = to_markdown(summary)
    section = md.split("## Settings that differ from the paper's")[1]
    assert "- epochs = 2 (paper: 200)" in section and "- limit = 600 (paper: all)" in section
    assert "Our runs differ from the paper's in: epochs = 2 (paper: 200)" in to_latex(summary)
    # A sweep with the paper's settings says so; a dataset the paper lacks says nothing.
    for record in records:
        record["config"].update(epochs=200, limit=None)
    full = [r for r in records if r["value"] != 0.9]
    for record in full:
        del record["num_examples"]
    assert summarize_sweep(full).setup == ["runs per value = 7 (paper: 10)"]
    for record in full:
        record["dataset"] = "abalone"
    assert summarize_sweep(full).setup == []


def test_runs_on_data_of_different_sizes_are_flagged() -> None:
    # A sweep folder without a data fingerprint may mix data: the report says so.
    records = synthetic_records()
    for i, record in enumerate(records):
        record["num_examples"] = {"train": 1504, "val": 501, "test": 502}
        if i < 2:
            record["num_examples"] = {"train": 540, "val": 180, "test": 180}
    notes = summarize_sweep(records).notes
    assert notes[0] == (
        "WARNING: the runs used data of different sizes (train/val/test examples: "
        "1504/501/502 (15 runs), 540/180/180 (2 runs)); their means mix different experiments"
    )


def test_each_table_counts_the_runs_of_its_own_metrics() -> None:
    """A resumed sweep's older records lack the decoders' metrics: the main tables still
    say how many runs they average (all of them), the decoder table says fewer."""
    records = []
    for value in (0.0, 0.5):
        for run in range(3):
            test = {"acc": 0.1 + 0.01 * run, "mae": 7.0 + value + 0.1 * run, "mse": 120.0 + run}
            if run >= 1:  # written by the newer code
                test["mae_expectation"] = test["mae"] - 0.5
            records.append(_record(value, run, {"acc": 0.1, "mae": 7.0, "mse": 120.0}, test))
    summary = summarize_sweep(records)
    assert summary.cells[(0.5, "test", "mae_expectation")].n == 2
    text = to_markdown(summary)
    main, decoders = text.split("## Decoders")[0], text.split("## Decoders")[1].split("## ")[0]
    assert "| 0.0 | 3 |" in main and "| 0.5 | 3 |" in main
    assert "2-3" not in main
    mean_expectation = statistics.mean([7.5 + 0.1 * run - 0.5 for run in (1, 2)])
    assert f"| 0.5 | 2-3 | 7.60 | {mean_expectation:.2f} |" in decoders


def test_a_significance_table_of_tests_none_made_is_one_sentence() -> None:
    """Two runs per row cannot reach p < 0.05: the report says so once, not in every cell."""
    from simloss.experiments.report.compare import compare_losses
    from simloss.experiments.report.compare_tables import comparison_markdown

    records = [
        {"dataset": "toy", "loss": loss, "param": None, "value": None, "run": i, "monitor": "mae",
         "metrics": {"val": {"mae": 1.0}, "test": {"mae": 1.0 + 0.1 * i + shift}}}
        for loss, shift in (("ce", 0.0), ("corn", 0.5))
        for i in range(2)
    ]  # fmt: skip
    text = comparison_markdown(compare_losses(records))
    assert "No test against CCE was made: every row has fewer runs" in text
    assert "not made: too few runs" not in text
