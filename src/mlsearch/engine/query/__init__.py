"""The query DSL: JSON -> frozen dataclasses (dsl.py) -> tantivy queries for one index (compile.py)."""

from mlsearch.engine.query import knn, script_score  # noqa: F401  (register the k-NN queries' parsers and compilers)
