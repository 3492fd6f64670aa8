"""Labels to classes: the one place a raw label (a table cell, a folder name, an array value) becomes a class.

A task's :class:`~simloss.experiments.task.ClassSpec` says which classes exist
and in which order; :func:`build_classes` turns it and the labels found in the
data into :class:`Classes` (the label, value and name of every class), and
:func:`encode_labels` maps every raw label to its class index, refusing what
is not a class (or excluding or clipping it where the task says so), naming
the row.

Numbers are read strictly (:func:`parse_number`): ASCII decimal notation
only, so ``1_0``, a full-width digit, ``nan``, ``inf`` or ``0x10`` (which
Python's ``float`` would accept) are refused, not read as something else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simloss.experiments.task import ClassSpec

__all__ = [
    "EXACT_INTEGERS",
    "Classes",
    "LabelCodes",
    "build_classes",
    "check_present",
    "encode_labels",
    "format_label",
    "is_number_text",
    "number_column",
    "parse_number",
]

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER_RE = re.compile(_NUMBER, re.ASCII)
_INTEGER_RE = re.compile(r"[+-]?\d+", re.ASCII)
# Characters outside plain decimal notation (a column of numbers is checked in one pass).
_NUMBER_CHARS = re.compile(r"[^0-9+\-.eE \t\n]")
_INTEGER_CHARS = re.compile(r"[^0-9+\- \t\n]")
#: The largest float32 magnitude: a feature beyond it is infinite for the model.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def is_number_text(text: str) -> bool:
    """Whether ``text`` is a number in plain ASCII decimal notation (surrounding spaces allowed).

    Example:
        >>> [is_number_text(t) for t in ("3", " -0.5e3 ", "1_0", "\\uff14", "nan", "inf", "")]
        [True, True, False, False, False, False, False]
    """
    return _NUMBER_RE.fullmatch(text.strip()) is not None


def number_column(cells: Sequence[str], *, integer: bool = False) -> np.ndarray | None:
    """The cells as float64 when every one is a number (an integer) in plain decimal notation, else ``None``.

    A column of 100,000 cells is checked in milliseconds: the joined text may
    hold only ASCII digits, signs, points, exponents and spaces (so ``nan``,
    ``inf``, ``1_0`` and full-width digits, which Python's ``float`` and
    NumPy read, are refused), and NumPy must read every cell.

    Example:
        >>> number_column(["1", " 2.5", "3e2"]).tolist(), number_column(["1", "1_0"])
        ([1.0, 2.5, 300.0], None)
        >>> number_column(["1", "2.0"], integer=True) is None, number_column(["nan"])
        (True, None)
    """
    if not cells:
        return np.zeros(0, dtype=np.float64)
    joined = "\n".join(cells)
    allowed = _INTEGER_CHARS if integer else _NUMBER_CHARS
    if joined.count("\n") != len(cells) - 1 or allowed.search(joined) is not None:
        return None
    try:
        return np.array(cells, dtype=np.float64)
    except ValueError:
        return None


def parse_number(text: str, where: str) -> float:
    """A finite number from ``text`` (strict ASCII decimal notation), or a one-line error.

    Raises:
        ValueError: not such a number (naming ``where``), or beyond the float32
            range (``1e300`` is finite in float64 but infinite in float32).

    Example:
        >>> parse_number("0.455", "x"), parse_number(" 7 ", "x")
        (0.455, 7.0)
        >>> parse_number("1_0", "abalone.data line 3, column length")
        Traceback (most recent call last):
        ...
        ValueError: Expected a number in abalone.data line 3, column length, but found '1_0'
    """
    if not is_number_text(text):
        raise ValueError(f"Expected a number in {where}, but found {text!r}")
    value = float(text)
    if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
        raise ValueError(
            f"Expected a number within the float32 range (|x| <= 3.4e38) in {where}, but "
            f"found {text.strip()!r}"
        )
    return value


def format_label(value: Any) -> str:
    """A label as text: numbers without a trailing ``.0`` (``3.0`` -> ``"3"``).

    Example:
        >>> format_label(3.0), format_label(2.5), format_label("high")
        ('3', '2.5', 'high')
    """
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    return str(value)


@dataclass(frozen=True)
class Classes:
    """The classes of a task, in class order.

    Attributes:
        labels: the label each class stands for (a float for numeric labels,
            else the text).
        values: the value of each class for MAE/MSE.
        names: the name of each class.
        ordered: whether the classes are ordered.
        numeric: whether the labels are numbers.
    """

    labels: tuple[Any, ...]
    values: tuple[float, ...]
    names: tuple[str, ...]
    ordered: bool
    numeric: bool

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class LabelCodes:
    """Raw labels mapped to classes.

    Attributes:
        targets: int64 class index of every kept example.
        keep: bool mask over the raw labels: ``False`` for an example excluded
            (a label outside the classes where the task says ``outside = "exclude"``).
        excluded: how many were excluded.
        clipped: how many were merged into an edge class (``outside = "clip"``).
    """

    targets: np.ndarray
    keep: np.ndarray
    excluded: int
    clipped: int

    def info(self) -> dict[str, int]:
        """The counts a run's record keeps (``data_info``): labels excluded or clipped."""
        out = {}
        if self.excluded:
            out["excluded_outside_classes"] = self.excluded
        if self.clipped:
            out["clipped_to_edge_classes"] = self.clipped
        return out


