"""SimLoss for JAX (extra ``simloss[jax]``): optax-style pure functions over arrays.

* :func:`sim_loss`: per-example SimLoss with integer or probability labels, a
  ``where`` mask, label smoothing and three input types; the same values and
  gradients as :func:`simloss.sim_loss` with ``reduction="none"``;
* :func:`weighted_logsumexp`: its exact core, ``log sum_c w_c exp(z_c)`` with a
  ``jax.custom_jvp``.

The similarity is built once with :mod:`simloss.similarity` (numpy arrays, or
the structured :class:`simloss.ClassOrder` and :class:`simloss.SparseSimilarity`)
and validated with the PyTorch loss's checks and messages.

Example:
    >>> import jax, jax.numpy as jnp
    >>> import simloss.jax
    >>> from simloss import ClassOrder
    >>> def loss(logits, labels):
    ...     return simloss.jax.sim_loss(logits, labels, ClassOrder(5, 0.5)).mean()
    >>> grads = jax.jit(jax.grad(loss))(jnp.zeros((2, 5)), jnp.array([0, 4]))
    >>> grads.shape
    (2, 5)
"""

from simloss._optional import require

require("jax", "jax")

from simloss.jax._logsumexp import weighted_logsumexp  # noqa: E402
from simloss.jax.functional import sim_loss  # noqa: E402

__all__ = ["sim_loss", "weighted_logsumexp"]
