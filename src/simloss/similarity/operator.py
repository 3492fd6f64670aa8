"""What the loss and the metrics ask of a similarity: the public operator protocol.

A similarity ``S`` of ``C`` classes enters SimLoss through three questions:

* the rows ``S[y]`` of a batch of targets (index targets), densely ``(N, C)``
  or as ``(columns, values)`` pairs ``(N, k)``;
* the product ``A = p S^T`` (probability targets, label smoothing);
* its transpose ``v S`` (a gradient; equal to ``A`` for a symmetric ``S``).

:class:`SimilarityOperator` is the base class of every similarity that
answers them without a dense (C, C) matrix. A new structured similarity (a
tree, a lattice, a learned low-rank form) subclasses it and implements
:meth:`~SimilarityOperator.rows` and :meth:`~SimilarityOperator.similar_mass`;
the loss, :class:`simloss.SimLoss` and :mod:`simloss.metrics` then accept it
without any change (pytorch-metric-learning's ``BaseDistance`` is the model).
Dense tensors and numpy arrays are wrapped by :class:`DenseOperator`
(:func:`simloss.similarity.dispatch.as_similarity_operator` decides which);
:class:`LossOperator` is the protocol both satisfy (internal, not exported).
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple, Protocol

import torch
from torch import Tensor, nn

from simloss._numbers import is_int

__all__ = [
    "SimilarityOperator",
    "SimilarityRows",
    "concrete",
    "forward_ad_active",
    "tracing",
]


class SimilarityRows(NamedTuple):
    """Rows ``S[y]`` of a batch: ``dense`` (N, C), or ``columns`` and ``values`` (N, k).

    In the pair form, row ``n`` of ``S`` holds ``values[n, j]`` at column
    ``columns[n, j]``; padding entries have value 0 (their column is any valid
    index). Exactly one of the two forms is set.
    """

    dense: Tensor | None
    columns: Tensor | None
    values: Tensor | None


def tracing() -> bool:
    """Whether the loss runs under ``torch.compile`` or a ``torch.func`` transform.

    Such code must avoid host synchronisation, data-dependent shapes and
    caches; eager code may use all three. Used by the loss and the operators.
    """
    if torch.compiler.is_compiling():
        return True
    return bool(torch._C._are_functorch_transforms_active())


def forward_ad_active() -> bool:
    """Whether a forward-mode AD level is open (``torch.autograd.forward_ad.dual_level``)."""
    return int(getattr(torch.autograd.forward_ad, "_current_level", -1)) >= 0


def concrete(tensor: Tensor) -> bool:
    """Whether ``tensor``'s values can be read on the host for a check.

    False under ``torch.compile`` and for tensors wrapped by a ``torch.func``
    transform (e.g. batched by ``vmap``); a plain tensor used inside a
    transform is concrete.
    """
    if torch.compiler.is_compiling():
        return False
    return not torch._C._functorch.is_functorch_wrapped_tensor(tensor)


class LossOperator(Protocol):
    """The loss's view of any similarity: a :class:`SimilarityOperator` or a :class:`DenseOperator`."""

    @property
    def num_classes(self) -> int: ...

    def rows(self, target: Tensor, dtype: torch.dtype) -> SimilarityRows: ...

    def dense_rows(self, index: Tensor, dtype: torch.dtype) -> Tensor: ...

    def similar_mass(self, probs: Tensor) -> Tensor: ...

    def similar_mass_transposed(self, values: Tensor) -> Tensor: ...

    def check_device(self, device: torch.device) -> None: ...

    def tensors(self) -> list[Tensor]: ...

    @property
    def requires_grad(self) -> bool: ...