#: The largest integer float64 holds exactly (and every integer below it): beyond it two
#: integer labels can become one number.
EXACT_INTEGERS = 2**53


def _row(rows: Sequence[str] | None, index: int, where: str) -> str:
    return rows[index] if rows is not None else f"{where} example {index}"


def _is_missing(label: Any) -> bool:
    """An empty cell, ``None`` or a NaN: no label (never a class)."""
    if label is None:
        return True
    if isinstance(label, str):
        return not label.strip()
    return isinstance(label, (float, np.floating)) and math.isnan(label)


def check_present(labels: Sequence[Any], rows: Sequence[str] | None, where: str) -> None:
    """Refuse a missing label (an empty cell, ``None`` or NaN), naming its row.

    Raises:
        ValueError: ``"Expected a label in era.csv line 17, column 'rating', but found ''"``.

    Example:
        >>> check_present(["3", " ", "4"], ["x.csv line 2", "x.csv line 3", "x.csv line 4"], "x")
        Traceback (most recent call last):
        ...
        ValueError: Expected a label in x.csv line 3, but found ' ' (a missing label)
    """
    distinct = set(labels) if all(type(v) is str for v in labels) else None
    if distinct is not None and not any(_is_missing(v) for v in distinct):
        return
    for i, label in enumerate(labels):
        if _is_missing(label):
            raise ValueError(
                f"Expected a label in {_row(rows, i, where)}, but found {label!r} (a missing label)"
            )


def _numbers(
    labels: Sequence[Any], rows: Sequence[str] | None, where: str, *, integer: bool
) -> np.ndarray | None:
    """Labels as float64, or ``None`` when one is not a number (an integer).

    A label that is a number but cannot be a class is refused, naming its row:
    NaN or infinite; beyond the float32 range the metrics compute in; an
    integer beyond 2**53, which float64 does not hold exactly (2**53 + 1 would
    become 2**53); two label texts that are the same number (``3``, ``03``,
    ``+3``, ``3.0``: one class, or a typo?) are refused naming both.
    """
    if labels and all(type(v) is str for v in labels):
        out = number_column(labels, integer=integer)
        if out is None:
            return None
        _check_number_range(out, labels, rows, where)
        _check_number_texts(labels, rows, where)
        return out
    out = np.empty(len(labels), dtype=np.float64)
    for i, label in enumerate(labels):
        if isinstance(label, (bool, np.bool_)):
            return None
        if isinstance(label, (int, np.integer)):
            if abs(int(label)) > EXACT_INTEGERS:
                raise ValueError(
                    f"Expected an integer label within +-2**53 (exact in float64) in "
                    f"{_row(rows, i, where)}, but found {int(label)}"
                )
            out[i] = float(label)
            continue
        if isinstance(label, (float, np.floating)):
            out[i] = float(label)
            continue
        text = str(label)
        if not is_number_text(text):
            return None
        if integer and _INTEGER_RE.fullmatch(text.strip()) is None:
            return None
        out[i] = float(text)
    _check_number_range(out, labels, rows, where)
    at = [i for i, v in enumerate(labels) if isinstance(v, str)]
    if at:
        _check_number_texts([labels[i] for i in at], [_row(rows, i, where) for i in at], where)
    return out


