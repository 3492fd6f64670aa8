"""``simloss demo``: the paper's experiment in small, on the embedded Abalone data."""

from __future__ import annotations

import argparse
from pathlib import Path

from simloss.cli._settings import add_config_arguments, settings_from_args
from simloss.experiments.specs import PARAMS

__all__ = ["DEMO_GRID", "DEMO_RUNS", "register"]

#: The demo's grid: four reduction factors (r = 0 is plain cross-entropy).
DEMO_GRID = "r=0,0.3,0.6,0.9"
#: Runs per value: six pairs are the fewest with which a two-sided Wilcoxon test
#: (the report's test against r = 0) can reach p < 0.05.
DEMO_RUNS = 6

EXAMPLES = """\
examples:
  simloss demo                       # writes ./simloss-demo, prints the table
  simloss demo --out /tmp/demo --workers 2
  simloss demo --runs 5 --grid r=0:0.9:0.1
  simloss demo --epochs 50 --limit 1000 --lr 0.003   # any run setting, as for simloss train

The demo is a sweep (see `simloss sweep --help`) on the UCI Abalone data that
ships with simloss (Nash et al. 1994, CC BY 4.0): ring counts as ordered
classes, an MLP, SimLoss with class-order similarity S_ij = r^|i-j|. It then
writes the report (tables, significance tests, figures) into OUT/report and
prints the report's path last. Rerunning it resumes; a finished demo only
prints its report again.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="run a small sweep on the embedded Abalone data and print its report",
        description="A sweep over r x runs on the embedded Abalone data, then its report.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out", default="simloss-demo", help="output folder (default ./simloss-demo)"
    )
    parser.add_argument("--grid", help=f"values of r (default {DEMO_GRID})")
    parser.add_argument("--runs", type=int, default=DEMO_RUNS, help=f"runs per value ({DEMO_RUNS})")
    parser.add_argument(
        "--workers", type=int, help="local worker processes (default: one per core, at most 4)"
    )
    add_config_arguments(parser, exclude=PARAMS)
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Run the demo sweep and its report; print the Markdown table and, last, the report's path."""
    from simloss.cli.sweep import sweep_from_args
    from simloss.experiments.report import write_report
    from simloss.experiments.sweep import load_records, run_sweep, threads_per_worker

    dataset = settings_from_args(args).get("dataset", "abalone")
    base, grid = sweep_from_args(args, DEMO_GRID if dataset == "abalone" else None)
    workers = args.workers
    if workers is None:
        workers = min(4, threads_per_worker(1), len(grid.points()))
    out = Path(args.out)
    result = run_sweep(base, grid, out, workers=workers)
    print(result.summary())
    records = load_records(out)
    if not records:
        raise RuntimeError(f"no trial of the demo sweep in {out} finished; see {out}/logs")
    markdown = write_report(records, out / "report", expected_values=result.grid.values)
    print(markdown.read_text())
    if not result.ok:
        raise RuntimeError(
            f"{result.total - result.finished} of {result.total} demo trials did not finish "
            f"(report so far: {markdown.resolve()}); rerun `simloss demo` to retry them"
        )
    print(markdown.resolve())
    return 0
