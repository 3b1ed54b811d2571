"""Bucket aggregations over one column: terms, histogram, date_histogram, range, date_range."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from typing import Any

import tantivy

from mlsearch.engine.aggs._core import (
    Env,
    Scope,
    aggregate,
    aggregation,
    column,
    count,
    empty_subs,
    is_date,
    missing_query,
    narrowed,
    numeric_column,
    render_subs,
    run_level,
    translate,
)
from mlsearch.engine.aggs._format import (
    Interval,
    calendar_edges,
    date_formatter,
    date_value,
    java_double,
    parse_interval,
)
from mlsearch.engine.aggs.spec import MAX_BUCKETS, Node, Result, TooManyBucketsError
from mlsearch.engine.lexical import Column
from mlsearch.errors import IllegalArgumentError, ParsingError

# ---- terms -------------------------------------------------------------------------------------------------


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ParsingError(f"[{name}] must be an integer, found [{value}]") from None


def terms_sizes(node: Node) -> tuple[int, int]:
    """(size, shard_size): each index returns shard_size buckets so that merging indices stays accurate."""
    size = _int(node.params.get("size", 10), "size")
    if size <= 0:
        raise IllegalArgumentError(f"[size] must be greater than 0. Found [{size}] in [{node.name}]")
    return size, max(_int(node.params.get("shard_size", int(size * 1.5 + 10)), "shard_size"), size)


def orders(node: Node) -> list[tuple[str, bool]]:
    """(target, descending) criteria, OpenSearch's default and tie-breaks included."""
    spec = node.params.get("order", {"_count": "desc"})
    items = spec if isinstance(spec, list) else [spec]
    out: list[tuple[str, bool]] = []
    for item in items:
        if not isinstance(item, dict):
            raise ParsingError("Unknown key for a VALUE_STRING in [order].")
        for target, direction in item.items():
            if str(direction).lower() not in ("asc", "desc"):
                raise ParsingError(f"Unknown terms order direction [{direction}] in terms aggregation [{node.name}]")
            out.append((target, str(direction).lower() == "desc"))
    if not any(t == "_key" for t, _ in out):
        out.append(("_key", False))
    return out


def sort_buckets(buckets: list[dict[str, Any]], criteria: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    def value(bucket: dict[str, Any], target: str) -> Any:
        if target == "_count":
            return bucket["doc_count"]
        if target == "_key":
            return bucket["key"]
        name, _, metric = target.partition(".")
        sub = bucket.get(name) or {}
        return sub.get(metric or "value", sub.get("doc_count"))

    def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
        for target, descending in criteria:
            x, y = value(a, target), value(b, target)
            if x == y:
                continue
            if x is None or y is None:
                return 1 if x is None else -1  # empty values last, whatever the direction
            less = x < y
            return (1 if less else -1) if descending else (-1 if less else 1)
        return 0

    return sorted(buckets, key=functools.cmp_to_key(compare))


def _typed(col: Column, value: Any) -> Any:
    if is_date(col):
        return date_value(value, col.field.date_format)
    if col.kind == "integer":
        return int(value)
    if col.kind == "float":
        return float(value)
    if col.kind == "boolean":
        return value in (True, 1, "true")
    return str(value)


def _terms_translate(env: Env, node: Node) -> dict[str, Any] | None:
    col = column(env, node)
    if col is None:
        return None
    _, shard = terms_sizes(node)
    params: dict[str, Any] = {
        "field": col.name,
        "size": shard,
        "min_doc_count": _int(node.params.get("min_doc_count", 1), "min_doc_count"),
    }
    target, descending = orders(node)[0]
    native_subs = {s.name: s for s in node.subs if translate(env, s) is not None}
    name, _, _metric = target.partition(".")
    if name in native_subs and native_subs[name].kind == "avg":
        target = f"{name}.avg"  # avg runs as stats
    if target in ("_count", "_key") or name in native_subs:
        params["order"] = {target: "desc" if descending else "asc"}
    if "missing" in node.params:
        missing = _typed(col, node.params["missing"])
        params["missing"] = int(missing) if col.kind == "boolean" else missing
    for key in ("include", "exclude"):
        if isinstance(node.params.get(key), str):
            params[key] = node.params[key]
    return {"terms": params}


def keyer(col: Column | None) -> Callable[[Any], dict[str, Any]]:
    """`key` (and `key_as_string`) of a bucket as OpenSearch prints them for the column's type."""
    if col is None or col.kind == "keyword":
        return lambda k: {"key": str(k)}
    if col.kind == "boolean":
        return lambda k: {"key": int(k), "key_as_string": "true" if int(k) else "false"}
    if is_date(col):
        fmt = date_formatter(col.field.date_format)
        return lambda k: {"key": int(k), "key_as_string": fmt(int(k))}
    if col.kind == "integer":
        return lambda k: {"key": int(k)}
    return lambda k: {"key": float(k)}


def _term_scope(env: Env, scope: Scope, col: Column, node: Node, key: Any) -> tantivy.Query:
    value = _typed(col, key)
    query = tantivy.Query.term_query(
        env.ctx.schema, col.name, value, index_option="freq" if col.kind == "keyword" else "basic"
    )
    if "missing" in node.params and _typed(col, node.params["missing"]) == value:
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, query), (tantivy.Occur.Should, missing_query(env, col))]
        )
    return narrowed(scope(), query)


