"""Run a search request over one or more indices: query, sort, paging, `_source`, totals and aggregations."""

from __future__ import annotations

import fnmatch
import heapq
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
import orjson
import tantivy

from mlsearch.engine.fusion import Fusion
from mlsearch.engine.highlight import Highlighter, parse_highlight
from mlsearch.engine.hit_fields import FieldReader
from mlsearch.engine.index import Index
from mlsearch.engine.lexical import KEY_FIELD
from mlsearch.engine.query import dsl
from mlsearch.engine.query.compile import Context, as_filter, compile_query, count_matches
from mlsearch.engine.query.function_score import FunctionScoreRescorer
from mlsearch.engine.query.hybrid import Hybrid, union_query
from mlsearch.engine.query.nested import inner_hits_renderer
from mlsearch.engine.search_request import _FULL_PATH_KEYS, SearchRequest, SortKey, parse_request, parse_sort  # noqa: F401  (callers import them from here)
from mlsearch.engine.store import StoredDoc
from mlsearch.errors import IllegalArgumentError, SearchPhaseExecutionError

# ---- execution ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Hit:
    index: Index
    key: int
    score: float
    sort_values: tuple[Any, ...] | None = None
    addr: Any = None  # tantivy DocAddress in the searcher that found it (for explain)


AggRunner = Callable[[Index, Context, tantivy.Query, dict[str, Any]], dict[str, Any]]


@dataclass(slots=True)
class _Plan:
    """What one index runs: the scoring query, an optional rescoring pass, and the query aggregations see."""

    query: tantivy.Query
    hits_query: tantivy.Query
    rescorer: FunctionScoreRescorer | None


def context_for(index: Index) -> Context:
    lex = index.lexical
    return Context(
        lex.schema, lex.mappings, lex.columns, index.analyzers, index.legacy_bm25, index.vectors, index.sparse
    )


def matching_query(query: dsl.Query, ctx: Context) -> tantivy.Query:
    """The tantivy query selecting what `query` matches (a top-level function_score: its inner query)."""
    if isinstance(query, dsl.FunctionScore):
        return compile_query(query.query, ctx)
    if isinstance(query, Hybrid):
        return union_query(query, ctx)
    return compile_query(query, ctx)


def _plan(req: SearchRequest, ctx: Context) -> _Plan:
    rescorer = FunctionScoreRescorer(req.query, ctx) if isinstance(req.query, dsl.FunctionScore) else None
    query = rescorer.inner if rescorer is not None else compile_query(req.query, ctx)
    hits_query = query
    if req.post_filter is not None:
        hits_query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, query), (tantivy.Occur.Must, as_filter(compile_query(req.post_filter, ctx)))]
        )
    return _Plan(query, hits_query, rescorer)


