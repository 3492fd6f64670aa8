"""The output head a loss trains: how many outputs the model has, and how they become class scores.

Most losses train ``C`` class logits (:data:`CLASSES`). The ordinal
regression losses train other heads, and every metric, decoder and figure
reads their outputs through :meth:`Head.class_log_probs` (``(N, C)`` class
log-probabilities):

- :data:`CORN` (Shi, Cao & Raschka 2023): ``C - 1`` conditional logits
  ``z_k`` of ``P(y > k | y > k - 1)``;
- :data:`CORAL` (Cao, Mirjalili & Raschka 2020): one shared score ``g(x)``
  plus ``C - 1`` learned biases, the cumulative logits ``g(x) + b_k`` of
  ``P(y > k)`` (coral-pytorch's ``CoralLayer``: a weight vector shared by all
  thresholds, which makes the thresholds rank-consistent).

The two ordinal heads also decide their own median (:meth:`Head.decisions`):
the number of ``P(y > k) > 1/2``, counted on the logits in their dtype as
coral-pytorch counts it (:func:`corn_label`, :func:`coral_label`). Class
log-probabilities carry the rounding of their logs, which can move a
``P(y > k)`` within a few ulps of 1/2 across it, so the metrics and
``simloss predict`` take these classes for ``decoder="median"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CLASSES",
    "CORAL",
    "CORN",
    "HEADS",
    "CoralHead",
    "Head",
    "coral_label",
    "coral_log_probabilities",
    "corn_label",
    "corn_log_probabilities",
]


def corn_log_probabilities(logits: Tensor) -> Tensor:
    """Class log-probabilities ``(N, C)`` from CORN's conditional logits ``(N, C - 1)``.

    .. math::

        \\log p_c = \\sum_{j < c} \\log \\sigma(z_j) + [c < C - 1] \\log \\sigma(-z_c)

    since ``P(y > k) = prod_{j <= k} sigmoid(z_j)`` (Shi, Cao & Raschka 2023, Eq. 3)
    and ``p_c = P(y > c - 1) - P(y > c)``. Rows sum to 1 (in exact arithmetic).

    Example:
        >>> log_p = corn_log_probabilities(torch.tensor([[0.0, 0.0]]))
        >>> [round(v, 4) for v in log_p.exp()[0].tolist()]
        [0.5, 0.25, 0.25]
    """
    if logits.dim() != 2:
        raise ValueError(
            f"Expected CORN logits of shape (N, C - 1), but found {tuple(logits.shape)}"
        )
    above = F.logsigmoid(logits).cumsum(dim=1)  # log P(y > k), k = 0 .. C-2
    zeros = logits.new_zeros(logits.shape[0], 1)
    before = torch.cat([zeros, above], dim=1)  # log P(y > c - 1), c = 0 .. C-1
    stop = torch.cat([F.logsigmoid(-logits), zeros], dim=1)  # log P(y = c | y > c - 1)
    return before + stop


def coral_log_probabilities(logits: Tensor) -> Tensor:
    """Class log-probabilities ``(N, C)`` from CORAL's cumulative logits ``(N, C - 1)``.

    .. math::

        p_c = P(y > c - 1) - P(y > c), \\qquad P(y > k) = \\sigma(z_k),
        \\quad P(y > -1) = 1, \\; P(y > C - 1) = 0

    (Cao, Mirjalili & Raschka 2020, Eq. 5). CORAL's shared weights make the
    thresholds rank-consistent at its optimum, so ``P(y > k)`` falls with
    ``k``; where a model in training has not reached that order, the
    cumulative probabilities are first made non-increasing (each is the
    minimum of those before it), so every ``p_c >= 0``, the rows sum to 1 and
    CORAL's own label (the number of ``P(y > k) > 1/2``) stays the median of
    the distribution. A probability below float32's smallest normal number
    (``1.2e-38``) is scored as that number, so every score is finite.

    Example:
        >>> log_p = coral_log_probabilities(torch.tensor([[0.0, -20.0]]))
        >>> [round(v, 4) for v in log_p.exp()[0].tolist()], bool(log_p.isfinite().all())
        ([0.5, 0.5, 0.0], True)
    """
    if logits.dim() != 2:
        raise ValueError(
            f"Expected CORAL logits of shape (N, C - 1), but found {tuple(logits.shape)}"
        )
    above = torch.sigmoid(logits.float()).cummin(dim=1).values  # P(y > k), non-increasing
    ones = above.new_ones(above.shape[0], 1)
    zeros = above.new_zeros(above.shape[0], 1)
    cumulative = torch.cat([ones, above, zeros], dim=1)
    tiny = torch.finfo(torch.float32).tiny
    return (cumulative[:, :-1] - cumulative[:, 1:]).clamp_min(tiny).log()


def corn_label(logits: Tensor) -> Tensor:
    """CORN's predicted class ``(N,)`` from its conditional logits ``(N, C - 1)``: the median.

    .. math::

        \\hat y = \\sum_{k=0}^{C-2} \\Big[\\prod_{j \\le k} \\sigma(z_j) > \\tfrac12\\Big]

    coral-pytorch's ``corn_label_from_logits`` (Shi, Cao & Raschka 2023, Sec. 3.3),
    computed as it computes it, in the logits' dtype: ``P(y > k)`` is the cumulative
    product of the sigmoids, and the class is the number of them above 1/2. Since
    ``P(y > k)`` falls with ``k``, this is the smallest class whose cumulative
    probability reaches 1/2, the median of the distribution of
    :func:`corn_log_probabilities`, an exact tie ``P(y > k) = 1/2`` going to the lower class.

    Example:
        >>> corn_label(torch.tensor([[0.0, 0.0, 2.1972246], [1e-6, -3.0, -3.0]])).tolist()
        [0, 1]
    """
    if logits.dim() != 2:
        raise ValueError(
            f"Expected CORN logits of shape (N, C - 1), but found {tuple(logits.shape)}"
        )
    above = torch.sigmoid(logits).cumprod(dim=1)
    return (above > 0.5).sum(dim=1)


def coral_label(logits: Tensor) -> Tensor:
    """CORAL's predicted class ``(N,)`` from its cumulative logits ``(N, C - 1)``: the median.

    The number of ``P(y > k) = sigmoid(z_k)`` above 1/2, in the logits' dtype, after
    making them non-increasing as :func:`coral_log_probabilities` does (each the
    minimum of those before it), so the class is the median of that distribution.
    For rank-consistent logits (non-increasing in ``k``, as CORAL's shared weights make
    them) it is coral-pytorch's ``proba_to_label(torch.sigmoid(logits))`` (Cao,
    Mirjalili & Raschka 2020, Eq. 5).

    Example:
        >>> coral_label(torch.tensor([[2.0, 0.0, -1.0], [0.5, -1.0, 0.3]])).tolist()
        [1, 1]
    """
    if logits.dim() != 2:
        raise ValueError(
            f"Expected CORAL logits of shape (N, C - 1), but found {tuple(logits.shape)}"
        )
    above = torch.sigmoid(logits).cummin(dim=1).values
    return (above > 0.5).sum(dim=1)


class CoralHead(nn.Module):
    """A model's one output as CORAL's cumulative logits: ``g(x) + b_k`` for ``k < C - 1``.

    Args:
        model: a model with one output ``g(x)`` of shape ``(N, 1)``.
        num_classes: ``C``.

    Example:
        >>> head = CoralHead(nn.Linear(3, 1), 4)
        >>> head(torch.zeros(2, 3)).shape
        torch.Size([2, 3])
    """

    def __init__(self, model: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.model = model
        # Thresholds start where a zero score gives every class 1/C: b_k = logit((C-1-k)/C),
        # ordered (rank-consistent) and spread as far as the classes need. CoralLayer
        # starts them at zero, where every middle class has probability 0 until the
        # thresholds have moved apart, which at Adam's 1e-3 takes more steps than a
        # small table's run has.
        above = torch.arange(num_classes - 1, 0, -1, dtype=torch.float64) / num_classes
        self.biases = nn.Parameter(torch.logit(above).float())

    def forward(self, x: Tensor) -> Tensor:
        """Cumulative logits ``(N, C - 1)``."""
        score: Tensor = self.model(x)
        if score.dim() != 2 or score.shape[1] != 1:
            raise ValueError(
                f"Expected the model of a CORAL head to return (N, 1), but found {tuple(score.shape)}"
            )
        return score + self.biases


@dataclass(frozen=True)
class Head:
    """The head a loss trains.

    Attributes:
        name: ``"classes"``, ``"corn"`` or ``"coral"``.
        backbone_outputs: the model's outputs for ``C`` classes: ``"C"``,
            ``"C-1"`` or ``"1"``.
    """

    name: str
    backbone_outputs: str

    def outputs(self, num_classes: int) -> int:
        """The backbone's output size for ``num_classes`` classes."""
        return {"C": num_classes, "C-1": num_classes - 1, "1": 1}[self.backbone_outputs]

    def wrap(self, model: nn.Module, num_classes: int) -> nn.Module:
        """The trained model: the backbone, and the head's own parameters (CORAL's biases)."""
        return CoralHead(model, num_classes) if self.name == "coral" else model

    def class_log_probs(self, outputs: Tensor) -> Tensor:
        """Class scores ``(N, C)`` whose softmax is the predicted distribution."""
        if self.name == "corn":
            return corn_log_probabilities(outputs)
        if self.name == "coral":
            return coral_log_probabilities(outputs)
        return outputs

    def decisions(self, outputs: Tensor) -> dict[str, Tensor]:
        """The classes ``(N,)`` the head decides itself, by decoder: CORN's and CORAL's
        ``"median"`` (:func:`corn_label`, :func:`coral_label`); none for class logits,
        whose decoders read the class scores.

        Example:
            >>> CORN.decisions(torch.tensor([[1e-6, -3.0]])), CLASSES.decisions(torch.zeros(1, 3))
            ({'median': tensor([1])}, {})
        """
        if self.name == "corn":
            return {"median": corn_label(outputs)}
        if self.name == "coral":
            return {"median": coral_label(outputs)}
        return {}


#: C class logits.
CLASSES = Head("classes", "C")
#: CORN's C - 1 conditional logits.
CORN = Head("corn", "C-1")
#: CORAL's shared score and C - 1 thresholds.
CORAL = Head("coral", "1")
#: The heads by name.
HEADS: Mapping[str, Head] = MappingProxyType({h.name: h for h in (CLASSES, CORN, CORAL)})
