"""Two peers of SimLoss for related classes: soft labels and hierarchical cross-entropy.

Both come from Bertinetto et al., "Making Better Mistakes: Leveraging Class
Hierarchies with Deep Networks", CVPR 2020, which no maintained library
provides; they are losses, so they live here, as pure functions with thin
modules (the ordinal peers come from dlordinal and coral-pytorch, see
:mod:`simloss.experiments.losses`).

* :func:`soft_label_cross_entropy`: cross-entropy against the target's row of
  a similarity, normalised to a distribution,

  .. math::

      \\ell_i = -\\sum_c q_{y_i c} \\log \\operatorname{softmax}(z_i)_c,
      \\qquad q_{yc} = \\frac{S_{yc}}{\\sum_k S_{yk}}.

  Bertinetto et al. build ``S`` as ``exp(-beta d(y, c))`` from the tree's
  LCA heights; with SimLoss's similarity (``r^|i-j|``, class-name vectors)
  it is the same loss on the same knowledge as SimLoss, which sums the
  probabilities *inside* the log instead: ``-log sum_c S_yc p_c``.
* :func:`hierarchical_cross_entropy` (HXE): the probability of a class
  factorised along its path to the root, each level's conditional weighted
  by ``exp(-alpha h(C))``,

  .. math::

      \\ell_i = -\\sum_{l=0}^{h-1} \\lambda(C^{(l)}) \\log p(C^{(l)} \\mid C^{(l+1)}),
      \\qquad \\lambda(C) = e^{-\\alpha h(C)},
      \\qquad p(C) = \\sum_{c \\in \\text{leaves}(C)} \\operatorname{softmax}(z)_c,

  where ``C^(0) = y`` is the class, ``C^(h)`` the root and ``h(C)`` the
  height of a node (0 for a class, else one more than its tallest child).
  ``alpha = 0`` is cross-entropy (the conditionals telescope to ``p(y)``).

References:
    Bertinetto, Mueller, Tertikas, Samangooei, Lord, "Making Better Mistakes:
    Leveraging Class Hierarchies with Deep Networks", CVPR 2020, Eq. 4-5 (HXE)
    and Sec. 3.2 (soft labels), https://arxiv.org/abs/1912.09393
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from simloss._describe import describe
from simloss._numbers import is_real
from simloss._options import check_reduction

__all__ = [
    "HXEWeights",
    "HierarchicalCrossEntropy",
    "SoftLabelCrossEntropy",
    "hierarchical_cross_entropy",
    "hxe_weights",
    "soft_label_cross_entropy",
    "soft_labels",
]


def _check_scores(input: Tensor, target: Tensor, num_classes: int, what: str) -> None:
    """Logits (N, C) and class indices (N,): ``TypeError`` for a wrong kind, ``ValueError`` else."""
    if not isinstance(input, Tensor) or not input.is_floating_point():
        raise TypeError(
            f"Expected `input` to be floating scores of shape (N, {num_classes}), but found "
            f"{describe(input)}"
        )
    if input.dim() != 2 or input.shape[1] != num_classes:
        raise ValueError(
            f"Expected `input` of shape (N, {num_classes}) ({what}), but found {tuple(input.shape)}"
        )
    if (
        not isinstance(target, Tensor)
        or target.is_floating_point()
        or target.is_complex()
        or target.dtype == torch.bool
    ):
        raise TypeError(
            f"Expected `target` to be integer class indices of shape (N,), but found "
            f"{describe(target)}"
        )
    if target.dim() != 1:
        raise ValueError(
            f"Expected `target` class indices of shape (N,), but found {tuple(target.shape)}"
        )
    if target.shape[0] != input.shape[0]:
        raise ValueError(
            f"Expected `target` of length {input.shape[0]} (the rows of `input`), but found "
            f"{target.shape[0]}"
        )
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise ValueError(
            f"Expected `target` in [0, {num_classes - 1}], but found values in "
            f"[{int(target.min())}, {int(target.max())}]"
        )


def _reduce(losses: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


def soft_labels(similarity: Tensor) -> Tensor:
    """The soft-label matrix ``Q = S / S.sum(1)``: row ``y`` is the target distribution of class y.

    Args:
        similarity: (C, C) non-negative, every row with a positive sum.

    Returns:
        (C, C) rows summing to 1, in ``similarity``'s dtype.

    Example:
        >>> soft_labels(torch.tensor([[1.0, 1.0], [0.0, 1.0]])).tolist()
        [[0.5, 0.5], [0.0, 1.0]]
    """
    if not isinstance(similarity, Tensor) or not similarity.is_floating_point():
        raise TypeError(
            f"Expected `similarity` to be a floating (C, C) tensor, but found {describe(similarity)}"
        )
    if similarity.dim() != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(
            f"Expected `similarity` to be square (C, C), but found {tuple(similarity.shape)}"
        )
    if not bool(torch.isfinite(similarity).all()) or bool((similarity < 0).any()):
        raise ValueError("Expected `similarity` to be finite and non-negative, but it is not")
    sums = similarity.sum(dim=1, keepdim=True)
    if bool((sums <= 0).any()):
        row = int(torch.nonzero(sums.squeeze(1) <= 0)[0])
        raise ValueError(
            f"Expected every row of `similarity` to have a positive sum, row {row} has 0"
        )
    return similarity / sums


def soft_label_cross_entropy(
    input: Tensor, target: Tensor, similarity: Tensor, *, reduction: str = "mean"
) -> Tensor:
    """Cross-entropy against the soft label ``S[y] / sum S[y]`` (Bertinetto et al., CVPR 2020).

    .. math::

        \\ell_i = -\\sum_c \\frac{S_{y_i c}}{\\sum_k S_{y_i k}} \\log \\operatorname{softmax}(z_i)_c

    Args:
        input: logits (N, C).
        target: class indices (N,).
        similarity: (C, C) non-negative similarity, row = target class.
        reduction: ``"mean"`` (over examples), ``"sum"`` or ``"none"`` (N,).

    Returns:
        The loss (a scalar, or (N,) with ``"none"``).

    Example:
        >>> z = torch.tensor([[2.0, 0.0, 0.0]])
        >>> round(float(soft_label_cross_entropy(z, torch.tensor([0]), torch.eye(3))), 4)
        0.2395

    References:
        Bertinetto et al., CVPR 2020, Sec. 3.2, https://arxiv.org/abs/1912.09393
    """
    check_reduction(reduction)
    q = soft_labels(similarity)
    _check_scores(input, target, q.shape[0], "one score per class of `similarity`")
    log_p = F.log_softmax(input, dim=1)
    losses = -(q.to(log_p.dtype)[target] * log_p).sum(dim=1)
    return _reduce(losses, reduction)


class SoftLabelCrossEntropy(nn.Module):
    """:func:`soft_label_cross_entropy` as a module; the soft labels are the buffer ``labels``.

    Example:
        >>> loss = SoftLabelCrossEntropy(torch.eye(3))
        >>> round(float(loss(torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0]))), 4)
        0.2395
    """

    labels: Tensor

    def __init__(self, similarity: Tensor, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.register_buffer("labels", soft_labels(torch.as_tensor(similarity)))

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The loss of logits (N, C) and class indices (N,)."""
        # The labels are already a distribution: the identity matrix's rows of Q are Q.
        return soft_label_cross_entropy(input, target, self.labels, reduction=self.reduction)


