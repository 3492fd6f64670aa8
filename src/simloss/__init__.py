"""simloss: similarity-aware classification losses (Kobs et al., ISMIS 2020).

The public API:

* :func:`sim_loss` and :class:`SimLoss`: the loss, a drop-in for
  ``F.cross_entropy`` and ``nn.CrossEntropyLoss``;
* :class:`ClassOrder` and :class:`SparseSimilarity`: similarities without a
  dense (C, C) matrix, and :class:`SimilarityOperator`, the base class that
  lets a new structured similarity plug into the loss and the metrics;
* :mod:`simloss.similarity`: builders that turn knowledge into a matrix;
* :mod:`simloss.metrics`: metrics that measure how bad the mistakes are;
* :mod:`simloss.peers`: soft labels and hierarchical cross-entropy
  (Bertinetto et al., CVPR 2020), peers of SimLoss for related classes.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ClassOrder",
    "SimLoss",
    "SimilarityOperator",
    "SparseSimilarity",
    "__version__",
    "class_order",
    "metrics",
    "peers",
    "sim_loss",
    "similarity",
    "validate_similarity",
]

if TYPE_CHECKING:
    from simloss import metrics, peers, similarity
    from simloss.functional import sim_loss
    from simloss.loss import SimLoss
    from simloss.similarity import (
        ClassOrder,
        SimilarityOperator,
        SparseSimilarity,
        class_order,
        validate_similarity,
    )

#: Where each public name lives. Imported on first use (PEP 562), so that
#: ``import simloss.cli`` reaches the command line's handlers (and its one-line
#: Ctrl-C message) before torch is imported.
_HOMES = {
    "sim_loss": "simloss.functional",
    "SimLoss": "simloss.loss",
    "ClassOrder": "simloss.similarity",
    "SimilarityOperator": "simloss.similarity",
    "SparseSimilarity": "simloss.similarity",
    "class_order": "simloss.similarity",
    "validate_similarity": "simloss.similarity",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    elif not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f"{__name__}.{name}")  # a submodule: simloss.metrics
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
