"""Display orders of a similarity heatmap and the figure itself."""

from __future__ import annotations

import numpy as np
import pytest

from simloss.similarity import class_order, cluster_order, heatmap_figure
from simloss.similarity.heatmap import _greedy_order, group_order, hierarchy_order, value_order


def test_greedy_order_hand_case() -> None:
    # 0 is nearest to 2, 2 to 3, 3 to 1
    sim = np.array(
        [[1.0, 0.1, 0.9, 0.2], [0.1, 1.0, 0.0, 0.6], [0.9, 0.0, 1.0, 0.7], [0.2, 0.6, 0.7, 1.0]]
    )
    assert _greedy_order(sim) == [0, 2, 3, 1]


def test_cluster_order_puts_blocks_together() -> None:
    # two blocks interleaved: {0, 2, 4} and {1, 3, 5}
    sim = np.eye(6)
    for block in ([0, 2, 4], [1, 3, 5]):
        for i in block:
            for j in block:
                sim[i, j] = 1.0 if i == j else 0.8
    order, note = cluster_order(sim)
    assert sorted(order) == list(range(6))
    assert {frozenset(order[:3]), frozenset(order[3:])} == {
        frozenset([0, 2, 4]),
        frozenset([1, 3, 5]),
    }
    assert "SciPy" in note


def test_source_orders() -> None:
    assert value_order([3.0, -1.0, 2.0, -1.0]) == [1, 3, 2, 0]
    assert hierarchy_order([("r", "b"), ("b", "y"), ("r", "a"), ("a", "x")], ["x", "y"]) == [1, 0]
    assert group_order(["v", "t", "v", "t"]) == [0, 2, 1, 3]


def test_heatmap_figure_orders_the_matrix() -> None:
    pytest.importorskip("matplotlib")
    matrix = class_order(4, 0.5).numpy()
    figure = heatmap_figure(matrix, ["a", "b", "c", "d"], [3, 2, 1, 0], title="t")
    image = figure.axes[0].images[0].get_array()
    assert np.array_equal(np.asarray(image), matrix[::-1, ::-1])
    labels = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert labels == ["d", "c", "b", "a"]
    with pytest.raises(ValueError, match="permutation of range"):
        heatmap_figure(matrix, order=[0, 0, 1, 2])
