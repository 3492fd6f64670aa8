"""`simloss benchmark`: tasks x losses on the sweep engine, ranked with the field's statistics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from simloss.cli import main
from simloss.experiments.benchmark import plan_benchmark
from simloss.experiments.benchmark.report import Q_05, benchmark_tables, nemenyi_cd

pytest.importorskip("scikit_posthocs")
pytest.importorskip("skordinal")

QUICK = ["--epochs", "3", "--batch-size", "64", "--no-progress", "--no-estimate"]


def test_two_tasks_and_two_losses_run_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench"
    argv = ["benchmark", "--tasks", "lev,balance-scale", "--losses", "ce,simloss,soft-labels",
            "--runs", "2", *QUICK, "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    saved = json.loads((out / "benchmark.json").read_text())
    assert saved["tasks"] == ["lev", "balance-scale"]
    assert list(saved["losses"]) == ["ce", "simloss", "soft-labels"]
    assert main(argv) == 0  # resumed: nothing left to run
    assert "benchmark" in capsys.readouterr().out
    assert main(["report", str(out)]) == 0
    text = (out / "report" / "benchmark.md").read_text()
    assert "## MZE" in text and "## MAE" in text and "## QWK" in text and "Friedman test" in text
    assert "| CE |" in text and "SimLoss" in text and "tasks won / tied / lost" in text
    assert (out / "report" / "cd_mae.png").stat().st_size > 1000
    assert (out / "report" / "tasks" / "lev" / "report.md").exists()
    rows = (out / "report" / "benchmark.csv").read_text().splitlines()
    assert rows[0] == "metric,task,loss,chosen,runs,mean,rank" and len(rows) == 1 + 5 * 2 * 3


def test_the_statistics_match_scipy_and_demsars_table() -> None:
    """Friedman's p as scipy computes it; Nemenyi's critical difference as Demšar tabulates it."""
    from scipy.stats import friedmanchisquare

    rng = np.random.default_rng(0)
    losses = ["ce", "simloss", "sord", "corn"]
    records = {}
    for t in range(6):
        task = []
        for j, loss in enumerate(losses):
            for run in range(3):
                mae = 1.0 + 0.1 * j + 0.05 * rng.standard_normal()
                task.append({"dataset": f"t{t}", "loss": loss, "param": None, "value": None,
                             "run": run, "monitor": "mae",
                             "metrics": {"val": {"mae": mae}, "test": {"mae": mae}}})  # fmt: skip
        records[f"t{t}"] = task
    (table,) = benchmark_tables(records, ("mae",))
    means = table.values
    assert math.isclose(table.pvalue, float(friedmanchisquare(*means.T).pvalue), rel_tol=1e-9)
    by_hand = Q_05[4] * math.sqrt(4 * 5 / (6 * 6))
    assert math.isclose(table.cd, by_hand, rel_tol=2e-3)
    assert math.isclose(nemenyi_cd(4, 6), by_hand, rel_tol=2e-3)
    # Ranks within each task: the mean ranks of the table are scipy's rankdata means.
    assert np.allclose(table.mean_ranks, np.mean([np.argsort(np.argsort(r)) + 1 for r in means], 0))


def test_bad_requests_are_refused_before_any_training(tmp_path: Path) -> None:
    names = tmp_path / "names.toml"
    (tmp_path / "n.csv").write_text(
        "x,label\n" + "\n".join(f"{i},{'ab'[i % 2]}" for i in range(40)) + "\n"
    )
    names.write_text(
        'name = "n"\n[data]\nkind = "table"\npath = "n.csv"\nlabel = "label"\n[classes]\nordered = false\n'
    )
    with pytest.raises(
        ValueError, match=r"Expected ordered classes for the metrics .* task 'n' has unordered"
    ):
        plan_benchmark(["lev", str(names)], ["ce", "simloss"], tmp_path / "a", runs=2)
    with pytest.raises(
        ValueError, match=r"Expected losses that fit every task, but loss 'corn' needs ordered"
    ):
        plan_benchmark(
            ["lev", str(names)], ["ce", "corn"], tmp_path / "b", runs=2, metrics=("mze",)
        )
    with pytest.raises(ValueError, match=r"Expected at least two tasks .* but found \['lev'\]"):
        plan_benchmark(["lev"], None, tmp_path / "c", runs=2)
    with pytest.raises(ValueError, match=r"Expected at least two losses"):
        plan_benchmark(["lev", "era"], ["ce"], tmp_path / "d", runs=2)
    plan = plan_benchmark(["lev", "era"], None, tmp_path / "e", runs=2)
    assert "beta" in plan.losses  # 5 and 9 classes: beta fits; hxe needs a hierarchy
    assert "hxe" in plan.left_out
    assert "beta" in plan_benchmark(["lev", "abalone"], None, tmp_path / "f", runs=2).left_out


def test_every_planned_loss_makes_a_trial_config_the_sweep_accepts(tmp_path: Path) -> None:
    """Each loss's grid point 0 on each task: what run_sweep checks before it trains."""
    from simloss.experiments.config import point_config

    plan = plan_benchmark(["lev", "era"], None, tmp_path / "e", runs=2)
    assert {"soft-labels", "simloss", "sord", "ce"} <= set(plan.losses)
    for task in plan.tasks:
        base = plan.base(task)
        for loss, grid in plan.losses.items():
            assert base.loss in (None, grid.loss), (task, loss)
            value = grid.values[0] if grid.values else None
            config = point_config(base, grid.param, value, 0, loss=grid.loss).resolve()
            assert config.inferred_loss == loss


