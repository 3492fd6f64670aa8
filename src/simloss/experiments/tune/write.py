"""A tune's result on disk: Markdown, CSV and JSON, the figure, and the report of its confirmation.

Files written into the result folder (``OUT/result``):

- ``tune.md``: the chosen value(s) with their spread and test against CCE,
  the confirmed values, the search, the compute, the figure;
- ``tune.csv``: the same tables in long form (:func:`~simloss.experiments.report.render.table_csv`);
- ``tune.json``: the result for programs (values, means, standard deviations
  and errors, tests, compute);
- ``tune_<param>.png``/``.pdf``: :func:`~simloss.experiments.tune.figures.plot_tune`;
- the report of the confirmation runs (CCE and the candidates, ``runs`` each),
  exactly as ``simloss report`` writes a sweep's (``report.md``, ...).

Files of an earlier result that this one does not write are removed, so the
folder never mixes two results.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from simloss.experiments._files import atomic_write_json, atomic_write_text
from simloss.experiments.points import format_value, value_key
from simloss.experiments.report.render import markdown_table, table_csv
from simloss.experiments.report.summary import SPLITS
from simloss.experiments.report.write import write_report
from simloss.experiments.tune.result import TuneResult
from simloss.experiments.tune.tables import tune_tables

__all__ = ["TUNE_RESULT_FILES", "result_json", "to_markdown", "write_tune_report"]

#: The files of a tune's result besides the confirmation's report (``*``: the parameter).
TUNE_RESULT_FILES = ("tune.md", "tune.csv", "tune.json", "tune_*.png", "tune_*.pdf")

_SAMPLERS = {"tpe": "Optuna's TPESampler", "gp": "Optuna's GPSampler"}
_PRUNERS = {
    "median": "Optuna's MedianPruner",
    "halving": "Optuna's SuccessiveHalvingPruner",
    "none": "no pruner",
}


def _direction(metric: str) -> str:
    from simloss.metrics import metric_goal

    return "higher is better" if metric_goal(metric) == "max" else "lower is better"


def to_markdown(result: TuneResult, figures: list[str] | None = None) -> str:
    """The result as Markdown (the tables of :func:`~simloss.experiments.tune.tables.tune_tables`)."""
    s = result.settings
    objectives = ", ".join(
        f"{o} ({_direction(m)})" for o, m in zip(s.objectives, s.metrics, strict=True)
    )
    out = [f"# SimLoss tune: {result.dataset}, parameter {s.param}", ""]
    out.append(
        f"Objective{'s' if s.multi else ''}: {objectives}. Search range {s.param} in "
        f"[{format_value(s.low)}, {format_value(s.high)}]; budget {s.budget} epochs, used "
        f"{result.epochs()} in {result.count()} trials ({result.count('search', 'pruned')} "
        f"search trials pruned). Sampler: {_SAMPLERS[s.sampler]} (seed {s.seed}); pruner: "
        f"{_PRUNERS[s.pruner]}."
    )
    out += [
        "",
        f"Noise: every searched value was trained once, with run 0's seed (common random "
        f"numbers: the same initial weights and batch order for every value). The best "
        f"{s.candidates} value(s) of the search and CCE ({s.param} = "
        f"{format_value(s.cce_value)}) were then trained with {s.runs} seeds (runs 0 to "
        f"{s.runs - 1}); the numbers are means over those runs ± their standard error "
        f"(standard deviation in parentheses). Accuracy-type metrics in percent. Test values "
        f"are marked + or - where a two-sided Wilcoxon signed-rank test (alpha = 0.05), "
        f"paired by run against CCE, finds them significantly better or worse. The chosen "
        f"value{'s are the confirmed values no other confirmed value dominates' if s.multi else ' has the best mean validation objective'}.",
    ]
    for table in tune_tables(result):
        out += ["", f"## {table.title}", ""]
        out.append(markdown_table(table) if table.rows else "None.")
    if result.elapsed_s is not None:
        out += [
            "",
            f"Wall time: {result.elapsed_s:.1f} s from the first trial's start to the last "
            f"trial's end (training {result.seconds():.1f} s in all; the rest is the engine, "
            "the sampler, and waiting between commands of a resumed tune).",
        ]
    if figures:
        out += ["", "## Figure", ""]
        out += [f"![{name}]({name})" for name in figures]
    out += [
        "",
        "## The confirmation runs",
        "",
        "[report.md](report.md) is the report of the confirmation runs (CCE and the "
        "candidates), as `simloss report` writes a sweep's.",
    ]
    if result.missing or result.notes:
        out += ["", "## Notes", ""]
        out += [f"- missing: {item}" for item in result.missing]
        out += [f"- {item}" for item in result.notes]
    return "\n".join(out) + "\n"


def _cell_json(result: TuneResult, value: float, split: str, metric: str) -> dict[str, Any] | None:
    cell = result.stats(value, split, metric)
    if cell is None:
        return None
    se = cell.std / math.sqrt(cell.n) if cell.n > 1 else None
    return {
        "mean": cell.mean,
        "std": cell.std,
        "se": se,
        "n": cell.n,
        "runs": {str(k): v for k, v in sorted(cell.runs.items())},
    }


def _value_json(result: TuneResult, value: float) -> dict[str, Any]:
    metrics = sorted({m for _, split, m in (result.summary.cells if result.summary else {})})
    entry: dict[str, Any] = {"value": value, "cce": value == value_key(result.settings.cce_value)}
    for split in SPLITS:
        entry[split] = {m: _cell_json(result, value, split, m) for m in metrics}
    tests = {}
    for metric in metrics:
        test = result.versus_cce(value, metric)
        if test is not None:
            tests[metric] = {
                "status": test.status,
                "mark": test.mark,
                "p_value": test.p_value,
                "statistic": test.statistic,
                "n_pairs": test.n_pairs,
                "n_nonzero": test.n_nonzero,
                "mean_difference": test.mean_difference,
                "effect": test.effect,  # rank-biserial r_rb, +1: every pair favours the value
                "hodges_lehmann": test.hodges_lehmann,
                "null": test.method,
                "reason": test.reason,
            }
    entry["versus_cce_test"] = tests
    return entry


def result_json(result: TuneResult) -> dict[str, Any]:
    """The result for programs: settings, chosen and confirmed values, compute (plain JSON)."""
    phases = ("cce", "search", "confirm", None)
    return _finite(
        {
            "schema_version": 1,
            "dataset": result.dataset,
            "study_name": result.study_name,
            "settings": result.settings.to_dict(),
            "complete": result.complete,
            "best": [_value_json(result, v) for v in result.best],
            "confirmed": [_value_json(result, v) for v in result.confirmed],
            "candidates": list(result.candidates or ()),
            "compute": {
                phase or "total": {
                    "trials": result.count(phase),
                    "pruned": result.count(phase, "pruned"),
                    "failed": result.count(phase, "failed"),
                    "epochs": result.epochs(phase),
                    "training_time_s": result.seconds(phase),
                }
                for phase in phases
            },
            "elapsed_s": result.elapsed_s,
            "search_front": list(result.search_front()) if result.settings.multi else [],
            "missing": list(result.missing),
            "notes": list(result.notes),
        }
    )


def _finite(obj: Any) -> Any:
    """``obj`` with NaN and infinities as ``None`` (JSON has neither)."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_tune_report(
    result: TuneResult, out_dir: str | os.PathLike[str], *, figures: bool = True
) -> Path:
    """Write a tune's result files (see the module's docstring) into ``out_dir``.

    Args:
        result: as returned by :func:`simloss.experiments.tune.load_tune`.
        out_dir: the result folder (created).
        figures: whether to draw the figures (the tune's and the report's).

    Returns:
        The path of ``tune.md``.

    Raises:
        ValueError: the tune has not finished its confirmation (nothing to write yet).
    """
    if not result.complete:
        raise ValueError(
            f"Expected a finished tune, but {result.out_dir} is not: "
            + "; ".join(result.missing or ("nothing was confirmed",))
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_report(
        result.records,
        out,
        dataset=result.dataset,
        figures=figures,
        expected_values=list(result.confirmed),
        expected_runs=result.settings.runs,
        other_files=TUNE_RESULT_FILES,
    )
    names: list[str] = []
    if figures:
        from simloss.experiments.report.figures import save_figure
        from simloss.experiments.tune.figures import plot_tune

        names = save_figure(plot_tune(result), out, f"tune_{result.settings.param}")
    md = out / "tune.md"
    atomic_write_text(out / "tune.csv", table_csv(tune_tables(result)))
    atomic_write_json(out / "tune.json", result_json(result))
    atomic_write_text(md, to_markdown(result, names[:1]))
    written = {"tune.md", "tune.csv", "tune.json", *names}
    for pattern in TUNE_RESULT_FILES:
        for stale in out.glob(pattern):
            if stale.name not in written:
                stale.unlink()
    return md