class HXEWeights(NamedTuple):
    """What :func:`hierarchical_cross_entropy` needs of a hierarchy, for one set of classes.

    Attributes:
        node_leaves: bool (K, C): row ``k`` marks the classes below inner node ``k``
            (the nodes on some class's path, the root excepted).
        coefficients: (C, K + C) float64: the loss of class ``y`` is
            ``-coefficients[y] . [log p(node) for the K nodes, log p(class) for the C classes]``.
        nodes: the names of the K inner nodes (for messages and tests).
    """

    node_leaves: Tensor
    coefficients: Tensor
    nodes: list[Any]


def hxe_weights(
    edges: Iterable[tuple[Any, Any]], classes: Sequence[Any], alpha: float
) -> HXEWeights:
    """The node sets and level weights of HXE for a tree and the classes a model predicts.

    Every class must be a leaf of the tree; leaves that are not classes (a
    class set that drops some, as the paper's 96 CIFAR-100 classes) are left
    out, and so are nodes with no class below them. A node's height is
    computed on the tree of the classes kept.

    Args:
        edges: ``(parent, child)`` pairs of a tree (one root).
        classes: the class names in class-index order, each a leaf.
        alpha: ``>= 0``; level weights ``exp(-alpha h(C))``.

    Returns:
        :class:`HXEWeights`.

    Raises:
        TypeError: ``alpha`` is not a real number.
        ValueError: not a tree, a class that is not a leaf, or a negative or infinite ``alpha``.

    Example:
        >>> w = hxe_weights([("root", "pets"), ("pets", "cat"), ("pets", "dog"),
        ...                  ("root", "bus")], ["cat", "dog", "bus"], 0.0)
        >>> w.nodes, w.node_leaves.int().tolist()
        (['pets'], [[1, 1, 0]])
    """
    if not is_real(alpha):
        raise TypeError(f"Expected `alpha` to be a real number >= 0, but found {describe(alpha)}")
    alpha = float(alpha)
    if not alpha >= 0:
        raise ValueError(f"Expected `alpha` >= 0, but found {alpha!r}")
    if not math.isfinite(alpha):
        raise ValueError(f"Expected a finite `alpha`, but found {alpha}")
    parent: dict[Any, Any] = {}
    children: dict[Any, list[Any]] = {}
    for par, child in edges:
        if child in parent and parent[child] != par:
            raise ValueError(
                f"Expected a tree, but node {child!r} has two parents ({parent[child]!r}, {par!r})"
            )
        parent[child] = par
        children.setdefault(par, []).append(child)
    index = {c: i for i, c in enumerate(classes)}
    if len(index) != len(classes):
        raise ValueError("Expected distinct `classes`, but found a name more than once")
    not_leaves = [c for c in classes if c in children or c not in parent]
    if not_leaves:
        raise ValueError(
            f"Expected every class to be a leaf of the hierarchy, but found {not_leaves[:5]} "
            f"({len(not_leaves)} of {len(classes)}) that are not"
        )
    paths: list[list[Any]] = []
    for name in classes:
        path = [name]
        while path[-1] in parent:
            if len(path) > len(parent) + 1:
                raise ValueError(f"Expected a tree, but the path from {name!r} has a cycle")
            path.append(parent[path[-1]])
        paths.append(path)
    roots = {p[-1] for p in paths}
    if len(roots) != 1:
        raise ValueError(f"Expected one root, but found {sorted(map(str, roots))[:5]}")
    below: dict[Any, set[int]] = {}
    for c, path in enumerate(paths):
        for node in path[1:-1]:
            below.setdefault(node, set()).add(c)
    # Heights on the pruned tree: a class is 0, a node one more than its tallest kept child.
    height: dict[Any, int] = {}
    for path in paths:
        for level, node in enumerate(path):
            height[node] = max(height.get(node, 0), level)
    nodes = sorted(below, key=lambda n: (height[n], str(n)))
    node_index = {n: k for k, n in enumerate(nodes)}
    num_nodes, num_classes = len(nodes), len(classes)
    node_leaves = torch.zeros(num_nodes, num_classes, dtype=torch.bool)
    for node, members in below.items():
        node_leaves[node_index[node], sorted(members)] = True
    coefficients = torch.zeros(num_classes, num_nodes + num_classes, dtype=torch.float64)

    def column(node: Any) -> int | None:
        if node in index:
            return num_nodes + index[node]
        return node_index.get(node)  # None for the root: log p(root) = 0

    for c, path in enumerate(paths):
        for lower, upper in itertools.pairwise(path):
            weight = math.exp(-alpha * height[lower])
            low_col, up_col = column(lower), column(upper)
            if low_col is not None:
                coefficients[c, low_col] += weight
            if up_col is not None:
                coefficients[c, up_col] -= weight
    return HXEWeights(node_leaves, coefficients, nodes)


