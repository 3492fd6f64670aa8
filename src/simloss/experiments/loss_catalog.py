"""Every training loss simloss compares, each one self-describing entry: its facts and its builder.

An entry (:class:`LossSpec`) says what the loss is (title, source, library),
which tasks it fits (any classes, ordered ones, or related unordered ones),
its own hyper-parameter with range, default and grid (:class:`LossParam`),
the head the model trains (:mod:`simloss.experiments.heads`) and how to
build it (``build(context) -> nn.Module``). The command line (``--loss``
choices and help), the config's checks, sweeps, tunes, reports and
``docs/losses.md`` (checked by a test) all read :data:`LOSSES`: adding a loss
is one entry here plus its test.

The implementations come from maintained libraries, never rewritten here:
``torch`` (CE, label smoothing), :mod:`simloss` (SimLoss, soft labels,
hierarchical cross-entropy), dlordinal (SORD and the unimodal soft labels,
CDW-CE, EMD) and coral-pytorch (CORN, CORAL); the optional ones are imported
when built, with an error naming the ``peers`` extra.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from torch import Tensor, nn

from simloss.experiments.heads import CLASSES, CORAL, CORN, Head

__all__ = [
    "DEFAULT_LOSS",
    "LOSSES",
    "LOSS_TASKS",
    "PEERS_EXTRA",
    "LossContext",
    "LossParam",
    "LossSpec",
    "loss_spec",
    "stored_loss",
]

#: The loss of a sweep's grid, a stored trial or a record that names none: SimLoss. The
#: first studies held SimLoss alone and stored no loss; a grid of SimLoss still stores
#: none, so such a study reads the same in every version.
DEFAULT_LOSS = "simloss"


def stored_loss(value: object) -> str:
    """The loss a stored grid, trial or record names, or :data:`DEFAULT_LOSS` where it names none.

    Example:
        >>> stored_loss("sord"), stored_loss(None)
        ('sord', 'simloss')
    """
    return str(value or DEFAULT_LOSS)


#: The extra that installs the ordinal peers' runtime dependencies (dlordinal itself is
#: installed with ``--no-deps``: its torchvision requirement does not import beside a CPU torch).
PEERS_EXTRA = "peers"
#: The kinds of task a loss applies to: any classes, ordered classes only, or classes
#: related by a similarity or hierarchy (not ordered).
LOSS_TASKS: tuple[str, ...] = ("any", "ordinal", "semantic")


@dataclass(frozen=True)
class LossParam:
    """The one hyper-parameter of a peer loss that sweeps and tuning vary.

    Attributes:
        name: its name in grids (``--grid alpha=1,2``) and records (``param``).
        default: the value a run takes when ``loss_param`` is left out.
        low, high: the valid range; ``low_open``/``high_open`` exclude an end.
        grid: the values a sweep takes without ``--grid``.
        meaning: what it does, for people.
        source: where the default comes from (paper, section; or the library).
        log: whether a tuner should search it on a log scale.
    """

    name: str
    default: float
    low: float
    high: float
    grid: tuple[float, ...]
    meaning: str
    source: str
    low_open: bool = False
    high_open: bool = False
    log: bool = False

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the valid range.

        Example:
            >>> LOSSES["label-smoothing"].param.contains(1.0)
            False
        """
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below and math.isfinite(value)

    def range_text(self) -> str:
        """The valid range as an interval, e.g. ``"[0, 1)"``."""
        return (
            f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
            f"{')' if self.high_open else ']'}"
        )


@dataclass(frozen=True)
class LossContext:
    """What a loss's builder may use (made by :func:`simloss.experiments.losses.build_criterion`).

    Attributes:
        num_classes: ``C``.
        value: the loss's parameter (its own, or ``r``/``l`` for those built
            from the similarity), ``None`` without one.
        similarity: builds the run's similarity ``S`` ``(C, C)`` when called.
        hierarchy_edges: builds the run's hierarchy (``(parent, child)`` edges) when called.
        class_names: the class names, or ``None``.
        train_targets: the training split's class indices (SORD's class weights).
    """

    num_classes: int
    value: float | None
    similarity: Callable[[], Any]
    hierarchy_edges: Callable[[], Any]
    class_names: tuple[str, ...] | None
    train_targets: Tensor


