"""The report's tables as one model, rendered to Markdown and LaTeX by :mod:`.render`.

A :class:`Table` is a list of rows, one per value of the swept parameter, each
with a :class:`Cell` per (split, metric) column. Numbers are formatted once,
here (percent for accuracy-type metrics, two decimals); bold and the
significance mark are properties of the cell, which each format draws its own
way (``**15.30+**`` in Markdown, ``\\textbf{15.30$^{+}$}`` in LaTeX).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simloss.experiments.points import format_value, value_key
from simloss.experiments.report.stats import min_pairs_for_significance
from simloss.experiments.report.summary import SPLIT_LABELS, SPLITS, SweepSummary
from simloss.experiments.specs import metric_spec
from simloss.experiments.task import BUILTIN_TASKS

__all__ = [
    "Cell",
    "Row",
    "Table",
    "column_label",
    "decoded_metrics",
    "decoder_table",
    "extra_metrics",
    "extra_table",
    "main_metrics",
    "mean_table",
    "metric_label",
    "paper_table",
    "std_table",
    "tests_table",
]


@dataclass(frozen=True)
class Cell:
    """One cell: its text, the significance mark (``"+"``, ``"-"``, ``""``) and bold.

    ``value`` is the number behind the text in the records' units (a fraction
    where the text shows percent), for CSV (:func:`~.render.table_csv`); ``None``
    where the text is all there is.
    """

    text: str
    mark: str = ""
    bold: bool = False
    value: float | None = None


@dataclass(frozen=True)
class Row:
    """One row: the parameter value as shown, the runs it holds (``None``: not shown), cells."""

    label: str
    runs: str | None
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Table:
    """A table of the report.

    Attributes:
        title: its heading (Markdown) / caption (LaTeX).
        param: the swept parameter (first column).
        columns: ``(split, metric)`` per cell column; ``split`` is ``""`` for a
            table over metrics alone (the significance tests).
        rows: the rows.
    """

    title: str
    param: str
    columns: tuple[tuple[str, str], ...]
    rows: tuple[Row, ...]

    @property
    def has_runs(self) -> bool:
        """Whether the table has a runs column."""
        return any(row.runs is not None for row in self.rows)


def metric_label(metric: str) -> str:
    """A metric's column header: ``"Acc (%)"``, ``"MAE"``; an unknown metric by its key."""
    spec = metric_spec(metric)
    return metric if spec is None else spec.header()


def _short(metric: str) -> str:
    spec = metric_spec(metric)
    return metric if spec is None else spec.label


def column_label(split: str, metric: str) -> str:
    """A column's header: ``"Validation Acc (%)"``."""
    return f"{SPLIT_LABELS[split]} {metric_label(metric)}" if split else metric_label(metric)


def _scale(metric: str) -> float:
    spec = metric_spec(metric)
    return 1.0 if spec is None else spec.scale()


def _number(value: float, metric: str) -> str:
    return "n/a" if math.isnan(value) else f"{value * _scale(metric):.2f}"


def _decoder(metric: str) -> str:
    from simloss.metrics import metric_facts

    try:
        return metric_facts(metric).decoder
    except KeyError:
        return "argmax"


def _is_papers_or_unknown(metric: str) -> bool:
    from simloss.experiments.specs import METRIC_ORDER

    return metric in METRIC_ORDER or metric_spec(metric) is None


def main_metrics(metrics: list[str] | tuple[str, ...]) -> list[str]:
    """The metrics of the main tables: the paper's (argmax) ones, and any simloss does not know.

    Other decoders have their own table, and so do the metrics beyond the paper's
    (:func:`extra_metrics`).

    Example:
        >>> main_metrics(["acc", "mae", "mae_expectation", "mse", "qwk", "f1"])
        ['acc', 'mae', 'mse', 'f1']
    """
    return [m for m in metrics if _decoder(m) == "argmax" and _is_papers_or_unknown(m)]


