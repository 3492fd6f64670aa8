"""``simloss demo``: the paper's experiment in small, on the embedded Abalone data."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simloss.cli._settings import add_config_arguments, settings_from_args
from simloss.experiments.specs import PARAMS

EXTRA = "experiments"

__all__ = ["DEMO_COMPARE", "DEMO_GRID", "DEMO_RUNS", "register"]

#: The demo's grid: four reduction factors (r = 0 is plain cross-entropy).
DEMO_GRID = "r=0,0.3,0.6,0.9"
#: Runs per value: six pairs are the fewest with which a two-sided Wilcoxon test
#: (the report's test against r = 0) can reach p < 0.05.
DEMO_RUNS = 6
#: ``simloss demo --compare``: SimLoss against CE and two ordinal peers, (loss, grid).
DEMO_COMPARE: tuple[tuple[str, str | None], ...] = (
    ("ce", None),
    ("simloss", "r=0.3,0.6,0.9"),
    ("sord", "alpha=0.5,1,2"),
    ("corn", None),
)

EXAMPLES = """\
examples:
  simloss demo                       # writes ./simloss-demo, prints the table
  simloss demo --out /tmp/demo --workers 2
  simloss demo --runs 5 --grid r=0:0.9:0.1
  simloss demo --epochs 50 --limit 1000 --lr 0.003   # any run setting, as for simloss train
  simloss demo --compare --out /tmp/compare   # SimLoss vs CE, SORD and CORN (needs [peers])

The demo is a sweep (see `simloss sweep --help`) on the UCI Abalone data that
ships with simloss (Nash et al. 1994, CC BY 4.0): ring counts as ordered
classes, an MLP, SimLoss with class-order similarity S_ij = r^|i-j|. It then
writes the report (tables, significance tests, figures) into OUT/report and
prints the report's path last. Rerunning it resumes; a finished demo only
prints its report again. With --compare it trains CE, SimLoss (r = 0.3, 0.6,
0.9), SORD (alpha = 0.5, 1, 2; dlordinal) and CORN (coral-pytorch) into one study
and reports each loss at its best validation value against CE.
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
    parser.add_argument(
        "--compare",
        action="store_true",
        help="compare SimLoss with CE, SORD and CORN (one study, one report; needs "
        "simloss[peers] and dlordinal, see the README)",
    )
    add_config_arguments(parser, exclude=(*PARAMS, "loss_param"))
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Run the demo sweep and its report; print the Markdown table and, last, the report's path."""
    from simloss.cli.sweep import sweep_from_args
    from simloss.experiments.report import write_report
    from simloss.experiments.sweep import load_records, run_sweep, threads_per_worker

    settings = settings_from_args(args)
    dataset = settings.get("dataset", "abalone")
    if args.compare:
        if args.grid is not None or settings.get("loss") is not None:
            raise ValueError(
                "Expected neither --grid nor --loss with --compare (it runs "
                f"{[loss for loss, _ in DEMO_COMPARE]}), but found one"
            )
        sweeps = [sweep_from_args(args, text, loss=loss) for loss, text in DEMO_COMPARE]
    else:
        simloss = settings.get("loss") in (None, "simloss")
        sweeps = [sweep_from_args(args, DEMO_GRID if dataset == "abalone" and simloss else None)]
    workers = args.workers
    if workers is None:
        most = max(len(grid.points()) for _, grid in sweeps)
        workers = min(4, threads_per_worker(1), most)
    out = Path(args.out)
    from simloss.experiments._outputs import check_output

    check_output(out, flag="--out", command="demo", own_kind="sweep")
    results = []
    for base, grid in sweeps:
        results.append(
            run_sweep(base, grid, out, workers=workers, status_lines=not sys.stderr.isatty())
        )
        print(results[-1].summary())
    records = load_records(out)
    if not records:
        raise RuntimeError(f"no trial of the demo sweep in {out} finished; see {out}/logs")
    expected = results[0].grid.values if not args.compare else None
    markdown = write_report(records, out / "report", expected_values=expected)
    print(markdown.read_text())
    unfinished = sum(r.total - r.finished for r in results)
    if unfinished:
        total = sum(r.total for r in results)
        raise RuntimeError(
            f"{unfinished} of {total} demo trials did not finish "
            f"(report so far: {markdown.resolve()}); rerun `simloss demo` to retry them"
        )
    print(markdown.resolve())
    return 0
