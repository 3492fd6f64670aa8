"""A tune's result as tables of the report's table model (:mod:`simloss.experiments.report.tables`).

Rendered to Markdown and CSV by :mod:`simloss.experiments.report.render`, as
the report's tables are. Numbers are formatted here: accuracy-type metrics in
percent, ``mean ± standard error (sd)`` for a value confirmed with several runs.
"""

from __future__ import annotations

import math

from simloss.experiments.points import format_value, value_key
from simloss.experiments.report.summary import SPLITS
from simloss.experiments.report.tables import Cell, Row, Table
from simloss.experiments.specs import METRIC_ORDER, metric_spec
from simloss.experiments.tune.plan import PHASES
from simloss.experiments.tune.result import TuneResult

__all__ = [
    "best_table",
    "compute_table",
    "confirmed_table",
    "search_table",
    "tests_table",
    "tune_tables",
]

_PHASE_LABELS = {"cce": "CCE", "search": "search", "confirm": "confirmation"}


def _scale(metric: str) -> float:
    spec = metric_spec(metric)
    return 1.0 if spec is None else spec.scale()


def _metrics(result: TuneResult) -> tuple[str, ...]:
    recorded = {m for r in result.records for m in r.get("metrics", {}).get("val", {})}
    spec_metrics = [m for m in METRIC_ORDER if m in recorded]
    return (
        *result.settings.metrics,
        *(m for m in spec_metrics if m not in result.settings.metrics),
    )


def _columns(result: TuneResult) -> tuple[tuple[str, str], ...]:
    return tuple((split, metric) for split in SPLITS for metric in _metrics(result))


def _stat_cell(result: TuneResult, value: float, split: str, metric: str, bold: bool) -> Cell:
    cell = result.stats(value, split, metric)
    if cell is None:
        return Cell("-")
    scale = _scale(metric)
    se = cell.std / math.sqrt(cell.n) if cell.n > 1 else math.nan
    text = f"{cell.mean * scale:.3f} ± {se * scale:.3f} ({cell.std * scale:.3f})"
    test = result.versus_cce(value, metric) if split == "test" else None
    return Cell(text, "" if test is None else test.mark, bold, cell.mean)


def _value_rows(result: TuneResult, values: tuple[float, ...]) -> tuple[Row, ...]:
    cce = value_key(result.settings.cce_value)
    rows = []
    for value in values:
        chosen = value in result.best
        cells = tuple(
            _stat_cell(
                result, value, split, metric,
                bold=chosen and split == "val" and metric in result.settings.metrics,
            )
            for split, metric in _columns(result)
        )  # fmt: skip
        label = format_value(value) + (" (CCE)" if value == cce else "")
        runs = result.stats(value, "val", result.settings.metrics[0])
        rows.append(Row(label, str(runs.n if runs else 0), cells))
    return tuple(rows)


def best_table(result: TuneResult) -> Table:
    """The chosen value(s) and CCE: mean ± standard error (sd) over runs, marks against CCE."""
    cce = value_key(result.settings.cce_value)
    values = tuple(dict.fromkeys((*result.best, cce)))
    title = "Chosen value" if not result.settings.multi else "Chosen values (the Pareto front)"
    return Table(title, result.settings.param, _columns(result), _value_rows(result, values))


def confirmed_table(result: TuneResult) -> Table:
    """Every confirmed value (CCE and the candidates), as :func:`best_table`, with the front."""
    columns = _columns(result)
    rows = _value_rows(result, result.confirmed)
    if result.settings.multi:
        columns = (*columns, ("", "on front"))
        rows = tuple(
            Row(row.label, row.runs, (*row.cells, Cell("yes" if v in result.best else "")))
            for row, v in zip(rows, result.confirmed, strict=True)
        )
    return Table("Confirmed values", result.settings.param, columns, rows)


def search_table(result: TuneResult) -> Table:
    """CCE's run 0 and every search trial: state, epochs, objective values."""
    s = result.settings
    columns: tuple[tuple[str, str], ...] = (("", "trial"), ("", "phase"), ("", "state"))
    columns += (("", "epochs"), *(("val", m) for m in s.metrics))
    front = set(result.search_front()) if s.multi else set()
    if s.multi:
        columns += (("", "on search front"),)
    rows = []
    for t in result.trials:
        if t.phase == "confirm" or (t.phase == "cce" and t.run != 0):
            continue
        state = t.state if t.duplicate_of is None else f"repeats trial {t.duplicate_of}"
        cells = [
            Cell(str(t.number)),
            Cell(t.phase),
            Cell(state),
            Cell(str(t.epochs), value=t.epochs),
        ]
        for metric in s.metrics:
            shown = (t.val or {}).get(metric)
            if not isinstance(shown, (int, float)):
                cells.append(Cell("-"))
            else:
                note = " (when pruned)" if t.state == "pruned" else ""
                cells.append(Cell(f"{shown * _scale(metric):.3f}{note}", value=shown))
        if s.multi:
            cells.append(Cell("yes" if t.number in front else ""))
        label = format_value(t.value) if math.isfinite(t.value) else "?"
        rows.append(Row(label, None, tuple(cells)))
    return Table("Search (run 0 of every value)", s.param, columns, tuple(rows))


def compute_table(result: TuneResult) -> Table:
    """Trials, pruned trials, epochs and training time per phase and in all."""
    columns = (
        ("", "trials"),
        ("", "pruned"),
        ("", "failed"),
        ("", "epochs"),
        ("", "training time (s)"),
    )
    rows = []
    for phase in (*PHASES, None):
        cells = (
            Cell(str(result.count(phase)), value=result.count(phase)),
            Cell(str(result.count(phase, "pruned")), value=result.count(phase, "pruned")),
            Cell(str(result.count(phase, "failed")), value=result.count(phase, "failed")),
            Cell(str(result.epochs(phase)), value=result.epochs(phase)),
            Cell(f"{result.seconds(phase):.1f}", value=result.seconds(phase)),
        )
        label = "total" if phase is None else _PHASE_LABELS[phase]
        rows.append(Row(label, None, cells))
    return Table("Compute", "phase", columns, tuple(rows))


def tests_table(result: TuneResult) -> Table:
    """The report's Wilcoxon test of each chosen value against CCE, per objective (test split)."""
    columns = tuple(("test", m) for m in result.settings.metrics)
    rows = []
    cce = value_key(result.settings.cce_value)
    for value in result.best:
        if value == cce:
            continue
        cells = []
        for metric in result.settings.metrics:
            test = result.versus_cce(value, metric)
            text = "no test values" if test is None else f"{test.mark} {test.reason}".strip()
            cells.append(Cell(text))
        rows.append(Row(format_value(value), None, tuple(cells)))
    title = "Against CCE (two-sided Wilcoxon signed-rank test, paired by run, test split)"
    return Table(title, result.settings.param, columns, tuple(rows))


def tune_tables(result: TuneResult) -> list[Table]:
    """Every table of a tune's result, in the order of ``tune.md``."""
    return [
        best_table(result),
        tests_table(result),
        confirmed_table(result),
        search_table(result),
        compute_table(result),
    ]
