"""SimLoss as a full citizen of autograd: second order, gradients to S and targets, torch.func.

References are cross-entropy (S = I) and autograd of the plain float64 formula
``logsumexp(z) - logsumexp(z + log S[y])`` (and ``-sum_k T_k log (p S^T)_k``).
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.func import grad, jacrev, jvp, vmap

from simloss import ClassOrder, SimLoss, SparseSimilarity, sim_loss
from simloss.similarity import class_order

F64 = torch.float64
TOL = {"rtol": 1e-10, "atol": 1e-12}
C = 4


def _similarity(form: str, r: float = 0.6):
    dense = class_order(C, r, dtype=F64)
    if form == "dense":
        return dense
    if form == "order":
        return ClassOrder(C, r)
    sparse = dense.clone()
    sparse[sparse < 0.3] = 0.0  # a real zero pattern
    return SparseSimilarity.from_dense(sparse)


def _inputs(input_type: str, seed: int = 0, n: int = 5) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, C, generator=gen, dtype=F64) * 2
    if input_type == "probs":
        z = torch.softmax(z, 1)
    elif input_type == "log_probs":
        z = torch.log_softmax(z, 1)
    return z.requires_grad_()


def _target(kind: str, seed: int = 1, n: int = 5) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if kind == "soft":
        return torch.softmax(torch.randn(n, C, generator=gen, dtype=F64), 1)
    target = torch.randint(0, C, (n,), generator=gen)
    if kind == "ignore":
        target[1] = -100
    return target


OPTIONS = {
    "plain": {},
    "smoothing": {"label_smoothing": 0.2},
    "weight": {"weight": torch.tensor([0.5, 1.0, 2.0, 1.5], dtype=F64)},
    "none": {"reduction": "none"},
    "sum+weight+smoothing": {
        "reduction": "sum",
        "weight": torch.tensor([0.5, 1.0, 2.0, 1.5], dtype=F64),
        "label_smoothing": 0.1,
    },
}
GRID = [
    case
    for case in itertools.product(
        ["dense", "order", "sparse"],
        ["logits", "log_probs", "probs"],
        ["index", "ignore", "soft"],
        list(OPTIONS),
    )
    if not (case[2] == "soft" and case[3] == "none")  # covered by index; keeps the grid small
]


@pytest.mark.parametrize(("form", "input_type", "target_kind", "option"), GRID, ids=str)
def test_gradcheck_and_gradgradcheck(form, input_type, target_kind, option):
    """First and second derivatives against finite differences, over the whole grid."""
    S = _similarity(form)
    z = _inputs(input_type)
    target = _target(target_kind)

    def loss(scores: torch.Tensor) -> torch.Tensor:
        return sim_loss(scores, target, S, input_type=input_type, **OPTIONS[option])

    assert torch.autograd.gradcheck(loss, (z,), fast_mode=True)
    assert torch.autograd.gradgradcheck(loss, (z,), fast_mode=True)


# ---------------------------------------------------------------- S = I equals CE, second order
@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("target_kind", ["index", "ignore", "soft"])
def test_identity_hessian_equals_cross_entropy(option, target_kind):
    eye = torch.eye(C, dtype=F64)
    target = _target(target_kind)
    z = _inputs("logits").detach()
    kwargs = OPTIONS[option]

    def ours(scores: torch.Tensor) -> torch.Tensor:
        return sim_loss(scores, target, eye, **kwargs).sum()

    def reference(scores: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(scores, target, **kwargs).sum()

    torch.testing.assert_close(
        torch.autograd.functional.hessian(ours, z),
        torch.autograd.functional.hessian(reference, z),
        **TOL,
    )


def test_maml_meta_gradient_equals_cross_entropy():
    """A second-order MAML meta-gradient with S = I equals cross-entropy's."""
    gen = torch.Generator().manual_seed(3)
    x_s, x_q = (
        torch.randn(8, 6, generator=gen, dtype=F64),
        torch.randn(8, 6, generator=gen, dtype=F64),
    )
    y_s, y_q = torch.randint(0, C, (8,), generator=gen), torch.randint(0, C, (8,), generator=gen)
    eye = torch.eye(C, dtype=F64)
    W0 = torch.randn(6, C, generator=gen, dtype=F64)

    def meta_gradient(loss_fn):
        W = W0.clone().requires_grad_()
        (g,) = torch.autograd.grad(loss_fn(x_s @ W, y_s), W, create_graph=True)
        loss_fn(x_q @ (W - 0.5 * g), y_q).backward()
        return W.grad

    ours = meta_gradient(lambda z, y: sim_loss(z, y, eye))
    reference = meta_gradient(F.cross_entropy)
    first_order = W0.clone().requires_grad_()
    (g,) = torch.autograd.grad(F.cross_entropy(x_s @ first_order, y_s), first_order)
    F.cross_entropy(x_q @ (first_order - 0.5 * g), y_q).backward()
    torch.testing.assert_close(ours, reference, **TOL)
    assert not torch.allclose(ours, first_order.grad, rtol=1e-3)  # the case is second order


