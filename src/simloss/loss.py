"""SimLoss as an ``nn.Module``: a drop-in for ``torch.nn.CrossEntropyLoss``."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from simloss.functional import (
    _TORCHSCRIPT,
    InputType,
    Reduction,
    _check_arguments,
    check_input,
    checked_sim_loss,
)
from simloss.similarity.dispatch import _validate_dense, check_similarity_kind
from simloss.similarity.operator import SimilarityOperator, _DenseOperator, _Operator, concrete
from simloss.similarity.structured import SparseSimilarity
from simloss.similarity.validation import validate_similarity

__all__ = ["SimLoss"]


class SimLoss(nn.Module):
    """Similarity-based cross-entropy with the interface of :class:`torch.nn.CrossEntropyLoss`.

    .. math::

        \\ell_i = -\\log \\sum_{c=1}^{C} S_{y_i, c}\\, \\operatorname{softmax}(z_i)[c]

    The module validates the similarity here and holds it as state that
    moves with the module: a dense matrix is the registered buffer
    ``similarity`` (in ``state_dict()``, moved by ``.to()``); a structured
    similarity (any :class:`~simloss.similarity.SimilarityOperator`, such as
    :class:`simloss.ClassOrder` or :class:`simloss.SparseSimilarity`) is a
    sub-module. ``weight`` is a buffer too, as in cross-entropy. The rest of
    the configuration (``ignore_index``, ``reduction``, ``label_smoothing``,
    ``input_type``, ``require_unit_diagonal``) is the module's extra state, so
    ``state_dict()`` holds everything that defines the loss, and
    ``load_state_dict`` checks loaded values as the constructor does. A
    dense buffer changed in place (``criterion.similarity.copy_(S_new)``, e.g.
    a similarity scheduled during training) is checked again on the next
    call, as :func:`simloss.sim_loss` checks a changed tensor (O(1) per call
    otherwise; eager mode only, not under ``torch.compile``). See
    :func:`simloss.sim_loss` for the arguments and shapes.

    Args:
        similarity: dense (C, C) tensor or numpy array, torch sparse tensor,
            or a structured similarity.
        weight: optional class weights of shape (C).
        ignore_index: target value that is ignored.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        label_smoothing: amount in [0, 1] of uniform target smoothing.
        input_type: ``"logits"``, ``"probs"`` or ``"log_probs"``.
        require_unit_diagonal: require :math:`S_{ii} = 1` (the paper's definition).

    Example:
        >>> import torch
        >>> from simloss import SimLoss
        >>> from simloss.similarity import class_order
        >>> criterion = SimLoss(class_order(5, r=0.5))  # instead of nn.CrossEntropyLoss()
        >>> logits = torch.randn(8, 5, requires_grad=True)
        >>> loss = criterion(logits, torch.randint(0, 5, (8,)))
        >>> loss.backward()
        >>> sorted(criterion.state_dict())
        ['_extra_state', 'similarity']

    References:
        Kobs et al., "SimLoss: Class Similarities in Cross Entropy", ISMIS 2020,
        https://arxiv.org/abs/2003.03182
    """

    similarity: Tensor | None
    weight: Tensor | None

    def __init__(
        self,
        similarity: Any,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: Reduction = "mean",
        label_smoothing: float = 0.0,
        *,
        input_type: InputType = "logits",
        require_unit_diagonal: bool = True,
    ) -> None:
        super().__init__()
        label_smoothing, ignore_index = _check_arguments(
            reduction, label_smoothing, input_type, ignore_index
        )
        self.structured: SimilarityOperator | None
        if isinstance(similarity, SimilarityOperator):
            self.structured = similarity
            self.register_buffer("similarity", None)
        elif isinstance(similarity, Tensor) and similarity.layout != torch.strided:
            self.structured = SparseSimilarity.from_sparse(
                similarity, require_unit_diagonal=require_unit_diagonal
            )
            self.register_buffer("similarity", None)
        else:
            check_similarity_kind(similarity)
            matrix = validate_similarity(similarity, require_unit_diagonal=require_unit_diagonal)
            self.structured = None
            buffer = matrix.clone()
            self.register_buffer("similarity", buffer)
            # Remembered as validated at this version: forward re-checks only after a change.
            _validate_dense(buffer, len(matrix), require_unit_diagonal)
        if weight is not None:
            _check_weight_shape(weight, self.num_classes)
        self.register_buffer("weight", weight)
        self._ignore_index = ignore_index
        self._reduction: Reduction = reduction
        self._label_smoothing = label_smoothing
        self._input_type: InputType = input_type
        self.require_unit_diagonal = require_unit_diagonal

    # The configuration is checked when it is set, so forward need not check it again.
    @property
    def ignore_index(self) -> int:
        """Target value that contributes neither loss nor gradient."""
        return self._ignore_index

    @ignore_index.setter
    def ignore_index(self, value: int) -> None:
        self._ignore_index = _check_arguments("mean", 0.0, "logits", value)[1]

    @property
    def reduction(self) -> Reduction:
        """``"mean"``, ``"sum"`` or ``"none"``."""
        return self._reduction

    @reduction.setter
    def reduction(self, value: Reduction) -> None:
        _check_arguments(value, 0.0, "logits", -100)
        self._reduction = value

    @property
    def label_smoothing(self) -> float:
        """Amount in [0, 1] of the uniform distribution mixed into the target."""
        return self._label_smoothing

    @label_smoothing.setter
    def label_smoothing(self, value: float) -> None:
        self._label_smoothing = _check_arguments("mean", value, "logits", -100)[0]

    @property
    def input_type(self) -> InputType:
        """What the input holds: ``"logits"``, ``"probs"`` or ``"log_probs"``."""
        return self._input_type

    @input_type.setter
    def input_type(self, value: InputType) -> None:
        _check_arguments("mean", 0.0, value, -100)
        self._input_type = value

    def get_extra_state(self) -> dict[str, Any]:
        return {
            "ignore_index": self.ignore_index,
            "reduction": self.reduction,
            "label_smoothing": self.label_smoothing,
            "input_type": self.input_type,
            "require_unit_diagonal": self.require_unit_diagonal,
        }

    def set_extra_state(self, state: Any) -> None:
        keys = set(self.get_extra_state())
        if not isinstance(state, dict) or set(state) != keys:
            raise ValueError(
                f"Expected a SimLoss state with the keys {sorted(keys)}, but found {state!r}"
            )
        label_smoothing, ignore_index = _check_arguments(
            state["reduction"],
            state["label_smoothing"],
            state["input_type"],
            state["ignore_index"],
        )
        if not isinstance(state["require_unit_diagonal"], bool):
            raise TypeError(
                "Expected `require_unit_diagonal` to be a bool, but found "
                f"{type(state['require_unit_diagonal']).__name__}"
            )
        self._ignore_index, self._label_smoothing = ignore_index, label_smoothing
        self._reduction, self._input_type = state["reduction"], state["input_type"]
        self.require_unit_diagonal = state["require_unit_diagonal"]

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # A state saved before the configuration was state (simloss 0.1) keeps this module's.
        state_dict.setdefault(prefix + "_extra_state", self.get_extra_state())
        # Check loaded values as the constructor checks them, before anything is copied.
        extra = state_dict.get(prefix + "_extra_state")
        unit = self.require_unit_diagonal
        if isinstance(extra, dict) and isinstance(extra.get("require_unit_diagonal"), bool):
            unit = extra["require_unit_diagonal"]
        matrix = state_dict.get(prefix + "similarity")
        if matrix is not None and self.similarity is not None:
            validate_similarity(
                matrix, self.num_classes, require_unit_diagonal=unit, name="similarity"
            )
        weight = state_dict.get(prefix + "weight")
        if weight is not None and self.weight is not None:
            _check_weight_shape(weight, self.num_classes)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def __prepare_scriptable__(self) -> SimLoss:
        raise RuntimeError(_TORCHSCRIPT)

    @property
    def num_classes(self) -> int:
        """Number of classes C of the similarity."""
        if self.structured is not None:
            return self.structured.num_classes
        assert self.similarity is not None
        return int(self.similarity.shape[0])

    def extra_repr(self) -> str:
        parts = [f"num_classes={self.num_classes}", f"reduction={self.reduction!r}"]
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        if self.input_type != "logits":
            parts.append(f"input_type={self.input_type!r}")
        return ", ".join(parts)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Loss of ``input`` scores against ``target`` (see :func:`simloss.sim_loss`)."""
        if torch.jit.is_scripting() or torch.jit.is_tracing():
            raise RuntimeError(_TORCHSCRIPT)
        operator: _Operator
        if self.structured is not None:
            operator = self.structured
        else:
            assert self.similarity is not None
            matrix = self.similarity
            if concrete(matrix):  # O(1) unless the buffer changed in place since its last check
                _validate_dense(matrix, len(matrix), self.require_unit_diagonal)
            operator = _DenseOperator(matrix)
        num_classes = check_input(input)
        if num_classes != operator.num_classes:
            raise ValueError(
                f"Expected `input` with {operator.num_classes} classes (the similarity's size) "
                f"along its class dimension, but found {num_classes} in shape {tuple(input.shape)}"
            )
        weight = self.weight
        if weight is not None and weight.device != input.device:
            raise ValueError(
                f"Expected `weight` on the input's device {input.device}, but found "
                f"{weight.device}; SimLoss moves it with .to()"
            )
        return checked_sim_loss(
            input,
            target,
            operator,
            weight,
            self._ignore_index,
            self._reduction,
            self._label_smoothing,
            self._input_type,
        )


def _check_weight_shape(weight: Any, num_classes: int) -> None:
    if not isinstance(weight, Tensor) or not weight.is_floating_point():
        raise TypeError(
            f"Expected `weight` to be a floating tensor of shape ({num_classes},), "
            f"but found {type(weight).__name__}"
        )
    if tuple(weight.shape) != (num_classes,):
        raise ValueError(
            f"Expected `weight` of shape ({num_classes},), but found {tuple(weight.shape)}"
        )
