"""The training loss of a run: its entry in the loss catalog, built for a config and the data.

:func:`build_criterion` turns a resolved :class:`~simloss.experiments.config.TrainConfig`
into a :class:`Criterion`: the loss on the model's outputs (built by the
loss's entry in :data:`simloss.experiments.loss_catalog.LOSSES`), and the
map from those outputs to class scores (``(N, C)`` logits whose softmax is the
predicted distribution; :mod:`simloss.experiments.heads`) that every metric,
decoder and figure reads. :func:`build_similarity` builds the similarity of
SimLoss and soft labels from the run's task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

import simloss
from simloss.experiments.config import TrainConfig
from simloss.experiments.data import PreparedData
from simloss.experiments.heads import CLASSES, Head, corn_log_probabilities
from simloss.experiments.loss_catalog import LossContext, loss_spec

__all__ = [
    "ClassFacts",
    "ClassScores",
    "Criterion",
    "build_criterion",
    "build_similarity",
    "corn_log_probabilities",
    "num_outputs",
]


class ClassFacts(Protocol):
    """What :func:`build_similarity` reads of a data set: its classes, not its examples.

    A :class:`~simloss.experiments.data.PreparedData` is one; so is a finished run's
    record (:func:`simloss.experiments.predict.run_cost` rebuilds the run's similarity).
    """

    @property
    def name(self) -> str: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def class_values(self) -> list[float]: ...
    @property
    def class_names(self) -> list[str] | None: ...
    @property
    def ordinal(self) -> bool: ...
    @property
    def source_class_indices(self) -> list[int] | None: ...


def build_similarity(config: TrainConfig, data: ClassFacts) -> Any:
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


def _class_names(data: ClassFacts, what: str) -> list[str]:
    if data.class_names is None:
        raise ValueError(f"Expected named classes for {what}, but dataset {data.name!r} has none")
    return list(data.class_names)


def _hierarchy_file(config: TrainConfig, data: ClassFacts, what: str) -> Any:
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


class Criterion(nn.Module):
    """A run's loss on the model's outputs, and the class scores the metrics read.

    Attributes:
        name: the loss (``config.loss``).
        loss: the library's module, called as ``loss(outputs, target)``.
        head: the head the model trains (:mod:`simloss.experiments.heads`).
    """

    def __init__(self, name: str, loss: nn.Module, head: Head = CLASSES) -> None:
        super().__init__()
        self.name = name
        self.loss = loss
        self.head = head

    def forward(self, outputs: Tensor, target: Tensor) -> Tensor:
        """The loss of the head's outputs and class indices ``(N,)``."""
        result: Tensor = self.loss(outputs, target)
        return result

    def class_logits(self, outputs: Tensor) -> Tensor:
        """Class scores ``(N, C)`` whose softmax is the predicted distribution."""
        return self.head.class_log_probs(outputs)


class ClassScores(nn.Module):
    """A trained model whose outputs are class scores (a CORN or CORAL head's converted)."""

    def __init__(self, model: nn.Module, head: Head) -> None:
        super().__init__()
        self.model = model
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        """Class scores ``(N, C)``."""
        out: Tensor = self.model(x)
        return self.head.class_log_probs(out)


def num_outputs(loss: str, num_classes: int) -> int:
    """The model's output size for a loss (C; C - 1 for CORN).

    Example:
        >>> num_outputs("corn", 17), num_outputs("sord", 17)
        (16, 17)
    """
    return loss_spec(loss).num_outputs(num_classes)


def build_criterion(config: TrainConfig, data: PreparedData) -> Criterion:
    """The training loss of a resolved config for ``data``: its catalog entry's ``build``.

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
    if spec.min_classes is not None and classes < spec.min_classes:
        raise ValueError(
            f"Expected at least {spec.min_classes} classes for loss {name!r} ({spec.source}), "
            f"but dataset {data.name!r} has {classes}"
        )
    if spec.task == "ordinal" and not data.ordinal:
        raise ValueError(f"Expected ordered classes for loss {name!r}, but {data.name} has none")
    context = LossContext(
        num_classes=classes,
        value=config.param_value,
        similarity=lambda: build_similarity(config, data),
        hierarchy_edges=lambda: _hierarchy_file(config, data, f"loss {name!r}").edges,
        class_names=None if data.class_names is None else tuple(data.class_names),
        train_targets=data.train.targets,
    )
    return Criterion(name, spec.build(context), spec.head)
