"""`_bulk`: NDJSON actions, per-item results and errors as OpenSearch reports them."""

from __future__ import annotations

import orjson
from opensearchpy import OpenSearch

from tests.conftest import RawHttp, assert_error

SHARDS = {"total": 2, "successful": 1, "failed": 0}


def _ndjson(*lines: object) -> str:
    return "".join((line if isinstance(line, str) else orjson.dumps(line).decode()) + "\n" for line in lines)


def _hits(client: OpenSearch, index: str) -> int:
    return client.search(index=index, body={"size": 0})["hits"]["total"]["value"]


def test_bulk_all_actions(client: OpenSearch, index_name: str) -> None:
    body = _ndjson(
        {"index": {"_index": index_name, "_id": "1"}},
        {"a": 1},
        {"create": {"_index": index_name, "_id": "2"}},
        {"a": 2},
        {"update": {"_index": index_name, "_id": "1"}},
        {"doc": {"b": 3}},
        {"delete": {"_index": index_name, "_id": "2"}},
        {"delete": {"_index": index_name, "_id": "3"}},
    )
    response = client.bulk(body=body)
    assert response["errors"] is False and isinstance(response["took"], int)
    items = response["items"]
    assert items[0] == {
        "index": {
            "_index": index_name,
            "_id": "1",
            "_version": 1,
            "result": "created",
            "_shards": SHARDS,
            "_seq_no": 0,
            "_primary_term": 1,
            "status": 201,
        }
    }
    assert items[1]["create"]["result"] == "created" and items[1]["create"]["status"] == 201
    assert items[2]["update"] == {
        "_index": index_name,
        "_id": "1",
        "_version": 2,
        "result": "updated",
        "_shards": SHARDS,
        "_seq_no": 2,
        "_primary_term": 1,
        "status": 200,
    }
    assert (items[3]["delete"]["result"], items[3]["delete"]["status"]) == ("deleted", 200)
    assert (items[4]["delete"]["result"], items[4]["delete"]["status"]) == ("not_found", 404)
    assert client.get(index=index_name, id="1")["_source"] == {"a": 1, "b": 3}
    assert client.exists(index=index_name, id="2") is False


def test_bulk_index_in_path_and_auto_ids(client: OpenSearch, index_name: str) -> None:
    body = _ndjson({"index": {"_id": "1"}}, {"a": 1}, {"index": {}}, {"a": 2}, {"create": {}}, {"a": 3})
    response = client.bulk(index=index_name, body=body)
    assert response["errors"] is False
    ids = [next(iter(item.values()))["_id"] for item in response["items"]]
    assert ids[0] == "1" and len(ids[1]) == 20 and len(ids[2]) == 20 and ids[1] != ids[2]
    assert all(next(iter(item.values()))["_index"] == index_name for item in response["items"])
    assert client.get(index=index_name, id=ids[2])["_source"] == {"a": 3}


def test_bulk_item_errors(client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"n": 1})
    body = _ndjson(
        {"create": {"_id": "1"}},
        {"n": 2},
        {"update": {"_id": "9"}},
        {"doc": {"n": 3}},
        {"index": {"_id": "2"}},
        {"n": "abc"},
        {"index": {"_id": "3"}},
        {"n": 4},
    )
    response = client.bulk(index=index_name, body=body)
    assert response["errors"] is True
    create, update, bad, good = (next(iter(item.values())) for item in response["items"])
    assert create["status"] == 409 and create["_id"] == "1" and create["_index"] == index_name
    assert create["error"]["type"] == "version_conflict_engine_exception"
    assert create["error"]["reason"] == "[1]: version conflict, document already exists (current version [1])"
    assert create["error"]["index"] == index_name and create["error"]["shard"] == "0"
    assert update["status"] == 404 and update["error"]["type"] == "document_missing_exception"
    assert update["error"]["reason"] == "[9]: document missing"
    assert bad["status"] == 400 and bad["error"]["type"] == "mapper_parsing_exception"
    assert bad["error"]["reason"].startswith("failed to parse field [n] of type [long] in document with id '2'")
    assert good["status"] == 201 and good["result"] == "created" and good["_seq_no"] == 1
    assert client.get(index=index_name, id="1")["_source"] == {"n": 1}
    assert client.exists(index=index_name, id="2") is False


def test_bulk_bad_source_line_fails_its_item_only(http: RawHttp, index_name: str) -> None:
    body = _ndjson(
        {"index": {"_index": index_name, "_id": "1"}}, '{"a": ', {"index": {"_index": index_name, "_id": "2"}}, {"a": 2}
    )
    status, response = http.request("POST", "/_bulk", body, headers={"Content-Type": "application/x-ndjson"})
    assert status == 200 and response["errors"] is True
    first, second = (next(iter(item.values())) for item in response["items"])
    assert first["status"] == 400 and first["error"]["type"] == "mapper_parsing_exception"
    assert second["status"] == 201 and second["result"] == "created"


