"""``simloss sweep``: a grid sweep over r (or l) x runs that survives crashes and scales out."""

from __future__ import annotations

import argparse

__all__ = ["register"]

EXAMPLES = """\
examples:
  # the paper's grid (r = 0.0..0.9, 10 runs) on UTKFace, two local workers
  simloss sweep --dataset utkface --data-dir ~/data/UTKFace --out sweeps/utk --workers 2

  # a quick look: four values, three runs, few epochs, on the embedded Abalone
  simloss sweep --dataset abalone --grid r=0,0.3,0.6,0.9 --runs 3 --epochs 20 --out sweeps/ab

  # CIFAR-100 with class-name vectors, l = 0.0..0.9 and 0.99 by default
  simloss sweep --dataset cifar100 --data-dir ~/data/cifar-100-python \\
      --vectors glove100d_class_embeddings.npy --out sweeps/cifar

  # scale out: run the same command on every machine against one PostgreSQL
  simloss sweep --dataset utkface --data-dir /data/UTKFace --out sweeps/utk \\
      --storage postgresql://user:pass@dbhost/simloss

Rerunning a command resumes its sweep: finished trials are kept, the trials of
killed workers and failed trials are run again. A larger --grid or --runs adds
the new points. Watch a sweep live: optuna-dashboard sqlite:///OUT/study.db
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` subcommand."""
    parser = subparsers.add_parser(
        "sweep",
        help="run a grid sweep over r (or l) x runs, resumable, with several workers",
        description=(
            "Train one run per grid point x run index as the trials of an Optuna study. "
            "Resumable, safe against killed workers, shareable across machines."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=handler)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sweep options (shared with ``simloss demo``)."""
    parser.add_argument(
        "--dataset",
        required=True,
        choices=("utkface", "afad", "cifar100", "abalone"),
        help="the dataset",
    )
    parser.add_argument(
        "--data-dir", help="the dataset's folder (not needed for the embedded abalone)"
    )
    parser.add_argument("--out", required=True, help="the sweep folder (created; reuse to resume)")
    parser.add_argument(
        "--grid",
        help="values of r (or l for cifar100): 'r=START:STOP:STEP' (STOP included) or "
        "'r=V1,V2,...'; default: the paper's grid, r=0:0.9:0.1 or l=0:0.9:0.1 plus 0.99",
    )
    parser.add_argument("--runs", type=int, default=10, help="runs per grid value (default 10)")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads per worker (default: the cores divided among the workers)",
    )
    parser.add_argument(
        "--storage",
        help="an Optuna storage URL shared by several machines (default: OUT/study.db, SQLite)",
    )
    parser.add_argument("--study-name", help="the study's name (default: simloss-DATASET)")
    parser.add_argument("--epochs", type=int, help="most epochs per run (default: the paper's)")
    parser.add_argument("--patience", type=int, help="early-stopping patience (default: paper's)")
    parser.add_argument(
        "--limit", type=int, help="use a random subset of at most this many examples"
    )
    parser.add_argument("--seed", type=int, default=0, help="base seed; run i uses seed + i")
    parser.add_argument("--vectors", help="class-name vectors (.npy) for cifar100")
    parser.add_argument("--cache-dir", help="where decoded images are cached")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    parser.add_argument(
        "--heartbeat",
        type=int,
        help="seconds between heartbeats of a running trial; one silent for 3x this long "
        "is rerun (set when the sweep is created; default 10)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def handler(args: argparse.Namespace) -> int:
    """Run the sweep; exit code 0 when every point finished."""
    from simloss.experiments.config import TrainConfig
    from simloss.experiments.sweep import Grid, default_grid, run_sweep

    if args.runs < 1:
        raise ValueError(f"Expected --runs >= 1, but found {args.runs}")
    grid = (
        Grid.parse(args.grid, runs=args.runs)
        if args.grid
        else default_grid(args.dataset, runs=args.runs)
    )
    base = TrainConfig(
        dataset=args.dataset,
        data_dir=args.data_dir,
        cache_dir=args.cache_dir,
        vectors=args.vectors,
        epochs=args.epochs,
        patience=args.patience,
        limit=args.limit,
        seed=args.seed,
        device=args.device,
    )
    result = run_sweep(
        base,
        grid,
        args.out,
        workers=args.workers,
        threads=args.threads,
        storage=args.storage,
        study_name=args.study_name,
        progress=not args.no_progress,
        heartbeat_interval=args.heartbeat,
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
