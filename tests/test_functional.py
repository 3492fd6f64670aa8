"""sim_loss against references: F.cross_entropy (S = I), a float64 log-space formula, gradcheck."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import simloss
from simloss import ClassOrder, SimLoss, SparseSimilarity, sim_loss
from simloss.similarity import class_order, to_probability_matrix

TOL = {torch.float32: {"rtol": 1e-6, "atol": 1e-6}, torch.float64: {"rtol": 1e-10, "atol": 1e-12}}


def reference_loss(logits: torch.Tensor, target: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """Independent float64 log-space reference: lse(z) - lse(z + log S[y])."""
    z = logits.double()
    log_s = torch.log(S.double()[target])
    return torch.logsumexp(z, 1) - torch.logsumexp(z + log_s, 1)


def random_similarity(
    num_classes: int, seed: int, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    S = torch.rand(num_classes, num_classes, generator=gen, dtype=torch.float64)
    S = S * (torch.rand(num_classes, num_classes, generator=gen, dtype=torch.float64) > 0.4)
    S.fill_diagonal_(1.0)
    return S.to(dtype)


# ---------------------------------------------------------------- identity == CE
SHAPES = {"unbatched": (5,), "NC": (7, 5), "NCd": (4, 5, 3), "NCdd": (2, 5, 3, 2)}


def _targets(shape, num_classes, soft, ignore, gen):
    if soft:
        t = torch.rand(shape, generator=gen, dtype=torch.float64)
        return t / t.sum(dim=0 if len(shape) == 1 else 1, keepdim=True)
    batch = () if len(shape) == 1 else (shape[0], *shape[2:])
    t = torch.randint(0, num_classes, batch, generator=gen)
    if ignore and t.dim() > 0:
        t.view(-1)[::3] = -100
    return t


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape_id", list(SHAPES))
@pytest.mark.parametrize(
    ("soft", "ignore", "weighted", "smoothing"),
    [
        c
        for c in itertools.product([False, True], [False, True], [False, True], [0.0, 0.25])
        if not (c[0] and c[1])
    ],
    ids=lambda v: str(v),
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_identity_equals_cross_entropy(
    dtype, shape_id, soft, ignore, weighted, smoothing, reduction
):
    shape = SHAPES[shape_id]
    num_classes = 5
    gen = torch.Generator().manual_seed(hash((shape_id, soft, ignore, weighted)) % 2**31)
    logits = (torch.randn(shape, generator=gen, dtype=torch.float64) * 3).to(dtype)
    target = _targets(shape, num_classes, soft, ignore, gen)
    if soft:
        target = target.to(dtype)
    weight = (
        torch.rand(num_classes, generator=gen, dtype=torch.float64).to(dtype) if weighted else None
    )
    kwargs = {"weight": weight, "reduction": reduction, "label_smoothing": smoothing}

    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    ours = sim_loss(a, target, torch.eye(num_classes, dtype=dtype), **kwargs)
    ref = F.cross_entropy(b, target, **kwargs)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, **TOL[dtype])
    upstream = torch.rand(ref.shape, generator=gen, dtype=torch.float64).to(dtype)
    (ours * upstream).sum().backward()
    (ref * upstream).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, **TOL[dtype])


def test_identity_module_equals_cross_entropy_module():
    torch.manual_seed(0)
    logits, target = torch.randn(16, 4), torch.randint(0, 4, (16,))
    weight = torch.rand(4)
    ours = SimLoss(torch.eye(4), weight=weight, label_smoothing=0.1)(logits, target)
    ref = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1)(logits, target)
    torch.testing.assert_close(ours, ref)


def test_all_targets_ignored_gives_nan_like_cross_entropy():
    logits = torch.randn(3, 4)
    target = torch.full((3,), -100)
    assert torch.isnan(sim_loss(logits, target, torch.eye(4)))
    assert torch.isnan(F.cross_entropy(logits, target))
    assert sim_loss(logits, target, torch.eye(4), reduction="sum") == 0


# ---------------------------------------------------------------- general S
@pytest.mark.parametrize("form", ["dense", "sparse_torch", "sparse_pairs"])
def test_matches_log_space_reference(form):
    torch.manual_seed(1)
    S = random_similarity(6, seed=3)
    similarity = {
        "dense": S,
        "sparse_torch": S.to_sparse(),
        "sparse_pairs": SparseSimilarity.from_dense(S),
    }[form]
    logits = torch.randn(20, 6, dtype=torch.float64) * 4
    target = torch.randint(0, 6, (20,))
    ours = sim_loss(logits, target, similarity, reduction="none")
    torch.testing.assert_close(ours, reference_loss(logits, target, S), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
@pytest.mark.parametrize("soft", [False, True], ids=["index", "probs"])
@pytest.mark.parametrize("input_type", ["logits", "log_probs", "probs"])
@pytest.mark.parametrize("form", ["dense", "class_order", "sparse"])
def test_gradcheck_float64(label_smoothing, soft, input_type, form):
    torch.manual_seed(2)
    num_classes = 5
    S = (
        random_similarity(num_classes, seed=5)
        if form != "class_order"
        else class_order(num_classes, 0.6, dtype=torch.float64)
    )
    similarity = {
        "dense": S,
        "class_order": ClassOrder(num_classes, 0.6),
        "sparse": SparseSimilarity.from_dense(S),
    }[form]
    raw = torch.randn(4, num_classes, dtype=torch.float64)
    if soft:
        target = torch.softmax(torch.randn(4, num_classes, dtype=torch.float64), 1)
    else:
        target = torch.tensor([0, 2, 4, -100])
    weight = torch.rand(num_classes, dtype=torch.float64) + 0.1
    transform = {
        "logits": lambda x: x,
        "log_probs": lambda x: x.log_softmax(1),
        "probs": lambda x: x.softmax(1),
    }[input_type]
    x = raw.clone().requires_grad_()

    def f(x):
        return sim_loss(
            transform(x),
            target,
            similarity,
            weight=weight,
            label_smoothing=label_smoothing,
            input_type=input_type,
            reduction="none",
        )

    assert torch.autograd.gradcheck(f, (x,))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("input_type", ["logits", "log_probs"])
@pytest.mark.parametrize("form", ["dense", "class_order_band"])
def test_gradcheck_reduced_fast_path(reduction, input_type, form):
    """Unweighted mean/sum reduce inside the autograd function; check that path too."""
    torch.manual_seed(8)
    if form == "dense":
        similarity, num_classes = random_similarity(5, seed=9), 5
    else:  # more classes than the band: the (index, value) row form
        similarity, num_classes = ClassOrder(3000, 0.5), 3000
    x = torch.randn(4, num_classes, dtype=torch.float64)
    if input_type == "log_probs":  # the input must be log-probabilities (checked)
        x = x.log_softmax(1)
    x.requires_grad_()
    target = torch.tensor([0, 1, 2, num_classes - 1])
    assert torch.autograd.gradcheck(
        lambda v: sim_loss(v, target, similarity, reduction=reduction, input_type=input_type),
        (x,),
        fast_mode=True,
    )
    per_sample = sim_loss(x, target, similarity, reduction="none", input_type=input_type)
    expected = per_sample.mean() if reduction == "mean" else per_sample.sum()
    torch.testing.assert_close(
        sim_loss(x, target, similarity, reduction=reduction, input_type=input_type), expected
    )


def test_gradcheck_direct_log_probs_input():
    """For input_type='log_probs' the function is -log sum_c S exp(x_c) of x itself."""
    S = random_similarity(4, seed=7)
    x = torch.randn(3, 4, dtype=torch.float64).log_softmax(1).requires_grad_()
    target = torch.tensor([0, 1, 3])
    assert torch.autograd.gradcheck(
        lambda v: sim_loss(v, target, S, input_type="log_probs", reduction="none"), (x,)
    )
    expected = -torch.log((S[target] * x.exp()).sum(1))
    torch.testing.assert_close(
        sim_loss(x, target, S, input_type="log_probs", reduction="none"), expected
    )


def test_input_types_agree():
    torch.manual_seed(3)
    S = class_order(6, 0.5, dtype=torch.float64)
    z = torch.randn(10, 6, dtype=torch.float64)
    y = torch.randint(0, 6, (10,))
    a = sim_loss(z, y, S)
    torch.testing.assert_close(sim_loss(z.log_softmax(1), y, S, input_type="log_probs"), a)
    torch.testing.assert_close(sim_loss(z.softmax(1), y, S, input_type="probs"), a)


# ---------------------------------------------------------------- stability
def test_confident_mistake_gives_true_loss_and_gradient():
    """The paper's -log(S[y].p + 1e-8) gives ~18.4 and zero gradient here; the truth is 120."""
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0, 120.0]], requires_grad=True)
    target = torch.tensor([0])
    loss = sim_loss(logits, target, torch.eye(5))
    loss.backward()
    assert loss.item() == pytest.approx(120.0, rel=1e-6)
    expected = torch.tensor([[-1.0, 0.0, 0.0, 0.0, 1.0]])
    torch.testing.assert_close(logits.grad, expected)
    paper = -torch.log((torch.eye(5)[target] * logits.softmax(1)).sum(1) + 1e-8)
    assert paper.item() == pytest.approx(18.42, abs=0.01)