@pytest.mark.parametrize("form", ["dense", "order", "sparse"])
def test_gradient_penalty_and_hvp_equal_cross_entropy(form):
    """A penalty ||dL/dx||^2 and a Hessian-vector product, with S = I in every form."""
    eye = {
        "dense": torch.eye(C, dtype=F64),
        "order": ClassOrder(C, 0.0),
        "sparse": SparseSimilarity.from_dense(torch.eye(C, dtype=F64)),
    }[form]
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(10, 6, generator=gen, dtype=F64)
    y = torch.randint(0, C, (10,), generator=gen)
    W0 = torch.randn(6, C, generator=gen, dtype=F64)

    def penalty_gradient(loss_fn):
        W = W0.clone().requires_grad_()
        inputs = x.clone().requires_grad_()
        (gx,) = torch.autograd.grad(loss_fn(inputs @ W, y), inputs, create_graph=True)
        (gx.pow(2).sum()).backward()
        return W.grad

    torch.testing.assert_close(
        penalty_gradient(lambda z, t: sim_loss(z, t, eye)),
        penalty_gradient(F.cross_entropy),
        **TOL,
    )
    v = torch.randn(6, C, generator=gen, dtype=F64)
    _, ours = torch.autograd.functional.hvp(lambda W: sim_loss(x @ W, y, eye), W0, v)
    _, reference = torch.autograd.functional.hvp(lambda W: F.cross_entropy(x @ W, y), W0, v)
    torch.testing.assert_close(ours, reference, **TOL)


def test_retained_graph_backward_twice_gives_the_same_gradient():
    z = _inputs("logits")
    loss = sim_loss(z, _target("index"), class_order(C, 0.5, dtype=F64))
    (first,) = torch.autograd.grad(loss, z, retain_graph=True)
    (second,) = torch.autograd.grad(loss, z)
    assert torch.equal(first, second)


# ---------------------------------------------------------------- gradients to S and targets
def _plain_index(
    z: torch.Tensor, y: torch.Tensor, S: torch.Tensor, input_type: str
) -> torch.Tensor:
    rows = S[y]
    if input_type == "logits":
        return torch.logsumexp(z, 1) - torch.logsumexp(z + torch.log(rows), 1)
    if input_type == "log_probs":
        return -torch.logsumexp(z + torch.log(rows), 1)
    return -torch.log((rows * z).sum(1))


def _plain_soft(z: torch.Tensor, T: torch.Tensor, S: torch.Tensor, input_type: str) -> torch.Tensor:
    probs = {"logits": torch.softmax(z, 1), "log_probs": torch.exp(z), "probs": z}[input_type]
    loss = -(T * torch.log(probs @ S.T)).sum(1)
    if input_type == "log_probs":  # not renormalised: log sum_c S exp(x_c)
        loss = loss - T.sum(1) * torch.logsumexp(z, 1) + T.sum(1) * torch.log(probs.sum(1))
    return loss


