"""Aggregations: parsed from the request, computed by tantivy's aggregation engine on fast-field columns (with
per-bucket queries where tantivy has no equivalent), rendered and merged across indices as OpenSearch does."""

from mlsearch.engine.aggs.merging import merge
from mlsearch.engine.aggs.runner import run

__all__ = ["merge", "run"]
