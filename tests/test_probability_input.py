"""``input_type="probs"``: the input must be probabilities, checked as the metrics check ``preds``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from simloss import SimLoss, sim_loss
from simloss.metrics import mean_absolute_error
from simloss.similarity import class_order

S = class_order(3, 0.5)
BAD = [
    ([[0.5, 0.7, 0.1]], r"`input` to sum to 1 \(within 0.001\), but row 0 sums to 1.3"),
    ([[-0.5, 1.4, 0.1]], r"`input` probabilities in \[0, 1\], but found -0.5 at \(0, 0\)"),
    ([[float("nan"), 0.5, 0.5]], r"`input` probabilities in \[0, 1\], but found nan"),
    ([[0.2, 0.3, 0.4]], r"row 0 sums to 0.9"),  # a class dropped
]


@pytest.mark.parametrize(("values", "message"), BAD)
def test_function_and_module_reject_what_is_not_a_distribution(values, message):
    probs = torch.tensor(values)
    with pytest.raises(ValueError, match=message):
        sim_loss(probs, torch.tensor([0]), S, input_type="probs")
    with pytest.raises(ValueError, match=message):
        SimLoss(S, input_type="probs")(probs, torch.tensor([0]))


def test_logits_passed_as_probs_name_the_fix():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    with pytest.raises(ValueError, match=r'pass input_type="logits" for raw scores'):
        sim_loss(logits, torch.tensor([1]), S, input_type="probs")


def test_every_row_and_position_is_checked():
    """(N, C, d) input: the class dimension is 1; the bad position is named."""
    probs = torch.softmax(torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0)), 1)
    probs[1, :, 2] = torch.tensor([0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match=r"row \(1, 2\) sums to 1.5"):
        sim_loss(probs, torch.zeros(2, 4, dtype=torch.long), S, input_type="probs")
    single = torch.tensor([0.5, 0.6, 0.1])  # 1-D input (C,)
    with pytest.raises(ValueError, match=r"sums to 1.2"):
        sim_loss(single, torch.tensor(0), S, input_type="probs")


def test_softmax_outputs_pass_in_every_float_dtype_and_equal_cross_entropy():
    """Rounding of a real softmax is within the tolerance; with S = I the value is CE's."""
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(64, 1000, generator=gen) * 4
    target = torch.randint(0, 1000, (64,), generator=gen)
    eye = torch.eye(1000)
    for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        probs = torch.softmax(logits.to(dtype), 1)
        loss = sim_loss(probs, target, eye.to(dtype), input_type="probs")
        expected = F.nll_loss(torch.log(probs.double()), target)
        torch.testing.assert_close(loss.double(), expected, rtol=1e-2, atol=1e-2)


def test_the_same_tensor_is_accepted_or_refused_by_loss_and_metrics_alike():
    """One definition of a probability row: the loss's input and the metrics' preds."""
    target = torch.tensor([0])
    for values, _ in BAD:
        probs = torch.tensor(values)
        with pytest.raises(ValueError, match="preds"):
            mean_absolute_error(probs, target, decoder="expectation", input_type="probs")
    good = torch.tensor([[0.2, 0.3, 0.5 + 5e-4]])
    sim_loss(good, target, S, input_type="probs")
    mean_absolute_error(good, target, decoder="expectation", input_type="probs")


def test_transforms_still_differentiate_probability_inputs():
    """vmap cannot read values (no check); the gradient is the float64 formula's."""
    probs = torch.softmax(torch.randn(5, 3, dtype=torch.float64), 1).requires_grad_()
    target = torch.tensor([0, 1, 2, 1, 0])
    dense = S.double()
    per_row = torch.func.vmap(
        lambda p, y: sim_loss(p, y, dense, input_type="probs"), in_dims=(0, 0)
    )(probs, target)
    expected = -torch.log((dense[target] * probs).sum(1))
    torch.testing.assert_close(per_row, expected)
    assert torch.autograd.gradcheck(
        lambda p: sim_loss(p, target, dense, input_type="probs"), (probs,)
    )


