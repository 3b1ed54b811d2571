"""The query DSL: JSON -> frozen dataclasses (dsl.py) -> tantivy queries for one index (compile.py)."""

# Imported to register their parsers and compilers.
from mlsearch.engine.query import hybrid, knn, nested, neural_sparse, script_score, terms_set  # noqa: F401
