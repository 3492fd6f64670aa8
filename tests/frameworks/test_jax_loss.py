"""simloss.jax.sim_loss against references: the float64 formula, the PyTorch loss, optax (S = I).

Values and gradients agree to 1e-10 in float64 over the grid similarity form x
input type x label kind x smoothing x mask; Hessians equal the formula's;
stability cases give the PyTorch loss's finite values and gradients; the loss
works under jit, vmap, jacrev and in an optax training step on Abalone.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

jax = pytest.importorskip("jax", reason="the jax extra is not installed")
jnp = pytest.importorskip("jax.numpy")
optax = pytest.importorskip("optax", reason="the jax extra is not installed")

from reference import (  # noqa: E402
    make_problem,
    random_similarity,
    reference_losses,
    similarity_forms,
)

import simloss  # noqa: E402
import simloss.jax as sj  # noqa: E402
from simloss import ClassOrder, SparseSimilarity  # noqa: E402
from simloss.similarity import class_order  # noqa: E402

jax.config.update(
    "jax_enable_x64", True
)  # the float64 comparisons; float32 is asked for explicitly

TOL = {"rtol": 1e-10, "atol": 1e-10}
F64 = torch.float64
GRID = list(
    itertools.product(
        ["dense", "order", "sparse"],
        ["logits", "log_probs", "probs"],
        ["index", "masked", "soft", "soft_masked"],
        [0.0, 0.2],
    )
)


def _torch_loss(scores, labels, similarity, keep, input_type, smoothing):
    """simloss.sim_loss per example (reduction='none'), masked rows set to 0."""
    target = torch.as_tensor(labels)
    losses = simloss.sim_loss(
        scores,
        target,
        similarity,
        reduction="none",
        input_type=input_type,
        label_smoothing=smoothing,
    )
    return torch.where(torch.as_tensor(keep), losses, 0.0)


def _jax_value_and_grad(scores, labels, similarity, keep, upstream, **kwargs):
    def total(z):
        losses = sj.sim_loss(z, labels, similarity, where=keep, **kwargs)
        return jnp.sum(losses * upstream), losses

    (_, losses), grad = jax.value_and_grad(total, has_aux=True)(jnp.asarray(scores))
    return np.asarray(losses), np.asarray(grad)


@pytest.mark.parametrize(("form", "input_type", "target", "smoothing"), GRID, ids=str)
def test_values_and_gradients_equal_formula_and_pytorch(form, input_type, target, smoothing):
    problem = make_problem(input_type, target, seed=hash((form, target)) % 1000)
    similarity, dense = similarity_forms(5)[form]
    keep = problem["keep"]
    losses, grad = _jax_value_and_grad(
        problem["scores"],
        jnp.asarray(problem["labels"]),
        similarity,
        jnp.asarray(keep),
        jnp.asarray(problem["upstream"]),
        input_type=input_type,
        label_smoothing=smoothing,
    )

    upstream = torch.as_tensor(problem["upstream"])
    ref_scores = torch.tensor(problem["scores"], requires_grad=True)
    ref = reference_losses(
        ref_scores,
        torch.as_tensor(problem["labels"]),
        dense,
        input_type=input_type,
        label_smoothing=smoothing,
        keep=torch.as_tensor(keep),
    )
    (ref_grad,) = torch.autograd.grad((ref * upstream).sum(), ref_scores)
    np.testing.assert_allclose(losses, ref.detach().numpy(), **TOL)
    np.testing.assert_allclose(grad, ref_grad.numpy(), **TOL)

    torch_scores = torch.tensor(problem["scores"], requires_grad=True)
    torch_similarity = dense if form == "dense" else similarity
    ours = _torch_loss(
        torch_scores, problem["labels"], torch_similarity, keep, input_type, smoothing
    )
    (torch_grad,) = torch.autograd.grad((ours * upstream).sum(), torch_scores)
    np.testing.assert_allclose(losses, ours.detach().numpy(), **TOL)
    np.testing.assert_allclose(grad, torch_grad.numpy(), **TOL)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("where", ["none", "examples", "classes"])
@pytest.mark.parametrize("target", ["index", "soft"])
def test_identity_equals_optax_cross_entropy(target, where, smoothing):
    rng = np.random.default_rng(7)
    logits = jnp.asarray(rng.normal(size=(8, 6)) * 3)
    if target == "index":
        labels = jnp.asarray(rng.integers(0, 6, size=8))
        one_hot = jax.nn.one_hot(labels, 6, dtype=logits.dtype)
    else:
        one_hot = jax.nn.softmax(jnp.asarray(rng.normal(size=(8, 6))))
        labels = one_hot
    mask = None
    if where == "examples":
        mask = jnp.asarray(rng.random(8) > 0.3)
    elif where == "classes":
        mask = rng.random((8, 6)) > 0.3
        if target == "index":  # a label outside `where` has probability 0 here (see the docs)
            mask[np.arange(8), np.asarray(labels)] = True
        mask = jnp.asarray(mask).at[3].set(False)  # row 3: no class at all
    smoothed = optax.smooth_labels(one_hot, smoothing) if smoothing else one_hot

    def ours(z):
        return sj.sim_loss(z, labels, np.eye(6), where=mask, label_smoothing=smoothing)

    def reference(z):
        if target == "index" and not smoothing:
            return optax.softmax_cross_entropy_with_integer_labels(z, labels, where=mask)
        return optax.softmax_cross_entropy(z, smoothed, where=mask)

    np.testing.assert_allclose(ours(logits), reference(logits), **TOL)
    grad = jax.grad(lambda z: ours(z).sum())(logits)
    ref_grad = jax.grad(lambda z: reference(z).sum())(logits)
    assert np.isfinite(np.asarray(grad)).all()
    np.testing.assert_allclose(grad, ref_grad, **TOL)


@pytest.mark.parametrize("form", ["dense", "order", "sparse"])
@pytest.mark.parametrize("input_type", ["logits", "log_probs", "probs"])
@pytest.mark.parametrize("target", ["index", "masked", "soft"])
def test_hessian_equals_float64_formula(form, input_type, target):
    problem = make_problem(input_type, target, seed=11)
    similarity, dense = similarity_forms(5)[form]
    labels, keep = problem["labels"], problem["keep"]

    def ours(z):
        losses = sj.sim_loss(
            z,
            jnp.asarray(labels),
            similarity,
            where=jnp.asarray(keep),
            label_smoothing=0.2,
            input_type=input_type,
            validate=False,
        )
        return losses.sum()

    def reference(z):
        return reference_losses(
            z,
            torch.as_tensor(labels),
            dense,
            input_type=input_type,
            label_smoothing=0.2,
            keep=torch.as_tensor(keep),
        ).sum()

    hessian = jax.hessian(ours)(jnp.asarray(problem["scores"]))
    ref = torch.autograd.functional.hessian(reference, torch.as_tensor(problem["scores"]))
    np.testing.assert_allclose(hessian, ref.numpy(), **TOL)


def test_hessian_with_identity_equals_optax():
    rng = np.random.default_rng(3)
    logits, labels = jnp.asarray(rng.normal(size=(4, 5))), jnp.asarray([0, 2, 4, 1])
    ours = jax.hessian(lambda z: sj.sim_loss(z, labels, np.eye(5)).sum())(logits)
    ref = jax.hessian(lambda z: optax.softmax_cross_entropy_with_integer_labels(z, labels).sum())(
        logits
    )
    np.testing.assert_allclose(ours, ref, **TOL)


# ---------------------------------------------------------------- stability
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["f32", "f64"])
def test_confident_mistake_gives_the_true_loss_and_gradient(dtype):
    logits = jnp.asarray([[0.0, 0.0, 0.0, 0.0, 120.0]], dtype)
    loss, grad = jax.value_and_grad(lambda z: sj.sim_loss(z, jnp.asarray([0]), np.eye(5)).sum())(
        logits
    )
    assert float(loss) == 120.0
    expected = jax.nn.softmax(logits) - jax.nn.one_hot(jnp.asarray([0]), 5, dtype=dtype)
    np.testing.assert_allclose(grad, expected, atol=1e-7)


@pytest.mark.parametrize("target", ["index", "soft", "smoothing"])
@pytest.mark.parametrize("form", ["dense", "order", "sparse"])
def test_vanishing_similar_mass_in_float32_equals_float64_formula(form, target):
    """Similar classes ~200 below the best logit: the linear sum underflows in float32."""
    num_classes = 6
    similarity, dense = {
        "dense": (class_order(6, 0.1).numpy(), class_order(6, 0.1, dtype=F64)),
        "order": (ClassOrder(6, 0.1), class_order(6, 0.1, dtype=F64)),
        "sparse": (SparseSimilarity.from_dense(torch.eye(6)), torch.eye(6, dtype=F64)),
    }[form]
    logits = np.zeros((3, num_classes), np.float32)
    logits[:, 5] = 200.0
    logits[1, 2] = 90.0
    labels = np.array([0, 1, 2])
    smoothing = 0.1 if target == "smoothing" else 0.0
    if target == "soft":
        labels = np.full((3, num_classes), 0.0, np.float32)
        labels[:, 0], labels[:, 1] = 0.75, 0.25
    z = jnp.asarray(logits)
    losses, grad = jax.value_and_grad(
        lambda v: sj.sim_loss(v, jnp.asarray(labels), similarity, label_smoothing=smoothing).sum()
    )(z)
    ref_z = torch.tensor(logits, dtype=F64, requires_grad=True)
    ref = reference_losses(ref_z, torch.as_tensor(labels), dense, label_smoothing=smoothing)
    (ref_grad,) = torch.autograd.grad(ref.sum(), ref_z)
    assert np.isfinite(np.asarray(grad)).all()
    np.testing.assert_allclose(float(losses), float(ref.sum().detach()), rtol=1e-6)
    np.testing.assert_allclose(grad, ref_grad.numpy(), atol=1e-6)


@pytest.mark.parametrize("form", ["dense", "order", "sparse"])
def test_minus_inf_logits_give_pytorchs_values_and_finite_gradients(form):
    similarity, dense = similarity_forms(5)[form]
    logits = np.array(
        [
            [1.0, -np.inf, 0.5, -np.inf, 2.0],  # non-target classes at -inf
            [-np.inf, 0.0, 1.0, 2.0, 3.0],  # the target's own logit -inf
        ]
    )
    labels = np.array([0, 0])
    z = jnp.asarray(logits)
    losses, grad = (
        jax.value_and_grad(
            lambda v: sj.sim_loss(v, jnp.asarray(labels), similarity).sum(), has_aux=False
        )(z),
        jax.grad(lambda v: sj.sim_loss(v, jnp.asarray(labels), similarity).sum())(z),
    )
    losses = sj.sim_loss(z, jnp.asarray(labels), similarity)
    torch_z = torch.tensor(logits, requires_grad=True)
    torch_sim = dense if form == "dense" else similarity
    ours = simloss.sim_loss(torch_z, torch.as_tensor(labels), torch_sim, reduction="none")
    (torch_grad,) = torch.autograd.grad(ours.sum(), torch_z)
    np.testing.assert_allclose(losses, ours.detach().numpy(), **TOL)
    np.testing.assert_allclose(grad, torch_grad.numpy(), **TOL)
    assert np.isfinite(np.asarray(grad)).all()


def test_target_whose_similar_classes_are_all_minus_inf_has_cross_entropys_gradient():
    logits = jnp.asarray([[-jnp.inf, 0.0, 1.0]])
    labels = jnp.asarray([0])
    loss = sj.sim_loss(logits, labels, np.eye(3))
    grad = jax.grad(lambda z: sj.sim_loss(z, labels, np.eye(3)).sum())(logits)
    assert float(loss[0]) == np.inf
    expected = jax.nn.softmax(logits) - jax.nn.one_hot(labels, 3, dtype=logits.dtype)
    np.testing.assert_allclose(grad, expected, **TOL)


def test_zero_similarities_in_non_target_columns_keep_the_gradient_finite():
    """S[y] is zero where the logits are huge: the masked sum's log has no NaN derivative."""
    S = np.eye(4)
    S[0, 1] = 0.5  # row 0 of S: zeros in columns 2 and 3, whose logits dominate
    logits = jnp.asarray([[0.0, -1.0, 300.0, 280.0]])
    loss, grad = jax.value_and_grad(lambda z: sj.sim_loss(z, jnp.asarray([0]), S).sum())(logits)
    ref_z = torch.tensor(np.asarray(logits), requires_grad=True)
    ref = reference_losses(ref_z, torch.tensor([0]), torch.as_tensor(S))
    (ref_grad,) = torch.autograd.grad(ref.sum(), ref_z)
    np.testing.assert_allclose(float(loss), float(ref.sum().detach()), **TOL)
    np.testing.assert_allclose(grad, ref_grad.numpy(), **TOL)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("target", ["index", "soft"])