@dataclass(frozen=True)
class LossSpec:
    """A training loss simloss can compare: its facts and how to build it.

    Attributes:
        name: the ``loss`` setting (``--loss``) and the name in records.
        title: its name in tables and figures.
        task: ``"any"``, ``"ordinal"`` (ordered classes only) or ``"semantic"``
            (unordered classes with a similarity or a hierarchy).
        source: the paper.
        library: where the implementation comes from (``torch``, ``simloss``,
            ``dlordinal``, ``coral_pytorch``).
        build: ``build(context)``: the loss module, called as ``loss(outputs, target)``
            on the head's outputs and class indices.
        param: its own hyper-parameter (held in ``loss_param``), or ``None``.
        uses_similarity: built from the task's similarity, so its parameter is
            the task's ``r`` or ``l`` (SimLoss, soft labels).
        needs: run settings it cannot run without (e.g. ``hierarchy``).
        head: the model's head (:mod:`simloss.experiments.heads`).
        max_classes: the most classes it is defined for (``None``: any).
        min_classes: the fewest classes it is defined for (``None``: any).
    """

    name: str
    title: str
    task: str
    source: str
    library: str
    build: Callable[[LossContext], nn.Module]
    param: LossParam | None = None
    uses_similarity: bool = False
    needs: tuple[str, ...] = ()
    head: Head = CLASSES
    max_classes: int | None = None
    min_classes: int | None = None

    def applies_to(self, task: Any) -> bool:
        """Whether the loss is defined for a task (ordinal losses need ordered classes)."""
        return self.task == "any" or (self.task == "ordinal") == bool(task.ordinal)

    def num_outputs(self, num_classes: int) -> int:
        """The model's output size for ``num_classes`` classes (C; C - 1 for CORN; 1 for CORAL)."""
        return self.head.outputs(num_classes)


def _require(module: str) -> Any:
    from simloss._optional import require

    return require(module, PEERS_EXTRA)


# ----------------------------------------------------------------------------- builders
def _cross_entropy(context: LossContext) -> nn.Module:
    return nn.CrossEntropyLoss()


def _label_smoothing(context: LossContext) -> nn.Module:
    return nn.CrossEntropyLoss(label_smoothing=float(context.value or 0.0))


def _simloss(context: LossContext) -> nn.Module:
    import simloss

    return simloss.SimLoss(context.similarity())


def _soft_labels(context: LossContext) -> nn.Module:
    import torch

    import simloss.peers

    similarity = torch.as_tensor(context.similarity(), dtype=torch.float32)
    return simloss.peers.SoftLabelCrossEntropy(similarity)


def _hxe(context: LossContext) -> nn.Module:
    import simloss.peers

    names = list(context.class_names or ())
    return simloss.peers.HierarchicalCrossEntropy(
        context.hierarchy_edges(), names, float(context.value or 0.0)
    )


def _sord(context: LossContext) -> nn.Module:
    losses = _require("dlordinal.losses")
    return losses.SORDLoss(
        alpha=context.value, num_classes=context.num_classes, train_targets=context.train_targets
    )


def _soft_label_loss(name: str, keyword: str) -> Callable[[LossContext], nn.Module]:
    """A dlordinal loss of CE against unimodal soft labels (``TriangularLoss(ce, C, alpha2=)``)."""

    def build(context: LossContext) -> nn.Module:
        losses = _require("dlordinal.losses")
        kind = getattr(losses, name)
        return kind(nn.CrossEntropyLoss(), context.num_classes, **{keyword: context.value})

    return build


class _LogitsShift(nn.Module):
    """Subtract each row's (detached) maximum before a loss that exponentiates raw logits.

    dlordinal's CDW-CE computes ``log(sum exp(z) - exp(z_i)) - log(sum exp(z))``,
    which overflows for logits above ~88 in float32; the loss depends on
    ``softmax(z)`` only, so shifting each row changes neither value nor gradient.
    """

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.inner = loss

    def forward(self, outputs: Tensor, target: Tensor) -> Tensor:
        shifted = outputs - outputs.detach().amax(dim=1, keepdim=True)
        result: Tensor = self.inner(shifted, target)
        return result


