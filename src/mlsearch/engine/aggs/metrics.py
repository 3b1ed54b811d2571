"""Metric aggregations: min, max, avg, sum, value_count, cardinality, stats, extended_stats."""

from __future__ import annotations

from typing import Any

from mlsearch.engine.aggs._core import Env, Scope, aggregation, column, is_date, numeric_column
from mlsearch.engine.aggs._format import date_formatter, date_value
from mlsearch.engine.aggs.spec import Node, Result
from mlsearch.engine.lexical import Column

_COUNTING = {"value_count", "cardinality"}


def _translate(env: Env, node: Node) -> dict[str, Any] | None:
    col = column(env, node) if node.kind in _COUNTING else numeric_column(env, node)
    if col is None:
        return None
    params: dict[str, Any] = {"field": col.name}
    if "missing" in node.params:
        params["missing"] = _missing(col, node.params["missing"])
    # avg runs as stats: merging indices needs its sum and count.
    return {"stats" if node.kind == "avg" else node.kind: params}


def _missing(col: Column, value: Any) -> Any:
    if is_date(col):
        return date_value(value, col.field.date_format)
    return value if col.kind == "keyword" else float(value)


def _formatter(env: Env, node: Node) -> Any:
    col = env.ctx.columns.get(node.field or "")
    if not is_date(col):
        return None
    return date_formatter(node.params.get("format") or col.field.date_format)  # type: ignore[union-attr]


@aggregation("min", "max", "avg", "sum", "value_count", "cardinality", translate=_translate)
def render_single(env: Env, scope: Scope, node: Node, raw: dict[str, Any] | None) -> Result:
    raw = raw or {}
    fmt = _formatter(env, node)
    if node.kind == "avg":
        n, total = int(raw.get("count") or 0), float(raw.get("sum") or 0.0)
        return value_result(node, total / n if n else None, fmt, count=n, sum=total)
    value = raw.get("value")
    if node.kind in _COUNTING:
        return value_result(node, int(value or 0), None)
    if node.kind == "sum":
        return value_result(node, float(value or 0.0), None)
    return value_result(node, value, fmt)


def value_result(node: Node, value: Any, fmt: Any, **state: Any) -> Result:
    body: dict[str, Any] = {"value": value}
    if fmt is not None and value is not None:
        body["value_as_string"] = fmt(value)
    return Result(node, body, fmt=fmt, **state)


@aggregation("stats", "extended_stats", translate=_translate)
def render_stats(env: Env, scope: Scope, node: Node, raw: dict[str, Any] | None) -> Result:
    raw = raw or {}
    n = int(raw.get("count") or 0)
    body = stats_body(n, raw.get("min"), raw.get("max"), float(raw.get("sum") or 0.0), _formatter(env, node))
    if node.kind == "extended_stats":
        body.update({k: v for k, v in raw.items() if k not in body})
        body.setdefault("sum_of_squares", 0.0 if not n else None)
    return Result(node, body, fmt=_formatter(env, node))


def stats_body(n: int, low: Any, high: Any, total: float, fmt: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "count": n,
        "min": low if n else None,
        "max": high if n else None,
        "avg": total / n if n else None,
        "sum": total,
    }
    if fmt is not None and n:
        body.update(
            {
                "min_as_string": fmt(low),
                "max_as_string": fmt(high),
                "avg_as_string": fmt(total / n),
                "sum_as_string": fmt(total),
            }
        )
    return body