def extra_metrics(metrics: list[str] | tuple[str, ...]) -> list[str]:
    """The metrics beyond the paper's (QWK, AMAE, MMAE, RPS, MS, GMS; hierarchical ones), argmax,
    in the order runs record them.

    Example:
        >>> extra_metrics(["acc", "rps", "mae", "qwk", "amae", "qwk_min_risk"])
        ['qwk', 'amae', 'rps']
    """
    from simloss.metrics import declarations, metric_facts

    order = {id(d): k for k, d in enumerate(declarations())}
    chosen = [m for m in metrics if _decoder(m) == "argmax" and not _is_papers_or_unknown(m)]
    return sorted(chosen, key=lambda m: (order.get(id(metric_facts(m).metric), len(order)), m))


def decoded_metrics(metrics: list[str] | tuple[str, ...]) -> list[str]:
    """MAE/MSE under every decoder side by side (empty when only the argmax was recorded).

    Example:
        >>> decoded_metrics(["acc", "mae", "mse", "mse_median", "mae_median"])
        ['mae', 'mae_median', 'mse', 'mse_median']
    """
    if all(_decoder(m) == "argmax" for m in metrics):
        return []
    from simloss.metrics import DECODERS, decoded_key

    return [
        decoded_key(base, decoder)
        for base in ("mae", "mse")
        for decoder in DECODERS
        if decoded_key(base, decoder) in metrics
    ]


def _columns(summary: SweepSummary) -> tuple[tuple[str, str], ...]:
    metrics = main_metrics(summary.metrics)
    return tuple((split, metric) for split in SPLITS for metric in metrics)


def _runs_text(summary: SweepSummary, value: float, columns: tuple[tuple[str, str], ...]) -> str:
    """The runs behind a table's row: only the cells of its columns (a range where they differ).

    Records written before a metric existed lack it (e.g. the decoders' MAE in
    an older run of a resumed sweep), so each table counts its own metrics.
    """
    counts = {cell.n for key in columns if (cell := summary.cells.get((value, *key))) is not None}
    if not counts:
        return "0"
    low, high = min(counts), max(counts)
    return str(low) if low == high else f"{low}-{high}"


def mean_table(summary: SweepSummary) -> Table:
    """Means over runs; the best validation mean of each metric bold; test values marked."""
    return _means(summary, _columns(summary), "Mean over runs")


def extra_table(summary: SweepSummary) -> Table | None:
    """The metrics beyond the paper's, as :func:`mean_table` (``None``: none recorded)."""
    metrics = extra_metrics(summary.metrics)
    if not metrics:
        return None
    columns = tuple((split, metric) for split in SPLITS for metric in metrics)
    title = "More metrics: " + ", ".join(_short(m) for m in metrics) + " (mean over runs)"
    return _means(summary, columns, title)


def _means(summary: SweepSummary, columns: tuple[tuple[str, str], ...], title: str) -> Table:
    rows = []
    for value in summary.values:
        cells = []
        for split, metric in columns:
            cell = summary.cells.get((value, split, metric))
            if cell is None:
                cells.append(Cell("-"))
                continue
            test = summary.tests.get((value, metric)) if split == "test" else None
            bold = split == "val" and summary.is_best(value, split, metric)
            cells.append(Cell(_number(cell.mean, metric), "" if test is None else test.mark, bold))
        rows.append(Row(format_value(value), _runs_text(summary, value, columns), tuple(cells)))
    return Table(title, summary.param, columns, tuple(rows))


def std_table(summary: SweepSummary) -> Table:
    """Sample standard deviations over runs (``ddof = 1``; ``n/a`` for one run)."""
    columns = _columns(summary)
    rows = []
    for value in summary.values:
        cells = []
        for split, metric in columns:
            cell = summary.cells.get((value, split, metric))
            cells.append(Cell("-" if cell is None else _number(cell.std, metric)))
        rows.append(Row(format_value(value), _runs_text(summary, value, columns), tuple(cells)))
    title = "Standard deviation over runs (ddof = 1)"
    return Table(title, summary.param, columns, tuple(rows))