class SimilarityOperator(nn.Module):
    """Base class of structured similarities: the extension point of the loss and the metrics.

    A subclass holds its tensors as buffers or parameters (so ``.to()``,
    ``state_dict()`` and DDP treat them right), sets ``num_classes``, and
    implements two methods; the others have exact default implementations
    that a subclass may override for speed:

    * :meth:`rows` (required): ``S[target]`` for a batch of class indices;
    * :meth:`similar_mass` (required): ``probs @ S^T`` for probabilities (N, C);
    * :meth:`similar_mass_transposed`: ``values @ S`` (default: the
      vector-Jacobian product of :meth:`similar_mass`, exact for any ``S``);
    * :meth:`dense_rows`: rows as a dense (M, C) tensor (default: from :meth:`rows`);
    * :meth:`entries`: ``S[target[n], pred[n]]`` (default: from :meth:`rows`);
    * :meth:`to_dense`: the whole (C, C) matrix (default: from :meth:`rows`);
    * :meth:`tensors`: the tensors the loss saves for autograd's version
      check (default: every parameter and buffer).

    Values must lie in [0, 1] and, unless the loss is given
    ``require_unit_diagonal=False``, ``S_ii = 1`` (the paper's definition), as
    for a dense matrix. The loss checks what a subclass returns: the type and
    shape of every result on every call (an error names the method and the
    expected shape), and the values of each class's row the first time it
    gathers that row, again after any of the subclass's parameters or buffers
    changed (O(N * C) for the rows of a batch, in eager mode; traced code
    cannot read values). A subclass that validates its values itself, as
    :class:`simloss.ClassOrder` and :class:`simloss.SparseSimilarity` do at
    construction, sets ``validates_entries = True`` to skip the value checks.
    Under ``torch.compile`` and ``torch.func`` the methods are traced:
    keep them free of host synchronisation (see :func:`tracing`).

    Args:
        num_classes: the number of classes C (>= 1).

    Example:
        >>> import torch
        >>> import simloss
        >>> class Blocks(simloss.SimilarityOperator):  # S_ij = 1 in a block, s across blocks
        ...     def __init__(self, block, s):
        ...         super().__init__(len(block))
        ...         self.register_buffer("block", torch.as_tensor(block))
        ...         self.s = s
        ...     def rows(self, target, dtype):
        ...         same = self.block[target, None] == self.block[None, :]
        ...         rows = torch.where(same, 1.0, self.s).to(dtype)
        ...         return simloss.similarity.SimilarityRows(rows, None, None)
        ...     def similar_mass(self, probs):
        ...         in_block = torch.zeros_like(probs).index_add_(1, self.block, probs)
        ...         own = in_block[:, self.block]
        ...         return own + self.s * (probs.sum(1, keepdim=True) - own)
        >>> S = Blocks([0, 0, 1], s=0.25)
        >>> S.to_dense()
        tensor([[1.0000, 1.0000, 0.2500],
                [1.0000, 1.0000, 0.2500],
                [0.2500, 0.2500, 1.0000]])
        >>> logits, target = torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([0])
        >>> bool(simloss.sim_loss(logits, target, S) == simloss.sim_loss(logits, target, S.to_dense()))
        True
    """

    _device_marker: Tensor
    validates_entries: ClassVar[bool] = False

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        if not is_int(num_classes) or num_classes < 1:
            raise ValueError(f"Expected `num_classes` to be an int >= 1, but found {num_classes!r}")
        self._num_classes = int(num_classes)
        # A zero-size buffer records the device the module was moved to.
        self.register_buffer("_device_marker", torch.empty(0), persistent=False)

    @property
    def num_classes(self) -> int:
        """The number of classes C (read-only: it defines the module's state)."""
        return self._num_classes

    def __prepare_scriptable__(self) -> SimilarityOperator:
        raise RuntimeError(
            f"{type(self).__name__} does not support TorchScript (torch.jit.script / "
            "torch.jit.trace); use torch.compile, which compiles it without graph breaks"
        )

    def rows(self, target: Tensor, dtype: torch.dtype) -> SimilarityRows:
        """Rows ``S[target]`` for class indices ``target`` (N,), in ``dtype``.

        Returns fresh tensors: the loss may overwrite them in place.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement rows(target, dtype)")

    def similar_mass(self, probs: Tensor) -> Tensor:
        """``probs @ S^T``: the similar probability mass of every class, shape (N, C)."""
        raise NotImplementedError(f"{type(self).__name__} must implement similar_mass(probs)")

    def similar_mass_transposed(self, values: Tensor) -> Tensor:
        """``values @ S``, shape (N, C): the vector-Jacobian product of :meth:`similar_mass`."""
        with torch.enable_grad():
            probe = torch.zeros_like(values, requires_grad=True)
            (out,) = torch.autograd.grad(self.similar_mass(probe), probe, values)
        return out

    def dense_rows(self, index: Tensor, dtype: torch.dtype) -> Tensor:
        """Rows ``S[index]`` as a dense (M, C) tensor."""
        rows = self.rows(index, dtype)
        if rows.dense is not None:
            return rows.dense
        assert rows.columns is not None and rows.values is not None
        out = torch.zeros(index.numel(), self.num_classes, dtype=dtype, device=index.device)
        return out.scatter_add(1, rows.columns, rows.values)

    def entries(self, target: Tensor, pred: Tensor, dtype: torch.dtype) -> Tensor:
        """``S[target[n], pred[n]]`` for class indices ``target`` and ``pred`` of shape (N,)."""
        rows = self.rows(target, dtype)
        if rows.dense is not None:
            return rows.dense.gather(1, pred[:, None]).squeeze(1)
        assert rows.columns is not None and rows.values is not None
        hit = rows.columns == pred[:, None]
        return (rows.values * hit).sum(1)

    def to_dense(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """The equivalent dense (C, C) matrix."""
        index = torch.arange(self.num_classes, device=self._device_marker.device)
        return self.dense_rows(index, dtype)

    def check_device(self, device: torch.device) -> None:
        """Raise if the operator's tensors are not on ``device``."""
        _check_same_device(self._device_marker, device)

    def tensors(self) -> list[Tensor]:
        """The non-empty parameters and buffers of the module and its sub-modules.

        The loss saves them for backward, so that autograd's version check
        covers an in-place change between forward and backward. Read from the
        modules' own tables: the loss asks on every call.
        """
        return _module_tensors(self)

    @property
    def requires_grad(self) -> bool:
        """Whether any tensor of the similarity requires a gradient (a learnable ``S``)."""
        return any(t.requires_grad for t in self.tensors())


