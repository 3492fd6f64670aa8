"""The statistics of a sweep's report: means, spreads, best values, tests, gaps.

A sweep is a list of run records (:class:`~simloss.experiments.record.SweepRecord`),
each with the keys ``param`` (``"r"`` or ``"l"``), ``value`` and ``run`` added by
:func:`simloss.experiments.sweep.load_records`. :func:`summarize_sweep` turns
them into a :class:`SweepSummary`: one row per hyper-parameter value, the mean
and standard deviation over runs of every validation and test metric, the best
validation value of each metric (bold in the tables), for every test value a
two-sided Wilcoxon signed-rank test at the 5% level against the CCE row
(:mod:`simloss.experiments.report.stats`), what a complete sweep would have that
these records lack, and the settings in which the records differ from the
paper's experiment.

References:
    Kobs et al., "SimLoss: Class Similarities in Cross Entropy", ISMIS 2020,
    https://arxiv.org/abs/2003.03182
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from simloss.experiments.points import format_value, value_key
from simloss.experiments.record import SweepRecord
from simloss.experiments.report.paper import PaperCell, paper_cells_for
from simloss.experiments.report.stats import WilcoxonResult, wilcoxon_against_baseline
from simloss.experiments.specs import DEFAULT_RUNS, METRIC_ORDER, PARAMS, metric_spec
from simloss.experiments.task import BUILTIN_TASKS

__all__ = [
    "SPLITS",
    "SPLIT_LABELS",
    "CellStats",
    "SweepSummary",
    "paper_differences",
    "summarize_sweep",
]

#: The splits a report shows, in order, and their labels.
SPLITS: tuple[str, str] = ("val", "test")
SPLIT_LABELS = {"val": "Validation", "test": "Test"}


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
        setup: where the runs' settings differ from the paper's experiment
            (empty when the paper has none for this dataset, or none differ).
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
    setup: list[str] = field(default_factory=list)
    records: list[SweepRecord] = field(default_factory=list, repr=False)

    def is_best(self, value: float, split: str, metric: str) -> bool:
        """Whether ``value`` holds the best mean of ``metric`` on ``split``."""
        return value_key(value) in self.best.get((split, metric), [])

    def paper_cells(self) -> dict[tuple[float, str, str], PaperCell]:
        """The paper's numbers for this dataset and parameter (empty when none)."""
        cells = paper_cells_for(self.dataset, self.param)
        return {(value_key(v), split, metric): cell for (v, split, metric), cell in cells.items()}


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
    order = list(METRIC_ORDER)
    return (order.index(metric) if metric in order else len(order), metric)


def _lower_is_better(metric: str) -> bool | None:
    known = metric_spec(metric)
    if known is None or known.higher_is_better is None:
        return None
    return not known.higher_is_better


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
        if param not in PARAMS:
            raise ValueError(
                f"Expected `baseline` for parameter {param!r} (simloss knows the CCE values of "
                f"{list(PARAMS)})"
            )
        baseline = PARAMS[param].cce_value
    base = value_key(baseline)

    per_run: dict[tuple[float, int], dict[str, dict[str, float]]] = {}
    nulls: set[tuple[float, int, str, str]] = set()
    notes: list[str] = []
    for i, record in enumerate(records):
        value = value_key(_check_number(_record_field(record, "value", i), f"record {i} `value`"))
        run = _record_field(record, "run", i)
        if isinstance(run, bool) or not isinstance(run, int):
            raise TypeError(f"Expected record {i} `run` to be an int, but found {run!r}")
        if (value, run) in per_run:
            raise ValueError(
                f"Expected one record per (value, run), but found two for "
                f"{param} = {format_value(value)}, run {run}"
            )
        metrics = _record_field(record, "metrics", i)
        if not isinstance(metrics, Mapping):
            raise TypeError(f"Expected record {i} `metrics` to be a mapping, found {metrics!r}")
        entry: dict[str, dict[str, float]] = {}
        for split in SPLITS:
            split_metrics = metrics.get(split)
            if split_metrics is None:
                notes.append(f"{param} = {format_value(value)}, run {run} has no {split} metrics")
                split_metrics = {}
            entry[split] = {}
            where = f"{param} = {format_value(value)}, run {run}"
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
    unknown = [m for m in metrics_found if _lower_is_better(m) is None]
    if unknown:
        notes.append(
            f"metric(s) {unknown} have no known better direction: no bold and no +/- marks"
        )

    def distance(v: float) -> tuple[float, float]:
        return (abs(v - base), v)

    values = sorted({v for v, _ in per_run}, key=distance)
    runs = {v: sorted(r for vv, r in per_run if vv == v) for v in values}

    cells: dict[tuple[float, str, str], CellStats] = {}
    lacking: dict[tuple[str, str], list[tuple[float, list[int]]]] = {}
    for value in values:
        for split in SPLITS:
            for metric in metrics_found:
                got = {
                    run: per_run[(value, run)][split][metric]
                    for run in runs[value]
                    if metric in per_run[(value, run)][split]
                }
                without = [
                    run
                    for run in runs[value]
                    if run not in got and (value, run, split, metric) not in nulls
                ]
                if without:
                    lacking.setdefault((split, metric), []).append((value, without))
                if not got:
                    continue
                arr = np.array(list(got.values()), dtype=np.float64)
                std = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
                cells[(value, split, metric)] = CellStats(got, float(arr.mean()), std)

    total = len(per_run)
    for (split, metric), gaps in lacking.items():
        count = sum(len(runs_lacking) for _, runs_lacking in gaps)
        places = [f"{param} = {format_value(v)} run(s) {r}" for v, r in gaps]
        notes.append(
            f"{split} {metric}: {count} of {total} runs do not record it (runs written before "
            f"it was recorded, e.g. of a resumed sweep): its means, bold and tests use the "
            f"runs that have it, and the runs column counts them; lacking: {'; '.join(places)}"
        )

    best: dict[tuple[str, str], list[float]] = {}
    for split in SPLITS:
        for metric in metrics_found:
            lower = _lower_is_better(metric)
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
                lower_is_better=_lower_is_better(metric),
                alpha=alpha,
            )

    missing: list[str] = []
    if base not in runs:
        missing.append(
            f"no CCE runs ({param} = {format_value(base)}): no significance tests can be made"
        )
    if expected_values is not None:
        absent = [v for v in (value_key(x) for x in expected_values) if v not in runs]
        if absent:
            shown = ", ".join(format_value(v) for v in sorted(absent, key=distance))
            missing.append(f"{param} = {shown}: no finished runs")
    all_runs = set(range(expected_runs)) if expected_runs is not None else set()
    for value_runs in runs.values():
        all_runs.update(value_runs)
    for value in values:
        lacking_runs = sorted(all_runs - set(runs[value]))
        if lacking_runs:
            missing.append(
                f"{param} = {format_value(value)}: run(s) {lacking_runs} not finished "
                f"({len(runs[value])} of {len(all_runs)})"
            )

    mixed = _mixed_data(records)
    if mixed:
        notes.insert(0, mixed)

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
        setup=paper_differences(found_dataset, records, runs),
        records=[cast(SweepRecord, dict(r)) for r in records],
    )


