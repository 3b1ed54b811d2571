"""Combine the aggregations of several indices, as OpenSearch's coordinator reduces its shards' results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlsearch.engine.aggs._format import calendar_edges, parse_interval
from mlsearch.engine.aggs.buckets import histogram_result, orders, range_result, sort_buckets, terms_result
from mlsearch.engine.aggs.metrics import stats_body, value_result
from mlsearch.engine.aggs.spec import MAX_BUCKETS, Result

Merger = Callable[[Result, Result], Result]


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The aggregations of two indices' results, as one."""
    return {name: merge_one(a[name], b[name]) if name in b else a[name] for name in a}


def merge_one(a: Result, b: Result) -> Result:
    return _MERGERS[a.node.kind](a, b)


def _merge_bucket(x: dict[str, Any], y: dict[str, Any]) -> dict[str, Any]:
    """Two buckets with the same key: counts added, sub-aggregations merged."""
    out = dict(x)
    out["doc_count"] = x["doc_count"] + y["doc_count"]
    for name, value in x.items():
        if isinstance(value, Result) and name in y:
            out[name] = merge_one(value, y[name])
    return out


def _by_key(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged = {bucket["key"]: bucket for bucket in a}
    for bucket in b:
        key = bucket["key"]
        merged[key] = _merge_bucket(merged[key], bucket) if key in merged else bucket
    return list(merged.values())


def _extreme(a: Result, b: Result) -> Result:
    values = [v for v in (a["value"], b["value"]) if v is not None]
    pick = min if a.node.kind == "min" else max
    return value_result(a.node, pick(values) if values else None, a.state.get("fmt") or b.state.get("fmt"))


def _avg(a: Result, b: Result) -> Result:
    n, total = a.state["count"] + b.state["count"], a.state["sum"] + b.state["sum"]
    return value_result(a.node, total / n if n else None, a.state.get("fmt") or b.state.get("fmt"), count=n, sum=total)


def _added(a: Result, b: Result) -> Result:
    return value_result(a.node, a["value"] + b["value"], None)


def _cardinality(a: Result, b: Result) -> Result:
    # Without the distinct values themselves, the larger count is the best lower bound.
    return value_result(a.node, max(a["value"], b["value"]), None)


def _stats(a: Result, b: Result) -> Result:
    n = a["count"] + b["count"]
    lows = [v for v in (a["min"], b["min"]) if v is not None]
    highs = [v for v in (a["max"], b["max"]) if v is not None]
    fmt = a.state.get("fmt") or b.state.get("fmt")
    body = stats_body(n, min(lows) if lows else None, max(highs) if highs else None, a["sum"] + b["sum"], fmt)
    return Result(a.node, body, fmt=fmt)


def _terms(a: Result, b: Result) -> Result:
    buckets = sort_buckets(_by_key(a.state["candidates"], b.state["candidates"]), orders(a.node))
    return terms_result(a.node, buckets, a.state["other"] + b.state["other"])


def _histogram(a: Result, b: Result) -> Result:
    buckets = sorted(_by_key(a.state["buckets"], b.state["buckets"]), key=lambda bucket: bucket["key"])
    empty = a.state.get("empty") or b.state.get("empty")
    if buckets and empty is not None and int(a.node.params.get("min_doc_count", 0)) == 0:
        buckets = _fill_gaps(a, buckets, empty)
    return histogram_result(a.node, buckets)


def _fill_gaps(a: Result, buckets: list[dict[str, Any]], empty: dict[str, Any]) -> list[dict[str, Any]]:
    """Empty buckets between the first and the last, as one index would have returned them."""
    node = a.node
    first, last = buckets[0]["key"], buckets[-1]["key"]
    if node.kind == "histogram":
        step = float(node.params["interval"])
        keys: list[Any] = [first + i * step for i in range(round((last - first) / step) + 1)]
    else:
        keys = calendar_edges(parse_interval(node.params, node.name), int(first), int(last), MAX_BUCKETS)[:-1]
    if len(keys) > MAX_BUCKETS + 1:
        return buckets
    present = {bucket["key"]: bucket for bucket in buckets}
    template = buckets[0]
    key_as_string = a.state.get("key_as_string")
    out = []
    for key in keys:
        if key in present:
            out.append(present[key])
            continue
        bucket: dict[str, Any] = {"key": key}
        if "key_as_string" in template and key_as_string is not None:
            bucket["key_as_string"] = key_as_string(key)
        bucket["doc_count"] = 0
        bucket.update(empty)
        out.append(bucket)
    return out


def _ranges(a: Result, b: Result) -> Result:
    buckets = [_merge_bucket(x, y) for x, y in zip(a.state["buckets"], b.state["buckets"], strict=True)]
    return range_result(a.node, buckets)


def _filter(a: Result, b: Result) -> Result:
    return Result(a.node, _merge_bucket(a, b))


def _filters(a: Result, b: Result) -> Result:
    x, y = a["buckets"], b["buckets"]
    if isinstance(x, dict):
        return Result(a.node, {"buckets": {name: _merge_bucket(bucket, y[name]) for name, bucket in x.items()}})
    return Result(a.node, {"buckets": [_merge_bucket(p, q) for p, q in zip(x, y, strict=True)]})


def _top_hits(a: Result, b: Result) -> Result:
    x, y = a["hits"], b["hits"]
    hits = x["hits"] + y["hits"]
    sort = a.state["sort"]
    if sort:
        for i, key in reversed(list(enumerate(sort))):
            present = [h for h in hits if h.get("sort", [None] * len(sort))[i] is not None]
            absent = [h for h in hits if h.get("sort", [None] * len(sort))[i] is None]
            hits = sorted(present, key=lambda h, i=i: h["sort"][i], reverse=key.descending) + absent
    else:
        hits = sorted(hits, key=lambda h: -(h["_score"] or 0.0))
    scores = [s for s in (x.get("max_score"), y.get("max_score")) if s is not None]
    body: dict[str, Any] = {}
    if "total" in x:
        body["total"] = {"value": x["total"]["value"] + y["total"]["value"], "relation": x["total"]["relation"]}
    body["max_score"] = max(scores) if scores else None
    body["hits"] = hits[: a.state["size"]]
    return Result(a.node, {"hits": body}, **a.state)


_MERGERS: dict[str, Merger] = {
    "min": _extreme,
    "max": _extreme,
    "avg": _avg,
    "sum": _added,
    "value_count": _added,
    "cardinality": _cardinality,
    "stats": _stats,
    "extended_stats": _stats,
    "terms": _terms,
    "histogram": _histogram,
    "date_histogram": _histogram,
    "range": _ranges,
    "date_range": _ranges,
    "filter": _filter,
    "filters": _filters,
    "top_hits": _top_hits,
}