def test_compiled_loss_asserts_the_same_condition():
    compiled = torch.compile(
        lambda p, y: sim_loss(p, y, S, input_type="probs", validate=False), backend="eager"
    )
    target = torch.tensor([0])
    good = torch.tensor([[0.2, 0.3, 0.5]])
    torch.testing.assert_close(
        compiled(good, target), sim_loss(good, target, S, input_type="probs")
    )
    with pytest.raises(RuntimeError, match="probabilities in"):
        compiled(torch.tensor([[0.5, 0.7, 0.1]]), target)


def test_rows_of_an_ignored_target_are_not_checked():
    """Padded positions take no part in the loss (as with logits); every other row is checked."""
    probs = torch.tensor([[0.2, 0.3, 0.5], [0.0, 0.0, 0.0], [0.6, 0.3, 0.1]])
    target = torch.tensor([1, -100, 0])
    expected = -torch.log(
        torch.tensor([0.65, 0.6 + 0.3 * 0.5 + 0.1 * 0.25], dtype=torch.float64)
    ).mean()  # S[y] . p
    torch.testing.assert_close(
        sim_loss(probs, target, S, input_type="probs").double(), expected, rtol=1e-6, atol=0
    )
    eye = torch.eye(3)
    torch.testing.assert_close(
        sim_loss(probs, target, eye, input_type="probs", ignore_index=-100),
        F.nll_loss(torch.log(probs), target),
    )
    with pytest.raises(ValueError, match="row 1 sums to 0"):
        sim_loss(probs, torch.tensor([1, 2, -100]), S, input_type="probs")
    compiled = torch.compile(
        lambda p, y: sim_loss(p, y, S, input_type="probs", validate=False), backend="eager"
    )
    torch.testing.assert_close(
        compiled(probs, target), sim_loss(probs, target, S, input_type="probs")
    )
    with pytest.raises(RuntimeError, match="probabilities in"):
        compiled(probs, torch.tensor([1, 2, -100]))


def test_one_dimensional_input_names_no_row():
    with pytest.raises(ValueError, match=r"Expected `input` to sum to 1 \(within 0.001\), but it "):
        sim_loss(torch.tensor([0.5, 0.6, 0.1]), torch.tensor(0), S, input_type="probs")


def test_default_inductor_compiles_the_check():
    """Inductor's C++ kernel embeds the assertion message in a string literal."""
    torch._dynamo.reset()
    compiled = torch.compile(lambda p, y: sim_loss(p, y, S, input_type="probs", validate=False))
    target = torch.tensor([0, 2])
    good = torch.tensor([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    torch.testing.assert_close(
        compiled(good, target), sim_loss(good, target, S, input_type="probs")
    )
    with pytest.raises(RuntimeError, match="probabilities in"):
        compiled(torch.tensor([[0.2, 0.3, 0.5], [0.1, 0.1, 0.9]]), target)


def test_log_probabilities_are_checked_the_same_way():
    """log_softmax outputs pass (-inf included) and equal F.nll_loss; logits do not."""
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(32, 500, generator=gen) * 4
    logits[0, 7] = float("-inf")  # a class of probability exactly 0
    target = torch.randint(0, 500, (32,), generator=gen)
    eye = torch.eye(500)
    for dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        log_probs = torch.log_softmax(logits.to(dtype), 1)
        loss = sim_loss(log_probs, target, eye.to(dtype), input_type="log_probs")
        expected = F.nll_loss(log_probs.double(), target)
        torch.testing.assert_close(loss.double(), expected, rtol=1e-2, atol=1e-2)
    with pytest.raises(
        ValueError, match=r"log-probabilities in \[-inf, 0\], but found .*log_probs"
    ):
        sim_loss(logits, target, eye, input_type="log_probs")
    with pytest.raises(ValueError, match=r"row 0 sums to 0.75 after exp"):
        sim_loss(
            torch.tensor([[0.5, 0.25]]).log(),
            torch.tensor([0]),
            torch.eye(2),
            input_type="log_probs",
        )
    compiled = torch.compile(
        lambda p, y: sim_loss(p, y, S, input_type="log_probs", validate=False), backend="eager"
    )
    with pytest.raises(RuntimeError, match="log-probabilities in"):
        compiled(torch.tensor([[0.2, 0.3, 0.4]]).log(), torch.tensor([0]))
