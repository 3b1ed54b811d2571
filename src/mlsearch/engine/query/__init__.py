"""The query DSL: JSON -> frozen dataclasses (dsl.py) -> tantivy queries for one index (compile.py)."""

# Imported to register the k-NN, neural_sparse and rank_feature parsers and compilers
from mlsearch.engine.query import knn, neural_sparse, script_score  # noqa: F401
