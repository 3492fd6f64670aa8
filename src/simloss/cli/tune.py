"""``simloss tune``: find r (or l) for one or more objectives at a fraction of a grid's cost."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from simloss.cli._settings import add_config_arguments, add_engine_arguments, settings_from_args
from simloss.experiments.specs import PARAMS

EXTRA = "experiments"

__all__ = ["register"]

EXAMPLES = """\
examples:
  # the r with the best validation MAE on Abalone, within 1,500 training epochs
  simloss tune --dataset abalone --objective val_mae --budget 1500 --out tunes/ab

  # the accuracy/MAE trade-off on UTKFace: the Pareto front of r, two workers
  simloss tune --dataset utkface --data-dir ~/data/UTKFace --objective val_mae \\
      --objective val_acc --budget 3000 --workers 2 --out tunes/utk

  # l for CIFAR-100 with the Gaussian-process sampler, any run setting as a flag
  simloss tune --dataset cifar100 --data-dir ~/data --cifar-classes paper96 \\
      --vectors glove100d_class_embeddings.npy --param l --objective val_acc \\
      --budget 5000 --sampler gp --out tunes/cifar

The search trains one run per value the sampler proposes (all with run 0's
seed) and prunes runs that fall behind; the best values and CCE (r = 0.0 or
l = 0.99) are then trained with --runs seeds, so the result is a mean with
its spread and a Wilcoxon test against CCE. Results: OUT/result/tune.md (and
.csv, .json, a figure, the report of the confirmation runs). Rerunning a
command resumes it. Watch it live: optuna-dashboard sqlite:///OUT/study.db
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tune`` subcommand."""
    parser = subparsers.add_parser(
        "tune",
        help="find r (or l) for one or more validation objectives within a budget of epochs",
        description=(
            "Search the similarity parameter with an Optuna sampler and pruner, confirm the "
            "best values and CCE with several seeds, and write the chosen value(s) (a Pareto "
            "front for several objectives) with their spread and tests against CCE."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=handler)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The tune options and a flag for every run setting but the tuned ones."""
    from simloss.experiments.tune.settings import DEFAULT_RUNS, PRUNERS, SAMPLERS

    parser.add_argument("--out", required=True, help="the tune folder (created; reuse to resume)")
    parser.add_argument(
        "--param",
        choices=tuple(PARAMS),
        help="the parameter to tune (default: the dataset's, r or l)",
    )
    parser.add_argument(
        "--objective",
        action="append",
        required=True,
        metavar="val_METRIC",
        help="a validation metric to optimise (val_mae, val_acc, ...; its direction comes from "
        "the metric); repeat for a multi-objective tune (a Pareto front)",
    )
    parser.add_argument(
        "--budget",
        type=int,
        required=True,
        help="training epochs for the whole tune: CCE, search and confirmation",
    )
    parser.add_argument(
        "--range",
        dest="search_range",
        metavar="LOW:HIGH",
        help="the search range (default: the span of the dataset's paper grid, 0:0.9 for r, "
        "0:0.99 for l); it must contain CCE's value",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=DEFAULT_RUNS,
        help=f"seeds per confirmed value and for CCE (default {DEFAULT_RUNS}: the fewest with "
        "which the Wilcoxon test against CCE can reach p < 0.05)",
    )
    parser.add_argument(
        "--candidates",
        type=int,
        help="search results confirmed with --runs seeds (default: one per objective)",
    )
    parser.add_argument(
        "--sampler", choices=SAMPLERS, default="tpe", help="Optuna's TPE (default) or GP sampler"
    )
    parser.add_argument(
        "--pruner",
        choices=PRUNERS,
        help="median (default for one objective with tpe), halving, or none (the default with "
        "gp, which learns nothing from pruned runs; the only choice for several objectives)",
    )
    parser.add_argument("--sampler-seed", type=int, default=0, help="the sampler's seed (0)")
    add_engine_arguments(parser, what="tune", study="simloss-tune-DATASET")
    add_config_arguments(parser, exclude=(*PARAMS, "loss_param"))


def tune_from_args(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The base config and the keyword arguments of :func:`~simloss.experiments.tune.run_tune`."""
    from simloss.experiments.config import TrainConfig
    from simloss.experiments.tune.settings import parse_range

    base = TrainConfig.from_dict(settings_from_args(args))
    kwargs: dict[str, Any] = {
        "objectives": list(args.objective),
        "budget": args.budget,
        "param": args.param,
        "search_range": parse_range(args.search_range) if args.search_range else None,
        "runs": args.runs,
        "candidates": args.candidates,
        "sampler": args.sampler,
        "pruner": args.pruner,
        "sampler_seed": args.sampler_seed,
    }
    return base, kwargs


def handler(args: argparse.Namespace) -> int:
    """Run the tune; print its result and the result's folder; exit 0 when it is complete."""
    from simloss.experiments._outputs import check_output
    from simloss.experiments.tune import run_tune

    check_output(args.out, flag="--out", command="tune", own_kind="tune")
    base, kwargs = tune_from_args(args)
    result = run_tune(
        base,
        args.out,
        workers=args.workers,
        storage=args.storage,
        study_name=args.study_name,
        heartbeat_interval=args.heartbeat,
        status_lines=not sys.stderr.isatty(),
        **kwargs,
    )
    print(result.text())
    if not result.complete:
        reasons = result.notes if result.starved else (*result.missing, *result.notes)
        advice = "" if result.starved else "; rerun the same command to go on"
        raise RuntimeError(
            f"the tune did not finish ({'; '.join(reasons) or 'see the logs'}){advice}"
        )
    print(result.out_dir / "result")
    return 0
