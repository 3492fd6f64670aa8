"""SimLoss as an ``nn.Module``: a drop-in for ``torch.nn.CrossEntropyLoss``."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from simloss._options import (
    InputType,
    LossOptions,
    Reduction,
    check_ignore_index,
    check_input_type,
    check_label_smoothing,
    check_reduction,
)
from simloss.functional import TORCHSCRIPT_MESSAGE, check_weight, sim_loss
from simloss.similarity.dispatch import check_similarity_kind, validated_dense
from simloss.similarity.operator import SimilarityOperator
from simloss.similarity.structured import SparseSimilarity
from simloss.similarity.validation import as_similarity_tensor, validate_similarity

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
        self._options = LossOptions.checked(
            ignore_index=ignore_index,
            reduction=reduction,
            label_smoothing=label_smoothing,
            input_type=input_type,
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
            self.structured = None
            # A copy, validated once: forward checks it again only after it changes in place.
            matrix = as_similarity_tensor(similarity).clone()
            self.register_buffer("similarity", validated_dense(matrix, None, require_unit_diagonal))
        check_weight(weight, self.num_classes)
        self.register_buffer("weight", weight)
        self.require_unit_diagonal = require_unit_diagonal

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Loss of ``input`` scores against ``target`` (see :func:`simloss.sim_loss`)."""
        options = self._options
        return sim_loss(
            input,
            target,
            self.similarity if self.structured is None else self.structured,
            self.weight,
            options.ignore_index,
            options.reduction,
            options.label_smoothing,
            input_type=options.input_type,
            require_unit_diagonal=self.require_unit_diagonal,
        )

    @property
    def ignore_index(self) -> int:
        """Target value that contributes neither loss nor gradient."""
        return self._options.ignore_index

    @ignore_index.setter
    def ignore_index(self, value: int) -> None:
        self._options = self._options._replace(ignore_index=check_ignore_index(value))

    @property
    def reduction(self) -> Reduction:
        """``"mean"``, ``"sum"`` or ``"none"``."""
        return self._options.reduction

    @reduction.setter
    def reduction(self, value: Reduction) -> None:
        self._options = self._options._replace(reduction=check_reduction(value))

    @property
    def label_smoothing(self) -> float:
        """Amount in [0, 1] of the uniform distribution mixed into the target."""
        return self._options.label_smoothing

    @label_smoothing.setter
    def label_smoothing(self, value: float) -> None:
        self._options = self._options._replace(label_smoothing=check_label_smoothing(value))

    @property
    def input_type(self) -> InputType:
        """What the input holds: ``"logits"``, ``"probs"`` or ``"log_probs"``."""
        return self._options.input_type

    @input_type.setter
    def input_type(self, value: InputType) -> None:
        self._options = self._options._replace(input_type=check_input_type(value))

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

    def get_extra_state(self) -> dict[str, Any]:
        return {**self._options._asdict(), "require_unit_diagonal": self.require_unit_diagonal}

    def set_extra_state(self, state: Any) -> None:
        keys = set(self.get_extra_state())
        if not isinstance(state, dict) or set(state) != keys:
            raise ValueError(
                f"Expected a SimLoss state with the keys {sorted(keys)}, but found {state!r}"
            )
        options = LossOptions.checked(
            ignore_index=state["ignore_index"],
            reduction=state["reduction"],
            label_smoothing=state["label_smoothing"],
            input_type=state["input_type"],
        )
        unit = state["require_unit_diagonal"]
        if not isinstance(unit, bool):
            raise TypeError(
                f"Expected `require_unit_diagonal` to be a bool, but found {type(unit).__name__}"
            )
        self._options, self.require_unit_diagonal = options, unit

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # A state of tensors only (no `_extra_state`) keeps this module's configuration.
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
            check_weight(weight, self.num_classes)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def __prepare_scriptable__(self) -> SimLoss:
        raise RuntimeError(TORCHSCRIPT_MESSAGE)
