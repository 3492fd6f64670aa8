"""Similarities that never build the dense (C, C) matrix.

The loss needs three things from a similarity ``S`` of ``C`` classes: the
rows ``S[y]`` of a batch of targets, the product ``A = p S^T`` (for
probability targets and label smoothing) and ``v S`` (its gradient). A
structured similarity answers these from a compact description, so memory is
O(N * C) instead of O(C^2):

* :class:`ClassOrder` holds only ``r``: ``S_ij = r^|i-j|``;
* :class:`SparseSimilarity` holds at most ``k`` non-zeros per row.

Both are ``nn.Module`` objects whose tensors are buffers, so ``.to()`` and
``state_dict()`` treat them right when they are part of a model or a loss.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from simloss.similarity.order import check_reduction_factor, class_order, order_band
from simloss.similarity.validation import as_similarity_tensor, validate_similarity

__all__ = ["ClassOrder", "SimilarityRows", "SparseSimilarity", "as_similarity_operator"]


class SimilarityRows(NamedTuple):
    """Rows ``S[y]`` of a batch, densely ``(N, C)`` or as ``(index, value)`` pairs ``(N, k)``."""

    dense: Tensor | None
    columns: Tensor | None
    values: Tensor | None


class _Operator:
    """What the loss asks of a similarity (internal protocol)."""

    num_classes: int

    def rows(self, target: Tensor, dtype: torch.dtype) -> SimilarityRows:
        """Rows ``S[target]`` as new tensors that the caller may overwrite."""
        raise NotImplementedError

    def dense_rows(self, index: Tensor, dtype: torch.dtype) -> Tensor:
        raise NotImplementedError

    def similar_mass(self, probs: Tensor) -> Tensor:
        """``probs @ S^T``, shape (N, C)."""
        raise NotImplementedError

    def similar_mass_transposed(self, values: Tensor) -> Tensor:
        """``values @ S``, shape (N, C)."""
        raise NotImplementedError

    def check_device(self, device: torch.device) -> None:
        raise NotImplementedError


class _DenseOperator(_Operator):
    def __init__(self, matrix: Tensor) -> None:
        self.matrix = matrix
        self.num_classes = int(matrix.shape[0])

    def rows(self, target: Tensor, dtype: torch.dtype) -> SimilarityRows:
        return SimilarityRows(self.matrix.index_select(0, target).to(dtype), None, None)

    def dense_rows(self, index: Tensor, dtype: torch.dtype) -> Tensor:
        return self.matrix.index_select(0, index).to(dtype)

    def similar_mass(self, probs: Tensor) -> Tensor:
        return probs @ self.matrix.to(probs.dtype).T

    def similar_mass_transposed(self, values: Tensor) -> Tensor:
        return values @ self.matrix.to(values.dtype)

    def check_device(self, device: torch.device) -> None:
        _check_same_device(self.matrix, device)


def _check_same_device(tensor: Tensor, device: torch.device) -> None:
    if tensor.device != device:
        raise ValueError(
            f"Expected `similarity` on the input's device {device}, but found it on "
            f"{tensor.device}; move it with .to({str(device)!r}) (SimLoss moves with the model)"
        )


_CACHE_DENSE_UP_TO = 2048  # classes; a cached float32 matrix of at most 16 MiB


class ClassOrder(nn.Module, _Operator):
    """Class-order similarity :math:`S_{ij} = r^{|i-j|}` (Eq. 2) without a (C, C) matrix.

    .. math::

        S_{ij} = r^{|i-j|}, \\qquad r \\in [0, 1), \\qquad 0^0 = 1

    The loss receives the rows of its targets as a band of the distances
    where :math:`r^d` is non-zero in the input's dtype (about 1,000 classes
    wide for ``r = 0.9`` in float32), which is exactly the dense matrix's
    content: memory and time are O(N * band) for index targets. ``r = 0``
    is plain cross-entropy.

    Args:
        num_classes: number of classes C (>= 1).
        r: reduction factor in [0, 1).

    Example:
        >>> import torch
        >>> import simloss
        >>> S = simloss.ClassOrder(100_000, r=0.5)
        >>> logits, target = torch.zeros(2, 100_000), torch.tensor([0, 99_999])
        >>> round(float(simloss.sim_loss(logits, target, S)), 4)  # log(C / 2): edge rows sum to 2
        10.8198

    References:
        Kobs et al., "SimLoss: Class Similarities in Cross Entropy", ISMIS 2020,
        https://arxiv.org/abs/2003.03182
    """

    _device_marker: Tensor

    def __init__(self, num_classes: int, r: float) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"Expected `num_classes` to be an int >= 1, but found {num_classes!r}")
        self.num_classes = num_classes
        self.r = check_reduction_factor(r)
        self._bands: dict[tuple[torch.dtype, torch.device], Tensor] = {}
        # For few classes the dense matrix is small and its rows are the cheapest form.
        self._dense: dict[tuple[torch.dtype, torch.device], Tensor] = {}
        # A zero-size buffer records the device the module was moved to.
        self.register_buffer("_device_marker", torch.empty(0), persistent=False)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, r={self.r}"

    def to_dense(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """The equivalent dense (C, C) matrix (:func:`simloss.similarity.class_order`)."""
        return class_order(self.num_classes, self.r, dtype=dtype, device=self._device_marker.device)

    def band(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        """Values :math:`r^d` for the distances d where they are non-zero in ``dtype``."""
        key = (dtype, device)
        if key not in self._bands:
            self._bands[key] = order_band(self.num_classes, self.r, dtype=dtype, device=device)
        return self._bands[key]

    def _full_band(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        band = self.band(dtype, device)
        full = torch.zeros(self.num_classes, dtype=dtype, device=device)
        full[: band.numel()] = band
        return full

    def _cached_dense(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        key = (dtype, device)
        if key not in self._dense:
            self._dense[key] = class_order(self.num_classes, self.r, dtype=dtype, device=device)
        return self._dense[key]

    def _uses_dense_rows(self, dtype: torch.dtype, device: torch.device) -> bool:
        return (
            self.num_classes <= _CACHE_DENSE_UP_TO
            or 2 * self.band(dtype, device).numel() - 1 >= self.num_classes
        )

    def rows(self, target: Tensor, dtype: torch.dtype) -> SimilarityRows:
        device = target.device
        band = self.band(dtype, device)
        if self._uses_dense_rows(dtype, device):
            return SimilarityRows(self.dense_rows(target, dtype), None, None)
        width = band.numel() - 1
        offsets = torch.arange(-width, width + 1, device=device)
        index = target[:, None] + offsets
        inside = (index >= 0) & (index < self.num_classes)
        symmetric = torch.cat([band[1:].flip(0), band])
        value = symmetric * inside
        return SimilarityRows(None, index.clamp_(0, self.num_classes - 1), value)

    def dense_rows(self, index: Tensor, dtype: torch.dtype) -> Tensor:
        if self.num_classes <= _CACHE_DENSE_UP_TO:
            return self._cached_dense(dtype, index.device).index_select(0, index)
        full = self._full_band(dtype, index.device)
        classes = torch.arange(self.num_classes, device=index.device)
        return full[(index[:, None] - classes[None, :]).abs()]

    def similar_mass(self, probs: Tensor) -> Tensor:
        if self.num_classes <= _CACHE_DENSE_UP_TO:
            return probs @ self._cached_dense(probs.dtype, probs.device)
        if self._uses_dense_rows(probs.dtype, probs.device):
            return probs @ self.to_dense(probs.dtype).to(probs.device)
        band = self.band(probs.dtype, probs.device)
        kernel = torch.cat([band[1:].flip(0), band]).view(1, 1, -1)
        out = F.conv1d(probs.unsqueeze(1), kernel, padding=band.numel() - 1)
        return out.squeeze(1)

    def similar_mass_transposed(self, values: Tensor) -> Tensor:
        return self.similar_mass(values)  # S is symmetric

    def check_device(self, device: torch.device) -> None:
        _check_same_device(self._device_marker, device)


class SparseSimilarity(nn.Module, _Operator):
    """A similarity with at most ``k`` non-zero entries per row, stored as (index, value).

    Row ``i`` of ``S`` has the values ``value[i, j]`` at the columns
    ``index[i, j]``; padding entries have value 0. Memory is O(C * k), and the
    loss touches O(N * k) entries for index targets.

    Args:
        index: integer tensor (C, k) of column indices in [0, C).
        value: floating tensor (C, k) of values in [0, 1].
        require_unit_diagonal: whether every row must hold its own class with value 1.

    Example:
        >>> import torch
        >>> S = torch.tensor([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
        >>> sparse = SparseSimilarity.from_dense(S)
        >>> sparse.index.shape, torch.equal(sparse.to_dense(), S)
        (torch.Size([3, 2]), True)
    """

    index: Tensor
    value: Tensor

    def __init__(self, index: Tensor, value: Tensor, *, require_unit_diagonal: bool = True) -> None:
        super().__init__()
        if not isinstance(index, Tensor) or index.is_floating_point() or index.is_complex():
            raise TypeError(
                f"Expected `index` to be an integer tensor, but found {_describe(index)}"
            )
        if not isinstance(value, Tensor) or not value.is_floating_point():
            raise TypeError(
                f"Expected `value` to be a floating tensor, but found {_describe(value)}"
            )
        if index.dim() != 2 or index.shape != value.shape:
            raise ValueError(
                "Expected `index` and `value` of the same shape (C, k), but found "
                f"{tuple(index.shape)} and {tuple(value.shape)}"
            )
        num_classes = int(index.shape[0])
        index = index.long()
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= num_classes):
            bad = torch.nonzero((index < 0) | (index >= num_classes))[0]
            raise ValueError(
                f"Expected `index` values in [0, {num_classes}), but found "
                f"{int(index[bad[0], bad[1]])} at {tuple(int(b) for b in bad)}"
            )
        invalid = ~torch.isfinite(value) | (value < 0) | (value > 1)
        if bool(invalid.any()):
            pos = tuple(int(b) for b in torch.nonzero(invalid)[0])
            raise ValueError(
                f"Expected `value` to be finite and in [0, 1], but found {value[pos].item():g} at {pos}"
            )
        rows = torch.arange(num_classes, device=index.device)[:, None]
        nonzero = value != 0
        flat = (rows * num_classes + index)[nonzero]
        if flat.numel() != torch.unique(flat).numel():
            raise ValueError(
                "Expected `index` to list each column at most once per row among the non-zero "
                "values, but found a duplicate"
            )
        if require_unit_diagonal:
            diagonal = torch.zeros(num_classes, dtype=value.dtype, device=value.device)
            is_diag = index == rows
            diagonal.scatter_add_(0, torch.nonzero(is_diag)[:, 0], value[is_diag])
            off = diagonal != 1
            if bool(off.any()):
                i = int(torch.nonzero(off)[0, 0])
                raise ValueError(
                    f"Expected the similarity to have ones on the diagonal (S_ii = 1), but found "
                    f"{diagonal[i].item():g} at ({i}, {i}); pass require_unit_diagonal=False to allow it"
                )
        self.num_classes = num_classes
        self.register_buffer("index", index)
        self.register_buffer("value", value)

    @classmethod
    def from_dense(cls, matrix: Any, *, require_unit_diagonal: bool = True) -> SparseSimilarity:
        """Keep the non-zero entries of a dense (C, C) similarity."""
        dense = validate_similarity(matrix, require_unit_diagonal=require_unit_diagonal)
        return cls.from_sparse(dense.to_sparse(), require_unit_diagonal=require_unit_diagonal)

    @classmethod
    def from_sparse(cls, matrix: Tensor, *, require_unit_diagonal: bool = True) -> SparseSimilarity:
        """Convert a torch sparse (COO or CSR) (C, C) tensor."""
        if not isinstance(matrix, Tensor) or matrix.layout == torch.strided:
            raise TypeError(
                f"Expected `similarity` to be a torch sparse tensor, but found {_describe(matrix)}"
            )
        if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(
                f"Expected `similarity` of shape (C, C), but found shape {tuple(matrix.shape)}"
            )
        if not matrix.is_floating_point():
            raise TypeError(
                f"Expected `similarity` to have a floating dtype, but found {matrix.dtype}"
            )
        coo = matrix.to_sparse_coo().coalesce().cpu()
        rows, cols = coo.indices()
        values = coo.values()
        num_classes = int(matrix.shape[0])
        counts = torch.bincount(rows, minlength=num_classes)
        width = max(int(counts.max()) if counts.numel() else 0, 1)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(rows.numel()) - starts[rows]
        index = torch.arange(num_classes)[:, None].repeat(1, width)
        value = torch.zeros(num_classes, width, dtype=values.dtype)
        index[rows, slot] = cols
        value[rows, slot] = values
        return cls(
            index.to(matrix.device),
            value.to(matrix.device),
            require_unit_diagonal=require_unit_diagonal,
        )

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, k={self.index.shape[1]}"

    def to_dense(self) -> Tensor:
        """The equivalent dense (C, C) matrix."""
        return self.dense_rows(
            torch.arange(self.num_classes, device=self.index.device), self.value.dtype
        )

    def rows(self, target: Tensor, dtype: torch.dtype) -> SimilarityRows:
        return SimilarityRows(None, self.index[target], self.value[target].to(dtype))

    def dense_rows(self, index: Tensor, dtype: torch.dtype) -> Tensor:
        out = torch.zeros(index.numel(), self.num_classes, dtype=dtype, device=index.device)
        return out.scatter_add_(1, self.index[index], self.value[index].to(dtype))

    def _coo(self, dtype: torch.dtype) -> Tensor:
        rows = torch.arange(self.num_classes, device=self.index.device)[:, None].expand_as(
            self.index
        )
        indices = torch.stack([rows.reshape(-1), self.index.reshape(-1)])
        return torch.sparse_coo_tensor(
            indices,
            self.value.reshape(-1).to(dtype),
            (self.num_classes, self.num_classes),
            check_invariants=False,
        ).coalesce()

    def similar_mass(self, probs: Tensor) -> Tensor:
        return torch.sparse.mm(self._coo(probs.dtype), probs.T).T

    def similar_mass_transposed(self, values: Tensor) -> Tensor:
        return torch.sparse.mm(self._coo(values.dtype).t(), values.T).T

    def check_device(self, device: torch.device) -> None:
        _check_same_device(self.index, device)


def _describe(obj: object) -> str:
    if isinstance(obj, Tensor):
        return f"a tensor of dtype {obj.dtype} and layout {obj.layout}"
    return type(obj).__name__


def as_similarity_operator(
    similarity: Any,
    num_classes: int,
    *,
    validate: bool = True,
    require_unit_diagonal: bool = True,
) -> _Operator:
    """Wrap any supported similarity as the loss's internal operator.

    Dense tensors and arrays are validated (when ``validate``); torch sparse
    tensors become a :class:`SparseSimilarity`; structured similarities are
    checked for their number of classes.
    """
    if isinstance(similarity, (ClassOrder, SparseSimilarity)):
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
    if validate:
        matrix = validate_similarity(
            similarity, num_classes, require_unit_diagonal=require_unit_diagonal
        )
    else:
        matrix = as_similarity_tensor(similarity)
        if matrix.dim() != 2 or tuple(matrix.shape) != (num_classes, num_classes):
            raise ValueError(
                f"Expected `similarity` of shape ({num_classes}, {num_classes}), "
                f"but found shape {tuple(matrix.shape)}"
            )
    return _DenseOperator(matrix)
