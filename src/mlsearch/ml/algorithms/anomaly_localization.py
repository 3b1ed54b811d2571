"""ANOMALY_LOCALIZATION (execute only): which entities drive the change of an aggregate over time.

The documents of `index_name` between `start_time` and `end_time` (and `filter_query`) are cut into buckets of
`min_time_interval`. For each named aggregation (sum, max, min, avg, value_count) a bucket reports its
`overall_aggregate_value`; each bucket after the first (the base) also reports the `num_outputs` entities (one per
combination of `attribute_field_names` values) whose own aggregate moved most in the direction of the overall
change: `contribution_value` = `new_value` - `base_value`. With `anomaly_start_time`, only buckets from that time
on are localised.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from mlsearch.engine import dates
from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.algorithms.base import SourceReader
from mlsearch.ml.algorithms.registry import EXECUTE, algorithms

_AGGREGATES = ("sum", "max", "min", "avg", "value_count")
MAX_DOCUMENTS = 10_000
_REQUIRED = (
    "index_name",
    "attribute_field_names",
    "aggregations",
    "time_field_name",
    "start_time",
    "end_time",
    "min_time_interval",
    "num_outputs",
)


@algorithms.register("ANOMALY_LOCALIZATION", {EXECUTE})
class AnomalyLocalization:
    def __init__(self, parameters: Mapping[str, Any] | None = None) -> None:
        pass

    def execute(self, body: Mapping[str, Any], read: SourceReader) -> dict[str, Any]:
        for key in _REQUIRED:
            if body.get(key) is None:
                raise IllegalArgumentError(f"[{key}] is required for anomaly localization")
        aggs = _parse_aggregations(body["aggregations"])
        attributes = body["attribute_field_names"]
        if not isinstance(attributes, list) or not attributes:
            raise IllegalArgumentError("[attribute_field_names] must be a non-empty array of field names")
        start, end, step = int(body["start_time"]), int(body["end_time"]), int(body["min_time_interval"])
        if step <= 0 or end <= start:
            raise IllegalArgumentError("need start_time < end_time and a positive min_time_interval")
        time_field = str(body["time_field_name"])
        docs = read(str(body["index_name"]), _query(body, time_field, start, end), MAX_DOCUMENTS)
        edges = [start + i * step for i in range(math.ceil((end - start) / step))] + [end]
        rows = _rows(docs, time_field, attributes, edges)
        anomaly_start = body.get("anomaly_start_time")
        first_localised = 1 if anomaly_start is None else max(1, _bucket_of(int(anomaly_start), edges))
        num_outputs = int(body["num_outputs"])
        return {
            "results": [
                {"name": name, "result": {"buckets": _buckets(rows, edges, kind, field, num_outputs, first_localised)}}
                for name, kind, field in aggs
            ]
        }


def _parse_aggregations(raw: Any) -> list[tuple[str, str, str]]:
    if not isinstance(raw, list) or not raw:
        raise IllegalArgumentError("[aggregations] must be a non-empty array of named aggregations")
    out = []
    for item in raw:
        if not isinstance(item, Mapping) or len(item) != 1:
            raise IllegalArgumentError('each aggregation must look like {"name": {"sum": {"field": "value"}}}')
        [(name, spec)] = item.items()
        if not isinstance(spec, Mapping) or len(spec) != 1:
            raise IllegalArgumentError(f"aggregation [{name}] must have exactly one type")
        [(kind, options)] = spec.items()
        if kind not in _AGGREGATES or not isinstance(options, Mapping) or "field" not in options:
            raise IllegalArgumentError(f"aggregation [{name}]: supported types are {list(_AGGREGATES)} with a field")
        out.append((str(name), kind, str(options["field"])))
    return out


def _query(body: Mapping[str, Any], time_field: str, start: int, end: int) -> dict[str, Any]:
    filters: list[Any] = [{"range": {time_field: {"gte": start, "lt": end}}}]
    if body.get("filter_query"):
        filters.append(body["filter_query"])
    return {"query": {"bool": {"filter": filters}}, "size": MAX_DOCUMENTS}


def _rows(
    docs: Sequence[Mapping[str, Any]], time_field: str, attributes: Sequence[str], edges: list[int]
) -> list[tuple[int, tuple[str, ...], Mapping[str, Any]]]:
    """(bucket, entity key, document) for each document inside the time range."""
    out = []
    for doc in docs:
        stamp = doc.get(time_field)
        if stamp is None:
            continue
        try:
            millis = int(stamp) if isinstance(stamp, int | float) else dates.parse(stamp, None)
        except ValueError as exc:
            raise IllegalArgumentError(f"[{time_field}] value [{stamp}] is not a date") from exc
        bucket = _bucket_of(millis, edges)
        if 0 <= bucket < len(edges) - 1:
            out.append((bucket, tuple(str(doc.get(a)) for a in attributes), doc))
    return out


def _bucket_of(millis: int, edges: list[int]) -> int:
    for i in range(len(edges) - 1):
        if edges[i] <= millis < edges[i + 1]:
            return i
    return -1 if millis < edges[0] else len(edges) - 1


def _aggregate(kind: str, values: list[float]) -> float | None:
    if kind == "value_count":
        return float(len(values))
    if kind == "sum":
        return float(sum(values))
    if not values:
        return None
    return float({"max": max, "min": min, "avg": lambda v: sum(v) / len(v)}[kind](values))


def _buckets(
    rows: list[tuple[int, tuple[str, ...], Mapping[str, Any]]],
    edges: list[int],
    kind: str,
    field: str,
    num_outputs: int,
    first_localised: int,
) -> list[dict[str, Any]]:
    per_bucket: dict[int, list[float]] = defaultdict(list)
    per_entity: dict[tuple[int, tuple[str, ...]], list[float]] = defaultdict(list)
    for bucket, key, doc in rows:
        value = doc.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            per_bucket[bucket].append(float(value))
            per_entity[(bucket, key)].append(float(value))
    entities = sorted({key for _, key in per_entity})
    base_overall = _aggregate(kind, per_bucket[0]) or 0.0
    out = []
    for i in range(len(edges) - 1):
        overall = _aggregate(kind, per_bucket[i])
        bucket: dict[str, Any] = {"start_time": edges[i], "end_time": edges[i + 1], "overall_aggregate_value": overall}
        if i >= first_localised:
            rising = (overall or 0.0) >= base_overall
            changes = []
            for key in entities:
                base = _aggregate(kind, per_entity.get((0, key), [])) or 0.0
                new = _aggregate(kind, per_entity.get((i, key), [])) or 0.0
                changes.append(
                    {"key": list(key), "contribution_value": new - base, "base_value": base, "new_value": new}
                )
            changes.sort(key=lambda e: e["contribution_value"], reverse=rising)
            bucket["entities"] = changes[:num_outputs]
        out.append(bucket)
    return out
