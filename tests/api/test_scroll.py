"""The scroll API through opensearch-py (`helpers.scan`, `scroll`, `clear_scroll`) and raw requests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError

from tests.conftest import RawHttp


def _fill(client: OpenSearch, index: str, count: int) -> None:
    client.indices.create(
        index=index, body={"mappings": {"properties": {"n": {"type": "integer"}, "tag": {"type": "keyword"}}}}
    )
    actions = (
        {"_index": index, "_id": f"d{i}", "_source": {"n": i, "tag": "even" if i % 2 == 0 else "odd"}}
        for i in range(count)
    )
    helpers.bulk(client, actions, refresh=True, chunk_size=1000)


def _pages(client: OpenSearch, first: dict[str, Any], keep_alive: str = "1m") -> Iterator[dict[str, Any]]:
    """Every page of a scroll, the empty last one included."""
    page = first
    while True:
        yield page
        if not page["hits"]["hits"]:
            return
        page = client.scroll(body={"scroll_id": page["_scroll_id"], "scroll": keep_alive})


def _assert_context_missing(status: int, body: Any) -> None:
    assert status == 404, body
    error = body["error"]
    assert error["type"] == "search_phase_execution_exception"
    assert error["reason"] == "all shards failed"
    root = error["root_cause"][0]
    assert root["type"] == "search_context_missing_exception"
    assert root["reason"].startswith("No search context found for id [")
    assert error["failed_shards"][0]["reason"]["type"] == "search_context_missing_exception"
    assert body["status"] == 404


def test_helpers_scan_returns_every_document_exactly_once(client: OpenSearch, index_name: str) -> None:
    _fill(client, index_name, 2500)
    seen = [hit["_id"] for hit in helpers.scan(client, index=index_name, size=400, scroll="1m")]
    assert len(seen) == 2500
    assert set(seen) == {f"d{i}" for i in range(2500)}


def test_helpers_scan_with_query_and_preserved_order(client: OpenSearch, index_name: str) -> None:
    _fill(client, index_name, 300)
    query = {"query": {"term": {"tag": "odd"}}, "sort": [{"n": "desc"}]}
    values = [
        hit["_source"]["n"] for hit in helpers.scan(client, query=query, index=index_name, size=40, preserve_order=True)
    ]
    assert values == list(range(299, 0, -2))


def test_scroll_pages_keep_sort_total_and_id(client: OpenSearch, index_name: str) -> None:
    _fill(client, index_name, 25)
    first = client.search(
        index=index_name,
        body={"query": {"term": {"tag": "even"}}, "sort": [{"n": "desc"}]},
        scroll="1m",
        size=5,
    )
    scroll_id = first["_scroll_id"]
    assert isinstance(scroll_id, str) and scroll_id
    pages = list(_pages(client, first))
    assert [len(p["hits"]["hits"]) for p in pages] == [5, 5, 3, 0]
    assert all(p["hits"]["total"] == {"value": 13, "relation": "eq"} for p in pages)
    assert all(p["_scroll_id"] == scroll_id for p in pages)
    values = [h["_source"]["n"] for p in pages for h in p["hits"]["hits"]]
    assert values == list(range(24, -1, -2))
    assert [h["sort"] for h in pages[1]["hits"]["hits"]] == [[14], [12], [10], [8], [6]]
    client.clear_scroll(body={"scroll_id": [scroll_id]})


def test_first_page_carries_aggregations_and_doc_order(client: OpenSearch, index_name: str) -> None:
    _fill(client, index_name, 12)
    first = client.search(
        index=index_name,
        body={"sort": ["_doc"], "aggs": {"tags": {"terms": {"field": "tag"}}}},
        scroll="30s",
        size=5,
    )
    buckets = {b["key"]: b["doc_count"] for b in first["aggregations"]["tags"]["buckets"]}
    assert buckets == {"even": 6, "odd": 6}
    pages = list(_pages(client, first, "30s"))
    assert "aggregations" not in pages[1]
    ids = [h["_id"] for p in pages for h in p["hits"]["hits"]]
    assert ids == [f"d{i}" for i in range(12)]  # `_doc`: index order
    assert pages[0]["hits"]["max_score"] is None


def test_scroll_id_in_url_params_and_path(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    _fill(client, index_name, 6)
    status, first = http.request("POST", f"/{index_name}/_search?scroll=1m&size=2", {"sort": ["_doc"]})
    assert status == 200, first
    assert isinstance(first, dict)
    scroll_id = first["_scroll_id"]
    assert next(iter(first)) == "_scroll_id"
    status, second = http.request("GET", f"/_search/scroll?scroll=1m&scroll_id={scroll_id}")
    assert status == 200, second
    status, third = http.request("POST", f"/_search/scroll/{scroll_id}", {"scroll": "1m"})
    assert status == 200, third
    assert isinstance(second, dict) and isinstance(third, dict)
    ids = [h["_id"] for body in (first, second, third) for h in body["hits"]["hits"]]
    assert ids == [f"d{i}" for i in range(6)]
    status, freed = http.request("DELETE", f"/_search/scroll/{scroll_id}")
    assert (status, freed) == (200, {"succeeded": True, "num_freed": 1})


def test_clear_scroll_frees_the_context(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    _fill(client, index_name, 10)
    first = client.search(index=index_name, body={"sort": ["_doc"]}, scroll="1m", size=3)
    other = client.search(index=index_name, body={"sort": ["_doc"]}, scroll="1m", size=3)
    assert other["_scroll_id"] != first["_scroll_id"]
    assert client.clear_scroll(body={"scroll_id": [first["_scroll_id"]]}) == {"succeeded": True, "num_freed": 1}
    status, body = http.request("POST", "/_search/scroll", {"scroll": "1m", "scroll_id": first["_scroll_id"]})
    _assert_context_missing(status, body)
    # clearing again frees nothing: OpenSearch answers 404 with the same body shape
    status, body = http.request("DELETE", "/_search/scroll", {"scroll_id": first["_scroll_id"]})
    assert (status, body) == (404, {"succeeded": True, "num_freed": 0})
    with pytest.raises(NotFoundError):
        client.clear_scroll(body={"scroll_id": [first["_scroll_id"]]})
    # the other context was untouched until `_all`
    assert client.scroll(body={"scroll_id": other["_scroll_id"], "scroll": "1m"})["hits"]["hits"]
    status, body = http.request("DELETE", "/_search/scroll", {"scroll_id": "_all"})
    assert status == 200 and body["succeeded"] is True and body["num_freed"] >= 1, body
    status, body = http.request("POST", "/_search/scroll", {"scroll": "1m", "scroll_id": other["_scroll_id"]})
    _assert_context_missing(status, body)


def test_unknown_malformed_and_missing_ids(http: RawHttp) -> None:
    import base64

    unknown = base64.urlsafe_b64encode(b"mlsearch-scroll:999999:abcdef").decode().rstrip("=")
    status, body = http.request("POST", "/_search/scroll", {"scroll": "1m", "scroll_id": unknown})
    _assert_context_missing(status, body)
    assert isinstance(body, dict)
    assert body["error"]["root_cause"][0]["reason"] == "No search context found for id [999999]"
    status, body = http.request("POST", "/_search/scroll", {"scroll": "1m", "scroll_id": "not-a-scroll-id!"})
    assert status == 400 and isinstance(body, dict), body
    assert body["error"]["type"] == "illegal_argument_exception"
    assert body["error"]["reason"] == "Cannot parse scroll id"
    status, body = http.request("POST", "/_search/scroll", {"scroll": "1m"})
    assert status == 400 and isinstance(body, dict), body
    assert body["error"]["type"] == "action_request_validation_exception"
    assert body["error"]["reason"] == "Validation Failed: 1: scrollId is missing;"
    status, body = http.request("DELETE", "/_search/scroll", {})
    assert status == 400 and isinstance(body, dict), body
    assert body["error"]["reason"] == "Validation Failed: 1: no scroll ids specified;"


def test_expired_context_is_missing(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    _fill(client, index_name, 5)
    first = client.search(index=index_name, body={"sort": ["_doc"]}, scroll="20ms", size=2)
    # each use of a context renews its keep-alive, so let the clock run past it once (this waits on time itself,
    # not on the server becoming ready)
    time.sleep(0.1)
    status, body = http.request("POST", "/_search/scroll", {"scroll_id": first["_scroll_id"]})
    _assert_context_missing(status, body)
    # a renewed keep-alive holds the context across pages
    second = client.search(index=index_name, body={"sort": ["_doc"]}, scroll="2s", size=2)
    page = client.scroll(body={"scroll_id": second["_scroll_id"], "scroll": "1m"})
    time.sleep(0.1)
    assert client.scroll(body={"scroll_id": page["_scroll_id"]})["hits"]["hits"]


def test_writes_after_the_scroll_started_do_not_change_its_pages(client: OpenSearch, index_name: str) -> None:
    _fill(client, index_name, 30)
    first = client.search(index=index_name, body={"sort": [{"n": "asc"}]}, scroll="1m", size=10)
    # new documents, an update and a delete, all refreshed before the next pages are read
    helpers.bulk(
        client,
        [{"_index": index_name, "_id": f"new{i}", "_source": {"n": -1 - i, "tag": "new"}} for i in range(10)],
        refresh=True,
    )
    client.index(index=index_name, id="d0", body={"n": 1000, "tag": "updated"}, refresh=True)
    client.delete(index=index_name, id="d15", refresh=True)
    pages = list(_pages(client, first))
    assert all(p["hits"]["total"]["value"] == 30 for p in pages)
    ids = [h["_id"] for p in pages for h in p["hits"]["hits"]]
    # the snapshot's membership and order; the deleted document is skipped and its page filled from the next
    assert ids == [f"d{i}" for i in range(30) if i != 15]
    assert [len(p["hits"]["hits"]) for p in pages] == [10, 10, 9, 0]


def test_scroll_request_validation(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    _fill(client, index_name, 3)
    cases = [
        (f"/{index_name}/_search?scroll=1m&from=2", {}, "Validation Failed: 1: using [from] is not allowed"),
        (f"/{index_name}/_search?scroll=1m&size=0", {}, "Validation Failed: 1: [size] cannot be [0] in a scroll"),
        (
            f"/{index_name}/_search?scroll=1m",
            {"track_total_hits": False},
            "disabling [track_total_hits] is not allowed in a scroll context",
        ),
    ]
    for path, body, reason in cases:
        status, answer = http.request("POST", path, body)
        assert status == 400 and isinstance(answer, dict), answer
        assert answer["error"]["type"] == "action_request_validation_exception", answer
        assert reason in answer["error"]["reason"]
    status, answer = http.request("POST", f"/{index_name}/_search?scroll=soon", {})
    assert status == 400 and isinstance(answer, dict), answer
    assert answer["error"]["type"] == "illegal_argument_exception"
    assert answer["error"]["reason"] == (
        "failed to parse setting [scroll] with value [soon] as a time value: unit is missing or unrecognized"
    )
    status, answer = http.request("POST", f"/{index_name}/_search?scroll=2d", {})
    assert status == 400 and isinstance(answer, dict), answer
    assert answer["error"]["root_cause"][0]["type"] == "illegal_argument_exception"
    assert (
        "Keep alive for request (2d) is too large. It must be less than (24h)."
        in answer["error"]["root_cause"][0]["reason"]
    )


def test_max_open_scroll_context(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    _fill(client, index_name, 3)
    http.request("DELETE", "/_search/scroll/_all")
    client.cluster.put_settings(body={"transient": {"search.max_open_scroll_context": 2}})
    try:
        for _ in range(2):
            client.search(index=index_name, body={}, scroll="1m", size=1)
        with pytest.raises(TransportError) as caught:
            client.search(index=index_name, body={}, scroll="1m", size=1)
        assert caught.value.status_code == 429
        error = caught.value.info["error"]
        assert error["type"] == "search_phase_execution_exception"
        assert error["root_cause"][0]["type"] == "rejected_execution_exception"
        assert error["root_cause"][0]["reason"] == (
            "Trying to create too many scroll contexts. Must be less than or equal to: [2]. "
            "This limit can be set by changing the [search.max_open_scroll_context] setting."
        )
        # freeing one makes room for another
        status, freed = http.request("DELETE", "/_search/scroll/_all")
        assert (status, freed) == (200, {"succeeded": True, "num_freed": 2})
        assert client.search(index=index_name, body={}, scroll="1m", size=1)["_scroll_id"]
    finally:
        client.cluster.put_settings(body={"transient": {"search.max_open_scroll_context": None}})
        http.request("DELETE", "/_search/scroll/_all")


def test_deleted_index_frees_its_scroll(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    _fill(client, index_name, 4)
    first = client.search(index=index_name, body={}, scroll="1m", size=2)
    client.indices.delete(index=index_name)
    status, body = http.request("POST", "/_search/scroll", {"scroll": "1m", "scroll_id": first["_scroll_id"]})
    _assert_context_missing(status, body)


def test_plain_search_has_no_scroll_id(client: OpenSearch, index_name: str) -> None:
    _fill(client, index_name, 3)
    assert "_scroll_id" not in client.search(index=index_name, body={})
    with pytest.raises(RequestError):
        client.search(index=index_name, body={"collapse": {"field": "tag"}}, scroll="1m")


def test_scroll_over_several_indices(client: OpenSearch, index_name: str) -> None:
    other = f"{index_name}-b"
    client.indices.delete(index=other, ignore_unavailable=True)
    try:
        _fill(client, index_name, 7)
        _fill(client, other, 5)
        hits = list(helpers.scan(client, index=f"{index_name},{other}", size=4))
        assert sorted((h["_index"], h["_id"]) for h in hits) == sorted(
            [(index_name, f"d{i}") for i in range(7)] + [(other, f"d{i}") for i in range(5)]
        )
    finally:
        client.indices.delete(index=other, ignore_unavailable=True)