def _check_number_range(
    values: np.ndarray, labels: Sequence[Any], rows: Sequence[str] | None, where: str
) -> None:
    bad = ~(np.abs(values) <= FLOAT32_MAX)  # NaN is bad too
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Expected a finite label within the float32 range (|x| <= 3.4e38, the range "
            f"of the metrics) in {_row(rows, i, where)}, but found {labels[i]!r}"
        )


def _check_number_texts(labels: Sequence[str], rows: Sequence[str] | None, where: str) -> None:
    """Refuse integer texts beyond 2**53 and two texts of one number, naming them."""
    texts = {t.strip() for t in dict.fromkeys(labels)}
    by_value: dict[float, str] = {}
    for text in sorted(texts):
        if _INTEGER_RE.fullmatch(text) and abs(int(text)) > EXACT_INTEGERS:
            i = next(k for k, v in enumerate(labels) if v.strip() == text)
            raise ValueError(
                f"Expected an integer label within +-2**53 (exact in float64) in "
                f"{_row(rows, i, where)}, but found {text!r}"
            )
        value = float(text)
        other = by_value.setdefault(value, text)
        if other != text:
            first = [next(k for k, v in enumerate(labels) if v.strip() == t) for t in (other, text)]
            raise ValueError(
                f"Expected distinct labels to be distinct numbers in {where}, but {other!r} "
                f"({_row(rows, first[0], where)}) and {text!r} ({_row(rows, first[1], where)}) "
                f"are both {format_label(value)} (write one class one way)"
            )


def _refuse_non_number(labels: Sequence[Any], rows: Sequence[str] | None, where: str) -> None:
    """Among labels that are mostly numbers, name the first that is not one."""
    numbers = [_numbers([v], None, where, integer=False) is not None for v in labels]
    if any(numbers):
        bad = numbers.index(False)
        raise ValueError(
            f"Expected a number (a class label) in {_row(rows, bad, where)}, but found "
            f"{labels[bad]!r}"
        )


