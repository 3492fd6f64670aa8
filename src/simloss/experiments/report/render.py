"""The report as text: Markdown and LaTeX from the table model, CSV in long form.

References:
    Kobs et al., "SimLoss: Class Similarities in Cross Entropy", ISMIS 2020,
    https://arxiv.org/abs/2003.03182 (the layout of Tables 1 and 2).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence

from simloss.experiments.points import format_value
from simloss.experiments.report.summary import SPLIT_LABELS, SPLITS, SweepSummary
from simloss.experiments.report.tables import (
    Cell,
    Table,
    column_label,
    decoder_table,
    extra_table,
    mean_table,
    metric_label,
    none_made,
    paper_table,
    paper_values,
    std_table,
    tests_explanation,
    tests_table,
)
from simloss.experiments.specs import metric_spec

__all__ = [
    "CSV_COLUMNS",
    "TABLE_CSV_COLUMNS",
    "markdown_table",
    "table_csv",
    "to_csv",
    "to_latex",
    "to_markdown",
]


# ----------------------------------------------------------------- Markdown
def _md_cell(cell: Cell) -> str:
    text = cell.text + cell.mark
    return f"**{text}**" if cell.bold else text


def markdown_table(table: Table) -> str:
    """A :class:`Table` as a Markdown table (with the runs column when it has one)."""
    header = [table.param] + (["runs"] if table.has_runs else [])
    header += [column_label(s, m) for s, m in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in table.rows:
        cells = [row.label] + ([row.runs or ""] if table.has_runs else [])
        cells += [_md_cell(c) for c in row.cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cce_text(summary: SweepSummary) -> str:
    return f"{summary.param} = {format_value(summary.baseline)}"


def to_markdown(summary: SweepSummary, *, figures: Sequence[str] = ()) -> str:
    """The report as Markdown: means, standard deviations, tests, the paper's numbers.

    Args:
        summary: as returned by :func:`simloss.experiments.report.summarize_sweep`.
        figures: figure file names (relative to the report) to link at the end.

    Returns:
        The Markdown text.

    Example:
        >>> from simloss.experiments.report import summarize_sweep
        >>> recs = [
        ...     {"dataset": "toy", "param": "r", "value": v, "run": 0,
        ...      "metrics": {"val": {"acc": 0.1 + v}, "test": {"acc": 0.1}}}
        ...     for v in (0.0, 0.5)
        ... ]
        >>> md = to_markdown(summarize_sweep(recs))
        >>> "| 0.5 | 1 | **60.00** | 10.00 |" in md
        True
    """
    out = [f"# SimLoss sweep report: {summary.dataset}, parameter {summary.param}", ""]
    out.append(
        f"{len(summary.records)} finished run(s) over {len(summary.values)} value(s) of "
        f"{summary.param}. Accuracy-type metrics in percent. Means over runs; the best "
        f"validation value of each metric in bold; a test value is marked + or - where a "
        f"two-sided Wilcoxon signed-rank test (alpha = {summary.alpha:g}), paired by run index "
        f"against CCE ({_cce_text(summary)}), finds it significantly better or worse."
    )
    for table in (mean_table(summary), std_table(summary)):
        out += ["", f"## {table.title}", "", markdown_table(table)]
    extra = extra_table(summary)
    if extra is not None:
        out += ["", f"## {extra.title}", "", EXTRA_TEXT, "", markdown_table(extra)]
    decoders = decoder_table(summary)
    if decoders is not None:
        out += ["", f"## {decoders.title}", "", DECODERS_TEXT, "", markdown_table(decoders)]

    tests = tests_table(summary)
    out += ["", f"## {tests.title}", ""]
    collapsed = none_made(tests, summary.alpha)
    if collapsed is not None:
        out.append(collapsed)
    elif tests.rows:
        out += [tests_explanation(summary), "", markdown_table(tests)]
    else:
        out.append("No values besides CCE: nothing to test.")

    paper = paper_table(summary)
    if paper is not None:
        out += ["", f"## {paper.title}", ""]
        if paper.rows:
            out.append(markdown_table(paper))
        out += [
            "",
            "Bold and +/- as in the paper (bold: best validation value over the paper's whole grid).",
        ]
        reported = paper_values(summary)
        not_in_paper = [format_value(v) for v in summary.values if v not in reported]
        if not_in_paper:
            out.append(
                f"Values of this sweep the paper does not report: {', '.join(not_in_paper)}."
            )
        out += ["", "## Settings that differ from the paper's", ""]
        if summary.setup:
            out.append(
                "These runs are not the paper's experiment; compare the numbers above with "
                "that in mind:"
            )
            out += ["", *(f"- {line}" for line in summary.setup)]
        else:
            out.append("None: the runs use the paper's settings (Section 4).")

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


#: What the decoders table shows (the same sentence in every report).
EXTRA_TEXT = (
    "Metrics the paper does not report, from the same runs: quadratic weighted kappa "
    "(QWK), the per-class MAE averaged (AMAE) and at its worst (MMAE), the ranked "
    "probability score (RPS), the lowest per-class recall (MS) and the geometric mean of "
    "the per-class recalls (GMS); with a hierarchy, the "
    "mistake severity, the hierarchical distance of the top 5 and hierarchical F (see "
    "docs/metrics.md). Bold and marks as above; runs that do not record a metric (written "
    "before it was recorded) are left out of its cells, and the notes say which."
)

DECODERS_TEXT = (
    "The same runs, MAE and MSE read three ways from the predicted distribution p: the "
    "argmax class (the paper's), the expected value sum_c p_c v_c, and the median (the "
    "smallest class whose cumulative probability reaches 1/2). Means over runs; marks "
    "against CCE as above."
)


# -------------------------------------------------------------------- LaTeX
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


def _latex_cell(cell: Cell) -> str:
    text = cell.text + (f"$^{{{cell.mark}}}$" if cell.mark else "")
    return f"\\textbf{{{text}}}" if cell.bold else text


def latex_tabular(table: Table) -> list[str]:
    """A :class:`Table` as a booktabs ``tabular`` (no runs column), split headers spanning."""
    groups: list[tuple[str, int]] = []
    for split, _ in table.columns:
        if groups and groups[-1][0] == split:
            groups[-1] = (split, groups[-1][1] + 1)
        else:
            groups.append((split, 1))
    lines = [r"\begin{tabular}{l" + "r" * len(table.columns) + "}", r"\toprule"]
    heads = [f"\\multicolumn{{{n}}}{{c}}{{{SPLIT_LABELS.get(split, '')}}}" for split, n in groups]
    lines.append("& " + " & ".join(heads) + " \\\\")
    labels = " & ".join(_latex_escape(metric_label(m)) for _, m in table.columns)
    first = f"${table.param}$" if len(table.param) == 1 else _latex_escape(table.param)
    lines += [f"{first} & {labels} \\\\", r"\midrule"]
    lines += [
        " & ".join([row.label, *(_latex_cell(c) for c in row.cells)]) + r" \\" for row in table.rows
    ]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return lines


def _latex_table(caption: str, table: Table) -> list[str]:
    return [
        r"\begin{table}",
        r"\centering",
        f"\\caption{{{caption}}}",
        *latex_tabular(table),
        r"\end{table}",
    ]


def to_latex(summary: SweepSummary) -> str:
    """The mean and standard-deviation tables (and the paper's) as LaTeX (needs ``booktabs``).

    Args:
        summary: as returned by :func:`simloss.experiments.report.summarize_sweep`.

    Returns:
        LaTeX source with one ``table`` environment per table.

    Example:
        >>> from simloss.experiments.report import summarize_sweep
        >>> recs = [
        ...     {"dataset": "toy", "param": "r", "value": v, "run": 0,
        ...      "metrics": {"val": {"mae": 2.0 - v}, "test": {"mae": 2.0}}}
        ...     for v in (0.0, 0.5)
        ... ]
        >>> r"0.5 & \\textbf{1.50} & 2.00 \\\\" in to_latex(summarize_sweep(recs))
        True
    """
    name = _latex_escape(summary.dataset)
    cce = f"${summary.param} = {format_value(summary.baseline)}$"
    means = (
        f"Validation and test results on {name}, mean over runs. Best validation "
        f"values in bold. Test values marked $^{{+}}$/$^{{-}}$ are significantly better/worse "
        f"than CCE ({cce}; two-sided Wilcoxon signed-rank test, paired by run, "
        f"$\\alpha = {summary.alpha:g}$). Tests that could not be made are listed, with their "
        f"run counts, in report.md and report.csv."
    )
    out = [r"% Generated by simloss report; requires \usepackage{booktabs}."]
    out += _latex_table(means, mean_table(summary))
    out += [""]
    out += _latex_table(f"Standard deviation over runs (ddof = 1) on {name}.", std_table(summary))
    extra = extra_table(summary)
    if extra is not None:
        out += ["", *_latex_table(f"{extra.title} on {name}.", extra)]
    decoders = decoder_table(summary)
    if decoders is not None:
        caption = f"Test MAE and MSE on {name} under each decoder (argmax, expectation, median)."
        out += ["", *_latex_table(caption, decoders)]
    paper = paper_table(summary)
    if paper is not None and paper.rows:
        caption = f"The paper's published numbers for {name} (Kobs et al., 2020)."
        if summary.setup:
            caption += (
                " Our runs differ from the paper's in: "
                + _latex_escape("; ".join(summary.setup))
                + "."
            )
        out += ["", *_latex_table(caption, paper)]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------- CSV
CSV_COLUMNS = (
    "dataset", "param", "value", "split", "metric", "mean", "std", "n_runs", "best",
    "mark", "test_status", "n_pairs", "n_nonzero", "statistic", "p_value", "effect",
    "hodges_lehmann", "null", "paper_mean", "paper_mark", "note",
)  # fmt: skip


def _num(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else repr(float(x))


def to_csv(summary: SweepSummary) -> str:
    """The report in long form, one line per ``(value, split, metric)``.

    Values are in the records' units (accuracy-type metrics as fractions, paper
    numbers converted to the same units); ``best`` is 1 for the best mean of its
    split and metric; the test columns are filled on test lines of non-CCE values.

    Args:
        summary: as returned by :func:`simloss.experiments.report.summarize_sweep`.

    Returns:
        CSV text with the header :data:`CSV_COLUMNS`.

    Example:
        >>> from simloss.experiments.report import summarize_sweep
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
        for split in SPLITS:
            for metric in summary.metrics:
                cell = summary.cells.get((value, split, metric))
                if cell is None:
                    continue
                test = summary.tests.get((value, metric)) if split == "test" else None
                pcell = paper.get((value, split, metric))
                spec = metric_spec(metric)
                scale = 1.0 if spec is None else spec.scale()
                paper_mean = None if pcell is None else pcell.mean / scale
                writer.writerow([
                    summary.dataset, summary.param, format_value(value), split, metric,
                    _num(cell.mean), _num(cell.std), cell.n,
                    int(summary.is_best(value, split, metric)),
                    "" if test is None else test.mark,
                    "" if test is None else test.status,
                    "" if test is None else test.n_pairs,
                    "" if test is None else test.n_nonzero,
                    "" if test is None else _num(test.statistic),
                    "" if test is None else _num(test.p_value),
                    "" if test is None else _num(test.effect),
                    "" if test is None else _num(test.hodges_lehmann),
                    "" if test is None or test.method is None else test.method,
                    _num(paper_mean), "" if pcell is None else pcell.mark,
                    "" if test is None else test.reason,
                ])  # fmt: skip
    return out.getvalue()


#: The columns of :func:`table_csv`.
TABLE_CSV_COLUMNS = (
    "table",
    "param",
    "row",
    "runs",
    "split",
    "column",
    "value",
    "text",
    "mark",
    "bold",
)


def table_csv(tables: Sequence[Table]) -> str:
    """Tables of the table model in long form: one CSV line per cell.

    ``value`` is the cell's number in the records' units (empty where the cell
    has none), ``text`` what the Markdown table shows; ``split`` is empty for a
    column that is no split's metric.

    Example:
        >>> from simloss.experiments.report.tables import Row
        >>> cells = (Cell("15.00", "+", True, 0.15),)
        >>> t = Table("T", "r", (("val", "acc"),), (Row("0.3", "2", cells),))
        >>> table_csv([t]).splitlines()[1]
        'T,r,0.3,2,val,acc,0.15,15.00,+,1'
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TABLE_CSV_COLUMNS)
    for table in tables:
        for row in table.rows:
            for (split, column), cell in zip(table.columns, row.cells, strict=True):
                writer.writerow([
                    table.title, table.param, row.label, row.runs or "", split, column,
                    _num(cell.value), cell.text, cell.mark, int(cell.bold),
                ])  # fmt: skip
    return out.getvalue()