@pytest.mark.parametrize("input_type", ["logits", "log_probs", "probs"])
@pytest.mark.parametrize("target_kind", ["index", "soft"])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_gradient_reaches_a_learnable_similarity(input_type, target_kind, smoothing):
    """S = sigmoid(theta): theta's gradient equals autograd of the plain float64 formula."""
    gen = torch.Generator().manual_seed(5)
    theta = torch.randn(C, C, generator=gen, dtype=F64, requires_grad=True)
    z = _inputs(input_type).detach()
    target = _target(target_kind)

    S = torch.sigmoid(theta)
    ours = sim_loss(
        z, target, S, input_type=input_type, label_smoothing=smoothing, require_unit_diagonal=False
    )
    (g_ours,) = torch.autograd.grad(ours, theta)

    S = torch.sigmoid(theta)
    if target_kind == "soft":
        T = target * (1 - smoothing) + smoothing / C
        plain = _plain_soft(z, T, S, input_type).mean()
    else:
        uniform = torch.full((len(target), C), 1.0 / C, dtype=F64)
        plain = (
            (1 - smoothing) * _plain_index(z, target, S, input_type)
            + smoothing * _plain_soft(z, uniform, S, input_type)
        ).mean()
    (g_plain,) = torch.autograd.grad(plain, theta)
    torch.testing.assert_close(ours, plain.detach(), **TOL)
    torch.testing.assert_close(g_ours, g_plain, **TOL)


def test_gradient_reaches_sparse_values():
    dense = class_order(C, 0.5, dtype=F64)
    dense[0, 3] = dense[3, 0] = 0.0
    base = SparseSimilarity.from_dense(dense)
    theta = torch.logit(base.value.clamp(1e-3, 1 - 1e-3)).detach().requires_grad_()
    value = torch.where(base.value > 0, torch.sigmoid(theta), 0.0)
    sparse = SparseSimilarity(base.index, value, require_unit_diagonal=False)
    z = _inputs("logits").detach()
    y = _target("index")
    (g_ours,) = torch.autograd.grad(sim_loss(z, y, sparse), theta)
    rebuilt = torch.zeros(C, C, dtype=F64).scatter_add(
        1, base.index, torch.where(base.value > 0, torch.sigmoid(theta), 0.0)
    )
    (g_plain,) = torch.autograd.grad(_plain_index(z, y, rebuilt, "logits").mean(), theta)
    torch.testing.assert_close(g_ours, g_plain, **TOL)


def test_gradient_to_zero_entries_of_similarity_is_exact():
    """dL/dS_yc = -p_c / (S[y] . p) also where S_yc = 0 (plain autograd gives NaN there)."""
    z = torch.tensor([[0.3, -1.0, 2.0, 0.5]], dtype=F64)
    S = torch.tensor(
        [[1.0, 0.5, 0.0, 0.0], [0.5, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]],
        dtype=F64,
        requires_grad=True,
    )
    y = torch.tensor([0])
    (g,) = torch.autograd.grad(sim_loss(z, y, S), S)
    p = torch.softmax(z, 1)[0]
    expected = torch.zeros(C, C, dtype=F64)
    expected[0] = -p / (S[0].detach() * p).sum()
    torch.testing.assert_close(g, expected, **TOL)


@pytest.mark.parametrize("input_requires_grad", [True, False])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
def test_probability_targets_get_cross_entropys_gradient(input_requires_grad, smoothing):
    z = _inputs("logits").detach().requires_grad_(input_requires_grad)
    T = _target("soft").requires_grad_()
    eye = torch.eye(C, dtype=F64)
    weight = torch.tensor([0.5, 1.0, 2.0, 1.5], dtype=F64)
    ours = sim_loss(z, T, eye, weight=weight, label_smoothing=smoothing)
    reference = F.cross_entropy(z, T, weight=weight, label_smoothing=smoothing)
    inputs = (z, T) if input_requires_grad else (T,)
    for a, b in zip(
        torch.autograd.grad(ours, inputs), torch.autograd.grad(reference, inputs), strict=True
    ):
        torch.testing.assert_close(a, b, **TOL)


