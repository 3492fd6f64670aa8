"""SimLoss for Keras 3 (extra ``simloss[keras]``): a ``keras.losses.Loss`` on every backend.

* :class:`SimLoss`: ``SimLoss(similarity, from_logits=True, ...)`` with integer
  or one-hot labels, ``sample_weight``, Keras reductions, label smoothing,
  ``ignore_class``, and ``get_config``/``from_config`` (registered as
  ``simloss>SimLoss``, so a saved model reloads).

Keras picks its backend from ``KERAS_BACKEND`` before it is first imported
(``jax``, ``torch`` or ``tensorflow``). The similarity is built once with
:mod:`simloss.similarity` and validated with the PyTorch loss's checks.
"""

import os

from simloss._optional import require

try:
    require("keras", "keras")
except ImportError as exc:
    backend = os.environ.get("KERAS_BACKEND", "tensorflow (the default)")
    raise ImportError(
        f"{exc}; Keras' backend is {backend}: set KERAS_BACKEND to jax, torch or tensorflow "
        "(one that is installed) before importing keras"
    ) from exc

from simloss.keras.loss import SimLoss

__all__ = ["SimLoss"]