def test_vanishing_similar_classes_with_class_order():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0, 120.0]], requires_grad=True)
    target = torch.tensor([0])
    S = class_order(5, 0.5)
    loss = sim_loss(logits, target, S)
    loss.backward()
    ref = reference_loss(logits.detach(), target, S)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    # gradient: p - S[y] p / (S[y] . p) computed in float64 log space
    z = logits.detach().double()
    w = torch.log(S.double()[target]) + z
    expected = z.softmax(1) - w.softmax(1)
    torch.testing.assert_close(logits.grad.double(), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("form", ["dense", "class_order"])
def test_huge_logits_float32_are_finite_and_exact(form):
    gen = torch.Generator().manual_seed(4)
    logits = (torch.randn(64, 10, generator=gen) * 1e4).requires_grad_()
    target = torch.randint(0, 10, (64,), generator=gen)
    S = class_order(10, 0.7)
    similarity = S if form == "dense" else ClassOrder(10, 0.7)
    loss = sim_loss(logits, target, similarity, reduction="none")
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(logits.grad).all()
    torch.testing.assert_close(
        loss.double(), reference_loss(logits.detach(), target, S), rtol=1e-6, atol=1e-4
    )


def test_zero_entries_and_unnormalised_rows_have_no_nan():
    S = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.9], [0.0, 0.9, 1.0]])
    logits = torch.tensor([[-50.0, 40.0, 40.0], [1.0, 2.0, 3.0]], requires_grad=True)
    target = torch.tensor([0, 1])
    loss = sim_loss(logits, target, S, label_smoothing=0.1)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_class_order_r_zero_is_exactly_cross_entropy():
    torch.manual_seed(5)
    logits = torch.randn(32, 7) * 30
    target = torch.randint(0, 7, (32,))
    ref = F.cross_entropy(logits, target, reduction="none")
    for similarity in (class_order(7, 0.0), ClassOrder(7, 0.0)):
        ours = sim_loss(logits, target, similarity, reduction="none")
        assert torch.isfinite(ours).all()
        torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("device_dtype", [("cpu", torch.bfloat16)])
