"""``simloss sweep``: a grid sweep over a loss's parameter x runs that survives crashes and scales out."""

from __future__ import annotations

import argparse
from typing import Any

from simloss.cli._settings import add_config_arguments, add_engine_arguments, settings_from_args
from simloss.experiments.specs import DEFAULT_RUNS, PARAMS

EXTRA = "experiments"

__all__ = ["register"]

EXAMPLES = """\
examples:
  # the paper's grid (r = 0.0..0.9, 10 runs) on UTKFace, two local workers
  simloss sweep --dataset utkface --data-dir ~/data/UTKFace --out sweeps/utk --workers 2

  # a quick look: four values, three runs, few epochs, on the embedded Abalone
  simloss sweep --dataset abalone --grid r=0,0.3,0.6,0.9 --runs 3 --epochs 20 --out sweeps/ab

  # CIFAR-100 as in the paper: its 96 classes, class-name vectors, l = 0.0..0.9 and 0.99
  simloss sweep --dataset cifar100 --data-dir ~/data/cifar-100-python --cifar-classes paper96 \\
      --vectors glove100d_class_embeddings.npy --out sweeps/cifar

  # SimLoss's peers into the same folder: one table, one set of Wilcoxon tests against CE
  simloss sweep --dataset abalone --loss ce --runs 6 --out sweeps/ab
  simloss sweep --dataset abalone --loss sord --grid alpha=0.5,1,2 --runs 6 --out sweeps/ab
  simloss sweep --dataset abalone --loss corn --runs 6 --out sweeps/ab

  # any run setting is a flag (as for simloss train), or comes from a JSON file
  simloss sweep --config base.json --lr 3e-4 --batch-size 256 --split-seed 1 --out sweeps/x

  # scale out: run the same command on every machine against one PostgreSQL
  simloss sweep --dataset utkface --data-dir /data/UTKFace --out sweeps/utk \\
      --storage postgresql://user:pass@dbhost/simloss

Rerunning a command resumes its sweep: finished trials are kept, the trials of
killed workers and failed trials are run again. A larger --grid or --runs adds
the new points; another --loss adds that loss's points to the same study (every
other setting must stay the same). Watch a sweep live: optuna-dashboard sqlite:///OUT/study.db
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` subcommand."""
    parser = subparsers.add_parser(
        "sweep",
        help="run a grid sweep over a loss's parameter (r, l, ...) x runs, resumable, with workers",
        description=(
            "Train one run per grid point x run index as the trials of an Optuna study. "
            "Resumable, safe against killed workers, shareable across machines."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=handler)


def add_arguments(
    parser: argparse.ArgumentParser, *, defaults: dict[str, Any] | None = None
) -> None:
    """The sweep options and a flag for every run setting but the swept one."""
    parser.add_argument("--out", required=True, help="the sweep folder (created; reuse to resume)")
    from simloss.experiments.specs import LOSSES

    shared = " or ".join(n for n, s in LOSSES.items() if s.uses_similarity)
    without = ", ".join(n for n, s in LOSSES.items() if s.param is None and not s.uses_similarity)
    parser.add_argument(
        "--grid",
        help="values of the loss's parameter: 'r=START:STOP:STEP' (STOP included) or "
        f"'r=V1,V2,...' (r, or l for a task of class-name similarity, with --loss {shared}; "
        "the loss's own otherwise, e.g. --loss sord --grid alpha=0.5,1,2; none for "
        f"{without}); default: the task's grid (the paper's r=0:0.9:0.1, or l=0:0.9:0.1 "
        "plus 0.99), or the loss's (docs/losses.md)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=DEFAULT_RUNS,
        help=f"runs per grid value (default {DEFAULT_RUNS})",
    )
    add_engine_arguments(parser, what="sweep", study="simloss-DATASET")
    add_config_arguments(parser, exclude=(*PARAMS, "loss_param"), defaults=defaults)


def sweep_from_args(
    args: argparse.Namespace, default_text: str | None = None, *, loss: str | None = None
) -> tuple[Any, Any]:
    """The base config and the grid of a sweep command.

    The loss is ``loss``, else ``--loss``, else ``simloss``. The grid is ``--grid`` (else
    ``default_text``, else the loss's default grid for the dataset) with
    ``--runs``; a loss without a parameter takes no ``--grid``. The base config
    holds every other setting, and the grid's first value as its swept
    parameter (each trial replaces it).
    """
    from simloss.experiments.config import TrainConfig
    from simloss.experiments.loss_catalog import stored_loss
    from simloss.experiments.specs import swept_param
    from simloss.experiments.sweep import Grid, default_grid

    if args.runs < 1:
        raise ValueError(f"Expected --runs >= 1, but found {args.runs}")
    settings = settings_from_args(args)
    task = _task_of(settings)
    loss = loss or stored_loss(settings.get("loss"))
    swept = swept_param(task, loss)
    text = args.grid or default_text
    if text and swept is None:
        raise ValueError(
            f"Expected no --grid for loss {loss!r} (it has no parameter), but found {text!r}"
        )
    if text:
        grid = Grid.parse(text, runs=args.runs, loss=loss)
    else:
        grid = default_grid(task, runs=args.runs, loss=loss)
    grid.check_task(task)
    first = {} if swept is None else {swept.field: grid.values[0]}
    base = TrainConfig.from_dict({**settings, "loss": loss, **first})
    return base, grid


def _terminal() -> bool:
    """Whether stderr is a terminal (else a long command prints status lines, not a bar)."""
    import sys

    return bool(sys.stderr is not None and sys.stderr.isatty())


def _task_of(settings: dict[str, Any]) -> Any:
    """The task the settings name (a built-in dataset, or a task file)."""
    from simloss.experiments.task import get_task

    return get_task(settings.get("dataset"), settings.get("task"))


def handler(args: argparse.Namespace) -> int:
    """Run the sweep; exit code 0 when every point finished."""
    from simloss.experiments._outputs import check_output
    from simloss.experiments.sweep import run_sweep

    check_output(args.out, flag="--out", command="sweep", own_kind="sweep")
    base, grid = sweep_from_args(args)
    result = run_sweep(
        base,
        grid,
        args.out,
        workers=args.workers,
        storage=args.storage,
        study_name=args.study_name,
        heartbeat_interval=args.heartbeat,
        status_lines=not _terminal(),
    )
    print(result.summary())
    print(result.out_dir)
    if not result.ok:
        raise RuntimeError(
            f"{result.total - result.finished} of {result.total} trials did not finish "
            f"({len(result.failed)} failed, {len(result.missing)} missing); rerun the same "
            "command to retry them"
        )
    return 0
