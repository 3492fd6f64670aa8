"""Heatmaps of a similarity matrix: a class order that shows structure, and the figure.

The orders put related classes next to each other: by value, by position in
a hierarchy, by superclass, or (for any matrix) by clustering. The figure is
drawn with matplotlib, the ``plot`` extra, imported only when a figure is made.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import torch

from simloss._optional import require
from simloss.similarity.hierarchy import Node, depth_first_order

__all__ = [
    "cluster_order",
    "group_order",
    "heatmap_figure",
    "hierarchy_order",
    "value_order",
]


def value_order(values: Sequence[float]) -> list[int]:
    """Class indices sorted by value (ties keep class order).

    Example:
        >>> value_order([30.0, 10.0, 20.0])
        [1, 2, 0]
    """
    return sorted(range(len(values)), key=lambda k: values[k])


def hierarchy_order(hierarchy: Any, classes: Sequence[Node]) -> list[int]:
    """Class indices in the depth-first order of the hierarchy's nodes.

    Example:
        >>> hierarchy_order({"r": {"a": ["x", "y"], "b": ["z"]}}, ["z", "y", "x"])
        [2, 1, 0]
    """
    position = {node: k for k, node in enumerate(depth_first_order(hierarchy))}
    return sorted(range(len(classes)), key=lambda k: position[classes[k]])


def group_order(groups: Sequence[Hashable]) -> list[int]:
    """Class indices grouped by their group (e.g. superclass), groups in order of first appearance.

    Example:
        >>> group_order(["trees", "vehicles", "trees"])
        [0, 2, 1]
    """
    first: dict[Hashable, int] = {}
    for group in groups:
        first.setdefault(group, len(first))
    return sorted(range(len(groups)), key=lambda k: first[groups[k]])


def cluster_order(matrix: Any) -> tuple[list[int], str]:
    """An order of the classes that puts similar ones together, and how it was found.

    SciPy's average-linkage clustering on the distance ``1 - (S + S^T) / 2``
    (its leaf order) when SciPy is installed, else a greedy nearest-neighbour
    chain starting at class 0 (each next class is the most similar one not
    yet placed).

    Args:
        matrix: (C, C) similarity, a tensor or array.

    Returns:
        ``(order, note)``: a permutation of ``range(C)`` and a short description.

    Example:
        >>> import numpy as np
        >>> S = np.array([[1.0, 0.1, 0.9], [0.1, 1.0, 0.2], [0.9, 0.2, 1.0]])
        >>> order, _ = cluster_order(S)
        >>> abs(order.index(0) - order.index(2))  # the similar pair sits together
        1
    """
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().numpy()
    array = np.asarray(matrix, dtype=np.float64)
    num = int(array.shape[0])
    if num <= 2:
        return list(range(num)), "class order"
    sym = (array + array.T) / 2
    try:
        from scipy.cluster.hierarchy import leaves_list, linkage
        from scipy.spatial.distance import squareform
    except ImportError:
        return _greedy_order(sym), "greedy nearest-neighbour chain"
    distance = 1.0 - sym
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    return [int(k) for k in leaves_list(tree)], "average-linkage clustering (SciPy)"


def _greedy_order(sym: np.ndarray) -> list[int]:
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


def heatmap_figure(
    matrix: Any,
    names: Sequence[str] | None = None,
    order: Sequence[int] | None = None,
    *,
    title: str = "",
) -> Any:
    """A matplotlib ``Figure`` of the matrix as a heatmap (values 0..1, viridis).

    Rows and columns are shown in ``order`` (default: class order); with at
    most 100 classes they are labelled with ``names``. Needs matplotlib (the
    ``plot`` extra); the figure is not attached to pyplot, so it is freed
    like any object.

    Args:
        matrix: (C, C) similarity, a tensor or array.
        names: class names for the tick labels (default: the indices).
        order: permutation of ``range(C)``, e.g. from :func:`cluster_order`.
        title: the axes' title.

    Returns:
        ``matplotlib.figure.Figure``; save it with ``figure.savefig(...)``.
    """
    require("matplotlib", "plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().numpy()
    array = np.asarray(matrix)
    num = int(array.shape[0])
    index = np.arange(num) if order is None else np.asarray(order)
    if sorted(index.tolist()) != list(range(num)):
        raise ValueError(f"Expected `order` to be a permutation of range({num}), but found {order}")
    labels = [str(i) for i in range(num)] if names is None else [str(n) for n in names]
    shown = array[np.ix_(index, index)]
    size = min(14.0, max(5.0, 0.14 * num + 2.0))
    figure = Figure(figsize=(size + 1.0, size))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(shown, vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="similarity")
    if num <= 100:
        ticks = [labels[k] for k in index]
        font = 8 if num <= 40 else 5
        axes.set_xticks(range(num), ticks, rotation=90, fontsize=font)
        axes.set_yticks(range(num), ticks, fontsize=font)
    else:
        axes.set_xlabel("class (reordered)")
        axes.set_ylabel("class (reordered)")
    if title:
        axes.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure
