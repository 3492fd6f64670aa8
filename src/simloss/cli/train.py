"""``simloss train``: one training run written as a JSON record.

Example::

    simloss train --dataset utkface --data-dir crop_part1 --r 0.3 --seed 0 --out runs/utk
    simloss train --dataset cifar100 --data-dir data/ --l 0.9 \\
        --vectors glove100d_class_embeddings.npy --out runs/cifar
    simloss train --out runs/abalone --r 0.5          # the embedded Abalone data
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

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
    add = parser.add_argument
    add("--config", type=Path, help="JSON file of TrainConfig settings; flags override it")
    add("--out", type=Path, required=True, help="output folder of the run (new or empty)")
    add(
        "--overwrite",
        action="store_true",
        help="replace the finished run in --out once the new run has finished",
    )
    add("--dataset", choices=["abalone", "utkface", "afad", "cifar100"])
    add("--data-dir", help="dataset folder (not needed for the embedded abalone)")
    add("--cache-dir", help="cache of decoded images (default ~/.cache/simloss)")
    add("--similarity", choices=["order", "embeddings", "identity"])
    add("--r", type=float, help="class-order reduction factor in [0, 1)")
    add("--l", type=float, help="lower bound in [0, 1) for class-name similarity")
    add("--vectors", help=".npy of class-name vectors (rows in label order)")
    add("--model", choices=["mlp", "age_cnn", "lenet"])
    add("--epochs", type=int, help="most epochs")
    add("--patience", type=int, help="epochs without improvement before stopping")
    add("--monitor", choices=["acc", "mae", "mse", "sa", "fsa", "loss"])
    add("--lr", type=float, help="Adam learning rate (default 1e-3)")
    add("--batch-size", type=int)
    add("--seed", type=int, help="training seed (default 0)")
    add("--split-seed", type=int, help="split seed (default 0)")
    add("--val-fraction", type=float)
    add("--test-fraction", type=float)
    add("--min-age", type=int)
    add("--max-age", type=int)
    add("--cifar-classes", choices=["all", "paper96"])
    add("--limit", type=int, help="use a random subset of at most this many examples")
    add("--skip-unreadable", action="store_true", default=None, help="skip undecodable images")
    add("--download", action="store_true", default=None, help="download CIFAR-100 if absent")
    add(
        "--no-channels-last",
        dest="channels_last",
        action="store_false",
        default=None,
        help="keep image tensors in the contiguous (NCHW) memory format",
    )
    add(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=None,
        help="no progress bars",
    )
    add("--device", help="auto (default), cpu or cuda[:N]")
    add("--num-threads", type=int, help="torch CPU threads")


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


_NOT_CONFIG = {"config", "out", "overwrite", "func", "command"}


def config_from_args(args: argparse.Namespace) -> Any:
    """A :class:`TrainConfig` from ``--config`` (if any) overridden by the given flags."""
    from simloss.experiments.config import TrainConfig

    settings: dict[str, Any] = {}
    if args.config is not None:
        path = Path(args.config)
        if not path.is_file():
            raise FileNotFoundError(f"Config file {path} does not exist")
        try:
            settings = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"Could not parse config file {path} as JSON: {exc}") from exc
        if not isinstance(settings, dict):
            raise ValueError(
                f"Expected a JSON object in {path}, but found {type(settings).__name__}"
            )
    for key, value in vars(args).items():
        if key not in _NOT_CONFIG and value is not None:
            settings[key] = value
    return TrainConfig.from_dict(settings)


def _handle(args: argparse.Namespace) -> int:
    from simloss.experiments.train import run_training

    config = config_from_args(args)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    record = run_training(config, args.out, overwrite=args.overwrite)
    test = ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
        for k, v in record["metrics"]["test"].items()
    )
    print(
        f"{Path(args.out) / 'record.json'}: best epoch {record['best_epoch']} of "
        f"{record['epochs_run']}, test {test}, {record['wall_time_s']:.1f} s"
    )
    return 0
