"""Similarity matrices: validation, builders from task knowledge, structured forms.

Every builder returns a float32 (C, C) tensor that passes
:func:`validate_similarity`; :class:`ClassOrder` and :class:`SparseSimilarity`
give the loss the same values without a dense matrix. Builders: class order
(:func:`class_order`), class values (:func:`from_values`), class vectors and
class names (:func:`from_embeddings`, :func:`class_name_vectors`), hierarchies
(:func:`from_hierarchy`, :func:`from_superclasses`); transforms:
:func:`lower_bound` (Eq. 3) and :func:`to_probability_matrix`.

Around them, one module per job: :mod:`~simloss.similarity.readers` (class
names, values and hierarchies from files), :mod:`~simloss.similarity.summary`
(a text summary with nearest neighbours), :mod:`~simloss.similarity.heatmap`
(display orders and the figure, ``plot`` extra) and
:mod:`~simloss.similarity.export` (``.npy``/``.csv``/``.png``, written atomically).
"""

from simloss.similarity.embeddings import class_name_vectors, from_embeddings
from simloss.similarity.export import save_heatmap, save_similarity
from simloss.similarity.heatmap import cluster_order, heatmap_figure
from simloss.similarity.hierarchy import (
    depth_first_order,
    from_hierarchy,
    from_superclasses,
    hierarchy_edges,
    hierarchy_leaves,
)
from simloss.similarity.operator import SimilarityOperator, SimilarityRows
from simloss.similarity.order import class_order
from simloss.similarity.readers import (
    HierarchyFile,
    read_class_names,
    read_class_values,
    read_edge_list,
    read_fine_to_coarse,
    read_hierarchy,
    read_node_names,
    read_wordnet_hierarchy,
)
from simloss.similarity.structured import ClassOrder, SparseSimilarity
from simloss.similarity.summary import nearest_neighbours, similarity_summary
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
    "cluster_order",
    "depth_first_order",
    "from_embeddings",
    "from_hierarchy",
    "from_superclasses",
    "from_values",
    "heatmap_figure",
    "hierarchy_edges",
    "hierarchy_leaves",
    "lower_bound",
    "nearest_neighbours",
    "read_class_names",
    "read_class_values",
    "read_edge_list",
    "read_fine_to_coarse",
    "read_hierarchy",
    "read_node_names",
    "read_wordnet_hierarchy",
    "save_heatmap",
    "save_similarity",
    "similarity_summary",
    "to_probability_matrix",
    "validate_similarity",
]