def test_masked_examples_with_non_finite_scores_give_zero_loss_and_gradient(bad, target):
    logits = np.array([[1.0, 2.0, 0.5], [bad, bad, 0.0]])
    labels = np.array([1, -100]) if target == "index" else np.full((2, 3), 1 / 3)
    keep = jnp.asarray([True, False])
    loss, grad = jax.value_and_grad(
        lambda z: sj.sim_loss(
            z, jnp.asarray(labels), ClassOrder(3, 0.5), where=keep, label_smoothing=0.1
        ).sum()
    )(jnp.asarray(logits))
    assert np.isfinite(float(loss))
    assert np.isfinite(np.asarray(grad)).all()
    np.testing.assert_array_equal(np.asarray(grad)[1], 0.0)


def test_gradient_in_a_learnable_similarity_equals_pytorchs_also_at_zero_entries():
    problem = make_problem("logits", "index", seed=5)
    dense = random_similarity(5, 9)
    assert (dense == 0).any()

    def ours(S):
        return (
            sj.sim_loss(jnp.asarray(problem["scores"]), jnp.asarray(problem["labels"]), S)
        ).sum()

    grad = jax.grad(ours)(jnp.asarray(dense.numpy()))
    S = dense.clone().requires_grad_()
    ref = simloss.sim_loss(
        torch.as_tensor(problem["scores"]), torch.as_tensor(problem["labels"]), S, reduction="sum"
    )
    (ref_grad,) = torch.autograd.grad(ref, S)
    np.testing.assert_allclose(grad, ref_grad.numpy(), **TOL)


