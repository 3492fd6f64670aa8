"""Result tables and significance tests of a sweep, in the paper's layout.

A sweep is a list of run records (see ``docs/architecture.md``), each with the
keys ``param`` (``"r"`` or ``"l"``), ``value`` and ``run`` added by
:func:`simloss.experiments.records.load_records`. :func:`summarize_sweep` turns
them into a :class:`SweepSummary`: one row per hyper-parameter value, the mean
and standard deviation over runs of every validation and test metric, the best
validation value of each metric (bold in the tables) and, for every test value,
a two-sided Wilcoxon signed-rank test at the 5% level against the CCE row
(``r = 0.0`` or ``l = 0.99``), paired by run index, as in Tables 1 and 2 of the
paper. :func:`write_report` writes the tables as Markdown, LaTeX and CSV, with
the paper's own numbers beside ours where the paper has them, and the figures
of :mod:`simloss.experiments.figures`.

References:
    Kobs et al., "SimLoss: Class Similarities in Cross Entropy", ISMIS 2020,
    https://arxiv.org/abs/2003.03182
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import stats

from simloss.experiments.paper_tables import PaperCell, paper_cells_for

__all__ = [
    "CCE_BASELINES",
    "LOWER_IS_BETTER",
    "METRIC_LABELS",
    "CellStats",
    "SweepSummary",
    "WilcoxonResult",
    "format_param_value",
    "min_pairs_for_significance",
    "summarize_sweep",
    "to_csv",
    "to_latex",
    "to_markdown",
    "wilcoxon_against_baseline",
    "write_report",
]

SPLITS: tuple[str, str] = ("val", "test")
SPLIT_LABELS = {"val": "Validation", "test": "Test"}
METRIC_ORDER = ("acc", "mae", "mse", "sa", "fsa")
METRIC_LABELS = {"acc": "Acc", "mae": "MAE", "mse": "MSE", "sa": "SA", "fsa": "FSA"}
LOWER_IS_BETTER: dict[str, bool] = {
    "acc": False,
    "sa": False,
    "fsa": False,
    "mae": True,
    "mse": True,
}
"""Direction of each known metric: ``True`` where lower values are better."""
PERCENT_METRICS = frozenset({"acc", "sa", "fsa"})
CCE_BASELINES: dict[str, float] = {"r": 0.0, "l": 0.99}
"""The hyper-parameter value at which SimLoss is plain cross-entropy (the paper's CCE row)."""

_KEY_DECIMALS = 10
TestStatus = Literal["tested", "too_few_runs", "all_zero", "no_baseline", "unknown_direction"]


def _key(value: float) -> float:
    """Grid values as dictionary keys, immune to ``0.30000000000000004``."""
    return round(float(value), _KEY_DECIMALS)


def format_param_value(value: float) -> str:
    """A hyper-parameter value as shown in tables: shortest form, at least one decimal.

    Example:
        >>> [format_param_value(v) for v in (0.0, 0.3, 0.99, 0.1 + 0.2)]
        ['0.0', '0.3', '0.99', '0.3']
    """
    text = f"{_key(value):.10g}"
    return text if ("." in text or "e" in text) else f"{text}.0"


def min_pairs_for_significance(alpha: float) -> int:
    """The fewest non-zero paired differences a two-sided signed-rank test needs to reach ``alpha``.

    With ``n`` non-zero differences the smallest two-sided p-value is ``2 / 2**n``
    (all differences of one sign), so fewer pairs can never be significant.

    Args:
        alpha: significance level in (0, 1).

    Returns:
        The smallest ``n`` with ``2 ** (1 - n) < alpha``.

    Example:
        >>> min_pairs_for_significance(0.05)
        6
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"Expected `alpha` in (0, 1), but found {alpha}")
    n = 1
    while 2.0 ** (1 - n) >= alpha:
        n += 1
    return n


@dataclass(frozen=True)
class WilcoxonResult:
    """Outcome of one significance test of a test value against the CCE row.

    Attributes:
        status: ``"tested"`` when the test was made; otherwise why not:
            ``"too_few_runs"``, ``"all_zero"`` (every paired difference is zero),
            ``"no_baseline"`` (no CCE runs to pair with) or ``"unknown_direction"``
            (a metric whose better direction is not known).
        n_pairs: runs present in both rows (paired by run index).
        n_nonzero: pairs with a non-zero difference (those the test ranks).
        mean_difference: mean of ``value - baseline`` over the pairs (``None``
            without pairs).
        statistic: the signed-rank statistic (``None`` when not tested).
        p_value: the two-sided p-value (``None`` when not tested).
        mark: ``"+"`` (significantly better), ``"-"`` (significantly worse) or ``""``.
        reason: a short human-readable account of the outcome.
    """

    status: TestStatus
    n_pairs: int
    n_nonzero: int
    mean_difference: float | None
    statistic: float | None
    p_value: float | None
    mark: str
    reason: str

    @property
    def made(self) -> bool:
        """Whether the test was made."""
        return self.status == "tested"


def wilcoxon_against_baseline(
    values: Mapping[int, float],
    baseline: Mapping[int, float],
    *,
    lower_is_better: bool | None,
    alpha: float = 0.05,
) -> WilcoxonResult:
    """Two-sided Wilcoxon signed-rank test of one row against the CCE row, paired by run.

    Runs present in both mappings are paired; zero differences are discarded
    (``zero_method="wilcox"``) and ``scipy.stats.wilcoxon`` chooses the exact or
    permutation null distribution for small samples (``method="auto"``). The test
    is not made when fewer non-zero differences remain than
    :func:`min_pairs_for_significance` requires, or when all differences are zero.
    The mark follows the sign of the mean paired difference and the metric's
    direction: ``+`` for significantly better, ``-`` for significantly worse.

    Args:
        values: metric value per run index for the row under test.
        baseline: metric value per run index for the CCE row.
        lower_is_better: the metric's direction (``None``: unknown, no test).
        alpha: significance level (two-sided).

    Returns:
        A :class:`WilcoxonResult`.

    Example:
        >>> base = {i: 0.10 for i in range(8)}
        >>> better = {i: 0.12 + 0.001 * i for i in range(8)}
        >>> res = wilcoxon_against_baseline(better, base, lower_is_better=False)
        >>> res.mark, res.n_pairs, round(res.p_value, 4)
        ('+', 8, 0.0078)
        >>> wilcoxon_against_baseline(base, base, lower_is_better=False).status
        'all_zero'
    """
    min_pairs = min_pairs_for_significance(alpha)
    common = sorted(set(values) & set(baseline))
    n_pairs = len(common)
    diffs = np.array([values[i] - baseline[i] for i in common], dtype=np.float64)
    # Rounding removes sub-ulp noise from the subtraction, so tied differences tie exactly.
    diffs = np.round(diffs, 12)
    n_nonzero = int(np.count_nonzero(diffs))
    mean_diff = float(diffs.mean()) if n_pairs else None
    if not baseline:
        return WilcoxonResult("no_baseline", 0, 0, None, None, None, "", "no CCE runs")
    if lower_is_better is None:
        return WilcoxonResult(
            "unknown_direction", n_pairs, n_nonzero, mean_diff, None, None, "",
            "not made: the metric's better direction is unknown",
        )  # fmt: skip
    if n_pairs > 0 and n_nonzero == 0:
        return WilcoxonResult(
            "all_zero", n_pairs, 0, mean_diff, None, None, "",
            f"not made: all {n_pairs} paired differences are zero",
        )  # fmt: skip
    if n_nonzero < min_pairs:
        return WilcoxonResult(
            "too_few_runs", n_pairs, n_nonzero, mean_diff, None, None, "",
            f"not made: too few runs ({n_nonzero} non-zero of {n_pairs} pairs; "
            f"{min_pairs} needed)",
        )  # fmt: skip
    result = stats.wilcoxon(diffs, zero_method="wilcox", alternative="two-sided", method="auto")
    p_value = float(result.pvalue)
    statistic = float(result.statistic)
    mark = ""
    if p_value < alpha and mean_diff is not None and mean_diff != 0.0:
        better = (mean_diff < 0.0) if lower_is_better else (mean_diff > 0.0)
        mark = "+" if better else "-"
    verdict = {"+": "significantly better", "-": "significantly worse", "": "not significant"}
    return WilcoxonResult(
        "tested", n_pairs, n_nonzero, mean_diff, statistic, p_value, mark,
        f"{verdict[mark]} (p = {p_value:.3g}, n = {n_nonzero} of {n_pairs} pairs)",
    )  # fmt: skip


@dataclass(frozen=True)
class CellStats:
    """Mean and spread of one metric of one row over its runs.

    Attributes:
        runs: metric value per run index.
        mean: mean over runs.
        std: sample standard deviation over runs (``ddof=1``; NaN for one run).
    """

    runs: dict[int, float]
    mean: float
    std: float

    @property
    def n(self) -> int:
        """Number of runs."""
        return len(self.runs)


@dataclass
class SweepSummary:
    """Everything the report tables show, computed from a sweep's records.

    Attributes:
        dataset: the dataset name of the records.
        param: ``"r"`` or ``"l"``.
        baseline: the CCE value of ``param``.
        alpha: the significance level of the tests.
        values: the hyper-parameter values in table order (CCE first, then by
            distance from it: ``r`` ascending, ``l`` descending, as in the paper).
        metrics: the metric keys, in the paper's order.
        cells: :class:`CellStats` per ``(value, split, metric)``.
        best: the value(s) with the best mean per ``(split, metric)``.
        tests: :class:`WilcoxonResult` per ``(value, metric)`` for the test split
            (every non-CCE value).
        runs: the run indices recorded per value.
        missing: what a complete sweep would have and these records lack.
        notes: other facts the reader must know (unknown metric directions, ...).
        records: the records (kept for the figures).
    """

    dataset: str
    param: str
    baseline: float
    alpha: float
    values: list[float]
    metrics: list[str]
    cells: dict[tuple[float, str, str], CellStats]
    best: dict[tuple[str, str], list[float]]
    tests: dict[tuple[float, str], WilcoxonResult]
    runs: dict[float, list[int]]
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def is_best(self, value: float, split: str, metric: str) -> bool:
        """Whether ``value`` holds the best mean of ``metric`` on ``split``."""
        return _key(value) in self.best.get((split, metric), [])

    def paper_cells(self) -> dict[tuple[float, str, str], PaperCell]:
        """The paper's numbers for this dataset and parameter (empty when none)."""
        cells = paper_cells_for(self.dataset, self.param)
        return {(_key(v), split, metric): cell for (v, split, metric), cell in cells.items()}


def _record_field(record: Mapping[str, Any], key: str, index: int) -> Any:
    if key not in record:
        raise ValueError(
            f"Expected every record to have the key {key!r} (added by load_records), "
            f"but record {index} has only {sorted(record)}"
        )
    return record[key]


def _check_number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Expected {what} to be a number, but found {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"Expected {what} to be finite, but found {number}")
    return number


def _metric_sort_key(metric: str) -> tuple[int, str]:
    return (METRIC_ORDER.index(metric) if metric in METRIC_ORDER else len(METRIC_ORDER), metric)


def summarize_sweep(
    records: Sequence[Mapping[str, Any]],
    *,
    dataset: str | None = None,
    baseline: float | None = None,
    alpha: float = 0.05,
    expected_values: Sequence[float] | None = None,
    expected_runs: int | None = None,
) -> SweepSummary:
    """Aggregate a sweep's run records into the paper's table statistics.

    Args:
        records: run records with the keys ``param``, ``value`` and ``run`` (as
            returned by ``load_records``) and ``dataset`` and ``metrics``.
        dataset: the dataset the records must belong to (default: theirs).
        baseline: the CCE value of the parameter (default: ``r = 0.0``, ``l = 0.99``).
        alpha: significance level of the Wilcoxon tests.
        expected_values: the sweep's full grid, to report values with no runs yet.
        expected_runs: runs per value in a complete sweep (indices ``0..n-1``).

    Returns:
        A :class:`SweepSummary`.

    Raises:
        ValueError: no records, mixed datasets or parameters, duplicate
            ``(value, run)`` pairs, or non-finite metric values.

    Example:
        >>> recs = [
        ...     {"dataset": "toy", "param": "r", "value": v, "run": i,
        ...      "metrics": {"val": {"mae": 2.0 - v}, "test": {"mae": 2.0 - v + 0.1 * i}}}
        ...     for v in (0.0, 0.5) for i in range(2)
        ... ]
        >>> s = summarize_sweep(recs)
        >>> s.values, s.cells[(0.5, "test", "mae")].mean, s.best[("val", "mae")]
        ([0.0, 0.5], 1.55, [0.5])
        >>> s.tests[(0.5, "mae")].status
        'too_few_runs'
    """
    if not records:
        raise ValueError("Expected `records` to hold at least one run record, but found none")
    params = {str(_record_field(r, "param", i)) for i, r in enumerate(records)}
    if len(params) != 1:
        raise ValueError(f"Expected all records to sweep one parameter, but found {sorted(params)}")
    param = params.pop()
    datasets = {str(_record_field(r, "dataset", i)) for i, r in enumerate(records)}
    if len(datasets) != 1:
        raise ValueError(f"Expected all records to share one dataset, but found {sorted(datasets)}")
    found_dataset = datasets.pop()
    if dataset is not None and dataset.lower() != found_dataset.lower():
        raise ValueError(
            f"Expected records of dataset {dataset!r} (`dataset`), but found {found_dataset!r}"
        )
    if baseline is None:
        if param not in CCE_BASELINES:
            raise ValueError(
                f"Expected `baseline` for parameter {param!r} (known defaults: {CCE_BASELINES})"
            )
        baseline = CCE_BASELINES[param]
    base = _key(baseline)

    per_run: dict[tuple[float, int], dict[str, dict[str, float]]] = {}
    nulls: set[tuple[float, int, str, str]] = set()
    notes: list[str] = []
    for i, record in enumerate(records):
        value = _key(_check_number(_record_field(record, "value", i), f"record {i} `value`"))
        run = _record_field(record, "run", i)
        if isinstance(run, bool) or not isinstance(run, int):
            raise TypeError(f"Expected record {i} `run` to be an int, but found {run!r}")
        if (value, run) in per_run:
            raise ValueError(
                f"Expected one record per (value, run), but found two for "
                f"{param} = {format_param_value(value)}, run {run}"
            )
        metrics = _record_field(record, "metrics", i)
        if not isinstance(metrics, Mapping):
            raise TypeError(f"Expected record {i} `metrics` to be a mapping, found {metrics!r}")
        entry: dict[str, dict[str, float]] = {}
        for split in SPLITS:
            split_metrics = metrics.get(split)
            if split_metrics is None:
                notes.append(
                    f"{param} = {format_param_value(value)}, run {run} has no {split} metrics"
                )
                split_metrics = {}
            entry[split] = {}
            where = f"{param} = {format_param_value(value)}, run {run}"
            for name, number in split_metrics.items():
                if number is None:
                    # Records store undefined values (e.g. FSA with no mistakes) as null.
                    notes.append(f"{where}: {split} {name} is undefined (null) and left out")
                    nulls.add((value, run, split, str(name)))
                    continue
                entry[split][str(name)] = _check_number(number, f"{split} {name} of {where}")
        per_run[(value, run)] = entry

    metrics_found = sorted(
        {m for entry in per_run.values() for split in SPLITS for m in entry[split]},
        key=_metric_sort_key,
    )
    unknown = [m for m in metrics_found if m not in LOWER_IS_BETTER]
    if unknown:
        notes.append(
            f"metric(s) {unknown} have no known better direction: no bold and no +/- marks"
        )

    def distance(v: float) -> tuple[float, float]:
        return (abs(v - base), v)

    values = sorted({v for v, _ in per_run}, key=distance)
    runs = {v: sorted(r for vv, r in per_run if vv == v) for v in values}

    cells: dict[tuple[float, str, str], CellStats] = {}
    for value in values:
        for split in SPLITS:
            for metric in metrics_found:
                got = {
                    run: per_run[(value, run)][split][metric]
                    for run in runs[value]
                    if metric in per_run[(value, run)][split]
                }
                lacking = [
                    run
                    for run in runs[value]
                    if run not in got and (value, run, split, metric) not in nulls
                ]
                if lacking:
                    notes.append(
                        f"{param} = {format_param_value(value)}: run(s) {lacking} "
                        f"have no {split} {metric}"
                    )
                if not got:
                    continue
                arr = np.array(list(got.values()), dtype=np.float64)
                std = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
                cells[(value, split, metric)] = CellStats(got, float(arr.mean()), std)

    best: dict[tuple[str, str], list[float]] = {}
    for split in SPLITS:
        for metric in metrics_found:
            lower = LOWER_IS_BETTER.get(metric)
            if lower is None:
                continue
            means = {
                v: cells[(v, split, metric)].mean for v in values if (v, split, metric) in cells
            }
            if not means:
                continue
            target = min(means.values()) if lower else max(means.values())
            best[(split, metric)] = [v for v, m in means.items() if math.isclose(m, target)]

    tests: dict[tuple[float, str], WilcoxonResult] = {}
    for metric in metrics_found:
        base_cell = cells.get((base, "test", metric))
        for value in values:
            if value == base or (value, "test", metric) not in cells:
                continue
            tests[(value, metric)] = wilcoxon_against_baseline(
                cells[(value, "test", metric)].runs,
                base_cell.runs if base_cell is not None else {},
                lower_is_better=LOWER_IS_BETTER.get(metric),
                alpha=alpha,
            )

    missing: list[str] = []
    if base not in runs:
        missing.append(
            f"no CCE runs ({param} = {format_param_value(base)}): no significance tests can be made"
        )
    if expected_values is not None:
        absent = [v for v in (_key(x) for x in expected_values) if v not in runs]
        if absent:
            shown = ", ".join(format_param_value(v) for v in sorted(absent, key=distance))
            missing.append(f"{param} = {shown}: no finished runs")
    all_runs = set(range(expected_runs)) if expected_runs is not None else set()
    for value_runs in runs.values():
        all_runs.update(value_runs)
    for value in values:
        lacking_runs = sorted(all_runs - set(runs[value]))
        if lacking_runs:
            missing.append(
                f"{param} = {format_param_value(value)}: run(s) {lacking_runs} not finished "
                f"({len(runs[value])} of {len(all_runs)})"
            )

    return SweepSummary(
        dataset=found_dataset,
        param=param,
        baseline=base,
        alpha=alpha,
        values=values,
        metrics=metrics_found,
        cells=cells,
        best=best,
        tests=tests,
        runs=runs,
        missing=missing,
        notes=notes,
        records=[dict(r) for r in records],
    )


# ---------------------------------------------------------------------------
# Rendering


def _scale(metric: str) -> float:
    return 100.0 if metric in PERCENT_METRICS else 1.0


def _fmt(number: float, metric: str) -> str:
    if math.isnan(number):
        return "n/a"
    return f"{number * _scale(metric):.2f}"


def _metric_header(metric: str) -> str:
    label = METRIC_LABELS.get(metric, metric)
    return f"{label} (%)" if metric in PERCENT_METRICS else label


def _runs_text(summary: SweepSummary, value: float) -> str:
    counts = {c.n for (v, _, _), c in summary.cells.items() if v == value}
    if not counts:
        return "0"
    low, high = min(counts), max(counts)
    return str(low) if low == high else f"{low}-{high}"


def _mean_cell(summary: SweepSummary, value: float, split: str, metric: str) -> tuple[str, bool]:
    """Text of a mean cell with its mark, and whether it is bold."""
    cell = summary.cells.get((value, split, metric))
    if cell is None:
        return "-", False
    text = _fmt(cell.mean, metric)
    if split == "test":
        test = summary.tests.get((value, metric))
        if test is not None:
            text += test.mark
    return text, split == "val" and summary.is_best(value, split, metric)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _columns(summary: SweepSummary) -> list[tuple[str, str]]:
    return [(split, metric) for split in SPLITS for metric in summary.metrics]


def _title(summary: SweepSummary) -> str:
    return f"SimLoss sweep report: {summary.dataset}, parameter {summary.param}"


def _cce_text(summary: SweepSummary) -> str:
    return f"{summary.param} = {format_param_value(summary.baseline)}"


def to_markdown(summary: SweepSummary, *, figures: Sequence[str] = ()) -> str:
    """The report as Markdown: means, standard deviations, tests, the paper's numbers.

    Args:
        summary: as returned by :func:`summarize_sweep`.
        figures: figure file names (relative to the report) to link at the end.

    Returns:
        The Markdown text.

    Example:
        >>> recs = [
        ...     {"dataset": "toy", "param": "r", "value": v, "run": 0,
        ...      "metrics": {"val": {"acc": 0.1 + v}, "test": {"acc": 0.1}}}
        ...     for v in (0.0, 0.5)
        ... ]
        >>> md = to_markdown(summarize_sweep(recs))
        >>> "| 0.5 | 1 | **60.00** | 10.00 |" in md
        True
    """
    columns = _columns(summary)
    header = [summary.param, "runs"] + [
        f"{SPLIT_LABELS[s]} {_metric_header(m)}" for s, m in columns
    ]
    mean_rows = []
    std_rows = []
    for value in summary.values:
        row = [format_param_value(value), _runs_text(summary, value)]
        srow = [format_param_value(value), _runs_text(summary, value)]
        for split, metric in columns:
            text, bold = _mean_cell(summary, value, split, metric)
            row.append(f"**{text}**" if bold else text)
            cell = summary.cells.get((value, split, metric))
            srow.append("-" if cell is None else _fmt(cell.std, metric))
        mean_rows.append(row)
        std_rows.append(srow)

    out = [f"# {_title(summary)}", ""]
    n_records = len(summary.records)
    out.append(
        f"{n_records} finished run(s) over {len(summary.values)} value(s) of {summary.param}. "
        f"Accuracy-type metrics in percent. Means over runs; the best validation value of "
        f"each metric in bold; a test value is marked + or - where a two-sided Wilcoxon "
        f"signed-rank test (alpha = {summary.alpha:g}), paired by run index against CCE "
        f"({_cce_text(summary)}), finds it significantly better or worse."
    )
    out += ["", "## Mean over runs", "", _md_table(header, mean_rows)]
    out += ["", "## Standard deviation over runs (ddof = 1)", "", _md_table(header, std_rows)]

    out += ["", "## Significance tests (test split, against CCE)", ""]
    test_header = [summary.param] + [_metric_header(m) for m in summary.metrics]
    test_rows = []
    for value in summary.values:
        if value == summary.baseline:
            continue
        row = [format_param_value(value)]
        for metric in summary.metrics:
            test = summary.tests.get((value, metric))
            if test is None:
                row.append("no test values")
            else:
                row.append(f"{test.mark} {test.reason}".strip())
        test_rows.append(row)
    if test_rows:
        out.append(
            f"Each cell: the mark, the p-value and the runs entering the test (non-zero paired "
            f"differences of the runs both rows have). A two-sided test needs at least "
            f"{min_pairs_for_significance(summary.alpha)} non-zero differences to reach "
            f"p < {summary.alpha:g}; with fewer it is not made."
        )
        out += ["", _md_table(test_header, test_rows)]
    else:
        out.append("No values besides CCE: nothing to test.")

    paper = summary.paper_cells()
    if paper:
        out += ["", *_paper_markdown(summary, paper)]

    if summary.missing:
        out += ["", "## Missing (partial sweep)", ""]
        out += [f"- {item}" for item in summary.missing]
    if summary.notes:
        out += ["", "## Notes", ""]
        out += [f"- {item}" for item in summary.notes]
    if figures:
        out += ["", "## Figures", ""]
        out += [f"![{name}]({name})" for name in figures]
    return "\n".join(out) + "\n"


def _paper_markdown(
    summary: SweepSummary, paper: Mapping[tuple[float, str, str], PaperCell]
) -> list[str]:
    table = "Table 1" if summary.param == "r" else "Table 2"
    paper_values = sorted(
        {_key(v) for v, _, _ in paper}, key=lambda v: (abs(v - summary.baseline), v)
    )
    columns = [
        (s, m) for s, m in _columns(summary) if any((v, s, m) in paper for v in paper_values)
    ]
    header = [summary.param] + [f"{SPLIT_LABELS[s]} {_metric_header(m)}" for s, m in columns]
    rows = []
    shown = [v for v in paper_values if _key(v) in summary.runs]
    for value in shown:
        row = [format_param_value(value)]
        for split, metric in columns:
            cell = paper.get((value, split, metric))
            if cell is None:
                row.append("-")
                continue
            text = cell.text
            row.append(f"**{text}**" if cell.bold else text)
        rows.append(row)
    lines = [f"## The paper's numbers ({table}, {summary.dataset}, 10 runs each)", ""]
    if rows:
        lines.append(_md_table(header, rows))
    not_in_paper = [format_param_value(v) for v in summary.values if v not in paper_values]
    lines.append("")
    lines.append(
        "Bold and +/- as in the paper (bold: best validation value over the paper's whole grid)."
    )
    if not_in_paper:
        lines.append(f"Values of this sweep the paper does not report: {', '.join(not_in_paper)}.")
    return lines


_LATEX_SPECIAL = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex_tabular(summary: SweepSummary, rows: list[list[str]]) -> list[str]:
    n = len(summary.metrics)
    lines = [r"\begin{tabular}{l" + "r" * (2 * n) + "}", r"\toprule"]
    lines.append(
        f"& \\multicolumn{{{n}}}{{c}}{{Validation}} & \\multicolumn{{{n}}}{{c}}{{Test}} \\\\"
    )
    labels = " & ".join(_latex_escape(_metric_header(m)) for m in summary.metrics)
    lines += [f"${summary.param}$ & {labels} & {labels} \\\\", r"\midrule"]
    lines += [" & ".join(row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return lines


def _latex_mark(text: str) -> str:
    if text.endswith(("+", "-")):
        return f"{text[:-1]}$^{{{text[-1]}}}$"
    return text


def to_latex(summary: SweepSummary) -> str:
    """The mean and standard-deviation tables (and the paper's) as LaTeX (needs ``booktabs``).

    Args:
        summary: as returned by :func:`summarize_sweep`.

    Returns:
        LaTeX source with one ``table`` environment per table.

    Example:
        >>> recs = [
        ...     {"dataset": "toy", "param": "r", "value": v, "run": 0,
        ...      "metrics": {"val": {"mae": 2.0 - v}, "test": {"mae": 2.0}}}
        ...     for v in (0.0, 0.5)
        ... ]
        >>> r"0.5 & \\textbf{1.50} & 2.00 \\\\" in to_latex(summarize_sweep(recs))
        True
    """
    columns = _columns(summary)
    mean_rows, std_rows = [], []
    for value in summary.values:
        row, srow = [format_param_value(value)], [format_param_value(value)]
        for split, metric in columns:
            text, bold = _mean_cell(summary, value, split, metric)
            text = _latex_mark(text)
            row.append(f"\\textbf{{{text}}}" if bold else text)
            cell = summary.cells.get((value, split, metric))
            srow.append("-" if cell is None else _fmt(cell.std, metric))
        mean_rows.append(row)
        std_rows.append(srow)
    name = _latex_escape(summary.dataset)
    cce = f"${summary.param} = {format_param_value(summary.baseline)}$"
    out = [
        r"% Generated by simloss report; requires \usepackage{booktabs}.",
        r"\begin{table}",
        r"\centering",
        f"\\caption{{Validation and test results on {name}, mean over runs. Best validation "
        f"values in bold. Test values marked $^{{+}}$/$^{{-}}$ are significantly better/worse "
        f"than CCE ({cce}; two-sided Wilcoxon signed-rank test, paired by run, "
        f"$\\alpha = {summary.alpha:g}$). Tests that could not be made are listed, with their "
        f"run counts, in report.md and report.csv.}}",
        *_latex_tabular(summary, mean_rows),
        r"\end{table}",
        "",
        r"\begin{table}",
        r"\centering",
        f"\\caption{{Standard deviation over runs (ddof = 1) on {name}.}}",
        *_latex_tabular(summary, std_rows),
        r"\end{table}",
    ]
    paper = summary.paper_cells()
    shown = sorted(
        {v for v, _, _ in paper if _key(v) in summary.runs},
        key=lambda v: (abs(v - summary.baseline), v),
    )
    if shown:
        paper_rows = []
        for value in shown:
            row = [format_param_value(value)]
            for split, metric in columns:
                pcell = paper.get((value, split, metric))
                if pcell is None:
                    row.append("-")
                    continue
                text = _latex_mark(pcell.text)
                row.append(f"\\textbf{{{text}}}" if pcell.bold else text)
            paper_rows.append(row)
        out += [
            "",
            r"\begin{table}",
            r"\centering",
            f"\\caption{{The paper's published numbers for {name} (Kobs et al., 2020).}}",
            *_latex_tabular(summary, paper_rows),
            r"\end{table}",
        ]
    return "\n".join(out) + "\n"


CSV_COLUMNS = (
    "dataset", "param", "value", "split", "metric", "mean", "std", "n_runs", "best",
    "mark", "test_status", "n_pairs", "n_nonzero", "statistic", "p_value",
    "paper_mean", "paper_mark", "note",
)  # fmt: skip


def _num(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else repr(float(x))


def to_csv(summary: SweepSummary) -> str:
    """The report in long form, one line per ``(value, split, metric)``.

    Values are in the records' units (accuracy-type metrics as fractions, paper
    numbers converted to the same units); ``best`` is 1 for the best mean of its
    split and metric; the test columns are filled on test lines of non-CCE values.

    Args:
        summary: as returned by :func:`summarize_sweep`.

    Returns:
        CSV text with the header :data:`CSV_COLUMNS`.

    Example:
        >>> recs = [
        ...     {"dataset": "toy", "param": "r", "value": v, "run": 0,
        ...      "metrics": {"val": {"mae": 2.0 - v}, "test": {"mae": 2.0}}}
        ...     for v in (0.0, 0.5)
        ... ]
        >>> to_csv(summarize_sweep(recs)).splitlines()[3].split(",")[:9]
        ['toy', 'r', '0.5', 'val', 'mae', '1.5', '', '1', '1']
    """
    paper = summary.paper_cells()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for value in summary.values:
        for split, metric in _columns(summary):
            cell = summary.cells.get((value, split, metric))
            if cell is None:
                continue
            test = summary.tests.get((value, metric)) if split == "test" else None
            pcell = paper.get((value, split, metric))
            paper_mean = None if pcell is None else pcell.mean / _scale(metric)
            writer.writerow([
                summary.dataset, summary.param, format_param_value(value), split, metric,
                _num(cell.mean), _num(cell.std), cell.n,
                int(summary.is_best(value, split, metric)),
                "" if test is None else test.mark,
                "" if test is None else test.status,
                "" if test is None else test.n_pairs,
                "" if test is None else test.n_nonzero,
                "" if test is None else _num(test.statistic),
                "" if test is None else _num(test.p_value),
                _num(paper_mean), "" if pcell is None else pcell.mark,
                "" if test is None else test.reason,
            ])  # fmt: skip
    return out.getvalue()


def _file_mode() -> int:
    """Permissions of a newly created ordinary file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def replace_atomic(tmp: str, path: Path) -> None:
    """Give ``tmp`` ordinary file permissions and move it onto ``path`` atomically."""
    os.chmod(tmp, _file_mode())
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        replace_atomic(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(
    records: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike[str],
    *,
    dataset: str | None = None,
    figures: bool = True,
    expected_values: Sequence[float] | None = None,
    expected_runs: int | None = None,
    figure2_values: Sequence[float] | None = None,
    figure2_class: float | None = None,
) -> Path:
    """Write a sweep's report: Markdown, LaTeX and CSV tables and the figures.

    Files written into ``out_dir`` (created when absent): ``report.md``,
    ``report.tex``, ``report.csv`` and, with ``figures``, ``metrics_vs_<param>``,
    ``figure2`` (from the recorded distributions) and ``similarity`` as PNG and
    PDF. Figures that the records cannot support are skipped with a note in the
    report.

    Args:
        records: run records as returned by ``load_records``.
        out_dir: the output folder, usually ``<sweep>/report``.
        dataset: the dataset the records must belong to (default: theirs).
        figures: whether to draw the figures.
        expected_values: the sweep's grid, to list values with no finished run.
        expected_runs: runs per value of a complete sweep.
        figure2_values: parameter values drawn in Figure 2 (default: CCE and the
            values with the best validation mean of each metric, as in the paper).
        figure2_class: the class value of Figure 2 (b) (default: age 30, or the
            most frequent test class where no class has the value 30).

    Returns:
        The path of ``report.md``.
    """
    summary = summarize_sweep(
        records, dataset=dataset, expected_values=expected_values, expected_runs=expected_runs
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure_names: list[str] = []
    if figures:
        from simloss.experiments.figures import draw_report_figures

        figure_names, figure_notes = draw_report_figures(
            summary, out, figure2_values=figure2_values, figure2_class=figure2_class
        )
        summary.notes.extend(figure_notes)
    md_path = out / "report.md"
    write_text_atomic(out / "report.csv", to_csv(summary))
    write_text_atomic(out / "report.tex", to_latex(summary))
    write_text_atomic(md_path, to_markdown(summary, figures=figure_names))
    return md_path
