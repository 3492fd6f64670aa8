"""The figure of a tune: each objective against the parameter, the chosen value(s) and the front.

Built as a :class:`matplotlib.figure.Figure` without ``pyplot`` state, as the
report's figures are, and saved by :func:`simloss.experiments.report.figures.save_figure`.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from simloss.experiments.points import format_value, value_key
from simloss.experiments.specs import metric_spec
from simloss.experiments.tune.result import TrialSummary, TuneResult

__all__ = ["plot_tune"]


def _scale(metric: str) -> float:
    spec = metric_spec(metric)
    return 1.0 if spec is None else spec.scale()


def _label(metric: str) -> str:
    spec = metric_spec(metric)
    if spec is None:
        return metric
    hint = (
        ""
        if spec.higher_is_better is None
        else (" (higher is better)" if spec.higher_is_better else " (lower is better)")
    )
    return f"Validation {spec.header()}{hint}"


def _val(trial: TrialSummary, metric: str) -> float:
    value = (trial.val or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) else math.nan


def _search(result: TuneResult) -> list[TrialSummary]:
    return [
        t
        for t in result.trials
        if (t.phase == "search" or (t.phase == "cce" and t.run == 0))
        and t.duplicate_of is None
        and t.val is not None
        and math.isfinite(t.value)
    ]


def _confirmed(result: TuneResult, metric: str) -> tuple[list[float], list[float], list[float]]:
    xs, means, ses = [], [], []
    for value in result.confirmed:
        cell = result.stats(value, "val", metric)
        if cell is None:
            continue
        xs.append(value)
        means.append(cell.mean)
        ses.append(cell.std / math.sqrt(cell.n) if cell.n > 1 else 0.0)
    return xs, means, ses


def _metric_panel(ax: Axes, result: TuneResult, metric: str) -> None:
    scale = _scale(metric)
    search = _search(result)
    done = [t for t in search if t.state == "complete"]
    pruned = [t for t in search if t.state == "pruned"]
    front = set(result.search_front()) if result.settings.multi else set()
    ax.scatter(
        [t.value for t in done],
        [_val(t, metric) * scale for t in done],
        s=18, color="tab:blue", label="search run (run 0; CCE at the dotted line)", zorder=3,
    )  # fmt: skip
    if pruned:
        ax.scatter(
            [t.value for t in pruned],
            [_val(t, metric) * scale for t in pruned],
            s=22, marker="x", color="tab:gray", label="pruned (value when stopped)", zorder=3,
        )  # fmt: skip
    on_front = [t for t in done if t.number in front]
    if on_front:
        ax.scatter(
            [t.value for t in on_front],
            [_val(t, metric) * scale for t in on_front],
            s=80, facecolors="none", edgecolors="tab:red", label="search front", zorder=4,
        )  # fmt: skip
    xs, means, ses = _confirmed(result, metric)
    if xs:
        ax.errorbar(
            xs, np.array(means) * scale, yerr=np.array(ses) * scale, fmt="s", color="tab:orange",
            capsize=3, label=f"confirmed: mean ± SE of {result.settings.runs} runs", zorder=5,
        )  # fmt: skip
    chosen = [(v, m) for v, m in zip(xs, means, strict=True) if v in result.best]
    if chosen:
        ax.scatter(
            [v for v, _ in chosen], [m * scale for _, m in chosen], s=160, marker="*",
            color="tab:red", label="chosen", zorder=6,
        )  # fmt: skip
    ax.axvline(result.settings.cce_value, color="grey", lw=0.8, ls=":")
    ax.set_xlabel(result.settings.param)
    ax.set_ylabel(_label(metric))
    ax.legend(fontsize="x-small")


def _front_panel(ax: Axes, result: TuneResult) -> None:
    first, second = result.settings.metrics[:2]
    s1, s2 = _scale(first), _scale(second)
    search = [t for t in _search(result) if t.state == "complete" and t.values is not None]
    ax.scatter(
        [t.values[0] * s1 for t in search if t.values], [t.values[1] * s2 for t in search if t.values],
        s=18, color="tab:blue", label="search run (run 0; CCE at the dotted line)",
    )  # fmt: skip
    means = []
    for value in result.confirmed:
        a, b = result.stats(value, "val", first), result.stats(value, "val", second)
        if a is not None and b is not None:
            means.append((value, a.mean * s1, b.mean * s2))
    if means:
        ax.scatter(
            [m[1] for m in means],
            [m[2] for m in means],
            marker="s",
            color="tab:orange",
            label="confirmed (mean)",
        )
        for value, x, y in means:
            ax.annotate(
                f"{result.settings.param}={format_value(value)}", (x, y), fontsize="x-small"
            )
    front = sorted((x, y) for v, x, y in means if value_key(v) in result.best)
    if front:
        ax.plot(
            [p[0] for p in front],
            [p[1] for p in front],
            color="tab:red",
            marker="*",
            ms=12,
            label="front (confirmed)",
        )
    ax.set_xlabel(_label(first))
    ax.set_ylabel(_label(second))
    ax.legend(fontsize="x-small")


def plot_tune(result: TuneResult) -> Figure:
    """The tune's figure: one panel per objective against the parameter (and, for several
    objectives, the first two against each other with the Pareto front).

    Each objective panel shows the search runs (dots; pruned runs as crosses at
    the value they had when stopped), the confirmed values' means with their
    standard errors, and the chosen value(s) as stars; with several objectives
    the search's front is circled.

    Args:
        result: as returned by :func:`simloss.experiments.tune.load_tune`.

    Returns:
        The figure.
    """
    metrics = result.settings.metrics
    panels = len(metrics) + (1 if result.settings.multi else 0)
    fig = Figure(figsize=(4.6 * panels, 3.8), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=False):
        _metric_panel(ax, result, metric)
    if result.settings.multi:
        _front_panel(axes[-1], result)
    fig.suptitle(
        f"{result.dataset}: tune of {result.settings.param} ({result.settings.sampler}, {result.epochs()} epochs)"
    )
    return fig
