"""A class hierarchy as the hierarchical metrics read it: depths and lowest common ancestors.

:class:`ClassHierarchy` holds, for the C classes of a tree (usually its leaves),

* ``depth`` (C,): the nodes on the path from the root (excluded) to the class
  (included), i.e. the size of the class's ancestor set in Kiritchenko et al.'s
  hierarchical precision and recall;
* ``lca_depth`` (C, C): the same count for the lowest common ancestor (LCA) of two
  classes, the size of the intersection of their ancestor sets;
* ``lca_height`` (C, C): the height of the LCA (the longest path from it down to a
  leaf), Bertinetto et al.'s distance of a mistake; 0 for the same class.

Classes are usually the leaves, but a class may be an inner node (an ImageNet-style
tree where a class has sub-classes): deciding the class itself is then still
distance 0 (the diagonal is 0, not the node's height), an ancestor and its
descendant are scored by the ancestor's height (it is their LCA), and the ancestor
sets of hierarchical precision and recall are those of the nodes as they are.

Build one from any form :mod:`simloss.similarity.hierarchy` reads (a parent map,
an edge list, a nested mapping; e.g. from :func:`simloss.similarity.read_hierarchy`)
with :meth:`ClassHierarchy.from_tree`, or from a flat superclass table with
:meth:`ClassHierarchy.from_superclasses` (root -> superclass -> class).

Example:
    >>> tree = {"root": {"animal": {"cat": None, "dog": None}, "vehicle": ["bus"]}}
    >>> h = ClassHierarchy.from_tree(tree)
    >>> h.classes, h.depth.tolist()
    (['cat', 'dog', 'bus'], [2, 2, 2])
    >>> h.lca_height.tolist()
    [[0.0, 1.0, 2.0], [1.0, 0.0, 2.0], [2.0, 2.0, 0.0]]
    >>> h.lca_depth.tolist()
    [[2, 1, 0], [1, 2, 0], [0, 0, 2]]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from simloss.metrics._checks import check_fine_to_coarse
from simloss.similarity.hierarchy import Node, hierarchy_edges, hierarchy_leaves

__all__ = ["ClassHierarchy"]


@dataclass(frozen=True, eq=False)
class ClassHierarchy:
    """Depths and lowest common ancestors of the classes of a tree (see the module).

    Attributes:
        classes: the class nodes, in class order.
        depth: (C,) int64 nodes from the root (excluded) to each class (included).
        lca_depth: (C, C) int64 the same for the lowest common ancestor of two classes.
        lca_height: (C, C) float64 height of the lowest common ancestor of two different
            classes; 0 on the diagonal (also for a class that is an inner node).
    """

    classes: list[Node]
    depth: Tensor
    lca_depth: Tensor
    lca_height: Tensor

    @property
    def num_classes(self) -> int:
        """C."""
        return len(self.classes)

    @classmethod
    def from_tree(
        cls,
        hierarchy: Mapping[Any, Any] | Iterable[tuple[Node, Node]],
        classes: Sequence[Node] | None = None,
    ) -> ClassHierarchy:
        """The hierarchy of a tree; the classes are ``classes`` (default: its leaves, depth first).

        A class may be an inner node (see the module): its distance to itself is 0, to
        a descendant the height of the class.

        Example:
            >>> tree = [("entity", "animal"), ("animal", "cat"), ("animal", "dog"),
            ...         ("entity", "vehicle"), ("vehicle", "bus"), ("vehicle", "car")]
            >>> h = ClassHierarchy.from_tree(tree, classes=["cat", "animal", "bus", "car"])
            >>> h.lca_height.tolist()
            [[0.0, 1.0, 2.0, 2.0], [1.0, 0.0, 2.0, 2.0], [2.0, 2.0, 0.0, 1.0], [2.0, 2.0, 1.0, 0.0]]

        Raises:
            TypeError, ValueError: the tree's own errors (cycles, several roots, ...),
                a class that is not a node, or duplicate classes.
        """
        edges = hierarchy_edges(hierarchy)  # checks it is a tree
        if not edges:
            raise ValueError("Expected a hierarchy with at least one edge, but found none")
        parent = {child: up for up, child in edges}
        children: dict[Node, list[Node]] = {}
        for up, child in edges:
            children.setdefault(up, []).append(child)
        nodes = set(parent) | set(children)
        chosen = list(hierarchy_leaves(edges)) if classes is None else list(classes)
        unknown = [c for c in chosen if c not in nodes]
        if unknown:
            raise ValueError(
                f"Expected every class to be a node of the hierarchy, but found {unknown[:10]}"
            )
        if len(set(chosen)) != len(chosen):
            raise ValueError("Expected distinct `classes`, but found a class twice")
        height: dict[Node, int] = {}
        for node in reversed(_preorder(edges)):  # children before parents
            height[node] = 1 + max((height[c] for c in children.get(node, [])), default=-1)
        paths = [_path(parent, c) for c in chosen]
        order = list(nodes)
        heights = np.array([height[n] for n in order], dtype=np.float64)
        index = {node: k for k, node in enumerate(order)}
        width = max(len(p) for p in paths)
        num = len(chosen)
        table = np.empty((num, width), dtype=np.int64)
        for row, path in enumerate(paths):
            table[row, : len(path)] = [index[n] for n in path]
            table[row, len(path) :] = -1 - row  # padding unique to each row
        shared = np.empty((num, num), dtype=np.int64)  # common nodes of two root paths
        rows = max(1, (16 * 1024 * 1024) // (num * width))
        for start in range(0, num, rows):
            stop = min(start + rows, num)
            equal = table[start:stop, None, :] == table[None, :, :]
            shared[start:stop] = np.cumprod(equal, axis=2).sum(axis=2)
        lengths = np.array([len(p) for p in paths])
        shared = np.minimum(shared, lengths[None, :])  # a class with itself: its own path
        lca = np.take_along_axis(
            np.broadcast_to(table[:, None, :], (num, num, width)),
            (shared - 1)[:, :, None],
            axis=2,
        )[:, :, 0]
        distance = heights[lca]
        np.fill_diagonal(distance, 0.0)  # the same class is no mistake, leaf or inner node
        return cls(
            classes=chosen,
            depth=torch.tensor([len(p) - 1 for p in paths], dtype=torch.int64),
            lca_depth=torch.from_numpy(shared - 1),
            lca_height=torch.from_numpy(distance),
        )

    @classmethod
    def from_superclasses(cls, fine_to_coarse: Any) -> ClassHierarchy:
        """The two-level hierarchy root -> superclass -> class of a superclass table.

        Example:
            >>> ClassHierarchy.from_superclasses([0, 0, 1]).lca_height.tolist()
            [[0.0, 1.0, 2.0], [1.0, 0.0, 2.0], [2.0, 2.0, 0.0]]
        """
        mapping = check_fine_to_coarse(fine_to_coarse)
        same = mapping[:, None] == mapping[None, :]
        eye = torch.eye(mapping.numel(), dtype=torch.bool)
        lca_depth = same.to(torch.int64) + eye.to(torch.int64)
        lca_height = 2.0 - same.to(torch.float64) - eye.to(torch.float64)
        return cls(
            classes=list(range(mapping.numel())),
            depth=torch.full((mapping.numel(),), 2, dtype=torch.int64),
            lca_depth=lca_depth,
            lca_height=lca_height,
        )


def _path(parent: Mapping[Node, Node], node: Node) -> list[Node]:
    path = [node]
    while path[-1] in parent:
        path.append(parent[path[-1]])
    return path[::-1]


def _preorder(edges: Sequence[tuple[Node, Node]]) -> list[Node]:
    """Nodes in the depth-first order of the edges (which :func:`hierarchy_edges` gives)."""
    order = [edges[0][0]]
    order.extend(child for _, child in edges)
    return order