def execute(
    indices: Sequence[Index], req: SearchRequest, *, aggs_runner: AggRunner | None = None, fusion: Fusion | None = None
) -> dict[str, Any]:
    """The search response body, as OpenSearch shapes it (`fusion`: how a top-level hybrid query combines)."""
    if isinstance(req.query, Hybrid):
        from mlsearch.engine.hybrid_search import execute_hybrid  # it builds on this module

        return execute_hybrid(indices, req, fusion, aggs_runner)
    knn = _knn_search()
    if knn.is_plain_knn(req) and not any(map(req.raw.get, _FULL_PATH_KEYS)):
        return knn.execute_knn(indices, req)
    started = time.perf_counter()
    window = req.from_ + req.size
    _check_window(indices, window)
    collapse = _parse_collapse(indices, req)
    _check_rescore(indices, req)
    total = 0
    terminated = False
    per_index: list[list[Hit]] = []
    plans: dict[str, tuple[_Plan, tantivy.Searcher]] = {}
    searchers: dict[str, tuple[Index, tantivy.Searcher]] = {}
    aggregations: dict[str, Any] | None = None
    for index in indices:
        ctx = context_for(index)
        searcher = index.lexical.searcher()
        plan, stopped = _terminate_after(index, searcher, _plan(req, ctx), req.terminate_after)
        terminated |= stopped
        plans[index.name] = (plan, searcher)
        searchers[index.name] = (index, searcher)
        count, found = _collect(index, searcher, plan, req, _depth(searcher, plan, req, collapse is not None))
        total += count
        per_index.append(_second_phase(index, searcher, found, req))
        if req.aggs:
            if aggs_runner is None:
                raise IllegalArgumentError("aggregations are not available")
            part = aggs_runner(index, ctx, plan.query, req.aggs)
            aggregations = part if aggregations is None else _merge_aggs(aggregations, part)
    page = None
    if collapse is not None:
        from mlsearch.engine.collapse import collapse_page

        page = collapse_page(collapse, [h for found in per_index for h in found], req, searchers)
        hits = page.hits
    elif req.rescore:
        # rescored lists are not in score order past their windows: merge them as OpenSearch merges shard results
        hits = list(heapq.merge(*per_index, key=lambda h: -h.score))[req.from_ : window]
    else:
        hits = _order([h for found in per_index for h in found], req)[req.from_ : window]
    response: dict[str, Any] = {"took": 0, "timed_out": False}
    if req.terminate_after:
        response["terminated_early"] = terminated
    response["_shards"] = {"total": len(indices), "successful": len(indices), "skipped": 0, "failed": 0}
    response["hits"] = _hits_body(hits, total, req, plans)
    if collapse is not None and page is not None:
        from mlsearch.engine.collapse import decorate

        decorate(response["hits"]["hits"], page, collapse, req, plans, searchers)
    if aggregations is not None:
        response["aggregations"] = aggregations
    response["took"] = int((time.perf_counter() - started) * 1000)
    return response


def _depth(searcher: tantivy.Searcher, plan: _Plan, req: SearchRequest, collapsing: bool) -> int:
    """How many of an index's best hits to collect: collapsing pages over groups, so every match is a candidate
    leader; rescoring needs each rescorer's window."""
    if collapsing:
        return count_matches(searcher, plan.hits_query)
    return max([req.from_ + req.size, *(r.window_size for r in req.rescore)])


def _second_phase(index: Index, searcher: tantivy.Searcher, found: list[Hit], req: SearchRequest) -> list[Hit]:
    """One index's hits after indices_boost and rescoring (rescored: best first, the rest in first-pass order)."""
    boost = _index_boost(index, req.indices_boost)
    if boost != 1.0:
        for hit in found:
            hit.score = float(np.float32(hit.score) * np.float32(boost))
            if hit.sort_values is not None:
                keys = req.sort or (SortKey("_score", True),)
                values = zip(keys, hit.sort_values, strict=True)
                hit.sort_values = tuple(hit.score if key.field == "_score" else v for key, v in values)
    if not req.rescore:
        return found
    from mlsearch.engine.rescore import rescore  # it builds on this module

    rescored = rescore(index, searcher, _order(found, replace(req, from_=0, size=len(found))), req.rescore)
    if req.sort:  # only `_score` may be sorted on with rescore: its value is the new score
        for hit in rescored:
            hit.sort_values = (hit.score,)
    return rescored


def _index_boost(index: Index, boosts: Sequence[tuple[str, float]]) -> float:
    """The first `indices_boost` entry naming the index, one of its aliases, or a pattern matching either."""
    names = (index.name, *index.meta.aliases)
    for pattern, boost in boosts:
        if any(fnmatch.fnmatchcase(name, pattern) for name in names):
            return boost
    return 1.0


def _terminate_after(index: Index, searcher: tantivy.Searcher, plan: _Plan, limit: int) -> tuple[_Plan, bool]:
    """The plan restricted to the first `limit` matches in index order (OpenSearch stops collecting there, for hits,
    totals and aggregations alike), and whether it stopped early."""
    if limit <= 0:
        return plan, False
    count = count_matches(searcher, plan.query)
    if count <= limit:
        return plan, False
    from mlsearch.engine.collapse import exactly  # the query matching just these keys

    result = searcher.search(plan.query, limit=count, count=False)
    keys = sorted(_keys(searcher, [a for _, a in result.hits]))[:limit]
    only = as_filter(exactly(index, keys))

    def restrict(query: tantivy.Query) -> tantivy.Query:
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, only)])

    return _Plan(restrict(plan.query), restrict(plan.hits_query), plan.rescorer), True


