"""Any supported similarity as the loss's operator, with validation proportional to the work."""

from __future__ import annotations

import os
import weakref
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import Tensor

from simloss._describe import describe
from simloss.similarity.operator import (
    DenseOperator,
    LossOperator,
    SimilarityOperator,
    SimilarityRows,
    concrete,
)
from simloss.similarity.structured import SparseSimilarity
from simloss.similarity.validation import (
    as_similarity_tensor,
    check_unit_diagonal,
    first_position,
    validate_similarity,
)

__all__ = ["CheckedOperator", "as_similarity_operator", "check_similarity_kind", "validated_dense"]


# Dense tensors validated before, by identity: (weak reference, version counter, whether the
# unit diagonal was checked). A tensor changed in place gets a new version and is checked again.
_VALIDATED: dict[int, tuple[weakref.ref[Tensor], int, bool]] = {}


def validated_dense(matrix: Tensor, num_classes: int | None, require_unit_diagonal: bool) -> Tensor:
    """Validate a dense tensor once per version: O(C^2) the first time, O(1) after.

    ``num_classes`` None accepts any square size.
    """
    try:
        version = matrix._version
    except RuntimeError:  # inference tensors have no version counter: check every time
        return validate_similarity(matrix, num_classes, require_unit_diagonal=require_unit_diagonal)
    key = id(matrix)
    seen = _VALIDATED.get(key)
    if (
        seen is not None
        and seen[0]() is matrix
        and seen[1] == version
        and (seen[2] or not require_unit_diagonal)
    ):
        _check_shape(matrix, num_classes)
        return matrix
    validate_similarity(matrix, num_classes, require_unit_diagonal=require_unit_diagonal)
    _VALIDATED[key] = (weakref.ref(matrix, partial(_forget, key)), version, require_unit_diagonal)
    return matrix


def _forget(key: int, ref: weakref.ref[Tensor]) -> None:
    """Drop the entry of a tensor that no longer exists (its weak reference's callback)."""
    seen = _VALIDATED.get(key)
    if seen is not None and seen[0] is ref:
        del _VALIDATED[key]


def _check_shape(matrix: Tensor, num_classes: int | None) -> None:
    if num_classes is None:
        num_classes = matrix.shape[0] if matrix.dim() else 0
    if matrix.dim() != 2 or tuple(matrix.shape) != (num_classes, num_classes):
        raise ValueError(
            f"Expected `similarity` of shape ({num_classes}, {num_classes}), "
            f"but found shape {tuple(matrix.shape)}"
        )


def check_similarity_kind(similarity: object) -> None:
    """Refuse anything that is not a kind of similarity the loss takes, naming them all."""
    if not isinstance(similarity, (Tensor, np.ndarray, SimilarityOperator)):
        raise TypeError(
            "Expected `similarity` to be a (C, C) torch.Tensor or numpy.ndarray, a torch sparse "
            "tensor or a SimilarityOperator (e.g. simloss.ClassOrder), but found "
            f"{type(similarity).__name__}" + _path_hint(similarity)
        )


def _path_hint(similarity: object) -> str:
    """For a file name passed as the similarity: how to load it."""
    if isinstance(similarity, (str, bytes, os.PathLike)):
        return (
            f" {similarity!r}; load a saved matrix first, e.g. numpy.load(path) for the "
            "PREFIX.npy that `simloss matrix` and save_similarity write"
        )
    return ""


