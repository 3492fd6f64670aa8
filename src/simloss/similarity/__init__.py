"""Similarity matrices: validation, class order and structured forms.

Every builder returns a float32 (C, C) tensor that passes
:func:`validate_similarity`; :class:`ClassOrder` and :class:`SparseSimilarity`
give the loss the same values without a dense matrix.
"""

from simloss.similarity.order import class_order
from simloss.similarity.structured import ClassOrder, SparseSimilarity
from simloss.similarity.validation import validate_similarity

__all__ = [
    "ClassOrder",
    "SparseSimilarity",
    "class_order",
    "validate_similarity",
]