def _check_rescore(indices: Sequence[Index], req: SearchRequest) -> None:
    if req.rescore:
        from mlsearch.engine.rescore import check  # it builds on this module

        check(indices, req, req.rescore)


def _parse_collapse(indices: Sequence[Index], req: SearchRequest) -> Any:
    if req.raw.get("collapse") is None:
        return None
    from mlsearch.engine.collapse import parse_collapse  # it builds on this module

    return parse_collapse(indices, req.raw)


def collect_hits(
    index: Index, searcher: tantivy.Searcher, query: tantivy.Query, req: SearchRequest, window: int
) -> tuple[int, list[Hit]]:
    """Matches of an already compiled query, ordered by the request's sort (top_hits uses this)."""
    return _collect(index, searcher, _Plan(query, query, None), req, window)


def render_hits(
    index: Index, searcher: tantivy.Searcher, query: tantivy.Query, hits: list[Hit], total: int, req: SearchRequest
) -> dict[str, Any]:
    """The `hits` object of a response for hits of one index."""
    return _hits_body(
        _order(hits, req)[req.from_ : req.from_ + req.size],
        total,
        req,
        {index.name: (_Plan(query, query, None), searcher)},
    )


@cache
def _knn_search() -> ModuleType:
    """`engine.knn_search`, which builds on this module: imported on first use, then held (an import statement in
    `execute` cost ~1 us a search)."""
    import mlsearch.engine.knn_search as module

    return module


def _check_window(indices: Sequence[Index], window: int) -> None:
    for index in indices:
        limit = int(index.setting("index.max_result_window", 10000))
        if window > limit:
            raise SearchPhaseExecutionError(
                f"Result window is too large, from + size must be less than or equal to: [{limit}] but was "
                f"[{window}]. See the scroll api for a more efficient way to request large data sets. This limit "
                f"can be set by changing the [index.max_result_window] index level setting.",
                caused_by={"type": "illegal_argument_exception", "reason": "Result window is too large"},
            )


def _collect(
    index: Index, searcher: tantivy.Searcher, plan: _Plan, req: SearchRequest, window: int
) -> tuple[int, list[Hit]]:
    query = plan.hits_query
    field_sort = [k for k in req.sort if k.field != "_score"]
    simple = req.search_after is None and req.min_score is None and plan.rescorer is None
    if simple and not field_sort:
        result = searcher.search(query, limit=max(window, 1), count=True)
        hits = result.hits[:window]
        keys = _keys(searcher, [a for _, a in hits])
        return result.count, [Hit(index, k, float(s), None, a) for (s, a), k in zip(hits, keys, strict=True)]
    if simple and not req.track_scores and _column_sortable(index, req.sort):
        return _collect_by_column(index, searcher, query, req.sort[0], window)
    # Field sorts, search_after, min_score and rescoring look at every match's sort values (fast-field columns).
    count = count_matches(searcher, query)
    result = searcher.search(query, limit=max(count, 1), count=False)
    addrs = [a for _, a in result.hits]
    # Scores are float32, as Lucene's; min_score compares the values clients see.
    scores = np.fromiter((s for s, _ in result.hits), dtype=np.float32, count=len(addrs)).astype(np.float64)
    keep = np.ones(len(addrs), dtype=bool)
    if plan.rescorer is not None:
        scores, keep = plan.rescorer.rescore(searcher, addrs, scores)
    if req.min_score is not None:
        keep &= scores >= float(np.float32(req.min_score))
    if not keep.all():
        addrs = [a for a, k in zip(addrs, keep, strict=True) if k]
        scores = scores[keep]
    keys = _keys(searcher, addrs)
    count = len(addrs)
    sort = req.sort or (SortKey("_score", True),)
    columns = [_sort_column(index, searcher, query, key, addrs, keys, scores) for key in sort]
    found = [
        Hit(index, k, float(s), tuple(col[i] for col in columns), a)
        for i, (k, s, a) in enumerate(zip(keys, scores, addrs, strict=True))
    ]
    if req.search_after is not None:
        found = [h for h in found if _after(h.sort_values, req.search_after, sort)]
    return count, found


