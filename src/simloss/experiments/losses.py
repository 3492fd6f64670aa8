"""The training loss of a run: SimLoss or one of its peers, built from a config and the data.

:func:`build_criterion` turns a resolved :class:`~simloss.experiments.config.TrainConfig`
into a :class:`Criterion`: the loss on the model's outputs, and the map from
those outputs to class scores (``(N, C)`` logits whose softmax is the
predicted distribution) that every metric, decoder and figure reads. The
peers come from maintained libraries, never rewritten here:

- ``ce``: ``torch.nn.CrossEntropyLoss``;
- ``simloss``: :class:`simloss.SimLoss` with the dataset's similarity (``r`` or ``l``);
- ``label-smoothing``: ``CrossEntropyLoss(label_smoothing=epsilon)``;
- ``soft-labels``: :class:`simloss.peers.SoftLabelCrossEntropy` (``r`` or ``l``);
- ``hxe``: :class:`simloss.peers.HierarchicalCrossEntropy`;
- ``sord``, ``triangular``, ``beta``, ``binomial``, ``poisson``, ``exponential``,
  ``cdw-ce``, ``emd``: dlordinal's ``SORDLoss``, ``TriangularLoss``, ``BetaLoss``,
  ``BinomialLoss``, ``PoissonLoss``, ``ExponentialLoss``, ``CDWCELoss``, ``EMDLoss``;
- ``corn``: coral-pytorch's ``corn_loss``.

The facts (task, parameter, its default and the default's source) are in
:data:`simloss.experiments.specs.LOSSES` only. CORN's model has C - 1 outputs, the
conditional logits ``z_k`` of ``P(y > k | y > k - 1)``; its class scores are
the exact log-probabilities ``log p_c = sum_{j<c} log sigmoid(z_j) + log sigmoid(-z_c)``
(no ``z_{C-1}`` term for the last class), so CORN's own prediction rule (the
number of ``P(y > k) > 1/2``, coral-pytorch's ``corn_label_from_logits``) is the
``median`` decoder of these probabilities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import simloss
from simloss._optional import require
from simloss.experiments.config import TrainConfig
from simloss.experiments.data import PreparedData
from simloss.experiments.specs import loss_spec

__all__ = [
    "ClassScores",
    "Criterion",
    "build_criterion",
    "build_similarity",
    "corn_log_probabilities",
    "num_outputs",
]

#: The extra that installs the ordinal peers' runtime dependencies (README: dlordinal itself
#: is installed with ``--no-deps``, as its torchvision requirement does not import beside a CPU torch).
PEERS_EXTRA = "peers"


def build_similarity(config: TrainConfig, data: PreparedData) -> Any:
    """The similarity a config asks for, for ``data``'s classes (Kobs et al. 2020, Eq. 2-3).

    - ``order``: :func:`simloss.class_order` ``(C, r)``, ``S_ij = r^|i-j|`` (dense: for
      the paper's C <= 100 the dense loss is faster than :class:`simloss.ClassOrder`);
    - ``values``: :func:`simloss.similarity.from_values` of the class values,
      ``S_ij = r^(|v_i - v_j| / scale)`` with the task's ``scale``;
    - ``embeddings``: :func:`simloss.similarity.from_embeddings` with lower bound
      ``l`` of the ``vectors`` file: a ``.npy`` of one row per class in the
      source's label order (selected for the classes kept), or a word2vec/GloVe
      file looked up by class name (:func:`simloss.similarity.class_name_vectors`);
    - ``names``: the same with the class names embedded by all-MiniLM-L6-v2 (offline);
    - ``hierarchy``: :func:`simloss.similarity.from_hierarchy` of the hierarchy
      file (depth of the lowest common ancestor), then the lower bound ``l`` (Eq. 3);
    - ``identity``: the identity matrix (SimLoss is then cross-entropy).

    Example:
        >>> from simloss.experiments.data import load_abalone
        >>> data = load_abalone(limit=50)
        >>> S = build_similarity(TrainConfig(r=0.3), data)
        >>> S.shape, round(float(S[0, 2]), 4)
        (torch.Size([17, 17]), 0.09)
    """
    kind = config.inferred_similarity
    classes = data.num_classes
    task = config.task_spec
    if kind in ("order", "values"):
        if config.r is None:
            raise ValueError(f"Expected `r` for similarity {kind!r}, but found None")
        if not data.ordinal:
            raise ValueError(
                f"Expected an ordinal dataset for similarity {kind!r}, but {data.name} is not"
            )
        if kind == "order":
            return simloss.class_order(classes, config.r)
        from simloss.similarity import from_values

        return from_values(data.class_values, config.r, task.similarity.scale)
    if kind == "identity":
        return torch.eye(classes)
    if config.l is None:
        raise ValueError(f"Expected `l` for similarity {kind!r}, but found None")
    from simloss.similarity import from_embeddings, lower_bound

    if kind == "hierarchy":
        from simloss.similarity import from_hierarchy

        tree = _hierarchy_file(config, data, "similarity 'hierarchy'")
        names = _class_names(data, "similarity 'hierarchy'")
        return lower_bound(from_hierarchy(tree.edges, names), config.l)
    if kind == "names":
        from simloss.similarity import class_name_vectors

        names = _class_names(data, "similarity 'names'")
        return from_embeddings(class_name_vectors(names), lower_bound=config.l, names=names)
    if config.vectors is None:
        raise ValueError(
            f"Expected `vectors` for similarity 'embeddings', but found vectors={config.vectors!r}"
        )
    path = Path(config.vectors)
    if not path.is_file():
        raise FileNotFoundError(f"Class-vector file {path} does not exist")
    if path.suffix.lower() != ".npy":
        from simloss.similarity import class_name_vectors

        names = _class_names(data, "word vectors")
        return from_embeddings(class_name_vectors(names, path), lower_bound=config.l, names=names)
    vectors = np.load(path, allow_pickle=False)
    if vectors.ndim != 2:
        raise ValueError(f"Expected a 2-D (rows, D) array in {path}, but found {vectors.shape}")
    if data.source_class_indices is None and vectors.shape[0] != classes:
        raise ValueError(
            f"Expected {classes} rows (one per class) in {path}, but found {vectors.shape[0]}"
        )
    rows = data.source_class_indices or list(range(classes))
    if vectors.shape[0] <= max(rows):
        raise ValueError(
            f"Expected a row for each of the source's classes in {path} (row {max(rows)} is "
            f"needed), but found shape {vectors.shape}"
        )
    return from_embeddings(vectors[rows], lower_bound=config.l, names=data.class_names)


def _class_names(data: PreparedData, what: str) -> list[str]:
    if data.class_names is None:
        raise ValueError(f"Expected named classes for {what}, but dataset {data.name!r} has none")
    return list(data.class_names)


def _hierarchy_file(config: TrainConfig, data: PreparedData, what: str) -> Any:
    """The run's hierarchy file, read, with every class of ``data`` among its leaves."""
    from simloss.similarity.readers import read_hierarchy

    if config.hierarchy is None:
        raise ValueError(f"Expected `hierarchy` for {what}, but found None")
    names = _class_names(data, what)
    path = Path(config.hierarchy)
    if not path.is_file():
        raise FileNotFoundError(f"Hierarchy file {path} does not exist")
    tree = read_hierarchy(path, config.hierarchy_names)
    leaves = set(tree.classes)
    absent = [name for name in names if name not in leaves]
    if absent:
        raise ValueError(
            f"Expected every class of {data.name} among the leaves of hierarchy {path}, but "
            f"{absent[:5]} ({len(absent)} of {len(names)}) are not"
        )
    return tree


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


class Criterion(nn.Module):
    """A run's loss on the model's outputs, and the class scores the metrics read.

    Attributes:
        name: the loss (``config.loss``).
        loss: the library's module, called as ``loss(outputs, target)``.
        outputs: ``"classes"`` (the outputs are the class scores) or
            ``"thresholds"`` (CORN: C - 1 conditional logits).
    """

    def __init__(self, name: str, loss: nn.Module, outputs: str = "classes") -> None:
        super().__init__()
        self.name = name
        self.loss = loss
        self.outputs = outputs

    def forward(self, outputs: Tensor, target: Tensor) -> Tensor:
        """The loss of model outputs ``(N, num_outputs)`` and class indices ``(N,)``."""
        result: Tensor = self.loss(outputs, target)
        return result

    def class_logits(self, outputs: Tensor) -> Tensor:
        """Class scores ``(N, C)`` whose softmax is the predicted distribution."""
        if self.outputs == "thresholds":
            return corn_log_probabilities(outputs)
        return outputs


class ClassScores(nn.Module):
    """A trained model whose outputs are class scores (CORN's converted), for prediction."""

    def __init__(self, model: nn.Module, outputs: str) -> None:
        super().__init__()
        self.model = model
        self.outputs = outputs

    def forward(self, x: Tensor) -> Tensor:
        """Class scores ``(N, C)``."""
        out: Tensor = self.model(x)
        return corn_log_probabilities(out) if self.outputs == "thresholds" else out


def num_outputs(loss: str, num_classes: int) -> int:
    """The model's output size for a loss (C, or C - 1 for CORN).

    Example:
        >>> num_outputs("corn", 17), num_outputs("sord", 17)
        (16, 17)
    """
    return loss_spec(loss).num_outputs(num_classes)


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


class _Corn(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self._corn_loss = require("coral_pytorch.losses", PEERS_EXTRA).corn_loss

    def forward(self, outputs: Tensor, target: Tensor) -> Tensor:
        result: Tensor = self._corn_loss(outputs, target, self.num_classes)
        return result


def _hierarchy_loss(config: TrainConfig, data: PreparedData, alpha: float) -> nn.Module:
    tree = _hierarchy_file(config, data, "loss 'hxe'")
    return simloss.peers.HierarchicalCrossEntropy(tree.edges, list(data.class_names or ()), alpha)


def _dlordinal(name: str, classes: int, value: float | None, data: PreparedData) -> nn.Module:
    losses = require("dlordinal.losses", PEERS_EXTRA)
    ce = nn.CrossEntropyLoss()
    if name == "sord":
        return losses.SORDLoss(alpha=value, num_classes=classes, train_targets=data.train.targets)
    if name == "triangular":
        return losses.TriangularLoss(ce, classes, alpha2=value)
    if name == "beta":
        return losses.BetaLoss(ce, classes, eta=value)
    if name == "binomial":
        return losses.BinomialLoss(ce, classes, eta=value)
    if name == "poisson":
        return losses.PoissonLoss(ce, classes, eta=value)
    if name == "exponential":
        return losses.ExponentialLoss(ce, classes, p=value)
    if name == "cdw-ce":
        return _LogitsShift(losses.CDWCELoss(classes, alpha=value))
    if name == "emd":
        return losses.EMDLoss(classes)
    raise ValueError(f"Expected a dlordinal loss, but found {name!r}")  # pragma: no cover


def build_criterion(config: TrainConfig, data: PreparedData) -> Criterion:
    """The training loss of a resolved config for ``data`` (see the module's table).

    Args:
        config: a config (resolved or not: the loss and its parameter are read
            through :attr:`TrainConfig.inferred_loss` and :attr:`TrainConfig.param_value`).
        data: the prepared data (classes, names, training targets).

    Returns:
        A :class:`Criterion`.

    Raises:
        ValueError: the loss does not apply to the data (e.g. beta beyond 14
            classes), a hierarchy that does not hold the classes.
        ImportError: the ``peers`` extra is missing (naming it).

    Example:
        >>> from simloss.experiments.data import load_abalone
        >>> data = load_abalone(limit=100)
        >>> criterion = build_criterion(TrainConfig(loss="corn"), data)
        >>> outputs = torch.zeros(4, num_outputs("corn", data.num_classes))
        >>> criterion.class_logits(outputs).shape
        torch.Size([4, 17])
    """
    name = config.inferred_loss
    spec = loss_spec(name)
    classes = data.num_classes
    if spec.max_classes is not None and classes > spec.max_classes:
        raise ValueError(
            f"Expected at most {spec.max_classes} classes for loss {name!r} ({spec.source}), "
            f"but dataset {data.name!r} has {classes}"
        )
    if spec.task == "ordinal" and not data.ordinal:
        raise ValueError(f"Expected ordered classes for loss {name!r}, but {data.name} has none")
    value = config.param_value
    if name == "ce":
        return Criterion(name, nn.CrossEntropyLoss())
    if name == "simloss":
        return Criterion(name, simloss.SimLoss(build_similarity(config, data)))
    if name == "label-smoothing":
        return Criterion(name, nn.CrossEntropyLoss(label_smoothing=float(value or 0.0)))
    if name == "soft-labels":
        similarity = torch.as_tensor(build_similarity(config, data), dtype=torch.float32)
        return Criterion(name, simloss.peers.SoftLabelCrossEntropy(similarity))
    if name == "hxe":
        return Criterion(name, _hierarchy_loss(config, data, float(value or 0.0)))
    if name == "corn":
        return Criterion(name, _Corn(classes), outputs=spec.outputs)
    return Criterion(name, _dlordinal(name, classes, value, data))