def test_bulk_malformed_action_line(http: RawHttp, index_name: str) -> None:
    headers = {"Content-Type": "application/x-ndjson"}
    status, body = http.request("POST", f"/{index_name}/_bulk", _ndjson({"bogus": {"_id": "1"}}, {"a": 1}), headers)
    assert_error(
        body,
        400,
        "illegal_argument_exception",
        "Malformed action/metadata line [1], expected field [create], [delete], [index] or [update] but found [bogus]",
    )
    status, body = http.request(
        "POST", f"/{index_name}/_bulk", _ndjson({"index": {"_id": "1"}}, {"a": 1}, "not json"), headers
    )
    assert status == 400 and body["error"]["type"] == "illegal_argument_exception"
    status, body = http.request(
        "POST", f"/{index_name}/_bulk", _ndjson({"index": {"_id": "1", "nope": 1}}, {"a": 1}), headers
    )
    assert_error(body, 400, "illegal_argument_exception", "unknown parameter [nope]")
    # nothing was written by the rejected requests
    status, body = http.request("GET", f"/{index_name}/_doc/1")
    assert status == 404


def test_bulk_empty_body(http: RawHttp) -> None:
    _status, body = http.request("POST", "/_bulk", "", {"Content-Type": "application/x-ndjson"})
    assert_error(body, 400, "action_request_validation_exception", "no requests added")


def test_bulk_refresh(client: OpenSearch, index_name: str) -> None:
    client.indices.create(index=index_name, body={"settings": {"index.refresh_interval": "-1"}})
    response = client.bulk(index=index_name, body=_ndjson({"index": {"_id": "1"}}, {"a": 1}), refresh="true")
    assert response["items"][0]["index"]["forced_refresh"] is True
    assert _hits(client, index_name) == 1
    client.bulk(index=index_name, body=_ndjson({"index": {"_id": "2"}}, {"a": 1}))
    assert _hits(client, index_name) == 1
    client.bulk(index=index_name, body=_ndjson({"index": {"_id": "3"}}, {"a": 1}), refresh="wait_for")
    assert _hits(client, index_name) == 3


def test_bulk_mapping_grows_across_items(client: OpenSearch, index_name: str) -> None:
    body = _ndjson(
        {"index": {"_id": "1"}},
        {"a": "x"},
        {"index": {"_id": "2"}},
        {"b": 5},
        {"index": {"_id": "3"}},
        {"c": {"d": True}},
        {"index": {"_id": "4"}},
        {"b": "not a number"},
    )
    response = client.bulk(index=index_name, body=body, refresh="true")
    statuses = [next(iter(item.values()))["status"] for item in response["items"]]
    assert statuses == [201, 201, 201, 400]
    props = client.indices.get_mapping(index=index_name)[index_name]["mappings"]["properties"]
    assert props["a"]["type"] == "text" and props["b"] == {"type": "long"}
    assert props["c"] == {"properties": {"d": {"type": "boolean"}}}
    found = client.search(index=index_name, body={"query": {"term": {"b": 5}}})["hits"]["hits"]
    assert [h["_id"] for h in found] == ["2"]
    assert [
        h["_id"] for h in client.search(index=index_name, body={"query": {"term": {"c.d": True}}})["hits"]["hits"]
    ] == ["3"]


def test_bulk_auto_creates_indices(client: OpenSearch, index_name: str) -> None:
    other = index_name + "-second"
    client.indices.delete(index=other, ignore_unavailable=True)
    try:
        body = _ndjson(
            {"index": {"_index": index_name, "_id": "1"}}, {"a": 1}, {"index": {"_index": other, "_id": "1"}}, {"a": 2}
        )
        response = client.bulk(body=body)
        assert response["errors"] is False
        assert client.indices.exists(index=index_name) and client.indices.exists(index=other)
        assert client.get(index=other, id="1")["_source"] == {"a": 2}
    finally:
        client.indices.delete(index=other, ignore_unavailable=True)


def test_bulk_missing_index_name(http: RawHttp) -> None:
    status, body = http.request(
        "POST", "/_bulk", _ndjson({"index": {"_id": "1"}}, {"a": 1}), {"Content-Type": "application/x-ndjson"}
    )
    assert status == 400 and body["error"]["type"] == "action_request_validation_exception"
    assert "index is missing" in body["error"]["reason"]


def test_bulk_concurrency_controls(client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"a": 1})
    body = _ndjson(
        {"index": {"_id": "1", "if_seq_no": 5, "if_primary_term": 1}},
        {"a": 2},
        {"index": {"_id": "1", "if_seq_no": 0, "if_primary_term": 1}},
        {"a": 3},
        {"index": {"_id": "2", "version": 10, "version_type": "external"}},
        {"a": 4},
    )
    items = [next(iter(i.values())) for i in client.bulk(index=index_name, body=body)["items"]]
    assert items[0]["status"] == 409
    assert items[0]["error"]["reason"] == (
        "[1]: version conflict, required seqNo [5], primary term [1]. current "
        "document has seqNo [0] and primary term [1]"
    )
    assert items[1]["status"] == 200 and items[1]["_version"] == 2
    assert items[2]["_version"] == 10


def test_bulk_must_end_with_newline(http: RawHttp, index_name: str) -> None:
    body = _ndjson({"index": {"_index": index_name, "_id": "1"}}, {"a": 1}).rstrip("\n")
    _status, response = http.request("POST", "/_bulk", body, {"Content-Type": "application/x-ndjson"})
    assert_error(response, 400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
    assert http.request("GET", f"/{index_name}/_doc/1")[0] == 404


def test_bulk_wait_for_does_not_force(client: OpenSearch, index_name: str) -> None:
    response = client.bulk(index=index_name, body=_ndjson({"index": {"_id": "1"}}, {"a": 1}), refresh="wait_for")
    assert "forced_refresh" not in response["items"][0]["index"]
    assert _hits(client, index_name) == 1
