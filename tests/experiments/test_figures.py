"""Report figures: produced, non-empty, and drawing the right data (checked via Line2D)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.image import imread

from simloss.experiments.report import summarize_sweep, write_report
from simloss.experiments.report.figures import (
    default_figure2_values,
    figure2_from_records,
    plot_metric_curves,
    plot_similarity,
    save_figure,
)
from simloss.similarity import class_order

C = 40  # classes: ages 1..40
AGES = list(range(1, C + 1))


def _dist(peak: int, width: float) -> list[float]:
    x = np.arange(1, C + 1, dtype=np.float64)
    p = np.exp(-0.5 * ((x - peak) / width) ** 2)
    return (p / p.sum()).tolist()


def _records() -> list[dict[str, Any]]:
    records = []
    for value in (0.0, 0.3, 0.8):
        for run in range(2):
            per_class: list[list[float] | None] = [_dist(a, 2.0 + value + run) for a in AGES]
            if value == 0.8 and run == 1:
                per_class[29] = None  # no test example of age 30 in this run
            records.append(
                {
                    "dataset": "utkface",
                    "param": "r",
                    "value": value,
                    "run": run,
                    "class_values": AGES,
                    "metrics": {
                        "val": {"acc": 0.1 + value / 10, "mae": 7.0 - value - run},
                        "test": {"acc": 0.1 + run / 100, "mae": 7.2 - value},
                    },
                    "distributions": {
                        "test_mean": _dist(20 + int(10 * value) + run, 3.0),
                        "test_per_class": per_class,
                        "test_label": _dist(25 + run, 8.0),
                    },
                }
            )
    return records


def test_metric_curves_lines_carry_means() -> None:
    summary = summarize_sweep(_records())
    fig = plot_metric_curves(summary)
    assert [ax.get_title() for ax in fig.axes] == ["Acc (%)", "MAE (lower is better)"]
    acc_val, acc_test = fig.axes[0].get_lines()[:2]
    assert acc_val.get_label() == "Validation"
    np.testing.assert_allclose(acc_val.get_xdata(), [0.0, 0.3, 0.8])
    np.testing.assert_allclose(acc_val.get_ydata(), [10.0, 13.0, 18.0])
    np.testing.assert_allclose(acc_test.get_ydata(), [10.5, 10.5, 10.5])
    mae_val = fig.axes[1].get_lines()[0]
    np.testing.assert_allclose(mae_val.get_ydata(), [6.5, 6.2, 5.7])
    # The spread band and the single runs are drawn too.
    assert any(isinstance(c, PolyCollection) for c in fig.axes[1].collections)
    offsets = [c.get_offsets() for c in fig.axes[1].collections if c.get_offsets().shape[0] == 6]
    assert offsets, "expected a scatter of the 6 single runs per split"


def test_figure2_from_records_averages_runs() -> None:
    records = _records()
    fig, notes = figure2_from_records(records, [0.0, 0.8], target=30)
    assert fig is not None
    ax_a, ax_b = fig.axes
    lines_a = {line.get_label(): line for line in ax_a.get_lines()}
    assert set(lines_a) == {"r = 0.0 (2 runs)", "r = 0.8 (2 runs)"}
    expected = np.mean([_dist(28, 3.0), _dist(29, 3.0)], axis=0)
    np.testing.assert_allclose(lines_a["r = 0.8 (2 runs)"].get_ydata(), expected)
    np.testing.assert_allclose(lines_a["r = 0.8 (2 runs)"].get_xdata(), AGES)
    # The real label distribution is shaded: its polygon's top follows the mean label curve.
    shade = [c for c in ax_a.collections if isinstance(c, PolyCollection)]
    assert len(shade) == 1
    top = shade[0].get_paths()[0].vertices[:, 1].max()
    label_mean = np.mean([_dist(25, 8.0), _dist(26, 8.0)], axis=0)
    assert top == pytest.approx(label_mean.max())
    lines_b = {line.get_label(): line for line in ax_b.get_lines()}
    assert "r = 0.8 (1 runs)" in lines_b
    np.testing.assert_allclose(lines_b["r = 0.8 (1 runs)"].get_ydata(), _dist(30, 2.8))
    np.testing.assert_allclose(
        lines_b["r = 0.0 (2 runs)"].get_ydata(), np.mean([_dist(30, 2.0), _dist(30, 3.0)], axis=0)
    )
    target = lines_b["target 30"]
    np.testing.assert_allclose(target.get_xdata(), [30, 30])
    assert any("1 of 2 runs have no test example of class 30" in n for n in notes)


def test_figure2_without_distributions_is_skipped_with_a_note() -> None:
    records = _records()
    for rec in records:
        del rec["distributions"]
    fig, notes = figure2_from_records(records, [0.0])
    assert fig is None
    assert notes == ["Figure 2 skipped: the records hold no predicted distributions"]


def test_default_figure2_values_are_cce_and_best_validation() -> None:
    # best val acc: r = 0.8; best val mae: r = 0.8 as well
    assert default_figure2_values(summarize_sweep(_records())) == [0.0, 0.8]


def test_similarity_heatmap_shows_the_matrix() -> None:
    matrix = class_order(5, 0.5).double().numpy()
    fig = plot_similarity([("r = 0.5", matrix)])
    np.testing.assert_allclose(fig.axes[0].get_images()[0].get_array(), matrix)
    with pytest.raises(ValueError, match="square"):
        plot_similarity([("bad", np.ones((2, 3)))])


def test_save_figure_writes_png_and_pdf(tmp_path: Path) -> None:
    fig = plot_similarity([("r = 0.3", class_order(4, 0.3).double().numpy())])
    names = save_figure(fig, tmp_path, "sim")
    assert names == ["sim.png", "sim.pdf"]
    image = imread(tmp_path / "sim.png")
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0.0  # not a blank canvas
    assert (tmp_path / "sim.pdf").read_bytes().startswith(b"%PDF")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_write_report_draws_all_figures(tmp_path: Path) -> None:
    md = write_report(_records(), tmp_path, figure2_values=[0.0, 0.3, 0.8])
    names = {p.name for p in tmp_path.iterdir()}
    for stem in ("metrics_vs_r", "figure2", "similarity"):
        for ext in ("png", "pdf"):
            assert (tmp_path / f"{stem}.{ext}").stat().st_size > 1000, f"{stem}.{ext}"
    assert {"report.md", "report.tex", "report.csv"} <= names
    text = md.read_text()
    assert "![figure2.png](figure2.png)" in text
    assert "no test example of class 30" in text
    height, width = imread(tmp_path / "figure2.png").shape[:2]
    assert width > height > 200


def test_figure2_default_class_falls_back_to_most_frequent() -> None:
    records = [r for r in _records() if r["value"] == 0.0 and r["run"] == 0]
    for rec in records:
        rec["class_values"] = [a + 100 for a in AGES]  # no class 30
    fig, notes = figure2_from_records(records, [0.0])
    assert fig is not None
    # the label distribution of run 0 peaks at the 25th class (value 125)
    assert notes == ["Figure 2 (b): no class 30; drawn for the most frequent test class, 125"]
    target = {line.get_label(): line for line in fig.axes[1].get_lines()}["target 125"]
    np.testing.assert_allclose(target.get_xdata(), [125, 125])


def test_lower_bound_sweep_report_says_which_figures_are_skipped(tmp_path: Path) -> None:
    records = []
    for rec in _records():
        rec.update(
            param="l", dataset="cifar100", value={0.0: 0.99, 0.3: 0.9, 0.8: 0.5}[rec["value"]]
        )
        records.append(rec)
    text = write_report(records, tmp_path).read_text()
    assert (tmp_path / "metrics_vs_l.png").exists()
    assert not (tmp_path / "figure2.png").exists()
    assert "Figure 2 is drawn for ordered classes (parameter r) only" in text
    assert "similarity heatmap skipped" in text


def test_figure2_of_a_dataset_without_ages_draws_the_most_frequent_class_without_a_note() -> None:
    """Age 30 is the paper's Figure 2 (UTKFace); on Abalone it is no default to fall back from."""
    records = [r for r in _records() if r["value"] == 0.0 and r["run"] == 0]
    for rec in records:
        rec["dataset"] = "abalone"
    fig, notes = figure2_from_records(records, [0.0])
    assert fig is not None and notes == []
    assert "target 25" in {line.get_label() for line in fig.axes[1].get_lines()}
