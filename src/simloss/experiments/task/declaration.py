"""A task, declared once: the data, its classes, their similarity, the model and run defaults.

A task is what a training run learns: a table file, an image folder, feature
arrays or a Python factory (:class:`DataSource`), the classes its labels map
to (:class:`ClassSpec`), the similarity SimLoss builds from them
(:class:`SimilaritySpec`), the default model and the run settings the task
prefers (``[train]``). The built-in datasets (Abalone, UTKFace, AFAD,
CIFAR-100, :mod:`simloss.experiments.task.builtin`) are four such
declarations; a user's own task is a TOML (or JSON) file of the same fields
(``docs/your-data.md``):

.. code-block:: toml

    name = "wine"
    [data]
    kind = "table"
    path = "winequality-red.csv"   # relative to this file
    label = "quality"
    [classes]                      # numeric labels: ordered by value
    [similarity]
    kind = "order"                 # S_ij = r^|i-j|; sweeps vary r

Every key is checked when the file is read: an unknown key, a wrong type or
a value outside its choices is one line naming the file and the key. Nothing
here reads the data itself (:mod:`simloss.experiments.data` does).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "DATA_KINDS",
    "IMAGE_LAYOUTS",
    "MODEL_NAMES",
    "SIMILARITY_KINDS",
    "ClassSpec",
    "DataSource",
    "SimilaritySpec",
    "Task",
    "parse_task",
]

#: The kinds of data a task can declare.
DATA_KINDS: tuple[str, ...] = ("table", "images", "arrays", "factory")
#: How an image task finds its files and labels: one sub-folder per class
#: (``ImageFolder``), a CSV manifest of ``path,label``, or the public layouts of
#: UTKFace (the age first in the file name) and AFAD (``<age>/<gender>/*.jpg``).
IMAGE_LAYOUTS: tuple[str, ...] = ("folders", "manifest", "utkface", "afad")
#: Similarity sources (Kobs et al. 2020, Eq. 2 and 3; :mod:`simloss.similarity`) and
#: the parameter each one takes: the class order and class values take the reduction
#: factor ``r``; class-name vectors, sentence embeddings of the names and a
#: hierarchy take the lower bound ``l``; the identity (cross-entropy) takes none.
SIMILARITY_KINDS: Mapping[str, str | None] = MappingProxyType(
    {
        "order": "r",
        "values": "r",
        "embeddings": "l",
        "names": "l",
        "hierarchy": "l",
        "identity": None,
    }
)
#: The built-in models (:mod:`simloss.experiments.models`); a model may also be a
#: factory ``"module:function"``.
MODEL_NAMES: tuple[str, ...] = ("mlp", "linear", "cnn", "age_cnn", "lenet")

_FACTORY_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_SPLIT_METHODS = ("stratified", "random")
_OUTSIDE = ("error", "exclude", "clip")
_UNSEEN = ("error", "zeros")
_CHANNELS = ("rgb", "grey")


class TaskError(ValueError):
    """A task declaration that cannot be used (the message names the file and key)."""


def is_task_name(text: object) -> bool:
    """Whether ``text`` can name a task: letters, digits and ``_.+-``, a letter or digit first.

    Example:
        >>> is_task_name("wine-red"), is_task_name("bad name"), is_task_name(".hidden")
        (True, False, False)
    """
    return isinstance(text, str) and bool(_NAME_RE.match(text))


def is_factory(text: object) -> bool:
    """Whether ``text`` names a Python factory ``module:function``.

    Example:
        >>> is_factory("mypkg.data:make"), is_factory("mlp"), is_factory("C:/data")
        (True, False, False)
    """
    return isinstance(text, str) and bool(_FACTORY_RE.match(text))


@dataclass(frozen=True)
class DataSource:
    """Where the examples come from and how a raw example becomes a model input.

    Attributes:
        kind: ``"table"``, ``"images"``, ``"arrays"`` or ``"factory"``.
        path: the file or folder (absolute, or ``None`` for an embedded or
            ``data_dir``-given source).
        embedded: a packaged file (``simloss/data/<name>``) read when ``path``
            and ``data_dir`` are not given (Abalone).
        label: the label column (tables) or ``None``.
        features: the feature columns, in order (``None``: every other column).
        columns: the column names of a table without a header row.
        header: whether a table's first row names its columns.
        delimiter: the field separator (``None``: from the extension, tab for
            ``.tsv``/``.tab``, else comma).
        categorical: columns one-hot encoded (``None``: the non-numeric ones).
        categories: declared category levels of a column, in encoding order
            (else the sorted levels of the training split).
        unseen: a category unseen in training at prediction time: ``"error"``
            (refused by name) or ``"zeros"`` (an all-zero one-hot row).
        nonnegative: columns whose values must be >= 0 (a negative one is
            refused, naming the row).
        unscaled: columns used as they are (not standardised).
        split_column: a column (or manifest column / array key) holding
            ``train``, ``val`` or ``test`` per row; ``None``: a seeded split.
        split: the seeded split: ``"stratified"`` (by class) or ``"random"``.
        layout: how an image task finds files and labels (:data:`IMAGE_LAYOUTS`).
        size: ``(height, width)`` images are resized to.
        channels: ``"rgb"`` (3 channels) or ``"grey"`` (1).
        arrays: the keys (``.npz``) or files (``.npy``) of ``X``, ``y`` and the split.
        factory: ``"module:function"`` of a factory task.
        files: the files and folders a user's factory reads besides its module
            (``data.files``; absolute): their bytes enter a sweep's data
            fingerprint, as a table's file does.
        requires_data_dir: a factory that cannot run without ``data_dir``.
        settings: the run settings (``TrainConfig`` fields) the source reads,
            mapped to the reader's keyword.
    """

    kind: str
    path: Path | None = None
    embedded: str | None = None
    label: str | None = None
    features: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None
    header: bool = True
    delimiter: str | None = None
    categorical: tuple[str, ...] | None = None
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unseen: str = "error"
    nonnegative: tuple[str, ...] = ()
    unscaled: tuple[str, ...] = ()
    split_column: str | None = None
    split: str = "stratified"
    layout: str = "folders"
    size: tuple[int, int] | None = None
    channels: str = "rgb"
    arrays: Mapping[str, str] = field(default_factory=dict)
    factory: str | None = None
    files: tuple[Path, ...] = ()
    requires_data_dir: bool = False
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClassSpec:
    """The classes a task's labels map to.

    Attributes:
        order: the labels of the classes in class order (``None``: numeric
            labels sorted by value; text labels of ordered classes are then
            refused, as an alphabetical order is no order).
        values: the value of each class for MAE/MSE (``None``: a numeric
            label's number, else the class index).
        names: the name of each class (``None``: the labels as text).
        ordered: whether the classes are ordered (ordinal losses, MAE/MSE).
        outside: a numeric label outside ``[first, last]`` class:
            ``"error"`` (refused by name), ``"exclude"`` (dropped and counted)
            or ``"clip"`` (merged into the edge class, e.g. Abalone's ``>=20``).
        empty: ``"error"``: a class without a training example is refused by
            name; ``"allow"``: kept (an age range with a gap).
        range: integer classes ``first..last`` (ages), when ``order`` is not given.
        superclasses: the superclass index of every class (SA/FSA), or ``None``.
        hierarchy: a hierarchy file whose leaves are the class names (loss ``hxe``).
        hierarchy_names: an ``id name`` file for a hierarchy of integer ids.
    """

    order: tuple[Any, ...] | None = None
    values: tuple[float, ...] | Mapping[str, float] | None = None
    names: tuple[str, ...] | None = None
    ordered: bool = True
    outside: str = "error"
    empty: str = "error"
    range: tuple[int, int] | None = None
    superclasses: tuple[int, ...] | None = None
    hierarchy: Path | None = None
    hierarchy_names: Path | None = None


@dataclass(frozen=True)
class SimilaritySpec:
    """How SimLoss's similarity is built from the classes (:mod:`simloss.similarity`).

    Attributes:
        kind: a key of :data:`SIMILARITY_KINDS`.
        grid: the values of its parameter a sweep takes by default (``None``:
            ``r = 0, 0.1, ..., 0.9``, or the same and ``0.99`` for ``l``).
        scale: for ``"values"``: the value distance of one step of the order.
        vectors: for ``"embeddings"``: a ``.npy`` file of one row per class (in
            the source's label order), or a word2vec/GloVe file read through gensim.
    """

    kind: str = "order"
    grid: tuple[float, ...] | None = None
    scale: float = 1.0
    vectors: Path | None = None

    @property
    def param(self) -> str | None:
        """The swept parameter (``"r"``, ``"l"`` or ``None``)."""
        return SIMILARITY_KINDS[self.kind]


_TENTHS = tuple(round(0.1 * i, 1) for i in range(10))
#: The default grid of each similarity parameter (the paper's).
PARAM_GRIDS: Mapping[str, tuple[float, ...]] = MappingProxyType(
    {"r": _TENTHS, "l": (*_TENTHS, 0.99)}
)
#: Ordered classes record MAE and MSE under every decoder.
ORDINAL_DECODERS: tuple[str, ...] = ("argmax", "expectation", "median")


@dataclass(frozen=True)
class Task:
    """One task of the experiments (a built-in dataset or a user's declaration).

    Attributes:
        name: the name in records, reports and sweeps (``dataset`` of a record).
        title: the name as printed.
        data: where the examples come from.
        classes: the classes.
        similarity: SimLoss's similarity.
        model: the default model (:data:`MODEL_NAMES` or ``"module:function"``;
            ``None`` for a factory task: the model its factory returns, else an
            MLP for features and a small CNN for images).
        defaults: run settings (``TrainConfig`` fields) the task prefers.
        paper: the paper's own settings for a built-in dataset of the paper
            (a report states what differs), else ``None``.
        paper_table: the paper's table of results (1 or 2), if any.
        paper_data: the paper's data, in words.
        file: the declaration file (``None``: built in).
        sha256: the SHA-256 of the declaration's canonical JSON (paths as
            written in the file), so the same task at another path is the same task.
    """

    name: str
    title: str
    data: DataSource
    classes: ClassSpec
    similarity: SimilaritySpec
    model: str | None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    paper: Mapping[str, Any] | None = None
    paper_table: int | None = None
    paper_data: str | None = None
    file: Path | None = None
    sha256: str | None = None

    # ---------------------------------------------------------------- facts
    @property
    def ordinal(self) -> bool:
        """Whether the classes are ordered."""
        return self.classes.ordered

    @property
    def param(self) -> str | None:
        """The similarity parameter sweeps vary (``"r"``, ``"l"`` or ``None``)."""
        return self.similarity.param

    @property
    def grid(self) -> tuple[float, ...]:
        """The default grid of :attr:`param` (empty without one)."""
        if self.similarity.grid is not None:
            return self.similarity.grid
        return PARAM_GRIDS[self.param] if self.param is not None else ()

    @property
    def metrics(self) -> tuple[str, ...]:
        """The record metrics of a run, in the paper's column order.

        Ordered classes: accuracy, MAE and MSE; classes with superclasses:
        accuracy, superclass accuracy and failed-superclass accuracy; else accuracy.
        """
        if self.ordinal:
            return ("acc", "mae", "mse")
        if self.classes.superclasses is not None:
            return ("acc", "sa", "fsa")
        return ("acc",)

    @property
    def decoders(self) -> tuple[str, ...]:
        """The decoders under which runs record MAE and MSE (ordered classes: three)."""
        return ORDINAL_DECODERS if self.ordinal else ("argmax",)

    @property
    def record_metrics(self) -> tuple[str, ...]:
        """Every metric key a run records: the metrics of :mod:`simloss.metrics` the task
        allows (:func:`simloss.metrics.metric_keys`: ordered classes, or superclasses with
        their two-level hierarchy), MAE/MSE under every decoder.

        Example:
            >>> from simloss.experiments.task import builtin_task
            >>> builtin_task("abalone").record_metrics[:8]
            ('acc', 'mae', 'mse', 'qwk', 'amae', 'mmae', 'rps', 'ms')
            >>> builtin_task("abalone").record_metrics[-4:]
            ('mae_expectation', 'mse_expectation', 'mae_median', 'mse_median')
            >>> builtin_task("cifar100").record_metrics[:6]
            ('acc', 'sa', 'fsa', 'mistake_severity', 'hdist_top5', 'hf')
        """
        from simloss.metrics import metric_keys

        superclasses = self.classes.superclasses is not None
        return metric_keys(
            ordered=self.ordinal,
            superclasses=superclasses,
            hierarchy=superclasses,
            decoders=self.decoders,
        )

    @property
    def monitors(self) -> tuple[str, ...]:
        """The validation metrics early stopping can watch: the record metrics and ``loss``."""
        return (*self.record_metrics, "loss")

    @property
    def cce_value(self) -> float | None:
        """The value of :attr:`param` at which SimLoss is plain cross-entropy (r = 0, l = 0.99)."""
        return {"r": 0.0, "l": 0.99}.get(self.param or "")

    @property
    def needs_data_dir(self) -> bool:
        """Whether a run must be given ``data_dir`` (no path declared, nothing embedded)."""
        if self.data.kind == "factory":
            return self.data.requires_data_dir
        return self.data.path is None and self.data.embedded is None

    @property
    def embedded(self) -> str | None:
        """The packaged data file read without ``data_dir``, if any."""
        return self.data.embedded

    def takes(self, setting: str) -> bool:
        """Whether the task's data reader reads a run setting (``TrainConfig`` field)."""
        return setting in self.data.settings

    @property
    def builtin(self) -> bool:
        """Whether the task is one of simloss's built-in datasets."""
        return self.file is None


# ---------------------------------------------------------------------------
# Parsing a declaration (TOML or JSON, already decoded to a dict)
# ---------------------------------------------------------------------------


class _Reader:
    """Typed access to one table of a declaration; errors name the file and the key."""

    def __init__(self, data: Mapping[str, Any], where: str, prefix: str = "") -> None:
        self.data = data
        self.where = where
        self.prefix = prefix
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def fail(self, name: str, expected: str, found: Any) -> TaskError:
        return TaskError(
            f"Expected `{self.key(name)}` in {self.where} to be {expected}, but found "
            f"{_show(found)}"
        )

    def get(self, name: str) -> Any:
        self.used.add(name)
        return self.data.get(name)

    def string(self, name: str, default: str | None = None, choices: tuple[str, ...] = ()) -> Any:
        value = self.get(name)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise self.fail(name, "a non-empty string", value)
        if choices and value not in choices:
            raise self.fail(name, f"one of {list(choices)}", value)
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(name, "true or false", value)
        return value

    def number(self, name: str, default: float) -> float:
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, "a number", value)
        if not math.isfinite(float(value)):
            raise self.fail(name, "a finite number", value)
        return float(value)

    def strings(self, name: str) -> tuple[str, ...] | None:
        value = self.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(name, "a list of non-empty strings", value)
        duplicates = sorted({v for v in value if value.count(v) > 1})
        if duplicates:
            raise self.fail(name, "a list without repeats", f"{duplicates} more than once")
        return tuple(value)

    def numbers(self, name: str) -> tuple[float, ...] | None:
        value = self.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(_is_number(v) for v in value):
            raise self.fail(name, "a list of finite numbers", value)
        return tuple(float(v) for v in value)

    def path(self, name: str, base: Path | None) -> Path | None:
        value = self.string(name)
        if value is None:
            return None
        path = Path(value).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        return path

    def table(self, name: str) -> Mapping[str, Any]:
        value = self.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(name, "a table (mapping)", value)
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise TaskError(
                f"Unknown key(s) {[self.key(k) for k in unknown]} in {self.where}; expected "
                f"some of {sorted(self.key(k) for k in self.used)}"
            )


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


#: float32's largest value: class values enter the metrics in float32.
_FLOAT32_MAX = 3.4028234663852886e38
_CLASS_VALUE = "finite numbers within the float32 range (integers within +-2**53)"


def _is_class_value(value: Any) -> bool:
    """A number a class may stand for: finite in float32, an integer exact in float64."""
    if not _is_number(value) or abs(float(value)) > _FLOAT32_MAX:
        return False
    return not isinstance(value, int) or abs(value) <= 2**53


def _is_number(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(float(value))
    )


def _data_source(reader: _Reader, base: Path | None) -> DataSource:
    kind = reader.string("kind", choices=DATA_KINDS)
    if kind is None:
        raise reader.fail("kind", f"one of {list(DATA_KINDS)}", None)
    path = reader.path("path", base)
    settings = {"val_fraction": "val_fraction", "test_fraction": "test_fraction"}
    settings.update({"split_seed": "split_seed", "limit": "limit"})
    common: dict[str, Any] = {"kind": kind, "path": path}
    if kind == "table":
        label = reader.string("label")
        if label is None:
            raise reader.fail("label", "the name of the label column", None)
        header = reader.boolean("header", True)
        columns = reader.strings("columns")
        if not header and columns is None:
            raise reader.fail("columns", "the column names (the table has no header row)", None)
        categories = {}
        for column, levels in reader.table("categories").items():
            if not isinstance(levels, list) or not levels:
                raise reader.fail(f"categories.{column}", "a non-empty list of levels", levels)
            text = [str(v) for v in levels]
            if len(set(text)) != len(text):
                raise reader.fail(f"categories.{column}", "levels without repeats", levels)
            categories[str(column)] = tuple(text)
        delimiter = reader.string("delimiter")
        if delimiter is not None and len(delimiter) != 1:
            raise reader.fail("delimiter", "one character", delimiter)
        source = DataSource(
            **common,
            label=label,
            features=reader.strings("features"),
            columns=columns,
            header=header,
            delimiter=delimiter,
            categorical=reader.strings("categorical"),
            categories=MappingProxyType(categories),
            unseen=reader.string("unseen", "error", _UNSEEN),
            nonnegative=reader.strings("nonnegative") or (),
            unscaled=reader.strings("unscaled") or (),
            split_column=reader.string("split_column"),
            split=reader.string("split", "stratified", _SPLIT_METHODS),
            settings=MappingProxyType({"data_dir": "path", **settings}),
        )
        named = [label, *(source.features or ()), *(source.categorical or ())]
        named += [*source.categories, *source.nonnegative, *source.unscaled]
        if source.split_column is not None:
            named.append(source.split_column)
        if columns is not None:
            absent = sorted({c for c in named if c not in columns})
            if absent:
                raise reader.fail("columns", f"a list naming every column used ({absent})", columns)
        if source.features is not None and label in source.features:
            raise reader.fail(
                "features", f"columns other than the label {label!r}", source.features
            )
        if source.features is not None and source.split_column in source.features:
            raise reader.fail(
                "features",
                f"columns other than the split column {source.split_column!r}",
                source.features,
            )
        return source
    if kind == "images":
        layout = reader.string("layout")
        if layout is None:
            layout = (
                "manifest"
                if path is not None and path.suffix.lower() in (".csv", ".tsv")
                else "folders"
            )
        if layout not in IMAGE_LAYOUTS:
            raise reader.fail("layout", f"one of {list(IMAGE_LAYOUTS)}", layout)
        size_value = reader.get("size")
        if size_value is None:
            raise reader.fail(
                "size", "the side of the resized images (an int, or [height, width])", None
            )
        size = _size(reader, size_value)
        split_column = reader.string("split_column")
        if split_column is not None and layout != "manifest":
            raise reader.fail("split_column", "absent unless layout = 'manifest'", split_column)
        return DataSource(
            **common,
            layout=layout,
            size=size,
            channels=reader.string("channels", "rgb", _CHANNELS),
            split_column=split_column,
            split=reader.string("split", "stratified", _SPLIT_METHODS),
            settings=MappingProxyType(
                {
                    "data_dir": "path",
                    **settings,
                    "cache_dir": "cache_dir",
                    "skip_unreadable": "skip_unreadable",
                    "progress": "progress",
                }
            ),
        )
    if kind == "arrays":
        keys = {"X": "X", "y": "y", "split": "split"}
        files = {}
        for name in ("features_file", "labels_file", "split_file"):
            file = reader.path(name, base)
            if file is not None:
                files[name] = file
        if path is None and "features_file" not in files:
            raise reader.fail(
                "path", "an .npz file (keys X, y, optional split) or features_file", None
            )
        if path is not None and files:
            raise reader.fail("features_file", "absent when `data.path` (an .npz) is given", files)
        if path is None and "labels_file" not in files:
            raise reader.fail("labels_file", "a .npy file of labels beside features_file", None)
        arrays = dict(keys)
        for name, file in files.items():
            arrays[name] = str(file)
        return DataSource(
            **common,
            arrays=MappingProxyType(arrays),
            split=reader.string("split", "stratified", _SPLIT_METHODS),
            unscaled=_column_indices(reader, "unscaled_columns"),
            settings=MappingProxyType({"data_dir": "path", **settings}),
        )
    factory = reader.string("factory")
    if factory is None or not is_factory(factory):
        raise reader.fail("factory", "'module:function'", factory)
    listed = reader.get("files")
    if not isinstance(listed, list) or not all(isinstance(v, str) and v for v in listed):
        raise reader.fail(
            "files",
            "the list of files and folders the factory reads besides its module ([] for none; "
            "a sweep fingerprints their bytes)",
            listed,
        )
    reads: list[Path] = []
    for value in listed:
        read = Path(value).expanduser()
        reads.append(read if read.is_absolute() or base is None else base / read)
    return DataSource(
        **common,
        factory=factory,
        files=tuple(reads),
        settings=MappingProxyType({"data_dir": "data_dir", "split_seed": "split_seed"}),
    )


def _column_indices(reader: _Reader, name: str) -> tuple[str, ...]:
    value = reader.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        raise reader.fail(name, "a list of column indices >= 0", value)
    return tuple(str(v) for v in value)


def _size(reader: _Reader, value: Any) -> tuple[int, int]:
    sides = value if isinstance(value, list) else [value, value]
    if (
        len(sides) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in sides)
        or not all(4 <= v <= 4096 for v in sides)
    ):
        raise reader.fail("size", "an int in [4, 4096] or [height, width] of such ints", value)
    return int(sides[0]), int(sides[1])


def _class_spec(reader: _Reader, base: Path | None) -> ClassSpec:
    order_value = reader.get("order")
    order: tuple[Any, ...] | None = None
    if order_value is not None:
        if not isinstance(order_value, list) or len(order_value) < 2:
            raise reader.fail("order", "a list of at least two class labels", order_value)
        texts = all(isinstance(v, str) and v.strip() for v in order_value)
        numbers = all(_is_number(v) for v in order_value)
        if not (texts or numbers):
            raise reader.fail("order", "labels that are all strings or all numbers", order_value)
        if numbers and not all(_is_class_value(v) for v in order_value):
            bad = next(v for v in order_value if not _is_class_value(v))
            raise reader.fail("order", _CLASS_VALUE, f"{bad!r} among {order_value!r}")
        keys = [str(v) if texts else float(v) for v in order_value]
        repeated = sorted({str(v) for v in keys if keys.count(v) > 1})
        if repeated:
            raise reader.fail("order", "labels without repeats", f"{repeated} more than once")
        order = tuple(order_value)
    values_value = reader.get("values")
    values: tuple[float, ...] | Mapping[str, float] | None = None
    if isinstance(values_value, dict):
        if not all(_is_class_value(v) for v in values_value.values()):
            raise reader.fail("values", f"a mapping of labels to {_CLASS_VALUE}", values_value)
        values = MappingProxyType({str(k): float(v) for k, v in values_value.items()})
    elif values_value is not None:
        if not isinstance(values_value, list) or not all(_is_class_value(v) for v in values_value):
            raise reader.fail("values", f"a list of {_CLASS_VALUE} or a mapping", values_value)
        values = tuple(float(v) for v in values_value)
    range_value = reader.get("range")
    class_range: tuple[int, int] | None = None
    if range_value is not None:
        if (
            not isinstance(range_value, list)
            or len(range_value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in range_value)
            or range_value[1] <= range_value[0]
        ):
            raise reader.fail("range", "[first, last] integers with first < last", range_value)
        if not all(_is_class_value(v) for v in range_value):
            raise reader.fail("range", f"[first, last] {_CLASS_VALUE}", range_value)
        if order is not None:
            raise reader.fail("range", "absent when `classes.order` is given", range_value)
        class_range = (int(range_value[0]), int(range_value[1]))
    superclasses = reader.get("superclasses")
    coarse: tuple[int, ...] | None = None
    if superclasses is not None:
        if not isinstance(superclasses, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in superclasses
        ):
            raise reader.fail("superclasses", "a list of superclass indices >= 0", superclasses)
        coarse = tuple(superclasses)
    spec = ClassSpec(
        order=order,
        values=values,
        names=reader.strings("names"),
        ordered=reader.boolean("ordered", True),
        outside=reader.string("outside", "error", _OUTSIDE),
        empty=reader.string("empty", "error", ("error", "allow")),
        range=class_range,
        superclasses=coarse,
        hierarchy=reader.path("hierarchy", base),
        hierarchy_names=reader.path("hierarchy_names", base),
    )
    count = len(order) if order is not None else None
    if class_range is not None:
        count = class_range[1] - class_range[0] + 1
    for name, given in (("values", values), ("names", spec.names), ("superclasses", coarse)):
        if isinstance(given, tuple) and count is not None and len(given) != count:
            raise reader.fail(name, f"{count} entries (one per class)", f"{len(given)}")
        if isinstance(given, tuple) and count is None:
            raise reader.fail(
                name, "a mapping by label (or give `classes.order` for a list)", list(given)
            )
    if isinstance(values, tuple) and len(set(values)) != len(values):
        raise reader.fail("values", "distinct values", list(values))
    if spec.hierarchy_names is not None and spec.hierarchy is None:
        raise reader.fail(
            "hierarchy_names", "absent without `classes.hierarchy`", str(spec.hierarchy_names)
        )
    return spec


def _similarity_spec(reader: _Reader, base: Path | None, classes: ClassSpec) -> SimilaritySpec:
    default = "order" if classes.ordered else "identity"
    kind = reader.string("kind", default, tuple(SIMILARITY_KINDS))
    grid = reader.numbers("grid")
    scale = reader.number("scale", 1.0)
    if scale <= 0:
        raise reader.fail("scale", "a number > 0", scale)
    spec = SimilaritySpec(kind=kind, grid=grid, scale=scale, vectors=reader.path("vectors", base))
    if kind in ("order", "values") and not classes.ordered:
        raise reader.fail(
            "kind",
            "a similarity of unordered classes (embeddings, names, hierarchy, identity)",
            kind,
        )
    if kind == "embeddings" and spec.vectors is None:
        raise reader.fail("vectors", "a file of class vectors for kind 'embeddings'", None)
    if kind == "hierarchy" and classes.hierarchy is None:
        raise TaskError(
            f"Expected `classes.hierarchy` in {reader.where} for similarity kind 'hierarchy', "
            "but found none"
        )
    if grid is not None:
        param = SIMILARITY_KINDS[kind]
        if param is None:
            raise reader.fail("grid", "absent for the identity (it has no parameter)", list(grid))
        bad = [v for v in grid if not 0.0 <= v < 1.0]
        if bad or not grid:
            raise reader.fail("grid", f"values of {param} in [0, 1)", list(grid))
    return spec


def parse_task(raw: Mapping[str, Any], where: str, *, base: Path | None = None) -> Task:
    """Build a :class:`Task` from a decoded declaration, checking every key.

    Args:
        raw: the declaration (a TOML or JSON object).
        where: the file, for messages.
        base: the folder relative paths are taken from (the file's folder).

    Raises:
        TaskError: an unknown key, a missing or malformed value (one line
            naming the file and the key).

    Example:
        >>> task = parse_task({"name": "era", "data": {"kind": "table", "path": "era.csv",
        ...                    "label": "label"}}, "era.toml")
        >>> task.ordinal, task.param, task.grid[:3], task.model, task.metrics
        (True, 'r', (0.0, 0.1, 0.2), 'mlp', ('acc', 'mae', 'mse'))
        >>> parse_task({"name": "x", "data": {"kind": "table", "label": "y", "lable": 1}},
        ...            "x.toml")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        simloss.experiments.task.declaration.TaskError: Unknown key(s) ['data.lable'] in x.toml; ...
    """
    if not isinstance(raw, Mapping):
        raise TaskError(f"Expected a task declaration (a table) in {where}, but found {_show(raw)}")
    top = _Reader(raw, where)
    name = top.string("name")
    if name is None or not is_task_name(name):
        raise top.fail(
            "name", "a name of letters, digits and _.+- (used in records and reports)", name
        )
    title = top.string("title", name)
    data_reader = _Reader(top.table("data"), where, "data.")
    if "data" not in raw:
        raise top.fail("data", "a [data] table", None)
    data = _data_source(data_reader, base)
    data_reader.finish()
    class_reader = _Reader(top.table("classes"), where, "classes.")
    classes = _class_spec(class_reader, base)
    class_reader.finish()
    similarity_reader = _Reader(top.table("similarity"), where, "similarity.")
    similarity = _similarity_spec(similarity_reader, base, classes)
    similarity_reader.finish()
    model = top.string("model")
    if model is None and data.kind != "factory":
        model = "cnn" if data.kind == "images" else "mlp"
    if model is not None and model not in MODEL_NAMES and not is_factory(model):
        raise top.fail("model", f"one of {list(MODEL_NAMES)} or 'module:function'", model)
    defaults = {**_run_defaults(data, classes), **top.table("train")}
    top.finish()
    if (
        data.kind == "table"
        and classes.superclasses is not None
        and classes.order is None
        and classes.range is None
    ):
        raise class_reader.fail(
            "superclasses", "given with `classes.order` or `classes.range`", "neither"
        )
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return Task(
        name=name,
        title=title,
        data=data,
        classes=classes,
        similarity=similarity,
        model=model,
        defaults=MappingProxyType(defaults),
        file=Path(where) if base is not None else None,
        sha256=hashlib.sha256(canonical.encode()).hexdigest(),
    )


def _run_defaults(data: DataSource, classes: ClassSpec) -> dict[str, Any]:
    """The run settings of a user's task that its ``[train]`` table does not set.

    Adam with the paper's learning rate, up to 200 epochs with early stopping
    after 20 without a better validation MAE (ordered classes; accuracy for
    unordered ones), batches of 256, and a 60/20/20 split where the data has
    no split of its own.
    """
    defaults: dict[str, Any] = {
        "epochs": 200,
        "patience": 20,
        "monitor": "mae" if classes.ordered else "acc",
        "batch_size": 256,
    }
    if data.kind != "factory":
        defaults.update(val_fraction=0.2, test_fraction=0.2)
    return defaults


def task_fields() -> list[str]:
    """The names of :class:`Task`'s fields (for documentation and tests)."""
    return [f.name for f in fields(Task)]
