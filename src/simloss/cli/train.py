"""``simloss train``: one training run written as a JSON record.

Example::

    simloss train --dataset utkface --data-dir crop_part1 --r 0.3 --seed 0 --out runs/utk
    simloss train --dataset cifar100 --data-dir data/ --l 0.9 \\
        --vectors glove100d_class_embeddings.npy --out runs/cifar
    simloss train --out runs/abalone --r 0.5          # the embedded Abalone data
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from simloss.cli._settings import add_config_arguments, config_from_args

EXTRA = "experiments"

__all__ = ["register"]

_DESCRIPTION = """\
Train one model (the paper's setup: Adam, lr 1e-3, early stopping on a validation
metric, best epoch kept) and write OUT/record.json, OUT/model.pt and OUT/config.json.
OUT must be new or empty (--overwrite replaces a finished run, once the new one has
finished); the run is built in a hidden sibling folder and moved to OUT at the end,
so a failed, diverged or killed run leaves nothing at OUT.
Options left out take the dataset's defaults (see docs/experiments.md). The
similarity is the class order when --r is given, class-name vectors when --l is
given (with --vectors), else the identity (plain cross-entropy).
"""


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder of the run (new or empty)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the finished run in --out once the new run has finished",
    )
    add_config_arguments(parser)


def register(subparsers: Any) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="train one model and write a JSON record",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _options(parser)
    parser.set_defaults(func=_handle)


def _shown(metric: str, value: Any) -> str:
    """A test metric as reports show it: its label, accuracy-type ones in percent."""
    from simloss.experiments.specs import metric_spec

    spec = metric_spec(metric)
    if spec is None or not isinstance(value, float):
        return f"{metric} {value}"
    return f"{spec.header()} {value * spec.scale():.4g}"


def _handle(args: argparse.Namespace) -> int:
    from simloss.experiments._outputs import check_output
    from simloss.experiments._runtime import resolve_device
    from simloss.experiments.train import run_training

    check_output(args.out, flag="--out", command="train", own_kind="run")
    config = config_from_args(args)
    resolve_device(config.device)  # before any work
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    record = run_training(config, args.out, overwrite=args.overwrite)
    test = ", ".join(_shown(k, v) for k, v in record["metrics"]["test"].items())
    print(
        f"{Path(args.out) / 'record.json'}: best epoch {record['best_epoch']} of "
        f"{record['epochs_run']}, test {test}, {record['wall_time_s']:.1f} s"
    )
    return 0
