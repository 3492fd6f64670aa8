"""``simloss task``: declare a task from flags, and check what simloss reads from one.

``simloss task new`` writes a task file (TOML) from flags: the same settings
a file holds, so a table, an image folder or an arrays file becomes a task
every command takes with ``--task FILE``. ``simloss task check`` reads a task
as a run would (data, classes, split, features) and prints what it found, or
the one-line error a run would stop with.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]

EXAMPLES = """\
examples:
  # a CSV of wine ratings (UCI's: fields separated by ';'): numeric ratings ordered by value
  simloss task new --table winequality-red.csv --delimiter ';' --label quality --out wine.toml
  # text grades need their order
  simloss task new --table grades.csv --label grade --order low,medium,high --out grades.toml
  # a folder of graded X-rays, one sub-folder per grade, resized to 128 x 128 grey
  simloss task new --images xrays/ --size 128 --grey --out xrays.toml
  # embeddings of any backbone: X (N, F), y (N,) and optionally split in an .npz
  simloss task new --arrays embeddings.npz --out emb.toml

  simloss task check wine.toml       # rows, classes per split, features, similarity
  simloss train --task wine.toml --r 0.5 --out runs/wine
  simloss sweep --task wine.toml --grid r=0:0.9:0.1 --runs 5 --out sweeps/wine