def build_classes(
    spec: ClassSpec,
    labels: Sequence[Any],
    where: str,
    *,
    rows: Sequence[str] | None = None,
    first_class: int | None = None,
    last_class: int | None = None,
) -> Classes:
    """The classes of a task from its declaration and the labels found in its data.

    - ``order`` declared: those labels, in that order;
    - ``range`` declared (``first_class``/``last_class`` override it, e.g. the
      ages ``min_age``/``max_age``): the integers ``first..last``;
    - else numeric labels sorted by value; text labels only for unordered
      classes (sorted as text), since an alphabetical order of ordered
      classes (``'high' < 'low' < 'medium'``) is no order.

    Args:
        spec: the task's classes.
        labels: every raw label of the data (text or numbers).
        where: the data source, for messages.
        rows: where each label is (``"wine.csv line 7, column 'quality'"``), for
            messages naming the row of a bad label.
        first_class, last_class: a ``range``'s ends from the run's settings.

    Raises:
        ValueError: text labels of ordered classes without a declared order,
            values or names that do not fit (one line naming ``where``); a
            missing label, a non-number among numbers, two texts of one
            number, a label beyond the float32 range or an integer beyond
            2**53 (naming the row, see :func:`encode_labels`).

    Example:
        >>> from simloss.experiments.task import ClassSpec
        >>> build_classes(ClassSpec(), ["3", "5", "4", "3"], "x.csv").labels
        (3.0, 4.0, 5.0)
        >>> build_classes(ClassSpec(), ["low", "high"], "x.csv")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected numeric labels or a declared class order ...
    """
    if spec.order is not None:
        numeric = all(isinstance(v, (int, float)) for v in spec.order)
        class_labels: tuple[Any, ...] = tuple(float(v) if numeric else str(v) for v in spec.order)
    elif spec.range is not None or first_class is not None or last_class is not None:
        low, high = spec.range if spec.range is not None else (None, None)
        low = first_class if first_class is not None else low
        high = last_class if last_class is not None else high
        if low is None or high is None or high < low:
            raise ValueError(
                f"Expected a class range first <= last for {where}, but found {low}..{high}"
            )
        numeric = True
        class_labels = tuple(float(v) for v in range(low, high + 1))
    else:
        if rows is not None:
            check_present(labels, rows, where)
        distinct = list(dict.fromkeys(labels))
        distinct_rows = None
        if rows is not None:
            first = {label: i for i, label in reversed(list(enumerate(labels)))}
            distinct_rows = [rows[first[label]] for label in distinct]
        values = _numbers(distinct, distinct_rows, where, integer=False)
        numeric = values is not None
        if numeric:
            class_labels = tuple(sorted(set(values.tolist())))  # type: ignore[union-attr]
        elif spec.ordered:
            _refuse_non_number(distinct, distinct_rows, where)
            found = sorted({str(v) for v in labels})[:8]
            raise ValueError(
                f"Expected numeric labels or a declared class order (`classes.order`) for the "
                f"ordered classes of {where}, but found text labels {found} (an alphabetical "
                "order is no order; for unordered classes set `classes.ordered = false`)"
            )
        else:
            class_labels = tuple(sorted({str(v) for v in labels}))
    if len(class_labels) < 2:
        raise ValueError(
            f"Expected at least two classes in {where}, but found {list(class_labels)}"
        )
    return Classes(
        labels=class_labels,
        values=_class_values(spec, class_labels, numeric, where),
        names=_class_names(spec, class_labels, where),
        ordered=spec.ordered,
        numeric=numeric,
    )


def _class_values(
    spec: ClassSpec, labels: tuple[Any, ...], numeric: bool, where: str
) -> tuple[float, ...]:
    given = spec.values
    if given is None:
        return (
            tuple(float(v) for v in labels)
            if numeric
            else tuple(float(i) for i in range(len(labels)))
        )
    if isinstance(given, tuple):
        if len(given) != len(labels):
            raise ValueError(
                f"Expected {len(labels)} class values (one per class) for {where}, but found "
                f"{len(given)}"
            )
        return given
    by_text = {format_label(label): label for label in labels}
    keys = {k: (format_label(float(k)) if numeric and is_number_text(k) else k) for k in given}
    unknown = sorted(k for k, text in keys.items() if text not in by_text)
    missing = sorted(t for t in by_text if t not in keys.values())
    if unknown or missing:
        raise ValueError(
            f"Expected `classes.values` to map every class of {where} ({sorted(by_text)}), but "
            f"found unknown {unknown} and missing {missing}"
        )
    lookup = {keys[k]: v for k, v in given.items()}
    out = tuple(float(lookup[format_label(label)]) for label in labels)
    if len(set(out)) != len(out):
        raise ValueError(f"Expected distinct class values for {where}, but found {list(out)}")
    return out


def _class_names(spec: ClassSpec, labels: tuple[Any, ...], where: str) -> tuple[str, ...]:
    if spec.names is None:
        return tuple(format_label(v) for v in labels)
    if len(spec.names) != len(labels):
        raise ValueError(
            f"Expected {len(labels)} class names (one per class) for {where}, but found "
            f"{len(spec.names)}"
        )
    return spec.names


