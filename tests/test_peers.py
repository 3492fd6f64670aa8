"""Soft labels and HXE (Bertinetto et al., CVPR 2020) against float64 references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import simloss
from conftest import shared_path
from simloss.peers import (
    HierarchicalCrossEntropy,
    SoftLabelCrossEntropy,
    hierarchical_cross_entropy,
    hxe_weights,
    soft_label_cross_entropy,
    soft_labels,
)

# A small unbalanced tree: classes a, b, c, d, e at different depths.
EDGES = [
    ("root", "animal"),
    ("animal", "pet"),
    ("pet", "a"),
    ("pet", "b"),
    ("animal", "c"),
    ("root", "thing"),
    ("thing", "d"),
    ("thing", "e"),
    ("root", "x"),  # a leaf that is not a class: left out
]
CLASSES = ["a", "b", "c", "d", "e"]


def _reference_hxe(logits: torch.Tensor, target: torch.Tensor, alpha: float) -> float:
    """HXE by its definition, in float64: probabilities of subtrees, conditionals along paths."""
    parent = {child: par for par, child in EDGES}
    children: dict[str, list[str]] = {}
    for par, child in EDGES:
        children.setdefault(par, []).append(child)

    def leaves(node: str) -> list[str]:
        if node not in children:
            return [node] if node in CLASSES else []
        return [leaf for child in children[node] for leaf in leaves(child)]

    def height(node: str) -> int:  # on the tree of the classes kept
        kept = [c for c in children.get(node, []) if leaves(c)]
        return 0 if not kept else 1 + max(height(c) for c in kept)

    total = 0.0
    for z, y in zip(logits.double(), target.tolist(), strict=True):
        p = dict(zip(CLASSES, torch.softmax(z, 0).tolist(), strict=True))
        node, loss = CLASSES[y], 0.0
        while node in parent:
            up = parent[node]
            conditional = sum(p[c] for c in leaves(node)) / sum(p[c] for c in leaves(up))
            loss -= math.exp(-alpha * height(node)) * math.log(conditional)
            node = up
        total += loss
    return total / len(target)


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.5, 2.0], ids=lambda a: f"alpha={a}")
def test_hxe_equals_its_definition(alpha: float) -> None:
    torch.manual_seed(0)
    logits = torch.randn(16, 5, dtype=torch.float64) * 3
    target = torch.randint(0, 5, (16,))
    weights = hxe_weights(EDGES, CLASSES, alpha)
    got = hierarchical_cross_entropy(
        logits, target, weights.node_leaves, weights.coefficients, reduction="mean"
    )
    assert float(got) == pytest.approx(_reference_hxe(logits, target, alpha), rel=1e-12)


def test_hxe_with_alpha_zero_is_cross_entropy_and_module_matches() -> None:
    torch.manual_seed(1)
    logits = torch.randn(8, 5)
    target = torch.randint(0, 5, (8,))
    module = HierarchicalCrossEntropy(EDGES, CLASSES, alpha=0.0)
    assert torch.allclose(module(logits, target), F.cross_entropy(logits, target), atol=1e-6)
    assert sorted(module.state_dict()) == ["coefficients", "node_leaves"]


def test_hxe_gradients_pass_gradcheck() -> None:
    weights = hxe_weights(EDGES, CLASSES, 0.3)
    logits = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 2, 3, 4])

    def f(z: torch.Tensor) -> torch.Tensor:
        return hierarchical_cross_entropy(z, target, weights.node_leaves, weights.coefficients)

    assert torch.autograd.gradcheck(f, (logits,))


@pytest.mark.parametrize(
    ("edges", "classes", "match"),
    [
        ([("r", "a"), ("r", "b")], ["a", "z"], "Expected every class to be a leaf"),
        ([("r", "a"), ("s", "a"), ("r", "b")], ["a", "b"], "two parents"),
        ([("r", "a"), ("s", "b")], ["a", "b"], "Expected one root"),
    ],
    ids=["class-not-a-leaf", "two-parents", "two-roots"],
)
def test_hxe_rejects_bad_trees(edges, classes, match) -> None:
    with pytest.raises(ValueError, match=match):
        hxe_weights(edges, classes, 0.1)


def test_hxe_on_the_cifar100_wordnet_tree() -> None:
    folder = shared_path("cifar100")
    from simloss.similarity.readers import read_wordnet_hierarchy

    tree = read_wordnet_hierarchy(
        folder / "wordnet_parent_child.txt", folder / "wordnet_node_names.txt"
    )
    torch.manual_seed(2)
    logits = torch.randn(32, 100)
    target = torch.randint(0, 100, (32,))
    loss = HierarchicalCrossEntropy(tree.edges, tree.classes, alpha=0.0)
    assert torch.allclose(loss(logits, target), F.cross_entropy(logits, target), atol=1e-5)
    # The paper's 96 classes: the hierarchy is pruned to the classes kept.
    kept = [c for c in tree.classes if c not in ("aquarium_fish", "sweet_pepper")]
    pruned = HierarchicalCrossEntropy(tree.edges, kept, alpha=0.5)
    assert pruned.coefficients.shape[0] == 98
    assert torch.isfinite(pruned(logits[:, :98], target.clamp(max=97)))


def test_soft_labels_equal_their_formula() -> None:
    torch.manual_seed(3)
    similarity = torch.rand(6, 6, dtype=torch.float64) + torch.eye(6, dtype=torch.float64)
    logits = torch.randn(10, 6, dtype=torch.float64)
    target = torch.randint(0, 6, (10,))
    expected = 0.0
    for z, y in zip(logits, target.tolist(), strict=True):
        q = similarity[y] / similarity[y].sum()
        expected -= float((q * torch.log_softmax(z, 0)).sum())
    got = soft_label_cross_entropy(logits, target, similarity, reduction="sum")
    assert float(got) == pytest.approx(expected, rel=1e-12)
    module = SoftLabelCrossEntropy(similarity)
    assert torch.allclose(module(logits, target), got / 10)
    assert torch.allclose(
        soft_label_cross_entropy(logits, target, torch.eye(6, dtype=torch.float64)),
        F.cross_entropy(logits, target),
    )


def test_soft_labels_of_the_class_order_are_sord() -> None:
    # S_ij = r^|i-j| normalised is SORD's softmax(-alpha |i - y|) with alpha = -ln r.
    from dlordinal import losses  # the peers extra (installed by scripts/setup.sh for tests)

    r = 0.4
    torch.manual_seed(4)
    logits = torch.randn(12, 7)
    target = torch.randint(0, 7, (12,))
    ours = soft_label_cross_entropy(logits, target, simloss.class_order(7, r))
    sord = losses.SORDLoss(alpha=-math.log(r), num_classes=7, train_targets=target)
    assert float(ours) == pytest.approx(float(sord(logits, target)), rel=1e-6)


def test_soft_labels_reject_a_zero_row() -> None:
    similarity = torch.eye(3)
    similarity[1, 1] = 0.0
    with pytest.raises(ValueError, match="row 1 has 0"):
        SoftLabelCrossEntropy(similarity)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: soft_label_cross_entropy([[0.0, 1.0]], torch.tensor([0]), torch.eye(2)),
            "`input`",
        ),
        (
            lambda: soft_label_cross_entropy(torch.zeros(1, 2), torch.tensor([0.0]), torch.eye(2)),
            "`target`",
        ),
        (lambda: soft_labels(torch.eye(2, dtype=torch.long)), "`similarity`"),
        (lambda: SoftLabelCrossEntropy([[1, 0], [0, 1]]), "`similarity`"),
        (lambda: hxe_weights([("r", "a"), ("r", "b")], ["a", "b"], "0.5"), "`alpha`"),
    ],
    ids=["input-list", "float-target", "integer-similarity", "integer-list", "alpha-str"],
)
def test_peers_refuse_a_wrong_type_with_type_error_as_sim_loss(call, message) -> None:
    with pytest.raises(TypeError, match=message):
        call()


def test_peers_refuse_a_wrong_shape_or_reduction_with_value_error() -> None:
    with pytest.raises(ValueError, match=r"`input` of shape \(N, 2\)"):
        soft_label_cross_entropy(torch.zeros(1, 3), torch.tensor([0]), torch.eye(2))
    with pytest.raises(ValueError, match=r"`target` class indices of shape \(N,\)"):
        soft_label_cross_entropy(torch.zeros(1, 2), torch.tensor([[0]]), torch.eye(2))
    with pytest.raises(ValueError, match="`reduction` to be one of"):
        SoftLabelCrossEntropy(torch.eye(2), reduction="avg")
