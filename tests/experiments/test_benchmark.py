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
    argv = ["benchmark", "--tasks", "lev,swd,esl", "--losses", "ce,emd,corn", "--runs", "1",
            *QUICK, "--limit", "120", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    saved = json.loads((out / "benchmark.json").read_text())
    del saved["losses"]["corn"]  # a study holding runs of a loss its benchmark does not plan
    (out / "benchmark.json").write_text(json.dumps(saved))
    shutil.rmtree(out / "tasks" / "esl")  # as if killed before its first run
    capsys.readouterr()
    assert main(["report", str(out), "--out", str(tmp_path / "r1")]) == 0
    text = (tmp_path / "r1" / "benchmark.md").read_text()
    assert "2 tasks x 2 losses" in text and "esl (not started)" in text and "CORN" not in text
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


def _two_class_task(folder: Path) -> Path:
    """A 2-class ordinal task file over a small table."""
    (folder / "two.csv").write_text(
        "x,grade\n" + "\n".join(f"{i},{i % 2}" for i in range(60)) + "\n"
    )
    task = folder / "two.toml"
    task.write_text(
        'name = "two"\n[data]\nkind = "table"\npath = "two.csv"\nlabel = "grade"\n'
        "[classes]\norder = [0, 1]\n"
    )
    return task


def test_a_loss_a_task_cannot_take_is_left_out_or_refused_up_front(tmp_path: Path) -> None:
    """dlordinal's beta soft labels exist for 3 to 14 classes: not for a 2-class task."""
    from dlordinal.soft_labelling.beta_distribution import _beta_params_sets

    assert min(_beta_params_sets["standard"]) == 3  # the library's own range
    two = str(_two_class_task(tmp_path))
    plan = plan_benchmark([two, "lev"], None, tmp_path / "a", runs=1)
    assert "beta" not in plan.losses
    assert "at least 3 classes and task 'two' has 2" in plan.left_out["beta"]
    with pytest.raises(ValueError, match=r"loss 'beta' is defined for at least 3 classes"):
        plan_benchmark([two, "lev"], ["ce", "beta"], tmp_path / "b", runs=1)


def test_a_refused_command_leaves_no_benchmark_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Workers, settings and the model are checked before benchmark.json or any training."""
    out = tmp_path / "bench"
    base = ["benchmark", "--tasks", "era,lev", "--losses", "ce,simloss", "--runs", "1",
            "--out", str(out)]  # fmt: skip
    refusals = {
        "--workers": (["--workers", "0"], "Expected --workers to be an int >= 1, but found 0"),
        "--epochs": (["--epochs", "0"], "epochs"),
        "--model": (["--model", "lenet"], "Expected --model to fit task 'era'"),
    }
    for flags, message in refusals.values():
        capsys.readouterr()
        assert main([*base, *flags]) == 1  # the estimate would train: it must not start
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()  # neither benchmark.json nor data/
    with pytest.raises(ValueError, match=r"Unknown TrainConfig keys: \['epoch'\]"):
        plan_benchmark(["era", "lev"], ["ce", "simloss"], out, runs=1, settings={"epoch": 3})
    with pytest.raises(TypeError, match=r"Expected `tasks` to be a sequence of names"):
        plan_benchmark("era,lev", ["ce", "simloss"], out, runs=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Expected `runs` to be an int, but found str"):
        plan_benchmark(["era", "lev"], ["ce", "simloss"], out, runs="2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'utkface' needs a data folder"):
        plan_benchmark(["era", "utkface"], ["ce", "simloss"], out, runs=1)
    capsys.readouterr()
    assert main([*base[:-4], "--losses", "ce,ce,simloss", "--out", str(out)]) == 1
    assert "Expected each loss once in --losses, but found 'ce' twice" in capsys.readouterr().err
    assert main([*base[:2], ",,", *base[3:]]) == 1
    assert "Expected --tasks to be comma-separated names" in capsys.readouterr().err
    assert not (out / "benchmark.json").exists()


def test_a_resume_may_change_local_settings_and_restate_defaults(tmp_path: Path) -> None:
    """Compared are the resolved fixed settings, as a sweep compares them."""
    from simloss.experiments._files import atomic_write_json

    out = tmp_path / "bench"
    args = (["era", "lev"], ["ce", "simloss"], out)
    plan = plan_benchmark(*args, runs=1, settings={"epochs": 2})
    atomic_write_json(out / "benchmark.json", plan.to_dict())  # as run_benchmark writes it
    local = {"epochs": 2, "num_threads": 1, "device": "cpu", "progress": False, "lr": 0.001}
    plan_benchmark(*args, runs=1, settings=local)
    plan_benchmark(["lev", "era"], ["simloss", "ce"], out, runs=1, settings=local)  # reordered
    with pytest.raises(ValueError, match=r"was made with other tasks"):
        plan_benchmark(["era", "esl"], ["ce", "simloss"], out, runs=1, settings={"epochs": 2})
    assert not (out / "data" / "esl.csv").exists()  # nothing of a refused benchmark written
    with pytest.raises(ValueError, match=r"was made with other fixed"):
        plan_benchmark(*args, runs=1, settings={"epochs": 3})
    legacy = {k: v for k, v in plan.to_dict().items() if k != "fixed"}
    atomic_write_json(out / "benchmark.json", {**legacy, "settings": {"epochs": 2, "lr": 0.001}})
    plan_benchmark(*args, runs=1, settings={"epochs": 2, "num_threads": 1})
    with pytest.raises(ValueError, match=r"was made with other fixed"):
        plan_benchmark(*args, runs=1, settings={"epochs": 2, "lr": 0.01})


def test_two_benchmarks_on_one_storage_keep_their_own_studies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each benchmark's studies are its own; its report says the split and seeds it used."""
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    one, two = tmp_path / "one", tmp_path / "two"
    common = ["benchmark", "--tasks", "lev,swd", "--runs", "1", *QUICK, "--limit", "120",
              "--storage", storage]  # fmt: skip
    assert main([*common, "--losses", "ce,emd", "--out", str(one)]) == 0
    assert main([*common, "--losses", "ce,corn", "--seed", "5", "--split-seed", "7",
                 "--val-fraction", "0.3", "--test-fraction", "0.3", "--out", str(two)]) == 0  # fmt: skip
    ids = {json.loads((f / "benchmark.json").read_text())["id"] for f in (one, two)}
    assert len(ids) == 2
    for folder in (one, two):
        capsys.readouterr()
        assert main(["report", str(folder), "--quiet", "--no-figures"]) == 0
        printed = capsys.readouterr().out
        assert "# Benchmark" not in printed and "report written to" in printed
        assert not list((folder / "report").glob("cd_*.png"))
    text = (two / "report" / "benchmark.md").read_text()
    assert "1 run each" in text and "seed 5 + i" in text
    assert "stratified 40/30/30 split, split seed 7 + i" in text
    assert "| CORN |" in text and "EMD" not in text
    assert "| EMD |" in (one / "report" / "benchmark.md").read_text()
    other = f"sqlite:///{tmp_path / 'other.db'}"
    (tmp_path / "empty").mkdir()
    refusals = [
        (["report", str(tmp_path / "empty")], "or a benchmark folder (benchmark.json), but"),
        (["report", str(one), "--out", str(one / "tasks")], "Expected --out outside the benchmark"),
        (["report", str(one), "--out", str(one / "data")], "Expected --out outside the benchmark"),
        (["report", str(one), "--dataset", "lev", "--study-name", "x"],
         "Expected no --dataset, --study-name for a benchmark folder"),
        ([*common[:-2], "--storage", other, "--losses", "ce,emd", "--out", str(one)],
         "Expected --storage"),
    ]  # fmt: skip
    for argv, message in refusals:
        capsys.readouterr()
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (one / "tasks" / "benchmark.md").exists()


def test_two_losses_friedman_has_scipys_tie_correction() -> None:
    """k = 2 (scipy has no test): Demšar's Eq. 1 over the tie correction, by hand and
    against scipy's own k >= 3 computation."""
    from scipy.stats import chi2, friedmanchisquare, rankdata

    from simloss.experiments.benchmark.report import _friedman_two

    # Task 1: CE 1st, SimLoss 2nd; task 2: a tie. Rank sums 2.5, 3.5; n = 2, k = 2:
    # 12 / (2 * 2 * 3) * (2.5^2 + 3.5^2) - 3 * 2 * 3 = 0.5; ties: 1 - 6 / (2 * 2 * 3) = 0.5.
    statistic, pvalue = _friedman_two(np.array([[1.0, 2.0], [1.5, 1.5]]))
    assert math.isclose(statistic, 1.0) and math.isclose(pvalue, float(chi2.sf(1.0, 1)))
    values = np.round(np.random.default_rng(1).random((7, 4)), 1)  # ties within tasks
    ranks = np.vstack([rankdata(row) for row in values])
    expected = friedmanchisquare(*values.T)
    assert np.allclose(_friedman_two(ranks), (expected.statistic, expected.pvalue))


def test_failed_runs_are_explained_by_the_first_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs that fail at training time: the refusal quotes the first error and its logs."""
    task = _two_class_task(tmp_path)
    (tmp_path / "broken_model.py").write_text(
        "def make(input_shape, num_classes):\n    raise RuntimeError('no model today')\n"
    )
    task.write_text(task.read_text() + '[train]\nmodel = "broken_model:make"\n')
    out = tmp_path / "bench"
    argv = ["benchmark", "--tasks", f"{task},lev", "--losses", "ce,emd", "--runs", "1", *QUICK,
            "--limit", "120", "--out", str(out)]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "the first failure: task two, ce run 0" in err[-1] and "no model today" in err[-1]
    assert str(out / "tasks" / "two" / "logs") in err[-1]


def test_two_commands_creating_one_benchmark_agree_on_its_identity(tmp_path: Path) -> None:
    """benchmark.json is created exclusively: of two writers the second is told it exists,
    and a writer's temporary file is not taken for a foreign one."""
    import threading

    from simloss.experiments._files import atomic_write_json
    from simloss.experiments.benchmark.run import _check_entries

    target = tmp_path / "benchmark.json"
    outcomes: list[str] = []
    start = threading.Barrier(4)

    def write(identity: str) -> None:
        start.wait()
        try:
            atomic_write_json(target, {"id": identity}, exclusive=True)
            outcomes.append("created")
        except FileExistsError:
            outcomes.append("exists")

    threads = [threading.Thread(target=write, args=(str(i),)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created", "exists", "exists", "exists"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["benchmark.json"]  # no temporary left
    (tmp_path / ".benchmark.json.x1y2.tmp").write_text("{")  # another writer, mid-write
    _check_entries(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FileExistsError, match=r"also holds \['notes.txt'\]"):
        _check_entries(tmp_path)