# ---------------------------------------------------------------- transforms
@pytest.mark.parametrize("form", ["dense", "order", "sparse"])
def test_jit_vmap_and_jacrev_equal_the_eager_loss(form):
    similarity, _ = similarity_forms(5)[form]
    problem = make_problem("logits", "index", seed=2)
    z, y = jnp.asarray(problem["scores"]), jnp.asarray(problem["labels"])

    def loss(z, y):
        return sj.sim_loss(z, y, similarity, label_smoothing=0.1)

    eager = loss(z, y)
    np.testing.assert_allclose(jax.jit(loss)(z, y), eager, **TOL)
    np.testing.assert_allclose(jax.vmap(loss)(z, y), eager, **TOL)
    jacobian = jax.jacrev(loss)(z, y)
    per_row = jax.vmap(jax.grad(lambda zi, yi: loss(zi, yi)))(z, y)
    np.testing.assert_allclose(jnp.einsum("iic->ic", jacobian), per_row, **TOL)
    forward = jax.jacfwd(loss)(z, y)
    np.testing.assert_allclose(forward, jacobian, **TOL)


def test_labels_and_similarity_closed_over_by_a_jitted_function():
    z, y = jnp.zeros((2, 3)), jnp.asarray([1, 2])
    grad = jax.jit(jax.grad(lambda v: sj.sim_loss(v, y, class_order(3, 0.5).numpy()).sum()))(z)
    eager = jax.grad(lambda v: sj.sim_loss(v, y, class_order(3, 0.5).numpy()).sum())(z)
    np.testing.assert_allclose(grad, eager, **TOL)


