"""SimLoss for Keras 3 (extra ``simloss[keras]``): a ``keras.losses.Loss`` on every backend.

* :class:`SimLoss`: ``SimLoss(similarity, from_logits=True, ...)`` with integer
  or one-hot labels, ``sample_weight``, Keras reductions, label smoothing,
  ``ignore_class``, and ``get_config``/``from_config`` (registered as
  ``simloss>SimLoss``, so a saved model reloads).

Keras picks its backend from ``KERAS_BACKEND`` before it is first imported
(``jax``, ``torch`` or ``tensorflow``; unset, TensorFlow or the one in
``~/.keras/keras.json``). torch comes with simloss: ``KERAS_BACKEND=torch``
needs nothing more. The similarity is built once with :mod:`simloss.similarity`
and validated with the PyTorch loss's checks.
"""

import importlib.util
import os

from simloss._optional import require

if importlib.util.find_spec("keras") is None:
    require("keras", "keras")  # raises, naming the extra
try:
    import keras  # noqa: F401  (binds the backend)
except ImportError as exc:
    # Keras is installed; what is missing is the backend it was told (or defaulted) to use.
    backend = (
        os.environ.get("KERAS_BACKEND") or "tensorflow (Keras' default: KERAS_BACKEND is unset)"
    )
    raise ImportError(
        f"Keras is installed but its backend could not be imported ({exc}); the backend is "
        f"{backend}: set KERAS_BACKEND=torch (torch comes with simloss) or KERAS_BACKEND=jax "
        "(pip install 'simloss[jax]') before keras is first imported"
    ) from exc

from simloss.keras.loss import SimLoss

__all__ = ["SimLoss"]
