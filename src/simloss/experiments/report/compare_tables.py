"""The report of a study of several losses as tables: Markdown, LaTeX and CSV.

Built on the one table model of :mod:`.tables` and drawn by :mod:`.render`'s
Markdown and LaTeX writers, so a cell's bold and significance mark look the
same as in the paper's tables.
"""

from __future__ import annotations

import csv
import io
import math

from simloss.experiments.points import format_value
from simloss.experiments.report.compare import LossComparison, LossRow
from simloss.experiments.report.render import (
    DECODERS_TEXT,
    EXTRA_TEXT,
    _latex_escape,
    _latex_table,
    _num,
    markdown_table,
)
from simloss.experiments.report.stats import min_pairs_for_significance
from simloss.experiments.report.summary import SPLITS
from simloss.experiments.report.tables import (
    Cell,
    Row,
    Table,
    _number,
    decoded_metrics,
    extra_metrics,
    main_metrics,
    metric_label,
    none_made,
)

__all__ = [
    "COMPARISON_CSV_COLUMNS",
    "best_table",
    "comparison_csv",
    "comparison_latex",
    "comparison_markdown",
    "decoders_table",
    "extra_best_table",
    "grid_table",
]


def _spread(row: LossRow, split: str, metric: str) -> str:
    cell = row.cells.get((split, metric))
    if cell is None:
        return "-"
    std = "n/a" if math.isnan(cell.std) else _number(cell.std, metric)
    return f"{_number(cell.mean, metric)} ± {std}"


def _runs(row: LossRow) -> str:
    return str(len(row.runs))


def _cell(
    comparison: LossComparison,
    row: LossRow,
    split: str,
    metric: str,
    *,
    spread: bool,
    among: list[LossRow],
) -> Cell:
    """A cell: mean (± std with ``spread``), bold when best among ``among``, marked vs CCE."""
    cell = row.cells.get((split, metric))
    if cell is None:
        return Cell("-")
    text = _spread(row, split, metric) if spread else _number(cell.mean, metric)
    test = row.tests.get(metric) if split == "test" else None
    bold = row.key in comparison.best_of(split, metric, among)
    return Cell(text, "" if test is None else test.mark, bold)


def verdict_lines(comparison: LossComparison) -> list[str]:
    """Which loss (at which value of its parameter) did best on each test metric, and its test.

    One line per main metric of known direction: the row of
    :attr:`LossComparison.best` (each loss at its best validation value)
    with the best mean test value, and what the Wilcoxon test against CCE
    says of it. A question of one study, answered from its tables.

    Example:
        >>> from simloss.experiments.report.compare import compare_losses
        >>> recs = [{"dataset": "toy", "loss": loss, "param": None, "value": None, "run": i,
        ...          "monitor": "acc", "metrics": {"val": {"acc": 0.5}, "test": {"acc": a + 0.01 * i}}}
        ...         for loss, a in (("ce", 0.1), ("corn", 0.2)) for i in range(6)]
        >>> verdict_lines(compare_losses(recs))[0]  # doctest: +ELLIPSIS
        '- Test Acc (%): **CORN** 22.50 (CE 12.50; significantly better than CE, p = 0.03...)'
    """
    lines = []
    for metric in main_metrics(comparison.metrics):
        higher = _higher_is_better(metric)
        rows = [r for r in comparison.best if ("test", metric) in r.cells]
        if higher is None or not rows:
            continue
        pick = max if higher else min
        winner = pick(rows, key=lambda r: r.cells[("test", metric)].mean)
        value = _number(winner.cells[("test", metric)].mean, metric)
        base = comparison.baseline
        parts = []
        if base is not None and base is not winner and ("test", metric) in base.cells:
            parts.append(f"{base.label} {_number(base.cells[('test', metric)].mean, metric)}")
        test = winner.tests.get(metric)
        if winner.is_baseline:
            parts.append("the CCE row itself")
        elif test is not None and test.made and test.p_value is not None:
            word = {"+": "significantly better than", "-": "significantly worse than"}.get(
                test.mark, "not significantly different from"
            )
            effect = "" if test.effect is None else f", rank-biserial r_rb = {test.effect:+.2f}"
            parts.append(f"{word} CE, p = {test.p_value:.3g}, {test.method}{effect}")
        elif test is not None:
            parts.append(f"no test against CE: {test.reason}")
        detail = f" ({'; '.join(parts)})" if parts else ""
        lines.append(f"- Test {metric_label(metric)}: **{winner.label}** {value}{detail}")
    return lines


def _higher_is_better(metric: str) -> bool | None:
    from simloss.experiments.specs import metric_spec

    spec = metric_spec(metric)
    return None if spec is None else spec.higher_is_better


