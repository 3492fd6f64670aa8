"""Readers of class-knowledge files: class names, class values and hierarchies.

Each reader takes a path as a ``str`` or any ``os.PathLike`` and returns the
plain-Python forms the builders take (:mod:`simloss.similarity.values`,
:mod:`simloss.similarity.embeddings`, :mod:`simloss.similarity.hierarchy`).
Errors are one line of the form ``path:line: expected ..., but found ...``.
Blank lines and lines starting with ``#`` are skipped in every text format.

Formats:

* class names: one name per line (:func:`read_class_names`);
* class values: one ``value`` or one ``name value`` per line (:func:`read_class_values`);
* a hierarchy (:func:`read_hierarchy`): ``parent child`` lines (names, or
  integer ids translated by an ``id name`` file, as CIFAR-100's
  ``wordnet_parent_child.txt`` and ``wordnet_node_names.txt``), or a ``.json``
  file holding a parent map ``{"child": "parent"}``, a nested mapping
  ``{"root": {"child": ["leaf", ...]}}`` or a list of ``["parent", "child"]`` pairs;
* a class -> superclass table with ``fine_label`` and ``coarse_label``
  columns (:func:`read_fine_to_coarse`, CIFAR-100's ``fine_to_coarse.tsv``).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from simloss._json import parse_json
from simloss.similarity.hierarchy import hierarchy_edges, hierarchy_leaves

__all__ = [
    "HierarchyFile",
    "read_class_names",
    "read_class_values",
    "read_edge_list",
    "read_fine_to_coarse",
    "read_hierarchy",
    "read_node_names",
    "read_wordnet_hierarchy",
]

PathLike = str | os.PathLike[str]


class HierarchyFile(NamedTuple):
    """A hierarchy read from files: its edges and its classes in class order."""

    edges: list[tuple[str, str]]
    classes: list[str]


def read_class_names(path: PathLike, what: str = "class name") -> list[str]:
    """Read one class name per line (stripped), in file order; names must be unique.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "names.txt"
        >>> _ = path.write_text("# CIFAR-100\\napple\\naquarium_fish\\n\\nbaby\\n")
        >>> read_class_names(path)
        ['apple', 'aquarium_fish', 'baby']
    """
    names: list[str] = []
    first: dict[str, int] = {}
    for number, line in _lines(path, f"{what} file"):
        if line in first:
            raise ValueError(
                f"{path}:{number}: expected each {what} once, but found {line!r} again "
                f"(first on line {first[line]})"
            )
        first[line] = number
        names.append(line)
    if not names:
        raise ValueError(f"Expected at least one {what} in {path}, but found none")
    return names


def read_class_values(path: PathLike) -> tuple[list[str], list[float]]:
    """Read class values: every line ``value`` or every line ``name value``.

    Returns:
        ``(names, values)`` in file order; without names a class is named by
        its value as written.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "bins.txt"
        >>> _ = path.write_text("# age-bin centres\\nchild 5\\nteen 15\\nadult 40\\n")
        >>> read_class_values(path)
        (['child', 'teen', 'adult'], [5.0, 15.0, 40.0])
    """
    names: list[str] = []
    values: list[float] = []
    first: dict[str, int] = {}
    width: tuple[int, int] | None = None  # (fields per line, line it was set on)
    for number, line in _lines(path, "class value file"):
        parts = line.rsplit(maxsplit=1)
        if width is None:
            width = (len(parts), number)
        elif len(parts) != width[0]:
            raise ValueError(
                f"{path}:{number}: expected every line as `value` or every line as `name value`, "
                f"but found both forms (line {width[1]} has the other)"
            )
        try:
            value = float(parts[-1])
        except ValueError:
            raise ValueError(
                f"{path}:{number}: expected a number, but found {parts[-1]!r}"
            ) from None
        if not math.isfinite(value):
            raise ValueError(f"{path}:{number}: expected a finite number, but found {parts[-1]!r}")
        name = parts[0] if len(parts) == 2 else parts[-1]
        if name in first:
            raise ValueError(
                f"{path}:{number}: expected distinct class names, but found {name!r} again "
                f"(first on line {first[name]})"
            )
        first[name] = number
        names.append(name)
        values.append(value)
    if not values:
        raise ValueError(f"Expected at least one class value in {path}, but found none")
    return names, values


def read_hierarchy(path: PathLike, node_names: PathLike | None = None) -> HierarchyFile:
    """Read a class tree from an edge list or a JSON file, with its classes in class order.

    * ``.json``: a parent map, a nested mapping or a list of ``[parent, child]``
      pairs (see :mod:`simloss.similarity.hierarchy`); nodes are read as
      strings. Classes: the leaves in depth-first order.
    * otherwise ``parent child`` lines of node names (classes: the leaves in
      depth-first order), or of integer ids with ``node_names`` (an ``id
      name`` file; classes: the leaves ordered by id, see
      :func:`read_wordnet_hierarchy`).

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "tree.txt").write_text("entity animal\\nanimal cat\\nanimal dog\\nentity bus\\n")
        >>> read_hierarchy(folder / "tree.txt").classes
        ['cat', 'dog', 'bus']
        >>> _ = (folder / "tree.json").write_text('{"entity": {"animal": ["cat", "dog"], "bus": null}}')
        >>> read_hierarchy(folder / "tree.json").edges
        [('entity', 'animal'), ('animal', 'cat'), ('animal', 'dog'), ('entity', 'bus')]
    """
    file = Path(os.fspath(path))
    if file.suffix.lower() == ".json":
        if node_names is not None:
            raise ValueError(
                f"Expected `node_names` only with an edge list of ids, but found the JSON "
                f"hierarchy {file}"
            )
        edges = [(str(a), str(b)) for a, b in hierarchy_edges(_read_json_tree(file))]
        return HierarchyFile(edges, [str(n) for n in hierarchy_leaves(edges)])
    if node_names is not None:
        return read_wordnet_hierarchy(file, node_names)
    edges = read_edge_list(file)
    return HierarchyFile(edges, [str(n) for n in hierarchy_leaves(edges)])


def _read_json_tree(path: Path) -> Any:
    raw = _existing_file(path, "hierarchy").read_bytes()
    try:
        text = raw.decode("utf8").removeprefix("\ufeff")  # a byte-order mark is no text
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: expected UTF-8 text, but found byte {raw[exc.start]:#04x} at {exc.start}"
        ) from None
    data = parse_json(text, f"hierarchy {path}")
    if isinstance(data, dict):
        return _stringify(data)
    if isinstance(data, list):
        pairs = []
        for k, edge in enumerate(data):
            if not isinstance(edge, list) or len(edge) != 2:
                raise ValueError(
                    f"{path}: expected a list of [parent, child] pairs, but found {edge!r} at {k}"
                )
            pairs.append((_node_text(edge[0], path), _node_text(edge[1], path)))
        return pairs
    raise ValueError(
        f"{path}: expected a JSON object (parent map or nested mapping) or a list of "
        f"[parent, child] pairs, but found {type(data).__name__}"
    )


def _stringify(body: Any) -> Any:
    """JSON nodes as strings (integers become their text), keeping the tree's shape."""
    if isinstance(body, Mapping):
        return {str(k): _stringify(v) for k, v in body.items()}
    if isinstance(body, list):
        return [_stringify(v) for v in body]
    if isinstance(body, int) and not isinstance(body, bool):
        return str(body)
    return body  # str, None, or a kind the tree parser rejects by name


