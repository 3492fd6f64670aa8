"""Hierarchical metrics against a hand computation on CIFAR-100's WordNet tree, and the
minimum-risk decoder on the authors' UTKFace models and a CE model of CIFAR-100's sample."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from real_predictions import cifar_predictions, utkface_predictions

from simloss.metrics import (
    AverageHierarchicalDistance,
    ClassHierarchy,
    HierarchicalF1,
    MistakeSeverity,
    average_hierarchical_distance,
    compute_metrics,
    hierarchical_f1,
    hierarchical_precision,
    hierarchical_recall,
    mean_absolute_error,
    mean_squared_error,
    mistake_severity,
    similarity_cost,
    value_cost,
)
from simloss.metrics.decoders import min_risk_class


def _tree(edges):
    graph = nx.DiGraph()
    graph.add_edges_from(edges)
    root = next(n for n in graph if graph.in_degree(n) == 0)
    return graph, root


def _lca_height_by_hand(graph, a: int, b: int) -> int:
    lca = nx.lowest_common_ancestor(graph, a, b)
    below = nx.descendants(graph, lca) | {lca}
    return max(nx.shortest_path_length(graph, lca, n) for n in below if graph.out_degree(n) == 0)


def _ancestors_by_hand(graph, root, node: int) -> set[int]:
    return (nx.ancestors(graph, node) | {node}) - {root}


def test_lca_heights_and_depths_match_a_hand_computation_on_the_wordnet_tree() -> None:
    _, _, edges = cifar_predictions()
    graph, root = _tree(edges)
    hierarchy = ClassHierarchy.from_tree(edges, classes=list(range(100)))
    rng = np.random.default_rng(0)
    for a, b in [*rng.integers(0, 100, size=(200, 2)).tolist(), [3, 3], [0, 99]]:
        assert hierarchy.lca_height[a, b] == _lca_height_by_hand(graph, a, b)
        common = _ancestors_by_hand(graph, root, a) & _ancestors_by_hand(graph, root, b)
        assert hierarchy.lca_depth[a, b] == len(common)
    for c in range(100):
        assert hierarchy.depth[c] == len(_ancestors_by_hand(graph, root, c))


def _mistake_distance_by_hand(graph, a: int, b: int) -> int:
    return 0 if a == b else _lca_height_by_hand(graph, a, b)


def test_classes_that_are_inner_nodes_are_at_distance_zero_from_themselves() -> None:
    # WordNet: 60 leaves and 20 of their parents (inner nodes with sub-classes) as classes
    _, _, edges = cifar_predictions()
    graph, root = _tree(edges)
    parents = sorted({next(iter(graph.predecessors(leaf))) for leaf in range(100)})[:20]
    classes = [*range(60), *parents]
    assert all(graph.out_degree(c) > 0 for c in parents)
    hierarchy = ClassHierarchy.from_tree(edges, classes=classes)
    size = len(classes)
    for i in range(size):
        for j in range(size):
            a, b = classes[i], classes[j]
            assert hierarchy.lca_height[i, j] == _mistake_distance_by_hand(graph, a, b)
            common = _ancestors_by_hand(graph, root, a) & _ancestors_by_hand(graph, root, b)
            assert hierarchy.lca_depth[i, j] == len(common)
    # correct predictions of an inner class cost nothing; the rest as by hand
    gen = torch.Generator().manual_seed(1)
    scores = torch.randn(300, size, generator=gen, dtype=torch.float64)
    target = torch.randint(0, size, (300,), generator=gen)
    target[:40] = scores[:40].argmax(1)  # some hits, inner classes among them
    pred = scores.argmax(1).tolist()
    hand = [
        _mistake_distance_by_hand(graph, classes[t], classes[k])
        for t, k in zip(target.tolist(), pred, strict=True)
    ]
    assert float(average_hierarchical_distance(scores, target, hierarchy)) == pytest.approx(
        np.mean(hand)
    )
    sets = [
        (_ancestors_by_hand(graph, root, classes[t]), _ancestors_by_hand(graph, root, classes[k]))
        for t, k in zip(target.tolist(), pred, strict=True)
    ]
    common = sum(len(a & b) for a, b in sets)
    assert float(hierarchical_precision(scores, target, hierarchy)) == pytest.approx(
        common / sum(len(b) for _, b in sets)
    )
    assert float(hierarchical_recall(scores, target, hierarchy)) == pytest.approx(
        common / sum(len(a) for a, _ in sets)
    )
    # the default min_risk cost charges nothing for deciding the true class
    one_hot = torch.full((size, size), -50.0, dtype=torch.float64).fill_diagonal_(50.0)
    result = compute_metrics(
        one_hot, torch.arange(size), hierarchy=hierarchy, decoders=("argmax", "min_risk")
    )
    assert result["acc_min_risk"] == 1.0 and result["hf_min_risk"] == 1.0


def test_an_inner_class_of_a_small_tree() -> None:
    tree = [
        ("entity", "animal"), ("animal", "cat"), ("animal", "dog"),
        ("entity", "vehicle"), ("vehicle", "bus"), ("vehicle", "car"),
    ]  # fmt: skip
    h = ClassHierarchy.from_tree(tree, classes=["cat", "animal", "bus", "car"])
    assert h.lca_height[1, 1] == 0.0 and h.lca_height[0, 1] == 1.0  # animal: its height
    right = torch.tensor([1, 0])
    assert float(average_hierarchical_distance(right, right, h)) == 0.0


def test_hierarchical_distance_and_sets_on_a_cifar_model_match_a_hand_computation() -> None:
    logits, labels, edges = cifar_predictions()
    graph, root = _tree(edges)
    hierarchy = ClassHierarchy.from_tree(edges, classes=list(range(100)))
    pred = logits.argmax(1).tolist()
    target = labels.tolist()
    heights = [_lca_height_by_hand(graph, t, p) for t, p in zip(target, pred, strict=True)]
    mistakes = [h for h, t, p in zip(heights, target, pred, strict=True) if t != p]
    assert len(mistakes) > 10  # a model of 70 images makes mistakes on the other 30
    assert float(mistake_severity(logits, labels, hierarchy.lca_height)) == pytest.approx(
        np.mean(mistakes)
    )
    assert float(average_hierarchical_distance(logits, labels, hierarchy)) == pytest.approx(
        np.mean(heights)
    )
    order = torch.argsort(logits, dim=1, descending=True, stable=True)[:, :5].tolist()
    top5 = [
        np.mean([_lca_height_by_hand(graph, t, k) for k in ks])
        for t, ks in zip(target, order, strict=True)
    ]
    got = average_hierarchical_distance(logits, labels, hierarchy, top_k=5)
    assert float(got) == pytest.approx(np.mean(top5))
    # Kiritchenko's sets: ancestors of the prediction and of the target, root excluded
    a_hat = [_ancestors_by_hand(graph, root, p) for p in pred]
    a = [_ancestors_by_hand(graph, root, t) for t in target]
    common = sum(len(x & y) for x, y in zip(a_hat, a, strict=True))
    precision, recall = common / sum(map(len, a_hat)), common / sum(map(len, a))
    assert float(hierarchical_precision(logits, labels, hierarchy)) == pytest.approx(precision)
    assert float(hierarchical_recall(logits, labels, hierarchy)) == pytest.approx(recall)
    f = 2 * precision * recall / (precision + recall)
    assert float(hierarchical_f1(logits, labels, hierarchy)) == pytest.approx(f)
    # the classes, over batches
    metric, f_metric = AverageHierarchicalDistance(hierarchy, top_k=5), HierarchicalF1(hierarchy)
    for part in (slice(0, 33), slice(33, 34), slice(34, 100)):
        metric.update(logits[part], labels[part])
        f_metric.update(logits[part], labels[part])
    assert float(metric.compute()) == pytest.approx(np.mean(top5))
    assert float(f_metric.compute()) == pytest.approx(f)


def test_superclass_hierarchy_is_the_two_level_tree() -> None:
    mapping = [0, 0, 1, 1, 1]
    edges = [("root", f"s{g}") for g in (0, 1)] + [(f"s{g}", i) for i, g in enumerate(mapping)]
    from_tree = ClassHierarchy.from_tree(edges, classes=list(range(5)))
    flat = ClassHierarchy.from_superclasses(mapping)
    for name in ("depth", "lca_depth", "lca_height"):
        assert torch.equal(getattr(from_tree, name).double(), getattr(flat, name).double()), name


# ----------------------------------------------------------------------------- min-risk


def _expected_cost(probs: torch.Tensor, decision: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
    return (probs * cost[decision]).sum(dim=1)


def _brute_force(probs: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
    """argmin over k of sum_c p_c cost[k, c]: every decision's risk in NumPy, one at a time,
    the first of the smallest kept."""
    p, c = probs.numpy(), cost.numpy()
    risks = np.stack([(p * c[k][None, :]).sum(axis=1) for k in range(c.shape[0])], axis=1)
    return torch.from_numpy(risks.argmin(axis=1))


def _check_min_risk(logits: torch.Tensor, cost: torch.Tensor) -> None:
    probs = torch.softmax(logits.double(), dim=1)
    decision = min_risk_class(probs, cost)
    brute = _brute_force(probs, cost)
    risk = _expected_cost(probs, decision, cost)
    # equal to the brute-force argmin (up to risks equal within float64 rounding)
    differ = decision != brute
    assert torch.allclose(risk[differ], _expected_cost(probs, brute, cost)[differ], atol=1e-12)
    assert differ.float().mean() < 0.01
    # never a higher expected cost than the argmax
    argmax_risk = _expected_cost(probs, logits.argmax(1), cost)
    assert bool((risk <= argmax_risk + 1e-12).all())


def test_min_risk_on_the_authors_utkface_models() -> None:
    ages = torch.arange(1, 91, dtype=torch.float64)
    for name, (logits, target) in utkface_predictions().items():
        r = float(name.split("_")[1])
        similarity = r ** (ages[:, None] - ages[None, :]).abs() if r > 0 else torch.eye(90)
        for cost in (similarity_cost(similarity), value_cost(ages), value_cost(ages, squared=True)):
            _check_min_risk(logits, cost)
        # |v_k - v_c| gives the median; the squared cost the class nearest the expectation
        absolute = mean_absolute_error(
            logits, target, class_values=ages, decoder="min_risk", cost=value_cost(ages)
        )
        median = mean_absolute_error(logits, target, class_values=ages, decoder="median")
        assert float(absolute) == pytest.approx(float(median)), name
        squared = mean_squared_error(
            logits,
            target,
            class_values=ages,
            decoder="min_risk",
            cost=value_cost(ages, squared=True),
        )
        probs = torch.softmax(logits, dim=1)
        nearest = ((probs @ ages)[:, None] - ages[None, :]).abs().argmin(dim=1)
        assert float(squared) == pytest.approx(float(((ages[nearest] - ages[target]) ** 2).mean()))


def test_min_risk_on_a_cifar_ce_model_with_the_wordnet_cost() -> None:
    logits, labels, edges = cifar_predictions()
    hierarchy = ClassHierarchy.from_tree(edges, classes=list(range(100)))
    _check_min_risk(logits, hierarchy.lca_height)
    # at test time alone, the severity of the mistakes does not rise (Karthik et al. 2021)
    argmax = compute_metrics(logits, labels, hierarchy=hierarchy, decoders=("argmax", "min_risk"))
    assert argmax["hdist_top5"] >= 0.0
    probs = torch.softmax(logits, dim=1)
    expected = lambda d: float(_expected_cost(probs, d, hierarchy.lca_height).mean())  # noqa: E731
    assert expected(min_risk_class(probs, hierarchy.lca_height)) <= expected(logits.argmax(1))
    assert set(argmax) >= {"acc_min_risk", "mistake_severity_min_risk", "hf_min_risk"}


def test_min_risk_with_the_identity_cost_is_the_argmax() -> None:
    logits, _labels, _ = cifar_predictions()
    cost = 1.0 - torch.eye(100, dtype=torch.float64)
    probs = torch.softmax(logits, dim=1)
    assert torch.equal(min_risk_class(probs, cost), logits.argmax(1))


def test_mistake_severity_takes_a_class_hierarchy_as_its_distance() -> None:
    # a two-level tree: a mistake within a superclass is 1 step below the LCA, across it 2
    coarse = np.array([0, 0, 1, 1, 1, 2])
    rng = np.random.default_rng(3)
    target, pred = rng.integers(0, 6, 200), rng.integers(0, 6, 200)
    wrong = pred != target
    expected = np.where(coarse[target[wrong]] == coarse[pred[wrong]], 1.0, 2.0).mean()
    hierarchy = ClassHierarchy.from_superclasses(coarse.tolist())
    preds_t, target_t = torch.from_numpy(pred), torch.from_numpy(target)
    for given in (hierarchy, hierarchy.lca_height):
        assert float(mistake_severity(preds_t, target_t, given)) == pytest.approx(expected)
    metric = MistakeSeverity(hierarchy)
    metric.update(preds_t, target_t)
    assert float(metric.compute()) == pytest.approx(expected)
    # the hierarchical distance names the function that takes a matrix
    with pytest.raises(TypeError, match="mistake_severity's `distance`"):
        average_hierarchical_distance(preds_t, target_t, hierarchy.lca_height)