def encode_labels(
    classes: Classes,
    spec: ClassSpec,
    labels: Sequence[Any],
    rows: Sequence[str],
    where: str,
) -> LabelCodes:
    """The class index of every raw label, as the task's ``outside`` rule says.

    Args:
        classes: from :func:`build_classes`.
        spec: the task's classes (its ``outside`` rule).
        labels: raw labels (text or numbers), one per example.
        rows: where each label is (``"wine.csv line 7"``), for messages.
        where: the data source.

    Raises:
        ValueError: a label that is not a class (``outside = "error"``, or a
            text label under any rule), a missing label (an empty cell, ``None``,
            NaN), a label beyond the float32 range, an integer beyond 2**53, two
            texts of one number (``5`` and ``05``), each naming the row and the label.

    Example:
        >>> from simloss.experiments.task import ClassSpec
        >>> spec = ClassSpec(range=(4, 6), outside="clip")
        >>> classes = build_classes(spec, [], "x")
        >>> codes = encode_labels(classes, spec, ["3", "5", "9"], ["l1", "l2", "l3"], "x")
        >>> codes.targets.tolist(), codes.clipped
        ([0, 1, 2], 2)
    """
    n = len(labels)
    targets = np.full(n, -1, dtype=np.int64)
    keep = np.ones(n, dtype=bool)
    check_present(labels, rows, where)
    if classes.numeric:
        integer = spec.range is not None
        index = {float(v): i for i, v in enumerate(classes.labels)}
        values = _numbers(labels, rows, where, integer=integer)
        if values is None:
            bad = next(
                i
                for i, label in enumerate(labels)
                if _numbers([label], None, where, integer=integer) is None
            )
            kind = "an integer" if integer else "a number"
            raise ValueError(
                f"Expected {kind} (a class label) in {rows[bad]}, but found {labels[bad]!r}"
            )
        low, high = classes.labels[0], classes.labels[-1]
        clipped = 0
        for i, value in enumerate(values.tolist()):
            k = index.get(value)
            if k is not None:
                targets[i] = k
                continue
            outside = value < low or value > high
            if spec.outside == "clip" and outside:
                targets[i] = 0 if value < low else len(classes) - 1
                clipped += 1
            elif spec.outside == "exclude" and outside:
                keep[i] = False
            else:
                raise ValueError(
                    f"Expected a label among the classes of {where} "
                    f"({_listing(classes.labels)}), but {rows[i]} has {format_label(value)!r}"
                )
        return LabelCodes(targets[keep], keep, int((~keep).sum()), clipped)
    index_text = {str(v): i for i, v in enumerate(classes.labels)}
    for i, label in enumerate(labels):
        k = index_text.get(str(label))
        if k is None:
            if spec.outside == "exclude":
                keep[i] = False
                continue
            raise ValueError(
                f"Expected a label among the classes of {where} ({_listing(classes.labels)}), "
                f"but {rows[i]} has {str(label)!r}"
            )
        targets[i] = k
    return LabelCodes(targets[keep], keep, int((~keep).sum()), 0)


def check_training_classes(
    classes: Classes, spec: ClassSpec, train: np.ndarray, where: str
) -> None:
    """Refuse a class without a training example (unless the task allows empty classes).

    Raises:
        ValueError: naming the first classes without a training example.
    """
    if spec.empty == "allow":
        return
    counts = np.bincount(train, minlength=len(classes))
    empty = [classes.names[k] for k in np.flatnonzero(counts == 0)]
    if empty:
        raise ValueError(
            f"Expected a training example of every class of {where}, but found none of class "
            f"{_listing(tuple(empty))} (remove it from `classes.order`, or set "
            '`classes.empty = "allow"`)'
        )


def _listing(labels: Sequence[Any], limit: int = 10) -> str:
    texts = [format_label(v) for v in labels[:limit]]
    more = f", ... ({len(labels)} in all)" if len(labels) > limit else ""
    return ", ".join(repr(t) for t in texts) + more