def as_similarity_operator(
    similarity: Any,
    num_classes: int,
    *,
    validate: bool = True,
    require_unit_diagonal: bool = True,
) -> LossOperator:
    """Wrap any supported similarity as the loss's operator.

    * a :class:`SimilarityOperator` (e.g. :class:`simloss.ClassOrder`) is
      checked for its number of classes; one that does not validate its
      entries itself is seen through a :class:`CheckedOperator`;
    * a torch sparse (C, C) tensor becomes a :class:`simloss.SparseSimilarity`;
    * a dense tensor is validated (when ``validate``) once per version of the
      tensor: a matrix reused across calls costs O(C^2) on its first call and
      O(1) after, and is checked again after any in-place change. Under
      ``torch.compile`` and ``torch.func`` transforms only its shape is
      checked (value checks need the host); validate it once beforehand or
      use :class:`simloss.SimLoss`, which validates at construction;
    * a numpy array is validated on every call (it has no version counter).

    Raises:
        TypeError: an unsupported kind of similarity.
        ValueError: a wrong number of classes, or invalid values (see
            :func:`simloss.similarity.validate_similarity`).
    """
    if isinstance(similarity, SimilarityOperator):
        if similarity.num_classes != num_classes:
            raise ValueError(
                f"Expected `similarity` for {num_classes} classes (the input's size along the "
                f"class dimension), but found one for {similarity.num_classes} classes"
            )
        if similarity.validates_entries:
            return similarity
        return CheckedOperator(similarity, require_unit_diagonal=require_unit_diagonal)
    if isinstance(similarity, Tensor) and similarity.layout != torch.strided:
        sparse = SparseSimilarity.from_sparse(
            similarity, require_unit_diagonal=require_unit_diagonal
        )
        return as_similarity_operator(sparse, num_classes)
    if isinstance(similarity, Tensor) and not validate:
        if not similarity.is_floating_point():
            raise TypeError(
                f"Expected `similarity` to have a floating dtype, but found {similarity.dtype}"
            )
        _check_shape(similarity, num_classes)
        return DenseOperator(similarity)
    if isinstance(similarity, Tensor):
        if not concrete(similarity):
            as_similarity_tensor(similarity)
            _check_shape(similarity, num_classes)
            return DenseOperator(similarity)
        return DenseOperator(validated_dense(similarity, num_classes, require_unit_diagonal))
    check_similarity_kind(similarity)
    if validate:
        matrix = validate_similarity(
            similarity, num_classes, require_unit_diagonal=require_unit_diagonal
        )
    else:
        matrix = as_similarity_tensor(similarity)
        _check_shape(matrix, num_classes)
    return DenseOperator(matrix)


class _RowsSeen:
    """Which classes' rows of one operator state have passed the value checks."""

    def __init__(self, state: tuple[Any, ...], num_classes: int, device: torch.device) -> None:
        self.state = state
        self.classes = torch.zeros(num_classes, dtype=torch.bool, device=device)
        self.all = False


# Operators whose rows were checked: per operator, its state (identity and version of every
# tensor, the diagonal requirement) and the classes seen in that state.
_ROWS_SEEN: weakref.WeakKeyDictionary[SimilarityOperator, _RowsSeen] = weakref.WeakKeyDictionary()