def test_out_of_range_label_under_jit_gives_nan_not_another_row():
    z = jnp.zeros((2, 3))
    losses = jax.jit(lambda y: sj.sim_loss(z, y, np.eye(3)))(jnp.asarray([1, 7]))
    assert np.isnan(float(losses[1]))
    np.testing.assert_allclose(float(losses[0]), np.log(3))


def test_class_order_beyond_the_dense_limit_equals_the_dense_matrix():
    """2100 classes: soft labels use the exponential filter, index labels the band."""
    rng = np.random.default_rng(0)
    num_classes = 2100
    logits = jnp.asarray(rng.normal(size=(3, num_classes)))
    soft = jax.nn.softmax(jnp.asarray(rng.normal(size=(3, num_classes)) * 3))
    labels = jnp.asarray([0, 1050, 2099])
    dense = class_order(num_classes, 0.9, dtype=F64).numpy()
    for target, smoothing in ((soft, 0.0), (labels, 0.1)):
        ours = sj.sim_loss(logits, target, ClassOrder(num_classes, 0.9), label_smoothing=smoothing)
        ref = sj.sim_loss(logits, target, dense, label_smoothing=smoothing)
        np.testing.assert_allclose(ours, ref, rtol=1e-12)


# ---------------------------------------------------------------- precision
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("target", ["index", "soft"])
def test_low_precision_is_computed_in_float32_and_returned_in_the_input_dtype(dtype, target):
    rng = np.random.default_rng(1)
    logits = jnp.asarray(rng.normal(size=(16, 7)) * 4, dtype)
    labels = jnp.asarray(rng.integers(0, 7, 16))
    if target == "soft":
        labels = jax.nn.softmax(jnp.asarray(rng.normal(size=(16, 7)))).astype(dtype)
    ours = sj.sim_loss(logits, labels, ClassOrder(7, 0.5), label_smoothing=0.1)
    wide_labels = labels.astype(jnp.float32) if target == "soft" else labels
    wide = sj.sim_loss(
        logits.astype(jnp.float32), wide_labels, ClassOrder(7, 0.5), label_smoothing=0.1
    )
    assert ours.dtype == dtype
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(wide.astype(dtype)))
    grad = jax.grad(lambda z: sj.sim_loss(z, labels, ClassOrder(7, 0.5)).astype(jnp.float32).sum())(
        logits
    )
    assert grad.dtype == dtype and np.isfinite(np.asarray(grad, np.float32)).all()


