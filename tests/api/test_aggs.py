"""Aggregations through opensearch-py against the real server: shapes and values as OpenSearch returns them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import RequestError

from tests.conftest import RawHttp, assert_error

MAPPING = {
    "properties": {
        "tag": {"type": "keyword"},
        "n": {"type": "long"},
        "price": {"type": "double"},
        "day": {"type": "date"},
        "ok": {"type": "boolean"},
        "body": {"type": "text"},
    }
}
DOCS = [
    {"tag": "a", "n": 1, "price": 10.0, "day": "2024-01-01T10:00:00Z", "ok": True, "body": "red fox"},
    {"tag": "b", "n": 2, "price": 25.5, "day": "2024-01-15T00:00:00Z", "ok": False, "body": "blue fox"},
    {"tag": "a", "n": 3, "price": 150.0, "day": "2024-02-03T00:00:00Z", "ok": True, "body": "red dog"},
    {"tag": "c", "n": 5, "price": 210.0, "day": "2024-04-20T12:00:00Z", "ok": True, "body": "green cat"},
    {"tag": "a", "price": 99.0, "day": "2023-12-31T23:59:59Z", "body": "no n"},
]


def _load(client: OpenSearch, name: str, docs: list[dict[str, Any]]) -> None:
    client.indices.create(index=name, body={"mappings": MAPPING})
    for i, doc in enumerate(docs):
        client.index(index=name, id=str(i), body=doc)
    client.indices.refresh(index=name)


@pytest.fixture
def idx(client: OpenSearch, index_name: str) -> str:
    _load(client, index_name, DOCS)
    return index_name


def _aggs(client: OpenSearch, index: str, aggs: dict[str, Any], query: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"size": 0, "aggs": aggs}
    if query is not None:
        body["query"] = query
    result = client.search(index=index, body=body)
    assert result["hits"]["hits"] == []
    return result["aggregations"]


def test_terms_keyword_order_and_size(client: OpenSearch, idx: str) -> None:
    out = _aggs(
        client,
        idx,
        {
            "t": {"terms": {"field": "tag"}},
            "by_key": {"terms": {"field": "tag", "order": {"_key": "desc"}, "size": 2}},
            "min2": {"terms": {"field": "tag", "min_doc_count": 2}},
        },
    )
    assert out["t"] == {
        "doc_count_error_upper_bound": 0,
        "sum_other_doc_count": 0,
        "buckets": [{"key": "a", "doc_count": 3}, {"key": "b", "doc_count": 1}, {"key": "c", "doc_count": 1}],
    }
    assert out["by_key"]["buckets"] == [{"key": "c", "doc_count": 1}, {"key": "b", "doc_count": 1}]
    assert out["by_key"]["sum_other_doc_count"] == 3
    assert out["min2"]["buckets"] == [{"key": "a", "doc_count": 3}]


def test_terms_numeric_boolean_date_and_missing(client: OpenSearch, idx: str) -> None:
    out = _aggs(
        client,
        idx,
        {
            "n": {"terms": {"field": "n", "order": {"_key": "asc"}}},
            "price": {"terms": {"field": "price", "size": 1, "order": {"_key": "asc"}}},
            "ok": {"terms": {"field": "ok"}},
            "n_missing": {"terms": {"field": "n", "missing": 0, "size": 1, "order": {"_key": "asc"}}},
            "day": {"terms": {"field": "day", "size": 1, "order": {"_key": "asc"}}},
        },
    )
    assert out["n"]["buckets"] == [{"key": k, "doc_count": 1} for k in (1, 2, 3, 5)]
    assert out["price"]["buckets"] == [{"key": 10.0, "doc_count": 1}]
    assert out["ok"]["buckets"] == [
        {"key": 1, "key_as_string": "true", "doc_count": 3},
        {"key": 0, "key_as_string": "false", "doc_count": 1},
    ]
    assert out["n_missing"]["buckets"] == [{"key": 0, "doc_count": 1}]
    assert out["day"]["buckets"] == [
        {"key": 1704067199000, "key_as_string": "2023-12-31T23:59:59.000Z", "doc_count": 1}
    ]


def test_metrics(client: OpenSearch, idx: str) -> None:
    out = _aggs(
        client,
        idx,
        {
            "min": {"min": {"field": "n"}},
            "max": {"max": {"field": "price"}},
            "avg": {"avg": {"field": "n"}},
            "sum": {"sum": {"field": "price"}},
            "count": {"value_count": {"field": "n"}},
            "card": {"cardinality": {"field": "tag"}},
            "stats": {"stats": {"field": "n"}},
            "first": {"min": {"field": "day"}},
        },
    )
    assert out["min"] == {"value": 1.0}
    assert out["max"] == {"value": 210.0}
    assert out["avg"] == {"value": 2.75}
    assert out["sum"] == {"value": 494.5}
    assert out["count"] == {"value": 4}
    assert out["card"] == {"value": 3}
    assert out["stats"] == {"count": 4, "min": 1.0, "max": 5.0, "avg": 2.75, "sum": 11.0}
    assert out["first"] == {"value": 1704067199000.0, "value_as_string": "2023-12-31T23:59:59.000Z"}


def test_metrics_on_no_documents_and_unmapped_fields(client: OpenSearch, idx: str) -> None:
    none = {"term": {"tag": "zzz"}}
    out = _aggs(
        client,
        idx,
        {
            "min": {"min": {"field": "n"}},
            "avg": {"avg": {"field": "n"}},
            "sum": {"sum": {"field": "n"}},
            "count": {"value_count": {"field": "n"}},
            "stats": {"stats": {"field": "n"}},
            "terms": {"terms": {"field": "tag"}},
        },
        query=none,
    )
    assert out == {
        "min": {"value": None},
        "avg": {"value": None},
        "sum": {"value": 0.0},
        "count": {"value": 0},
        "stats": {"count": 0, "min": None, "max": None, "avg": None, "sum": 0.0},
        "terms": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": []},
    }
    unmapped = _aggs(
        client,
        idx,
        {
            "t": {"terms": {"field": "nope"}},
            "m": {"max": {"field": "nope"}},
            "c": {"cardinality": {"field": "nope"}},
            "h": {"histogram": {"field": "nope", "interval": 5}},
        },
    )
    assert unmapped == {
        "t": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": []},
        "m": {"value": None},
        "c": {"value": 0},
        "h": {"buckets": []},
    }


def test_histogram(client: OpenSearch, idx: str) -> None:
    out = _aggs(
        client,
        idx,
        {
            "h": {"histogram": {"field": "n", "interval": 2}},
            "h1": {"histogram": {"field": "n", "interval": 2, "min_doc_count": 1}},
            "ext": {"histogram": {"field": "n", "interval": 2, "extended_bounds": {"min": 0, "max": 8}}},
        },
    )
    assert out["h"]["buckets"] == [
        {"key": 0.0, "doc_count": 1},
        {"key": 2.0, "doc_count": 2},
        {"key": 4.0, "doc_count": 1},
    ]
    assert out["h1"]["buckets"] == out["h"]["buckets"]
    assert [b["key"] for b in out["ext"]["buckets"]] == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_date_histogram_fixed_and_calendar(client: OpenSearch, idx: str) -> None:
    out = _aggs(
        client,
        idx,
        {
            "month": {"date_histogram": {"field": "day", "calendar_interval": "month"}},
            "quarter": {"date_histogram": {"field": "day", "calendar_interval": "quarter", "format": "yyyy-MM-dd"}},
            "year": {"date_histogram": {"field": "day", "calendar_interval": "1y", "min_doc_count": 1}},
            "week": {"date_histogram": {"field": "day", "calendar_interval": "week", "min_doc_count": 1}},
            "days": {"date_histogram": {"field": "day", "fixed_interval": "30d", "min_doc_count": 1}},
        },
        query={"range": {"day": {"gte": "2000-01-01", "lt": "2024-03-01"}}},
    )
    assert out["month"]["buckets"] == [
        {"key": 1701388800000, "key_as_string": "2023-12-01T00:00:00.000Z", "doc_count": 1},
        {"key": 1704067200000, "key_as_string": "2024-01-01T00:00:00.000Z", "doc_count": 2},
        {"key": 1706745600000, "key_as_string": "2024-02-01T00:00:00.000Z", "doc_count": 1},
    ]
    assert out["quarter"]["buckets"] == [
        {"key": 1696118400000, "key_as_string": "2023-10-01", "doc_count": 1},
        {"key": 1704067200000, "key_as_string": "2024-01-01", "doc_count": 3},
    ]
    assert [(b["key_as_string"], b["doc_count"]) for b in out["year"]["buckets"]] == [
        ("2023-01-01T00:00:00.000Z", 1),
        ("2024-01-01T00:00:00.000Z", 3),
    ]
    # Weeks start on Monday: 2023-12-31 is a Sunday, 2024-01-01 a Monday.
    assert [(b["key_as_string"], b["doc_count"]) for b in out["week"]["buckets"]] == [
        ("2023-12-25T00:00:00.000Z", 1),
        ("2024-01-01T00:00:00.000Z", 1),
        ("2024-01-15T00:00:00.000Z", 1),
        ("2024-01-29T00:00:00.000Z", 1),
    ]
    assert sum(b["doc_count"] for b in out["days"]["buckets"]) == 4
    assert all(b["key"] % (30 * 86_400_000) == 0 for b in out["days"]["buckets"])


def test_range_and_date_range(client: OpenSearch, idx: str) -> None:
    out = _aggs(
        client,
        idx,
        {
            "r": {"range": {"field": "price", "ranges": [{"to": 100}, {"from": 100, "to": 200}, {"from": 200}]}},
            "keyed": {"range": {"field": "price", "keyed": True, "ranges": [{"key": "cheap", "to": 50}, {"from": 50}]}},
            "overlap": {"range": {"field": "n", "ranges": [{"to": 3}, {"from": 2}]}},
            "dr": {"date_range": {"field": "day", "ranges": [{"to": "2024-01-01"}, {"from": "2024-01-01"}]}},
        },
    )
    assert out["r"]["buckets"] == [
        {"key": "*-100.0", "to": 100.0, "doc_count": 3},
        {"key": "100.0-200.0", "from": 100.0, "to": 200.0, "doc_count": 1},
        {"key": "200.0-*", "from": 200.0, "doc_count": 1},
    ]
    assert out["keyed"]["buckets"] == {"cheap": {"to": 50.0, "doc_count": 2}, "50.0-*": {"from": 50.0, "doc_count": 3}}
    assert [(b["key"], b["doc_count"]) for b in out["overlap"]["buckets"]] == [("*-3.0", 2), ("2.0-*", 3)]
    assert out["dr"]["buckets"] == [
        {
            "key": "*-2024-01-01T00:00:00.000Z",
            "to": 1704067200000.0,
            "to_as_string": "2024-01-01T00:00:00.000Z",
            "doc_count": 1,
        },
        {
            "key": "2024-01-01T00:00:00.000Z-*",
            "from": 1704067200000.0,
            "from_as_string": "2024-01-01T00:00:00.000Z",
            "doc_count": 4,
        },
    ]


def test_sub_aggregations(client: OpenSearch, idx: str) -> None:
    out = _aggs(
        client,
        idx,
        {
            "t": {
                "terms": {"field": "tag"},
                "aggs": {
                    "avg_price": {"avg": {"field": "price"}},
                    "months": {"date_histogram": {"field": "day", "calendar_interval": "month", "min_doc_count": 1}},
                    "cheap": {"filter": {"range": {"price": {"gte": 0, "lt": 100}}}},
                },
            },
            "by_price": {
                "terms": {"field": "tag", "order": {"avg_price": "desc"}},
                "aggs": {"avg_price": {"avg": {"field": "price"}}},
            },
        },
    )
    a, b, c = out["t"]["buckets"]
    assert (a["key"], a["doc_count"], a["avg_price"]) == ("a", 3, {"value": 86.33333333333333})
    assert [(m["key_as_string"][:7], m["doc_count"]) for m in a["months"]["buckets"]] == [
        ("2023-12", 1),
        ("2024-01", 1),
        ("2024-02", 1),
    ]
    assert a["cheap"] == {"doc_count": 2}
    assert b["cheap"] == {"doc_count": 1} and c["cheap"] == {"doc_count": 0}
    assert [x["key"] for x in out["by_price"]["buckets"]] == ["c", "a", "b"]


def test_filter_filters_and_top_hits(client: OpenSearch, idx: str) -> None:
    out = _aggs(
        client,
        idx,
        {
            "reds": {"filter": {"match": {"body": "red"}}, "aggs": {"total": {"sum": {"field": "price"}}}},
            "split": {
                "filters": {
                    "filters": {"fox": {"match": {"body": "fox"}}, "dog": {"match": {"body": "dog"}}},
                    "other_bucket": True,
                }
            },
            "top": {
                "terms": {"field": "tag", "size": 1},
                "aggs": {"best": {"top_hits": {"size": 2, "sort": [{"price": "desc"}], "_source": ["price"]}}},
            },
        },
    )
    assert out["reds"] == {"doc_count": 2, "total": {"value": 160.0}}
    assert out["split"]["buckets"] == {"dog": {"doc_count": 1}, "fox": {"doc_count": 2}, "_other_": {"doc_count": 2}}
    hits = out["top"]["buckets"][0]["best"]["hits"]
    assert hits["total"] == {"value": 3, "relation": "eq"}
    assert [(h["_id"], h["_source"]) for h in hits["hits"]] == [("2", {"price": 150.0}), ("4", {"price": 99.0})]


def test_aggregations_with_hits(client: OpenSearch, idx: str) -> None:
    result = client.search(
        index=idx, body={"size": 2, "query": {"match": {"body": "fox"}}, "aggs": {"t": {"terms": {"field": "tag"}}}}
    )
    assert len(result["hits"]["hits"]) == 2
    assert result["aggregations"]["t"]["buckets"] == [{"key": "a", "doc_count": 1}, {"key": "b", "doc_count": 1}]


@pytest.fixture
def two(client: OpenSearch, index_name: str) -> Iterator[tuple[str, str]]:
    first, second = index_name + "-a", index_name + "-b"
    _load(client, first, DOCS[:3])
    _load(client, second, [*DOCS[3:], {"tag": "b", "n": 7, "price": 1.0, "day": "2024-04-01", "ok": False}])
    yield first, second
    client.indices.delete(index=f"{first},{second}", ignore_unavailable=True)


def test_merge_across_indices(client: OpenSearch, two: tuple[str, str]) -> None:
    out = _aggs(
        client,
        ",".join(two),
        {
            "t": {"terms": {"field": "tag", "size": 2}, "aggs": {"m": {"max": {"field": "n"}}}},
            "avg": {"avg": {"field": "n"}},
            "min": {"min": {"field": "price"}},
            "sum": {"sum": {"field": "n"}},
            "count": {"value_count": {"field": "n"}},
            "stats": {"stats": {"field": "n"}},
            "h": {"histogram": {"field": "n", "interval": 2}},
            "r": {"range": {"field": "price", "ranges": [{"to": 100}, {"from": 100}]}},
            "month": {"date_histogram": {"field": "day", "calendar_interval": "month"}},
            "f": {"filter": {"term": {"ok": True}}},
        },
    )
    assert out["t"]["buckets"] == [
        {"key": "a", "doc_count": 3, "m": {"value": 3.0}},
        {"key": "b", "doc_count": 2, "m": {"value": 7.0}},
    ]
    assert out["t"]["sum_other_doc_count"] == 1
    assert out["avg"] == {"value": 18 / 5}
    assert out["min"] == {"value": 1.0}
    assert out["sum"] == {"value": 18.0}
    assert out["count"] == {"value": 5}
    assert out["stats"] == {"count": 5, "min": 1.0, "max": 7.0, "avg": 3.6, "sum": 18.0}
    assert out["h"]["buckets"] == [
        {"key": 0.0, "doc_count": 1},
        {"key": 2.0, "doc_count": 2},
        {"key": 4.0, "doc_count": 1},
        {"key": 6.0, "doc_count": 1},
    ]
    assert [(b["key"], b["doc_count"]) for b in out["r"]["buckets"]] == [("*-100.0", 4), ("100.0-*", 2)]
    assert [(b["key_as_string"][:7], b["doc_count"]) for b in out["month"]["buckets"]] == [
        ("2023-12", 1),
        ("2024-01", 2),
        ("2024-02", 1),
        ("2024-03", 0),
        ("2024-04", 2),
    ]
    assert out["f"] == {"doc_count": 3}


def test_errors(client: OpenSearch, idx: str, http: RawHttp) -> None:
    status, body = http.request("POST", f"/{idx}/_search", {"size": 0, "aggs": {"t": {"terms": {"field": "body"}}}})
    assert status == 400
    assert_error(body, 400, "illegal_argument_exception", "Text fields are not optimised")
    status, body = http.request("POST", f"/{idx}/_search", {"aggs": {"x": {"nope": {"field": "n"}}}})
    assert_error(body, 400, "parsing_exception", "Unknown aggregation type [nope]")
    with pytest.raises(RequestError) as err:
        client.search(index=idx, body={"aggs": {"h": {"histogram": {"field": "n", "interval": 0.00001}}}})
    assert err.value.status_code == 400
    assert err.value.error == "too_many_buckets_exception"