class CheckedOperator:
    """A :class:`SimilarityOperator` subclass seen through checks of what its methods return.

    On every call: :meth:`rows`, :meth:`dense_rows`, :meth:`similar_mass` and
    :meth:`similar_mass_transposed` return the type and shape the protocol
    states (``TypeError``/``ValueError`` naming the subclass's method and the
    expected form). The first time a class's row is gathered (eager mode;
    again after any parameter or buffer of the operator changed): its values
    are finite, in [0, 1], and ``S[y, y] = 1`` when ``require_unit_diagonal``,
    as :func:`~simloss.similarity.validate_similarity` requires of a dense
    matrix. Costs O(N * C) for the rows of a batch until every class has been
    seen, O(1) after.
    """

    def __init__(self, operator: SimilarityOperator, *, require_unit_diagonal: bool) -> None:
        self.operator = operator
        self.require_unit_diagonal = require_unit_diagonal
        self.num_classes = operator.num_classes

    @property
    def requires_grad(self) -> bool:
        return self.operator.requires_grad

    def check_device(self, device: torch.device) -> None:
        self.operator.check_device(device)

    def tensors(self) -> list[Tensor]:
        return self.operator.tensors()

    def rows(self, target: Tensor, dtype: torch.dtype) -> SimilarityRows:
        rows = self.operator.rows(target, dtype)
        self._check_rows_form(rows, target)
        self._check_values(target, rows, "rows(target, dtype)")
        return rows

    def dense_rows(self, index: Tensor, dtype: torch.dtype) -> Tensor:
        dense = self.operator.dense_rows(index, dtype)
        self._check_matrix(dense, "dense_rows(index, dtype)", (index.numel(), self.num_classes))
        self._check_values(index, SimilarityRows(dense, None, None), "dense_rows(index, dtype)")
        return dense

    def similar_mass(self, probs: Tensor) -> Tensor:
        mass = self.operator.similar_mass(probs)
        self._check_matrix(mass, "similar_mass(probs)", tuple(probs.shape))
        return mass

    def similar_mass_transposed(self, values: Tensor) -> Tensor:
        out = self.operator.similar_mass_transposed(values)
        self._check_matrix(out, "similar_mass_transposed(values)", tuple(values.shape))
        return out

    def _method(self, signature: str) -> str:
        return f"`{type(self.operator).__name__}.{signature}`"

    def _check_matrix(self, value: object, signature: str, shape: tuple[int, ...]) -> None:
        if not isinstance(value, Tensor) or not value.is_floating_point():
            raise TypeError(
                f"Expected {self._method(signature)} to return a floating tensor of shape "
                f"{shape}, but found {describe(value)}"
            )
        if tuple(value.shape) != shape:
            raise ValueError(
                f"Expected {self._method(signature)} to return a tensor of shape {shape}, "
                f"but found shape {tuple(value.shape)}"
            )

    def _check_rows_form(self, rows: object, target: Tensor) -> None:
        method = self._method("rows(target, dtype)")
        if not isinstance(rows, SimilarityRows):
            raise TypeError(
                f"Expected {method} to return a simloss.similarity.SimilarityRows (dense rows, "
                f"or columns and values), but found {describe(rows)}"
            )
        num_rows = target.numel()
        if (rows.dense is None) == (rows.columns is None and rows.values is None):
            raise ValueError(
                f"Expected {method} to set either `dense` or both `columns` and `values`, but "
                f"found dense={describe(rows.dense)}, columns={describe(rows.columns)}, "
                f"values={describe(rows.values)}"
            )
        if rows.dense is not None:
            self._check_matrix(
                rows.dense, "rows(target, dtype).dense", (num_rows, self.num_classes)
            )
            return
        columns, values = rows.columns, rows.values
        if not isinstance(columns, Tensor) or columns.is_floating_point() or columns.is_complex():
            raise TypeError(
                f"Expected {method} to return integer `columns` of shape ({num_rows}, k), but "
                f"found {describe(columns)}"
            )
        if not isinstance(values, Tensor) or not values.is_floating_point():
            raise TypeError(
                f"Expected {method} to return floating `values` of shape ({num_rows}, k), but "
                f"found {describe(values)}"
            )
        if columns.dim() != 2 or len(columns) != num_rows or columns.shape != values.shape:
            raise ValueError(
                f"Expected {method} to return `columns` and `values` of one shape "
                f"({num_rows}, k), but found {tuple(columns.shape)} and {tuple(values.shape)}"
            )

    def _check_values(self, target: Tensor, rows: SimilarityRows, signature: str) -> None:
        """The values of the rows of classes not seen before in this state of the operator."""
        parts = (*rows, target)
        if not all(part is None or concrete(part) for part in parts) or target.numel() == 0:
            return
        seen = self._seen(target.device)
        if seen.all:
            return
        new = ~seen.classes[target]
        if not bool(new.any()):
            return
        at = torch.nonzero(new).squeeze(1)
        _check_row_values(
            self._method(signature),
            target.index_select(0, at),
            SimilarityRows(*(None if part is None else part.index_select(0, at) for part in rows)),
            self.num_classes,
            self.require_unit_diagonal,
        )
        seen.classes[target] = True
        seen.all = bool(seen.classes.all())

    def _seen(self, device: torch.device) -> _RowsSeen:
        state = (
            self.require_unit_diagonal,
            *((id(t), t._version) for t in (*self.operator.parameters(), *self.operator.buffers())),
        )
        seen = _ROWS_SEEN.get(self.operator)
        if seen is None or seen.state != state or seen.classes.device != device:
            seen = _RowsSeen(state, self.num_classes, device)
            _ROWS_SEEN[self.operator] = seen
        return seen


def _check_row_values(
    method: str, target: Tensor, rows: SimilarityRows, num_classes: int, unit_diagonal: bool
) -> None:
    """Rows ``S[target]``: finite values in [0, 1], valid columns, ``S[y, y] = 1`` if required."""
    if rows.dense is not None:
        values = rows.dense.detach()
        columns = None
    else:
        assert rows.columns is not None and rows.values is not None
        values, columns = rows.values.detach(), rows.columns
        outside = (columns < 0) | (columns >= num_classes)
        if bool(outside.any()):
            at = first_position(outside)
            raise ValueError(
                f"Expected {method} to return `columns` in [0, {num_classes}), but found "
                f"{int(columns[at])} in the row of class {int(target[at[0]])}"
            )
    bad = ~torch.isfinite(values) | (values < 0) | (values > 1)
    if bool(bad.any()):
        at = first_position(bad)
        column = at[1] if columns is None else int(columns[at])
        raise ValueError(
            f"Expected {method} to return similarities that are finite and in [0, 1], but found "
            f"{float(values[at]):g} at ({int(target[at[0]])}, {column})"
        )
    if not unit_diagonal:
        return
    if columns is None:
        diagonal = values.gather(1, target[:, None]).squeeze(1)
    else:
        diagonal = (values * (columns == target[:, None])).sum(1)
    check_unit_diagonal(diagonal, f"{method} to return", classes=target)