# ---------------------------------------------------------------- optax training
def test_optax_training_on_abalone_lowers_the_loss_and_beats_the_prior():
    from simloss.experiments.data.abalone import load_abalone

    data = load_abalone(split_seed=0)
    x = jnp.asarray(data.standardize(data.train.inputs).numpy())
    y = jnp.asarray(data.train.targets.numpy())
    num_classes = 17
    S = class_order(num_classes, 0.5).numpy()
    key = jax.random.PRNGKey(0)
    k1, k2 = jax.random.split(key)
    params = {
        "w1": jax.random.normal(k1, (x.shape[1], 32)) * 0.3,
        "b1": jnp.zeros(32),
        "w2": jax.random.normal(k2, (32, num_classes)) * 0.3,
        "b2": jnp.zeros(num_classes),
    }

    def forward(p, inputs):
        return jax.nn.relu(inputs @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

    def loss_fn(p, inputs, labels):
        return sj.sim_loss(forward(p, inputs), labels, S).mean()

    optimizer = optax.adam(1e-2)
    state = optimizer.init(params)

    @jax.jit
    def step(p, s, inputs, labels):
        loss, grads = jax.value_and_grad(loss_fn)(p, inputs, labels)
        updates, s = optimizer.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    first = float(loss_fn(params, x, y))
    for _ in range(5):  # epochs
        for start in range(0, x.shape[0], 256):
            params, state, _ = step(params, state, x[start : start + 256], y[start : start + 256])
    last = float(loss_fn(params, x, y))
    counts = np.bincount(np.asarray(y), minlength=num_classes) / y.shape[0]
    prior = float(
        sj.sim_loss(jnp.log(jnp.asarray(counts))[None].repeat(x.shape[0], 0), y, S).mean()
    )
    assert last < first and last < prior


# ---------------------------------------------------------------- errors
BAD_SIMILARITIES = {
    "range": np.array([[1.0, 1.5], [0.5, 1.0]]),
    "diagonal": np.array([[0.9, 0.5], [0.5, 1.0]]),
    "nan": np.array([[1.0, np.nan], [0.5, 1.0]]),
    "shape": np.eye(3),
    "integer": np.eye(2, dtype=np.int64),
    "kind": [[1.0, 0.0], [0.0, 1.0]],
    "path": "similarity.npy",
}


@pytest.mark.parametrize("case", list(BAD_SIMILARITIES))
def test_bad_similarity_gives_the_pytorch_loss_error(case):
    bad = BAD_SIMILARITIES[case]
    with pytest.raises((TypeError, ValueError)) as torch_error:
        simloss.sim_loss(torch.zeros(1, 2), torch.tensor([0]), bad)
    with pytest.raises(type(torch_error.value)) as jax_error:
        sj.sim_loss(jnp.zeros((1, 2)), jnp.asarray([0]), bad)
    assert str(jax_error.value) == str(torch_error.value)
    assert "\n" not in str(jax_error.value)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"labels": jnp.asarray([0, 5])}, ValueError, "Expected `labels` values in [0, 3)"),
        ({"labels": jnp.asarray([0, -1])}, ValueError, "but found -1"),
        ({"labels": jnp.asarray([0, 1, 2])}, ValueError, "Expected `labels` (class indices) of"),
        ({"labels": jnp.asarray([True, False])}, TypeError, "Expected `labels` of an integer"),
        ({"labels": jnp.asarray([0.0, 1.0])}, TypeError, "class indices of an integer dtype"),
        (
            {"labels": jnp.eye(3, dtype=jnp.int32)[jnp.asarray([0, 1])]},
            TypeError,
            "Expected `labels` of shape (2, 3) (one-hot or class probabilities) to have a "
            "floating dtype, but found int32",
        ),
        (
            {"labels": -jnp.eye(3)[jnp.asarray([0, 1])]},
            ValueError,
            "Expected `labels` (one-hot or class probabilities) to be finite and >= 0, but found -1",
        ),
        ({"labels": jnp.full((2, 3), jnp.nan)}, ValueError, "to be finite and >= 0, but found nan"),
        ({"logits": jnp.zeros((2, 3), jnp.int32)}, TypeError, "floating dtype"),
        ({"logits": jnp.asarray(1.0)}, ValueError, "found a scalar"),
        ({"logits": [[0.0, 1.0, 2.0]]}, TypeError, "found list"),
        ({"where": jnp.asarray([1, 0])}, TypeError, "Expected `where` to be a boolean"),
        ({"where": jnp.asarray([True])}, ValueError, "Expected `where` of shape (2,)"),
        ({"label_smoothing": 1.5}, ValueError, "Expected `label_smoothing` in [0, 1]"),
        ({"input_type": "prob"}, ValueError, "Expected `input_type` to be one of"),
        ({"input_type": "probs"}, ValueError, "Expected each row of `logits` to sum to 1"),
        ({"similarity": ClassOrder(4, 0.5)}, ValueError, "for 3 classes"),
        ({"similarity": torch.eye(3, requires_grad=True)}, TypeError, "requires no gradient"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_arguments_give_one_line_errors_naming_the_argument(kwargs, error, message):
    arguments = {
        "logits": jnp.zeros((2, 3)),
        "labels": jnp.asarray([0, 1]),
        "similarity": np.eye(3),
    }
    arguments.update(kwargs)
    with pytest.raises(error) as info:
        sj.sim_loss(
            arguments.pop("logits"),
            arguments.pop("labels"),
            arguments.pop("similarity"),
            **arguments,
        )
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_masked_label_may_be_out_of_range():
    losses = sj.sim_loss(
        jnp.zeros((2, 3)), jnp.asarray([1, -100]), np.eye(3), where=jnp.asarray([True, False])
    )
    np.testing.assert_allclose(losses, [np.log(3), 0.0])


def test_traced_similarity_is_checked_for_its_shape():
    with pytest.raises(ValueError, match=r"Expected `similarity` of shape \(3, 3\)"):
        jax.jit(lambda S: sj.sim_loss(jnp.zeros((1, 3)), jnp.asarray([0]), S))(jnp.eye(2))


def test_probabilities_of_masked_rows_are_not_checked():
    probs = jnp.asarray([[0.2, 0.8], [5.0, -1.0]])
    losses = sj.sim_loss(
        probs, jnp.asarray([1, 0]), np.eye(2), input_type="probs", where=jnp.asarray([True, False])
    )
    np.testing.assert_allclose(losses, [-np.log(0.8), 0.0])


def test_labels_of_masked_rows_are_not_checked_and_unnormalised_labels_weight_the_classes():
    labels = jnp.asarray([[0.5, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    losses = sj.sim_loss(jnp.zeros((2, 3)), labels, np.eye(3), where=jnp.asarray([True, False]))
    np.testing.assert_allclose(losses, [0.5 * np.log(3), 0.0], rtol=1e-6)
