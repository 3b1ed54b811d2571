"""The aggregation tree of a search request, and the rendered result type that remembers how to merge itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlsearch.errors import MLSearchError, ParsingError

METRICS = {"min", "max", "avg", "sum", "value_count", "cardinality", "stats", "extended_stats"}
BUCKETS = {"terms", "histogram", "date_histogram", "range", "date_range", "filter", "filters"}
KINDS = METRICS | BUCKETS | {"top_hits"}
MAX_BUCKETS = 65535  # OpenSearch's default `search.max_buckets`
_NOT_TYPES = ("aggs", "aggregations", "meta")


class TooManyBucketsError(MLSearchError):
    status = 400
    error_type = "too_many_buckets_exception"

    def __init__(self, count: int) -> None:
        super().__init__(
            f"Trying to create too many buckets. Must be less than or equal to: [{MAX_BUCKETS}] but was [{count}]. "
            f"This limit can be set by changing the [search.max_buckets] cluster level setting.",
            max_buckets=MAX_BUCKETS,
        )


@dataclass(frozen=True, slots=True)
class Node:
    """One named aggregation of the request, with its sub-aggregations."""

    name: str
    kind: str
    params: dict[str, Any]
    subs: tuple[Node, ...]

    @property
    def field(self) -> str | None:
        value = self.params.get("field")
        return value if isinstance(value, str) else None


class Result(dict):  # type: ignore[type-arg]
    """A rendered aggregation (serialised as a plain object) that keeps what merging with another index needs."""

    __slots__ = ("node", "state")

    def __init__(self, node: Node, body: dict[str, Any], **state: Any) -> None:
        super().__init__(body)
        self.node = node
        self.state: dict[str, Any] = state


def parse(spec: Any) -> tuple[Node, ...]:
    """The nodes of an `aggs` object, validated as OpenSearch's parser does."""
    if not isinstance(spec, dict):
        raise ParsingError("Expected [START_OBJECT] under [aggregations], but got a [VALUE_STRING]")
    return tuple(_node(name, body) for name, body in spec.items())


def _node(name: str, body: Any) -> Node:
    if not isinstance(body, dict):
        raise ParsingError(f"Expected [START_OBJECT] under [{name}], but got a [VALUE_STRING] in [{name}]")
    kinds = [k for k in body if k not in _NOT_TYPES]
    if not kinds:
        raise ParsingError(f"Missing definition for aggregation [{name}]")
    if len(kinds) > 1:
        raise ParsingError(f"Found two aggregation type definitions in [{name}]: [{kinds[0]}] and [{kinds[1]}]")
    kind = kinds[0]
    if kind not in KINDS:
        raise ParsingError(f"Unknown aggregation type [{kind}]")
    params = body[kind]
    if not isinstance(params, dict):
        raise ParsingError(f"Expected [START_OBJECT] under [{kind}], but got a [VALUE_STRING] in [{name}]")
    subs_spec = body.get("aggs", body.get("aggregations")) or {}
    subs = parse(subs_spec)
    if subs and (kind in METRICS or kind == "top_hits"):
        raise ParsingError(f"Aggregator [{name}] of type [{kind}] cannot accept sub-aggregations")
    return Node(name, kind, dict(params), subs)


def count_buckets(results: dict[str, Any]) -> int:
    """Buckets in a rendered tree, as `search.max_buckets` counts them."""
    total = 0
    for value in results.values():
        if not isinstance(value, dict):
            continue
        buckets = value.get("buckets")
        items = buckets.values() if isinstance(buckets, dict) else buckets or []
        for bucket in items:
            if isinstance(bucket, dict):
                total += 1 + count_buckets(bucket)
        if "doc_count" in value:
            total += count_buckets(value)
    return total
