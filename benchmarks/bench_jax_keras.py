"""Forward + backward time of the JAX and Keras SimLoss against their frameworks' cross-entropy.

Baselines, measured in the same run at the shapes of ``bench_loss.py``:

* JAX: ``optax.softmax_cross_entropy_with_integer_labels``; every loss is
  ``jax.jit(jax.grad(lambda z: loss(z, y).mean()))``.
* Keras: ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)`` on
  the same backend (one child process per backend: jax, torch, and tensorflow
  where installed); the gradient of the reduced loss in the logits (jitted on
  JAX, ``tf.function`` on TensorFlow, eager autograd on PyTorch).

Rows: ``dense-order`` (a dense class-order S, r = 0.7, up to 2048 classes),
``ClassOrder`` (``simloss.ClassOrder(C, 0.7)``, no C x C matrix) and
``dense-random`` (random S with a unit diagonal, up to 2048 classes). Each
cell is the loss's median time over interleaved rounds divided by the
baseline's; the measurement is repeated (``--repeats``) and the cell shows the
minimum and maximum ratio. Target: <= 1.5x at (4096, 100) and above.

Run: python benchmarks/bench_jax_keras.py [--repeats 3] [--rounds 15] [--only jax|keras]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench_loss import SHAPES

R = 0.7
DENSE_LIMIT = 2048  # classes; above, only ClassOrder (a dense S would be a huge constant)
HERE = Path(__file__).resolve().parent


def random_similarity(num_classes: int) -> np.ndarray:
    S = np.random.default_rng(1).random((num_classes, num_classes), dtype=np.float32)
    np.fill_diagonal(S, 1.0)
    return S


def similarities(num_classes: int) -> dict[str, object]:
    from simloss import ClassOrder
    from simloss.similarity import class_order

    out: dict[str, object] = {}
    if num_classes <= DENSE_LIMIT:
        out["dense-order"] = class_order(num_classes, R).numpy()
    out["ClassOrder"] = ClassOrder(num_classes, R)
    if num_classes <= DENSE_LIMIT:
        out["dense-random"] = random_similarity(num_classes)
    return out


def medians(steps: dict[str, Callable[[], None]], rounds: int, baseline: str) -> dict[str, float]:
    """Median seconds per call of each step, interleaved in rotating order (blocks of ~5 ms)."""
    names = list(steps)
    for name in names:  # warm-up (and compilation)
        for _ in range(3):
            steps[name]()
    start = time.perf_counter()
    for _ in range(5):
        steps[baseline]()
    calls = max(1, min(200, round(5e-3 / ((time.perf_counter() - start) / 5))))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            start = time.perf_counter()
            for _ in range(calls):
                steps[name]()
            samples[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(values) for name, values in samples.items()}


def inputs(n: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((n, num_classes), dtype=np.float32) * 2).astype(np.float32)
    return logits, rng.integers(0, num_classes, n)


def jax_steps(n: int, num_classes: int) -> tuple[dict[str, Callable[[], None]], str]:
    import jax
    import jax.numpy as jnp
    import optax

    import simloss.jax as sj

    logits, labels = inputs(n, num_classes)
    z, y = jnp.asarray(logits), jnp.asarray(labels)

    def timed(loss: Callable[[jax.Array], jax.Array]) -> Callable[[], None]:
        step = jax.jit(jax.grad(lambda v: loss(v).mean()))
        return lambda: step(z).block_until_ready()

    steps = {"optax CE": timed(lambda v: optax.softmax_cross_entropy_with_integer_labels(v, y))}
    for name, S in similarities(num_classes).items():
        steps[name] = timed(lambda v, S=S: sj.sim_loss(v, y, S, validate=False))
    return steps, "optax CE"


def keras_steps(n: int, num_classes: int) -> tuple[dict[str, Callable[[], None]], str]:
    import keras

    from simloss.keras import SimLoss

    backend = keras.backend.backend()
    logits, labels = inputs(n, num_classes)
    losses = {"Keras SCCE": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}
    for name, S in similarities(num_classes).items():
        losses[name] = SimLoss(S)

    def timed(loss: Callable) -> Callable[[], None]:
        if backend == "jax":
            import jax

            y = jax.numpy.asarray(labels)
            z = jax.numpy.asarray(logits)
            step = jax.jit(jax.grad(lambda v: loss(y, v)))
            return lambda: step(z).block_until_ready()
        if backend == "torch":
            import torch

            y = torch.as_tensor(labels)
            z = torch.tensor(logits, requires_grad=True)

            def torch_step() -> None:
                z.grad = None
                loss(y, z).backward()

            return torch_step
        import tensorflow as tf

        y, z = tf.constant(labels), tf.Variable(logits)

        @tf.function
        def tf_step() -> tf.Tensor:
            with tf.GradientTape() as tape:
                value = loss(y, z)
            return tape.gradient(value, z)

        return lambda: tf_step().numpy() and None

    return {name: timed(loss) for name, loss in losses.items()}, "Keras SCCE"


def measure(kind: str, repeats: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    """``{shape: {row: [ratio per repeat]}}`` plus the baseline's ms under the row ``ms``."""
    make = jax_steps if kind == "jax" else keras_steps
    out: dict[str, dict[str, list[float]]] = {}
    for n, num_classes in SHAPES:
        steps, baseline = make(n, num_classes)
        cell: dict[str, list[float]] = {"ms": []}
        for _ in range(repeats):
            times = medians(steps, rounds, baseline)
            cell["ms"].append(times[baseline] * 1e3)
            for name, seconds in times.items():
                if name != baseline:
                    cell.setdefault(name, []).append(seconds / times[baseline])
        out[f"{n}x{num_classes}"] = cell
        print(f"  measured {kind} {n}x{num_classes}", file=sys.stderr, flush=True)
    return out


