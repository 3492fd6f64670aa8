"""Similarity from a class hierarchy: depth of the lowest common ancestor, or superclasses.

A hierarchy is given in one of three plain-Python forms (nodes are ``str``
or ``int``):

* a **parent map** ``{child: parent}``; a root maps to ``None`` or appears
  only as a parent;
* an **edge list** ``[(parent, child), ...]``;
* a **nested mapping** ``{root: {child: {grandchild: None, ...}, ...}}``,
  where a node's value is a mapping of its children, a list of its leaf
  children, or ``None`` / ``{}`` for a leaf.

It must be a tree: one root, every other node with exactly one parent, no
cycle. Errors name the offending nodes. This module is the tree maths only;
:mod:`simloss.similarity.readers` turns files (edge lists, JSON trees,
CIFAR-100's WordNet tree and superclass table) into these forms.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from simloss._numbers import is_int, is_real

__all__ = [
    "Node",
    "depth_first_order",
    "from_hierarchy",
    "from_superclasses",
    "hierarchy_edges",
    "hierarchy_leaves",
]

Node = str | int
# Element budget of the (rows, C, depth) comparison done at once.
_CHUNK_ELEMENTS = 16 * 1024 * 1024


@dataclass(frozen=True)
class _Tree:
    parent: dict[Node, Node]
    children: dict[Node, list[Node]]
    root: Node
    depth: dict[Node, int]


def from_hierarchy(
    hierarchy: Mapping[Any, Any] | Iterable[tuple[Node, Node]],
    classes: Sequence[Node] | None = None,
    *,
    allow_extra_leaves: bool = False,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Similarity from the depth of the lowest common ancestor in a class tree.

    .. math::

        S_{ij} = \\frac{\\operatorname{depth}(\\operatorname{lca}(i, j))}
                      {\\max(\\operatorname{depth}(i), \\operatorname{depth}(j))},
        \\qquad S_{ii} = 1, \\qquad \\operatorname{depth}(\\mathrm{root}) = 0

    Two classes whose only common ancestor is the root have similarity 0;
    siblings under a deep parent are nearly 1. The matrix is symmetric, with
    values in [0, 1] (the lca is never deeper than either class). Classes are
    usually leaves but may be inner nodes (an inner class is then similar to
    its descendants by its own depth over theirs).

    Args:
        hierarchy: a parent map, an edge list or a nested mapping (see the module).
        classes: the nodes that are the classes, in class order. By default
            the leaves in depth-first order (children in the order given).
        allow_extra_leaves: accept leaves of the hierarchy that are not
            classes (e.g. a large taxonomy used for a subset of classes). By
            default such leaves are an error, since they usually mean a
            misspelt class name.
        dtype: floating dtype of the result (float32 by default).

    Returns:
        Tensor of shape (C, C).

    Raises:
        TypeError: a hierarchy form or node type that is not understood.
        ValueError: cycles, several roots, a node with two parents, classes
            that are not nodes, duplicate classes, or (by default) leaves
            that are not classes; the message names them.

    Example:
        >>> tree = {"root": {"animal": {"cat": None, "dog": None}, "vehicle": ["bus"]}}
        >>> from_hierarchy(tree)  # cat, dog, bus; depth(animal) / depth(cat) = 1 / 2
        tensor([[1.0000, 0.5000, 0.0000],
                [0.5000, 1.0000, 0.0000],
                [0.0000, 0.0000, 1.0000]])
        >>> from_hierarchy([("root", "a"), ("a", "b"), ("a", "c")], classes=["a", "b", "c"])
        tensor([[1.0000, 0.5000, 0.5000],
                [0.5000, 1.0000, 0.5000],
                [0.5000, 0.5000, 1.0000]])
    """
    tree = _parse(hierarchy)
    class_list = _check_classes(tree, classes, allow_extra_leaves)
    num_classes = len(class_list)
    paths = [_path_from_root(tree, node) for node in class_list]
    width = max(len(p) for p in paths)
    index = {node: k for k, node in enumerate(tree.depth)}
    # Root-to-class paths as node indices, padded with a value unique to each row.
    table = np.empty((num_classes, width), dtype=np.int64)
    for row, path in enumerate(paths):
        table[row, : len(path)] = [index[n] for n in path]
        table[row, len(path) :] = -1 - row
    depth = np.array([len(p) - 1 for p in paths], dtype=np.float64)
    shared = np.empty((num_classes, num_classes), dtype=np.int64)
    rows = max(1, _CHUNK_ELEMENTS // (num_classes * width))
    for start in range(0, num_classes, rows):
        stop = min(start + rows, num_classes)
        equal = table[start:stop, None, :] == table[None, :, :]
        shared[start:stop] = np.cumprod(equal, axis=2).sum(axis=2)
    lca_depth = (shared - 1).astype(np.float64)
    deepest = np.maximum(np.maximum(depth[:, None], depth[None, :]), 1.0)
    sim = lca_depth / deepest
    np.fill_diagonal(sim, 1.0)
    return torch.from_numpy(sim).to(dtype)


def from_superclasses(
    fine_to_coarse: Mapping[Any, Any] | Sequence[Any],
    s: float,
    *,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Similarity of a flat class -> superclass grouping: 1, ``s`` or 0.

    .. math::

        S_{ij} = \\begin{cases} 1 & i = j \\\\ s & i \\ne j,\\ \\mathrm{sup}(i) =
        \\mathrm{sup}(j) \\\\ 0 & \\text{otherwise} \\end{cases}, \\qquad s \\in [0, 1]

    With ``s = 1/2`` this equals :func:`from_hierarchy` on the tree
    root -> superclass -> class.

    Args:
        fine_to_coarse: the superclass of each class, either a mapping
            ``{class: superclass}`` (class order = the mapping's order) or a
            sequence (also a 1-D integer numpy array or tensor, as the
            metrics take it) whose item ``i`` is the superclass of class ``i``.
        s: similarity of two different classes of the same superclass, in [0, 1].
        dtype: floating dtype of the result (float32 by default).

    Returns:
        Tensor of shape (C, C), symmetric.

    Raises:
        TypeError: ``s`` not a number, or a superclass that is not ``str`` or ``int``.
        ValueError: ``s`` outside [0, 1], or no classes.

    Example:
        >>> from_superclasses({"oak": "tree", "pine": "tree", "bus": "vehicle"}, 0.5)
        tensor([[1.0000, 0.5000, 0.0000],
                [0.5000, 1.0000, 0.0000],
                [0.0000, 0.0000, 1.0000]])
    """
    if not is_real(s):
        raise TypeError(f"Expected `s` to be a float in [0, 1], but found {type(s).__name__}")
    value = float(s)
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"Expected `s` in [0, 1], but found {value}")
    if isinstance(fine_to_coarse, Mapping):
        coarse = list(fine_to_coarse.values())
        labels = [repr(k) for k in fine_to_coarse]
    elif isinstance(fine_to_coarse, (np.ndarray, Tensor)):
        coarse = _superclass_array(fine_to_coarse)
        labels = [str(i) for i in range(len(coarse))]
    elif isinstance(fine_to_coarse, Sequence) and not isinstance(fine_to_coarse, (str, bytes)):
        coarse = list(fine_to_coarse)
        labels = [str(i) for i in range(len(coarse))]
    else:
        raise TypeError(
            "Expected `fine_to_coarse` to be a mapping {class: superclass} or a sequence of "
            f"superclasses, but found {type(fine_to_coarse).__name__}"
            + _path_hint(fine_to_coarse, "read_fine_to_coarse")
        )
    if not coarse:
        raise ValueError("Expected at least one class in `fine_to_coarse`, but found none")
    for label, group in zip(labels, coarse, strict=True):
        _check_node(group, f"the superclass of class {label}")
    codes: dict[Node, int] = {}
    group_ids = torch.tensor([codes.setdefault(g, len(codes)) for g in coarse])
    same = group_ids[:, None] == group_ids[None, :]
    sim = torch.where(
        same, torch.tensor(value, dtype=torch.float64), torch.zeros((), dtype=torch.float64)
    )
    sim.fill_diagonal_(1.0)
    return sim.to(dtype)


def hierarchy_leaves(hierarchy: Mapping[Any, Any] | Iterable[tuple[Node, Node]]) -> list[Node]:
    """The leaves of a hierarchy in depth-first order (children in the order given).

    Example:
        >>> hierarchy_leaves({"root": {"b": ["x", "y"], "a": None}})
        ['x', 'y', 'a']
    """
    tree = _parse(hierarchy)
    return [n for n in _preorder(tree) if not tree.children[n]]


def depth_first_order(hierarchy: Mapping[Any, Any] | Iterable[tuple[Node, Node]]) -> list[Node]:
    """Every node of a hierarchy in depth-first pre-order, starting at the root.

    Sorting classes by their position here puts related classes next to each
    other (e.g. for a heatmap).

    Example:
        >>> depth_first_order([("r", "b"), ("b", "x"), ("r", "a")])
        ['r', 'b', 'x', 'a']
    """
    return _preorder(_parse(hierarchy))


def hierarchy_edges(
    hierarchy: Mapping[Any, Any] | Iterable[tuple[Node, Node]],
) -> list[tuple[Node, Node]]:
    """The ``(parent, child)`` pairs of a hierarchy in depth-first order, from any of its forms.

    Example:
        >>> hierarchy_edges({"root": {"b": ["x", "y"], "a": None}})
        [('root', 'b'), ('b', 'x'), ('b', 'y'), ('root', 'a')]
    """
    tree = _parse(hierarchy)
    return [(tree.parent[n], n) for n in _preorder(tree) if n in tree.parent]


# ----------------------------------------------------------------------------- internals


def _check_node(node: Any, what: str) -> Node:
    if is_int(node):  # a numpy integer (e.g. read from an array) is the same node as the int
        return int(node)
    if not isinstance(node, str):
        raise TypeError(f"Expected {what} to be a str or int node, but found {node!r}")
    return node


def _superclass_array(fine_to_coarse: np.ndarray | Tensor) -> list[Node]:
    """The superclass ids of a 1-D integer array or tensor, as Python ints."""
    integer = (
        np.issubdtype(fine_to_coarse.dtype, np.integer)
        if isinstance(fine_to_coarse, np.ndarray)
        else not (fine_to_coarse.is_floating_point() or fine_to_coarse.is_complex())
        and fine_to_coarse.dtype != torch.bool
    )
    if fine_to_coarse.ndim != 1 or not integer:
        raise TypeError(
            "Expected `fine_to_coarse` as an array to be 1-D with an integer dtype, but found "
            f"shape {tuple(fine_to_coarse.shape)} and dtype {fine_to_coarse.dtype}"
        )
    return [int(v) for v in fine_to_coarse.tolist()]


def _parse(hierarchy: Any) -> _Tree:
    parent: dict[Node, Node] = {}
    children: dict[Node, list[Node]] = {}

    def add(node: Any, what: str) -> Node:
        checked = _check_node(node, what)
        children.setdefault(checked, [])
        return checked

    def link(up: Node, down: Node) -> None:
        if down in parent:
            raise ValueError(
                f"Expected a tree (one parent per node), but found node {down!r} with parents "
                f"{parent[down]!r} and {up!r}"
            )
        if up == down:
            raise ValueError(f"Expected a tree without cycles, but found a cycle: {up!r} -> {up!r}")
        parent[down] = up
        children[up].append(down)

    if isinstance(hierarchy, Mapping):
        values = list(hierarchy.values())
        nested = [v for v in values if isinstance(v, (Mapping, list, tuple))]
        flat = [v for v in values if v is not None and not isinstance(v, (Mapping, list, tuple))]
        if nested and flat:
            raise TypeError(
                "Expected `hierarchy` to be a parent map {child: parent} or a nested mapping "
                "{node: {child: ...}}, but found both kinds of values"
            )
        if nested:
            stack: list[tuple[Node | None, Any]] = [(None, hierarchy)]
            while stack:
                up, body = stack.pop()
                if isinstance(body, Mapping):
                    items = list(body.items())
                elif isinstance(body, (list, tuple)):
                    items = [(leaf, None) for leaf in body]
                elif body is None:
                    items = []
                else:
                    raise TypeError(
                        f"Expected the children of {up!r} to be a mapping, a list or None, "
                        f"but found {type(body).__name__}"
                    )
                for node, sub in items:
                    checked = _check_node(node, "a node of `hierarchy`")
                    if checked in children:
                        raise ValueError(
                            f"Expected every node once in the nested `hierarchy`, but found "
                            f"{checked!r} twice"
                        )
                    add(checked, "a node of `hierarchy`")
                    if up is not None:
                        link(up, checked)
                    stack.append((checked, sub))
        else:
            for child, up in hierarchy.items():
                add(child, "a node of `hierarchy`")
                if up is not None:
                    add(up, f"the parent of {child!r}")
                    link(up, child)
    elif isinstance(hierarchy, Iterable) and not isinstance(hierarchy, (str, bytes)):
        for k, edge in enumerate(hierarchy):
            if not isinstance(edge, (tuple, list)) or len(edge) != 2:
                raise TypeError(
                    "Expected `hierarchy` edges as (parent, child) pairs, "
                    f"but found {edge!r} at {k}"
                )
            up = add(edge[0], f"the parent in edge {k}")
            down = add(edge[1], f"the child in edge {k}")
            if up == down or (parent.get(down) != up):
                link(up, down)
            else:
                raise ValueError(f"Expected each edge once, but found {edge!r} again at {k}")
    else:
        raise TypeError(
            "Expected `hierarchy` to be a parent map, an edge list or a nested mapping, "
            f"but found {type(hierarchy).__name__}" + _path_hint(hierarchy, "read_hierarchy")
        )
    if not children:
        raise ValueError("Expected a hierarchy with at least one node, but found none")
    depth = _depths(parent, list(children))
    roots = [n for n in children if n not in parent]
    if len(roots) != 1:
        shown = ", ".join(repr(r) for r in roots[:10]) + (" ..." if len(roots) > 10 else "")
        raise ValueError(
            f"Expected a hierarchy with one root, but found {len(roots)} roots: {shown}; add "
            "a common parent (for a flat class -> superclass map use from_superclasses)"
        )
    return _Tree(parent, children, roots[0], depth)


def _depths(parent: dict[Node, Node], nodes: list[Node]) -> dict[Node, int]:
    """Depth of every node (root = 0); raises on a cycle, naming its nodes."""
    depth: dict[Node, int] = {}
    for start in nodes:
        path: list[Node] = []
        position: dict[Node, int] = {}
        node: Node | None = start
        while node is not None and node not in depth:
            if node in position:
                cycle = [*path[position[node] :], node]
                raise ValueError(
                    "Expected a tree without cycles, but found a cycle: "
                    + " -> ".join(repr(n) for n in reversed(cycle))
                )
            position[node] = len(path)
            path.append(node)
            node = parent.get(node)
        base = -1 if node is None else depth[node]
        for offset, visited in enumerate(reversed(path), start=1):
            depth[visited] = base + offset
    return depth


def _preorder(tree: _Tree) -> list[Node]:
    order: list[Node] = []
    stack = [tree.root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(reversed(tree.children[node]))
    return order


def _path_from_root(tree: _Tree, node: Node) -> list[Node]:
    path = [node]
    while path[-1] in tree.parent:
        path.append(tree.parent[path[-1]])
    return path[::-1]


def _check_classes(tree: _Tree, classes: Sequence[Node] | None, allow_extra: bool) -> list[Node]:
    leaves = [n for n in _preorder(tree) if not tree.children[n]]
    if classes is None:
        return leaves
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence):
        raise TypeError(
            f"Expected `classes` to be a sequence of nodes, but found {type(classes).__name__}"
        )
    class_list = list(classes)
    if not class_list:
        raise ValueError("Expected at least one class in `classes`, but found none")
    seen: set[Node] = set()
    duplicates: list[Node] = []
    for node in class_list:
        if node in seen:
            duplicates.append(node)
        seen.add(node)
    if duplicates:
        raise ValueError(
            f"Expected distinct `classes`, but found duplicates: {_listing(duplicates)}"
        )
    unknown = [n for n in class_list if n not in tree.children]
    if unknown:
        raise ValueError(
            f"Expected every class to be a node of the hierarchy, but found {len(unknown)} "
            f"unknown: {_listing(unknown)}"
        )
    extra = [n for n in leaves if n not in seen]
    if extra and not allow_extra:
        raise ValueError(
            f"Expected every leaf of the hierarchy to be a class, but found {len(extra)} leaves "
            f"missing from `classes`: {_listing(extra)} (pass allow_extra_leaves=True to allow)"
        )
    return class_list


def _path_hint(x: object, reader: str) -> str:
    """For a str or path passed where data belongs: which reader turns the file into data."""
    if isinstance(x, (str, bytes, os.PathLike)):
        return f" {x!r}; to read a file, use simloss.similarity.{reader}(path)"
    return ""


def _listing(nodes: list[Node], limit: int = 10) -> str:
    shown = ", ".join(repr(n) for n in nodes[:limit])
    return shown + (f" and {len(nodes) - limit} more" if len(nodes) > limit else "")
