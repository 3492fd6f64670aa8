"""The report of a benchmark: which loss wins across tasks, by how much, and is it significant.

Per task, each loss stands at the value of its parameter chosen on validation
(:func:`simloss.experiments.report.compare.compare_losses`: the best mean of the
monitored validation metric) and is scored by its mean test metric over the
seeds. Across tasks, for every metric (Demšar, JMLR 2006):

- the losses are ranked within each task (1 = best; ties share the mean rank)
  and their **mean ranks** tabled;
- the **Friedman test** asks whether the ranks differ at all, and the
  **Nemenyi post-hoc test** which pairs do: two losses differ where their mean
  ranks are further apart than the critical difference ``CD = q_alpha
  sqrt(k (k + 1) / (6 N))`` (``k`` losses, ``N`` tasks), drawn as a
  **critical-difference diagram**: the Friedman test from scipy
  (``friedmanchisquare``; for two losses, where scipy has none, its chi-square
  formula with its tie correction), the Nemenyi test and the diagram from scikit-posthocs
  (``posthoc_nemenyi_friedman``, ``critical_difference_diagram``), the critical
  difference from scipy's Studentized range, checked in the tests against
  Demšar's table of ``q_alpha``;
- a **win/tie/loss** table counts the tasks on which SimLoss is significantly
  better, not significantly different, or significantly worse than each peer
  (two-sided Wilcoxon signed-rank test over the seeds, paired by seed,
  :func:`simloss.experiments.report.stats.wilcoxon_against_baseline`).

MZE is the zero-one error ``1 - accuracy``, the name of the ordinal literature.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simloss._optional import require
from simloss.experiments._files import atomic_write_text
from simloss.experiments.benchmark.datasets import BENCHMARK_EXTRA
from simloss.experiments.benchmark.run import BENCHMARK_METRICS, read_benchmark
from simloss.experiments.loss_catalog import stored_loss
from simloss.experiments.report.compare import compare_losses
from simloss.experiments.report.stats import wilcoxon_against_baseline
from simloss.experiments.specs import LOSSES, metric_spec

__all__ = [
    "BenchmarkTable",
    "benchmark_tables",
    "cd_diagram",
    "nemenyi_cd",
    "write_benchmark_report",
]

#: Demšar (2006), Table 5(a): the Nemenyi test's critical values q_0.05 for k = 2..10
#: classifiers (the Studentized range statistic divided by sqrt(2)).
Q_05: Mapping[int, float] = {
    2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 7: 2.949, 8: 3.031, 9: 3.102, 10: 3.164,
}  # fmt: skip


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """The Nemenyi critical difference of mean ranks, ``q_alpha sqrt(k (k + 1) / (6 n))``.

    ``q_alpha`` is the Studentized range's upper ``alpha`` quantile for ``k``
    groups and infinite degrees of freedom, over ``sqrt(2)`` (scipy's
    ``studentized_range``; Demšar 2006, Table 5(a) for ``alpha = 0.05``).

    Example:
        >>> round(nemenyi_cd(4, 14), 3)  # Demšar's worked example: 2.569 * sqrt(20 / 84)
        1.254
    """
    from scipy.stats import studentized_range

    q = float(studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    return q * math.sqrt(k * (k + 1) / (6 * n))


def _value(record: Mapping[str, Any], metric: str) -> float | None:
    test = (record.get("metrics") or {}).get("test") or {}
    if metric == "mze":
        acc = test.get("acc")
        return None if acc is None else 1.0 - float(acc)
    value = test.get(metric)
    return None if value is None else float(value)


def _higher(metric: str) -> bool:
    if metric == "mze":
        return False
    spec = metric_spec(metric)
    if spec is None or spec.higher_is_better is None:
        raise ValueError(f"Expected a metric of known direction, but found {metric!r}")
    return bool(spec.higher_is_better)


def _label(metric: str) -> str:
    if metric == "mze":
        return "MZE"
    spec = metric_spec(metric)
    return spec.header() if spec is not None else metric


@dataclass
class BenchmarkTable:
    """One metric across tasks.

    Attributes:
        metric: the record key (``mze``: 1 - accuracy).
        tasks: the tasks (rows).
        losses: the losses (columns).
        values: mean test value ``(tasks, losses)`` of each loss at its chosen value.
        runs: the seeds of each cell, per task and loss: ``{run: value}``.
        chosen: the chosen parameter of each cell, as text (``"r=0.5"``).
        ranks: ``(tasks, losses)``, 1 = best.
        friedman: the Friedman statistic (chi-square, ``k - 1`` degrees of freedom).
        pvalue: its p-value.
        nemenyi: the Nemenyi test's p-value of every pair of losses ``(losses, losses)``.
        cd: the Nemenyi critical difference of mean ranks at ``alpha``.
    """

    metric: str
    tasks: list[str]
    losses: list[str]
    values: np.ndarray
    runs: dict[tuple[str, str], dict[int, float]]
    chosen: dict[tuple[str, str], str]
    ranks: np.ndarray
    friedman: float
    pvalue: float
    nemenyi: np.ndarray
    cd: float

    @property
    def mean_ranks(self) -> np.ndarray:
        return np.asarray(self.ranks.mean(axis=0))


def _per_task(records_by_task: Mapping[str, Sequence[Mapping[str, Any]]], metric: str) -> tuple[
    list[str], dict[tuple[str, str], dict[int, float]], dict[tuple[str, str], str]
]:  # fmt: skip
    runs: dict[tuple[str, str], dict[int, float]] = {}
    chosen: dict[tuple[str, str], str] = {}
    losses: list[str] = []
    for task, records in records_by_task.items():
        comparison = compare_losses(records)
        for row in comparison.best:
            if row.loss not in losses:
                losses.append(row.loss)
            values = {}
            for record in records:
                same = (
                    stored_loss(record.get("loss")) == row.loss and record.get("value") == row.value
                )
                value = _value(record, metric) if same else None
                if value is not None and math.isfinite(value):
                    values[int(record["run"])] = value
            runs[(task, row.loss)] = values
            chosen[(task, row.loss)] = (
                f"{row.param}={row.value:g}"
                if row.param is not None and row.value is not None
                else ""
            )
    return losses, runs, chosen


def benchmark_tables(
    records_by_task: Mapping[str, Sequence[Mapping[str, Any]]],
    metrics: Sequence[str] = BENCHMARK_METRICS,
    *,
    alpha: float = 0.05,
) -> list[BenchmarkTable]:
    """The across-task tables of a benchmark, one per metric (see the module).

    Args:
        records_by_task: each task's run records (a sweep's records of every loss).
        metrics: record keys (``mze``: 1 - accuracy).
        alpha: the tests' significance level.

    Raises:
        ValueError: fewer than two tasks or losses, or a loss missing on a task
            (a Friedman test needs the same losses on every task).
    """
    posthocs = require("scikit_posthocs", BENCHMARK_EXTRA)
    from scipy.stats import friedmanchisquare, rankdata

    tasks = list(records_by_task)
    if len(tasks) < 2:
        raise ValueError(f"Expected at least two tasks for a Friedman test, but found {tasks}")
    tables = []
    for metric in metrics:
        losses, runs, chosen = _per_task(records_by_task, metric)
        if len(losses) < 2:
            raise ValueError(
                f"Expected at least two losses for a Friedman test, but found {losses}"
            )
        missing = [(t, loss) for t in tasks for loss in losses if not runs.get((t, loss))]
        if missing:
            raise ValueError(
                f"Expected every loss on every task (a Friedman test ranks complete blocks), "
                f"but found no {_label(metric)} of {missing[:4]}"
            )
        values = np.array(
            [[np.mean(list(runs[(t, loss)].values())) for loss in losses] for t in tasks]
        )
        higher = _higher(metric)

        ranks = np.vstack([rankdata(-row if higher else row) for row in values])
        k, n = len(losses), len(tasks)
        if k >= 3:
            statistic, pvalue = friedmanchisquare(*values.T)
        else:  # scipy's test needs three groups: its chi-square, tie correction included
            statistic, pvalue = _friedman_two(ranks)
        nemenyi = np.asarray(posthocs.posthoc_nemenyi_friedman(values), dtype=np.float64)
        tables.append(
            BenchmarkTable(
                metric, tasks, losses, values, runs, chosen, ranks,
                float(statistic), float(pvalue), nemenyi, nemenyi_cd(k, n, alpha),
            )
        )  # fmt: skip
    return tables


def _friedman_two(ranks: np.ndarray) -> tuple[float, float]:
    """The Friedman statistic and p-value of ranks ``(n, k)``, as scipy's
    ``friedmanchisquare`` computes it for ``k >= 3``: Demšar's (2006) Eq. 1 divided by
    the tie correction ``1 - sum(t^3 - t) / (n k (k^2 - 1))`` (``t``: the size of each
    group of tied ranks within a task). Every task a tie: 0, p = 1.
    """
    from scipy.stats import chi2

    n, k = ranks.shape
    sums = ranks.sum(axis=0)
    statistic = 12.0 / (n * k * (k + 1)) * float(np.sum(sums**2)) - 3.0 * n * (k + 1)
    ties = sum(
        float(t**3 - t) for row in ranks for t in np.unique(row, return_counts=True)[1] if t > 1
    )
    correction = 1.0 - ties / (n * k * (k * k - 1))
    if correction <= 0:
        return 0.0, 1.0
    statistic /= correction
    return float(statistic), float(chi2.sf(statistic, k - 1))


def _win_tie_loss(table: BenchmarkTable, alpha: float) -> dict[str, tuple[int, int, int]]:
    """SimLoss against each peer: tasks won, tied, lost (Wilcoxon over seeds, per task)."""
    if "simloss" not in table.losses:
        return {}
    lower = not _higher(table.metric)
    out = {}
    for peer in table.losses:
        if peer == "simloss":
            continue
        counts = [0, 0, 0]
        for task in table.tasks:
            test = wilcoxon_against_baseline(
                table.runs[(task, "simloss")],
                table.runs[(task, peer)],
                lower_is_better=lower,
                alpha=alpha,
            )
            counts[{"+": 0, "-": 2}.get(test.mark, 1)] += 1
        out[peer] = (counts[0], counts[1], counts[2])
    return out


def _fmt(value: float, metric: str) -> str:
    """A mean as the tables show it: MAE in class-value units, MZE and QWK in [0, 1]."""
    return f"{value:.3f}"


def _runs_text(settings: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
    """What the runs of a benchmark varied, in words, from the configs the runs used."""
    configs = [(int(r["run"]), r.get("config") or {}) for r in records if "run" in r]
    seeds = sorted({int(c["seed"]) - run for run, c in configs if c.get("seed") is not None})
    per_run = (settings.get("settings") or {}).get("split_per_run")
    split_seeds = sorted(
        {
            int(c["split_seed"]) - (run if per_run else 0)
            for run, c in configs
            if c.get("split_seed") is not None
        }
    )
    fractions = sorted(
        {
            (float(c["val_fraction"]), float(c["test_fraction"]))
            for _, c in configs
            if c.get("val_fraction") is not None and c.get("test_fraction") is not None
        }
    )
    seed = f"seed {seeds[0]} + i" if len(seeds) == 1 else "seed + i"
    if len(fractions) == 1:
        val, test = fractions[0]
        split = f"{round(100 * (1 - val - test))}/{round(100 * val)}/{round(100 * test)}"
    else:
        split = "train/validation/test (each task's fractions)"
    if per_run:
        split_seed = (
            f"split seed {split_seeds[0]} + i" if len(split_seeds) == 1 else "split seed + i"
        )
        return (
            f"run i trains with {seed} on its own stratified {split} split, {split_seed}: "
            "repeated holdout, as the ordinal literature compares methods"
        )
    shared = f" (split seed {split_seeds[0]})" if len(split_seeds) == 1 else ""
    return f"run i trains with {seed}; every run shares one {split} split per task{shared}"


def _markdown(
    tables: list[BenchmarkTable],
    settings: Mapping[str, Any],
    alpha: float,
    unfinished: Sequence[str] = (),
    records: Sequence[Mapping[str, Any]] = (),
    figures: bool = True,
) -> str:
    first = tables[0]
    runs = settings.get("runs")
    out = [
        "# Benchmark: which loss for related classes?",
        "",
        f"{len(first.tasks)} tasks x {len(first.losses)} losses, {runs} "
        f"run{'' if runs == 1 else 's'} each ({_runs_text(settings, records)}). Each loss stands at the value of its parameter with the best mean "
        "validation metric on each task, scored by its mean test metric. Ranks: 1 = best, "
        f"ties share the mean rank; Friedman test and Nemenyi post-hoc test at alpha = {alpha:g} "
        "(scipy, scikit-posthocs); win/tie/loss: two-sided Wilcoxon signed-rank test over the "
        "seeds per task.",
    ]
    if unfinished:
        out += [
            "",
            f"**A partial benchmark**: {len(unfinished)} of {len(settings['tasks'])} tasks are "
            f"unfinished and left out of the ranks and tests: {', '.join(unfinished)}. Rerun "
            "the same `simloss benchmark` command to finish them.",
        ]
    for table in tables:
        label = _label(table.metric)
        order = np.argsort(table.mean_ranks)
        out += ["", f"## {label}", ""]
        out.append("| loss | mean rank | " + " | ".join(table.tasks) + " |")
        out.append("|---" * (len(table.tasks) + 2) + "|")
        for j in order:
            loss = table.losses[j]
            cells = []
            for i, task in enumerate(table.tasks):
                chosen = table.chosen.get((task, loss), "")
                cells.append(
                    f"{_fmt(table.values[i, j], table.metric)}" + (f" ({chosen})" if chosen else "")
                )
            out.append(
                f"| {LOSSES[loss].title} | {table.mean_ranks[j]:.2f} | " + " | ".join(cells) + " |"
            )
        p = table.pvalue
        verdict = (
            "the losses' ranks differ" if p < alpha else "no difference between the losses' ranks"
        )
        pairs = [
            f"{LOSSES[table.losses[a]].title} vs {LOSSES[table.losses[b]].title}"
            for a in range(len(table.losses))
            for b in range(a + 1, len(table.losses))
            if table.nemenyi[a, b] < alpha
        ]
        out += [
            "",
            f"Friedman test: chi-square = {table.friedman:.3f} ({len(table.losses) - 1} df), "
            f"p = {p:.3g}: {verdict} at alpha = {alpha:g}. Nemenyi critical difference CD = "
            f"{table.cd:.3f} (k = {len(table.losses)}, N = {len(table.tasks)} tasks); pairs "
            f"that differ significantly: {', '.join(pairs) if pairs else 'none'}.",
        ]
        if figures:
            out += ["", f"![critical-difference diagram](cd_{table.metric}.png)"]
        wtl = _win_tie_loss(table, alpha)
        if wtl:
            out += ["", f"SimLoss against each peer on {label} (tasks won / tied / lost):", ""]
            out.append("| peer | win | tie | loss |")
            out.append("|---|---|---|---|")
            for peer, (w, t, lo) in wtl.items():
                out.append(f"| {LOSSES[peer].title} | {w} | {t} | {lo} |")
    out += ["", "Per task, the comparison of every loss and value: " + ", ".join(
        f"[{t}](tasks/{t}/report.md)" for t in first.tasks
    ) + "."]  # fmt: skip
    return "\n".join(out) + "\n"


def _csv(tables: list[BenchmarkTable]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["metric", "task", "loss", "chosen", "runs", "mean", "rank"])
    for table in tables:
        for i, task in enumerate(table.tasks):
            for j, loss in enumerate(table.losses):
                writer.writerow([
                    table.metric, task, loss, table.chosen.get((task, loss), ""),
                    len(table.runs[(task, loss)]), repr(float(table.values[i, j])),
                    repr(float(table.ranks[i, j])),
                ])  # fmt: skip
    return buffer.getvalue()


def cd_diagram(table: BenchmarkTable, alpha: float = 0.05) -> Any:
    """The critical-difference diagram of one metric (scikit-posthocs): mean ranks on an
    axis, losses that do not differ significantly (Nemenyi) joined by a bar."""
    posthocs = require("scikit_posthocs", BENCHMARK_EXTRA)
    import matplotlib.pyplot as plt
    import pandas

    titles = [LOSSES[loss].title for loss in table.losses]
    ranks = pandas.Series(table.mean_ranks, index=titles)
    significance = pandas.DataFrame(table.nemenyi, index=titles, columns=titles)
    figure, axes = plt.subplots(figsize=(7, 0.5 + 0.35 * len(titles)))
    posthocs.critical_difference_diagram(ranks, significance, alpha=alpha, ax=axes)
    axes.set_title(f"{_label(table.metric)}: mean ranks (1 = best), CD = {table.cd:.2f}")
    figure.tight_layout()
    return figure


def write_benchmark_report(
    folder: str | Path,
    out_dir: str | Path | None = None,
    *,
    metrics: Sequence[str] = BENCHMARK_METRICS,
    alpha: float = 0.05,
    figures: bool = True,
) -> Path:
    """Write a benchmark folder's report: ``benchmark.md``, ``benchmark.csv``, a
    critical-difference diagram per metric and each task's comparison report.

    Args:
        folder: the benchmark folder (``benchmark.json``, ``tasks/<task>/``).
        out_dir: where to write (default ``folder/report``).
        metrics: the metrics ranked.
        alpha: the tests' significance level.
        figures: write the critical-difference diagrams and each task's figures.

    Returns:
        The path of ``benchmark.md``.

    Raises:
        ValueError: fewer than two finished tasks. A task is finished when every loss has
            all its planned runs (values x seeds) recorded; unfinished tasks (not started,
            still running, killed, or with failed runs) are left out of the ranks and
            named in the report.
    """
    from simloss.experiments.report import write_report
    from simloss.experiments.report.figures import save_figure
    from simloss.experiments.sweep import load_records

    if not isinstance(folder, (str, Path)):
        raise TypeError(f"Expected `folder` to be a str or Path, but found {type(folder).__name__}")
    root = Path(folder)
    settings = read_benchmark(root)
    out = Path(out_dir) if out_dir is not None else root / "report"
    planned = {
        loss: max(1, len(grid["values"])) * int(grid["runs"])
        for loss, grid in settings["losses"].items()
    }
    records_by_task = {}
    unfinished = []
    for task in settings["tasks"]:
        if not (root / "tasks" / task).is_dir():
            unfinished.append(f"{task} (not started)")
            continue
        records = [  # only this benchmark's losses, whatever else a shared study holds
            r for r in load_records(root / "tasks" / task) if stored_loss(r.get("loss")) in planned
        ]
        done = Counter(stored_loss(record.get("loss")) for record in records)
        finished = sum(min(done[loss], n) for loss, n in planned.items())
        if finished < sum(planned.values()):
            unfinished.append(f"{task} ({finished} of {sum(planned.values())} runs)")
            continue
        records_by_task[task] = records
    if len(records_by_task) < 2:
        raise ValueError(
            f"Expected at least two finished tasks in {root} for a Friedman test, but found "
            f"{list(records_by_task) or 'none'}; unfinished: {', '.join(unfinished)} (rerun the "
            "same simloss benchmark command to finish them)"
        )
    for task, records in records_by_task.items():
        write_report(records, out / "tasks" / task, figures=figures)
    tables = benchmark_tables(records_by_task, metrics, alpha=alpha)
    if figures:
        for table in tables:
            save_figure(cd_diagram(table, alpha), out, f"cd_{table.metric}")
    path = out / "benchmark.md"
    every = [record for records in records_by_task.values() for record in records]
    atomic_write_text(path, _markdown(tables, settings, alpha, unfinished, every, figures))
    atomic_write_text(out / "benchmark.csv", _csv(tables))
    return path