def test_autocast_computes_in_float32(device_dtype):
    device, dtype = device_dtype
    torch.manual_seed(6)
    layer = torch.nn.Linear(8, 5)
    x, y = torch.randn(16, 8), torch.randint(0, 5, (16,))
    S = class_order(5, 0.5)
    with torch.autocast(device_type=device, dtype=dtype):
        logits = layer(x)
        assert logits.dtype == dtype
        loss = sim_loss(logits, y, S)
        ce = F.cross_entropy(logits, y)
    assert loss.dtype == torch.float32 == ce.dtype
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())
    torch.testing.assert_close(loss, sim_loss(logits.float(), y, S))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA for float16 autocast")
def test_cuda_float16_autocast():
    layer = torch.nn.Linear(8, 5).cuda()
    x, y = torch.randn(16, 8, device="cuda") * 100, torch.randint(0, 5, (16,), device="cuda")
    with torch.autocast(device_type="cuda", dtype=torch.float16):
        loss = sim_loss(layer(x), y, class_order(5, 0.5, device="cuda"))
    loss.backward()
    assert loss.dtype == torch.float32
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


# ---------------------------------------------------------------- probability matrix
def test_probability_matrix_has_same_gradient_and_shifted_value():
    """Appendix: rows of S divided by their sums give the same gradients; values shift by log sum."""
    torch.manual_seed(7)
    S = class_order(6, 0.6, dtype=torch.float64)
    P = S / S.sum(1, keepdim=True)
    torch.testing.assert_close(to_probability_matrix(S).double(), P, rtol=1e-6, atol=1e-7)
    z = torch.randn(9, 6, dtype=torch.float64)
    y = torch.randint(0, 6, (9,))
    a, b = z.clone().requires_grad_(), z.clone().requires_grad_()
    la = sim_loss(a, y, S, reduction="none")
    lb = sim_loss(b, y, P, reduction="none", require_unit_diagonal=False)
    torch.testing.assert_close(lb - la, torch.log(S.sum(1))[y])
    la.sum().backward()
    lb.sum().backward()
    torch.testing.assert_close(a.grad, b.grad)


