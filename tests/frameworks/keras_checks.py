"""The Keras loss's checks, run on one backend per process (KERAS_BACKEND picks it).

Keras binds its backend when first imported, so ``test_keras_loss.py`` runs
this file once per backend: ``KERAS_BACKEND=torch python keras_checks.py OUT.json``
runs every ``check_*`` function and writes ``{name: null or the traceback}``.
References: the plain float64 formula (``reference.py``), the PyTorch loss,
and Keras' own ``SparseCategoricalCrossentropy``/``CategoricalCrossentropy``
for S = I. Not collected by pytest (tests/conftest.py ignores it).
"""

from __future__ import annotations

import doctest
import itertools
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
import torch

BACKEND = os.environ["KERAS_BACKEND"]
if BACKEND == "jax":
    import jax

    jax.config.update("jax_enable_x64", True)  # the float64 comparisons

import keras  # noqa: E402
from reference import make_problem, reference_losses, similarity_forms  # noqa: E402

import simloss  # noqa: E402
from simloss import ClassOrder, SparseSimilarity  # noqa: E402
from simloss.keras import SimLoss  # noqa: E402
from simloss.similarity import class_order  # noqa: E402

TOL = {"rtol": 1e-10, "atol": 1e-10}
F64 = torch.float64


def value_and_grad(fn, x: np.ndarray, upstream: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fn(x)`` (per-example losses) and the gradient of ``sum(fn(x) * upstream)`` in x."""
    if BACKEND == "jax":
        import jax.numpy as jnp

        def total(v):
            losses = fn(v)
            return jnp.sum(losses * upstream), losses

        (_, losses), grad = jax.value_and_grad(total, has_aux=True)(jnp.asarray(x))
        return np.asarray(losses), np.asarray(grad)
    if BACKEND == "torch":
        v = torch.tensor(x, requires_grad=True)
        losses = fn(v)
        (grad,) = torch.autograd.grad((losses * torch.as_tensor(upstream)).sum(), v)
        return losses.detach().cpu().numpy(), grad.cpu().numpy()
    import tensorflow as tf

    v = tf.Variable(x)
    with tf.GradientTape() as tape:
        losses = fn(v)
        total = tf.reduce_sum(losses * upstream)
    return losses.numpy(), tape.gradient(total, v).numpy()


def numpy(tensor) -> np.ndarray:
    return keras.ops.convert_to_numpy(tensor)


# ---------------------------------------------------------------- references
def check_values_and_gradients_equal_formula_and_pytorch():
    """float64, per example: form x from_logits x labels (index, ignored, one-hot, soft) x smoothing."""
    grid = itertools.product(
        ["dense", "order", "sparse"],
        [True, False],
        ["index", "masked", "onehot", "soft"],
        [0.0, 0.2],
    )
    for form, from_logits, target, smoothing in grid:
        input_type = "logits" if from_logits else "probs"
        problem = make_problem(input_type, "soft" if target == "soft" else target, seed=4)
        similarity, dense = similarity_forms(5)[form]
        labels = problem["labels"]
        if target == "onehot":
            labels = np.eye(5)[labels]
        ignore = -100 if target == "masked" else None
        loss = SimLoss(
            similarity,
            from_logits=from_logits,
            label_smoothing=smoothing,
            ignore_class=ignore,
            reduction=None,
            dtype="float64",
        )
        losses, grad = value_and_grad(
            lambda z, y=labels, f=loss: f(y, z), problem["scores"], problem["upstream"]
        )
        ref_z = torch.tensor(problem["scores"], requires_grad=True)
        keep = torch.as_tensor(problem["keep"])
        ref = reference_losses(
            ref_z,
            torch.as_tensor(labels),
            dense,
            input_type=input_type,
            label_smoothing=smoothing,
            keep=keep,
        )
        (ref_grad,) = torch.autograd.grad((ref * torch.as_tensor(problem["upstream"])).sum(), ref_z)
        case = f"{form}/{input_type}/{target}/{smoothing}"
        np.testing.assert_allclose(losses, ref.detach().numpy(), **TOL, err_msg=case)
        np.testing.assert_allclose(grad, ref_grad.numpy(), **TOL, err_msg=case)
        torch_z = torch.tensor(problem["scores"], requires_grad=True)
        torch_target = torch.as_tensor(labels)
        theirs = simloss.sim_loss(
            torch_z,
            torch_target,
            dense if form == "dense" else similarity,
            reduction="none",
            input_type=input_type,
            label_smoothing=smoothing,
        )
        theirs = torch.where(keep, theirs, 0.0)
        np.testing.assert_allclose(losses, theirs.detach().numpy(), **TOL, err_msg=case)


def check_identity_equals_keras_cross_entropy():
    """S = I: SparseCategoricalCrossentropy / CategoricalCrossentropy, every option, float32."""
    rng = np.random.default_rng(0)
    logits = (rng.normal(size=(12, 6)) * 2).astype("float32")
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, 6, 12)
    labels[[2, 7]] = 5
    sample_weight = rng.random(12).astype("float32")
    for from_logits, reduction, weighted, ignore in itertools.product(
        [True, False],
        ["sum_over_batch_size", "sum", "mean_with_sample_weight", None],
        [False, True],
        [None, 5],
    ):
        scores = logits if from_logits else probs
        kwargs = {"from_logits": from_logits, "reduction": reduction, "ignore_class": ignore}
        weight = sample_weight if weighted else None
        ours = SimLoss(np.eye(6), **kwargs)(labels, scores, sample_weight=weight)
        theirs = keras.losses.SparseCategoricalCrossentropy(**kwargs)(
            labels, scores, sample_weight=weight
        )
        np.testing.assert_allclose(
            numpy(ours), numpy(theirs), rtol=2e-6, atol=1e-6, err_msg=str(kwargs)
        )
    one_hot = np.eye(6, dtype="float32")[labels]
    for from_logits, smoothing in itertools.product([True, False], [0.0, 0.1]):
        scores = logits if from_logits else probs
        ours = SimLoss(np.eye(6), from_logits=from_logits, label_smoothing=smoothing)
        theirs = keras.losses.CategoricalCrossentropy(
            from_logits=from_logits, label_smoothing=smoothing
        )
        for y in (one_hot, labels):  # SimLoss takes both; Keras' smoothing needs one-hot
            np.testing.assert_allclose(
                numpy(ours(y, scores)), numpy(theirs(one_hot, scores)), rtol=2e-6
            )
    # gradients of the default reduction, from logits
    up = np.ones(1)
    g_ours = value_and_grad(
        lambda z: keras.ops.reshape(SimLoss(np.eye(6))(labels, z), (1,)), logits, up
    )[1]
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    g_ref = value_and_grad(lambda z: keras.ops.reshape(ce(labels, z), (1,)), logits, up)[1]
    np.testing.assert_allclose(g_ours, g_ref, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- stability
def check_confident_mistakes_and_vanishing_similar_mass_are_exact_in_float32():
    loss = SimLoss(np.eye(5), reduction=None)
    logits = np.array([[0.0, 0.0, 0.0, 0.0, 120.0]], "float32")
    assert float(numpy(loss(np.array([0]), logits))[0]) == 120.0
    assert float(numpy(loss(np.eye(5, dtype="float32")[[0]], logits))[0]) == 120.0
    for form, target in itertools.product(
        ["dense", "order", "sparse"], ["index", "onehot", "smooth"]
    ):
        similarity, dense = {
            "dense": (class_order(6, 0.1), class_order(6, 0.1, dtype=F64)),
            "order": (ClassOrder(6, 0.1), class_order(6, 0.1, dtype=F64)),
            "sparse": (SparseSimilarity.from_dense(torch.eye(6)), torch.eye(6, dtype=F64)),
        }[form]
        z = np.zeros((3, 6), "float32")
        z[:, 5], z[1, 2] = 200.0, 90.0
        labels = np.array([0, 1, 2])
        if target == "onehot":
            labels = np.eye(6, dtype="float32")[labels]
        smoothing = 0.1 if target == "smooth" else 0.0
        loss = SimLoss(similarity, label_smoothing=smoothing, reduction=None)
        losses, grad = value_and_grad(lambda v, f=loss, y=labels: f(y, v), z, np.ones(3))
        ref_z = torch.tensor(z, dtype=F64, requires_grad=True)
        ref = reference_losses(ref_z, torch.as_tensor(labels), dense, label_smoothing=smoothing)
        (ref_grad,) = torch.autograd.grad(ref.sum(), ref_z)
        case = f"{form}/{target}"
        assert np.isfinite(grad).all(), case
        np.testing.assert_allclose(losses, ref.detach().numpy(), rtol=1e-6, err_msg=case)
        np.testing.assert_allclose(grad, ref_grad.numpy(), atol=1e-6, err_msg=case)


def check_minus_inf_logits_and_zero_similarities_give_finite_gradients():
    for form in ("dense", "order", "sparse"):
        similarity, dense = similarity_forms(5)[form]
        z = np.array([[1.0, -np.inf, 0.5, -np.inf, 2.0], [0.0, -1.0, 300.0, 280.0, 1.0]])
        labels = np.array([0, 0])
        loss = SimLoss(similarity, reduction=None, dtype="float64")
        losses, grad = value_and_grad(lambda v, f=loss, y=labels: f(y, v), z, np.ones(2))
        ref_z = torch.tensor(z, requires_grad=True)
        ref = reference_losses(ref_z, torch.as_tensor(labels), dense)
        (ref_grad,) = torch.autograd.grad(ref.sum(), ref_z)
        assert np.isfinite(grad).all(), form
        np.testing.assert_allclose(losses, ref.detach().numpy(), **TOL, err_msg=form)
        np.testing.assert_allclose(grad, ref_grad.numpy(), **TOL, err_msg=form)


def check_ignored_rows_with_non_finite_logits_give_zero_loss_and_gradient():
    for bad in (np.inf, -np.inf, np.nan):
        z = np.array([[1.0, 2.0, 0.5], [bad, bad, 0.0]], "float32")
        loss = SimLoss(ClassOrder(3, 0.5), ignore_class=-1, label_smoothing=0.1, reduction="sum")
        value, grad = value_and_grad(
            lambda v, f=loss: keras.ops.reshape(f(np.array([1, -1]), v), (1,)), z, np.ones(1)
        )
        assert np.isfinite(value).all() and np.isfinite(grad).all(), bad
        np.testing.assert_array_equal(grad[1], 0.0)


# ---------------------------------------------------------------- precision
def check_low_precision_is_computed_in_float32_and_returned_in_its_dtype():
    rng = np.random.default_rng(1)
    logits = (rng.normal(size=(16, 7)) * 4).astype("float32")
    labels = rng.integers(0, 7, 16)
    for dtype in ("bfloat16", "float16"):
        low = keras.ops.cast(logits, dtype)
        ours = SimLoss(ClassOrder(7, 0.5), label_smoothing=0.1, reduction=None, dtype=dtype)(
            labels, low
        )
        wide = SimLoss(ClassOrder(7, 0.5), label_smoothing=0.1, reduction=None)(
            labels, keras.ops.cast(low, "float32")
        )
        assert keras.backend.standardize_dtype(ours.dtype) == dtype, ours.dtype
        np.testing.assert_array_equal(
            numpy(keras.ops.cast(ours, "float32")),
            numpy(keras.ops.cast(keras.ops.cast(wide, dtype), "float32")),
        )


def _abalone():
    from simloss.experiments.data.abalone import load_abalone

    data = load_abalone(split_seed=0)
    x = data.standardize(data.train.inputs).numpy()
    return x, data.train.targets.numpy()


def _model(num_features: int, num_classes: int):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((num_features,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(num_classes),
        ]
    )


def check_mixed_precision_policies_train():
    x, y = _abalone()
    for policy in ("mixed_float16", "mixed_bfloat16"):
        keras.mixed_precision.set_dtype_policy(policy)
        try:
            model = _model(x.shape[1], 17)
            model.compile(optimizer="adam", loss=SimLoss(ClassOrder(17, 0.5)))
            history = model.fit(x[:512], y[:512], epochs=2, batch_size=128, verbose=0)
            losses = history.history["loss"]
            assert np.isfinite(losses).all(), (policy, losses)
            pred = model(x[:8])
            assert keras.backend.standardize_dtype(pred.dtype) == policy.split("_")[1], pred.dtype
            value = SimLoss(ClassOrder(17, 0.5))(y[:8], pred)
            assert keras.backend.standardize_dtype(value.dtype) == "float32", value.dtype
        finally:
            keras.mixed_precision.set_dtype_policy("float32")


# ---------------------------------------------------------------- training, saving
def check_fit_on_abalone_lowers_the_loss_below_the_prior():
    x, y = _abalone()
    S = class_order(17, 0.5)
    model = _model(x.shape[1], 17)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=SimLoss(S))
    first = float(numpy(SimLoss(S)(y, model.predict(x, verbose=0))))
    history = model.fit(x, y, epochs=3, batch_size=128, verbose=0)
    last = history.history["loss"][-1]
    counts = np.bincount(y, minlength=17) / len(y)
    prior = float(numpy(SimLoss(S)(y, np.log(counts)[None].repeat(len(y), 0).astype("float32"))))
    assert last < first and last < prior, (first, last, prior)


def check_fit_with_one_hot_and_probability_labels_equals_categorical_cross_entropy():
    """S = I, float64: ``model.fit`` with a fresh loss equals Keras' CategoricalCrossentropy.

    Keras first calls a compiled loss symbolically (on PyTorch, with tensors
    on the ``meta`` device); nothing made in that call may reach the real
    steps. One-hot, probability and smoothed labels; the losses of every
    epoch and the trained weights agree. A class order equals its dense S.
    """
    keras.config.set_floatx("float64")
    try:
        rng = np.random.default_rng(3)
        x = rng.normal(size=(32, 5))
        one_hot = np.eye(4)[rng.integers(0, 4, 32)]
        probs = rng.dirichlet(np.ones(4), 32)

        def fit(loss, y):
            model = _model(5, 4)
            model.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss)
            history = model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
            return history.history["loss"], model.get_weights()

        for case, y, smoothing in [
            ("one-hot", one_hot, 0.0),
            ("probabilities", probs, 0.0),
            ("one-hot, smoothing 0.1", one_hot, 0.1),
        ]:
            ours = fit(SimLoss(np.eye(4), label_smoothing=smoothing), y)
            theirs = fit(
                keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing),
                y,
            )
            assert np.isfinite(ours[0]).all(), (case, ours[0])
            np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-10, err_msg=case)
            for mine, reference in zip(ours[1], theirs[1], strict=True):
                np.testing.assert_allclose(mine, reference, rtol=1e-9, atol=1e-12, err_msg=case)
        for y in (one_hot, probs):
            order = fit(SimLoss(ClassOrder(4, 0.5)), y)
            dense = fit(SimLoss(class_order(4, 0.5, dtype=F64).numpy()), y)
            assert np.isfinite(order[0]).all(), order[0]
            np.testing.assert_allclose(order[0], dense[0], rtol=1e-10)
    finally:
        keras.config.set_floatx("float32")


def check_saved_model_reloads_with_its_loss():
    x, y = _abalone()
    x, y = x[:64], y[:64]
    for similarity in (
        class_order(17, 0.5).numpy(),
        ClassOrder(17, 0.5),
        SparseSimilarity.from_dense(class_order(17, 0.1)),
    ):
        loss = SimLoss(similarity, label_smoothing=0.1, ignore_class=16)
        config = loss.get_config()
        json.dumps(config)  # JSON-ready
        again = SimLoss.from_config(config)
        pred = np.random.default_rng(0).normal(size=(64, 17)).astype("float32")
        np.testing.assert_array_equal(numpy(again(y, pred)), numpy(loss(y, pred)))
        model = _model(x.shape[1], 17)
        model.compile(optimizer="adam", loss=loss)
        model.fit(x, y, epochs=1, verbose=0)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.keras"
            model.save(path)
            reloaded = keras.saving.load_model(path)
        assert isinstance(reloaded.loss, SimLoss), type(reloaded.loss)
        np.testing.assert_allclose(
            reloaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-6
        )


# ---------------------------------------------------------------- errors
def check_bad_inputs_give_one_line_errors():
    bad_similarities = {
        "range": np.array([[1.0, 1.5], [0.5, 1.0]]),
        "diagonal": np.array([[0.9, 0.5], [0.5, 1.0]]),
        "nan": np.array([[1.0, np.nan], [0.5, 1.0]]),
        "integer": np.eye(2, dtype=np.int64),
        "kind": [[1.0, 0.0], [0.0, 1.0]],
    }
    for case, bad in bad_similarities.items():
        try:
            simloss.sim_loss(torch.zeros(1, 2), torch.tensor([0]), bad)
        except (TypeError, ValueError) as exc:
            expected = (type(exc), str(exc))
        try:
            SimLoss(bad)
        except (TypeError, ValueError) as exc:
            assert (type(exc), str(exc)) == expected, (case, exc, expected)
        else:
            raise AssertionError(f"{case}: no error")
    # The backend's own array (a jnp array on JAX) is taken as numpy, and checked the same.
    S = class_order(4, 0.5).numpy()
    z = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    np.testing.assert_array_equal(
        numpy(SimLoss(keras.ops.convert_to_tensor(S))(np.array([0, 1, 3]), z)),
        numpy(SimLoss(S)(np.array([0, 1, 3]), z)),
    )
    try:
        SimLoss(keras.ops.convert_to_tensor(bad_similarities["range"]))
    except ValueError as exc:
        assert "values in [0, 1]" in str(exc), exc
    else:
        raise AssertionError("a backend array with 1.5 was accepted")
    logits = np.zeros((2, 3), "float32")
    cases = [
        (lambda: SimLoss(np.eye(4))(np.array([0, 1]), logits), ValueError, "with 4 classes"),
        (lambda: SimLoss(np.eye(3))(np.array([0, 3]), logits), ValueError, "values in [0, 3)"),
        (
            lambda: SimLoss(np.eye(3))(np.zeros((2, 2)), logits),
            ValueError,
            "Expected `y_true` of shape",
        ),
        (
            lambda: SimLoss(np.eye(3), from_logits=False)(np.array([0, 1]), logits),
            ValueError,
            "sum to 1",
        ),
        (
            lambda: SimLoss(np.eye(3), label_smoothing=2.0),
            ValueError,
            "`label_smoothing` in [0, 1]",
        ),
        (lambda: SimLoss(np.eye(3), from_logits="yes"), TypeError, "`from_logits` to be a bool"),
        (lambda: SimLoss(np.eye(3), ignore_class=1.5), TypeError, "`ignore_class` to be an int"),
        (lambda: SimLoss(np.ones((3, 2))), ValueError, "square matrix"),
        (
            lambda: SimLoss(np.eye(3))(np.array([0]), logits),
            ValueError,
            "Expected `y_true` of shape (2,) (integer labels) or (2, 3) (one-hot or "
            "probabilities) for `y_pred` of shape (2, 3), but found (1,)",
        ),
        (
            lambda: SimLoss(np.eye(3))(np.eye(3)[[0, 1, 2]], logits),
            ValueError,
            "but found (3, 3)",
        ),
        (
            lambda: SimLoss(np.eye(3))(np.array([0, 1]), logits, sample_weight=np.ones(3)),
            ValueError,
            "Expected `sample_weight` of shape (2,)",
        ),
        (
            lambda: SimLoss(np.eye(3))(np.array([0.0, 1.7]), logits),
            ValueError,
            "Expected `y_true` (class indices) to be whole numbers, but found 1.7 at (1,)",
        ),
        (
            lambda: SimLoss(np.eye(3))(-np.eye(3)[[0, 1]], logits),
            ValueError,
            "Expected `y_true` (one-hot or class probabilities) to be finite and >= 0, but found -1",
        ),
        (
            lambda: SimLoss(np.eye(3), ignore_class=0)(np.eye(3)[[0, 1]], logits),
            ValueError,
            "integer labels",
        ),
    ]
    for call, error, message in cases:
        try:
            call()
        except error as exc:
            assert message in str(exc) and "\n" not in str(exc), (message, str(exc))
        else:
            raise AssertionError(f"no error: {message}")


def check_doctests():
    import simloss.keras.loss

    result = doctest.testmod(simloss.keras.loss, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result


def main() -> None:
    checks = {name: fn for name, fn in globals().items() if name.startswith("check_")}
    results: dict[str, str | None] = {}
    for name, fn in checks.items():
        try:
            fn()
            results[name] = None
        except Exception:  # reported to the test, which fails with it
            results[name] = traceback.format_exc()
    Path(sys.argv[1]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
