"""Similarity matrices: validation, builders from task knowledge, structured forms.

Every builder returns a float32 (C, C) tensor that passes
:func:`validate_similarity`; :class:`ClassOrder` and :class:`SparseSimilarity`
give the loss the same values without a dense matrix. Builders: class order
(:func:`class_order`), class values (:func:`from_values`), class vectors and
class names (:func:`from_embeddings`, :func:`class_name_vectors`), hierarchies
(:func:`from_hierarchy`, :func:`from_superclasses`); transforms:
:func:`lower_bound` (Eq. 3) and :func:`to_probability_matrix`.
"""

from simloss.similarity.embeddings import class_name_vectors, from_embeddings
from simloss.similarity.hierarchy import (
    HierarchyFile,
    depth_first_order,
    from_hierarchy,
    from_superclasses,
    hierarchy_leaves,
    read_edge_list,
    read_fine_to_coarse,
    read_node_names,
    read_wordnet_hierarchy,
)
from simloss.similarity.operator import SimilarityOperator, SimilarityRows
from simloss.similarity.order import class_order
from simloss.similarity.structured import ClassOrder, SparseSimilarity
from simloss.similarity.transforms import lower_bound, to_probability_matrix
from simloss.similarity.validation import validate_similarity
from simloss.similarity.values import from_values

__all__ = [
    "ClassOrder",
    "HierarchyFile",
    "SimilarityOperator",
    "SimilarityRows",
    "SparseSimilarity",
    "class_name_vectors",
    "class_order",
    "depth_first_order",
    "from_embeddings",
    "from_hierarchy",
    "from_superclasses",
    "from_values",
    "hierarchy_leaves",
    "lower_bound",
    "read_edge_list",
    "read_fine_to_coarse",
    "read_node_names",
    "read_wordnet_hierarchy",
    "to_probability_matrix",
    "validate_similarity",
]