# ---------------------------------------------------------------- structured forms
@pytest.mark.parametrize("r", [0.0, 0.3, 0.9, 0.99])
@pytest.mark.parametrize("num_classes", [7, 300, 3000])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_class_order_structured_equals_dense(r, num_classes, smoothing):
    gen = torch.Generator().manual_seed(num_classes)
    logits = torch.randn(8, num_classes, generator=gen) * 3
    target = torch.randint(0, num_classes, (8,), generator=gen)
    target[0], target[1] = 0, num_classes - 1
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    la = sim_loss(a, target, ClassOrder(num_classes, r), label_smoothing=smoothing)
    lb = sim_loss(b, target, class_order(num_classes, r), label_smoothing=smoothing)
    torch.testing.assert_close(la, lb, rtol=1e-5, atol=1e-6)
    la.backward()
    lb.backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7)


def test_class_order_soft_targets_structured_equals_dense():
    gen = torch.Generator().manual_seed(11)
    logits = torch.randn(5, 2500, generator=gen, dtype=torch.float64)
    target = torch.softmax(torch.randn(5, 2500, generator=gen, dtype=torch.float64) * 3, 1)
    a = sim_loss(logits, target, ClassOrder(2500, 0.95))
    b = sim_loss(logits, target, class_order(2500, 0.95, dtype=torch.float64))
    torch.testing.assert_close(a, b)


def test_class_order_many_classes_without_dense_matrix():
    """C = 100,000: a dense float32 S would need 40 GB; the structured form needs O(N * C)."""
    num_classes = 100_000
    gen = torch.Generator().manual_seed(12)
    logits = torch.randn(64, num_classes, generator=gen).requires_grad_()
    target = torch.randint(0, num_classes, (64,), generator=gen)
    S = ClassOrder(num_classes, 0.9)
    loss = sim_loss(logits, target, S, reduction="none")
    loss.sum().backward()
    # reference for a few rows with dense rows built only for them
    rows = S.dense_rows(target[:4], torch.float64)
    z = logits.detach()[:4].double()
    ref = torch.logsumexp(z, 1) - torch.logsumexp(z + torch.log(rows), 1)
    torch.testing.assert_close(loss[:4].double(), ref, rtol=1e-5, atol=1e-6)
    assert torch.isfinite(logits.grad).all()


# ---------------------------------------------------------------- properties
@st.composite
def problems(draw):
    num_classes = draw(st.integers(2, 6))
    n = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, num_classes, generator=gen, dtype=torch.float64) * draw(
        st.sampled_from([0.1, 1.0, 10.0, 100.0])
    )
    target = torch.randint(0, num_classes, (n,), generator=gen)
    return logits, target, random_similarity(num_classes, seed)


@settings(max_examples=60, deadline=None)
@given(problems())
def test_property_nonnegative_and_below_cross_entropy(problem):
    logits, target, S = problem
    loss = sim_loss(logits, target, S, reduction="none")
    ce = F.cross_entropy(logits, target, reduction="none")
    assert (loss >= -1e-12).all()
    assert (loss <= ce + 1e-9).all()


@settings(max_examples=60, deadline=None)
@given(problems(), st.integers(0, 2**16))
def test_property_raising_an_entry_never_raises_the_loss(problem, seed):
    logits, target, S = problem
    num_classes = S.shape[0]
    gen = torch.Generator().manual_seed(seed)
    i, j = torch.randint(0, num_classes, (2,), generator=gen).tolist()
    raised = S.clone()
    raised[i, j] = raised[i, j] + (1 - raised[i, j]) * torch.rand(
        (), generator=gen, dtype=torch.float64
    )
    before = sim_loss(logits, target, S, reduction="none")
    after = sim_loss(logits, target, raised, reduction="none")
    assert (after <= before + 1e-12).all()


