"""Several losses in one study: sweeps, records, the comparison report, prediction, the demo."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import shared_path
from simloss.cli import main
from simloss.experiments.config import TrainConfig
from simloss.experiments.predict import load_run, predict_inputs, predict_rows
from simloss.experiments.report import write_report
from simloss.experiments.report.compare import compare_losses
from simloss.experiments.report.compare_tables import comparison_csv, comparison_markdown
from simloss.experiments.sweep import Grid, load_records, run_sweep
from simloss.experiments.task import BUILTIN_TASKS as DATASETS
from simloss.experiments.train import run_training

TINY = {"dataset": "abalone", "epochs": 2, "limit": 300, "progress": False, "batch_size": 64}


def test_a_study_of_several_losses(tmp_path: Path) -> None:
    out = tmp_path / "study"
    base = TrainConfig(**TINY)
    grids = [
        Grid(None, (), 2, loss="ce"),
        Grid("alpha", (1.0, 2.0), 2, loss="sord"),
        Grid("r", (0.5,), 2),
        Grid(None, (), 2, loss="corn"),
    ]
    for grid in grids:
        result = run_sweep(base, grid, out)
        assert result.ok and result.total == len(grid.points()), result.summary()
    # Rerunning a command runs nothing new; every other loss stays in the study.
    again = run_sweep(base, grids[1], out)
    assert again.ok and again.finished == 4
    records = load_records(out)
    points = sorted((r["loss"], r["param"], r["value"], r["run"]) for r in records)
    assert points == sorted(
        [("ce", None, None, i) for i in range(2)]
        + [("sord", "alpha", v, i) for v in (1.0, 2.0) for i in range(2)]
        + [("simloss", "r", 0.5, i) for i in range(2)]
        + [("corn", None, None, i) for i in range(2)]
    )
    for record in records:
        config = record["config"]
        assert record["loss"] == config["loss"]
        assert record["seed"] == 0 + record["run"]  # the same seeds for every loss
        assert {"mae_expectation", "mse_median"} <= set(record["metrics"]["test"])
        if record["loss"] == "sord":
            assert config["loss_param"] == record["value"] and config["r"] is None
    stored = json.loads((out / "sweep.json").read_text())["grid"]
    assert [g.get("loss", "simloss") for g in stored] == ["ce", "sord", "simloss", "corn"]
    assert sorted(p.name for p in (out / "trials").iterdir())[0].startswith("ce_run=0_trial=")

    md = write_report(records, out / "report")
    text = md.read_text()
    assert "| CE | 2 |" in text and "| CORN | 2 |" in text
    assert "SimLoss r=0.5" in text and "SORD alpha=" in text
    assert "Decoders at the best parameter" in text
    assert (out / "report" / "losses.png").is_file()


def test_a_study_refuses_other_fixed_settings_but_not_another_loss(tmp_path: Path) -> None:
    out = tmp_path / "study"
    run_sweep(TrainConfig(**TINY), Grid(None, (), 1, loss="ce"), out)
    with pytest.raises(ValueError, match="other fixed settings: epochs=2"):
        run_sweep(TrainConfig(**{**TINY, "epochs": 3}), Grid(None, (), 1, loss="emd"), out)
    assert run_sweep(TrainConfig(**TINY), Grid(None, (), 1, loss="emd"), out).ok


def _record(loss: str, param: str | None, value: float | None, run: int, acc: float, mae: float,
            val_mae: float) -> dict[str, Any]:  # fmt: skip
    return {
        "dataset": "abalone", "loss": loss, "param": param, "value": value, "run": run,
        "monitor": "mae",
        "metrics": {
            "val": {"acc": 0.3, "mae": val_mae},
            "test": {"acc": acc, "mae": mae, "mae_expectation": mae - 0.1},
        },
    }  # fmt: skip


def test_comparison_statistics_against_hand_computation() -> None:
    records = []
    for i in range(7):
        records.append(_record("ce", None, None, i, 0.20 + 0.01 * i, 2.0, 1.9))
        # sord alpha=1 is better on validation than alpha=2, so it is chosen.
        records.append(_record("sord", "alpha", 1.0, i, 0.25 + 0.01 * i, 2.0 - 0.05 * (i + 1), 1.5))
        records.append(_record("sord", "alpha", 2.0, i, 0.10, 3.0, 1.8))
    comparison = compare_losses(records)
    assert [r.label for r in comparison.best] == ["CE", "SORD alpha=1.0"]
    sord = comparison.best[1]
    accs = [0.25 + 0.01 * i for i in range(7)]
    assert sord.cells[("test", "acc")].mean == pytest.approx(statistics.mean(accs))
    assert sord.cells[("test", "acc")].std == pytest.approx(statistics.stdev(accs))
    # All 7 differences positive: p = 2 / 2^7 < 0.05 -> "+" (acc up, MAE down).
    assert sord.tests["acc"].mark == "+" and sord.tests["acc"].p_value == pytest.approx(2 / 128)
    assert sord.tests["mae"].mark == "+"
    md = comparison_markdown(comparison)
    assert f"**{100 * statistics.mean(accs):.2f} ± {100 * statistics.stdev(accs):.2f}+**" in md
    assert "SORD alpha=2.0 | 7 |" in md  # in the grid table
    rows = list(csv.DictReader(io.StringIO(comparison_csv(comparison))))
    chosen = {(r["loss"], r["value"]) for r in rows if r["chosen"] == "1"}
    assert chosen == {("ce", ""), ("sord", "1.0")}


def test_without_ce_the_cce_row_is_simloss_at_r_zero() -> None:
    records = [
        _record("simloss", "r", value, i, 0.2, 2.0 - value, 1.9 - value)
        for value in (0.0, 0.5) for i in range(3)
    ] + [_record("corn", None, None, i, 0.2, 2.0, 1.0) for i in range(3)]  # fmt: skip
    comparison = compare_losses(records)
    assert comparison.baseline is not None and comparison.baseline.label == "SimLoss r=0.0 (CCE)"
    assert [r.label for r in comparison.best][1:] == ["SimLoss r=0.5", "CORN"]
    assert comparison.best[1].tests["mae"].status == "too_few_runs"
    assert comparison.best[2].tests["mae"].status == "all_zero"  # CORN ties CCE exactly
    # When SimLoss's best value is the CCE row itself, it is shown once, with a note.
    worse = [r for r in records if not (r["loss"] == "simloss" and r["value"] == 0.5)]
    worse += [_record("simloss", "r", 0.5, i, 0.2, 2.0, 2.5) for i in range(3)]
    again = compare_losses(worse)
    assert [r.label for r in again.best] == ["SimLoss r=0.0 (CCE)", "CORN"]
    assert any("is the CCE row" in n for n in again.notes)


def test_a_corn_run_predicts_class_probabilities(tmp_path: Path) -> None:
    record = run_training(TrainConfig(**TINY, loss="corn"), tmp_path / "run")
    assert record["loss"] == "corn" and record["param"] is None
    assert math.isclose(sum(record["distributions"]["test_mean"]), 1.0, rel_tol=1e-5)
    run = load_run(tmp_path / "run")
    raw = torch.tensor([[1.0, 0.0, 0.0, 0.45, 0.36, 0.1, 0.5, 0.2, 0.1, 0.15]])
    probs = run.probabilities(raw)
    assert probs.shape == (1, 17) and math.isclose(float(probs.sum()), 1.0, rel_tol=1e-5)
    rows = tmp_path / "rows.csv"
    rows.write_text("M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15\n")
    (prediction,) = predict_rows(run, rows)
    assert 0 < prediction.probability <= 1


class _FixedOutputs(torch.nn.Module):
    """A model whose outputs are given rows, batch by batch (one batch holds them all)."""

    def __init__(self, outputs: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("outputs", outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outputs[: x.shape[0]]


def test_a_corn_runs_median_is_coral_pytorchs_label(tmp_path: Path) -> None:
    # Near ties P(y > 0) = sigmoid(1e-6): coral-pytorch's class 1, and an exact tie: class 0.
    # The record's MAE of the median and `simloss predict --decoder median` are CORN's own rule.
    from coral_pytorch.dataset import corn_label_from_logits

    from simloss.experiments.data import load_abalone
    from simloss.experiments.losses import build_criterion
    from simloss.experiments.train import evaluate

    data = load_abalone(limit=300)
    config = TrainConfig(**TINY, loss="corn")
    n, classes = len(data.test), data.num_classes
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(n, classes - 1, generator=gen) * 3
    z[::3, :] = -10.0
    z[::3, 0] = torch.tensor([1e-6, 0.0, 3e-5])[torch.arange(z[::3].shape[0]) % 3]
    labels = corn_label_from_logits(z)
    values = np.array(data.class_values)
    result = evaluate(
        _FixedOutputs(z), build_criterion(config, data), data, data.test,
        batch_size=n, device=torch.device("cpu"),
    )  # fmt: skip
    expected = np.abs(values[labels.numpy()] - values[data.test.targets.numpy()]).mean()
    assert result.metrics["mae_median"] == pytest.approx(expected, abs=1e-12)
    assert labels[::3].tolist()[:3] == [1, 0, 1]

    run_training(config, tmp_path / "run")
    run = load_run(tmp_path / "run")
    raw = load_abalone().test.inputs[:200]
    got = predict_inputs(run, raw, [str(i) for i in range(len(raw))], decoder="median")
    with torch.no_grad():
        outputs = run.model.model(run.preprocessing.standardize(raw))
    assert [p.class_index for p in got] == corn_label_from_logits(outputs).tolist()


def test_demo_compare_runs_one_study_and_reports_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    argv = ["demo", "--compare", f"--out={out}", "--runs=1", "--epochs=1", "--limit=200"]
    assert main([*argv, "--workers=1", "--no-progress"]) == 0
    stdout = capsys.readouterr().out
    assert stdout.strip().splitlines()[-1] == str((out / "report" / "report.md").resolve())
    losses = {r["loss"] for r in load_records(out)}
    assert losses == {"ce", "simloss", "sord", "corn"}
    assert "# Loss comparison: abalone" in stdout
    assert main(["demo", "--compare", "--grid=r=0.1", f"--out={out}"]) == 1


def _cifar_with_real_names(root: Path, names: list[str]) -> Path:
    from data_fixtures import write_cifar100

    from simloss.experiments.data.cifar100 import CIFAR100_FINE_TO_COARSE

    rng = np.random.default_rng(0)
    n, test = 1200, 200  # 10 training images per class: one for validation
    fine = np.arange(n) % 100
    coarse = np.asarray(CIFAR100_FINE_TO_COARSE)[fine]
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    coarse_names = [f"super_{i}" for i in range(20)]
    return write_cifar100(root, images, fine, coarse, names, coarse_names, test_count=test)


def test_a_cifar100_study_of_semantic_losses(tmp_path: Path) -> None:
    shared = shared_path("cifar100")
    names = (shared / "fine_label_names.txt").read_text().split()
    data = _cifar_with_real_names(tmp_path / "data", names)
    vectors = tmp_path / "vectors.npy"
    np.save(vectors, np.random.default_rng(1).normal(size=(100, 8)).astype(np.float32))
    out = tmp_path / "study"
    common = [
        "sweep", "--dataset=cifar100", f"--data-dir={data}", f"--vectors={vectors}",
        f"--hierarchy={shared / 'wordnet_parent_child.txt'}",
        f"--hierarchy-names={shared / 'wordnet_node_names.txt'}", "--cifar-classes=paper96",
        "--epochs=1", "--runs=1", "--batch-size=128", "--limit=400", f"--out={out}", "--no-progress",
    ]  # fmt: skip
    for extra in (
        ["--loss=ce"],
        ["--loss=soft-labels", "--grid=l=0.5"],
        ["--loss=hxe", "--grid=alpha=0.1,0.5"],
    ):
        assert main([*common, *extra]) == 0, extra
    records = load_records(out)
    assert sorted({r["loss"] for r in records}) == ["ce", "hxe", "soft-labels"]
    for record in records:
        assert len(record["class_values"]) == 96 and record["config"]["limit"] == 400
        assert tuple(record["metrics"]["test"]) == DATASETS["cifar100"].record_metrics
    md = write_report(records, out / "report").read_text()
    assert "| HXE alpha=" in md and "| Soft labels l=0.5 |" in md
    assert "Decoders" not in md  # no ordered classes: argmax only
    assert (out / "report" / "losses.png").is_file()
    assert main([*common, "--loss=sord"]) == 1  # sord needs ordered classes: refused
