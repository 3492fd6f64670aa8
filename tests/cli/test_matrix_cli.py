"""``simloss matrix``: every source, the written files, the summary and usage errors."""

from __future__ import annotations

import csv
import json
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import shared_path
from simloss.cli import main
from simloss.similarity import (
    class_order,
    from_embeddings,
    from_hierarchy,
    from_superclasses,
    from_values,
    lower_bound,
)


def _read_csv(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0][1:]
    names = [row[0] for row in rows[1:]]
    values = np.array([[float(x) for x in row[1:]] for row in rows[1:]], dtype=np.float32)
    return header, names, values


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["matrix", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_order_writes_npy_and_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--order", "6", "--r", "0.5", "--out", str(tmp_path / "s")], capsys)
    assert code == 0
    saved = np.load(tmp_path / "s.npy")
    assert saved.dtype == np.float32
    assert np.array_equal(saved, class_order(6, 0.5).numpy())
    header, names, values = _read_csv(tmp_path / "s.csv")
    assert header == names == [str(i) for i in range(6)]
    assert np.array_equal(values, saved)  # the CSV text reads back exactly
    assert "6 classes" in out and "min 0.03125, max 0.5" in out
    assert "0.0% of off-diagonal entries are 0" in out
    assert "  0  1 0.500, 2 0.250, 3 0.125" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv", "s.npy"]  # no temp files left


def test_order_with_lower_bound(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        ["--order", "5", "--r", "0.5", "--lower-bound", "0.2", "--out", str(tmp_path / "s")], capsys
    )
    assert code == 0
    expected = lower_bound(class_order(5, 0.5), 0.2).numpy()
    assert np.array_equal(np.load(tmp_path / "s.npy"), expected)
    assert "lower bound 0.2" in out


def test_values_with_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bins.txt").write_text("# age-bin centres\nchild 5\nteen 15\n\nadult 40\n")
    argv = ["--values", str(tmp_path / "bins.txt"), "--r", "0.5", "--scale", "10"]
    code, out, _ = _run([*argv, "--out", str(tmp_path / "v")], capsys)
    assert code == 0
    assert np.array_equal(np.load(tmp_path / "v.npy"), from_values([5, 15, 40], 0.5, 10).numpy())
    assert _read_csv(tmp_path / "v.csv")[1] == ["child", "teen", "adult"]
    assert "child  teen 0.500, adult 0.088" in out


def test_values_without_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "v.txt").write_text("1\n2.5\n4\n")
    code, out, _ = _run(["--values", str(tmp_path / "v.txt"), "--r", "0.5"], capsys)
    assert code == 0
    assert "2.5  1 0.354, 4 0.354" in out  # both 0.5^1.5; ties keep file order


def test_names_with_npy_vectors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = ["cat", "dog", "car", "bus"]
    vectors = np.array([[1.0, 0.1, 0.0], [0.9, 0.2, 0.0], [0.0, 0.1, 1.0], [0.1, 0.0, 0.9]])
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    np.save(tmp_path / "vec.npy", vectors)
    argv = ["--names", str(tmp_path / "names.txt"), "--vectors", str(tmp_path / "vec.npy")]
    code, out, _ = _run([*argv, "--lower-bound", "0.3", "--out", str(tmp_path / "e")], capsys)
    assert code == 0
    expected = from_embeddings(vectors, 0.3).numpy()
    assert np.array_equal(np.load(tmp_path / "e.npy"), expected)
    assert "cat  dog" in out and "lower bound 0.3" in out


def test_names_with_word2vec_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gensim_models = pytest.importorskip("gensim.models")
    keyed = gensim_models.KeyedVectors(vector_size=3)
    words = ["pickup_truck", "sweet", "pepper", "apple"]
    weights = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 1], [0.5, 1, 0]], dtype=np.float32)
    keyed.add_vectors(words, weights)
    keyed.save_word2vec_format(str(tmp_path / "w.bin"), binary=True)
    (tmp_path / "names.txt").write_text("pickup truck\nsweet_pepper\napple\n")
    argv = ["--names", str(tmp_path / "names.txt"), "--vectors", str(tmp_path / "w.bin")]
    code, _, _ = _run([*argv, "--out", str(tmp_path / "w")], capsys)
    assert code == 0
    expected = from_embeddings(np.stack([weights[0], weights[1:3].mean(0), weights[3]]))
    assert np.array_equal(np.load(tmp_path / "w.npy"), expected.numpy())


