"""The compiled loss (one exponential per score) against a float64 log-space formula and eager.

Under ``torch.compile`` index targets take :mod:`simloss._traced`. Its values and
gradients must be those of the paper's formula computed independently in float64
log space, including where the eager path falls back to log space (confident
mistakes), dead rows (every similar logit -inf), ignored rows holding NaN and
log-probability input.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from simloss import ClassOrder, SimLoss, sim_loss
from simloss.similarity import class_order

C = 6


def reference(scores: torch.Tensor, target: torch.Tensor, S: torch.Tensor, log_probs: bool):
    """Per-sample loss in float64: lse(z) - lse(z + log S[y]) (logits), -lse(x + log S[y])."""
    z = scores.double()
    similar = torch.logsumexp(z + torch.log(S.double()[target]), 1)
    return -similar if log_probs else torch.logsumexp(z, 1) - similar


def compiled_and_eager(S, scores, target, backend, **kwargs):
    torch._dynamo.reset()
    compiled = torch.compile(
        lambda z, y: sim_loss(z, y, S, **kwargs), fullgraph=True, backend=backend
    )
    a, b = scores.clone().requires_grad_(), scores.clone().requires_grad_()
    ours, eager = compiled(a, target), sim_loss(b, target, S, **kwargs)
    upstream = torch.linspace(0.5, 1.5, ours.numel(), dtype=ours.dtype).reshape(ours.shape)
    (ours * upstream).sum().backward()
    (eager * upstream).sum().backward()
    return ours, a.grad, eager, b.grad


def random_similarity(dtype: torch.dtype) -> torch.Tensor:
    gen = torch.Generator().manual_seed(4)
    S = torch.rand(C, C, generator=gen, dtype=torch.float64)
    S = S * (torch.rand(C, C, generator=gen, dtype=torch.float64) > 0.4)
    return S.fill_diagonal_(1.0).to(dtype)


@pytest.mark.parametrize("input_type", ["logits", "log_probs"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_values_and_gradients_equal_the_float64_formula(dtype, input_type):
    gen = torch.Generator().manual_seed(1)
    scores = torch.randn(9, C, generator=gen, dtype=torch.float64) * 3
    scores[0, :] = 0.0
    scores[0, 0] = 90.0  # a confident mistake: the similar mass is below 1e-38
    scores[1, 0] = 400.0  # beyond float32: only the log-space form is finite
    if dtype == torch.float32:
        scores[1, 0] = 150.0
    log_probs = input_type == "log_probs"
    if log_probs:
        scores = scores.log_softmax(1)
    target = torch.tensor([5, 4, 0, 1, 2, 3, 4, 5, 1])
    S = random_similarity(torch.float64)
    S[5, :4] = 0.0  # row 0's similar classes are far below its largest logit
    S[4, :3] = 0.0
    scores = scores.to(dtype)
    ours, grad, _, eager_grad = compiled_and_eager(
        S.to(dtype), scores, target, "aot_eager", reduction="none", input_type=input_type
    )
    expected = reference(scores, target, S, log_probs)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}
    torch.testing.assert_close(ours.double(), expected, **tol)
    z = scores.double().requires_grad_()
    upstream = torch.linspace(0.5, 1.5, 9, dtype=torch.float64)
    (reference(z, target, S, log_probs) * upstream).sum().backward()
    torch.testing.assert_close(grad.double(), z.grad, **tol)
    torch.testing.assert_close(grad, eager_grad, **tol)


@pytest.mark.parametrize("input_type", ["logits", "log_probs"])
def test_a_dead_row_gives_inf_and_the_eager_gradient(input_type):
    """Every similar logit -inf: loss inf; posterior S_y / sum S_y, as the eager reference."""
    scores = torch.randn(3, C, dtype=torch.float64)
    scores[0, 1] = float("-inf")
    if input_type == "log_probs":
        scores = scores.log_softmax(1)
    target = torch.tensor([1, 2, 3])
    ours, grad, eager, eager_grad = compiled_and_eager(
        torch.eye(C, dtype=torch.float64),
        scores,
        target,
        "aot_eager",
        reduction="none",
        input_type=input_type,
    )
    assert ours[0] == float("inf") and eager[0] == float("inf")
    torch.testing.assert_close(ours[1:], eager[1:], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, eager_grad, rtol=1e-12, atol=1e-12)
    if input_type == "logits":  # S = I: cross-entropy's gradient, softmax - onehot
        z = scores.clone().requires_grad_()
        (
            F.cross_entropy(z, target, reduction="none")
            * torch.linspace(0.5, 1.5, 3, dtype=torch.float64)
        ).sum().backward()
        torch.testing.assert_close(grad, z.grad, rtol=1e-12, atol=1e-12)


def test_ignored_rows_holding_nan_give_zero_loss_and_gradient_with_weights():
    scores = torch.randn(5, C, dtype=torch.float64)
    scores[1] = float("nan")
    target = torch.tensor([0, -100, 2, 3, 4])
    weight = torch.rand(C, dtype=torch.float64) + 0.5
    ours, grad, eager, eager_grad = compiled_and_eager(
        class_order(C, 0.5, dtype=torch.float64), scores, target, "aot_eager", weight=weight
    )
    torch.testing.assert_close(ours, eager, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, eager_grad, rtol=1e-12, atol=1e-12)
    assert torch.all(grad[1] == 0)


def test_inductor_compiles_class_order_and_dense_to_cross_entropy_for_identity():
    """With inductor: S = I (dense) and r = 0 (ClassOrder) are cross-entropy exactly."""
    torch.manual_seed(0)
    scores, target = torch.randn(16, C) * 3, torch.randint(0, C, (16,))
    for S in (torch.eye(C), ClassOrder(C, 0.0)):
        torch._dynamo.reset()
        criterion = SimLoss(S)
        compiled = torch.compile(criterion, fullgraph=True)
        a, b = scores.clone().requires_grad_(), scores.clone().requires_grad_()
        ours, ce = compiled(a, target), F.cross_entropy(b, target)
        ours.backward()
        ce.backward()
        torch.testing.assert_close(ours, ce, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-6, atol=1e-6)


def test_compiled_index_targets_take_these_kernels_and_eager_ones_do_not(monkeypatch):
    import simloss.functional

    calls = []
    original = simloss.functional.traced_index_losses

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(simloss.functional, "traced_index_losses", counting)
    scores, target = torch.randn(4, C), torch.tensor([0, 1, 2, 3])
    sim_loss(scores, target, class_order(C, 0.5))
    assert not calls
    compiled_and_eager(class_order(C, 0.5), scores, target, "aot_eager")
    assert calls