def _node_text(node: Any, path: Path) -> str:
    if isinstance(node, bool) or not isinstance(node, (str, int)):
        raise ValueError(f"{path}: expected nodes to be strings or integers, but found {node!r}")
    return str(node)


def read_node_names(path: PathLike) -> dict[int, str]:
    """Read ``id name`` lines (e.g. ``wordnet_node_names.txt``) into ``{id: name}``.

    Blank lines and lines starting with ``#`` are skipped; ids and names must be unique.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "names.txt"
        >>> _ = path.write_text("0 apple\\n1 aquarium_fish\\n100 entity\\n")
        >>> read_node_names(path)
        {0: 'apple', 1: 'aquarium_fish', 100: 'entity'}
    """
    names: dict[int, str] = {}
    seen: dict[str, int] = {}
    for number, line in _lines(path, "node name file"):
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not _is_int(parts[0]):
            raise ValueError(f"{path}:{number}: expected 'id name', but found {line!r}")
        node, name = int(parts[0]), parts[1].strip()
        if node in names:
            raise ValueError(f"{path}:{number}: expected unique ids, but found id {node} again")
        if name in seen:
            raise ValueError(
                f"{path}:{number}: expected unique names, but found {name!r} again "
                f"(first for id {seen[name]})"
            )
        names[node] = name
        seen[name] = node
    return names


def read_edge_list(
    path: PathLike, node_names: Mapping[int, str] | None = None
) -> list[tuple[str, str]]:
    """Read ``parent child`` lines (e.g. ``wordnet_parent_child.txt``) into an edge list.

    With ``node_names`` the two fields are integer ids translated to names;
    an id without a name is an error naming it and its line. Blank lines and
    lines starting with ``#`` are skipped.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "edges.txt"
        >>> _ = path.write_text("2 0\\n2 1\\n")
        >>> read_edge_list(path, {0: "oak", 1: "pine", 2: "tree"})
        [('tree', 'oak'), ('tree', 'pine')]
    """
    edges: list[tuple[str, str]] = []
    for number, line in _lines(path, "edge list"):
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}:{number}: expected 'parent child', but found {line!r}")
        if node_names is None:
            edges.append((parts[0], parts[1]))
            continue
        pair = []
        for part in parts:
            if not _is_int(part) or int(part) not in node_names:
                raise ValueError(
                    f"{path}:{number}: expected node ids listed in the node names, but found "
                    f"unknown node {part!r}"
                )
            pair.append(node_names[int(part)])
        edges.append((pair[0], pair[1]))
    return edges


