"""The `hybrid` query (neural-search): 1-5 sub-queries run separately, their scores fused by a search pipeline.

Only the top level of a search runs it (engine/hybrid_search.py); anywhere else it is rejected, as in OpenSearch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import tantivy

from mlsearch.engine.query import dsl
from mlsearch.engine.query.compile import Context, as_filter, compile_query, compiles
from mlsearch.errors import IllegalArgumentError, ParsingError

MAX_SUB_QUERIES = 5
MAX_PAGINATION_DEPTH = 10000
_KEYS = {"queries", "filter", "pagination_depth", "_name"}


@dataclass(frozen=True, slots=True)
class Hybrid(dsl.Query):
    queries: tuple[dsl.Query, ...]
    filter: dsl.Query | None = None
    pagination_depth: int | None = None


@dsl.query_parser("hybrid")
def parse_hybrid(body: Any) -> dsl.Query:
    if not isinstance(body, dict):
        raise ParsingError("[hybrid] query malformed, no start_object after query name")
    for key in body:
        if key == "boost":
            raise ParsingError("[hybrid] query does not support [boost]")
        if key not in _KEYS:
            raise ParsingError(f"[hybrid] query does not support [{key}]")
    queries = body.get("queries")
    if not isinstance(queries, list) or not queries:
        raise ParsingError("[hybrid] requires 'queries' field with at least one clause")
    if len(queries) > MAX_SUB_QUERIES:
        raise ParsingError("Number of sub-queries exceeds maximum supported by [hybrid] query")
    raw_filter = body.get("filter")
    if raw_filter is not None and not isinstance(raw_filter, dict):
        raise ParsingError("[hybrid] filter must be a single query object")
    return Hybrid(
        queries=tuple(dsl.parse_query(q) for q in queries),
        filter=None if raw_filter is None else dsl.parse_query(raw_filter),
        pagination_depth=_depth(body.get("pagination_depth")),
    )


def _depth(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParsingError("[hybrid] failed to parse field [pagination_depth]")
    if value < 1:
        raise IllegalArgumentError("pagination_depth should be greater than 0")
    if value > MAX_PAGINATION_DEPTH:
        raise IllegalArgumentError(
            f"pagination_depth should be less than or equal to index.max_result_window setting [{MAX_PAGINATION_DEPTH}]"
        )
    return value


def sub_query(query: Hybrid, position: int, ctx: Context) -> tantivy.Query:
    """One sub-query, restricted by the hybrid filter without changing its scores."""
    compiled = compile_query(query.queries[position], ctx)
    if query.filter is None:
        return compiled
    return tantivy.Query.boolean_query(
        [(tantivy.Occur.Must, compiled), (tantivy.Occur.Must, as_filter(compile_query(query.filter, ctx)))]
    )


def union_query(query: Hybrid, ctx: Context) -> tantivy.Query:
    """Every document some sub-query matches (totals, aggregations, `_count`)."""
    clauses = [(tantivy.Occur.Should, compile_query(q, ctx)) for q in query.queries]
    matched = tantivy.Query.boolean_query(clauses)
    if query.filter is None:
        return matched
    return tantivy.Query.boolean_query(
        [(tantivy.Occur.Must, matched), (tantivy.Occur.Must, as_filter(compile_query(query.filter, ctx)))]
    )


@compiles(Hybrid)
def _nested(query: Hybrid, ctx: Context) -> tantivy.Query:
    raise IllegalArgumentError("hybrid query must be a top level query and cannot be wrapped into other queries")
