"""Any supported similarity as the loss's operator, with validation proportional to the work."""

from __future__ import annotations

import os
import weakref
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import Tensor

from simloss.similarity.operator import (
    DenseOperator,
    LossOperator,
    SimilarityOperator,
    concrete,
)
from simloss.similarity.structured import SparseSimilarity
from simloss.similarity.validation import as_similarity_tensor, validate_similarity

__all__ = ["as_similarity_operator", "check_similarity_kind", "validated_dense"]


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
      checked for its number of classes and used as it is;
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
        return similarity
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
