"""Run a search request over one or more indices: query, sort, paging, `_source`, totals and aggregations."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import tantivy

from mlsearch.engine.index import Index
from mlsearch.engine.lexical import KEY_FIELD
from mlsearch.engine.query import dsl
from mlsearch.engine.query.compile import Context, compile_query
from mlsearch.engine.source_filter import SourceFilter
from mlsearch.errors import IllegalArgumentError, ParsingError, SearchPhaseExecutionError

# Top-level keys of a search body; those not handled yet are accepted where OpenSearch would ignore them harmlessly.
_BODY_KEYS = {"query", "from", "size", "sort", "_source", "track_total_hits", "search_after", "explain", "aggs",
              "aggregations", "min_score", "timeout", "terminate_after", "stored_fields", "docvalue_fields",
              "track_scores", "version", "seq_no_primary_term", "highlight", "post_filter", "ext", "profile",
              "fields", "script_fields", "collapse", "indices_boost", "rescore", "suggest", "pit", "search_pipeline",
              "stats", "slice"}
DEFAULT_TOTAL_HITS = 10000


@dataclass(frozen=True, slots=True)
class SortKey:
    field: str  # a field path, `_score` or `_doc`
    descending: bool
    missing: Any = None  # "_last" (default), "_first" or a value


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: dsl.Query = field(default_factory=dsl.MatchAll)
    from_: int = 0
    size: int = 10
    sort: tuple[SortKey, ...] = ()
    source: SourceFilter = field(default_factory=SourceFilter)
    track_total_hits: bool | int = DEFAULT_TOTAL_HITS
    search_after: tuple[Any, ...] | None = None
    explain: bool = False
    aggs: dict[str, Any] | None = None
    min_score: float | None = None
    post_filter: dsl.Query | None = None
    version: bool = False
    seq_no_primary_term: bool = False
    track_scores: bool = False
    ext: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


def parse_request(body: dict[str, Any] | None, params: dict[str, str] | None = None) -> SearchRequest:
    """A search body plus URL parameters (`q`, `size`, `from`, `sort`, `_source*`, `track_total_hits`)."""
    body = dict(body or {})
    params = params or {}
    for key in body:
        if key not in _BODY_KEYS:
            raise ParsingError(f"Unknown key for a {_token(body[key])} in [{key}].")
    if "q" in params:
        body["query"] = {"query_string": {"query": params["q"]}}
    query = dsl.parse_query(body["query"]) if body.get("query") is not None else dsl.MatchAll()
    size = _int(params.get("size", body.get("size", 10)), "size")
    from_ = _int(params.get("from", body.get("from", 0)), "from")
    if size < 0:
        raise IllegalArgumentError(f"[size] parameter cannot be negative, found [{size}]")
    if from_ < 0:
        raise IllegalArgumentError(f"[from] parameter cannot be negative, found [{from_}]")
    sort_spec = body.get("sort")
    if "sort" in params:
        sort_spec = [_url_sort(s) for s in params["sort"].split(",")]
    source = SourceFilter.from_params(params.get("_source"), params.get("_source_includes"),
                                      params.get("_source_excludes")) or SourceFilter.parse(body.get("_source"))
    aggs = body.get("aggs", body.get("aggregations"))
    if aggs is not None and not isinstance(aggs, dict):
        raise ParsingError("Expected [START_OBJECT] under [aggregations], but got a [VALUE_STRING] in [aggs]")
    search_after = body.get("search_after")
    if search_after is not None and not isinstance(search_after, list):
        raise ParsingError("Unknown key for a VALUE_STRING in [search_after].")
    min_score = body.get("min_score")
    return SearchRequest(
        query=query,
        from_=from_,
        size=size,
        sort=parse_sort(sort_spec),
        source=source,
        track_total_hits=_track_total_hits(params.get("track_total_hits", body.get("track_total_hits"))),
        search_after=None if search_after is None else tuple(search_after),
        explain=_flag(params.get("explain", body.get("explain", False))),
        aggs=aggs,
        min_score=None if min_score is None else float(min_score),
        post_filter=dsl.parse_query(body["post_filter"]) if body.get("post_filter") else None,
        version=_flag(params.get("version", body.get("version", False))),
        seq_no_primary_term=_flag(params.get("seq_no_primary_term", body.get("seq_no_primary_term", False))),
        track_scores=_flag(body.get("track_scores", False)),
        ext=body.get("ext") or {},
        raw=body,
    )


def _token(value: Any) -> str:
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    return "VALUE_STRING"


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise IllegalArgumentError(f"Failed to parse int parameter [{name}] with value [{value}]") from None


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "")


def _track_total_hits(value: Any) -> bool | int:
    if value is None:
        return DEFAULT_TOTAL_HITS
    if isinstance(value, bool) or str(value).lower() in ("true", "false"):
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return _int(value, "track_total_hits")


def _url_sort(item: str) -> dict[str, Any]:
    name, _, order = item.partition(":")
    return {name: {"order": order or "asc"}}


def parse_sort(spec: Any) -> tuple[SortKey, ...]:
    if spec is None:
        return ()
    items = spec if isinstance(spec, list) else [spec]
    keys = []
    for item in items:
        if isinstance(item, str):
            keys.append(SortKey(item, item == "_score"))
            continue
        if not isinstance(item, dict) or len(item) != 1:
            raise ParsingError("malformed sort format, within the sort array, an object, or an actual string are allowed")
        name, options = next(iter(item.items()))
        if isinstance(options, str):
            options = {"order": options}
        if not isinstance(options, dict):
            raise ParsingError(f"malformed sort format for [{name}]")
        order = str(options.get("order", "desc" if name == "_score" else "asc")).lower()
        if order not in ("asc", "desc"):
            raise IllegalArgumentError(f"Unknown SortOrder [{order}]")
        keys.append(SortKey(name, order == "desc", options.get("missing")))
    return tuple(keys)


# ---- execution ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Hit:
    index: Index
    key: int
    score: float
    sort_values: tuple[Any, ...] | None = None


AggRunner = Callable[[Index, Context, tantivy.Query, dict[str, Any]], dict[str, Any]]


def context_for(index: Index) -> Context:
    lex = index.lexical
    return Context(lex.schema, lex.mappings, lex.columns, index.analyzers, index.legacy_bm25, index.vectors)


def execute(indices: Sequence[Index], req: SearchRequest, *, aggs_runner: AggRunner | None = None) -> dict[str, Any]:
    """The search response body, as OpenSearch shapes it."""
    started = time.perf_counter()
    window = req.from_ + req.size
    _check_window(indices, window)
    total = 0
    hits: list[Hit] = []
    aggregations: dict[str, Any] | None = None
    for index in indices:
        ctx = context_for(index)
        query = compile_query(req.query, ctx)
        if req.post_filter is not None:
            hits_query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, query), (tantivy.Occur.Must, tantivy.Query.const_score_query(
                    compile_query(req.post_filter, ctx), 0.0))]
            )
        else:
            hits_query = query
        searcher = index.lexical.searcher()
        count, found = _collect(index, searcher, hits_query, req, window)
        total += count
        hits.extend(found)
        if req.aggs:
            if aggs_runner is None:
                raise IllegalArgumentError("aggregations are not available")
            part = aggs_runner(index, ctx, query, req.aggs)
            aggregations = part if aggregations is None else _merge_aggs(aggregations, part)
    hits = _order(hits, req)[req.from_ : window]
    response: dict[str, Any] = {
        "took": int((time.perf_counter() - started) * 1000),
        "timed_out": False,
        "_shards": {"total": len(indices), "successful": len(indices), "skipped": 0, "failed": 0},
        "hits": _hits_body(hits, total, req),
    }
    if aggregations is not None:
        response["aggregations"] = aggregations
    return response


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


def _collect(index: Index, searcher: tantivy.Searcher, query: tantivy.Query, req: SearchRequest,
             window: int) -> tuple[int, list[Hit]]:
    field_sort = [k for k in req.sort if k.field not in ("_score",)]
    if not field_sort and req.search_after is None and req.min_score is None:
        result = searcher.search(query, limit=max(window, 1), count=True)
        hits = result.hits[:window]
        keys = _keys(searcher, [a for _, a in hits])
        return result.count, [Hit(index, k, float(s)) for (s, _), k in zip(hits, keys, strict=True)]
    # Field sorts, search_after and min_score look at every match's sort values (fast-field columns).
    count = searcher.search(query, limit=1, count=True).count  # tantivy panics on limit=0 for some queries
    result = searcher.search(query, limit=max(count, 1), count=False)
    addrs = [a for _, a in result.hits]
    scores = np.fromiter((s for s, _ in result.hits), dtype=np.float64, count=len(addrs))
    keys = _keys(searcher, addrs)
    if req.min_score is not None:
        keep = scores >= req.min_score
        addrs = [a for a, k in zip(addrs, keep, strict=True) if k]
        keys = [k for k, kk in zip(keys, keep, strict=True) if kk]
        scores = scores[keep]
        count = len(addrs)
    columns = [_sort_column(index, searcher, key, addrs, scores) for key in (req.sort or (SortKey("_score", True),))]
    found = [Hit(index, k, float(s), tuple(col[i] for col in columns)) for i, (k, s) in enumerate(
        zip(keys, scores, strict=True))]
    if req.search_after is not None:
        found = [h for h in found if _after(h.sort_values, req.search_after, req.sort or (SortKey("_score", True),))]
    return count, found


def _keys(searcher: tantivy.Searcher, addrs: list[Any]) -> list[int]:
    return searcher.fast_field_values(KEY_FIELD, addrs) if addrs else []


def _sort_column(index: Index, searcher: tantivy.Searcher, key: SortKey, addrs: list[Any],
                 scores: np.ndarray) -> list[Any]:
    if key.field == "_score":
        return [float(s) for s in scores]
    if key.field == "_doc":
        return list(range(len(addrs)))
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
        return _keyword_values(index, searcher, col.name, addrs)
    return searcher.fast_field_values(col.name, addrs)


def _keyword_values(index: Index, searcher: tantivy.Searcher, name: str, addrs: list[Any]) -> list[Any]:
    # tantivy reads text columns only through stored documents or ordering; order the matches by the column
    # and read each document's rank, which sorts keyword values exactly.
    values: list[Any] = [None] * len(addrs)
    position = {(a.segment_ord, a.doc): i for i, a in enumerate(addrs)}
    ordered = searcher.search(tantivy.Query.all_query(), limit=max(searcher.num_docs, 1), count=False,
                              order_by_field=name, order=tantivy.Order.Asc)
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
        raise IllegalArgumentError(
            f"search_after has {len(after)} value(s) but sort has {len(keys)}."
        )
    for value, bound, key in zip(values, after, keys, strict=True):
        a, b = _sortable(value, key), _sortable(bound, key)
        if a == b:
            continue
        if a[0] != b[0]:
            return a[0] > b[0]
        return a[1] < b[1] if key.descending else a[1] > b[1]
    return False


def _hits_body(hits: list[Hit], total: int, req: SearchRequest) -> dict[str, Any]:
    by_index: dict[str, list[int]] = {}
    for hit in hits:
        by_index.setdefault(hit.index.name, []).append(hit.key)
    docs = {}
    for hit in hits:
        if hit.index.name not in docs:
            docs[hit.index.name] = hit.index.store.by_keys(by_index[hit.index.name])
    sorted_by_field = bool(req.sort) and req.sort[0].field != "_score"
    rendered = []
    for hit in hits:
        doc = docs[hit.index.name].get(hit.key)
        if doc is None or doc.source is None:
            continue  # deleted since the last refresh
        item: dict[str, Any] = {"_index": hit.index.name, "_id": doc.id}
        if req.version:
            item["_version"] = doc.version
        if req.seq_no_primary_term:
            item["_seq_no"], item["_primary_term"] = doc.seq_no, doc.primary_term
        item["_score"] = None if sorted_by_field and not req.track_scores else np.float32(hit.score)
        source = req.source.apply(orjson.loads(doc.source))
        if source is not None:
            item["_source"] = source
        if req.sort:
            item["sort"] = [_sort_value(v) for v in hit.sort_values or ()]
        rendered.append(item)
    scores = [h["_score"] for h in rendered if h["_score"] is not None]
    body: dict[str, Any] = {}
    if req.track_total_hits is not False:
        limit = None if req.track_total_hits is True else int(req.track_total_hits)
        if limit is not None and total > limit:
            body["total"] = {"value": limit, "relation": "gte"}
        else:
            body["total"] = {"value": total, "relation": "eq"}
    body["max_score"] = max(scores) if scores and not sorted_by_field else (
        max(scores) if scores and req.track_scores else None)
    body["hits"] = rendered
    return body


def _sort_value(value: Any) -> Any:
    if isinstance(value, float):
        return np.float32(value) if value != int(value) or abs(value) > 2**53 else value
    return value


def _merge_aggs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    from mlsearch.engine.aggs import merge

    return merge(a, b)