def _column_sortable(index: Index, sort: Sequence[SortKey]) -> bool:
    """One sort key on a keyword or numeric column, missing values last: tantivy orders the matches itself."""
    if len(sort) != 1 or sort[0].missing not in (None, "_last"):
        return False
    col = index.lexical.columns.get(sort[0].field)
    return col is not None and col.kind in ("keyword", "integer", "float")


def _collect_by_column(
    index: Index, searcher: tantivy.Searcher, query: tantivy.Query, key: SortKey, window: int
) -> tuple[int, list[Hit]]:
    col = index.lexical.columns[key.field]
    count = count_matches(searcher, query)
    order = tantivy.Order.Desc if key.descending else tantivy.Order.Asc
    result = searcher.search(query, limit=max(window, 1), count=False, order_by_field=col.name, order=order)
    addrs = [a for _, a in result.hits]
    keys = _keys(searcher, addrs)
    return count, [Hit(index, k, 0.0, (v,), a) for (v, a), k in zip(result.hits, keys, strict=True)]


def _keys(searcher: tantivy.Searcher, addrs: list[Any]) -> list[int]:
    return searcher.fast_field_values(KEY_FIELD, addrs) if addrs else []


def _sort_column(
    index: Index,
    searcher: tantivy.Searcher,
    query: tantivy.Query,
    key: SortKey,
    addrs: list[Any],
    keys: list[int],
    scores: np.ndarray,
) -> list[Any]:
    if key.field == "_score":
        return [float(s) for s in scores]
    if key.field == "_doc":
        return list(keys)  # index order: the store's keys grow with insertion
    col = index.lexical.columns.get(key.field)
    if col is None:
        return [None] * len(addrs)
    if col.kind == "text":
        raise IllegalArgumentError(
            f"Text fields are not optimised for operations that require per-document field data like aggregations "
            f"and sorting, so these operations are disabled by default. Please use a keyword field instead. "
            f"Alternatively, set fielddata=true on [{key.field}] in order to load field data by uninverting the "
            f"inverted index. Note that this can use significant memory."
        )
    if col.kind == "keyword":
        return _keyword_values(searcher, query, col.name, addrs)
    return searcher.fast_field_values(col.name, addrs)


def _keyword_values(searcher: tantivy.Searcher, query: tantivy.Query, name: str, addrs: list[Any]) -> list[Any]:
    # tantivy's Python API reads text columns only through ordering: order the query's matches by the column and
    # take each one's value.
    values: list[Any] = [None] * len(addrs)
    if not addrs:
        return values
    position = {(a.segment_ord, a.doc): i for i, a in enumerate(addrs)}
    ordered = searcher.search(query, limit=len(addrs), count=False, order_by_field=name, order=tantivy.Order.Asc)
    for rank_value, addr in ordered.hits:
        i = position.get((addr.segment_ord, addr.doc))
        if i is not None:
            values[i] = rank_value
    return values


def _sortable(value: Any, key: SortKey) -> tuple[int, Any]:
    """Missing values last (or first), whatever the order."""
    missing_first = key.missing == "_first"
    if value is None:
        if key.missing not in (None, "_last", "_first"):
            value = key.missing
        else:
            return (0 if missing_first else 2, 0)
    return (1, value)


class _Ordered:
    __slots__ = ("hit", "keys")

    def __init__(self, hit: Hit, keys: Sequence[SortKey]) -> None:
        self.hit = hit
        self.keys = keys

    def __lt__(self, other: _Ordered) -> bool:
        for i, key in enumerate(self.keys):
            a = _sortable(self.hit.sort_values[i], key)  # type: ignore[index]
            b = _sortable(other.hit.sort_values[i], key)  # type: ignore[index]
            if a == b:
                continue
            if a[0] != b[0]:
                return a[0] < b[0]
            return a[1] > b[1] if key.descending else a[1] < b[1]
        return (self.hit.index.name, self.hit.key) < (other.hit.index.name, other.hit.key)


