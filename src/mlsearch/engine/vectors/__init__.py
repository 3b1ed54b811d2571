"""Vectors of knn_vector fields: faiss segments with live bitmaps, the index's vector projection, merges."""

from mlsearch.engine.vectors.field import FieldSpec, FieldVectors
from mlsearch.engine.vectors.projection import VectorIndex
from mlsearch.engine.vectors.segment import SearchOptions, Segment
from mlsearch.engine.vectors.spaces import SPACE_TYPES, Space, space

__all__ = ["SPACE_TYPES", "FieldSpec", "FieldVectors", "SearchOptions", "Segment", "Space", "VectorIndex", "space"]
