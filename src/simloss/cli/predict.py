"""``simloss predict``: apply a finished run to new images, table rows or feature arrays."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]

EXAMPLES = """\
examples:
  # ages of new face images with a UTKFace run (any size; resized as in training)
  simloss predict --run runs/utk-r0.3 face1.jpg face2.png
  simloss predict --run runs/xray-grades new_scans/          # every image below a folder

  # ring counts of Abalone rows (abalone.data format; a trailing ring count is ignored)
  simloss predict --run runs/abalone rows.csv --out predictions.csv

  # a table task: rows with the training table's columns (the label column may be absent)
  simloss predict --run runs/wine new_wines.csv

  # a feature-array task: X of a .npy file or of an .npz file
  simloss predict --run runs/emb new_embeddings.npy

  # the class of least expected cost under 1 - S of the run's similarity, or a cost file
  simloss predict --run runs/utk-r0.3 --decoder min_risk face1.jpg
  simloss predict --run runs/utk-ce --decoder min_risk --cost age_cost.npy face1.jpg

Output: CSV with the columns input, class, value, name, probability: the decoded
class (--decoder: argmax, the class of highest probability, by default; median;
min_risk, argmin_k sum_c p_c cost[k, c] with --cost a (C, C) matrix in a .npy or
.csv file, rows by decision, or 1 - S of the run's similarity), the value it stands for (age in years,
ring count, the class value), its name and its probability. The run's record.json
stores the preprocessing (resize, channels, table encoding, mean and standard
deviation of the training split), so inputs are prepared as the training inputs were.
"""


def register(subparsers: Any) -> None:
    """Add the ``predict`` subcommand."""
    parser = subparsers.add_parser(
        "predict",
        help="predict classes and values of new images, table rows or feature arrays with a run",
        description=(
            "Load a run written by `simloss train` (model.pt and record.json) and print the "
            "predicted class and value of every input: image files or folders for image runs, "
            "files of table rows for table runs (Abalone rows in the abalone.data format), "
            ".npy/.npz feature arrays for feature runs."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run", required=True, type=Path, help="a finished run folder")
    parser.add_argument(
        "inputs",
        nargs="+",
        type=Path,
        metavar="INPUT",
        help="image files or folders, table files, or .npy/.npz feature files",
    )
    parser.add_argument("--out", type=Path, help="also write the CSV to this file")
    parser.add_argument("--batch-size", type=int, default=256, help="inputs per forward pass")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda[:N] or auto")
    parser.add_argument(
        "--decoder",
        default="argmax",
        choices=("argmax", "median", "min_risk"),
        help="how the class is read from the predicted distribution (default: argmax)",
    )
    parser.add_argument(
        "--cost",
        type=Path,
        help="min_risk's cost: a (C, C) matrix in a .npy or comma-separated .csv file, rows by "
        "decision, columns by true class "
        "(default: 1 - S of the run's similarity)",
    )
    parser.set_defaults(func=_handle)


def _handle(args: argparse.Namespace) -> int:
    from simloss.experiments.predict import (
        load_run,
        predict_features,
        predict_images,
        predict_rows,
        predictions_csv,
        write_predictions,
    )

    if args.batch_size < 1:
        raise ValueError(f"Expected --batch-size >= 1, but found {args.batch_size}")
    if args.out is not None and Path(args.out).is_dir():
        raise IsADirectoryError(f"Expected --out {args.out} to be a CSV file, but it is a folder")
    if args.out is not None:
        from simloss.experiments._outputs import check_output

        check_output(args.out, flag="--out", command="predict")
    if args.cost is not None and args.decoder != "min_risk":
        raise ValueError(f"Expected --cost only with --decoder min_risk, but found {args.decoder}")
    cost = None if args.cost is None else _read_cost(args.cost)
    run = load_run(args.run, device=args.device)
    classes = len(run.class_values)
    if cost is not None and tuple(cost.shape) != (classes, classes):
        raise ValueError(
            f"Expected --cost {args.cost} of shape ({classes}, {classes}) (one row and column "
            f"per class of {args.run}), but found shape {tuple(cost.shape)}"
        )
    options = {"batch_size": args.batch_size, "decoder": args.decoder, "cost": cost}
    if run.preprocessing.kind == "image":
        predictions = predict_images(run, args.inputs, **options)
    else:
        one = predict_features if run.preprocessing.kind == "features" else predict_rows
        if one is predict_features and run.preprocessing.feature_names is not None:
            from simloss.experiments.data.abalone import ABALONE_FEATURES

            if run.preprocessing.feature_names == ABALONE_FEATURES:
                one = predict_rows  # an Abalone run whose preprocessing is of kind features
        predictions = [p for path in args.inputs for p in one(run, path, **options)]
    if args.out is not None:  # first, so that a failed write prints no results
        write_predictions(predictions, args.out)
    print(predictions_csv(predictions), end="")
    return 0


def _read_cost(path: Path) -> Any:
    """The (C, C) matrix of a ``--cost`` file: a ``.npy`` array or a ``.csv`` of numbers."""
    import numpy as np

    from simloss.metrics._checks import check_cost

    expected = "a (C, C) cost matrix in a .npy file or a comma-separated .csv file"
    if not path.exists():
        raise FileNotFoundError(f"Expected --cost {path} to be {expected}, but it does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"Expected --cost {path} to be {expected}, but it is a folder")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise ValueError(f"Expected --cost {path} to be {expected}, but found a {suffix!r} file")
    if path.stat().st_size == 0:
        raise ValueError(f"Expected --cost {path} to be {expected}, but the file is empty")
    if suffix == ".csv":
        try:
            matrix = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
        except (OSError, ValueError) as exc:
            found = " ".join(str(exc).split(";")[0].split())[:160]  # not NumPy's usecols hint
            raise ValueError(f"Expected --cost {path} to hold numbers only, but: {found}") from None
    else:
        with open(path, "rb") as handle:
            if handle.read(6) != b"\x93NUMPY":
                raise ValueError(
                    f"Expected --cost {path} to be {expected}, but it is not a .npy file "
                    "(no NumPy header)"
                )
        try:
            matrix = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            found = " ".join(str(exc).split())[:160]
            raise ValueError(f"Expected --cost {path} to be {expected}, but: {found}") from None
    try:
        return check_cost(matrix)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{exc} (--cost {path})") from None
