"""Aggregations defined by queries rather than columns: filter, filters and top_hits."""

from __future__ import annotations

from typing import Any

import tantivy

from mlsearch.engine import search
from mlsearch.engine.aggs._core import Env, Scope, aggregation, count, narrowed, run_level
from mlsearch.engine.aggs.spec import Node, Result
from mlsearch.engine.query.compile import compile_query
from mlsearch.engine.query.dsl import parse_query
from mlsearch.engine.source_filter import SourceFilter
from mlsearch.errors import ParsingError


def _compiled(env: Env, spec: Any) -> tantivy.Query:
    return compile_query(parse_query(spec), env.ctx)


def _bucket(env: Env, query: tantivy.Query, node: Node) -> dict[str, Any]:
    return {"doc_count": count(env, query), **run_level(env, query, node.subs)}


@aggregation("filter")
def render_filter(env: Env, scope: Scope, node: Node, raw: dict[str, Any] | None) -> Result:
    return Result(node, _bucket(env, narrowed(scope(), _compiled(env, node.params)), node))


@aggregation("filters")
def render_filters(env: Env, scope: Scope, node: Node, raw: dict[str, Any] | None) -> Result:
    spec = node.params.get("filters")
    if not isinstance(spec, dict | list):
        raise ParsingError(f"[filters] must be an object or an array in [{node.name}]")
    named = sorted(spec.items()) if isinstance(spec, dict) else list(enumerate(spec))
    queries = [(name, _compiled(env, query)) for name, query in named]
    buckets = [(name, _bucket(env, narrowed(scope(), q), node)) for name, q in queries]
    other_key = node.params.get("other_bucket_key")
    if node.params.get("other_bucket") or other_key is not None:
        rest = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, tantivy.Query.all_query())] + [(tantivy.Occur.MustNot, q) for _, q in queries]
        )
        buckets.append((other_key or "_other_", _bucket(env, narrowed(scope(), rest), node)))
    if isinstance(spec, dict):
        return Result(node, {"buckets": dict(buckets)})
    return Result(node, {"buckets": [b for _, b in buckets]})


@aggregation("top_hits")
def render_top_hits(env: Env, scope: Scope, node: Node, raw: dict[str, Any] | None) -> Result:
    params = node.params
    size, offset = int(params.get("size", 3)), int(params.get("from", 0))
    req = search.SearchRequest(
        size=size,
        from_=offset,
        sort=search.parse_sort(params.get("sort")),
        source=SourceFilter.parse(params.get("_source")),
        version=bool(params.get("version", False)),
    )
    # The search module's collection and rendering of hits, on the bucket's query.
    query = scope()
    total, hits = search.collect_hits(env.index, env.searcher, query, req, offset + size)
    body = search.render_hits(env.index, env.searcher, query, hits, total, req)
    return Result(node, {"hits": body}, sort=req.sort, size=size)
