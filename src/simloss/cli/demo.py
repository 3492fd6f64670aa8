"""``simloss demo``: the paper's experiment in small, on the embedded Abalone data."""

from __future__ import annotations

import argparse
from pathlib import Path

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

The demo is a sweep (see `simloss sweep --help`) on the UCI Abalone data that
ships with simloss (Nash et al. 1994, CC BY 4.0): ring counts as ordered
classes, an MLP, SimLoss with class-order similarity S_ij = r^|i-j|. It then
writes the report (tables, significance tests, figures) into OUT/report.
Rerunning it resumes; a finished demo only prints its report again.
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
    parser.add_argument("--grid", default=DEMO_GRID, help=f"values of r (default {DEMO_GRID})")
    parser.add_argument("--runs", type=int, default=DEMO_RUNS, help=f"runs per value ({DEMO_RUNS})")
    parser.add_argument(
        "--workers", type=int, help="local worker processes (default: one per core, at most 4)"
    )
    parser.add_argument("--epochs", type=int, help="most epochs per run (default: abalone's)")
    parser.add_argument("--limit", type=int, help="use at most this many examples")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Run the demo sweep and its report; print the Markdown table and the folder."""
    from simloss.experiments.config import TrainConfig
    from simloss.experiments.records import load_records
    from simloss.experiments.sweep import Grid, run_sweep, threads_per_worker

    grid = Grid.parse(args.grid, runs=args.runs)
    workers = args.workers
    if workers is None:
        workers = min(4, threads_per_worker(1), len(grid.points()))
    base = TrainConfig(dataset="abalone", epochs=args.epochs, limit=args.limit)
    out = Path(args.out)
    result = run_sweep(base, grid, out, workers=workers, progress=not args.no_progress)
    print(result.summary())
    records = load_records(out)
    if not records:
        raise RuntimeError(f"no trial of the demo sweep in {out} finished; see {out}/logs")
    from simloss.experiments.report import write_report

    markdown = write_report(records, out / "report", dataset="abalone")
    print(markdown.read_text())
    print(result.out_dir)
    if not result.ok:
        raise RuntimeError(
            f"{result.total - result.finished} of {result.total} demo trials did not finish; "
            "rerun `simloss demo` to retry them"
        )
    return 0