def _mixed_data(records: Sequence[Mapping[str, Any]]) -> str | None:
    """A warning when the records were trained on data of different sizes, else ``None``."""
    sizes: dict[str, int] = {}
    for record in records:
        examples = record.get("num_examples")
        if isinstance(examples, Mapping):
            key = "/".join(str(examples.get(k, "?")) for k in ("train", "val", "test"))
            sizes[key] = sizes.get(key, 0) + 1
    if len(sizes) < 2:
        return None
    shown = ", ".join(f"{key} ({n} runs)" for key, n in sorted(sizes.items()))
    return (
        f"WARNING: the runs used data of different sizes (train/val/test examples: {shown}); "
        "their means mix different experiments"
    )


def paper_differences(
    dataset: str, records: Sequence[Mapping[str, Any]], runs: Mapping[float, Sequence[int]]
) -> list[str]:
    """The settings in which a sweep's runs differ from the paper's experiment.

    Compares each setting the dataset's spec records for the paper
    (:attr:`simloss.experiments.specs.DatasetSpec.paper`: model, epoch cap,
    patience, monitor, learning rate, batch size, subset, splits, class set)
    with the resolved configs of the records, and the runs per value with the
    paper's 10. A report that shows the paper's numbers states these beside them.

    Args:
        dataset: the records' dataset.
        records: run records (their ``config`` and ``num_examples``).
        runs: the run indices per value.

    Returns:
        One line per difference, e.g. ``"epochs = 2 (paper: 200)"``; empty when
        the paper has no experiment on the dataset.

    Example:
        >>> recs = [{"config": {"epochs": 2, "limit": 600, "lr": 0.001}}]
        >>> paper_differences("utkface", recs, {0.0: [0, 1]})[:3]
        ['model = (not recorded) (paper: age_cnn)', 'epochs = 2 (paper: 200)', 'patience = (not recorded) (paper: 10)']
    """
    spec = BUILTIN_TASKS.get(dataset.lower())
    if spec is None or spec.paper is None:
        return []
    lines = []
    configs: list[Mapping[str, Any]] = []
    for record in records:
        config = record.get("config")
        configs.append(config if isinstance(config, Mapping) else {})
    for key, paper_value in spec.paper.items():
        found = [c.get(key, _UNRECORDED) for c in configs]
        if all(v == paper_value for v in found):
            continue
        shown = sorted({_show(v) for v in found})
        lines.append(f"{key} = {', '.join(shown)} (paper: {_show(paper_value)})")
    counts = sorted({len(r) for r in runs.values()})
    if counts and counts != [DEFAULT_RUNS]:
        text = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        lines.append(f"runs per value = {text} (paper: {DEFAULT_RUNS})")
    sizes = sorted(
        {
            "/".join(str(r["num_examples"].get(k, "?")) for k in ("train", "val", "test"))
            for r in records
            if isinstance(r.get("num_examples"), Mapping)
        }
    )
    if sizes:
        lines.append(f"examples (train/val/test) = {', '.join(sizes)} (paper: {spec.paper_data})")
    return lines


_UNRECORDED = object()


def _show(value: Any) -> str:
    if value is _UNRECORDED:
        return "(not recorded)"
    return "all" if value is None else str(value)
