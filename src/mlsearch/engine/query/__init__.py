"""The query DSL: JSON -> frozen dataclasses (dsl.py) -> tantivy queries for one index (compile.py)."""

from mlsearch.engine.query import hybrid, knn, script_score  # noqa: F401  (register parsers and compilers)