def read_wordnet_hierarchy(edges_path: PathLike, names_path: PathLike) -> HierarchyFile:
    """Read an id-based tree (``parent child`` edges + ``id name`` lines) with its classes.

    The classes are the leaves, ordered by id: for CIFAR-100's
    ``wordnet_parent_child.txt`` and ``wordnet_node_names.txt`` these are
    ids 0..99, the fine classes in the standard label order.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "edges.txt").write_text("3 2\\n2 1\\n2 0\\n")
        >>> _ = (folder / "names.txt").write_text("0 oak\\n1 pine\\n2 tree\\n3 plant\\n")
        >>> read_wordnet_hierarchy(folder / "edges.txt", folder / "names.txt").classes
        ['oak', 'pine']
    """
    names = read_node_names(names_path)
    edges = read_edge_list(edges_path, names)
    by_name = {name: node for node, name in names.items()}
    leaves = sorted(hierarchy_leaves(edges), key=lambda n: by_name[str(n)])
    return HierarchyFile(edges, [str(n) for n in leaves])


def read_fine_to_coarse(path: PathLike) -> dict[str, str]:
    """Read a class -> superclass table (e.g. CIFAR-100's ``fine_to_coarse.tsv``).

    A tab-separated file with a header naming the columns ``fine_label`` and
    ``coarse_label``; an optional ``fine_index`` column gives the class order
    and must hold 0..C-1. Class names must be unique.

    Returns:
        ``{class: superclass}`` in class order.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "f2c.tsv"
        >>> _ = path.write_text("fine_index\\tfine_label\\tcoarse_label\\n"
        ...                     "1\\tpine\\ttrees\\n0\\toak\\ttrees\\n")
        >>> read_fine_to_coarse(path)
        {'oak': 'trees', 'pine': 'trees'}
    """
    with open(_existing_file(path, "superclass table"), newline="", encoding="utf8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        columns = reader.fieldnames or []
        for column in ("fine_label", "coarse_label"):
            if column not in columns:
                raise ValueError(
                    f"{path}: expected a header with columns 'fine_label' and 'coarse_label', "
                    f"but found {columns}"
                )
        rows = list(reader)
    result: list[tuple[int, str, str]] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=2):
        fine, coarse = (
            (row.get("fine_label") or "").strip(),
            (row.get("coarse_label") or "").strip(),
        )
        if not fine or not coarse:
            raise ValueError(f"{path}:{number}: expected a class and a superclass, but found {row}")
        if fine in seen:
            raise ValueError(f"{path}:{number}: expected unique classes, but found {fine!r} again")
        seen.add(fine)
        index = number - 2
        if "fine_index" in columns:
            text = (row.get("fine_index") or "").strip()
            if not _is_int(text):
                raise ValueError(
                    f"{path}:{number}: expected an integer fine_index, but found {text!r}"
                )
            index = int(text)
        result.append((index, fine, coarse))
    indices = sorted(i for i, _, _ in result)
    if indices != list(range(len(result))):
        raise ValueError(
            f"{path}: expected fine_index to hold 0..{len(result) - 1} once each, but found "
            f"{indices[:10]}{' ...' if len(indices) > 10 else ''}"
        )
    return {fine: coarse for _, fine, coarse in sorted(result)}


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _existing_file(path: PathLike, what: str) -> Path:
    """``path`` as a Path; a one-line error naming it (and ``what`` it is) if absent or a folder."""
    file = Path(os.fspath(path))
    if file.is_dir():
        raise IsADirectoryError(f"Expected {what} {file} to be a file, but it is a folder")
    if not file.exists():
        raise FileNotFoundError(f"{what[:1].upper()}{what[1:]} {file} does not exist")
    return file


def _lines(path: PathLike, what: str) -> Iterable[tuple[int, str]]:
    """``(line number, stripped text)`` of the non-blank, non-comment lines of a UTF-8 file
    (a leading byte-order mark dropped)."""
    with open(_existing_file(path, what), "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf8").removeprefix("\ufeff" if number == 1 else "").strip()
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"{path}:{number}: expected UTF-8 text, but found byte {raw[exc.start]:#04x}"
                ) from None
            if line and not line.startswith("#"):
                yield number, line