def test_a_benchmark_folder_reopened_with_other_losses_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench"
    base = [
        "benchmark",
        "--tasks",
        "lev,swd",
        "--runs",
        "1",
        *QUICK,
        "--limit",
        "120",
        "--out",
        str(out),
    ]
    assert main([*base, "--losses", "ce,emd"]) == 0
    capsys.readouterr()
    assert main([*base, "--losses", "ce,corn"]) == 1
    err = capsys.readouterr().err
    assert "was made with other losses" in err and len(err.strip().splitlines()) == 1


def test_a_partial_benchmark_reports_its_finished_tasks_and_names_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A killed benchmark's report ranks the tasks that finished and names the others."""
    import shutil

    out = tmp_path / "bench"
    argv = ["benchmark", "--tasks", "lev,swd,esl", "--losses", "ce,emd", "--runs", "1",
            *QUICK, "--limit", "120", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    shutil.rmtree(out / "tasks" / "esl")  # as if killed before its first run
    capsys.readouterr()
    assert main(["report", str(out), "--out", str(tmp_path / "r1")]) == 0
    text = (tmp_path / "r1" / "benchmark.md").read_text()
    assert "2 tasks x 2 losses" in text and "esl (not started)" in text
    assert "| lev | swd |" in text and not (tmp_path / "r1" / "tasks" / "esl").exists()
    shutil.rmtree(out / "tasks" / "swd")
    capsys.readouterr()
    assert main(["report", str(out), "--out", str(tmp_path / "r2")]) == 1
    err = capsys.readouterr().err
    assert "at least two finished tasks" in err and "swd (not started)" in err
    assert len(err.strip().splitlines()) == 1


def test_split_per_run_gives_each_run_its_own_split(tmp_path: Path) -> None:
    """Repeated holdout: run i of a sweep splits with split_seed + i, as a separate run would."""
    from simloss.experiments.config import TrainConfig
    from simloss.experiments.sweep import Grid, load_records, run_sweep
    from simloss.experiments.train import run_training

    base = TrainConfig(epochs=1, limit=200, progress=False, split_per_run=True, split_seed=5)
    assert run_sweep(base, Grid(None, (), 2, loss="ce"), tmp_path / "s").ok
    records = sorted(load_records(tmp_path / "s"), key=lambda r: r["run"])
    assert [r["config"]["split_seed"] for r in records] == [5, 6]
    alone = run_training(TrainConfig(loss="ce", epochs=1, limit=200, progress=False, seed=1,
                                     split_seed=6), tmp_path / "one")  # fmt: skip
    assert alone["metrics"] == records[1]["metrics"]
