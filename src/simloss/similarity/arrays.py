"""A similarity as plain numpy arrays: what the JAX and Keras ports receive.

The similarity builders (:func:`~simloss.similarity.class_order`,
:func:`~simloss.similarity.from_values`, :func:`~simloss.similarity.from_embeddings`,
:func:`~simloss.similarity.from_hierarchy`, ...) and the structured forms
(:class:`~simloss.ClassOrder`, :class:`~simloss.SparseSimilarity`) are built
once, here, in PyTorch. :func:`similarity_arrays` validates any of them with
the very checks :func:`simloss.sim_loss` uses (so the errors are literally
the same) and describes it as numpy arrays that :mod:`simloss.jax` and
:mod:`simloss.keras` turn into their own arrays:

* :class:`DenseArrays`: a (C, C) matrix;
* :class:`OrderArrays`: ``S_ij = r^|i-j|`` as ``num_classes`` and ``r`` (the
  ports compute the rows from :meth:`OrderArrays.band`, never a (C, C) matrix
  for index targets);
* :class:`SparseArrays`: at most ``k`` non-zeros per row as ``index`` and
  ``value`` (C, k).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from simloss.similarity.dispatch import _check_shape, check_similarity_kind
from simloss.similarity.operator import SimilarityOperator
from simloss.similarity.order import order_band
from simloss.similarity.structured import ClassOrder, SparseSimilarity
from simloss.similarity.validation import as_similarity_tensor, validate_similarity

__all__ = [
    "DenseArrays",
    "OrderArrays",
    "SimilarityArrays",
    "SparseArrays",
    "check_similarity_shape",
    "similarity_arrays",
]


@dataclass(frozen=True)
class DenseArrays:
    """A dense (C, C) similarity: ``matrix`` is a floating numpy array."""

    matrix: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(self.matrix.shape[0])


@dataclass(frozen=True)
class OrderArrays:
    """The class-order similarity ``S_ij = r^|i-j|`` (Eq. 2) of ``num_classes`` classes."""

    num_classes: int
    r: float

    def band(self, dtype: np.dtype | str) -> np.ndarray:
        """``r^d`` for ``d = 0 .. C - 1`` in ``dtype`` (float32 or float64), zero past the band.

        The same values as :func:`~simloss.similarity.class_order`'s entries,
        bit for bit (:func:`~simloss.similarity.order.order_band`).

        Example:
            >>> OrderArrays(4, 0.5).band("float64").tolist()
            [1.0, 0.5, 0.25, 0.125]
        """
        torch_dtype = {"float32": torch.float32, "float64": torch.float64}[np.dtype(dtype).name]
        band = order_band(self.num_classes, self.r, dtype=torch_dtype).numpy()
        full = np.zeros(self.num_classes, dtype=band.dtype)
        full[: band.size] = band
        return full


@dataclass(frozen=True)
class SparseArrays:
    """At most ``k`` non-zeros per row: row ``i`` holds ``value[i, j]`` at column ``index[i, j]``."""

    index: np.ndarray
    value: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(self.index.shape[0])


SimilarityArrays = DenseArrays | OrderArrays | SparseArrays


def check_similarity_shape(shape: tuple[int, ...], num_classes: int) -> None:
    """The shape check of a similarity whose values cannot be read (traced code).

    Example:
        >>> check_similarity_shape((3, 2), 3)
        Traceback (most recent call last):
        ...
        ValueError: Expected `similarity` of shape (3, 3), but found shape (3, 2)
    """
    _check_shape(torch.empty(shape, device="meta"), num_classes)


def similarity_arrays(
    similarity: Any,
    num_classes: int,
    *,
    validate: bool = True,
    require_unit_diagonal: bool = True,
) -> SimilarityArrays:
    """Check a similarity as :func:`simloss.sim_loss` does and describe it as numpy arrays.

    Args:
        similarity: a dense (C, C) numpy array or CPU tensor (as the builders
            return it), a torch sparse (C, C) tensor, a :class:`simloss.ClassOrder`,
            a :class:`simloss.SparseSimilarity`, or another
            :class:`simloss.SimilarityOperator` (used through its dense matrix).
        num_classes: the number of classes C of the scores.
        validate: check a dense matrix's values (finite, in [0, 1], unit
            diagonal); its kind and shape are always checked.
        require_unit_diagonal: require ``S_ii = 1``, as the paper does.

    Returns:
        :class:`DenseArrays`, :class:`OrderArrays` or :class:`SparseArrays`.

    Raises:
        TypeError: an unsupported kind, a non-floating matrix, a tensor that
            requires a gradient or lives on another device than the CPU.
        ValueError: a wrong number of classes or invalid values (the messages
            of :func:`simloss.similarity.validate_similarity`).

    Example:
        >>> from simloss.similarity import class_order
        >>> similarity_arrays(class_order(3, 0.5), 3).matrix.dtype
        dtype('float32')
        >>> similarity_arrays(np.eye(2) * 2, 2)
        Traceback (most recent call last):
        ...
        ValueError: Expected `similarity` to have values in [0, 1], but found 2 at (0, 0)
    """
    if isinstance(similarity, ClassOrder):
        _check_operator_classes(similarity, num_classes)
        return OrderArrays(similarity.num_classes, similarity.r)
    if isinstance(similarity, Tensor) and similarity.layout != torch.strided:
        similarity = SparseSimilarity.from_sparse(
            similarity.detach().cpu(), require_unit_diagonal=require_unit_diagonal
        )
    if isinstance(similarity, SparseSimilarity):
        _check_operator_classes(similarity, num_classes)
        return SparseArrays(
            similarity.index.detach().cpu().numpy(), similarity.value.detach().cpu().numpy()
        )
    if isinstance(similarity, SimilarityOperator):
        _check_operator_classes(similarity, num_classes)
        similarity = similarity.to_dense(torch.float64).detach().cpu()
    check_similarity_kind(similarity)
    if isinstance(similarity, Tensor) and (
        similarity.requires_grad or similarity.device.type != "cpu"
    ):
        raise TypeError(
            "Expected `similarity` as a numpy array or a CPU tensor that requires no "
            f"gradient, but found a tensor on {similarity.device} with requires_grad="
            f"{similarity.requires_grad}; pass similarity.detach().cpu().numpy()"
        )
    matrix = as_similarity_tensor(similarity)
    if matrix.dtype not in (torch.float32, torch.float64):
        matrix = as_similarity_tensor(matrix.float())  # 16-bit floats: checked in float32
    if validate:
        validate_similarity(matrix, num_classes, require_unit_diagonal=require_unit_diagonal)
    else:
        _check_shape(matrix, num_classes)
    return DenseArrays(np.ascontiguousarray(matrix.numpy()))


def _check_operator_classes(operator: SimilarityOperator, num_classes: int) -> None:
    if operator.num_classes != num_classes:
        raise ValueError(
            f"Expected `similarity` for {num_classes} classes (the input's size along the "
            f"class dimension), but found one for {operator.num_classes} classes"
        )
