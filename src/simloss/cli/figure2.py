"""``simloss figure2``: the paper's Figure 2 from the authors' published UTKFace models."""

from __future__ import annotations

import argparse

EXTRA = "experiments"

__all__ = ["register"]

EXAMPLES = """\
examples:
  # all images of a UTKFace folder, as in the paper's Figure 2
  simloss figure2 --checkpoints data/simloss_checkpoints --data-dir data/utkface/crop_part1

  # a quick look on 500 random images, into figures/fig2
  simloss figure2 --checkpoints data/simloss_checkpoints --data-dir data/utkface/crop_part1 \\
      --limit 500 --out figures/fig2

  # only our held-out test split, and age 40 in panel (b)
  simloss figure2 --checkpoints ckpts --data-dir UTKFace --split test --target 40

Checkpoints are the files model_<r>_<run>.p (PyTorch state dicts of the paper's
age CNN, 90 ages). Images are resized to 60 x 60 and scaled to [0, 1] as in the
authors' code. Writes figure2.png/.pdf, figure2.md (Acc/MAE/MSE per model beside
the paper's Table 1), figure2_metrics.csv and figure2.json.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``figure2`` subcommand."""
    parser = subparsers.add_parser(
        "figure2",
        help="the paper's Figure 2 (mean predicted distributions) from published checkpoints",
        description=(
            "Evaluate the paper authors' published UTKFace models on a UTKFace folder with "
            "simloss's data pipeline, draw Figure 2 (a) and (b) and tabulate Acc/MAE/MSE."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--checkpoints", required=True, help="folder of model_<r>_<run>.p state dicts"
    )
    parser.add_argument("--data-dir", required=True, help="a UTKFace image folder")
    parser.add_argument("--out", default="figure2", help="output folder (default: ./figure2)")
    parser.add_argument(
        "--split",
        default="all",
        choices=("all", "train", "val", "test"),
        help="which images: all (the paper's figure, default) or one of our 60/20/20 splits",
    )
    parser.add_argument("--limit", type=int, help="use a random subset of this many images")
    parser.add_argument(
        "--split-seed", type=int, default=0, help="seed of the split and the subset (default 0)"
    )
    parser.add_argument(
        "--target", type=float, default=30.0, help="the age of panel (b), 1..90 (default 30)"
    )
    parser.add_argument("--cache-dir", help="where decoded images are cached")
    parser.add_argument("--batch-size", type=int, default=512, help="images per forward pass")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--quiet", action="store_true", help="do not print the metrics table")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Evaluate the checkpoints, write the figure and the table; print the table."""
    from simloss.experiments.report.checkpoints import (
        check_figure2_arguments,
        evaluate_checkpoints,
        write_figure2,
    )

    where = (args.checkpoints, args.data_dir)
    how = {
        "split": args.split,
        "limit": args.limit,
        "batch_size": args.batch_size,
        "device": args.device,
    }
    check_figure2_arguments(*where, target=args.target, **how)  # before any work
    from simloss.experiments._outputs import check_output

    check_output(args.out, flag="--out", command="figure2")
    results, class_values, info = evaluate_checkpoints(
        *where, split_seed=args.split_seed, cache_dir=args.cache_dir, **how
    )
    path = write_figure2(results, class_values, args.out, target=args.target, info=info)
    if not args.quiet:
        print(path.read_text(encoding="utf-8"))
    print(f"figure 2 written to {path.parent}")
    return 0