def _cdw_ce(context: LossContext) -> nn.Module:
    losses = _require("dlordinal.losses")
    return _LogitsShift(losses.CDWCELoss(context.num_classes, alpha=context.value))


def _emd(context: LossContext) -> nn.Module:
    loss: nn.Module = _require("dlordinal.losses").EMDLoss(context.num_classes)
    return loss


class _Corn(nn.Module):
    """coral-pytorch's ``corn_loss`` on CORN's ``C - 1`` conditional logits."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self._corn_loss = _require("coral_pytorch.losses").corn_loss

    def forward(self, outputs: Tensor, target: Tensor) -> Tensor:
        result: Tensor = self._corn_loss(outputs, target, self.num_classes)
        return result


class _Coral(nn.Module):
    """coral-pytorch's ``coral_loss`` on CORAL's ``C - 1`` cumulative logits and extended labels."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self._coral_loss = _require("coral_pytorch.losses").coral_loss
        self._levels = _require("coral_pytorch.dataset").levels_from_labelbatch

    def forward(self, outputs: Tensor, target: Tensor) -> Tensor:
        levels = self._levels(target, num_classes=self.num_classes).to(outputs)
        result: Tensor = self._coral_loss(outputs, levels)
        return result


_UNIMODAL_ETA = LossParam(
    name="eta",
    default=1.0,
    low=0.0,
    high=1.0,
    grid=(0.25, 0.5, 0.75, 1.0),
    meaning="weight of the soft labels against the one-hot target, (1 - eta) onehot + eta q[y]",
    source="dlordinal's default eta = 1 (the targets are the soft labels alone)",
)

