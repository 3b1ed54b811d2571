"""Execute a top-level `hybrid` query: each sub-query to its own depth, raw scores fused, then paged like any search.

`hits.total` counts the distinct documents any sub-query matches (neural-search does the same); aggregations run over
that union. Without a fusion (no normalization-processor / score-ranker-processor in the pipeline) the request is
rejected: OpenSearch 3.x returns its internal delimiter-encoded hits then, which no client can use, and
neural-search#1922 proposes exactly this fail-fast error."""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import orjson
import tantivy

from mlsearch.engine.collapse import add_collapse_fields, collapse_values, exactly, first_per_value, parse_collapse
from mlsearch.engine.fusion import Fused, Fusion, SubResults, fuse
from mlsearch.engine.index import Index
from mlsearch.engine.query.compile import as_filter, compile_query, count_matches
from mlsearch.engine.query.hybrid import Hybrid, sub_query
from mlsearch.engine.search import (
    AggRunner,
    Hit,
    SearchRequest,
    _check_window,
    _collect,
    _hits_body,
    _merge_aggs,
    _normalize_explanation,
    _order,
    _Plan,
    _sort_column,
    context_for,
)
from mlsearch.errors import IllegalArgumentError

NO_PIPELINE = (
    "hybrid query must be executed with a search pipeline that has a [normalization-processor] or "
    "[score-ranker-processor]: pass ?search_pipeline=<id>, an inline search_pipeline, or set "
    "index.search.default_pipeline"
)


@dataclass(slots=True)
class _Shard:
    """What one index contributed: its searcher, the union plan (totals, sort values) and compiled sub-queries."""

    index: Index
    searcher: tantivy.Searcher
    plan: _Plan
    subs: list[tantivy.Query]


def execute_hybrid(
    indices: Sequence[Index], req: SearchRequest, fusion: Fusion | None, aggs_runner: AggRunner | None = None
) -> dict[str, Any]:
    """The search response for a request whose query is `hybrid`."""
    started = time.perf_counter()
    if fusion is None:
        raise IllegalArgumentError(NO_PIPELINE)
    hybrid = req.query
    if not isinstance(hybrid, Hybrid):
        raise TypeError("execute_hybrid needs a top-level hybrid query")
    window = req.from_ + req.size
    _check_window(indices, window)
    if req.from_ > 0 and hybrid.pagination_depth is None:
        # neural-search: paging needs a fixed per-sub-query depth, or pages would come from different result sets
        raise IllegalArgumentError("pagination_depth is missing in the search request")
    collapse = _collapse_field(indices, req)
    depth = hybrid.pagination_depth or max(window, 1)
    per_sub: list[SubResults] = [{} for _ in hybrid.queries]
    found: dict[Hashable, Hit] = {}
    shards: dict[str, _Shard] = {}
    total = 0
    aggregations: dict[str, Any] | None = None
    for index in indices:
        shard = _run_subqueries(index, hybrid, req, depth, per_sub, found)
        shards[index.name] = shard
        total += count_matches(shard.searcher, shard.plan.hits_query)
        if req.aggs:
            if aggs_runner is None:
                raise IllegalArgumentError("aggregations are not available")
            part = aggs_runner(index, context_for(index), shard.plan.query, req.aggs)
            aggregations = part if aggregations is None else _merge_aggs(aggregations, part)
    fused = {f.doc: f for f in fuse(fusion, per_sub)}
    hits = [Hit(found[doc].index, found[doc].key, f.score, None, found[doc].addr) for doc, f in fused.items()]
    if req.min_score is not None:
        hits = [h for h in hits if h.score >= float(np.float32(req.min_score))]
    if req.from_ > 0 and req.from_ > len(hits):
        raise IllegalArgumentError("Reached end of search result, increase pagination_depth value to see more results")
    if req.sort:
        _add_sort_values(hits, req, shards)
    ordered = _order(hits, replace(req, from_=0, size=len(hits)))
    values: dict[Hashable, Any] = {}
    if collapse is not None:
        values = _collapse_values(ordered, collapse, shards)
        ordered = first_per_value(ordered, values)
    page = ordered[req.from_ : window]
    plans = {name: (s.plan, s.searcher) for name, s in shards.items()}
    explainer = _explainer(fusion, fused, shards) if req.explain else None
    response: dict[str, Any] = {
        "took": int((time.perf_counter() - started) * 1000),
        "timed_out": False,
        "_shards": {"total": len(indices), "successful": len(indices), "skipped": 0, "failed": 0},
        "hits": _hits_body(page, total, req, plans, explainer=explainer),
    }
    if collapse is not None:
        add_collapse_fields(response["hits"]["hits"], page, collapse, values)
    if aggregations is not None:
        response["aggregations"] = aggregations
    return response