def hierarchical_cross_entropy(
    input: Tensor,
    target: Tensor,
    node_leaves: Tensor,
    coefficients: Tensor,
    *,
    reduction: str = "mean",
) -> Tensor:
    """Hierarchical cross-entropy (HXE) of Bertinetto et al. (CVPR 2020, Eq. 4-5).

    .. math::

        \\ell_i = -\\sum_{l=0}^{h-1} e^{-\\alpha h(C^{(l)})}
                  \\log \\frac{p(C^{(l)})}{p(C^{(l+1)})},
        \\qquad p(C) = \\sum_{c \\in \\text{leaves}(C)} \\operatorname{softmax}(z_i)_c

    computed as ``-coefficients[y] . log p`` over the inner nodes and classes
    (:func:`hxe_weights` builds both tensors for a tree and ``alpha``).

    Args:
        input: logits (N, C).
        target: class indices (N,).
        node_leaves: bool (K, C), see :class:`HXEWeights`.
        coefficients: (C, K + C), see :class:`HXEWeights`.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        The loss (a scalar, or (N,) with ``"none"``).

    Example:
        >>> w = hxe_weights([("r", "a"), ("a", "x"), ("a", "y"), ("r", "z")], ["x", "y", "z"], 0.0)
        >>> z = torch.tensor([[1.0, 0.0, -1.0]])
        >>> hxe = hierarchical_cross_entropy(z, torch.tensor([0]), w.node_leaves, w.coefficients)
        >>> torch.allclose(hxe, F.cross_entropy(z, torch.tensor([0])))  # alpha = 0: CE
        True

    References:
        Bertinetto et al., CVPR 2020, https://arxiv.org/abs/1912.09393
    """
    check_reduction(reduction)
    num_nodes, num_classes = node_leaves.shape
    if coefficients.shape != (num_classes, num_nodes + num_classes):
        raise ValueError(
            f"Expected `coefficients` of shape ({num_classes}, {num_nodes + num_classes}) for "
            f"`node_leaves` {tuple(node_leaves.shape)}, but found {tuple(coefficients.shape)}"
        )
    _check_scores(input, target, num_classes, "one score per class of the hierarchy")
    log_p = F.log_softmax(input, dim=1)
    mask = torch.zeros(node_leaves.shape, dtype=log_p.dtype, device=log_p.device)
    mask = mask.masked_fill(~node_leaves.to(log_p.device), float("-inf"))
    node_log_p = torch.logsumexp(log_p.unsqueeze(1) + mask.unsqueeze(0), dim=2)
    all_log_p = torch.cat([node_log_p, log_p], dim=1)
    losses = -(coefficients.to(log_p.dtype)[target] * all_log_p).sum(dim=1)
    return _reduce(losses, reduction)


class HierarchicalCrossEntropy(nn.Module):
    """:func:`hierarchical_cross_entropy` as a module for a tree, classes and ``alpha``.

    The node sets and coefficients are buffers (``node_leaves``, ``coefficients``).

    Example:
        >>> edges = [("r", "a"), ("a", "x"), ("a", "y"), ("r", "z")]
        >>> loss = HierarchicalCrossEntropy(edges, ["x", "y", "z"], alpha=0.5)
        >>> loss(torch.zeros(2, 3), torch.tensor([0, 2])).shape
        torch.Size([])
    """

    node_leaves: Tensor
    coefficients: Tensor

    def __init__(
        self,
        edges: Iterable[tuple[Any, Any]],
        classes: Sequence[Any],
        alpha: float,
        *,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        weights = hxe_weights(edges, classes, alpha)
        self.alpha = float(alpha)
        self.register_buffer("node_leaves", weights.node_leaves)
        self.register_buffer("coefficients", weights.coefficients.float())

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """The loss of logits (N, C) and class indices (N,)."""
        return hierarchical_cross_entropy(
            input, target, self.node_leaves, self.coefficients, reduction=self.reduction
        )