_ENTRIES = (
    LossSpec(
        name="ce", title="CE", task="any", library="torch", build=_cross_entropy,
        source="cross-entropy (the CCE row)",
    ),
    LossSpec(
        name="simloss", title="SimLoss", task="any", library="simloss", build=_simloss,
        uses_similarity=True, source="Kobs et al., ISMIS 2020, Eq. 1",
    ),
    LossSpec(
        name="label-smoothing", title="Label smoothing", task="any", library="torch",
        build=_label_smoothing, source="Szegedy et al., CVPR 2016",
        param=LossParam(
            name="epsilon", default=0.1, low=0.0, high=1.0, high_open=True,
            grid=(0.05, 0.1, 0.2, 0.3),
            meaning="probability mass spread uniformly over all classes",
            source="Szegedy et al., CVPR 2016, Sec. 7: epsilon = 0.1",
        ),
    ),
    LossSpec(
        name="soft-labels", title="Soft labels", task="any", library="simloss",
        build=_soft_labels, uses_similarity=True,
        source="Bertinetto et al., CVPR 2020 (CE against S[y] / sum S[y])",
    ),
    LossSpec(
        name="hxe", title="HXE", task="semantic", library="simloss", build=_hxe,
        needs=("hierarchy",), source="Bertinetto et al., CVPR 2020, Eq. 5",
        param=LossParam(
            name="alpha", default=0.1, low=0.0, high=10.0, grid=(0.1, 0.2, 0.3, 0.5),
            meaning="weight exp(-alpha h(C)) of a hierarchy level of height h",
            source="Bertinetto et al., CVPR 2020, Sec. 5: alpha = 0.1, the smallest of their grid",
        ),
    ),
    LossSpec(
        name="sord", title="SORD", task="ordinal", library="dlordinal", build=_sord,
        source="Diaz & Marathe, CVPR 2019",
        param=LossParam(
            name="alpha", default=1.0, low=0.0, high=100.0, low_open=True, log=True,
            grid=(0.5, 1.0, 2.0, 4.0),
            meaning="soft label q_i proportional to exp(-alpha |i - y|)",
            source="Diaz & Marathe, CVPR 2019, Eq. 1 with the plain distance phi = |i - y| (alpha = 1)",
        ),
    ),
    LossSpec(
        name="triangular", title="Triangular", task="ordinal", library="dlordinal",
        build=_soft_label_loss("TriangularLoss", "alpha2"),
        source="Vargas et al., Information Fusion 2023",
        param=LossParam(
            name="alpha2", default=0.05, low=0.0, high=0.5, low_open=True, high_open=True,
            grid=(0.01, 0.05, 0.1, 0.2), meaning="probability given to each adjacent class",
            source="Vargas et al., Information Fusion 2023 (dlordinal's default alpha2 = 0.05)",
        ),
    ),
    LossSpec(
        name="beta", title="Beta", task="ordinal", library="dlordinal",
        build=_soft_label_loss("BetaLoss", "eta"), param=_UNIMODAL_ETA, max_classes=14,
        min_classes=3,  # dlordinal's "standard" beta parameters exist for 3..14 classes
        source="Vargas et al., Pattern Recognition 2022",
    ),
    LossSpec(
        name="binomial", title="Binomial", task="ordinal", library="dlordinal",
        build=_soft_label_loss("BinomialLoss", "eta"), param=_UNIMODAL_ETA,
        source="Liu et al., Neurocomputing 2020",
    ),
    LossSpec(
        name="poisson", title="Poisson", task="ordinal", library="dlordinal",
        build=_soft_label_loss("PoissonLoss", "eta"), param=_UNIMODAL_ETA,
        source="Liu et al., Neurocomputing 2020",
    ),
    LossSpec(
        name="exponential", title="Exponential", task="ordinal", library="dlordinal",
        build=_soft_label_loss("ExponentialLoss", "p"),
        source="Vargas et al., Applied Soft Computing 2023",
        param=LossParam(
            name="p", default=1.0, low=0.0, high=10.0, low_open=True, grid=(0.5, 1.0, 1.5, 2.0),
            meaning="exponent of the distance, q_i proportional to exp(-|i - y|^p)",
            source="Vargas et al., Applied Soft Computing 2023 (dlordinal's default p = 1, tau = 1)",
        ),
    ),
    LossSpec(
        name="cdw-ce", title="CDW-CE", task="ordinal", library="dlordinal", build=_cdw_ce,
        source="Polat et al., arXiv 2202.05167 (2022)",
        param=LossParam(
            name="alpha", default=5.0, low=0.0, high=20.0, low_open=True, grid=(1.0, 2.0, 3.0, 5.0),
            meaning="power of the class distance, -sum_i |i - y|^alpha log(1 - p_i)",
            source="Polat et al., arXiv 2412.01246 (2024): alpha 5 to 7 worked best",
        ),
    ),
    LossSpec(
        name="emd", title="EMD", task="ordinal", library="dlordinal", build=_emd,
        source="Hou et al., arXiv 1611.05916 (2016): squared EMD",
    ),
    LossSpec(
        name="corn", title="CORN", task="ordinal", library="coral_pytorch",
        build=lambda context: _Corn(context.num_classes), head=CORN,
        source="Shi, Cao & Raschka, Pattern Analysis and Applications 2023",
    ),
    LossSpec(
        name="coral", title="CORAL", task="ordinal", library="coral_pytorch",
        build=lambda context: _Coral(context.num_classes), head=CORAL,
        source="Cao, Mirjalili & Raschka, Pattern Recognition Letters 2020",
    ),
)  # fmt: skip

#: The losses of ``--loss``, by name (Kobs et al. 2020 compared SimLoss with CE only).
LOSSES: Mapping[str, LossSpec] = MappingProxyType({spec.name: spec for spec in _ENTRIES})


def loss_spec(name: str) -> LossSpec:
    """The spec of a loss, with an error that lists the known ones.

    Example:
        >>> loss_spec("corn").num_outputs(17), loss_spec("sord").param.default
        (16, 1.0)
        >>> loss_spec("focal")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected `loss` to be one of ['ce', 'simloss', ...], but found 'focal'
    """
    spec = LOSSES.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(f"Expected `loss` to be one of {list(LOSSES)}, but found {name!r}")
    return spec