def test_names_without_vectors_fail_with_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gensim_models = pytest.importorskip("gensim.models")
    keyed = gensim_models.KeyedVectors(vector_size=2)
    keyed.add_vectors(["cat"], np.ones((1, 2), dtype=np.float32))
    keyed.save_word2vec_format(str(tmp_path / "w.txt"))
    (tmp_path / "names.txt").write_text("cat\nzebra\nokapi\n")
    argv = ["--names", str(tmp_path / "names.txt"), "--vectors", str(tmp_path / "w.txt")]
    code, _, err = _run(argv, capsys)
    assert code == 1
    assert "'zebra'" in err and "'okapi'" in err


def test_hierarchy_edges_with_node_names_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    (tmp_path / "names.txt").write_text("0 oak\n1 bus\n2 pine\n3 tree\n4 vehicle\n5 entity\n")
    (tmp_path / "edges.txt").write_text("5 3\n5 4\n3 0\n3 2\n4 1\n")
    argv = ["--hierarchy", str(tmp_path / "edges.txt"), "--node-names", str(tmp_path / "names.txt")]
    code, out, _ = _run([*argv, "--out", str(tmp_path / "h"), "--plot"], capsys)
    assert code == 0
    tree = {"entity": {"tree": ["oak", "pine"], "vehicle": ["bus"]}}
    expected = from_hierarchy(tree, ["oak", "bus", "pine"]).numpy()
    assert np.array_equal(np.load(tmp_path / "h.npy"), expected)
    assert _read_csv(tmp_path / "h.csv")[1] == ["oak", "bus", "pine"]
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in out and "h.png" in out


def test_hierarchy_json_forms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nested = {"r": {"a": ["x", "y"], "b": ["z"]}}
    parents = {"a": "r", "b": "r", "x": "a", "y": "a", "z": "b"}
    edges = [["r", "a"], ["r", "b"], ["a", "x"], ["a", "y"], ["b", "z"]]
    expected = from_hierarchy(nested).numpy()
    for k, form in enumerate([nested, parents, edges]):
        path = tmp_path / f"h{k}.json"
        path.write_text(json.dumps(form))
        code, _, _ = _run(["--hierarchy", str(path), "--out", str(tmp_path / f"h{k}")], capsys)
        assert code == 0
        assert np.array_equal(np.load(tmp_path / f"h{k}.npy"), expected)


def test_hierarchy_with_class_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "edges.txt").write_text("r a\nr b\na x\na y\nb z\n")
    (tmp_path / "classes.txt").write_text("z\nx\n")
    argv = ["--hierarchy", str(tmp_path / "edges.txt"), "--classes", str(tmp_path / "classes.txt")]
    code, _, err = _run(argv, capsys)
    assert code == 1 and "leaves missing from `--classes`: 'y'" in err
    code, out, _ = _run([*argv, "--allow-extra-leaves"], capsys)
    assert code == 0 and "2 classes" in out


def test_superclasses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "f2c.tsv"
    path.write_text("fine_label\tcoarse_label\noak\ttrees\nbus\tvehicles\npine\ttrees\n")
    code, out, _ = _run(
        ["--superclasses", str(path), "--s", "0.25", "--out", str(tmp_path / "s")], capsys
    )
    assert code == 0
    mapping = {"oak": "trees", "bus": "vehicles", "pine": "trees"}
    assert np.array_equal(np.load(tmp_path / "s.npy"), from_superclasses(mapping, 0.25).numpy())
    assert re.search(r"\n  bus +\(none\)\n", out)