def best_table(comparison: LossComparison) -> Table:
    """CCE and each loss at its best validation value: mean ± std, bold best, marks vs CCE."""
    metrics = main_metrics(comparison.metrics)
    columns = tuple((split, m) for split in SPLITS for m in metrics)
    rows = tuple(
        Row(
            r.label,
            _runs(r),
            tuple(
                _cell(comparison, r, s, m, spread=True, among=comparison.best) for s, m in columns
            ),
        )
        for r in comparison.best
    )
    title = "Each loss at its best validation parameter (mean ± std over runs)"
    return Table(title, "loss", columns, rows)


def decoders_table(comparison: LossComparison) -> Table | None:
    """Test MAE and MSE of each loss at its best value under every decoder (``None``: argmax only)."""
    metrics = decoded_metrics(comparison.metrics)
    if not metrics:
        return None
    columns = tuple(("test", m) for m in metrics)
    rows = tuple(
        Row(
            r.label,
            _runs(r),
            tuple(
                _cell(comparison, r, s, m, spread=True, among=comparison.best) for s, m in columns
            ),
        )
        for r in comparison.best
    )
    title = "Decoders at the best parameter: test MAE and MSE (mean ± std)"
    return Table(title, "loss", columns, rows)


def extra_best_table(comparison: LossComparison) -> Table | None:
    """The metrics beyond the paper's (QWK, AMAE, RPS, ...) of each loss at its best value
    (``None``: none recorded)."""
    metrics = extra_metrics(comparison.metrics)
    if not metrics:
        return None
    columns = tuple(("test", m) for m in metrics)
    rows = tuple(
        Row(
            r.label,
            _runs(r),
            tuple(
                _cell(comparison, r, s, m, spread=True, among=comparison.best) for s, m in columns
            ),
        )
        for r in comparison.best
    )
    title = "More metrics at the best parameter: test " + ", ".join(
        metric_label(m).removesuffix(" (%)") for m in metrics
    )
    return Table(title, "loss", columns, rows)


def grid_table(comparison: LossComparison) -> Table:
    """Every loss at every value of its parameter: means, marks against CCE."""
    metrics = main_metrics(comparison.metrics)
    columns = tuple((split, m) for split in SPLITS for m in metrics)
    rows = tuple(
        Row(
            r.label,
            _runs(r),
            tuple(
                _cell(comparison, r, s, m, spread=False, among=comparison.rows) for s, m in columns
            ),
        )
        for r in comparison.rows
    )
    title = "Every loss and parameter value (means over runs; bold: best of the column)"
    return Table(title, "loss", columns, rows)


def _tests_table(comparison: LossComparison) -> Table:
    main = main_metrics(comparison.metrics) + extra_metrics(comparison.metrics)
    metrics = main + [m for m in decoded_metrics(comparison.metrics) if m not in main]
    columns = tuple(("", m) for m in metrics)
    rows = []
    for row in comparison.best:
        if row.is_baseline:
            continue
        cells = []
        for metric in metrics:
            test = row.tests.get(metric)
            text = "no test values" if test is None else f"{test.mark} {test.reason}".strip()
            cells.append(Cell(text))
        rows.append(Row(row.label, None, tuple(cells)))
    return Table("Significance tests (test split, against CCE)", "loss", columns, tuple(rows))


def _intro(comparison: LossComparison) -> str:
    base = comparison.baseline.label if comparison.baseline is not None else "none"
    return (
        f"{len(comparison.records)} finished run(s) of {len(comparison.rows)} loss/value "
        f"row(s) on {comparison.dataset}: the same model, data, splits and seeds, only the "
        f"loss differs. Each loss is shown at the value of its parameter with the best mean "
        f"validation {metric_label(comparison.monitor)} (the metric early stopping watched). "
        f"Accuracy-type metrics in percent; the best mean of each column in bold; a test "
        f"value is marked + or - where a two-sided Wilcoxon signed-rank test (alpha = "
        f"{comparison.alpha:g}), paired by run index against CCE ({base}), finds it "
        f"significantly better or worse."
    )