def decoder_table(summary: SweepSummary) -> Table | None:
    """Test MAE and MSE under each decoder, side by side (``None``: only the argmax recorded)."""
    metrics = decoded_metrics(summary.metrics)
    if not metrics:
        return None
    columns = tuple(("test", m) for m in metrics)
    rows = []
    for value in summary.values:
        cells = []
        for _, metric in columns:
            cell = summary.cells.get((value, "test", metric))
            test = summary.tests.get((value, metric))
            if cell is None:
                cells.append(Cell("-"))
                continue
            cells.append(Cell(_number(cell.mean, metric), "" if test is None else test.mark))
        rows.append(Row(format_value(value), _runs_text(summary, value, columns), tuple(cells)))
    title = "Decoders: test MAE and MSE of the argmax, the expected value and the median"
    return Table(title, summary.param, columns, tuple(rows))


def tests_table(summary: SweepSummary) -> Table:
    """The significance tests of the test split against CCE: mark and reason per cell."""
    metrics = (
        main_metrics(summary.metrics)
        + extra_metrics(summary.metrics)
        + [m for m in decoded_metrics(summary.metrics) if _decoder(m) != "argmax"]
    )
    columns = tuple(("", metric) for metric in metrics)
    rows = []
    for value in summary.values:
        if value == summary.baseline:
            continue
        cells = []
        for metric in metrics:
            test = summary.tests.get((value, metric))
            text = "no test values" if test is None else f"{test.mark} {test.reason}".strip()
            cells.append(Cell(text))
        rows.append(Row(format_value(value), None, tuple(cells)))
    title = "Significance tests (test split, against CCE)"
    return Table(title, summary.param, columns, tuple(rows))


def none_made(tests: Table, alpha: float) -> str | None:
    """One sentence for a table of significance tests none of which was made for too few runs.

    A table whose every cell says "not made: too few runs" tells nothing cell by
    cell; the sentence says it once. ``None`` when any test was made (or not
    made for another reason), so the table is shown.

    Example:
        >>> t = Table("t", "r", (("", "mae"),), (Row("0.3", None, (Cell("not made: too few runs (2 non-zero of 2 pairs; ...)"),)),))
        >>> none_made(t, 0.05)
        'No test against CCE was made: every row has fewer runs than a two-sided Wilcoxon test needs to reach p < 0.05 (at least 6 non-zero paired differences).'
    """
    cells = [cell.text for row in tests.rows for cell in row.cells]
    if not cells or not all(text.startswith("not made: too few runs") for text in cells):
        return None
    return (
        "No test against CCE was made: every row has fewer runs than a two-sided Wilcoxon "
        f"test needs to reach p < {alpha:g} (at least {min_pairs_for_significance(alpha)} "
        "non-zero paired differences)."
    )


def tests_explanation(summary: SweepSummary) -> str:
    """What a cell of :func:`tests_table` says."""
    return (
        f"Each cell: the mark, the p-value and the runs entering the test (non-zero paired "
        f"differences of the runs both rows have). A two-sided test needs at least "
        f"{min_pairs_for_significance(summary.alpha)} non-zero differences to reach "
        f"p < {summary.alpha:g}; with fewer it is not made."
    )


def paper_table(summary: SweepSummary) -> Table | None:
    """The paper's published numbers for the values of this sweep (``None``: the paper has none).

    Rows in the paper's order (by distance from CCE); the paper's own bold and
    marks; ``-`` where the paper has no number for a column.
    """
    paper = summary.paper_cells()
    if not paper:
        return None
    values = sorted(
        {value_key(v) for v, _, _ in paper}, key=lambda v: (abs(v - summary.baseline), v)
    )
    rows = []
    for value in (v for v in values if v in summary.runs):
        cells = []
        for split, metric in _columns(summary):
            pcell = paper.get((value, split, metric))
            cells.append(
                Cell("-") if pcell is None else Cell(f"{pcell.mean:.2f}", pcell.mark, pcell.bold)
            )
        rows.append(Row(format_value(value), None, tuple(cells)))
    spec = BUILTIN_TASKS.get(summary.dataset.lower())
    number = spec.paper_table if spec is not None else None
    title = f"The paper's numbers (Table {number}, {summary.dataset}, 10 runs each)"
    return Table(title, summary.param, _columns(summary), tuple(rows))


def paper_values(summary: SweepSummary) -> list[float]:
    """The values of ``param`` the paper reports for this dataset."""
    return sorted({value_key(v) for v, _, _ in summary.paper_cells()})
