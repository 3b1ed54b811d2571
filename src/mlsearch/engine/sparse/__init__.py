"""Feature postings of rank_features / rank_feature fields: segments, the index's sparse projection, scoring."""

from mlsearch.engine.sparse.postings import SINGLE, FieldPostings, SparseSegment, lucene_weights, top
from mlsearch.engine.sparse.projection import SparseIndex

__all__ = ["SINGLE", "FieldPostings", "SparseIndex", "SparseSegment", "lucene_weights", "top"]
