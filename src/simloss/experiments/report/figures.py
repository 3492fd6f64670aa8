"""Figures of a sweep: metrics against the hyper-parameter, the paper's Figure 2, similarity.

Every function builds a :class:`matplotlib.figure.Figure` directly (no
``pyplot`` state, rendered by the Agg canvas), so drawing works without a
display and leaves the caller's matplotlib backend alone. :func:`save_figure`
writes PNG and PDF atomically.

References:
    Kobs et al., "SimLoss: Class Similarities in Cross Entropy", ISMIS 2020,
    https://arxiv.org/abs/2003.03182 (Figure 2).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from simloss.experiments._files import atomic_path
from simloss.experiments.points import format_value, value_key
from simloss.experiments.report.summary import SPLIT_LABELS, SPLITS, SweepSummary
from simloss.experiments.specs import PARAMS, metric_spec

__all__ = [
    "comparison_axes",
    "default_figure2_values",
    "draw_report_figures",
    "figure2_from_records",
    "plot_figure2",
    "plot_loss_comparison",
    "plot_mean_distribution",
    "plot_metric_curves",
    "plot_similarity",
    "save_figure",
]

FIGURE_FORMATS = ("png", "pdf")
DEFAULT_FIGURE2_CLASS = 30.0
"""The class of Figure 2 (b) in the paper: age 30."""


def save_figure(fig: Figure, out_dir: str | os.PathLike[str], stem: str) -> list[str]:
    """Save ``fig`` as ``<stem>.png`` and ``<stem>.pdf`` in ``out_dir``, each atomically.

    Args:
        fig: the figure.
        out_dir: an existing folder.
        stem: the file name without extension.

    Returns:
        The written file names (relative to ``out_dir``), PNG first.
    """
    folder = Path(out_dir)
    names = []
    for fmt in FIGURE_FORMATS:
        target = folder / f"{stem}.{fmt}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
        names.append(target.name)
    return names


def _scale(metric: str) -> float:
    spec = metric_spec(metric)
    return 1.0 if spec is None else spec.scale()


def plot_metric_curves(summary: SweepSummary) -> Figure:
    """Each metric against the hyper-parameter: mean over runs, spread and single runs.

    One panel per metric (the argmax ones; other decoders are in the report's
    decoders table); per split (validation, test) a line through the means
    (labelled ``"Validation"``/``"Test"``, x ascending), a band of one standard
    deviation and the single runs as dots. Accuracy-type metrics in percent.

    Args:
        summary: as returned by :func:`simloss.experiments.report.summarize_sweep`.

    Returns:
        The figure.

    Example:
        >>> from simloss.experiments.report.summary import summarize_sweep
        >>> recs = [
        ...     {"dataset": "toy", "param": "r", "value": v, "run": i,
        ...      "metrics": {"val": {"mae": 2 - v}, "test": {"mae": 2 - v + i}}}
        ...     for v in (0.0, 0.5) for i in range(2)
        ... ]
        >>> fig = plot_metric_curves(summarize_sweep(recs))
        >>> line = fig.axes[0].get_lines()[1]
        >>> line.get_label(), np.asarray(line.get_xdata()).tolist(), line.get_ydata().tolist()
        ('Test', [0.0, 0.5], [2.5, 2.0])
    """
    from simloss.experiments.report.tables import main_metrics

    metrics = main_metrics(summary.metrics)
    fig = Figure(figsize=(4.0 * max(len(metrics), 1), 3.4), layout="constrained")
    axes = fig.subplots(1, max(len(metrics), 1), squeeze=False)[0]
    xs = sorted(summary.values)
    for ax, metric in zip(axes, metrics, strict=False):
        scale = _scale(metric)
        for split, color in zip(SPLITS, ("tab:blue", "tab:orange"), strict=True):
            present = [v for v in xs if (v, split, metric) in summary.cells]
            if not present:
                continue
            cells = [summary.cells[(v, split, metric)] for v in present]
            mean = np.array([c.mean for c in cells]) * scale
            std = np.nan_to_num(np.array([c.std for c in cells]) * scale)
            ax.plot(present, mean, marker="o", color=color, label=SPLIT_LABELS[split])
            ax.fill_between(present, mean - std, mean + std, color=color, alpha=0.2, lw=0)
            run_x = [v for v, c in zip(present, cells, strict=True) for _ in c.runs]
            run_y = [x * scale for c in cells for x in c.runs.values()]
            ax.scatter(run_x, run_y, s=8, color=color, alpha=0.5)
        spec = metric_spec(metric)
        title = metric if spec is None else spec.header()
        lower = spec is not None and spec.higher_is_better is False
        hint = " (lower is better)" if lower else ""
        ax.set_title(f"{title}{hint}")
        ax.set_xlabel(summary.param)
        ax.axvline(summary.baseline, color="grey", lw=0.8, ls=":")
        ax.legend(fontsize="small")
    fig.suptitle(
        f"{summary.dataset}: mean over runs, band = one standard deviation, dots = single runs"
    )
    return fig


def comparison_axes(metrics: Sequence[str]) -> list[str]:
    """The x metrics of the loss-comparison figure (accuracy is y): MAE (argmax, expectation) or SA, FSA.

    Example:
        >>> comparison_axes(["acc", "mae", "mse", "mae_expectation"]), comparison_axes(["acc", "sa", "fsa"])
        (['mae', 'mae_expectation'], ['sa', 'fsa'])
    """
    return [m for m in ("mae", "mae_expectation", "sa", "fsa") if m in metrics]


def plot_loss_comparison(comparison: Any) -> Figure:
    """Test accuracy against MAE (or SA, FSA) of each loss at its best parameter, with spread.

    One panel per x metric (:func:`comparison_axes`); per loss a point at the
    means over runs with error bars of one standard deviation in both
    directions, labelled with the loss and its value; CCE drawn in black.

    Args:
        comparison: a :class:`~simloss.experiments.report.compare.LossComparison`.

    Returns:
        The figure.

    Example:
        >>> from simloss.experiments.report.compare import compare_losses
        >>> recs = [{"dataset": "toy", "loss": loss, "param": None, "value": None, "run": i,
        ...          "monitor": "mae", "metrics": {"val": {"mae": 1.0},
        ...          "test": {"acc": a + 0.01 * i, "mae": 2.0 - a}}}
        ...         for loss, a in (("ce", 0.1), ("corn", 0.2)) for i in range(3)]
        >>> fig = plot_loss_comparison(compare_losses(recs))
        >>> [t.get_text() for t in fig.axes[0].texts]
        ['CE', 'CORN']
    """
    xs = comparison_axes(comparison.metrics)
    fig = Figure(figsize=(5.0 * max(len(xs), 1), 4.2), layout="constrained")
    axes = fig.subplots(1, max(len(xs), 1), squeeze=False)[0]
    y_metric = "acc"
    y_scale = _scale(y_metric)
    colors = [f"C{i % 10}" for i in range(len(comparison.best))]
    for ax, x_metric in zip(axes, xs, strict=False):
        x_scale = _scale(x_metric)
        for row, color in zip(comparison.best, colors, strict=True):
            cx, cy = row.cells.get(("test", x_metric)), row.cells.get(("test", y_metric))
            if cx is None or cy is None:
                continue
            ax.errorbar(
                cx.mean * x_scale, cy.mean * y_scale,
                xerr=np.nan_to_num(cx.std) * x_scale, yerr=np.nan_to_num(cy.std) * y_scale,
                fmt="o", color="black" if row.is_baseline else color, capsize=3, ms=5,
            )  # fmt: skip
            ax.annotate(
                row.label, (cx.mean * x_scale, cy.mean * y_scale),
                textcoords="offset points", xytext=(5, 4), fontsize="small",
            )  # fmt: skip
        x_spec, y_spec = metric_spec(x_metric), metric_spec(y_metric)
        ax.set_xlabel(f"test {x_metric if x_spec is None else x_spec.header()}")
        ax.set_ylabel(f"test {y_metric if y_spec is None else y_spec.header()}")
        better = "left" if x_spec is not None and x_spec.higher_is_better is False else "right"
        ax.set_title(f"better: up and {better}", fontsize="medium")
    fig.suptitle(
        f"{comparison.dataset}: each loss at its best validation parameter "
        "(mean over runs, bars = one standard deviation)"
    )
    return fig


#: A labelled array: a curve with its legend label, a matrix with its panel title.
Labelled = tuple[str, Any]


def _pairs(items: Sequence[Labelled], name: str) -> list[Labelled]:
    """``(label, array)`` pairs, refusing a mapping (labels are not keys: they may repeat)."""
    if isinstance(items, Mapping):
        raise TypeError(
            f"Expected `{name}` to be a sequence of (label, array) pairs, but found a "
            f"{type(items).__name__}: labels are not unique keys (two models with one r "
            "are two entries)"
        )
    pairs = list(items)
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
            raise TypeError(f"Expected `{name}` entries to be (label, array) pairs, found {pair!r}")
    return pairs


def plot_mean_distribution(
    ax: Axes,
    class_values: Sequence[float],
    curves: Sequence[Labelled],
    *,
    label_distribution: np.ndarray | None = None,
    target: float | None = None,
    title: str | None = None,
    xlabel: str = "class value",
) -> Axes:
    """Draw mean predicted distributions over the classes on ``ax`` (one panel of Figure 2).

    Args:
        ax: the axes to draw on.
        class_values: the value of each class (x axis), length C.
        curves: ``(legend label, (C,) probability vector)`` pairs, drawn in order;
            labels need not be unique (two models with one r are two curves).
        label_distribution: the real label distribution (C,), drawn shaded.
        target: a class value to mark with a grey vertical line.
        title: the panel title.
        xlabel: the x-axis label.

    Returns:
        ``ax``.

    Example:
        >>> ax = Figure().subplots()
        >>> _ = plot_mean_distribution(ax, [1, 2, 3], [("r = 0.0", np.array([0.2, 0.5, 0.3]))])
        >>> ax.get_lines()[0].get_ydata().tolist()
        [0.2, 0.5, 0.3]
    """
    xs = np.asarray(class_values, dtype=np.float64)
    for label, curve in _pairs(curves, "curves"):
        arr = np.asarray(curve, dtype=np.float64)
        if arr.shape != xs.shape:
            raise ValueError(
                f"Expected the curve {label!r} to have shape {xs.shape} (one value per class), "
                f"but found {arr.shape}"
            )
        ax.plot(xs, arr, label=label, lw=1.2)
    if label_distribution is not None:
        dist = np.asarray(label_distribution, dtype=np.float64)
        if dist.shape != xs.shape:
            raise ValueError(
                f"Expected `label_distribution` to have shape {xs.shape}, but found {dist.shape}"
            )
        ax.fill_between(xs, 0.0, dist, color="grey", alpha=0.3, lw=0, label="real labels", zorder=0)
    if target is not None:
        ax.axvline(float(target), color="grey", lw=1.5, label=f"target {target:g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean probability")
    ax.set_ylim(bottom=0.0)
    if title:
        ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="small")
    return ax


def plot_figure2(
    class_values: Sequence[float],
    overall: Sequence[Labelled],
    per_class: Sequence[Labelled],
    *,
    label_distribution: np.ndarray | None,
    target: float,
    subtitle: str = "",
    xlabel: str = "class value",
) -> Figure:
    """The paper's Figure 2: (a) all examples with the real labels, (b) one class.

    Args:
        class_values: the value of each class, length C.
        overall: ``(label, mean predicted distribution over all examples)`` pairs.
        per_class: ``(label, mean predicted distribution over the examples of class
            target)`` pairs.
        label_distribution: the real label distribution (shaded in (a)).
        target: the class value of panel (b), marked by a grey line.
        subtitle: appended to the figure title (e.g. the data it was computed on).
        xlabel: the x-axis label of both panels.

    Returns:
        A figure with two panels, (a) then (b).
    """
    fig = Figure(figsize=(11.0, 3.8), layout="constrained")
    ax_a, ax_b = fig.subplots(1, 2)
    plot_mean_distribution(
        ax_a, class_values, overall, label_distribution=label_distribution,
        title="a) All examples", xlabel=xlabel,
    )  # fmt: skip
    plot_mean_distribution(
        ax_b, class_values, per_class, target=target,
        title=f"b) All examples of class {target:g}", xlabel=xlabel,
    )  # fmt: skip
    fig.suptitle(f"Mean predicted distribution{f' ({subtitle})' if subtitle else ''}")
    return fig


def plot_similarity(
    matrices: Sequence[Labelled], class_values: Sequence[float] | None = None
) -> Figure:
    """Similarity matrices as heatmaps, one panel per matrix, shared colour scale [0, 1].

    Args:
        matrices: ``(panel title, (C, C) matrix)`` pairs, e.g. ``[("r = 0.3", S)]``.
        class_values: the value of each class for the axes when they are consecutive
            (step 1); otherwise, and by default, the axes show class indices.

    Returns:
        The figure.

    Example:
        >>> fig = plot_similarity([("r = 0.5", np.array([[1.0, 0.5], [0.5, 1.0]]))])
        >>> fig.axes[0].get_images()[0].get_array().tolist()
        [[1.0, 0.5], [0.5, 1.0]]
    """
    matrices = _pairs(matrices, "matrices")
    if not matrices:
        raise ValueError("Expected `matrices` to hold at least one matrix, but found none")
    fig = Figure(figsize=(3.6 * len(matrices) + 0.8, 3.4), layout="constrained")
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    image: AxesImage | None = None
    for ax, (title, matrix) in zip(axes, matrices, strict=True):
        arr = np.asarray(matrix, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
            raise ValueError(f"Expected matrix {title!r} to be square (C, C), found {arr.shape}")
        extent = None
        evenly_spaced = class_values is not None and np.allclose(np.diff(class_values), 1.0)
        if class_values is not None and evenly_spaced:
            lo, hi = float(class_values[0]), float(class_values[-1])
            extent = (lo - 0.5, hi + 0.5, hi + 0.5, lo - 0.5)
        image = ax.imshow(arr, vmin=0.0, vmax=1.0, cmap="viridis", extent=extent)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("class")
        ax.set_ylabel("target class")
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.9, label="similarity")
    return fig


def default_figure2_values(summary: SweepSummary) -> list[float]:
    """CCE plus the values with the best validation mean of each metric (the paper's choice).

    Example:
        >>> from simloss.experiments.report.summary import summarize_sweep
        >>> recs = [
        ...     {"dataset": "toy", "param": "r", "value": v, "run": 0,
        ...      "metrics": {"val": {"acc": v * (1 - v), "mae": 1 - v}, "test": {}}}
        ...     for v in (0.0, 0.3, 0.5, 0.9)
        ... ]
        >>> default_figure2_values(summarize_sweep(recs))
        [0.0, 0.5, 0.9]
    """
    from simloss.experiments.report.tables import main_metrics

    chosen = {summary.baseline} if summary.baseline in summary.runs else set()
    for metric in main_metrics(summary.metrics):
        best = summary.best.get(("val", metric))
        if best:
            chosen.add(min(best, key=lambda v: abs(v - summary.baseline)))
    return sorted(chosen)


def _mean_vectors(vectors: list[Any]) -> np.ndarray | None:
    arrays = [np.asarray(v, dtype=np.float64) for v in vectors if v is not None]
    return np.mean(arrays, axis=0) if arrays else None


def figure2_from_records(
    records: Sequence[Mapping[str, Any]],
    values: Sequence[float],
    *,
    target: float | None = None,
) -> tuple[Figure | None, list[str]]:
    """Figure 2 from the distributions recorded by training runs, averaged over runs.

    For each chosen value, (a) averages ``distributions.test_mean`` over its runs
    and shades the mean ``test_label`` of those runs; (b) averages the entry of
    ``distributions.test_per_class`` for the class whose value is ``target``
    (runs with no example of that class are left out and counted in the note).

    Args:
        records: run records with keys ``param``, ``value``, ``class_values`` and
            ``distributions``.
        values: the parameter values to draw.
        target: the class value of panel (b); ``None``: age 30 as in the paper
            (UTKFace, AFAD), else the most frequent test class.

    Returns:
        The figure (``None`` when nothing can be drawn) and notes on what was left out.
    """
    notes: list[str] = []
    with_dist = [r for r in records if r.get("distributions")]
    if not with_dist:
        return None, ["Figure 2 skipped: the records hold no predicted distributions"]
    class_sets = {tuple(r["class_values"]) for r in with_dist}
    if len(class_sets) != 1:
        raise ValueError(
            f"Expected all records to share `class_values`, but found {len(class_sets)} variants"
        )
    class_values = list(class_sets.pop())
    if target is None:
        # Age 30 is the paper's (its age datasets); elsewhere the most frequent test class.
        from simloss.experiments.task import BUILTIN_TASKS

        dataset = BUILTIN_TASKS.get(str(with_dist[0].get("dataset", "")))
        paper_ages = dataset is not None and dataset.paper_table == 1
        target = DEFAULT_FIGURE2_CLASS
        if not paper_ages or not any(math.isclose(c, target) for c in class_values):
            label_mean = _mean_vectors([r["distributions"].get("test_label") for r in with_dist])
            if label_mean is not None:
                target = float(class_values[int(np.argmax(label_mean))])
                if paper_ages:
                    notes.append(
                        f"Figure 2 (b): no class {DEFAULT_FIGURE2_CLASS:g}; drawn for the most "
                        f"frequent test class, {target:g}"
                    )
    k = next((i for i, c in enumerate(class_values) if math.isclose(c, target)), None)
    if k is None:
        notes.append(f"Figure 2 (b): no class with value {target:g}; panel (b) is empty")
    param = str(with_dist[0]["param"])
    overall: list[Labelled] = []
    per_class: list[Labelled] = []
    labels: list[Any] = []
    for value in values:
        runs = [r for r in with_dist if value_key(r["value"]) == value_key(value)]
        name = f"{param} = {format_value(value)}"
        if not runs:
            notes.append(f"Figure 2: no recorded distributions for {name}")
            continue
        mean = _mean_vectors([r["distributions"].get("test_mean") for r in runs])
        if mean is not None:
            overall.append((f"{name} ({len(runs)} runs)", mean))
        labels += [r["distributions"].get("test_label") for r in runs]
        if k is not None:
            rows = [r["distributions"].get("test_per_class") for r in runs]
            vecs = [row[k] for row in rows if row is not None and row[k] is not None]
            if len(vecs) < len(runs):
                notes.append(
                    f"Figure 2 (b), {name}: {len(runs) - len(vecs)} of {len(runs)} runs have "
                    f"no test example of class {target:g}"
                )
            mean_k = _mean_vectors(vecs)
            if mean_k is not None:
                per_class.append((f"{name} ({len(vecs)} runs)", mean_k))
    if not overall:
        return None, [*notes, "Figure 2 skipped: none of the chosen values has distributions"]
    fig = plot_figure2(
        class_values, overall, per_class,
        label_distribution=_mean_vectors(labels), target=target, subtitle="recorded test sets",
    )  # fmt: skip
    return fig, notes


def _ordered(summary: SweepSummary) -> bool:
    """Whether the swept parameter is the class order's ``r`` (Figure 2 needs ordered classes)."""
    param = PARAMS.get(summary.param)
    return param is not None and param.similarity == "order"


def _similarity_matrices(summary: SweepSummary, values: Sequence[float]) -> list[Labelled]:
    if not _ordered(summary):
        return []
    from simloss.similarity import class_order

    kinds = {(r.get("config") or {}).get("similarity", "order") for r in summary.records}
    if kinds - {"order", None}:
        return []
    sizes = {len(r["class_values"]) for r in summary.records if r.get("class_values")}
    if len(sizes) != 1:
        return []
    num_classes = sizes.pop()
    return [
        (f"{summary.param} = {format_value(v)}", class_order(num_classes, v).double().numpy())
        for v in values
    ]


def draw_report_figures(
    summary: SweepSummary,
    out_dir: Path,
    *,
    figure2_values: Sequence[float] | None = None,
    figure2_class: float | None = None,
) -> tuple[list[str], list[str]]:
    """Draw and save all report figures of a sweep.

    Writes ``metrics_vs_<param>``, ``figure2`` and ``similarity`` (PNG and PDF).

    Args:
        summary: as returned by :func:`simloss.experiments.report.summarize_sweep`.
        out_dir: the report folder.
        figure2_values: the values of Figure 2 (default: :func:`default_figure2_values`).
        figure2_class: the class value of Figure 2 (b) (default: see
            :func:`figure2_from_records`).

    Returns:
        The PNG file names written, and notes on figures that were skipped or partial.
    """
    names: list[str] = []
    notes: list[str] = []
    if summary.metrics:
        names.append(
            save_figure(plot_metric_curves(summary), out_dir, f"metrics_vs_{summary.param}")[0]
        )
    values = list(figure2_values) if figure2_values is not None else default_figure2_values(summary)
    if _ordered(summary):
        fig2, fig2_notes = figure2_from_records(summary.records, values, target=figure2_class)
        notes += fig2_notes
        if fig2 is not None:
            names.append(save_figure(fig2, out_dir, "figure2")[0])
    else:
        notes.append("Figure 2 is drawn for ordered classes (parameter r) only")
    matrices = _similarity_matrices(summary, values)
    if matrices:
        class_values = next(r["class_values"] for r in summary.records if r.get("class_values"))
        names.append(save_figure(plot_similarity(matrices, class_values), out_dir, "similarity")[0])
    else:
        notes.append(
            f"similarity heatmap skipped: the matrices of parameter {summary.param!r} cannot be "
            "rebuilt from the records alone"
        )
    return names, notes