def _order(hits: list[Hit], req: SearchRequest) -> list[Hit]:
    if all(h.sort_values is None for h in hits):
        return sorted(hits, key=lambda h: (-h.score, h.index.name, h.key))
    keys = req.sort or (SortKey("_score", True),)
    return [o.hit for o in heapq.nsmallest(req.from_ + req.size, (_Ordered(h, keys) for h in hits))]


def _after(values: tuple[Any, ...] | None, after: tuple[Any, ...], keys: Sequence[SortKey]) -> bool:
    if values is None:
        return True
    if len(after) != len(keys):
        raise IllegalArgumentError(f"search_after has {len(after)} value(s) but sort has {len(keys)}.")
    for value, bound, key in zip(values, after, keys, strict=True):
        a, b = _sortable(value, key), _sortable(bound, key)
        if a == b:
            continue
        if a[0] != b[0]:
            return a[0] > b[0]
        return a[1] < b[1] if key.descending else a[1] > b[1]
    return False


def _hits_body(
    hits: list[Hit],
    total: int,
    req: SearchRequest,
    plans: dict[str, tuple[_Plan, tantivy.Searcher]],
    explainer: Callable[[Hit], dict[str, Any]] | None = None,
    ids: dict[str, dict[int, str]] | None = None,
) -> dict[str, Any]:
    """The `hits` object; `ids` (by index, by key) stands for the stored documents when the caller knows every hit
    is live and the response shows nothing but `_index`, `_id` and `_score`."""
    with_source = req.source.enabled
    fetch = req.fetch
    readers: dict[str, FieldReader] = {}
    highlighter = _highlighter(req)
    reads_source = with_source or fetch.reads_source or highlighter is not None
    docs = _stored_docs(hits, reads_source) if ids is None else None
    # Scores are computed when sorting by relevance, when `_score` is one of the sort keys, or with track_scores.
    scored = not req.sort or any(k.field == "_score" for k in req.sort) or req.track_scores
    plain = not (req.explain or req.version or req.seq_no_primary_term or req.sort)
    inner_hits = inner_hits_renderer(req.query, context_for)
    stored_none = fetch.stored_none
    rendered = []
    max_score = None
    # Hits of one index come in runs: its name is looked up once per run, not per hit (a hot loop for knn).
    last_index: Index | None = None
    name = ""
    for hit in hits:
        if hit.index is not last_index:
            last_index = hit.index
            name = last_index.name
        if ids is not None:
            doc_id = ids[name].get(hit.key)
            if doc_id is None:
                continue  # not in the store (never expected: the caller vouched for every hit)
            item: dict[str, Any] = {"_index": name} if stored_none else {"_index": name, "_id": doc_id}
        else:
            assert docs is not None  # for mypy: set whenever ids is not
            doc = docs[name].get(hit.key)
            if doc is None or doc.source is None:
                continue  # deleted since the last refresh
            item = {"_index": name} if stored_none else {"_index": name, "_id": doc.id}
            if not plain:
                _metadata(item, hit, doc, req)
        score = np.float32(hit.score) if scored else None
        item["_score"] = score
        if score is not None and (max_score is None or score > max_score):
            max_score = score
        if docs is not None and reads_source:
            source = orjson.loads(doc.source)
            _add_source_and_fields(item, hit.index, source, req, readers)
            if highlighter is not None:
                _add_highlight(item, hit.index, source, highlighter)
        if req.sort:
            item["sort"] = [_sort_value(v) for v in hit.sort_values or ()]
        if req.explain and explainer is not None:
            item["_explanation"] = explainer(hit)
        elif req.explain:
            plan, searcher = plans[name]
            item["_explanation"] = _explanation(plan, searcher, hit)
        if inner_hits is not None:
            item["inner_hits"] = inner_hits(hit.index, hit.key, item["_id"])
        rendered.append(item)
    body = total_body(total, req)
    body["max_score"] = max_score
    body["hits"] = rendered
    return body


