"""`_delete_by_query`, `_update_by_query` and `_reindex`: BulkByScrollResponse bodies and their effects."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opensearchpy import ConflictError, NotFoundError, OpenSearch, RequestError

from tests.conftest import RawHttp, assert_error

COMMON = {
    "timed_out": False,
    "retries": {"bulk": 0, "search": 0},
    "throttled_millis": 0,
    "requests_per_second": -1.0,
    "throttled_until_millis": 0,
    "failures": [],
}


def _load(client: OpenSearch, index: str, n: int = 6) -> None:
    lines = []
    for i in range(n):
        lines.append({"index": {"_index": index, "_id": str(i)}})
        lines.append({"n": i, "color": "red" if i % 2 == 0 else "blue", "title": f"doc {i}"})
    assert client.bulk(body=lines, refresh="true")["errors"] is False


def _hits(client: OpenSearch, index: str, query: dict | None = None) -> int:
    body = {"size": 0, "query": query or {"match_all": {}}}
    return client.search(index=index, body=body)["hits"]["total"]["value"]


def _strip_took(body: dict) -> dict:
    assert isinstance(body["took"], int) and body["took"] >= 0
    return {k: v for k, v in body.items() if k != "took"}


@pytest.fixture
def dest(client: OpenSearch, index_name: str) -> Iterator[str]:
    name = index_name + "-dest"
    client.indices.delete(index=name, ignore_unavailable=True)
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


# ---- delete by query --------------------------------------------------------------------------------------------


def test_delete_by_query(client: OpenSearch, index_name: str) -> None:
    _load(client, index_name)
    response = client.delete_by_query(index=index_name, body={"query": {"term": {"color": "red"}}}, refresh=True)
    assert _strip_took(response) == {
        "total": 3,
        "deleted": 3,
        "batches": 1,
        "version_conflicts": 0,
        "noops": 0,
        **COMMON,
    }
    assert list(response) == [
        "took",
        "timed_out",
        "total",
        "deleted",
        "batches",
        "version_conflicts",
        "noops",
        "retries",
        "throttled_millis",
        "requests_per_second",
        "throttled_until_millis",
        "failures",
    ]
    assert _hits(client, index_name) == 3
    assert client.exists(index=index_name, id="0") is False
    assert client.exists(index=index_name, id="1") is True


def test_delete_by_query_max_docs_and_batches(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    _load(client, index_name)
    status, body = http.request(
        "POST",
        f"/{index_name}/_delete_by_query?scroll_size=2&refresh=true",
        {"query": {"match_all": {}}, "max_docs": 5},
    )
    assert status == 200 and body["total"] == 5 and body["deleted"] == 5 and body["batches"] == 3
    assert _hits(client, index_name) == 1


def test_delete_by_query_q_param_and_no_match(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    _load(client, index_name)
    status, body = http.request("POST", f"/{index_name}/_delete_by_query?q=color:blue&refresh=true")
    assert status == 200 and body["deleted"] == 3
    status, body = http.request("POST", f"/{index_name}/_delete_by_query", {"query": {"term": {"color": "green"}}})
    assert status == 200 and (body["total"], body["deleted"], body["batches"]) == (0, 0, 0)


def test_delete_by_query_sees_the_refreshed_snapshot(client: OpenSearch, index_name: str) -> None:
    client.indices.create(index=index_name, body={"settings": {"index.refresh_interval": "-1"}})
    _load(client, index_name, 2)
    client.index(index=index_name, id="late", body={"n": 99})  # not refreshed: invisible to the query
    response = client.delete_by_query(index=index_name, body={"query": {"match_all": {}}}, refresh=True)
    assert response["deleted"] == 2
    assert client.exists(index=index_name, id="late") is True
    assert _hits(client, index_name) == 1


def test_delete_by_query_version_conflicts(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    client.indices.create(index=index_name, body={"settings": {"index.refresh_interval": "-1"}})
    _load(client, index_name, 3)
    client.delete(index=index_name, id="1")  # gone from the store, still in the refreshed snapshot
    status, body = http.request("POST", f"/{index_name}/_delete_by_query", {"query": {"match_all": {}}})
    assert status == 409 and body["version_conflicts"] == 1, body
    failure = body["failures"][0]
    assert failure["index"] == index_name and failure["id"] == "1" and failure["status"] == 409
    assert failure["cause"]["type"] == "version_conflict_engine_exception"
    assert "version conflict" in failure["cause"]["reason"]
    assert _hits(client, index_name) == 3  # the aborted batch's other deletes were applied, not yet refreshed
    client.index(index=index_name, id="9", body={"n": 9}, refresh=True)
    client.delete(index=index_name, id="9")  # a second stale match
    response = client.delete_by_query(
        index=index_name, body={"query": {"match_all": {}}}, conflicts="proceed", refresh=True
    )
    assert response["version_conflicts"] == 1 and response["failures"] == []
    assert _hits(client, index_name) == 0


def test_delete_by_query_errors(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    status, body = http.request("POST", "/no-such-index-dbq/_delete_by_query", {"query": {"match_all": {}}})
    assert_error(body, 404, "index_not_found_exception", "no such index [no-such-index-dbq]")
    _load(client, index_name, 1)
    status, body = http.request("POST", f"/{index_name}/_delete_by_query")
    assert status == 400 and body["error"]["type"] in ("illegal_argument_exception", "parsing_exception")
    status, body = http.request("POST", f"/{index_name}/_delete_by_query", {"query": {"bogus": {}}})
    assert status == 400 and body["error"]["type"] == "parsing_exception"
    status, body = http.request("POST", f"/{index_name}/_delete_by_query?conflicts=maybe", {})
    assert_error(body, 400, "illegal_argument_exception", "conflicts may only be")
    assert client.exists(index=index_name, id="0") is True


# ---- update by query --------------------------------------------------------------------------------------------


def test_update_by_query_reindexes_in_place(client: OpenSearch, index_name: str) -> None:
    _load(client, index_name)
    response = client.update_by_query(
        index=index_name, body={"query": {"range": {"n": {"gte": 4, "lte": 100}}}}, refresh=True
    )
    assert _strip_took(response) == {
        "total": 2,
        "updated": 2,
        "deleted": 0,
        "batches": 1,
        "version_conflicts": 0,
        "noops": 0,
        **COMMON,
    }
    assert list(response)[:5] == ["took", "timed_out", "total", "updated", "deleted"]
    assert client.get(index=index_name, id="4")["_version"] == 2
    assert client.get(index=index_name, id="4")["_source"] == {"n": 4, "color": "red", "title": "doc 4"}
    assert client.get(index=index_name, id="0")["_version"] == 1


def test_update_by_query_picks_up_new_mapping(client: OpenSearch, index_name: str) -> None:
    client.indices.create(
        index=index_name, body={"mappings": {"dynamic": False, "properties": {"n": {"type": "long"}}}}
    )
    client.index(index=index_name, id="1", body={"n": 1, "tag": "alpha"}, refresh=True)
    assert _hits(client, index_name, {"term": {"tag": "alpha"}}) == 0  # unmapped: stored, not indexed
    client.indices.put_mapping(index=index_name, body={"properties": {"tag": {"type": "keyword"}}})
    response = client.update_by_query(index=index_name, refresh=True)
    assert response["updated"] == 1
    assert _hits(client, index_name, {"term": {"tag": "alpha"}}) == 1


def test_update_by_query_rejects_stored_scripts(http: RawHttp, client: OpenSearch, index_name: str) -> None:
    _load(client, index_name, 1)
    _status, body = http.request("POST", f"/{index_name}/_update_by_query", {"script": {"id": "my-script"}})
    assert_error(body, 400, "illegal_argument_exception", "stored scripts are not supported")
    assert client.get(index=index_name, id="0")["_version"] == 1


# ---- reindex ----------------------------------------------------------------------------------------------------


def test_reindex(client: OpenSearch, index_name: str, dest: str) -> None:
    _load(client, index_name)
    response = client.reindex(body={"source": {"index": index_name}, "dest": {"index": dest}}, refresh=True)
    assert _strip_took(response) == {
        "total": 6,
        "updated": 0,
        "created": 6,
        "deleted": 0,
        "batches": 1,
        "version_conflicts": 0,
        "noops": 0,
        **COMMON,
    }
    assert list(response)[:7] == ["took", "timed_out", "total", "updated", "created", "deleted", "batches"]
    assert _hits(client, dest) == 6
    assert client.get(index=dest, id="3")["_source"] == client.get(index=index_name, id="3")["_source"]
    props = client.indices.get_mapping(index=dest)[dest]["mappings"]["properties"]
    assert props["n"] == {"type": "long"}
    again = client.reindex(body={"source": {"index": index_name}, "dest": {"index": dest}}, refresh=True)
    assert (again["created"], again["updated"]) == (0, 6)
    assert client.get(index=dest, id="3")["_version"] == 2


def test_reindex_query_max_docs_and_source_filter(client: OpenSearch, index_name: str, dest: str) -> None:
    _load(client, index_name)
    response = client.reindex(
        body={
            "source": {"index": [index_name], "query": {"term": {"color": "red"}}, "_source": ["n"], "size": 1},
            "dest": {"index": dest},
            "max_docs": 2,
        },
        refresh=True,
    )
    assert (response["total"], response["created"], response["batches"]) == (2, 2, 2)
    assert _hits(client, dest) == 2
    assert client.get(index=dest, id="0")["_source"] == {"n": 0}


def test_reindex_op_type_create_conflicts(client: OpenSearch, index_name: str, dest: str) -> None:
    _load(client, index_name, 3)
    client.index(index=dest, id="1", body={"mine": True}, refresh=True)
    body = {"source": {"index": index_name}, "dest": {"index": dest, "op_type": "create"}}
    with pytest.raises(ConflictError) as exc:
        client.reindex(body=body, refresh=True)
    failure = exc.value.info["failures"][0]
    assert failure["id"] == "1" and failure["index"] == dest and failure["status"] == 409
    assert failure["cause"]["reason"] == "[1]: version conflict, document already exists (current version [1])"
    assert _hits(client, dest) == 3  # the batch was written; only the conflicting item failed
    proceed = client.reindex(body={**body, "conflicts": "proceed"}, refresh=True)
    assert (proceed["version_conflicts"], proceed["created"], proceed["failures"]) == (3, 0, [])
    assert client.get(index=dest, id="1")["_source"] == {"mine": True}
    assert _hits(client, dest) == 3


def test_reindex_external_versions(client: OpenSearch, index_name: str, dest: str) -> None:
    client.index(index=index_name, id="1", body={"v": 1}, version=5, version_type="external", refresh=True)
    response = client.reindex(
        body={"source": {"index": index_name}, "dest": {"index": dest, "version_type": "external"}}, refresh=True
    )
    assert response["created"] == 1
    assert client.get(index=dest, id="1")["_version"] == 5
    response = client.reindex(
        body={
            "source": {"index": index_name},
            "dest": {"index": dest, "version_type": "external"},
            "conflicts": "proceed",
        }
    )
    assert response["version_conflicts"] == 1 and response["created"] == 0


def test_reindex_errors(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    _load(client, index_name, 1)
    with pytest.raises(NotFoundError) as exc:
        client.reindex(body={"source": {"index": "no-such-index-reindex"}, "dest": {"index": index_name}})
    assert_error(exc.value.info, 404, "index_not_found_exception", "no such index [no-such-index-reindex]")
    with pytest.raises(RequestError) as exc:
        client.reindex(body={"source": {"index": index_name}, "dest": {"index": index_name}})
    assert_error(
        exc.value.info,
        400,
        "action_request_validation_exception",
        f"reindex cannot write into an index its reading from [{index_name}]",
    )
    status, body = http.request("POST", "/_reindex", {"source": {"index": index_name}})
    assert status == 400 and body["error"]["type"] == "action_request_validation_exception"
    status, body = http.request(
        "POST", "/_reindex", {"source": {"index": index_name}, "dest": {"index": "x"}, "bogus": 1}
    )
    assert_error(body, 400, "parsing_exception", "unknown field [bogus]")


def test_reindex_from_several_sources(client: OpenSearch, index_name: str, dest: str) -> None:
    other = index_name + "-other"
    client.indices.delete(index=other, ignore_unavailable=True)
    try:
        _load(client, index_name, 2)
        client.index(index=other, id="x", body={"n": 100}, refresh=True)
        response = client.reindex(
            body={"source": {"index": [index_name, other]}, "dest": {"index": dest}}, refresh=True
        )
        assert (response["total"], response["created"]) == (3, 3)
        assert client.get(index=dest, id="x")["_source"] == {"n": 100}
    finally:
        client.indices.delete(index=other, ignore_unavailable=True)


def test_async_requests_are_refused(http: RawHttp, client: OpenSearch, index_name: str) -> None:
    _load(client, index_name, 1)
    _status, body = http.request(
        "POST", f"/{index_name}/_delete_by_query?wait_for_completion=false", {"query": {"match_all": {}}}
    )
    assert_error(body, 400, "illegal_argument_exception", "wait_for_completion=false is not supported")
    assert client.exists(index=index_name, id="0") is True