def comparison_markdown(comparison: LossComparison, *, figures: list[str] | None = None) -> str:
    """The report of a study of several losses as Markdown.

    Example:
        >>> from simloss.experiments.report.compare import compare_losses
        >>> recs = [{"dataset": "toy", "loss": loss, "param": None, "value": None, "run": i,
        ...          "monitor": "acc", "metrics": {"val": {"acc": 0.5}, "test": {"acc": a + 0.01 * i}}}
        ...         for loss, a in (("ce", 0.1), ("corn", 0.2)) for i in range(6)]
        >>> md = comparison_markdown(compare_losses(recs))
        >>> "| CORN | 6 | **50.00 ± 0.00** | **22.50 ± 1.87+** |" in md
        True
    """
    out = [f"# Loss comparison: {comparison.dataset}", "", _intro(comparison)]
    verdict = verdict_lines(comparison)
    if verdict:
        out += ["", "## Verdict", "", *verdict]
    out += ["", f"## {best_table(comparison).title}", "", markdown_table(best_table(comparison))]
    extra = extra_best_table(comparison)
    if extra is not None:
        out += ["", f"## {extra.title}", "", EXTRA_TEXT, "", markdown_table(extra)]
    decoders = decoders_table(comparison)
    if decoders is not None:
        out += ["", f"## {decoders.title}", "", DECODERS_TEXT, "", markdown_table(decoders)]
    tests = _tests_table(comparison)
    out += ["", f"## {tests.title}", ""]
    collapsed = none_made(tests, comparison.alpha)
    if collapsed is not None:
        out.append(collapsed)
    elif tests.rows:
        out += [
            "Each cell: the mark, the p-value and the runs entering the test. A two-sided test "
            f"needs at least {min_pairs_for_significance(comparison.alpha)} non-zero paired "
            f"differences to reach p < {comparison.alpha:g}.",
            "",
            markdown_table(tests),
        ]
    else:
        out.append("No loss besides CCE: nothing to test.")
    grid = grid_table(comparison)
    out += ["", f"## {grid.title}", "", markdown_table(grid)]
    if comparison.missing:
        out += ["", "## Missing (partial sweep)", "", *(f"- {m}" for m in comparison.missing)]
    if comparison.notes:
        out += ["", "## Notes", "", *(f"- {n}" for n in comparison.notes)]
    if figures:
        out += ["", "## Figures", "", *(f"![{n}]({n})" for n in figures)]
    return "\n".join(out) + "\n"


def comparison_latex(comparison: LossComparison) -> str:
    """The best-parameter and decoder tables as LaTeX (needs ``booktabs``)."""
    name = _latex_escape(comparison.dataset)
    caption = (
        f"Each loss at its best validation parameter on {name}: mean $\\pm$ standard deviation "
        f"over runs. Best values in bold. Test values marked $^{{+}}$/$^{{-}}$ are "
        f"significantly better/worse than CCE (two-sided Wilcoxon signed-rank test, paired "
        f"by run, $\\alpha = {comparison.alpha:g}$)."
    )
    out = [r"% Generated by simloss report; requires \usepackage{booktabs}."]
    out += _latex_table(caption, _latex_ready(best_table(comparison)))
    decoders = decoders_table(comparison)
    if decoders is not None:
        caption = f"Test MAE and MSE on {name} under each decoder (argmax, expectation, median)."
        out += ["", *_latex_table(caption, _latex_ready(decoders))]
    return "\n".join(out) + "\n"


def _latex_ready(table: Table) -> Table:
    rows = tuple(
        Row(
            _latex_escape(r.label),
            r.runs,
            tuple(Cell(c.text.replace("±", "$\\pm$"), c.mark, c.bold) for c in r.cells),
        )
        for r in table.rows
    )
    return Table(table.title, table.param, table.columns, rows)


COMPARISON_CSV_COLUMNS = (
    "dataset", "loss", "param", "value", "split", "metric", "mean", "std", "n_runs",
    "chosen", "mark", "test_status", "n_pairs", "n_nonzero", "statistic", "p_value", "effect",
    "hodges_lehmann", "null", "note",
)  # fmt: skip


def comparison_csv(comparison: LossComparison) -> str:
    """Every row in long form, one line per ``(loss, value, split, metric)``; ``chosen`` marks
    the best validation value of each loss (and CCE)."""
    chosen = {r.key for r in comparison.best}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COMPARISON_CSV_COLUMNS)
    for row in comparison.rows:
        for split in SPLITS:
            for metric in comparison.metrics:
                cell = row.cells.get((split, metric))
                if cell is None:
                    continue
                test = row.tests.get(metric) if split == "test" else None
                writer.writerow([
                    comparison.dataset, row.loss, row.param or "",
                    "" if row.value is None else format_value(row.value), split, metric,
                    _num(cell.mean), _num(cell.std), cell.n, int(row.key in chosen),
                    "" if test is None else test.mark,
                    "" if test is None else test.status,
                    "" if test is None else test.n_pairs,
                    "" if test is None else test.n_nonzero,
                    "" if test is None else _num(test.statistic),
                    "" if test is None else _num(test.p_value),
                    "" if test is None else _num(test.effect),
                    "" if test is None else _num(test.hodges_lehmann),
                    "" if test is None or test.method is None else test.method,
                    "" if test is None else test.reason,
                ])  # fmt: skip
    return out.getvalue()
