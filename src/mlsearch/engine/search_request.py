"""A search request parsed from its body and URL parameters: the query, paging, sort, `_source`, fetch options and
the body keys mlsearch refuses rather than ignores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlsearch.engine.hit_fields import FetchFields, parse_fetch_fields
from mlsearch.engine.query import dsl
from mlsearch.engine.source_filter import SourceFilter
from mlsearch.errors import ActionRequestValidationError, IllegalArgumentError, ParsingError

# Top-level keys of a search body; those not handled yet are accepted where OpenSearch would ignore them harmlessly.
_BODY_KEYS = {
    "query",
    "from",
    "size",
    "sort",
    "_source",
    "track_total_hits",
    "search_after",
    "explain",
    "aggs",
    "aggregations",
    "min_score",
    "timeout",
    "terminate_after",
    "stored_fields",
    "docvalue_fields",
    "track_scores",
    "version",
    "seq_no_primary_term",
    "highlight",
    "post_filter",
    "ext",
    "profile",
    "fields",
    "script_fields",
    "collapse",
    "indices_boost",
    "rescore",
    "suggest",
    "pit",
    "search_pipeline",
    "stats",
    "slice",
}
DEFAULT_TOTAL_HITS = 10000
# Options refused rather than silently ignored (a client relying on them would get wrong results).
_UNSUPPORTED = {
    "script_fields": "script fields are not implemented; use `fields` or `docvalue_fields`",
    "suggest": "suggesters are not implemented",
    "pit": "point in time searches are not implemented",
    "slice": "sliced searches need scroll or point in time, which are not implemented",
}
# A body of only these keys and no URL parameters (the usual search) is parsed by `_parse_lean`.
_LEAN_KEYS = frozenset(("query", "size", "from", "_source"))
# Body keys the knn fast path knows nothing of: their requests take the general path.
_FULL_PATH_KEYS = ("collapse", "rescore", "terminate_after", "indices_boost")
_NO_FETCH = FetchFields()  # immutable: one for every request that asks for no fields


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
    fetch: FetchFields = field(default_factory=FetchFields)
    rescore: tuple[Any, ...] = ()  # rescore.QueryRescore, applied in order
    terminate_after: int = 0  # 0: collect every match
    indices_boost: tuple[tuple[str, float], ...] = ()  # (index name or pattern, boost), first match wins


def parse_request(body: dict[str, Any] | None, params: dict[str, str] | None = None) -> SearchRequest:
    """A search body plus URL parameters (`q`, `size`, `from`, `sort`, `_source*`, `track_total_hits`)."""
    if not params and body and _LEAN_KEYS.issuperset(body):
        return _parse_lean(body)
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
    source = SourceFilter.from_params(
        params.get("_source"), params.get("_source_includes"), params.get("_source_excludes")
    ) or SourceFilter.parse(body.get("_source"))
    fetch = parse_fetch_fields(body, params)
    source = _source_with_stored_fields(source, fetch, _source_given(body, params))
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
        min_score=None if min_score is None else _float(min_score, "min_score"),
        post_filter=dsl.parse_query(body["post_filter"]) if body.get("post_filter") else None,
        version=_flag(params.get("version", body.get("version", False))),
        seq_no_primary_term=_flag(params.get("seq_no_primary_term", body.get("seq_no_primary_term", False))),
        track_scores=_flag(body.get("track_scores", False)),
        ext=body.get("ext") or {},
        raw=body,
        fetch=fetch,
        **_extras(body),
    )


def _parse_lean(body: dict[str, Any]) -> SearchRequest:
    """What `parse_request` gives for a body of `_LEAN_KEYS` only, with the same checks in the same order, minus the
    steps that find nothing there (each is a few microseconds, and a knn search is ~100)."""
    body = dict(body)
    query = dsl.parse_query(body["query"]) if body.get("query") is not None else dsl.MatchAll()
    size = _int(body.get("size", 10), "size")
    from_ = _int(body.get("from", 0), "from")
    if size < 0:
        raise IllegalArgumentError(f"[size] parameter cannot be negative, found [{size}]")
    if from_ < 0:
        raise IllegalArgumentError(f"[from] parameter cannot be negative, found [{from_}]")
    source = SourceFilter.parse(body.get("_source"))
    return SearchRequest(query=query, from_=from_, size=size, source=source, raw=body, fetch=_NO_FETCH)


def _extras(body: dict[str, Any]) -> dict[str, Any]:
    """rescore, terminate_after and indices_boost; refusals of the options mlsearch does not implement."""
    if not _UNSUPPORTED.keys().isdisjoint(body):  # one set test on the usual request, not a lookup per option
        for key, feature in _UNSUPPORTED.items():
            if body.get(key) is not None:
                raise IllegalArgumentError(f"[{key}] is not supported by mlsearch: {feature}")
    if "profile" in body and _flag(body["profile"]):
        # Refused rather than faked: OpenSearch's profile is a tree of Lucene timings (per query node and collector)
        # that tantivy does not expose; invented breakdowns would mislead the tools that read them.
        raise IllegalArgumentError("[profile] is not supported by mlsearch: search profiling is not implemented")
    # `timeout` is accepted and has nothing to bound: a search here runs to completion, so `timed_out` stays false.
    terminate_after = _int(body.get("terminate_after", 0), "terminate_after")
    if terminate_after < 0:
        raise IllegalArgumentError("terminateAfter must be > 0")
    rescore: tuple[Any, ...] = ()
    if body.get("rescore") is not None:  # the import costs a lookup per request: only when there is one
        from mlsearch.engine.rescore import parse_rescore  # it builds on this module

        rescore = parse_rescore(body["rescore"])
    return {
        "rescore": rescore,
        "terminate_after": terminate_after,
        "indices_boost": _indices_boost(body.get("indices_boost")),
    }


def _indices_boost(spec: Any) -> tuple[tuple[str, float], ...]:
    """The list form (`[{"index": boost}, ...]`, in order) or the older object form."""
    if spec is None:
        return ()
    items = spec if isinstance(spec, list) else [spec]
    pairs = []
    for item in items:
        if not isinstance(item, dict):
            raise ParsingError(f"Unexpected token {_token(item)} in [indices_boost].")
        for name, boost in item.items():
            if isinstance(boost, bool) or not isinstance(boost, int | float):
                raise ParsingError(f"Unexpected token {_token(boost)} in [indices_boost].")
            pairs.append((str(name), float(boost)))
    return tuple(pairs)


def _source_given(body: dict[str, Any], params: dict[str, str]) -> bool:
    return body.get("_source") is not None or any(
        k in params for k in ("_source", "_source_includes", "_source_excludes")
    )


def _source_with_stored_fields(source: SourceFilter, fetch: FetchFields, source_given: bool) -> SourceFilter:
    """`stored_fields` turns `_source` off unless it names `_source` or the request asks for it; `_none_` refuses
    both `_source` and `fields` (OpenSearch's validation messages)."""
    if fetch.stored_fields is None:
        return source
    if fetch.stored_none:
        problems = []
        if source_given and source.enabled:
            problems.append("[stored_fields] cannot be disabled if [_source] is requested")
        if fetch.fields is not None:
            problems.append("[stored_fields] cannot be disabled when using the [fields] option")
        if problems:
            listed = "".join(f"{i}: {p};" for i, p in enumerate(problems, 1))
            raise ActionRequestValidationError(f"Validation Failed: {listed}")
    if source_given:
        return source
    return SourceFilter(enabled="_source" in fetch.stored_fields)


def _token(value: Any) -> str:
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    return "VALUE_STRING"


def _int(value: Any, name: str) -> int:
    if isinstance(value, dict | list | bool):
        raise IllegalArgumentError(f"Failed to parse int parameter [{name}] with value [{value}]")
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite float
        raise IllegalArgumentError(f"Failed to parse int parameter [{name}] with value [{value}]") from None


def _float(value: Any, name: str) -> float:
    if isinstance(value, bool | dict | list):
        raise ParsingError(f"[{name}] failed to parse field [{name}]")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ParsingError(f"[{name}] failed to parse field [{name}]") from None


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
            raise ParsingError(
                "malformed sort format, within the sort array, an object, or an actual string are allowed"
            )
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
