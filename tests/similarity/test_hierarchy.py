"""Similarity from hierarchies: lca depth, superclasses, the three input forms, readers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import shared_path
from simloss.similarity import (
    depth_first_order,
    from_hierarchy,
    from_superclasses,
    hierarchy_edges,
    hierarchy_leaves,
    read_wordnet_hierarchy,
    validate_similarity,
)

# entity -> organism -> animal -> {cat, dog}; organism -> plant -> tree -> {oak, pine};
# entity -> artifact -> bus
PARENTS = {
    "organism": "entity",
    "artifact": "entity",
    "animal": "organism",
    "plant": "organism",
    "tree": "plant",
    "cat": "animal",
    "dog": "animal",
    "oak": "tree",
    "pine": "tree",
    "bus": "artifact",
}
EDGES = [(parent, child) for child, parent in PARENTS.items()]
NESTED = {
    "entity": {
        "organism": {"animal": ["cat", "dog"], "plant": {"tree": {"oak": None, "pine": {}}}},
        "artifact": ["bus"],
    }
}


def _reference(parents: dict[Any, Any], classes: list[Any]) -> np.ndarray:
    """depth(lca) / max(depth) from explicit ancestor chains."""

    def chain(node: Any) -> list[Any]:
        out = [node]
        while out[-1] in parents and parents[out[-1]] is not None:
            out.append(parents[out[-1]])
        return out  # node ... root

    num = len(classes)
    result = np.empty((num, num))
    for i, a in enumerate(classes):
        for j, b in enumerate(classes):
            ca, cb = chain(a), chain(b)
            lca = next(n for n in ca if n in cb)
            depth_lca = len(chain(lca)) - 1
            result[i, j] = 1.0 if i == j else depth_lca / max(len(ca) - 1, len(cb) - 1)
    return result


def test_hand_case() -> None:
    classes = ["cat", "dog", "oak", "pine", "bus"]
    matrix = from_hierarchy(PARENTS, classes, dtype=torch.float64)
    # cat/dog: lca animal (2) / 3; oak/pine: lca tree (3) / 4; cat/oak: organism (1) / 4;
    # cat/bus: entity (0)
    expected = torch.tensor(
        [
            [1.0, 2 / 3, 1 / 4, 1 / 4, 0.0],
            [2 / 3, 1.0, 1 / 4, 1 / 4, 0.0],
            [1 / 4, 1 / 4, 1.0, 3 / 4, 0.0],
            [1 / 4, 1 / 4, 3 / 4, 1.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 1.0],
        ],
        dtype=torch.float64,
    )
    assert torch.equal(matrix, expected)


def test_three_forms_agree_and_default_order_is_depth_first() -> None:
    from_parents = from_hierarchy(PARENTS)
    assert torch.equal(from_hierarchy(EDGES), from_parents)
    assert torch.equal(from_hierarchy(NESTED), from_parents)
    assert hierarchy_leaves(NESTED) == ["cat", "dog", "oak", "pine", "bus"]
    assert hierarchy_leaves(PARENTS) == ["cat", "dog", "oak", "pine", "bus"]
    assert depth_first_order(EDGES)[:4] == ["entity", "organism", "animal", "cat"]
    expected = _reference(PARENTS, hierarchy_leaves(PARENTS))
    assert torch.equal(from_parents, torch.from_numpy(expected).to(torch.float32))
    assert from_parents.dtype == torch.float32
    validate_similarity(from_parents, 5)


def test_parent_map_with_explicit_root_and_int_nodes() -> None:
    parents = {0: None, 1: 0, 2: 0, 3: 1, 4: 1}
    matrix = from_hierarchy(parents, [3, 4, 2], dtype=torch.float64)
    expected = torch.tensor(
        [[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64
    )
    assert torch.equal(matrix, expected)


def test_inner_node_as_a_class() -> None:
    # "tree" (depth 3) is a class beside its leaves "oak" and "pine" (depth 4)
    classes = ["tree", "oak", "pine", "cat", "dog", "bus"]
    matrix = from_hierarchy(PARENTS, classes, dtype=torch.float64)
    assert float(matrix[0, 1]) == 3 / 4
    assert torch.equal(matrix, torch.from_numpy(_reference(PARENTS, classes)))


def test_single_node_tree() -> None:
    assert torch.equal(from_hierarchy({"only": None}), torch.ones(1, 1))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=30))
def test_random_trees_match_reference(picks: list[int]) -> None:
    # node k + 1 hangs below an earlier node: always a tree rooted at 0
    parents: dict[int, int | None] = {0: None}
    for k, pick in enumerate(picks):
        parents[k + 1] = pick % (k + 1)
    leaves = hierarchy_leaves(parents)
    matrix = from_hierarchy(parents)
    assert torch.equal(matrix, torch.from_numpy(_reference(parents, leaves)).to(torch.float32))
    assert torch.equal(matrix, matrix.T)
    validate_similarity(matrix, len(leaves))


# ----------------------------------------------------------------------------- bad hierarchies


@pytest.mark.parametrize(
    ("hierarchy", "message"),
    [
        ([("a", "b"), ("b", "c"), ("c", "a")], r"cycle: .*'a'.*'b'.*'c'|cycle: .*'c'.*'a'"),
        ({"root": None, "a": "b", "b": "a"}, r"cycle: 'a' -> 'b' -> 'a'|cycle: 'b' -> 'a' -> 'b'"),
        ([("a", "a")], r"cycle: 'a' -> 'a'"),
        ([("r", "a"), ("q", "a")], r"one parent per node.*'a' with parents 'r' and 'q'"),
        ([("r", "a"), ("r", "a")], r"each edge once, but found \('r', 'a'\) again at 1"),
        ({"a": "r1", "b": "r2"}, r"one root, but found 2 roots: 'r1', 'r2'"),
        ({"r": {"a": None, "b": {"a": None}}}, r"every node once .* found 'a' twice"),
        ({}, r"at least one node"),
    ],
    ids=[
        "cycle-edges",
        "cycle-parents",
        "self-loop",
        "two-parents",
        "edge-twice",
        "two-roots",
        "nested-twice",
        "empty",
    ],
)
def test_bad_hierarchy(hierarchy: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_hierarchy(hierarchy)


@pytest.mark.parametrize(
    ("hierarchy", "message"),
    [
        ({"a": "r", "b": {"c": None}}, "both kinds of values"),
        ([("r", "a", "b")], r"\(parent, child\) pairs, but found \('r', 'a', 'b'\) at 0"),
        ([("r", 1.5)], r"str or int node, but found 1.5"),
        ({"r": {"a": 3.5}}, r"children of 'a' to be a mapping, a list or None"),
        ("tree", r"parent map, an edge list or a nested mapping"),
    ],
    ids=["mixed", "triple", "float-node", "bad-children", "string"],
)
def test_bad_hierarchy_types(hierarchy: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        from_hierarchy(hierarchy)


def test_unknown_classes_are_listed() -> None:
    with pytest.raises(ValueError, match=r"found 2 unknown: 'cta', 'pien'"):
        from_hierarchy(PARENTS, ["cta", "dog", "oak", "pien", "bus"])


def test_leaves_missing_from_classes() -> None:
    with pytest.raises(ValueError, match=r"2 leaves missing from `classes`: 'pine', 'bus'"):
        from_hierarchy(PARENTS, ["cat", "dog", "oak"])
    matrix = from_hierarchy(PARENTS, ["cat", "dog", "oak"], allow_extra_leaves=True)
    assert matrix.shape == (3, 3)


def test_duplicate_classes() -> None:
    with pytest.raises(ValueError, match="distinct `classes`, but found duplicates: 'cat'"):
        from_hierarchy(PARENTS, ["cat", "dog", "cat", "oak", "pine", "bus"])


# ----------------------------------------------------------------------------- superclasses


def test_superclasses_hand_case() -> None:
    mapping = {"oak": "trees", "bus": "vehicles", "pine": "trees", "train": "vehicles"}
    matrix = from_superclasses(mapping, 0.3, dtype=torch.float64)
    expected = torch.tensor(
        [[1.0, 0.0, 0.3, 0.0], [0.0, 1.0, 0.0, 0.3], [0.3, 0.0, 1.0, 0.0], [0.0, 0.3, 0.0, 1.0]],
        dtype=torch.float64,
    )
    assert torch.equal(matrix, expected)
    assert torch.equal(from_superclasses(["t", "v", "t", "v"], 0.3, dtype=torch.float64), expected)


def test_superclasses_equal_hierarchy_with_half() -> None:
    mapping = {"oak": "trees", "bus": "vehicles", "pine": "trees", "train": "vehicles", "sea": 7}
    tree = {
        **{fine: coarse for fine, coarse in mapping.items()},
        "trees": "r",
        "vehicles": "r",
        7: "r",
    }
    assert torch.equal(from_superclasses(mapping, 0.5), from_hierarchy(tree, list(mapping)))


def test_superclasses_s_zero_and_one() -> None:
    assert torch.equal(from_superclasses(["a", "a", "b"], 0.0), torch.eye(3))
    assert torch.equal(from_superclasses(["a", "a"], 1.0), torch.ones(2, 2))


@pytest.mark.parametrize("s", [-0.1, 1.5, float("nan")], ids=str)
def test_superclasses_s_out_of_range(s: float) -> None:
    with pytest.raises(ValueError, match=r"Expected `s` in \[0, 1\]"):
        from_superclasses(["a", "b"], s)


def test_superclasses_bad_input() -> None:
    with pytest.raises(TypeError, match="`s`"):
        from_superclasses(["a", "b"], True)
    with pytest.raises(ValueError, match="at least one class"):
        from_superclasses({}, 0.5)
    with pytest.raises(
        TypeError, match=r"superclass of class 'b' to be a str or int node, but found None"
    ):
        from_superclasses({"a": "x", "b": None}, 0.5)
    with pytest.raises(TypeError, match="mapping"):
        from_superclasses("ab", 0.5)


# ----------------------------------------------------------------------------- real data


def test_cifar100_wordnet_tree() -> None:
    parsed = read_wordnet_hierarchy(
        shared_path("cifar100", "wordnet_parent_child.txt"),
        shared_path("cifar100", "wordnet_node_names.txt"),
    )
    names = shared_path("cifar100", "fine_label_names.txt").read_text().split()
    assert parsed.classes == names
    matrix = from_hierarchy(parsed.edges, parsed.classes)
    validate_similarity(matrix, 100)
    assert torch.equal(matrix, matrix.T)
    oak, pine, bus = names.index("oak_tree"), names.index("pine_tree"), names.index("bus")
    assert matrix[oak, pine] > matrix[oak, bus]
    parents = {child: parent for parent, child in parsed.edges}
    expected = _reference(parents, names)
    assert torch.equal(matrix, torch.from_numpy(expected).to(torch.float32))


@pytest.mark.parametrize(
    "form",
    [
        {"r": {"a": ["x", "y"], "b": None}},
        {"a": "r", "b": "r", "x": "a", "y": "a"},
        [("r", "a"), ("a", "x"), ("a", "y"), ("r", "b")],
    ],
    ids=["nested", "parents", "edges"],
)
def test_hierarchy_edges_from_every_form(form: Any) -> None:
    edges = hierarchy_edges(form)
    assert edges == [("r", "a"), ("a", "x"), ("a", "y"), ("r", "b")]
    assert torch.equal(from_hierarchy(edges), from_hierarchy(form))
