"""Figure 2 from checkpoints: a synthetic UTKFace folder everywhere, the real data when present."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from PIL import Image

from conftest import shared_path
from simloss.cli import main
from simloss.experiments.models import AgeCNN
from simloss.experiments.report.checkpoints import (
    checkpoint_figure2,
    evaluate_checkpoints,
    find_checkpoints,
    write_figure2,
)
from simloss.experiments.report.paper import load_paper_table

AGES = [1, 2, 5, 30, 30, 30, 31, 45, 60, 90, 95]  # 95 lies outside 1..90 and is excluded


def _fake_utkface(folder: Path) -> None:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, age in enumerate(AGES):
        pixels = rng.integers(0, 256, size=(60, 60, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{age}_0_0_2017010{i:02d}.jpg.chip.jpg")


def _fake_checkpoints(folder: Path) -> list[AgeCNN]:
    folder.mkdir()
    models = []
    for r in ("0.0", "0.5"):
        torch.manual_seed(len(models))
        model = AgeCNN(90)
        torch.save(model.state_dict(), folder / f"model_{r}_01.p")
        models.append(model.eval())
    (folder / "notes.txt").write_text("not a checkpoint")
    return models


def _reference(model: AgeCNN, images: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Independent computation: decode with PIL, scale to [0, 1], softmax, mean."""
    files = sorted(p for p in images.iterdir() if int(p.name.split("_")[0]) <= 90)
    x = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in files]) / 255.0
    ages = np.array([int(p.name.split("_")[0]) for p in files])
    with torch.no_grad():
        logits = model(torch.tensor(x, dtype=torch.float32).permute(0, 3, 1, 2)).double()
    probs = torch.softmax(logits, dim=1).numpy()
    pred_ages = probs.argmax(axis=1) + 1
    mae = float(np.abs(pred_ages - ages).mean())
    return probs.mean(axis=0), probs[ages == 30].mean(axis=0), mae