The file is the declaration; edit it for what the flags do not cover (declared
category levels, class values and names, a hierarchy, a factory, run defaults
under [train]): docs/your-data.md lists every key.
"""


def register(subparsers: Any) -> None:
    """Add the ``task`` subcommand."""
    parser = subparsers.add_parser(
        "task",
        help="declare your own data as a task (new) and check what simloss reads (check)",
        description=("Write a task file from flags, or check one: what a run would read from it."),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    new = actions.add_parser("new", help="write a task file (TOML) from flags, then check it")
    source = new.add_mutually_exclusive_group(required=True)
    source.add_argument("--table", type=Path, help="a CSV/TSV (or Parquet) file with a header row")
    source.add_argument(
        "--images",
        type=Path,
        help="a folder of one sub-folder per class, or a CSV manifest path,label",
    )
    source.add_argument(
        "--arrays", type=Path, help="an .npz file with X (N, F), y (N,) and optionally split"
    )
    new.add_argument(
        "--out", type=Path, required=True, help="the task file to write (.toml; must not exist)"
    )
    new.add_argument(
        "--name", help="the task's name in records and reports (default: the file's stem)"
    )
    new.add_argument("--label", help="the label column of a table")
    new.add_argument(
        "--order",
        help="the classes in order, comma-separated (needed for text labels of ordered classes)",
    )
    new.add_argument(
        "--unordered",
        action="store_true",
        help="the classes have no order (similarity identity unless declared)",
    )
    new.add_argument(
        "--delimiter",
        help="a table's field separator, one character (';' for the UCI wine files; '\\t' "
        "for tab; default: tab for .tsv/.tab, else comma)",
    )
    new.add_argument("--split-column", help="a column holding train/val/test per row")
    new.add_argument("--size", type=int, help="images: the side they are resized to")
    new.add_argument("--grey", action="store_true", help="images: one grey channel instead of RGB")
    new.set_defaults(func=_new)
    check = actions.add_parser("check", help="read a task as a run would and print what it found")
    check.add_argument("task", type=Path, help="a task file (.toml or .json)")
    check.add_argument(
        "--data-dir", help="the data, overriding the file's path (as --data-dir of a run)"
    )
    check.set_defaults(func=_check)


def _toml_value(value: Any) -> str:
    """A TOML value of a string, number, bool or list (JSON's syntax is TOML's for these)."""
    return json.dumps(value)


def _declaration(args: argparse.Namespace) -> dict[str, dict[str, Any] | str]:
    out = Path(args.out)
    data: dict[str, Any]
    if args.table is not None:
        if args.label is None:
            raise ValueError("Expected --label (the label column) with --table, but found none")
        data = {"kind": "table", "path": str(args.table), "label": args.label}
        if args.delimiter is not None:
            data["delimiter"] = _delimiter(args.delimiter)
        if args.split_column:
            data["split_column"] = args.split_column
    elif args.images is not None:
        if args.size is None:
            raise ValueError(
                "Expected --size (the side images are resized to) with --images, but found none"
            )
        if not 4 <= args.size <= 4096:
            raise ValueError(f"Expected --size in [4, 4096] (pixels), but found {args.size}")
        data = {"kind": "images", "path": str(args.images), "size": args.size}
        if args.grey:
            data["channels"] = "grey"
        if args.split_column:
            data["split_column"] = args.split_column
    else:
        data = {"kind": "arrays", "path": str(args.arrays)}
    for flag, needs, given in (
        ("--label", "--table", args.table is None and args.label),
        ("--delimiter", "--table", args.table is None and args.delimiter is not None),
        ("--size", "--images", args.images is None and args.size),
    ):
        if given:
            raise ValueError(f"Expected {flag} only with {needs}, but found it with another source")
    classes: dict[str, Any] = {}
    if args.order:
        items = [v.strip() for v in args.order.split(",")]
        if all(_is_number(v) for v in items):
            classes["order"] = [float(v) if "." in v or "e" in v.lower() else int(v) for v in items]
        else:
            classes["order"] = items
    if args.unordered:
        classes["ordered"] = False
    return {"name": _task_name(args.name, out), "data": data, "classes": classes}


def _task_name(given: str | None, out: Path) -> str:
    """``--name``, else the ``--out`` file's stem, checked as a task's name is."""
    from simloss.experiments.task import BUILTIN_TASKS, is_task_name

    name = given if given is not None else out.stem
    what = "--name" if given is not None else f"the name of --out {out} (its stem; or give --name)"
    if not is_task_name(name):
        raise ValueError(
            f"Expected {what} to be a task name of letters, digits and _.+- (used in records "
            f"and reports), but found {name!r}"
        )
    if name.casefold() in {n.casefold() for n in BUILTIN_TASKS}:
        raise ValueError(
            f"Expected {what} to be other than a built-in dataset's {list(BUILTIN_TASKS)}, but "
            f"found {name!r}"
        )
    return name


def _delimiter(text: str) -> str:
    """The ``--delimiter`` character (``\\t`` or ``tab``: a tab)."""
    value = "\t" if text in ("\\t", "tab") else text
    if len(value) != 1 or value in ('"', "\n", "\r"):
        raise ValueError(
            f"Expected --delimiter to be one character (e.g. ';', or '\\t' for tab), but found "
            f"{text!r}"
        )
    return value


def _is_number(text: str) -> bool:
    from simloss.experiments.data.classes import is_number_text

    return is_number_text(text)


def _write_toml(declaration: dict[str, Any]) -> str:
    lines = [f"name = {_toml_value(declaration['name'])}", ""]
    for table in ("data", "classes"):
        values = declaration[table]
        if not values and table != "data":
            continue
        lines.append(f"[{table}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    return "\n".join(lines)


def _new(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".toml":
        raise ValueError(f"Expected --out to end in .toml, but found {str(out)!r}")
    if out.exists():
        raise FileExistsError(f"Expected --out {out} to be a new file, but it exists")
    folder = out.parent
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Expected the folder of --out {out} to exist, but {folder} "
            + ("is a file" if folder.exists() else "does not")
        )
    from simloss.experiments._outputs import check_output

    check_output(out, flag="--out", command="task")
    declaration = _declaration(args)
    # Paths are written relative to the task file's folder when they lie below it.
    data = declaration["data"]
    if not isinstance(data, dict):  # pragma: no cover (built above)
        raise TypeError("a task's data is a table")
    path = Path(data["path"]).resolve()
    folder = out.resolve().parent
    data["path"] = str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)
    text = _write_toml(declaration)
    # Written where it belongs and read as a run reads it, so every message names --out;
    # removed again unless the declaration and its data read.
    try:
        with open(out, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise FileExistsError(f"Expected --out {out} to be a new file, but it exists") from None
    try:
        summary = _summary(out, None)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    print(text)
    print(summary)
    print(f"wrote {out}")
    return 0


def _check(args: argparse.Namespace) -> int:
    print(_summary(Path(args.task), args.data_dir))
    return 0


def _summary(path: Path, data_dir: str | None) -> str:
    """What a run reads from a task: one paragraph of counts."""
    import numpy as np

    from simloss.experiments.config import TrainConfig
    from simloss.experiments.data import load_data

    config = TrainConfig(task=str(path), data_dir=data_dir)
    task = config.task_spec
    data = load_data(config)
    resolved = config.resolve()
    counts = [
        np.bincount(s.targets.numpy(), minlength=data.num_classes)
        for s in (data.train, data.val, data.test)
    ]
    names = data.class_names or [f"{v:g}" for v in data.class_values]
    lines = [
        f"task {task.name!r} ({task.data.kind}, {path}): {sum(len(s) for s in (data.train, data.val, data.test))} examples, "
        f"train/val/test {len(data.train)}/{len(data.val)}/{len(data.test)}",
        f"inputs {tuple(data.input_shape)}"
        + (f": {', '.join(map(str, data.feature_names))}" if data.feature_names else ""),
        f"{data.num_classes} {'ordered' if data.ordinal else 'unordered'} classes (name value: train/val/test):",
    ]
    lines += [
        f"  {name} {value:g}: {a}/{b}/{c}"
        for name, value, a, b, c in zip(names, data.class_values, *counts, strict=True)
    ]
    param = task.param
    lines.append(
        f"similarity {task.similarity.kind}"
        + (f", swept over {param} = {', '.join(f'{v:g}' for v in task.grid)}" if param else "")
        + f"; model {resolved.model or data.model or 'by input'}; epochs {resolved.epochs}, "
        f"patience {resolved.patience} on {resolved.monitor}, batch {resolved.batch_size}"
    )
    if data.info:
        lines.append("read: " + ", ".join(f"{k} {v}" for k, v in data.info.items()))
    return "\n".join(lines)