def test_summary_is_truncated(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--order", "40", "--r", "0.5", "--show", "5", "--neighbours", "2"], capsys)
    assert code == 0
    assert "first 5 of 40 classes" in out
    assert "... 35 more classes" in out
    assert "  39" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--order", "5"], "Expected --r R"),
        (["--order", "5", "--r", "1.0"], r"Expected `--r` in [0, 1), but found 1.0"),
        (["--order", "5", "--r", "0.5", "--s", "0.3"], "Expected --s only with --superclasses"),
        (["--order", "5", "--r", "0.5", "--plot"], "Expected --out PREFIX with --plot"),
        (["--order", "5", "--r", "0.5", "--out", "x.npy"], "prefix without extension"),
        (["--order", "5", "--r", "0.5", "--lower-bound", "1"], r"Expected `l` in [0, 1)"),
        (["--order", "0", "--r", "0.5"], "Expected `num_classes` >= 1"),
        (["--names", "missing.txt"], "missing.txt"),
        (["--names", "n.txt", "--vectors-format", "glove"], "--vectors-format only with --vectors"),
    ],
    ids=[
        "no-r",
        "r-range",
        "s-unused",
        "plot-no-out",
        "out-suffix",
        "l-range",
        "zero",
        "missing",
        "format-unused",
    ],
)
def test_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(argv, capsys)
    assert code == 1
    assert err.startswith("simloss matrix: error:")
    assert message in err


def test_exactly_one_source(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["matrix", "--order", "3", "--values", "v.txt", "--r", "0.5"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["matrix"])
    capsys.readouterr()


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["matrix", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "simloss matrix --order 90 --r 0.5" in out


def test_cifar100_wordnet_via_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edges = shared_path("cifar100", "wordnet_parent_child.txt")
    names = shared_path("cifar100", "wordnet_node_names.txt")
    argv = ["--hierarchy", str(edges), "--node-names", str(names), "--out", str(tmp_path / "wn")]
    code, out, _ = _run(argv, capsys)
    assert code == 0
    fine = shared_path("cifar100", "fine_label_names.txt").read_text().split()
    header, rows, values = _read_csv(tmp_path / "wn.csv")
    assert header == rows == fine
    oak, pine, bus = fine.index("oak_tree"), fine.index("pine_tree"), fine.index("bus")
    assert values[oak, pine] > values[oak, bus]
    assert torch.equal(torch.from_numpy(np.load(tmp_path / "wn.npy")), torch.from_numpy(values))
    assert "100 classes" in out and "first 20 of 100 classes" in out


# ----------------------------------------------------------------------------- the docs' examples

ROOT = Path(__file__).resolve().parents[2]
CIFAR_FILES = {"wordnet_parent_child.txt", "wordnet_node_names.txt"}


def _doc_files(text: str) -> dict[str, str]:
    """Example files shown in a doc as ```text blocks whose first line is ``# NAME``."""
    files = {}
    for block in re.findall(r"```text\n(.*?)```", text, flags=re.S):
        first, _, body = block.partition("\n")
        if first.startswith("# "):
            files[first[2:].strip()] = body
    return files


@pytest.mark.parametrize("doc", ["README.md", "docs/similarity.md"])
def test_docs_hierarchy_examples_run(
    doc: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # every `simloss matrix --hierarchy` line of the doc runs on the file the doc shows
    # (or, for CIFAR-100's files, on the real data)
    text = (ROOT / doc).read_text(encoding="utf-8")
    files = _doc_files(text)
    commands = [
        line.split("#")[0].strip()
        for line in text.splitlines()
        if line.startswith("simloss matrix") and "--hierarchy" in line
    ]
    assert commands, f"{doc} shows no `simloss matrix --hierarchy` example"
    monkeypatch.chdir(tmp_path)
    for command in commands:
        argv = shlex.split(command)[2:]
        for option in ("--hierarchy", "--node-names", "--classes"):
            if option not in argv:
                continue
            name = argv[argv.index(option) + 1]
            if name in files:
                (tmp_path / name).write_text(files[name])
            else:
                assert name in CIFAR_FILES, (
                    f"{doc}: `{command}` names {name} but shows no example of it"
                )
                source = shared_path("cifar100", name)  # skips without the real data
                (tmp_path / name).write_bytes(source.read_bytes())
        code, out, err = _run(argv, capsys)
        assert code == 0, f"{doc}: `{command}` failed: {err}"
        prefix = argv[argv.index("--out") + 1]
        assert (tmp_path / f"{prefix}.npy").is_file()
        assert "classes" in out


def test_plot_without_matplotlib_is_refused_before_anything_is_written(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # not installed
    prefix = tmp_path / "S"
    code, out, err = _run(["--order", "5", "--r", "0.5", "--out", str(prefix), "--plot"], capsys)
    assert code == 1 and out == "", (code, out)
    assert err.count("\n") == 1 and "pip install 'simloss[plot]'" in err, err
    assert list(tmp_path.iterdir()) == []
