"""Every loss of ``--loss`` against an independent reference formula on a small case.

The peers come from dlordinal and coral-pytorch; each test computes the loss
from its paper's definition in float64 (no library code) and compares it with
what :func:`simloss.experiments.losses.build_criterion` trains with.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from simloss.experiments.config import TrainConfig
from simloss.experiments.data import PreparedData, load_abalone
from simloss.experiments.losses import build_criterion, corn_log_probabilities, num_outputs
from simloss.experiments.specs import LOSSES, swept_param
from simloss.experiments.task import BUILTIN_TASKS
from simloss.experiments.train import run_training
from simloss.metrics import mean_absolute_error

C = 6


@pytest.fixture(scope="module")
def data() -> PreparedData:
    """Abalone cut to 6 ordered classes (what the losses read: classes, order, targets)."""
    full = load_abalone(limit=60)
    return dataclasses.replace(full, num_classes=C, class_values=[float(v) for v in range(C)])


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(9, C, dtype=torch.float64) * 2, torch.tensor([0, 1, 2, 3, 4, 5, 2, 0, 5])


def _soft_ce(logits: torch.Tensor, target: torch.Tensor, q: np.ndarray) -> float:
    log_p = torch.log_softmax(logits.double(), 1).numpy()
    return float(np.mean([-(q[y] * log_p[i]).sum() for i, y in enumerate(target.tolist())]))


def _loss(name: str, value: float | None, data: PreparedData, logits, target) -> float:
    config = TrainConfig(loss=name, loss_param=value)
    criterion = build_criterion(config, data)
    return float(criterion(logits.float(), target))


def ref_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _rows(fn) -> np.ndarray:
    return np.array([fn(y) for y in range(C)], dtype=np.float64)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def test_every_loss_has_a_reference_test() -> None:
    tested = {"ce", "label-smoothing", "sord", "triangular", "beta", "binomial", "poisson"}
    tested |= {"exponential", "cdw-ce", "emd", "corn", "simloss", "soft-labels", "hxe", "coral"}
    assert tested == set(LOSSES)


def test_ce(data, batch) -> None:
    logits, target = batch
    assert _loss("ce", None, data, logits, target) == pytest.approx(
        float(F.cross_entropy(logits, target)), rel=1e-5
    )


def test_label_smoothing(data, batch) -> None:
    logits, target = batch
    eps = 0.2
    q = _rows(lambda y: (1 - eps) * np.eye(C)[y] + eps / C)
    assert _loss("label-smoothing", eps, data, logits, target) == pytest.approx(
        _soft_ce(logits, target, q), rel=1e-5
    )


def test_sord(data, batch) -> None:
    # Diaz & Marathe 2019, Eq. 1: q_i = softmax(-phi(y, i)), phi = alpha |i - y|.
    logits, target = batch
    alpha = 1.7
    q = _rows(lambda y: _softmax(-alpha * np.abs(np.arange(C) - y)))
    assert _loss("sord", alpha, data, logits, target) == pytest.approx(
        _soft_ce(logits, target, q), rel=1e-5
    )


def test_exponential(data, batch) -> None:
    # Vargas et al. 2023: q_i = softmax(-|i - y|^p / tau), tau = 1.
    logits, target = batch
    p = 1.5
    q = _rows(lambda y: _softmax(-(np.abs(np.arange(C) - y) ** p)))
    assert _loss("exponential", p, data, logits, target) == pytest.approx(
        _soft_ce(logits, target, q), rel=1e-5
    )


def test_binomial(data, batch) -> None:
    # Liu et al. 2020: q_i = Binomial(i; C - 1, p_y), p_y evenly from 0.1 to 0.9; eta mixes.
    logits, target = batch
    eta = 0.6
    probs = np.linspace(0.1, 0.9, C)

    def row(y: int) -> np.ndarray:
        pmf = np.array([math.comb(C - 1, i) * probs[y] ** i * (1 - probs[y]) ** (C - 1 - i)
                        for i in range(C)])  # fmt: skip
        return (1 - eta) * np.eye(C)[y] + eta * pmf

    assert _loss("binomial", eta, data, logits, target) == pytest.approx(
        _soft_ce(logits, target, _rows(row)), rel=1e-5
    )


def test_poisson(data, batch) -> None:
    # Liu et al. 2020 as dlordinal implements it: softmax over Poisson(i; lambda = y + 1).
    logits, target = batch

    def row(y: int) -> np.ndarray:
        lam = y + 1
        return _softmax(np.array([lam**i * math.exp(-lam) / math.factorial(i) for i in range(C)]))

    assert _loss("poisson", 1.0, data, logits, target) == pytest.approx(
        _soft_ce(logits, target, _rows(row)), rel=1e-5
    )


def test_beta(data, batch) -> None:
    # Vargas et al. 2022: q_i = B(i / C; a, b) - B((i - 1) / C; a, b), the standard
    # (a, b) per class; the CDF from scipy's regularised incomplete beta function.
    from scipy.special import betainc

    logits, target = batch
    standard = {6: [(1, 10), (7, 20), (15, 20), (20, 15), (20, 7), (10, 1)]}[C]
    edges = np.linspace(0.0, 1.0, C + 1)

    def row(y: int) -> np.ndarray:
        a, b = standard[y]
        return np.diff(betainc(a, b, edges))

    assert _loss("beta", 1.0, data, logits, target) == pytest.approx(
        _soft_ce(logits, target, _rows(row)), rel=1e-4
    )


def test_beta_is_refused_beyond_its_table() -> None:
    with pytest.raises(ValueError, match="at most 14 classes for loss 'beta'"):
        build_criterion(TrainConfig(loss="beta"), load_abalone(limit=60))


def test_triangular(data, batch) -> None:
    # Vargas et al. 2023: an inner class keeps 1 - 2 alpha2 and gives alpha2 to each neighbour.
    logits, target = batch
    alpha2 = 0.05
    criterion = build_criterion(TrainConfig(loss="triangular", loss_param=alpha2), data)
    q = criterion.loss.cls_probs.double().numpy()
    for y in range(1, C - 1):
        expected = np.zeros(C)
        expected[[y - 1, y, y + 1]] = [alpha2, 1 - 2 * alpha2, alpha2]
        assert np.allclose(q[y], expected, atol=1e-6), y
    assert np.allclose(q.sum(1), 1.0, atol=1e-5)
    inner = target[(target > 0) & (target < C - 1)]
    rows = logits[(target > 0) & (target < C - 1)]
    q_ref = _rows(lambda y: np.eye(C)[y] * (1 - 2 * alpha2) + alpha2 * (
        np.eye(C, k=1)[y] + np.eye(C, k=-1)[y]))  # fmt: skip
    assert float(criterion(rows.float(), inner)) == pytest.approx(
        _soft_ce(rows, inner, q_ref), rel=1e-5
    )


def test_cdw_ce(data, batch) -> None:
    # Polat et al. 2022: -sum_i |i - y|^alpha log(1 - p_i), mean over examples.
    logits, target = batch
    alpha = 2.0
    p = torch.softmax(logits, 1).numpy()
    expected = np.mean([
        -sum(abs(i - y) ** alpha * math.log(1 - p[n, i]) for i in range(C))
        for n, y in enumerate(target.tolist())
    ])  # fmt: skip
    assert _loss("cdw-ce", alpha, data, logits, target) == pytest.approx(expected, rel=1e-4)
    # Huge logits do not overflow (the loss only depends on softmax(z)).
    big = _loss("cdw-ce", alpha, data, logits * 1e3, target)
    assert math.isfinite(big)


def test_emd(data, batch) -> None:
    # Hou et al. 2016: squared EMD, sum_k (CDF_p(k) - CDF_y(k))^2.
    logits, target = batch
    p = torch.softmax(logits, 1).numpy()
    expected = np.mean([
        ((np.cumsum(p[n]) - np.cumsum(np.eye(C)[y])) ** 2).sum()
        for n, y in enumerate(target.tolist())
    ])  # fmt: skip
    assert _loss("emd", None, data, logits, target) == pytest.approx(expected, rel=1e-5)


def test_corn_loss_and_probabilities(data) -> None:
    # Shi, Cao & Raschka 2023: task k trains on examples with y >= k to predict y > k.
    torch.manual_seed(1)
    z = torch.randn(9, C - 1, dtype=torch.float64) * 2
    target = torch.tensor([0, 1, 2, 3, 4, 5, 2, 0, 5])
    total, count = 0.0, 0
    for k in range(C - 1):
        for n, y in enumerate(target.tolist()):
            if y >= k:
                s = 1 / (1 + math.exp(-float(z[n, k])))
                total -= math.log(s) if y > k else math.log(1 - s)
                count += 1
    criterion = build_criterion(TrainConfig(loss="corn"), data)
    assert num_outputs("corn", C) == C - 1
    assert float(criterion(z.float(), target)) == pytest.approx(total / count, rel=1e-5)
    # Class probabilities: p_c = P(y > c - 1) - P(y > c), P(y > k) = prod_{j <= k} sigmoid(z_j).
    sig = torch.sigmoid(z)
    above = torch.cumprod(sig, 1)
    ref = torch.cat([1 - above[:, :1], above[:, :-1] - above[:, 1:], above[:, -1:]], 1)
    probs = corn_log_probabilities(z).exp()
    assert torch.allclose(probs, ref, atol=1e-12)
    assert torch.allclose(probs.sum(1), torch.ones(9, dtype=torch.float64))
    # CORN's own rule (coral-pytorch) is the median decoder of these probabilities.
    from coral_pytorch.dataset import corn_label_from_logits

    labels = corn_label_from_logits(z)
    assert float(mean_absolute_error(corn_log_probabilities(z), labels, decoder="median")) == 0.0
    assert float(mean_absolute_error(corn_log_probabilities(z), labels)) > 0.0  # argmax differs


def _corn_logits(classes: int, dtype: torch.dtype) -> torch.Tensor:
    """Random CORN logits with exact ties (z = 0) and near-ties (z within 3e-5 of 0)."""
    gen = torch.Generator().manual_seed(classes)
    z = torch.randn(3000, classes - 1, generator=gen, dtype=torch.float64) * 3
    z[::7, 0] = 0.0  # P(y > 0) = 1/2 exactly
    z[1::7, :2] = 0.0
    z[2::7, 0] = 1e-6  # P(y > 0) = 0.50000025: class 1 or more
    z[3::7, 0] = torch.tensor([1e-5, 3e-5, -1e-6])[torch.arange(z[3::7].shape[0]) % 3]
    z[4::7, :] = -10.0
    z[4::7, 0] = 1e-6
    z[5::7, 0] = 1e-8  # sigmoid rounds to 1/2 in float32: class 0 there, 1 in float64
    return z.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("classes", [4, 9, 90])
def test_corn_median_is_coral_pytorchs_label_in_every_dtype(classes, dtype) -> None:
    from coral_pytorch.dataset import corn_label_from_logits

    from simloss.experiments.heads import CORN, corn_label

    z = _corn_logits(classes, dtype)
    expected = corn_label_from_logits(z)
    assert corn_label(z).tolist() == expected.tolist()
    assert CORN.decisions(z)["median"].tolist() == expected.tolist()
    if classes == 4 and dtype == torch.float32:  # the review's case: sigmoid(1e-6) > 1/2
        assert corn_label(torch.tensor([[1e-6, -3.0, -3.0]])).tolist() == [1]
        assert corn_label(torch.tensor([[0.0, 0.0, 2.1972246]])).tolist() == [0]


def test_coral_median_is_coral_pytorchs_label_for_rank_consistent_logits() -> None:
    from coral_pytorch.dataset import proba_to_label

    from simloss.experiments.heads import CORAL, coral_label, coral_log_probabilities

    gen = torch.Generator().manual_seed(3)
    score = torch.randn(2000, 1, generator=gen) * 3  # CoralLayer: one score, ordered biases
    biases = torch.sort(torch.randn(8, generator=gen) * 2, descending=True).values
    z = score + biases
    z[::9] = z[::9] - z[::9, 3:4]  # P(y > 3) = 1/2 exactly
    expected = proba_to_label(torch.sigmoid(z))
    assert coral_label(z).tolist() == expected.tolist()
    assert CORAL.decisions(z)["median"].tolist() == expected.tolist()
    # away from ties, the median of the distribution CORAL's log-probabilities define
    far = ((torch.sigmoid(z) - 0.5).abs() > 1e-4).all(dim=1)
    probs = ref_softmax(coral_log_probabilities(z[far]).double().numpy())
    median = np.argmax(np.cumsum(probs, axis=1) >= 0.5, axis=1)
    assert coral_label(z[far]).tolist() == median.tolist()


def test_simloss_and_soft_labels_use_the_dataset_similarity(data, batch) -> None:
    logits, target = batch
    r = 0.5
    S = np.array([[r ** abs(i - j) for j in range(C)] for i in range(C)])
    p = torch.softmax(logits, 1).numpy()
    simloss_ref = np.mean([-math.log((S[y] * p[n]).sum()) for n, y in enumerate(target.tolist())])
    got = float(build_criterion(TrainConfig(r=r), data)(logits.float(), target))
    assert got == pytest.approx(simloss_ref, rel=1e-5)
    soft = float(
        build_criterion(TrainConfig(loss="soft-labels", r=r), data)(logits.float(), target)
    )
    q = S / S.sum(1, keepdims=True)
    assert soft == pytest.approx(_soft_ce(logits, target, q), rel=1e-5)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"loss": "sord", "dataset": "cifar100", "data_dir": "x"}, "for loss 'sord'"),
        ({"loss": "hxe", "dataset": "cifar100", "data_dir": "x"}, "Expected `hierarchy`"),
        ({"loss": "ce", "r": 0.3}, "only with a loss built from a similarity"),
        ({"loss": "corn", "loss_param": 1.0}, "only with a loss of its own parameter"),
        ({"loss": "label-smoothing", "loss_param": 1.0}, r"epsilon\) in \[0, 1\)"),
        ({"loss": "soft-labels"}, "Expected `r` .* for loss 'soft-labels'"),
        ({"hierarchy_names": "n.txt"}, "only with `hierarchy`"),
    ],
    ids=[
        "ordinal-on-cifar",
        "hxe-no-tree",
        "ce-with-r",
        "corn-param",
        "eps-1",
        "soft-no-r",
        "names",
    ],
)
def test_config_refuses_loss_settings_that_do_not_fit(settings, match) -> None:
    with pytest.raises(ValueError, match=match):
        TrainConfig(**settings)


def test_config_resolves_loss_and_default_parameter() -> None:
    assert TrainConfig(r=0.3).resolve().loss == "simloss"
    assert TrainConfig().resolve().loss == "ce"
    resolved = TrainConfig(loss="cdw-ce").resolve()
    assert (resolved.loss_param, resolved.param, resolved.param_value) == (5.0, "alpha", 5.0)
    assert swept_param(BUILTIN_TASKS["cifar100"], "soft-labels").name == "l"
    for spec in LOSSES.values():
        if spec.param is not None:  # every default lies in its range and the grid in its range
            assert spec.param.contains(spec.param.default), spec.name
            assert all(spec.param.contains(v) for v in spec.param.grid), spec.name
            assert spec.param.source, spec.name


def test_the_docs_table_states_each_loss_and_its_default() -> None:
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "losses.md").read_text()
    rows = {
        line.split("|")[1].strip(): line for line in docs.splitlines() if line.startswith("| `")
    }
    for name, spec in LOSSES.items():
        row = rows[f"`{name}`"]
        assert spec.library.split("_")[0] in row.replace("-", "_").replace("torch.nn", "torch"), (
            name
        )
        if spec.param is not None:
            assert f"`{spec.param.name}` ({spec.param.default:g}" in row, name


def test_a_run_of_simloss_without_its_similarity_is_refused(tmp_path: Path) -> None:
    # Resolved, it would be the identity: cross-entropy recorded as SimLoss.
    with pytest.raises(ValueError, match="Expected `r` .* for loss 'simloss', but found None"):
        run_training(TrainConfig(loss="simloss", epochs=1, limit=200), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    # `--loss simloss --similarity identity` stays allowed: the paper's CCE (r = 0) as SimLoss.
    resolved = TrainConfig(loss="simloss", similarity="identity").resolve()
    assert (resolved.loss, resolved.inferred_similarity) == ("simloss", "identity")


def test_coral_matches_coral_pytorchs_own_layer_loss_and_label(tmp_path: Path) -> None:
    """CORAL: coral-pytorch's loss on its CoralLayer's logits, and its own prediction rule."""
    from coral_pytorch.dataset import levels_from_labelbatch, proba_to_label
    from coral_pytorch.layers import CoralLayer
    from coral_pytorch.losses import coral_loss

    from simloss.experiments.data import load_abalone
    from simloss.experiments.heads import CoralHead, coral_log_probabilities
    from simloss.experiments.loss_catalog import LOSSES

    torch.manual_seed(0)
    layer = CoralLayer(size_in=6, num_classes=5)
    head = CoralHead(torch.nn.Linear(6, 1, bias=False), 5)
    with torch.no_grad():  # the same parameters: one shared weight vector, C - 1 biases
        head.model.weight.copy_(layer.coral_weights.weight)
        head.biases.copy_(layer.coral_bias)
    x, y = torch.randn(32, 6), torch.randint(0, 5, (32,))
    assert torch.allclose(head(x), layer(x), atol=1e-6)
    data = load_abalone(limit=100)
    criterion = build_criterion(TrainConfig(loss="coral"), data)
    assert criterion.head is LOSSES["coral"].head and LOSSES["coral"].num_outputs(17) == 1
    ours = LOSSES["coral"].build(
        type("C", (), {"num_classes": 5})()  # the builder reads num_classes only
    )(head(x), y)
    theirs = coral_loss(layer(x), levels_from_labelbatch(y, num_classes=5))
    assert torch.allclose(ours, theirs, atol=1e-6)
    # The paper's loss in float64 (Cao et al. 2020, Eq. 4, unit task weights):
    # -1/N sum_i sum_k [y_i > k] log s(z_ik) + [y_i <= k] log(1 - s(z_ik)).
    z = head(x).detach().double().numpy()
    above = (y.numpy()[:, None] > np.arange(4)[None, :]).astype(np.float64)
    s = 1.0 / (1.0 + np.exp(-z))
    expected = -np.mean(np.sum(above * np.log(s) + (1 - above) * np.log(1 - s), axis=1))
    assert float(ours) == pytest.approx(expected, rel=1e-5)
    # The class distribution's median is CORAL's own label (the count of P(y > k) > 1/2).
    probs = coral_log_probabilities(layer(x)).exp()
    median = (probs.cumsum(1) >= 0.5 - 1e-6).float().argmax(1)
    assert torch.equal(median, proba_to_label(torch.sigmoid(layer(x))))
    assert torch.allclose(probs.sum(1), torch.ones(32), atol=1e-5)
    # A run trains, records and predicts with the head's parameters.
    record = run_training(
        TrainConfig(loss="coral", epochs=2, limit=300, progress=False), tmp_path / "run"
    )
    assert record["loss"] == "coral" and {"acc", "mae_median"} <= set(record["metrics"]["test"])
    from simloss.experiments.predict import load_run

    assert load_run(tmp_path / "run").model(torch.zeros(2, 10)).shape == (2, 17)


def test_coral_thresholds_start_at_the_uniform_distribution() -> None:
    """A zero score gives every class 1/C at the start (float64 formula), rank-consistent."""
    from simloss.experiments.heads import CoralHead, coral_log_probabilities

    for c in (2, 5, 17):
        head = CoralHead(torch.nn.Linear(3, 1, bias=False), c)
        torch.nn.init.zeros_(head.model.weight)
        p = coral_log_probabilities(head(torch.zeros(1, 3))).exp().double()
        assert torch.allclose(p, torch.full((1, c), 1.0 / c, dtype=torch.float64), atol=1e-6)
        assert bool((head.biases[1:] < head.biases[:-1]).all())