# ---- collapse: the best fused hit per value of a keyword or numeric field ---------------------------------------


def _collapse_field(indices: Sequence[Index], req: SearchRequest) -> str | None:
    spec = req.raw.get("collapse")
    if isinstance(spec, dict) and spec.get("inner_hits") is not None:
        raise IllegalArgumentError("[collapse] inner_hits are not supported with a hybrid query")
    collapse = parse_collapse(indices, req.raw)
    return None if collapse is None else collapse.field


def _collapse_values(hits: list[Hit], name: str, shards: dict[str, _Shard]) -> dict[Hashable, Any]:
    return collapse_values(hits, name, {n: (s.index, s.searcher) for n, s in shards.items()})


def _run_subqueries(
    index: Index, hybrid: Hybrid, req: SearchRequest, depth: int, per_sub: list[SubResults], found: dict[Hashable, Hit]
) -> _Shard:
    """Each sub-query's top `depth` hits with raw scores, in score order (sorting applies to the fused list)."""
    ctx = context_for(index)
    searcher = index.lexical.searcher()
    post = None if req.post_filter is None else as_filter(compile_query(req.post_filter, ctx))
    scored_req = replace(req, sort=(), search_after=None, min_score=None, track_scores=False)
    subs = []
    for position, results in enumerate(per_sub):
        query = sub_query(hybrid, position, ctx)
        subs.append(query)
        _, hits = _collect(index, searcher, _Plan(query, _restrict(query, post), None), scored_req, depth)
        for hit in hits:
            doc = (index.name, hit.key)
            results[doc] = hit.score
            found.setdefault(doc, hit)
    # the union of the compiled sub-queries (each already filtered): compiling again would rerun every k-NN search
    union = tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in subs])
    return _Shard(index, searcher, _Plan(union, _restrict(union, post), None), subs)


def _restrict(query: tantivy.Query, post: tantivy.Query | None) -> tantivy.Query:
    if post is None:
        return query
    return tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, post)])


def _add_sort_values(hits: list[Hit], req: SearchRequest, shards: dict[str, _Shard]) -> None:
    """Sort values of the fused documents, read from each index's columns (`_score` is the fused score)."""
    by_index: dict[str, list[Hit]] = {}
    for hit in hits:
        by_index.setdefault(hit.index.name, []).append(hit)
    for name, group in by_index.items():
        shard = shards[name]
        addrs = [h.addr for h in group]
        keys = [h.key for h in group]
        scores = np.array([h.score for h in group], dtype=np.float64)
        exact = exactly(shard.index, keys)
        columns = [_sort_column(shard.index, shard.searcher, exact, key, addrs, keys, scores) for key in req.sort]
        for i, hit in enumerate(group):
            hit.sort_values = tuple(col[i] for col in columns)


def _explainer(fusion: Fusion, fused: dict[Hashable, Fused], shards: dict[str, _Shard]) -> Any:
    normalization, combination = fusion.describe()

    def explain(hit: Hit) -> dict[str, Any]:
        shard = shards[hit.index.name]
        result = fused[(hit.index.name, hit.key)]
        details = []
        for position, score in enumerate(result.sub_scores):
            if score is None:
                continue
            raw = _raw_explanation(shard, position, hit)
            details.append(
                {"value": np.float32(score), "description": f"{normalization} normalization of:", "details": [raw]}
            )
        return {"value": np.float32(result.score), "description": f"{combination} combination of:", "details": details}

    return explain


def _raw_explanation(shard: _Shard, position: int, hit: Hit) -> dict[str, Any]:
    try:
        text = shard.subs[position].explain(shard.searcher, hit.addr).to_json()
        return _normalize_explanation(orjson.loads(text))
    except ValueError:
        return {"value": 0.0, "description": f"sub-query {position}", "details": []}
