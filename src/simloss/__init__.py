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