def _module_tensors(module: nn.Module) -> list[Tensor]:
    tensors = [
        t
        for t in (*module._parameters.values(), *module._buffers.values())
        if t is not None and t.numel()
    ]
    for child in module._modules.values():
        if child is not None:
            tensors.extend(_module_tensors(child))
    return tensors


def _check_same_device(tensor: Tensor, device: torch.device) -> None:
    if tensor.device != device:
        raise ValueError(
            f"Expected `similarity` on the input's device {device}, but found it on "
            f"{tensor.device}; move it with .to({str(device)!r}) (SimLoss moves with the model)"
        )


class DenseOperator:
    """A dense (C, C) matrix seen through the operator protocol (internal, made per call)."""

    def __init__(self, matrix: Tensor) -> None:
        self.matrix = matrix
        self.num_classes = int(matrix.shape[0])

    @property
    def requires_grad(self) -> bool:
        return self.matrix.requires_grad

    def rows(self, target: Tensor, dtype: torch.dtype) -> SimilarityRows:
        return SimilarityRows(self.dense_rows(target, dtype), None, None)

    def dense_rows(self, index: Tensor, dtype: torch.dtype) -> Tensor:
        rows = self.matrix.index_select(0, index)
        return rows if rows.dtype == dtype else rows.to(dtype)

    def similar_mass(self, probs: Tensor) -> Tensor:
        return probs @ self.matrix.to(probs.dtype).T

    def similar_mass_transposed(self, values: Tensor) -> Tensor:
        return values @ self.matrix.to(values.dtype)

    def check_device(self, device: torch.device) -> None:
        _check_same_device(self.matrix, device)

    def tensors(self) -> list[Tensor]:
        return [self.matrix]
