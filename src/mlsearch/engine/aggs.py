"""Aggregations, run by tantivy's aggregation engine on fast-field columns and rendered as OpenSearch does.

Field names are translated to the index's columns on the way in; results come back in OpenSearch's shape."""

from __future__ import annotations

from typing import Any

import tantivy

from mlsearch.engine.index import Index
from mlsearch.engine.query.compile import Context
from mlsearch.errors import IllegalArgumentError, ParsingError

_METRICS = {"min", "max", "avg", "sum", "value_count", "stats", "cardinality"}
_BUCKETS = {"terms", "histogram", "range"}


def run(index: Index, ctx: Context, query: tantivy.Query, spec: dict[str, Any]) -> dict[str, Any]:
    translated = {name: _translate(name, body, ctx) for name, body in spec.items()}
    raw = index.lexical.searcher().aggregate(query, translated)
    return {name: _render(spec[name], raw.get(name, {})) for name in spec}


def _kind(name: str, body: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(body, dict):
        raise ParsingError(f"Expected [START_OBJECT] under [{name}], but got a [VALUE_STRING] in [{name}]")
    kinds = [k for k in body if k not in ("aggs", "aggregations", "meta")]
    if len(kinds) != 1:
        raise ParsingError(f"Aggregation definition for [{name}] has no type" if not kinds else
                           f"Found two aggregation type definitions in [{name}]: [{kinds[0]}] and [{kinds[1]}]")
    kind = kinds[0]
    if kind not in _METRICS | _BUCKETS:
        raise ParsingError(f"Unknown aggregation type [{kind}] did you mean [terms]?" if kind else
                           f"Unknown aggregation type [{kind}]")
    return kind, body[kind]


def _translate(name: str, body: Any, ctx: Context) -> dict[str, Any]:
    kind, params = _kind(name, body)
    params = dict(params)
    field = params.get("field")
    if field is not None:
        col = ctx.columns.get(field)
        if col is None:
            raise IllegalArgumentError(f"aggregations on unmapped field [{field}] are not supported yet")
        if col.kind == "text":
            raise IllegalArgumentError(
                f"Text fields are not optimised for operations that require per-document field data like "
                f"aggregations and sorting, so these operations are disabled by default. Please use a keyword "
                f"field instead. Alternatively, set fielddata=true on [{field}] in order to load field data by "
                f"uninverting the inverted index. Note that this can use significant memory."
            )
        params["field"] = col.name
    out: dict[str, Any] = {kind: params}
    subs = body.get("aggs", body.get("aggregations"))
    if subs:
        out["aggs"] = {n: _translate(n, b, ctx) for n, b in subs.items()}
    return out


def _render(spec: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    kind = next(k for k in spec if k not in ("aggs", "aggregations", "meta"))
    subs = spec.get("aggs", spec.get("aggregations")) or {}
    if kind in ("min", "max", "avg", "sum"):
        return {"value": raw.get("value")}
    if kind in ("value_count", "cardinality"):
        value = raw.get("value")
        return {"value": int(value) if value is not None else 0}
    if kind == "stats":
        return {"count": raw.get("count", 0), "min": raw.get("min"), "max": raw.get("max"),
                "avg": raw.get("avg"), "sum": raw.get("sum", 0.0)}
    buckets = []
    for bucket in raw.get("buckets", []):
        out = {k: v for k, v in bucket.items() if k not in subs}
        for sub_name, sub_spec in subs.items():
            out[sub_name] = _render(sub_spec, bucket.get(sub_name, {}))
        buckets.append(out)
    if kind == "terms":
        return {"doc_count_error_upper_bound": raw.get("doc_count_error_upper_bound", 0),
                "sum_other_doc_count": raw.get("sum_other_doc_count", 0), "buckets": buckets}
    return {"buckets": buckets}


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Combining aggregations of several indices is not supported yet beyond the first index."""
    raise IllegalArgumentError("aggregations over more than one index are not supported yet")