def test_synthetic_checkpoints_match_an_independent_computation(tmp_path: Path) -> None:
    images, ckpts = tmp_path / "utk", tmp_path / "ckpt"
    _fake_utkface(images)
    models = _fake_checkpoints(ckpts)
    results, class_values, info = evaluate_checkpoints(ckpts, images, cache_dir=tmp_path / "c")
    assert [r.r for r in results] == [0.0, 0.5]
    assert class_values == [float(a) for a in range(1, 91)]
    assert info["images"] == 10
    for model, res in zip(models, results, strict=True):
        mean, age30, mae = _reference(model, images)
        np.testing.assert_allclose(res.mean, mean, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(res.per_class[29], age30, rtol=1e-5, atol=1e-7)
        assert res.metrics["mae"] == pytest.approx(mae)
        assert int(res.class_counts[29]) == 3

    md = write_figure2(results, class_values, tmp_path / "out", info=info)
    saved = json.loads((md.parent / "figure2.json").read_text())
    np.testing.assert_allclose(saved["models"][1]["mean"], results[1].mean)
    np.testing.assert_allclose(saved["models"][0]["target_class_mean"], results[0].per_class[29])
    assert saved["label_distribution"][29] == pytest.approx(0.3)
    height, width = imread(md.parent / "figure2.png").shape[:2]
    assert width > height > 200
    assert (md.parent / "figure2.pdf").stat().st_size > 1000
    text = md.read_text()
    assert "| 0.5 | model_0.5_01.p |" in text
    assert "| 0.0 | model_0.0_01.p |" in text and "| 14.47 | 7.39 | 131.65 |" in text
    with pytest.raises(ValueError, match="`target`"):
        write_figure2(results, class_values, tmp_path / "out", target=120)


def test_find_checkpoints_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="`checkpoints`"):
        find_checkpoints(tmp_path / "absent")
    (tmp_path / "other.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="model_<r>_<run>.p"):
        find_checkpoints(tmp_path)


def test_figure2_command(tmp_path: Path, capsys) -> None:
    images, ckpts = tmp_path / "utk", tmp_path / "ckpt"
    _fake_utkface(images)
    _fake_checkpoints(ckpts)
    out = tmp_path / "fig"
    argv = ["figure2", "--checkpoints", str(ckpts), "--data-dir", str(images), "--out", str(out)]
    assert main([*argv, "--cache-dir", str(tmp_path / "c")]) == 0
    printed = capsys.readouterr().out
    assert "| r | checkpoint | Acc (%) | MAE | MSE |" in printed
    assert {"figure2.png", "figure2.pdf", "figure2.md", "figure2.json"} <= {
        p.name for p in out.iterdir()
    }
    assert main([*argv, "--limit", "0"]) == 1
    assert "--limit" in capsys.readouterr().err


def test_published_checkpoints_on_real_utkface(tmp_path: Path) -> None:
    ckpts = shared_path("simloss_checkpoints")
    images = shared_path("utkface", "crop_part1")
    assert [(r, p.name) for r, _, p in find_checkpoints(ckpts)] == [
        (0.0, "model_0.0_01.p"),
        (0.3, "model_0.3_05.p"),
        (0.8, "model_0.8_08.p"),
        (0.9, "model_0.9_08.p"),
    ]
    results, class_values, info = evaluate_checkpoints(
        ckpts, images, limit=200, cache_dir=tmp_path / "cache"
    )
    assert info["images"] == 200
    for res in results:
        assert res.mean.sum() == pytest.approx(1.0)
        # Far better than chance (1/90): the inputs are prepared as the models expect.
        assert res.metrics["mae"] < 10.0
    assert results[0].metrics["acc"] > 0.1
    # r = 0.9 spreads its mass over few representative ages (the paper's observation).
    top5 = [np.sort(res.mean)[-5:].sum() for res in results]
    assert top5[3] > top5[0]
    md = write_figure2(results, class_values, tmp_path / "out", info=info)
    assert "model_0.9_08.p" in md.read_text()


# `simloss figure2`: every chosen model drawn, one unit per column, a bad target refused early.


def test_two_checkpoints_with_one_r_are_two_curves(tmp_path: Path) -> None:
    # Two models of one r: the table lists both and the figure draws both (a dict keyed by "r = 0.3" drew one).
    images, ckpts = tmp_path / "utk", tmp_path / "ckpt"
    _fake_utkface(images)
    _fake_checkpoints(ckpts)
    torch.manual_seed(7)
    torch.save(AgeCNN(90).state_dict(), ckpts / "model_0.5_02.p")
    results, class_values, _ = evaluate_checkpoints(ckpts, images, cache_dir=tmp_path / "c")
    assert [(r.r, r.run) for r in results] == [(0.0, "01"), (0.5, "01"), (0.5, "02")]
    fig = checkpoint_figure2(results, class_values, target=30)
    for ax in fig.axes[:2]:
        labels = [line.get_label() for line in ax.get_lines() if line.get_label()[0] == "r"]
        assert labels == ["r = 0.0 (run 01)", "r = 0.5 (run 01)", "r = 0.5 (run 02)"]
    curves = [line.get_ydata() for line in fig.axes[0].get_lines()[:3]]
    for curve, res in zip(curves, results, strict=True):
        np.testing.assert_allclose(curve, res.mean)


def test_metrics_csv_has_one_unit_per_column(tmp_path: Path) -> None:
    # figure2_metrics.csv holds one unit per column (fractions of ours beside percents of the paper's were mixed).
    images, ckpts = tmp_path / "utk", tmp_path / "ckpt"
    _fake_utkface(images)
    _fake_checkpoints(ckpts)
    results, class_values, info = evaluate_checkpoints(ckpts, images, cache_dir=tmp_path / "c")
    md = write_figure2(results, class_values, tmp_path / "out", info=info)
    rows = list(csv.DictReader((md.parent / "figure2_metrics.csv").open()))
    paper = {c.metric: c.mean for c in load_paper_table(1)
             if (c.dataset, c.value, c.split) == ("utkface", "0.0", "test")}  # fmt: skip
    row = rows[0]
    assert float(row["acc"]) == pytest.approx(results[0].metrics["acc"])
    assert float(row["paper_acc"]) == pytest.approx(paper["acc"] / 100)  # printed in percent
    assert float(row["paper_mae"]) == pytest.approx(paper["mae"])  # years, as ours
    assert 0 <= float(row["acc"]) <= 1 and 0 <= float(row["paper_acc"]) <= 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--target", "95"],
            "Expected `--target` (the age of panel b) to be a whole age in 1..90",
        ),
        (["--target", "30.5"], "whole age in 1..90"),
        (["--device", "cuda:99"], "`--device` is 'cuda:99' but"),
        (["--split", "train", "--batch-size", "0"], "Expected `--batch-size` >= 1"),
    ],
    ids=["target-95", "target-fraction", "device", "batch-size"],
)
def test_arguments_are_checked_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    # `figure2 --target 95` and `--device cuda` on a CPU-only torch are refused before any
    # image is loaded, and leave no output folder.
    images, ckpts = tmp_path / "utk", tmp_path / "ckpt"
    _fake_utkface(images)
    _fake_checkpoints(ckpts)
    out, cache = tmp_path / "fig", tmp_path / "cache"
    argv = ["figure2", "--checkpoints", str(ckpts), "--data-dir", str(images), "--out", str(out)]
    assert main([*argv, "--cache-dir", str(cache), *extra]) == 1
    err = capsys.readouterr().err
    assert err.startswith("simloss figure2: error: ") and message in err and err.count("\n") == 1
    assert not out.exists() and not cache.exists()  # nothing was loaded or written
