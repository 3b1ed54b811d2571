"""Entry point for one index: parse the request's aggregations, run them, enforce `search.max_buckets`."""

from __future__ import annotations

from typing import Any

import tantivy

# The aggregation kinds register themselves on import.
from mlsearch.engine.aggs import buckets, metrics, queries  # noqa: F401
from mlsearch.engine.aggs._core import Env, run_level
from mlsearch.engine.aggs.spec import MAX_BUCKETS, TooManyBucketsError, count_buckets, parse
from mlsearch.engine.index import Index
from mlsearch.engine.query.compile import Context


def run(index: Index, ctx: Context, query: tantivy.Query, spec: dict[str, Any]) -> dict[str, Any]:
    """The `aggregations` of a search over one index."""
    nodes = parse(spec)
    results = run_level(Env(index, ctx, index.lexical.searcher()), query, nodes)
    total = count_buckets(results)
    if total > MAX_BUCKETS:
        raise TooManyBucketsError(total)
    return dict(results)
