"""Similarities that never build the dense (C, C) matrix.

Both are :class:`~simloss.similarity.SimilarityOperator` modules (the public
extension point of the loss and the metrics), so memory is O(N * C) instead of
O(C^2), and ``.to()`` and ``state_dict()`` treat them right when they are part
of a model or a loss:

* :class:`ClassOrder` holds only ``r``: ``S_ij = r^|i-j|``;
* :class:`SparseSimilarity` holds at most ``k`` non-zeros per row.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from simloss._describe import describe
from simloss.similarity.operator import (
    SimilarityOperator,
    SimilarityRows,
    concrete,
    forward_ad_active,
    tracing,
)
from simloss.similarity.order import (
    check_reduction_factor,
    class_order,
    exponential_filter,
    order_band,
)
from simloss.similarity.validation import check_unit_diagonal, validate_similarity

__all__ = ["ClassOrder", "SimilarityRows", "SparseSimilarity"]


_CACHE_DENSE_UP_TO = 2048  # classes; a kept float32 matrix of at most 16 MiB
_CONV_BAND = 32  # distances; a wider band is filtered recursively, not convolved


class ClassOrder(SimilarityOperator):
    """Class-order similarity :math:`S_{ij} = r^{|i-j|}` (Eq. 2) without a (C, C) matrix.

    .. math::

        S_{ij} = r^{|i-j|}, \\qquad r \\in [0, 1), \\qquad 0^0 = 1

    The loss receives the rows of its targets as a band of the distances
    where :math:`r^d` is a normal number in the input's dtype (about 830
    classes wide for ``r = 0.9`` in float32), which is exactly the dense
    :func:`~simloss.similarity.class_order` matrix's content: memory and time
    are O(N * band) for index targets. ``r = 0`` is plain cross-entropy.
    Up to 2048 classes the module keeps the float32 matrix (at most 16 MiB, a
    non-persistent buffer: moved by ``.to()``, not in the state dict): gathering
    its rows is the cheapest form, in eager mode and under ``torch.compile``.

    ``num_classes`` and ``r`` are the module's state: ``state_dict()`` holds
    them (as extra state) and ``load_state_dict`` validates and restores them.

    Args:
        num_classes: number of classes C (>= 1).
        r: reduction factor in [0, 1).

    Raises:
        ValueError: ``num_classes`` < 1 or ``r`` outside [0, 1); on loading,
            a state of another number of classes.

    Example:
        >>> import torch
        >>> import simloss
        >>> S = simloss.ClassOrder(100_000, r=0.5)
        >>> logits, target = torch.zeros(2, 100_000), torch.tensor([0, 99_999])
        >>> round(float(simloss.sim_loss(logits, target, S)), 4)  # log(C / 2): edge rows sum to 2
        10.8198
        >>> dict(S.state_dict())
        {'_extra_state': {'num_classes': 100000, 'r': 0.5}}

    References:
        Kobs et al., "SimLoss: Class Similarities in Cross Entropy", ISMIS 2020,
        https://arxiv.org/abs/2003.03182
    """

    validates_entries = True  # r^|i-j| with r in [0, 1): valid by construction

    _float32_matrix: Tensor | None

    def __init__(self, num_classes: int, r: float) -> None:
        super().__init__(num_classes)
        self._r = check_reduction_factor(r)
        self._bands: dict[tuple[torch.dtype, torch.device], Tensor] = {}
        # For few classes the dense matrix is small and its rows are the cheapest form:
        # float32 as a buffer (compiled code gathers from it), other dtypes cached in eager mode.
        self._dense: dict[tuple[torch.dtype, torch.device], Tensor] = {}
        self.register_buffer("_float32_matrix", self._build_float32_matrix(None), persistent=False)

    def _build_float32_matrix(self, device: torch.device | None) -> Tensor | None:
        if self.num_classes > _CACHE_DENSE_UP_TO:
            return None
        return class_order(self.num_classes, self.r, dtype=torch.float32, device=device)

    def _kept_matrix(self, dtype: torch.dtype, device: torch.device) -> Tensor | None:
        """The float32 buffer if it serves ``dtype`` on ``device`` (``.double()`` converts it)."""
        kept = self._float32_matrix
        if kept is None or dtype != torch.float32 or kept.dtype != dtype or kept.device != device:
            return None
        return kept

    @property
    def r(self) -> float:
        """The reduction factor (read-only: change it through ``load_state_dict``)."""
        return self._r

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, r={self.r}"

    def get_extra_state(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "r": self.r}

    def set_extra_state(self, state: Any) -> None:
        if not isinstance(state, dict) or set(state) != {"num_classes", "r"}:
            raise ValueError(
                "Expected a ClassOrder state {'num_classes': int, 'r': float}, "
                f"but found {state!r}"
            )
        if state["num_classes"] != self.num_classes:
            raise ValueError(
                f"Expected a ClassOrder state for {self.num_classes} classes, but found one for "
                f"{state['num_classes']} classes"
            )
        self._r = check_reduction_factor(state["r"])
        self._bands.clear()
        self._dense.clear()
        if self._float32_matrix is not None:
            self._float32_matrix = self._build_float32_matrix(self._float32_matrix.device)

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # A state without the extra state (only tensors were saved): this module keeps its own.
        state_dict.setdefault(prefix + "_extra_state", self.get_extra_state())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def to_dense(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """The equivalent dense (C, C) matrix (:func:`simloss.similarity.class_order`)."""
        return class_order(self.num_classes, self.r, dtype=dtype, device=self._device_marker.device)

    def band(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        """Values :math:`r^d` for the distances d where they are normal numbers in ``dtype``."""
        return _cached(self._bands, order_band, self.num_classes, self.r, dtype, device)

    def _full_band(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        band = self.band(dtype, device)
        return F.pad(band, (0, self.num_classes - band.numel()))

    def _uses_dense_rows(self, dtype: torch.dtype, device: torch.device) -> bool:
        return (
            self.num_classes <= _CACHE_DENSE_UP_TO
            or 2 * self.band(dtype, device).numel() - 1 >= self.num_classes
        )

    def rows(self, target: Tensor, dtype: torch.dtype) -> SimilarityRows:
        device = target.device
        kept = self._kept_matrix(dtype, device)
        if kept is not None:  # the common case first
            return SimilarityRows(kept.index_select(0, target), None, None)
        if self._uses_dense_rows(dtype, device):
            return SimilarityRows(self.dense_rows(target, dtype), None, None)
        band = self.band(dtype, device)
        width = band.numel() - 1
        offsets = torch.arange(-width, width + 1, device=device)
        index = target[:, None] + offsets
        inside = (index >= 0) & (index < self.num_classes)
        symmetric = torch.cat([band[1:].flip(0), band])
        value = symmetric * inside
        return SimilarityRows(None, index.clamp(0, self.num_classes - 1), value)

    def dense_rows(self, index: Tensor, dtype: torch.dtype) -> Tensor:
        kept = self._kept_matrix(dtype, index.device)
        if kept is not None:
            return kept.index_select(0, index)
        if self.num_classes <= _CACHE_DENSE_UP_TO and not tracing():
            return self._matrix(dtype, index.device).index_select(0, index)
        full = self._full_band(dtype, index.device)
        classes = torch.arange(self.num_classes, device=index.device)
        return full[(index[:, None] - classes[None, :]).abs()]

    def entries(self, target: Tensor, pred: Tensor, dtype: torch.dtype) -> Tensor:
        full = self._full_band(dtype, target.device)
        return full[(target - pred).abs()]

    def _matrix(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        """The dense matrix: kept or cached in eager mode for up to ``_CACHE_DENSE_UP_TO`` classes."""
        kept = self._kept_matrix(dtype, device)
        if kept is not None:
            return kept
        if self.num_classes > _CACHE_DENSE_UP_TO:
            return class_order(self.num_classes, self.r, dtype=dtype, device=device)
        return _cached(self._dense, class_order, self.num_classes, self.r, dtype, device)

    def similar_mass(self, probs: Tensor) -> Tensor:
        """``probs @ S^T`` without a (C, C) matrix beyond ``_CACHE_DENSE_UP_TO`` classes.

        A narrow band (at most ``_CONV_BAND`` distances) is a 1-D convolution;
        a wide one is the two-sided exponential filter
        :func:`~simloss.similarity.order.exponential_filter`, O(N * C) for any r.
        """
        if self.num_classes <= _CACHE_DENSE_UP_TO:
            return probs @ self._matrix(probs.dtype, probs.device)  # S is symmetric
        band = self.band(probs.dtype, probs.device)
        if band.numel() - 1 > _CONV_BAND:
            return exponential_filter(probs, self.r)
        kernel = torch.cat([band[1:].flip(0), band]).view(1, 1, -1)
        out = F.conv1d(probs.unsqueeze(1), kernel, padding=band.numel() - 1)
        return out.squeeze(1)

    def similar_mass_transposed(self, values: Tensor) -> Tensor:
        return self.similar_mass(values)  # S is symmetric


def _cached(
    store: dict[tuple[torch.dtype, torch.device], Tensor],
    build: Any,
    num_classes: int,
    r: float,
    dtype: torch.dtype,
    device: torch.device,
) -> Tensor:
    """``build(num_classes, r)`` in ``dtype`` on ``device``, kept in ``store`` in eager mode.

    Traced code (compile, torch.func) builds it afresh: a cache is Python state.
    A cache entry is built outside inference mode, so it also serves autograd.
    """
    if tracing():
        return build(num_classes, r, dtype=dtype, device=device)
    key = (dtype, device)
    if key not in store:
        with torch.inference_mode(False):
            store[key] = build(num_classes, r, dtype=dtype, device=device)
    return store[key]


class SparseSimilarity(SimilarityOperator):
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
    validates_entries = True  # checked at construction and after any change (see _recheck)

    def __init__(self, index: Tensor, value: Tensor, *, require_unit_diagonal: bool = True) -> None:
        index = _check_sparse(index, value, require_unit_diagonal)
        super().__init__(int(index.shape[0]))
        self.require_unit_diagonal = require_unit_diagonal
        self.register_buffer("index", index)
        self.register_buffer("value", value)
        self._checked = _versions(self.index, self.value)

    def _recheck(self) -> None:
        """Check ``index`` and ``value`` again if they changed in place since their last check.

        O(1) while they are unchanged (their identity and version counters are
        compared); a buffer replaced by ``.to()`` or ``load_state_dict`` or
        written in place (``value.copy_(...)``) is checked once more, as
        :func:`simloss.sim_loss` checks a changed dense tensor. Traced code
        (compile, torch.func) cannot read the values and skips the check.
        """
        if not (concrete(self.index) and concrete(self.value)):
            return
        now = _versions(self.index, self.value)
        if now is None or now != self._checked:
            _check_sparse(self.index, self.value, self.require_unit_diagonal)
            self._checked = now

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        index, value = state_dict.get(prefix + "index"), state_dict.get(prefix + "value")
        if index is not None and value is not None:  # missing keys are reported by torch
            _check_sparse(index, value, self.require_unit_diagonal)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

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
                f"Expected `similarity` to be a torch sparse tensor, but found {describe(matrix)}"
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

    def to_dense(self, dtype: torch.dtype | None = None) -> Tensor:
        """The equivalent dense (C, C) matrix (in the values' dtype by default)."""
        return self.dense_rows(
            torch.arange(self.num_classes, device=self.index.device), dtype or self.value.dtype
        )

    def rows(self, target: Tensor, dtype: torch.dtype) -> SimilarityRows:
        self._recheck()
        return SimilarityRows(None, self.index[target], self.value[target].to(dtype))

    def dense_rows(self, index: Tensor, dtype: torch.dtype) -> Tensor:
        self._recheck()
        out = torch.zeros(index.numel(), self.num_classes, dtype=dtype, device=index.device)
        return out.scatter_add(1, self.index[index], self.value[index].to(dtype))

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

    def _plain_operations(self) -> bool:
        """Gather instead of torch.sparse.mm: under tracing (sparse tensors do not trace),
        forward-mode AD (sparse.mm has no forward rule) and a learnable ``value``
        (sparse.mm's double backward in the values is wrong)."""
        return tracing() or forward_ad_active() or self.value.requires_grad

    def similar_mass(self, probs: Tensor) -> Tensor:
        self._recheck()
        if self._plain_operations():  # the k columns of every row, gathered
            return (probs[:, self.index] * self.value.to(probs.dtype)).sum(-1)
        return torch.sparse.mm(self._coo(probs.dtype), probs.T).T

    def similar_mass_transposed(self, values: Tensor) -> Tensor:
        if self._plain_operations():
            n = values.shape[0]
            spread = (values[:, :, None] * self.value.to(values.dtype)).reshape(n, -1)
            columns = self.index.reshape(1, -1).expand(n, -1)
            return values.new_zeros(n, self.num_classes).scatter_add(1, columns, spread)
        return torch.sparse.mm(self._coo(values.dtype).t(), values.T).T


def _versions(index: Tensor, value: Tensor) -> tuple[int, int, int, int] | None:
    """Identity and version counter of both buffers (None for inference tensors, which have none)."""
    try:
        return (id(index), index._version, id(value), value._version)
    except RuntimeError:
        return None


def _check_sparse(index: Any, value: Any, require_unit_diagonal: bool) -> Tensor:
    """Check a sparse similarity's (index, value) pair; return the index as int64."""
    if not isinstance(index, Tensor) or index.is_floating_point() or index.is_complex():
        raise TypeError(f"Expected `index` to be an integer tensor, but found {describe(index)}")
    if not isinstance(value, Tensor) or not value.is_floating_point():
        raise TypeError(f"Expected `value` to be a floating tensor, but found {describe(value)}")
    if index.dim() != 2 or index.shape != value.shape:
        raise ValueError(
            "Expected `index` and `value` of the same shape (C, k), but found "
            f"{tuple(index.shape)} and {tuple(value.shape)}"
        )
    num_classes = int(index.shape[0])
    if num_classes < 1:
        raise ValueError(
            "Expected `index` and `value` of shape (C, k) with C >= 1, but found C = 0"
        )
    index = index.long()
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= num_classes):
        bad = torch.nonzero((index < 0) | (index >= num_classes))[0]
        raise ValueError(
            f"Expected `index` values in [0, {num_classes}), but found "
            f"{int(index[bad[0], bad[1]])} at {tuple(int(b) for b in bad)}"
        )
    plain = value.detach()
    invalid = ~torch.isfinite(plain) | (plain < 0) | (plain > 1)
    if bool(invalid.any()):
        pos = tuple(int(b) for b in torch.nonzero(invalid)[0])
        raise ValueError(
            f"Expected `value` to be finite and in [0, 1], but found {plain[pos].item():g} at {pos}"
        )
    rows = torch.arange(num_classes, device=index.device)[:, None]
    flat = (rows * num_classes + index)[plain != 0]
    unique, counts = torch.unique(flat, return_counts=True)
    if bool((counts > 1).any()):
        first = int(unique[counts > 1][0])
        raise ValueError(
            "Expected `index` to list each column at most once per row among the non-zero "
            f"values, but found column {first % num_classes} twice in row {first // num_classes}"
        )
    if require_unit_diagonal:
        diagonal = torch.zeros(num_classes, dtype=plain.dtype, device=plain.device)
        is_diag = index == rows
        diagonal.scatter_add_(0, torch.nonzero(is_diag)[:, 0], plain[is_diag])
        check_unit_diagonal(diagonal, "the similarity to have")
    return index