@settings(max_examples=60, deadline=None)
@given(problems(), st.integers(0, 2**16))
def test_property_permuting_classes_leaves_loss_unchanged(problem, seed):
    logits, target, S = problem
    num_classes = S.shape[0]
    perm = torch.randperm(num_classes, generator=torch.Generator().manual_seed(seed))
    inverse = torch.argsort(perm)
    permuted = sim_loss(logits[:, perm], inverse[target], S[perm][:, perm], reduction="none")
    torch.testing.assert_close(permuted, sim_loss(logits, target, S, reduction="none"))


@settings(max_examples=40, deadline=None)
@given(problems(), st.sampled_from([0.0, 0.2, 0.5, 0.95]))
def test_property_structured_and_dense_agree(problem, r):
    logits, target, _ = problem
    num_classes = logits.shape[1]
    dense = sim_loss(logits, target, class_order(num_classes, r, dtype=torch.float64))
    structured = sim_loss(logits, target, ClassOrder(num_classes, r))
    sparse = sim_loss(logits, target, class_order(num_classes, r, dtype=torch.float64).to_sparse())
    torch.testing.assert_close(structured, dense)
    torch.testing.assert_close(sparse, dense)


@settings(max_examples=40, deadline=None)
@given(problems())
def test_property_identity_is_cross_entropy(problem):
    logits, target, _ = problem
    num_classes = logits.shape[1]
    torch.testing.assert_close(
        sim_loss(logits, target, np.eye(num_classes)), F.cross_entropy(logits, target)
    )