# ---------------------------------------------------------------- torch.func
FORMS = ["dense", "order", "sparse"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("target_kind", ["index", "ignore", "soft"])
def test_torch_func_grad_vmap_jacrev_jvp_equal_autograd(form, target_kind):
    S = _similarity(form)
    z = _inputs("logits").detach()
    target = _target(target_kind)
    kwargs = {"label_smoothing": 0.1} if target_kind == "soft" else {}

    def loss(scores: torch.Tensor) -> torch.Tensor:
        return sim_loss(scores, target, S, **kwargs)

    leaf = z.clone().requires_grad_()
    (expected,) = torch.autograd.grad(loss(leaf), leaf)
    torch.testing.assert_close(grad(loss)(z), expected, **TOL)

    per_row = jacrev(lambda s: sim_loss(s, target, S, reduction="none", **kwargs))(z)
    rows = [
        torch.autograd.grad(sim_loss(leaf, target, S, reduction="none", **kwargs)[i], leaf)[0]
        for i in range(len(z))
    ]
    torch.testing.assert_close(per_row, torch.stack(rows), **TOL)

    tangent = torch.randn_like(z)
    value, derivative = jvp(loss, (z,), (tangent,))
    torch.testing.assert_close(value, loss(z), **TOL)
    torch.testing.assert_close(derivative, (expected * tangent).sum(), **TOL)


@pytest.mark.parametrize("form", FORMS)
def test_vmap_per_example_gradients(form):
    """DP-SGD style: vmap(grad) over examples equals one backward per example."""
    S = _similarity(form)
    gen = torch.Generator().manual_seed(7)
    W = torch.randn(6, C, generator=gen, dtype=F64)
    x = torch.randn(9, 6, generator=gen, dtype=F64)
    y = torch.randint(0, C, (9,), generator=gen)

    def example_loss(weights: torch.Tensor, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return sim_loss((xi @ weights)[None], yi[None], S)

    per_example = vmap(grad(example_loss), in_dims=(None, 0, 0))(W, x, y)
    for i in range(len(x)):
        leaf = W.clone().requires_grad_()
        (expected,) = torch.autograd.grad(example_loss(leaf, x[i], y[i]), leaf)
        torch.testing.assert_close(per_example[i], expected, **TOL)


def test_forward_mode_dual_tensors():
    import torch.autograd.forward_ad as fwAD

    z = _inputs("logits").detach()
    y = _target("index")
    S = class_order(C, 0.4, dtype=F64)
    tangent = torch.randn_like(z)
    with fwAD.dual_level():
        out = sim_loss(fwAD.make_dual(z, tangent), y, S)
        derivative = fwAD.unpack_dual(out).tangent
    leaf = z.clone().requires_grad_()
    (expected,) = torch.autograd.grad(sim_loss(leaf, y, S), leaf)
    torch.testing.assert_close(derivative, (expected * tangent).sum(), **TOL)


# ---------------------------------------------------------------- compile and TorchScript
@pytest.mark.parametrize("form", ["dense", "order", "order-banded", "sparse"])
def test_compile_fullgraph_has_no_graph_break(form):
    """The model's forward plus SimLoss compiles as one graph, as with F.cross_entropy."""
    torch._dynamo.reset()
    num_classes = 3000 if form == "order-banded" else 12  # 3000 classes: the band form
    similarity = {
        "dense": class_order(num_classes, 0.7),
        "order": ClassOrder(num_classes, 0.7),
        "order-banded": ClassOrder(num_classes, 0.5),
        "sparse": SparseSimilarity.from_dense(class_order(num_classes, 0.3)),
    }[form]
    criterion = SimLoss(similarity)
    torch.manual_seed(0)
    model = torch.nn.Linear(5, num_classes)
    x, y = torch.randn(16, 5), torch.randint(0, num_classes, (16,))
    compiled = torch.compile(
        lambda a, b: criterion(model(a), b), fullgraph=True, backend="aot_eager"
    )
    loss = compiled(x, y)
    loss.backward()
    compiled_grad = model.weight.grad.clone()
    model.weight.grad = None
    eager = criterion(model(x), y)
    eager.backward()
    torch.testing.assert_close(loss, eager)
    torch.testing.assert_close(compiled_grad, model.weight.grad)


def test_compile_with_inductor_matches_eager():
    torch._dynamo.reset()
    criterion = SimLoss(ClassOrder(50, 0.8), label_smoothing=0.1)
    model = torch.nn.Linear(5, 50)
    x, y = torch.randn(32, 5), torch.randint(0, 50, (32,))
    compiled = torch.compile(lambda a, b: criterion(model(a), b), fullgraph=True)
    loss = compiled(x, y)
    loss.backward()
    grad_compiled = model.weight.grad.clone()
    model.weight.grad = None
    eager = criterion(model(x), y)
    eager.backward()
    torch.testing.assert_close(loss, eager, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_compiled, model.weight.grad, rtol=1e-5, atol=1e-6)


def test_torchscript_raises_one_clear_error():
    criterion = SimLoss(torch.eye(3))
    with pytest.raises(RuntimeError, match="does not support TorchScript.*torch.compile"):
        torch.jit.script(criterion)
    with pytest.raises(RuntimeError, match="does not support TorchScript"):
        torch.jit.trace(criterion, (torch.randn(2, 3), torch.tensor([0, 1])))


# ---------------------------------------------------------------- what an adversary tried
def _plain_linear(z: torch.Tensor, target: torch.Tensor, S: torch.Tensor, smoothing: float):
    """-log(S[y] . p) (+ smoothing), linear in S: exact derivatives also where S = 0."""
    probs = torch.softmax(z, 1)
    mass = probs @ S.T
    if target.is_floating_point():
        smoothed = target * (1 - smoothing) + smoothing / target.shape[1]
        return -(smoothed * torch.log(mass)).sum(1).mean()
    index = -torch.log(mass.gather(1, target[:, None]).squeeze(1))
    uniform = -torch.log(mass).mean(1)
    return ((1 - smoothing) * index + smoothing * uniform).mean()


@pytest.mark.parametrize("target_kind", ["index", "soft"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_learnable_sparse_values_second_order(target_kind, smoothing):
    """MAML through S: d/dz of (dL/dvalue . u) equals the dense plain formula's."""
    index = torch.tensor([[0, 1], [1, 2], [2, 3], [3, 0]])
    value = torch.tensor([[1.0, 0.5], [1.0, 0.3], [1.0, 0.2], [1.0, 0.7]], dtype=F64)
    value.requires_grad_()
    gen = torch.Generator().manual_seed(8)
    z = torch.randn(3, C, generator=gen, dtype=F64, requires_grad=True)
    target = _target(target_kind, n=3)
    u = torch.randn(4, 2, generator=gen, dtype=F64)

    def second(loss_of):
        (g,) = torch.autograd.grad(loss_of(value), value, create_graph=True)
        (h,) = torch.autograd.grad((g * u).sum(), z)
        return h

    ours = second(
        lambda v: sim_loss(z, target, SparseSimilarity(index, v), label_smoothing=smoothing)
    )
    dense = lambda v: torch.zeros(C, C, dtype=F64).scatter_add(1, index, v)  # noqa: E731
    reference = second(lambda v: _plain_linear(z, target, dense(v), smoothing))
    torch.testing.assert_close(ours, reference, **TOL)


def test_learnable_dense_similarity_with_zero_entries_second_order():
    """Derivatives in S are exact also at entries where S is exactly 0."""
    S0 = torch.tensor(
        [[1, 0.5, 0, 0], [0.5, 1, 0.2, 0], [0, 0.2, 1, 0.3], [0, 0, 0.3, 1]], dtype=F64
    )
    gen = torch.Generator().manual_seed(9)
    z = torch.randn(5, C, generator=gen, dtype=F64, requires_grad=True)
    y = torch.randint(0, C, (5,), generator=gen)
    v = torch.randn(5, C, generator=gen, dtype=F64)

    def through_s(loss_fn):
        S = S0.clone().requires_grad_()
        (gz,) = torch.autograd.grad(loss_fn(z, y, S), z, create_graph=True)
        (hs,) = torch.autograd.grad((gz * v).sum(), S)
        return hs

    ours = through_s(lambda a, b, S: sim_loss(a, b, S))
    reference = through_s(lambda a, b, S: _plain_linear(a, b, S, 0.0))
    torch.testing.assert_close(ours, reference, **TOL)
    assert bool((ours[S0 == 0] != 0).any())


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_out_of_range_target_under_compile_raises_instead_of_wrapping(backend, form):
    """A negative index would wrap to class C-1 in compiled code: a tensor-side assertion."""
    torch._dynamo.reset()
    S = torch.eye(5) if form == "dense" else SparseSimilarity.from_dense(torch.eye(5))
    criterion = SimLoss(S)
    compiled = torch.compile(lambda a, b: criterion(a, b), fullgraph=True, backend=backend)
    z = torch.randn(3, 5)
    torch.testing.assert_close(
        compiled(z, torch.tensor([0, 1, 4])), criterion(z, torch.tensor([0, 1, 4]))
    )
    with pytest.raises(RuntimeError, match=r"Expected `target` values in \[0, 5\)"):
        compiled(z, torch.tensor([0, 1, -1]))


def test_out_of_range_target_under_vmap_gives_nan_not_another_class():
    z = torch.randn(2, 3, 5, dtype=F64)
    y = torch.tensor([[0, 1, 2], [0, 1, -1]])
    out = vmap(lambda a, b: sim_loss(a, b, torch.eye(5, dtype=F64), reduction="none"))(z, y)
    torch.testing.assert_close(out[0], F.cross_entropy(z[0], y[0], reduction="none"))
    assert torch.isnan(out[1, 2]) and torch.isfinite(out[1, :2]).all()


def test_first_use_in_inference_mode_leaves_autograd_working():
    criterion = SimLoss(ClassOrder(6, 0.5), label_smoothing=0.1)
    z, y = torch.randn(4, 6), torch.randint(0, 6, (4,))
    with torch.inference_mode():
        criterion(z, y)  # a sanity-check evaluation before training fills the caches
    leaf = z.clone().requires_grad_()
    (g,) = torch.autograd.grad(criterion(leaf, y), leaf, create_graph=True)
    assert g.requires_grad


@pytest.mark.parametrize("target_kind", ["index", "soft"])
def test_forward_mode_with_sparse_similarity_and_smoothing(target_kind):
    import torch.autograd.forward_ad as fwAD

    S = SparseSimilarity.from_dense(class_order(C, 0.5, dtype=F64))
    z = _inputs("logits").detach()
    target = _target(target_kind)
    tangent = torch.randn_like(z)
    with fwAD.dual_level():
        out = sim_loss(fwAD.make_dual(z, tangent), target, S, label_smoothing=0.1)
        derivative = fwAD.unpack_dual(out).tangent
    leaf = z.clone().requires_grad_()
    (expected,) = torch.autograd.grad(sim_loss(leaf, target, S, label_smoothing=0.1), leaf)
    torch.testing.assert_close(derivative, (expected * tangent).sum(), **TOL)


def test_torchscript_of_a_structured_similarity_raises_one_clear_error():
    with pytest.raises(RuntimeError, match="ClassOrder does not support TorchScript"):
        torch.jit.script(ClassOrder(4, 0.5))