def total_body(total: int, req: SearchRequest) -> dict[str, Any]:
    """The start of a `hits` object: `total` as `track_total_hits` asks (absent when it is false)."""
    if req.track_total_hits is False:
        return {}
    limit = None if req.track_total_hits is True else int(req.track_total_hits)
    if limit is not None and total > limit:
        return {"total": {"value": limit, "relation": "gte"}}
    return {"total": {"value": total, "relation": "eq"}}


def _highlighter(req: SearchRequest) -> Highlighter | None:
    spec = parse_highlight(req.raw.get("highlight"))
    return None if spec is None else Highlighter(spec, req.query)


def _add_highlight(item: dict[str, Any], index: Index, source: Any, highlighter: Highlighter) -> None:
    limit = int(index.setting("index.highlight.max_analyzed_offset", 1_000_000))
    found = highlighter.highlight(index.mappings, index.analyzers, source, limit, (index.name, item.get("_id", "")))
    if found:
        item["highlight"] = found


def _add_source_and_fields(
    item: dict[str, Any], index: Index, source: Any, req: SearchRequest, readers: dict[str, FieldReader]
) -> None:
    """`_source` (filtered) and `fields` (from the whole source, whatever the filter), in OpenSearch's key order."""
    if req.source.enabled:
        shown = req.source.apply(source)
        if shown is not None:
            item["_source"] = shown
    if req.fetch.reads_source:
        reader = readers.get(index.name)
        if reader is None:
            reader = readers[index.name] = req.fetch.reader(index.mappings)
        values = reader.read(source)
        if values:
            item["fields"] = values


def _stored_docs(hits: list[Hit], with_source: bool) -> dict[str, dict[int, StoredDoc]]:
    """The stored documents of `hits`, by index name and key: one batched read per index."""
    by_index: dict[str, tuple[Index, list[int]]] = {}
    for hit in hits:
        index = hit.index
        entry = by_index.get(index.name)
        if entry is None:
            entry = by_index[index.name] = (index, [])
        entry[1].append(hit.key)
    return {name: index.store.by_keys(keys, with_source=with_source) for name, (index, keys) in by_index.items()}


def _metadata(item: dict[str, Any], hit: Hit, doc: StoredDoc, req: SearchRequest) -> None:
    """`_shard`, `_version`, `_seq_no` and `_primary_term`, in OpenSearch's key order, when the request asks."""
    if req.explain:
        item["_shard"] = f"[{hit.index.name}][0]"
    if req.version:
        item["_version"] = doc.version
    if req.seq_no_primary_term:
        item["_seq_no"], item["_primary_term"] = doc.seq_no, doc.primary_term


def _explanation(plan: _Plan, searcher: tantivy.Searcher, hit: Hit) -> dict[str, Any]:
    """OpenSearch's explanation shape (value, description, details) from tantivy's own explanation."""
    if hit.addr is None:
        return {"value": hit.score, "description": "score", "details": []}
    try:
        inner = _normalize_explanation(orjson.loads(plan.hits_query.explain(searcher, hit.addr).to_json()))
    except ValueError:
        inner = {"value": hit.score, "description": "score", "details": []}
    if plan.rescorer is not None:
        return {"value": np.float32(hit.score), "description": "function score, computed from:", "details": [inner]}
    return inner


def _normalize_explanation(node: dict[str, Any]) -> dict[str, Any]:
    return {
        "value": np.float32(node.get("value", 0.0)),
        "description": str(node.get("description", "")),
        "details": [_normalize_explanation(d) for d in node.get("details") or []],
    }


def _sort_value(value: Any) -> Any:
    if isinstance(value, float):
        return np.float32(value) if value != int(value) or abs(value) > 2**53 else value
    return value


def _merge_aggs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    from mlsearch.engine.aggs import merge

    return merge(a, b)