# ---------------------------------------------------------------- bad input
BAD_CASES = {
    "not square": (torch.ones(3, 4), ValueError, "square"),
    "wrong size": (torch.eye(4), ValueError, "shape (3, 3)"),
    "above one": (
        torch.tensor([[1.0, 1.2, 0], [0, 1, 0], [0, 0, 1]]),
        ValueError,
        "found 1.2 at (0, 1)",
    ),
    "negative": (
        torch.tensor([[1.0, 0, 0], [0, 1, -0.2], [0, 0, 1]]),
        ValueError,
        "found -0.2 at (1, 2)",
    ),
    "nan": (torch.tensor([[1.0, float("nan"), 0], [0, 1, 0], [0, 0, 1]]), ValueError, "finite"),
    "diagonal": (torch.tensor([[1.0, 0, 0], [0, 0.5, 0], [0, 0, 1]]), ValueError, "diagonal"),
    "integer": (torch.eye(3, dtype=torch.long), TypeError, "floating dtype"),
    "list": ([[1.0, 0.0, 0.0]] * 3, TypeError, "torch.Tensor or numpy.ndarray"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_similarity(case):
    S, error, message = BAD_CASES[case]
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        sim_loss(torch.randn(2, 3), torch.tensor([0, 1]), S)
    with pytest.raises(error):
        SimLoss(S) if case != "wrong size" else SimLoss(S)(torch.randn(2, 3), torch.tensor([0, 1]))


def test_bad_arguments():
    logits, target, S = torch.randn(2, 3), torch.tensor([0, 1]), torch.eye(3)
    with pytest.raises(ValueError, match=r"`target` values in \[0, 3\).*found 3"):
        sim_loss(logits, torch.tensor([0, 3]), S)
    with pytest.raises(ValueError, match="found -1"):
        sim_loss(logits, torch.tensor([-1, 0]), S)
    with pytest.raises(TypeError, match="`target`"):
        sim_loss(logits, torch.tensor([True, False]), S)
    with pytest.raises(
        TypeError, match="class indices of an integer dtype, but found torch.float32"
    ):
        sim_loss(logits, torch.tensor([0.0, 1.0]), S)
    with pytest.raises(ValueError, match="`input_type`.*'softmax'"):
        sim_loss(logits, target, S, input_type="softmax")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`reduction`.*'avg'"):
        sim_loss(logits, target, S, reduction="avg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="class probabilities.*found \\(2, 4\\)"):
        sim_loss(logits, torch.rand(2, 4), S)
    with pytest.raises(ValueError, match="`target` \\(class indices\\) of shape \\(2,\\)"):
        sim_loss(logits, torch.tensor([0, 1, 2]), S)
    with pytest.raises(ValueError, match="`label_smoothing` in \\[0, 1\\]"):
        sim_loss(logits, target, S, label_smoothing=1.5)
    with pytest.raises(ValueError, match="`weight` of shape \\(3,\\)"):
        sim_loss(logits, target, S, weight=torch.ones(4))
    with pytest.raises(TypeError, match="`input`.*floating"):
        sim_loss(torch.ones(2, 3, dtype=torch.long), target, S)
    with pytest.raises(ValueError, match="for 3 classes.*for 4 classes"):
        sim_loss(logits, target, ClassOrder(4, 0.5))
    with pytest.raises(ValueError, match=r"`r` in \[0, 1\), but found 1.0"):
        ClassOrder(3, 1.0)
    with pytest.raises(ValueError, match=r"`r` in \[0, 1\), but found -0.1"):
        class_order(3, -0.1)


def test_validate_false_skips_value_checks_but_not_shape():
    S = torch.tensor([[1.0, 0.0], [0.0, 0.5]])
    sim_loss(torch.randn(2, 2), torch.tensor([0, 1]), S, validate=False)
    with pytest.raises(ValueError, match="shape"):
        sim_loss(torch.randn(2, 3), torch.tensor([0, 1]), S, validate=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device")
def test_similarity_on_other_device_raises():
    with pytest.raises(ValueError, match="device"):
        sim_loss(
            torch.randn(2, 3, device="cuda"), torch.tensor([0, 1], device="cuda"), torch.eye(3)
        )


def test_similarity_device_check_on_meta_device():
    """The device check does not need a GPU: a meta-device matrix is on another device."""
    S = torch.eye(3, device="meta")
    with pytest.raises(ValueError, match="device"):
        sim_loss(torch.randn(2, 3), torch.tensor([0, 1]), S, validate=False)


def test_public_api():
    assert set(simloss.__all__) >= {"sim_loss", "SimLoss", "ClassOrder", "SparseSimilarity"}


# ---------------------------------------------------------------- one row never changes another
def test_nan_row_does_not_change_a_confident_mistake_row():
    """A NaN row beside a finite one: [nan, 200] as cross-entropy gives, not [nan, inf]."""
    logits = torch.tensor([[float("nan"), 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 200.0]])
    target = torch.tensor([0, 0])
    ours = sim_loss(logits, target, torch.eye(4), reduction="none")
    reference = F.cross_entropy(logits, target, reduction="none")
    assert torch.isnan(ours[0]) and torch.isnan(reference[0])
    assert float(ours[1]) == float(reference[1]) == 200.0
    alone = sim_loss(logits[1:], target[1:], torch.eye(4), reduction="none")
    assert float(alone[0]) == 200.0


@pytest.mark.parametrize("form", ["dense", "order", "sparse"])
def test_minus_inf_target_logit_gives_inf_loss_and_cross_entropys_gradient(form):
    logits = torch.tensor([[float("-inf"), 0.0, 1.0, -2.0]], dtype=torch.float64)
    target = torch.tensor([0])
    S = {
        "dense": torch.eye(4, dtype=torch.float64),
        "order": ClassOrder(4, 0.0),
        "sparse": SparseSimilarity.from_dense(torch.eye(4, dtype=torch.float64)),
    }[form]
    ours_z, ref_z = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    ours = sim_loss(ours_z, target, S)
    reference = F.cross_entropy(ref_z, target)
    ours.backward()
    reference.backward()
    assert float(ours) == float(reference) == float("inf")
    assert torch.isfinite(ours_z.grad).all()
    torch.testing.assert_close(ours_z.grad, ref_z.grad, **TOL[torch.float64])


ROW_LOGIT = st.one_of(
    st.floats(-50, 50, allow_nan=False),
    st.sampled_from([-1e4, 1e4, 300.0, -300.0, float("-inf"), float("nan")]),
)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.lists(ROW_LOGIT, min_size=5, max_size=5), min_size=2, max_size=6),
    targets=st.lists(st.integers(0, 4), min_size=6, max_size=6),
    form=st.sampled_from(["dense", "order", "sparse"]),
    r=st.sampled_from([0.0, 0.3, 0.9]),
)
def test_property_each_rows_loss_and_gradient_depend_only_on_that_row(rows, targets, form, r):
    logits = torch.tensor(rows, dtype=torch.float32)
    target = torch.tensor(targets[: len(rows)])
    dense = class_order(5, r)
    S = {"dense": dense, "order": ClassOrder(5, r), "sparse": SparseSimilarity.from_dense(dense)}[
        form
    ]
    batch = logits.clone().requires_grad_()
    losses = sim_loss(batch, target, S, reduction="none")
    losses.sum().backward()
    for i in range(len(rows)):
        row = logits[i : i + 1].clone().requires_grad_()
        alone = sim_loss(row, target[i : i + 1], S, reduction="none")
        alone.sum().backward()
        torch.testing.assert_close(losses[i : i + 1].detach(), alone.detach(), equal_nan=True)
        torch.testing.assert_close(batch.grad[i : i + 1], row.grad, equal_nan=True)


# ---------------------------------------------------------------- cross-entropy's rules
def test_ignore_index_with_probability_targets_is_refused_as_cross_entropy():
    logits, probs = torch.randn(3, 4), torch.softmax(torch.randn(3, 4), 1)
    with pytest.raises(RuntimeError, match="ignore_index is not supported"):
        F.cross_entropy(logits, probs, ignore_index=2)
    with pytest.raises(ValueError, match="ignore_index is not supported for floating point target"):
        sim_loss(logits, probs, torch.eye(4), ignore_index=2)
    torch.testing.assert_close(  # a negative ignore_index is accepted, as by CE
        sim_loss(logits, probs, torch.eye(4), ignore_index=-5),
        F.cross_entropy(logits, probs, ignore_index=-5),
    )


def test_numpy_ignore_index_and_tensor_label_smoothing_are_accepted_as_by_cross_entropy():
    logits, target = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 1])
    kwargs = {"ignore_index": np.int64(1), "label_smoothing": torch.tensor(0.1)}
    torch.testing.assert_close(
        sim_loss(logits, target, torch.eye(4), **kwargs), F.cross_entropy(logits, target, **kwargs)
    )
    with pytest.raises(TypeError, match="`ignore_index` to be an int, but found bool"):
        sim_loss(logits, target, torch.eye(4), ignore_index=True)
    with pytest.raises(TypeError, match="`ignore_index` to be an int, but found float"):
        sim_loss(logits, target, torch.eye(4), ignore_index=1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`label_smoothing` to be a float, but found a tensor"):
        sim_loss(logits, target, torch.eye(4), label_smoothing=torch.tensor([0.1]))


def test_zero_classes_is_a_true_error():
    with pytest.raises(IndexError):
        F.cross_entropy(torch.randn(3, 0), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"at least one class.*found shape \(3, 0\)"):
        sim_loss(torch.randn(3, 0), torch.zeros(3, dtype=torch.long), torch.eye(0))


def test_target_error_names_a_value_that_is_in_the_target():
    """An ignored entry beside a bad one: the message names the bad value, not a stand-in."""
    target = torch.tensor([-100, 7, 1])
    with pytest.raises(ValueError, match=r"found 7$"):
        sim_loss(torch.randn(3, 4), target, torch.eye(4))


# ---------------------------------------------------------------- half precision
@pytest.mark.parametrize("form", ["dense", "order", "sparse"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_reduces_in_float32_and_returns_the_input_dtype(form, dtype):
    """(24000, 1000) fp16 logits: the mean is reduced in float32, where CE's fp16 mean overflows to inf."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(24_000, 1000, generator=gen).to(dtype)
    target = torch.randint(0, 1000, (24_000,), generator=gen)
    S = {
        "dense": torch.eye(1000),
        "order": ClassOrder(1000, 0.0),
        "sparse": SparseSimilarity.from_dense(torch.eye(1000)),
    }[form]
    loss = sim_loss(logits, target, S)
    exact = F.cross_entropy(logits.double(), target)
    assert loss.dtype == dtype
    assert torch.isfinite(loss)
    assert abs(float(loss) - float(exact)) / float(exact) < 0.01
    z = logits[:64].clone().requires_grad_()
    sim_loss(z, target[:64], S).backward()
    assert z.grad is not None and z.grad.dtype == dtype


# ---------------------------------------------------------------- validation proportional to work
def test_validation_runs_once_per_tensor_version(monkeypatch):
    from simloss.similarity import dispatch as operator

    calls = []
    real = operator.validate_similarity

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(operator, "validate_similarity", counting)
    S = class_order(6, 0.5)
    logits, target = torch.randn(4, 6), torch.randint(0, 6, (4,))
    for _ in range(5):
        sim_loss(logits, target, S)
    assert len(calls) == 1
    S[0, 1] = 1.5  # an in-place change is a new version: checked again, and refused
    with pytest.raises(ValueError, match=r"found 1.5 at \(0, 1\)"):
        sim_loss(logits, target, S)
    assert len(calls) == 2
    sim_loss(logits, target, np.eye(6))  # arrays have no version: checked on every call
    sim_loss(logits, target, np.eye(6))
    assert len(calls) == 4
    relaxed = torch.full((6, 6), 0.5)
    sim_loss(logits, target, relaxed, require_unit_diagonal=False)
    with pytest.raises(ValueError, match="diagonal"):  # a stricter check is a new check
        sim_loss(logits, target, relaxed)


# ---------------------------------------------------------------- ignored rows stay out
IGNORE_FORMS = {
    "dense": lambda: torch.eye(5),
    "order": lambda: ClassOrder(5, 0.0),
    "sparse": lambda: SparseSimilarity.from_dense(torch.eye(5)),
}


@pytest.mark.parametrize("form", list(IGNORE_FORMS))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("bad", [float("-inf"), float("inf"), float("nan")])
def test_ignored_rows_with_non_finite_logits_stay_out_as_in_cross_entropy(
    form, reduction, weighted, bad
):
    """The adversary's case: a padding row of -inf/inf/NaN logits must not poison the loss."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 5, generator=gen)
    logits[2] = bad  # the ignored row
    target = torch.tensor([1, 2, -100, 3])
    weight = torch.rand(5, generator=gen) + 0.5 if weighted else None
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    ours = sim_loss(a, target, IGNORE_FORMS[form](), weight=weight, reduction=reduction)
    reference = F.cross_entropy(b, target, weight=weight, reduction=reduction)
    torch.testing.assert_close(ours, reference, equal_nan=True)
    assert torch.isfinite(ours).all()
    ours.sum().backward()
    reference.sum().backward()
    kept = torch.tensor([0, 1, 3])
    torch.testing.assert_close(a.grad[kept], b.grad[kept])
    assert bool((a.grad[2] == 0).all())


@pytest.mark.parametrize("form", list(IGNORE_FORMS))
def test_all_ignored_batch_gives_nan_loss_and_zero_gradient_as_cross_entropy(form):
    a = torch.randn(3, 5, requires_grad=True)
    b = a.detach().clone().requires_grad_()
    target = torch.full((3,), -100)
    ours = sim_loss(a, target, IGNORE_FORMS[form]())
    reference = F.cross_entropy(b, target)
    assert torch.isnan(ours) and torch.isnan(reference)
    ours.backward()
    reference.backward()
    assert torch.equal(a.grad, b.grad) and bool((a.grad == 0).all())


def test_changing_targets_in_place_before_backward_raises_as_cross_entropy():
    logits = torch.randn(4, 5, requires_grad=True)
    target = torch.tensor([0, 1, 2, 3])
    for loss_fn in (F.cross_entropy, lambda z, y: sim_loss(z, y, class_order(5, 0.5))):
        y = target.clone()
        loss = loss_fn(logits, y)
        y.fill_(4)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            torch.autograd.grad(loss, logits, create_graph=True)


def test_changing_the_similarity_in_place_before_backward_raises():
    S = class_order(5, 0.5)
    loss = sim_loss(torch.randn(4, 5, requires_grad=True), torch.tensor([0, 1, 2, 3]), S)
    S.mul_(0.5)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_numpy_scalar_label_smoothing_and_one_line_weight_errors():
    logits, target = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 1])
    torch.testing.assert_close(
        sim_loss(logits, target, torch.eye(4), label_smoothing=np.float32(0.1)),
        F.cross_entropy(logits, target, label_smoothing=np.float32(0.1)),
    )
    with pytest.raises(TypeError) as error:
        sim_loss(logits, target, torch.eye(4), weight=torch.ones(4, dtype=torch.long))
    assert "\n" not in str(error.value) and "torch.int64" in str(error.value)