@aggregation("terms", translate=_terms_translate)
def render_terms(env: Env, scope: Scope, node: Node, raw: dict[str, Any] | None) -> Result:
    col = column(env, node)
    _size, _shard = terms_sizes(node)
    raw = raw or {}
    key_of = keyer(col)
    buckets = []
    for item in raw.get("buckets", []):
        bucket = {**key_of(item["key"]), "doc_count": item["doc_count"]}
        assert col is not None
        sub_scope = functools.partial(_term_scope, env, scope, col, node, bucket["key"])
        bucket.update(render_subs(env, sub_scope, node, item))
        buckets.append(bucket)
    return terms_result(node, sort_buckets(buckets, orders(node)), int(raw.get("sum_other_doc_count") or 0))


def terms_result(node: Node, buckets: list[dict[str, Any]], other: int) -> Result:
    """Terms output from sorted candidate buckets; `other` counts documents in none of them."""
    size, shard = terms_sizes(node)
    hidden = sum(b["doc_count"] for b in buckets[size:])
    body = {"doc_count_error_upper_bound": 0, "sum_other_doc_count": other + hidden, "buckets": buckets[:size]}
    return Result(node, body, candidates=buckets[:shard], other=other + sum(b["doc_count"] for b in buckets[shard:]))


# ---- histograms ----------------------------------------------------------------------------------------------


def _interval(node: Node) -> float:
    try:
        interval = float(node.params["interval"])
    except (KeyError, TypeError, ValueError):
        raise IllegalArgumentError(f"[interval] must be >0 for histogram aggregation [{node.name}]") from None
    if interval <= 0:
        raise IllegalArgumentError(f"[interval] must be >0 for histogram aggregation [{node.name}]")
    return interval


def _bounds(node: Node, key: str, convert: Callable[[Any], float]) -> dict[str, float] | None:
    bounds = node.params.get(key)
    if not isinstance(bounds, dict):
        return None
    return {k: convert(bounds[k]) for k in ("min", "max") if bounds.get(k) is not None}


def _histogram_translate(env: Env, node: Node) -> dict[str, Any] | None:
    col = numeric_column(env, node)
    if col is None:
        return None
    params: dict[str, Any] = {
        "field": col.name,
        "interval": _interval(node),
        "min_doc_count": _int(node.params.get("min_doc_count", 0), "min_doc_count"),
    }
    if node.params.get("offset") is not None:
        params["offset"] = float(node.params["offset"])
    for key in ("extended_bounds", "hard_bounds"):
        bounds = _bounds(node, key, float)
        if bounds and len(bounds) == 2:
            params[key] = bounds
    return {"histogram": params}


def _range_query(env: Env, col: Column, low: float | None, high: float | None) -> tantivy.Query:
    """[low, high) on the column; integer columns take the bounds rounded up."""
    if col.kind == "integer":
        kind = tantivy.FieldType.Integer
        low = None if low is None else math.ceil(low)
        high = None if high is None else math.ceil(high)
    else:
        kind = tantivy.FieldType.Float
    if low is None and high is None:
        return tantivy.Query.all_query()
    return tantivy.Query.range_query(
        env.ctx.schema, col.name, kind, low, high, include_lower=True, include_upper=high is None
    )


def _span_scope(env: Env, scope: Scope, col: Column, low: float | None, high: float | None) -> tantivy.Query:
    return narrowed(scope(), _range_query(env, col, low, high))


