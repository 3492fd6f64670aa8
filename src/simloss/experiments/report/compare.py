"""The statistics of a study of several losses: each loss at its best validation parameter.

A study may hold the runs of several losses (``simloss sweep --loss ...`` into
one folder): the same model, data, splits, seeds and training, only the loss
and its parameter differ. :func:`compare_losses` groups the records by
``(loss, value)``, picks for every loss the value with the best mean
validation monitor (the metric early stopping watched; the sweep's
objective), and tests every row against CCE with the same two-sided Wilcoxon
signed-rank test, paired by run index, as the paper's tables
(:mod:`simloss.experiments.report.stats`).

CCE is the ``ce`` loss when the study has it, else SimLoss at its CCE value
(``r = 0``, ``l = 0.99``: exactly cross-entropy).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simloss.experiments.loss_catalog import DEFAULT_LOSS, stored_loss
from simloss.experiments.points import point_label, value_key
from simloss.experiments.report.stats import WilcoxonResult, wilcoxon_against_baseline
from simloss.experiments.report.summary import SPLITS, CellStats
from simloss.experiments.specs import LOSS, LOSSES, METRIC_ORDER, PARAMS, metric_spec
from simloss.metrics import metric_goal

__all__ = ["ExpectedPoint", "LossComparison", "LossRow", "compare_losses", "record_loss"]

RowKey = tuple[str, float | None]
#: One point of a study's grids: loss, its parameter, the value (``None`` without one), run.
ExpectedPoint = tuple[str, str | None, float | None, int]


def record_loss(record: Mapping[str, Any]) -> str:
    """The loss of a record (:func:`~simloss.experiments.loss_catalog.stored_loss`)."""
    return stored_loss(record.get("loss"))


@dataclass(frozen=True)
class LossRow:
    """One loss at one value of its parameter, over its runs.

    Attributes:
        loss: the loss.
        param: its parameter (``None`` without one).
        value: the value (``None`` without a parameter).
        cells: :class:`~simloss.experiments.report.summary.CellStats` per ``(split, metric)``.
        tests: the test split's Wilcoxon result against CCE per metric (empty for CCE).
        runs: the run indices.
        is_baseline: whether this row is CCE.
    """

    loss: str
    param: str | None
    value: float | None
    cells: dict[tuple[str, str], CellStats]
    tests: dict[str, WilcoxonResult]
    runs: list[int]
    is_baseline: bool = False

    @property
    def key(self) -> RowKey:
        """``(loss, value)``."""
        return (self.loss, self.value)

    @property
    def label(self) -> str:
        """``"CE"``, ``"SimLoss r=0.3"``, ``"SORD alpha=2.0"``."""
        title = LOSSES[self.loss].title if self.loss in LOSSES else self.loss
        text = point_label(title, self.param, self.value)
        return f"{text} (CCE)" if self.is_baseline and self.loss != "ce" else text


@dataclass
class LossComparison:
    """Everything the report of a study of several losses shows.

    Attributes:
        dataset: the records' dataset.
        monitor: the validation metric the best parameter is chosen by.
        alpha: the significance level of the tests.
        metrics: the metric keys found, in the paper's order.
        rows: every ``(loss, value)`` row, CCE first, then by loss and value.
        best: CCE, then each loss at its best validation value (the CCE loss
            itself only as the first row).
        baseline: the CCE row (``None``: no CCE runs, no tests).
        notes: facts the reader must know.
        records: the records (for the figures).
        missing: the points of the study's grids without a finished run, one
            line per row (empty when no grids were given or none lack).
    """

    dataset: str
    monitor: str
    alpha: float
    metrics: list[str]
    rows: list[LossRow]
    best: list[LossRow]
    baseline: LossRow | None
    notes: list[str] = field(default_factory=list)
    records: list[Mapping[str, Any]] = field(default_factory=list, repr=False)
    missing: list[str] = field(default_factory=list)

    def best_of(
        self, split: str, metric: str, rows: Sequence[LossRow] | None = None
    ) -> list[RowKey]:
        """The rows (default: :attr:`best`) with the best mean of ``metric`` on ``split``."""
        spec = metric_spec(metric)
        if spec is None or spec.higher_is_better is None:
            return []
        among = self.best if rows is None else rows
        means = {r.key: r.cells[(split, metric)].mean for r in among if (split, metric) in r.cells}
        if not means:
            return []
        target = max(means.values()) if spec.higher_is_better else min(means.values())
        return [k for k, m in means.items() if math.isclose(m, target)]


def _cells(records: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], CellStats]:
    values: dict[tuple[str, str], dict[int, float]] = {}
    for record in records:
        for split in SPLITS:
            for metric, number in ((record.get("metrics") or {}).get(split) or {}).items():
                if isinstance(number, (int, float)) and math.isfinite(number):
                    values.setdefault((split, str(metric)), {})[int(record["run"])] = float(number)
    cells = {}
    for key, runs in values.items():
        arr = np.array(list(runs.values()), dtype=np.float64)
        std = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
        cells[key] = CellStats(runs, float(arr.mean()), std)
    return cells


def _monitor(records: Sequence[Mapping[str, Any]]) -> str:
    monitors = {
        str(r.get("monitor") or (r.get("config") or {}).get("monitor") or "") for r in records
    }
    monitors.discard("")
    if len(monitors) > 1:
        raise ValueError(
            f"Expected the runs of one study to share their monitor, but found {sorted(monitors)}"
        )
    return monitors.pop() if monitors else "acc"


def compare_losses(
    records: Sequence[Mapping[str, Any]],
    *,
    alpha: float = 0.05,
    expected: Sequence[ExpectedPoint] | None = None,
) -> LossComparison:
    """Group a study's records by loss and value; each loss at its best value; tests against CCE.

    Args:
        records: run records with ``loss`` (absent: SimLoss), ``param``, ``value``,
            ``run``, ``dataset`` and ``metrics`` (as ``load_records`` returns them).
        alpha: significance level of the Wilcoxon tests.
        expected: every ``(loss, param, value, run)`` of the study's grids; those
            without a record are listed in :attr:`LossComparison.missing`.

    Returns:
        A :class:`LossComparison`.

    Raises:
        ValueError: no records, mixed datasets or monitors, or two records of one
            ``(loss, value, run)``.

    Example:
        >>> recs = [{"dataset": "toy", "loss": loss, "param": p, "value": v, "run": i,
        ...          "monitor": "acc",
        ...          "metrics": {"val": {"acc": 0.1 * (v or 1)}, "test": {"acc": 0.1 + 0.01 * i}}}
        ...         for loss, p, v in (("ce", None, None), ("sord", "alpha", 1.0), ("sord", "alpha", 2.0))
        ...         for i in range(2)]
        >>> c = compare_losses(recs)
        >>> [r.label for r in c.best], c.baseline.label
        (['CE', 'SORD alpha=2.0'], 'CE')
    """
    if not records:
        raise ValueError("Expected `records` to hold at least one run record, but found none")
    datasets = {str(r.get("dataset")) for r in records}
    if len(datasets) != 1:
        raise ValueError(f"Expected all records to share one dataset, but found {sorted(datasets)}")
    monitor = _monitor(records)
    groups: dict[RowKey, list[Mapping[str, Any]]] = {}
    params: dict[str, str | None] = {}
    for i, record in enumerate(records):
        loss = record_loss(record)
        raw = record.get("value")
        value = None if raw is None else value_key(raw)
        key = (loss, value)
        run = record.get("run")
        if any(r.get("run") == run for r in groups.get(key, [])):
            raise ValueError(
                f"Expected one record per (loss, value, run), but found two for "
                f"{point_label(loss, record.get('param'), value)}, run {run} (record {i})"
            )
        groups.setdefault(key, []).append(record)
        params[loss] = record.get("param")

    notes: list[str] = []
    base_key = _baseline_key(groups)
    if base_key is None:
        notes.append("no CCE runs (loss ce, or simloss at r = 0 / l = 0.99): no tests are made")
    base_cells = _cells(groups[base_key]) if base_key is not None else {}

    def make_row(key: RowKey) -> LossRow:
        cells = _cells(groups[key])
        tests: dict[str, WilcoxonResult] = {}
        if base_key is not None and key != base_key:
            for split, metric in cells:
                if split != "test":
                    continue
                spec = metric_spec(metric)
                lower = (
                    None
                    if spec is None or spec.higher_is_better is None
                    else not spec.higher_is_better
                )
                base = base_cells.get(("test", metric))
                tests[metric] = wilcoxon_against_baseline(
                    cells[(split, metric)].runs,
                    base.runs if base is not None else {},
                    lower_is_better=lower,
                    alpha=alpha,
                )
        runs = sorted({int(r["run"]) for r in groups[key]})
        return LossRow(key[0], params[key[0]], key[1], cells, tests, runs, key == base_key)

    def order(key: RowKey) -> tuple[int, int, float]:
        names = list(LOSSES)
        index = names.index(key[0]) if key[0] in names else len(names)
        return (key != base_key, index, -math.inf if key[1] is None else key[1])

    rows = [make_row(k) for k in sorted(groups, key=order)]
    baseline = next((r for r in rows if r.is_baseline), None)
    goal_higher = monitor != LOSS and metric_goal(monitor) == "max"
    best: list[LossRow] = [] if baseline is None else [baseline]
    for loss in dict.fromkeys(r.loss for r in rows):
        if baseline is not None and loss == "ce" and baseline.loss == "ce":
            continue
        candidates = [r for r in rows if r.loss == loss and ("val", monitor) in r.cells]
        if not candidates:
            notes.append(f"{loss}: no validation {monitor}; not in the comparison")
            continue
        chosen = (max if goal_higher else min)(
            candidates, key=lambda r: r.cells[("val", monitor)].mean
        )
        if baseline is not None and chosen.key == baseline.key:
            notes.append(f"{chosen.label}: the best validation value of {loss} is the CCE row")
            continue
        best.append(chosen)
    metrics = sorted(
        {m for r in rows for (_, m) in r.cells},
        key=lambda m: (METRIC_ORDER.index(m) if m in METRIC_ORDER else len(METRIC_ORDER), m),
    )
    for row in rows:
        for split in SPLITS:
            for metric in metrics:
                cell = row.cells.get((split, metric))
                have = 0 if cell is None else cell.n
                if have < len(row.runs):
                    notes.append(
                        f"{row.label}: {split} {metric} from {have} of its {len(row.runs)} runs "
                        "(the others do not record it, e.g. runs written before it was recorded)"
                    )
    counts = sorted({len(r.runs) for r in rows})
    if len(counts) > 1:
        notes.append(f"rows have different numbers of runs ({counts[0]}-{counts[-1]})")
    return LossComparison(
        missing=_missing(groups, expected or ()),
        dataset=datasets.pop(),
        monitor=monitor,
        alpha=alpha,
        metrics=metrics,
        rows=rows,
        best=best,
        baseline=baseline,
        notes=notes,
        records=list(records),
    )


def _missing(
    groups: Mapping[RowKey, Sequence[Mapping[str, Any]]], expected: Sequence[ExpectedPoint]
) -> list[str]:
    """One line per expected ``(loss, value)`` row that lacks runs."""
    wanted: dict[RowKey, tuple[str | None, set[int]]] = {}
    for loss, param, value, run in expected:
        key = (loss, None if value is None else value_key(value))
        wanted.setdefault(key, (param, set()))[1].add(run)
    lines = []
    for key, (param, runs) in wanted.items():
        have = {int(r["run"]) for r in groups.get(key, []) if r.get("run") is not None}
        lacking = sorted(runs - have)
        if not lacking:
            continue
        label = point_label(key[0], param, key[1])
        if len(lacking) == len(runs):
            lines.append(f"{label}: no finished runs")
        else:
            lines.append(
                f"{label}: run(s) {lacking} not finished ({len(runs) - len(lacking)} of "
                f"{len(runs)})"
            )
    return lines


def _baseline_key(groups: Mapping[RowKey, Any]) -> RowKey | None:
    if ("ce", None) in groups:
        return ("ce", None)
    for param in PARAMS.values():
        key = (DEFAULT_LOSS, value_key(param.cce_value))
        if key in groups and all(r.get("param") == param.name for r in groups[key]):
            return key
    return None
