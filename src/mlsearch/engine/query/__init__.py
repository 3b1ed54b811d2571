"""The query DSL: JSON -> frozen dataclasses (dsl.py) -> tantivy queries for one index (compile.py)."""

from mlsearch.engine.query import knn  # noqa: F401  (registers the knn query's parser and compiler)