def histogram_buckets(
    env: Env, scope: Scope, node: Node, col: Column, spans: list[tuple[float, float, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Buckets from (start, end, tantivy bucket) spans, keyed like the column; sub-aggregations included."""
    key_of = keyer(col) if is_date(col) else (lambda k: {"key": float(k)})
    if is_date(col) and node.params.get("format"):
        fmt = date_formatter(node.params["format"])
        key_of = lambda k: {"key": int(k), "key_as_string": fmt(int(k))}  # noqa: E731
    min_count = _int(node.params.get("min_doc_count", 0), "min_doc_count")
    buckets = []
    for start, end, item in spans:
        if item.get("doc_count", 0) < min_count:
            continue
        bucket = {**key_of(start), "doc_count": item.get("doc_count", 0)}
        bucket.update(render_subs(env, functools.partial(_span_scope, env, scope, col, start, end), node, item))
        buckets.append(bucket)
    return buckets


def histogram_result(node: Node, buckets: list[dict[str, Any]], **state: Any) -> Result:
    """Histogram output; `state` keeps what filling gaps between indices' buckets needs."""
    if node.params.get("keyed"):
        keyed = {(b.get("key_as_string") or java_double(b["key"])): b for b in buckets}
        return Result(node, {"buckets": keyed}, buckets=buckets, **state)
    return Result(node, {"buckets": buckets}, buckets=buckets, **state)


def _gap_state(env: Env, node: Node, col: Column | None) -> dict[str, Any]:
    state: dict[str, Any] = {"empty": empty_subs(env, node)}
    if is_date(col):
        assert col is not None
        fmt = date_formatter(node.params.get("format") or col.field.date_format)
        state["key_as_string"] = lambda k: fmt(int(k))
    return state


@aggregation("histogram", translate=_histogram_translate)
def render_histogram(env: Env, scope: Scope, node: Node, raw: dict[str, Any] | None) -> Result:
    col = numeric_column(env, node)
    interval = _interval(node)
    if col is None or raw is None:
        return histogram_result(node, [])
    spans = [(b["key"], b["key"] + interval, b) for b in raw.get("buckets", [])]
    return histogram_result(node, histogram_buckets(env, scope, node, col, spans), **_gap_state(env, node, col))


def _date_bounds(node: Node, col: Column) -> dict[str, float] | None:
    fmt = node.params.get("format") or col.field.date_format
    return _bounds(node, "extended_bounds", lambda v: float(date_value(v, fmt)))


def _date_histogram_translate(env: Env, node: Node) -> dict[str, Any] | None:
    col = numeric_column(env, node)
    interval = parse_interval(node.params, node.name)
    if col is None or not interval.native:
        return None
    params: dict[str, Any] = {
        "field": col.name,
        "interval": interval.every,
        "offset": interval.offset,
        "min_doc_count": _int(node.params.get("min_doc_count", 0), "min_doc_count"),
    }
    bounds = _date_bounds(node, col)
    if bounds and len(bounds) == 2:
        params["extended_bounds"] = bounds
    return {"histogram": params}


@aggregation("date_histogram", translate=_date_histogram_translate)
def render_date_histogram(env: Env, scope: Scope, node: Node, raw: dict[str, Any] | None) -> Result:
    col = numeric_column(env, node)
    interval = parse_interval(node.params, node.name)
    if col is None:
        return histogram_result(node, [])
    if raw is not None:
        assert interval.every is not None
        spans = [(b["key"], b["key"] + interval.every, b) for b in raw.get("buckets", [])]
    else:
        spans = _calendar_spans(env, scope, node, col, interval)
    return histogram_result(node, histogram_buckets(env, scope, node, col, spans), **_gap_state(env, node, col))


def _calendar_spans(
    env: Env, scope: Scope, node: Node, col: Column, interval: Interval
) -> list[tuple[float, float, dict[str, Any]]]:
    """Calendar buckets (months have no fixed width): edges walked in Python, counted by a tantivy range agg."""
    query = scope()
    stats = aggregate(env, query, {"s": {"stats": {"field": col.name}}})["s"]
    low, high = stats.get("min"), stats.get("max")
    bounds = _date_bounds(node, col) or {}
    if low is None and not bounds:
        return []
    low = min(v for v in (low, bounds.get("min"), bounds.get("max")) if v is not None)
    high = max(v for v in (high, bounds.get("max"), bounds.get("min")) if v is not None)
    edges = calendar_edges(interval, int(low), int(high), MAX_BUCKETS)
    if len(edges) - 1 > MAX_BUCKETS:
        raise TooManyBucketsError(len(edges) - 1)
    ranges = [{"from": edges[i], "to": edges[i + 1], "key": str(i)} for i in range(len(edges) - 1)]
    request: dict[str, Any] = {"range": {"field": col.name, "ranges": ranges}}
    subs = {s.name: t for s in node.subs if (t := translate(env, s)) is not None}
    if subs:
        request["aggs"] = subs
    raw = aggregate(env, query, {"r": request})["r"]
    by_key = {b["key"]: b for b in raw.get("buckets", [])}
    return [(edges[i], edges[i + 1], by_key.get(str(i), {"doc_count": 0})) for i in range(len(edges) - 1)]


# ---- ranges --------------------------------------------------------------------------------------------------


def _spans(env: Env, node: Node, col: Column | None) -> list[tuple[str, float | None, float | None]]:
    """(key, from, to) of each range, sorted as OpenSearch sorts them."""
    ranges = node.params.get("ranges")
    if not isinstance(ranges, list) or not ranges:
        raise IllegalArgumentError(f"No [ranges] specified for the [{node.name}] aggregation")
    dated = node.kind == "date_range" or is_date(col)
    fmt = node.params.get("format") or (col.field.date_format if col is not None else None)
    convert: Callable[[Any], float] = (lambda v: float(date_value(v, fmt))) if dated else float
    show = date_formatter(fmt) if dated else java_double
    spans = []
    for item in ranges:
        low = None if item.get("from") is None else convert(item["from"])
        high = None if item.get("to") is None else convert(item["to"])
        key = item.get("key") or f"{'*' if low is None else show(low)}-{'*' if high is None else show(high)}"
        spans.append((str(key), low, high))
    return sorted(spans, key=lambda s: (-math.inf if s[1] is None else s[1], math.inf if s[2] is None else s[2]))


def _overlapping(spans: list[tuple[str, float | None, float | None]]) -> bool:
    return any(high is None or low is None or low < high for (_, _, high), (_, low, _) in itertools.pairwise(spans))


def _range_translate(env: Env, node: Node) -> dict[str, Any] | None:
    col = numeric_column(env, node)
    if col is None:
        return None
    spans = _spans(env, node, col)
    if _overlapping(spans):
        return None  # tantivy refuses overlapping ranges: each is counted by its own query instead
    ranges = []
    for i, (_, low, high) in enumerate(spans):
        item: dict[str, Any] = {"key": str(i)}
        if low is not None:
            item["from"] = low
        if high is not None:
            item["to"] = high
        ranges.append(item)
    return {"range": {"field": col.name, "ranges": ranges}}


@aggregation("range", "date_range", translate=_range_translate)
def render_range(env: Env, scope: Scope, node: Node, raw: dict[str, Any] | None) -> Result:
    col = numeric_column(env, node)
    spans = _spans(env, node, col)
    by_key = {b["key"]: b for b in (raw or {}).get("buckets", [])}
    dated = node.kind == "date_range" or is_date(col)
    show = date_formatter(node.params.get("format") or (col.field.date_format if col is not None else None))
    buckets = []
    for i, (key, low, high) in enumerate(spans):
        bucket: dict[str, Any] = {"key": key}
        for name, value in (("from", low), ("to", high)):
            if value is not None:
                bucket[name] = value
                if dated:
                    bucket[f"{name}_as_string"] = show(value)
        if col is None:
            bucket["doc_count"] = 0
            bucket.update(empty_subs(env, node))
        elif raw is not None:
            item = by_key.get(str(i), {"doc_count": 0})
            bucket["doc_count"] = item["doc_count"]
            bucket.update(render_subs(env, functools.partial(_span_scope, env, scope, col, low, high), node, item))
        else:
            query = _span_scope(env, scope, col, low, high)
            bucket["doc_count"] = count(env, query)
            bucket.update(run_level(env, query, node.subs))
        buckets.append(bucket)
    return range_result(node, buckets)


def range_result(node: Node, buckets: list[dict[str, Any]]) -> Result:
    if node.params.get("keyed"):
        return Result(
            node, {"buckets": {b["key"]: {k: v for k, v in b.items() if k != "key"} for b in buckets}}, buckets=buckets
        )
    return Result(node, {"buckets": buckets}, buckets=buckets)
