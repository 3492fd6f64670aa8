"""``simloss benchmark``: SimLoss and its peers across many real datasets, with the field's statistics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from simloss.cli._settings import add_config_arguments, settings_from_args
from simloss.experiments.specs import DEFAULT_RUNS

EXTRA = "benchmark"

__all__ = ["register"]

EXAMPLES = """\
examples:
  # every default task (seven package datasets and Abalone) x every loss that fits them
  simloss benchmark --out benchmarks/ordinal --workers 2

  # two tasks, three losses, fewer seeds (minutes)
  simloss benchmark --tasks era,lev --losses ce,simloss,sord --runs 6 --epochs 30 --out b/quick

  # your own tasks beside the standard ones
  simloss benchmark --tasks era,esl,wine.toml,grades.toml --out b/mine

  simloss report benchmarks/ordinal      # ranks, Friedman, Nemenyi, CD diagrams, win/tie/loss

Every task x loss x value of the loss's parameter x seed is trained once, on
the sweep engine: rerunning the command resumes it (kill -9 included), and
several machines share it with --storage. Each loss's parameter is chosen on
validation per task; the report ranks the losses across tasks (docs/benchmark.md).
The estimate of the whole run (runs x mean epochs x seconds per epoch, timed
here) is printed before the first run.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``benchmark`` subcommand."""
    parser = subparsers.add_parser(
        "benchmark",
        help="benchmark SimLoss and its peers across many real datasets (ranks, Friedman, Nemenyi)",
        description=(
            "Train every task x loss x parameter value x seed once on the sweep engine, "
            "resumable; `simloss report FOLDER` ranks the losses across tasks."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out", required=True, help="the benchmark folder (created; reuse to resume)"
    )
    parser.add_argument(
        "--tasks",
        help="comma-separated datasets (era, esl, lev, swd, balance-scale, anes96, fair, "
        "abalone, ...) or task files (a dataset that needs --data-dir, such as utkface: "
        "through a task file that names its data); default: all of those",
    )
    parser.add_argument(
        "--losses",
        help="comma-separated losses (--loss's names); default: every loss that fits every task",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=DEFAULT_RUNS,
        help=f"runs per task, loss and value (default {DEFAULT_RUNS}, the paper's; the ordinal "
        "literature uses 30: run i trains with seed + i on its own split, split_seed + i; "
        "--no-split-per-run: one split)",
    )
    parser.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    parser.add_argument("--storage", help="an Optuna storage URL shared by several machines")
    parser.add_argument(
        "--no-estimate", action="store_true", help="start without timing each task first"
    )
    exclude = ("dataset", "task", "data_dir", "loss", "loss_param", "similarity", "r", "l",
               "vectors", "hierarchy", "hierarchy_names", "min_age", "max_age", "cifar_classes",
               "download", "cache_dir", "skip_unreadable")  # fmt: skip
    add_config_arguments(parser, exclude=exclude)
    parser.set_defaults(func=handler)


def _names(text: str | None, flag: str) -> list[str] | None:
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ValueError(f"Expected {flag} to be comma-separated names, but found {text!r}")
    return names


def handler(args: argparse.Namespace) -> int:
    """Plan, estimate and run the benchmark; exit 0 when every run finished."""
    from simloss.experiments._outputs import check_output
    from simloss.experiments.benchmark import (
        DEFAULT_TASKS,
        check_run_args,
        estimate,
        estimate_text,
        plan_benchmark,
        run_benchmark,
    )

    check_output(args.out, flag="--out", command="benchmark")
    check_run_args(args.workers, args.storage, flags=True)
    settings: dict[str, Any] = settings_from_args(args)
    settings.setdefault("split_per_run", True)  # repeated holdout, as the literature compares
    plan = plan_benchmark(
        _names(args.tasks, "--tasks") or list(DEFAULT_TASKS),
        _names(args.losses, "--losses"),
        Path(args.out),
        runs=args.runs,
        settings=settings,
    )
    for why in plan.left_out.values():
        print(f"left out: {why}", file=sys.stderr)
    print(
        f"benchmark: {len(plan.tasks)} tasks x {len(plan.losses)} losses "
        f"({', '.join(plan.losses)}), {plan.runs} seeds: {plan.total_runs()} runs"
    )
    if not args.no_estimate:
        print(estimate_text(estimate(plan), args.workers), flush=True)
    result = run_benchmark(
        plan,
        args.out,
        workers=args.workers,
        storage=args.storage,
        status_lines=not sys.stderr.isatty(),
    )
    print(result.summary())
    if not result.ok:
        first = result.first_failure()
        raise RuntimeError(
            "some runs did not finish; rerun the same command to retry them"
            + ("" if first is None else f"; the first failure: {first}")
        )
    print(f"report: simloss report {args.out}")
    return 0