def print_table(title: str, baseline: str, results: dict[str, dict[str, list[float]]]) -> None:
    shapes = list(results)
    width = 12
    print(f"\n{title}: time / {baseline}'s, min-max over repeats")
    print(f"{'shape':>14} " + " ".join(f"{s:>{width}}" for s in shapes))
    print(
        f"{baseline + ' ms':>14} "
        + " ".join(f"{min(results[s]['ms']):>{width}.3f}" for s in shapes)
    )
    rows = [r for r in ("dense-order", "ClassOrder", "dense-random")]
    for row in rows:
        cells = []
        for s in shapes:
            ratios = results[s].get(row)
            cells.append("-" if not ratios else f"{min(ratios):.2f}-{max(ratios):.2f}")
        print(f"{row:>14} " + " ".join(f"{c:>{width}}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--only", choices=["jax", "keras"])
    parser.add_argument("--child", help=argparse.SUPPRESS)  # a Keras backend's JSON output file
    args = parser.parse_args()
    if args.child:
        Path(args.child).write_text(json.dumps(measure("keras", args.repeats, args.rounds)))
        return
    import importlib.util

    import jax

    print(f"jax {jax.__version__}, CPU threads as the machine gives them")
    if args.only != "keras":
        print_table("JAX (jit, fwd+bwd)", "optax CE", measure("jax", args.repeats, args.rounds))
    if args.only == "jax":
        return
    for backend in ("jax", "torch", "tensorflow"):
        if importlib.util.find_spec(backend) is None:
            print(f"\nKeras {backend}: not installed, skipped")
            continue
        out = HERE / f".keras-{backend}.json"
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(out),
                "--repeats",
                str(args.repeats),
                "--rounds",
                str(args.rounds),
            ],
            env=env,
            check=True,
        )
        results = json.loads(out.read_text())
        out.unlink()
        print_table(f"Keras {backend} backend (fwd+bwd)", "Keras SCCE", results)


if __name__ == "__main__":
    main()
