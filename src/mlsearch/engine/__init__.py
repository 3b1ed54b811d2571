"""The indices of one node: SQLite store, tantivy lexical projection, mappings, query DSL and aggregations.

Knows nothing of HTTP, pydantic or ML."""
