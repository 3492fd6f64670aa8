"""Readers of class-knowledge files: names, values, hierarchies (edge lists, JSON), superclasses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import shared_path
from simloss.similarity import (
    from_embeddings,
    from_hierarchy,
    from_superclasses,
    from_values,
    read_class_names,
    read_class_values,
    read_edge_list,
    read_fine_to_coarse,
    read_hierarchy,
    read_node_names,
    read_wordnet_hierarchy,
    validate_similarity,
)


def test_readers_round_trip(tmp_path: Path) -> None:
    (tmp_path / "names.txt").write_text("0 oak\n1 bus\n2 pine\n# comment\n3 tree\n4 entity\n")
    (tmp_path / "edges.txt").write_text("4 3\n3 0\n\n3 2\n4 1\n")
    names = read_node_names(tmp_path / "names.txt")
    assert names == {0: "oak", 1: "bus", 2: "pine", 3: "tree", 4: "entity"}
    edges = read_edge_list(tmp_path / "edges.txt", names)
    assert edges == [("entity", "tree"), ("tree", "oak"), ("tree", "pine"), ("entity", "bus")]
    parsed = read_wordnet_hierarchy(tmp_path / "edges.txt", tmp_path / "names.txt")
    assert parsed.classes == ["oak", "bus", "pine"]  # leaves by id
    assert read_edge_list(tmp_path / "edges.txt") == [
        ("4", "3"),
        ("3", "0"),
        ("3", "2"),
        ("4", "1"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 oak\n0 pine\n", r"names.txt:2: expected unique ids, but found id 0 again"),
        ("0 oak\n1 oak\n", r"names.txt:2: expected unique names, but found 'oak' again"),
        ("oak 0\n", r"names.txt:1: expected 'id name'"),
    ],
    ids=["id-twice", "name-twice", "swapped"],
)
def test_bad_node_names(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "names.txt").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_node_names(tmp_path / "names.txt")


def test_bad_edge_lists(tmp_path: Path) -> None:
    (tmp_path / "edges.txt").write_text("1 0\n1 7\n")
    with pytest.raises(ValueError, match=r"edges.txt:2: .* unknown node '7'"):
        read_edge_list(tmp_path / "edges.txt", {0: "a", 1: "b"})
    (tmp_path / "edges.txt").write_text("1 0 2\n")
    with pytest.raises(ValueError, match=r"edges.txt:1: expected 'parent child'"):
        read_edge_list(tmp_path / "edges.txt")


def test_fine_to_coarse_reader(tmp_path: Path) -> None:
    path = tmp_path / "f2c.tsv"
    path.write_text(
        "fine_index\tfine_label\tcoarse_index\tcoarse_label\n1\tbus\t1\tv\n0\toak\t0\tt\n"
    )
    assert read_fine_to_coarse(path) == {"oak": "t", "bus": "v"}
    path.write_text("fine_index\tfine_label\tcoarse_label\n0\toak\tt\n2\tbus\tv\n")
    with pytest.raises(ValueError, match=r"fine_index to hold 0..1 once each, but found \[0, 2\]"):
        read_fine_to_coarse(path)
    path.write_text("fine_label\tcoarse_label\noak\tt\noak\tv\n")
    with pytest.raises(ValueError, match=r"f2c.tsv:3: expected unique classes, but found 'oak'"):
        read_fine_to_coarse(path)
    path.write_text("fine\tcoarse\noak\tt\n")
    with pytest.raises(ValueError, match="columns 'fine_label' and 'coarse_label'"):
        read_fine_to_coarse(path)


# ----------------------------------------------------------------------------- names and values


@pytest.mark.parametrize("kind", ["str", "Path"])
def test_class_names(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "names.txt"
    path.write_text("# CIFAR-100\napple\n\n  aquarium fish  \nbaby\n")
    assert read_class_names(str(path) if kind == "str" else path) == [
        "apple",
        "aquarium fish",
        "baby",
    ]


def test_class_names_errors(tmp_path: Path) -> None:
    path = tmp_path / "names.txt"
    path.write_text("apple\npear\napple\n")
    with pytest.raises(ValueError, match=r"names.txt:3: expected each class name once, .*line 1"):
        read_class_names(path)
    path.write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="at least one class name"):
        read_class_names(path)
    path.write_bytes(b"apple\n\xff\n")
    with pytest.raises(ValueError, match=r"names.txt:2: expected UTF-8 text, but found byte 0xff"):
        read_class_names(path)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_class_names(tmp_path / "missing.txt")


def test_class_values(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_text("1\n2.5\n# x\n4\n")
    assert read_class_values(path) == (["1", "2.5", "4"], [1.0, 2.5, 4.0])
    path.write_text("young adult 30\nchild 5\n")  # a name may hold spaces: the value is last
    assert read_class_values(str(path)) == (["young adult", "child"], [30.0, 5.0])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a 1\n2\n", r"v.txt:2: expected every line as `value` or every line as `name value`"),
        ("a 1\nb x\n", r"v.txt:2: expected a number, but found 'x'"),
        ("a 1\nb nan\n", r"v.txt:2: expected a finite number, but found 'nan'"),
        ("a 1\na 2\n", r"v.txt:2: expected distinct class names, but found 'a' again"),
        ("\n", r"at least one class value"),
    ],
    ids=["mixed", "not-a-number", "nan", "name-twice", "empty"],
)
def test_class_values_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "v.txt").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_class_values(tmp_path / "v.txt")


# ----------------------------------------------------------------------------- read_hierarchy


TREE = {"entity": {"animal": ["cat", "dog"], "vehicle": ["bus"]}}


@pytest.mark.parametrize(
    "form",
    [
        TREE,
        {
            "animal": "entity",
            "vehicle": "entity",
            "cat": "animal",
            "dog": "animal",
            "bus": "vehicle",
        },
        [
            ["entity", "animal"],
            ["animal", "cat"],
            ["animal", "dog"],
            ["entity", "vehicle"],
            ["vehicle", "bus"],
        ],
    ],
    ids=["nested", "parents", "edges"],
)
def test_read_hierarchy_json_forms(tmp_path: Path, form: Any) -> None:
    path = tmp_path / "tree.json"
    path.write_text(json.dumps(form))
    parsed = read_hierarchy(str(path))
    assert parsed.classes == ["cat", "dog", "bus"]
    assert torch.equal(from_hierarchy(parsed.edges, parsed.classes), from_hierarchy(TREE))


def test_read_hierarchy_edge_list_and_ids(tmp_path: Path) -> None:
    (tmp_path / "tree.txt").write_text("entity animal\nanimal cat\nanimal dog\nentity bus\n")
    parsed = read_hierarchy(tmp_path / "tree.txt")
    assert parsed.classes == ["cat", "dog", "bus"]
    (tmp_path / "names.txt").write_text("0 dog\n1 cat\n2 animal\n3 entity\n")
    (tmp_path / "ids.txt").write_text("3 2\n2 1\n2 0\n")
    parsed = read_hierarchy(tmp_path / "ids.txt", tmp_path / "names.txt")
    assert parsed.classes == ["dog", "cat"]  # leaves by id


def test_read_hierarchy_json_numbers_are_names(tmp_path: Path) -> None:
    # a class file holds text: JSON integers are read as their text, so "--classes" can name them
    path = tmp_path / "tree.json"
    path.write_text(json.dumps([[0, 1], [0, 2]]))
    parsed = read_hierarchy(path)
    assert parsed.classes == ["1", "2"]
    assert from_hierarchy(parsed.edges, ["2", "1"]).shape == (2, 2)


@pytest.mark.parametrize(
    ("text", "message", "error"),
    [
        ("{", r"Could not parse hierarchy .*tree.json as JSON", ValueError),
        ('{"a": ["b"], "a": ["c"]}', r"each key once in hierarchy .*tree.json.*'a'", ValueError),
        ('[["a", NaN]]', r"JSON numbers in hierarchy .*tree.json, but found NaN", ValueError),
        ('"root"', r"expected a JSON object .* but found str", ValueError),
        ('[["a", "b", "c"]]', r"expected a list of \[parent, child\] pairs, but found", ValueError),
        ('[["a", 1.5]]', r"expected nodes to be strings or integers, but found 1.5", ValueError),
        ('{"a": {"b": 1.5}}', r"children of 'b' to be a mapping, a list or None", TypeError),
        ('[["a", 1e999]]', r"float range in hierarchy .*tree.json, but found 1e999", ValueError),
        (
            "[" * 100_000 + "]" * 100_000,
            r"hierarchy .*tree.json as JSON: nested deeper",
            ValueError,
        ),
    ],
    ids=[
        "syntax",
        "duplicate-key",
        "nan",
        "scalar",
        "triple",
        "float-node",
        "float-child",
        "overflow",
        "deep",
    ],
)
def test_read_hierarchy_json_errors(
    tmp_path: Path, text: str, message: str, error: type[Exception]
) -> None:
    (tmp_path / "tree.json").write_text(text)
    with pytest.raises(error, match=message):
        read_hierarchy(tmp_path / "tree.json")


@pytest.mark.parametrize(("name", "what"), [("tree.json", "Hierarchy"), ("edges.txt", "Edge list")])
def test_read_hierarchy_names_a_missing_file_or_a_folder(
    tmp_path: Path, name: str, what: str
) -> None:
    with pytest.raises(FileNotFoundError, match=rf"^{what} .*{name} does not exist$"):
        read_hierarchy(tmp_path / name)
    (tmp_path / name).mkdir()
    with pytest.raises(IsADirectoryError, match=rf"^Expected .*{name} to be a file, but it is a"):
        read_hierarchy(tmp_path / name)


def test_read_hierarchy_json_refuses_node_names(tmp_path: Path) -> None:
    (tmp_path / "tree.json").write_text(json.dumps(TREE))
    with pytest.raises(ValueError, match="`node_names` only with an edge list of ids"):
        read_hierarchy(tmp_path / "tree.json", tmp_path / "names.txt")


def test_indented_tree_is_not_an_edge_list(tmp_path: Path) -> None:
    # CIFAR-100's wordnet_hierarchy.txt is an indented tree: a one-line error says what is wanted
    (tmp_path / "tree.txt").write_text("entity\n-- animal\n---- cat\n")
    with pytest.raises(
        ValueError, match=r"tree.txt:1: expected 'parent child', but found 'entity'"
    ):
        read_hierarchy(tmp_path / "tree.txt")


# ----------------------------------------------------------------------------- real data


def test_cifar100_wordnet_via_read_hierarchy() -> None:
    parsed = read_hierarchy(
        shared_path("cifar100", "wordnet_parent_child.txt"),
        shared_path("cifar100", "wordnet_node_names.txt"),
    )
    expected = read_wordnet_hierarchy(
        str(shared_path("cifar100", "wordnet_parent_child.txt")),
        str(shared_path("cifar100", "wordnet_node_names.txt")),
    )
    assert parsed == expected
    assert parsed.classes == shared_path("cifar100", "fine_label_names.txt").read_text().split()


def test_cifar100_superclasses() -> None:
    mapping = read_fine_to_coarse(shared_path("cifar100", "fine_to_coarse.tsv"))
    names = shared_path("cifar100", "fine_label_names.txt").read_text().split()
    assert list(mapping) == names
    matrix = from_superclasses(mapping, 0.4)
    validate_similarity(matrix, 100)
    # CIFAR-100: 20 superclasses of 5 classes each
    assert (torch.count_nonzero(matrix, dim=1) == 5).all()
    assert matrix[names.index("oak_tree"), names.index("pine_tree")] == pytest.approx(0.4)
    assert matrix[names.index("oak_tree"), names.index("bus")] == 0


@pytest.mark.parametrize("kind", ["str", "Path"])
@pytest.mark.parametrize(
    ("build", "reader"),
    [
        (lambda p: from_hierarchy(p), "read_hierarchy"),
        (lambda p: from_superclasses(p, 0.5), "read_fine_to_coarse"),
        (lambda p: from_values(p, 0.5), "read_class_values"),
        (lambda p: from_embeddings(p), "class_name_vectors"),
    ],
    ids=["hierarchy", "superclasses", "values", "embeddings"],
)
def test_a_path_given_to_a_builder_names_its_reader(
    tmp_path: Path, kind: str, build: Any, reader: str
) -> None:
    # builders take data, readers take files: a path is never read as data, and the error says
    # which function reads it
    path = tmp_path / "knowledge.txt"
    with pytest.raises(TypeError, match=rf"knowledge\.txt.*{reader}\("):
        build(str(path) if kind == "str" else path)
