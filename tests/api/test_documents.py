"""Single-document APIs: index, create, get, exists, `_source`, delete, `_update`, `_mget`, concurrency, refresh,
auto-create and dynamic mapping, checked against OpenSearch's response shapes and error messages."""

from __future__ import annotations

import re
import time

import pytest
from opensearchpy import ConflictError, NotFoundError, OpenSearch, RequestError

from tests.conftest import RawHttp, assert_error

SHARDS = {"total": 2, "successful": 1, "failed": 0}


def _count(client: OpenSearch, index: str) -> int:
    return client.search(index=index, body={"size": 0})["hits"]["total"]["value"]


def _wait_count(client: OpenSearch, index: str, expected: int, deadline_s: float = 5.0) -> float:
    """Poll until `expected` documents are searchable; returns how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        if _count(client, index) == expected:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"count of {index} never reached {expected}")


# ---- index / create ---------------------------------------------------------------------------------------------


def test_index_creates_then_updates(client: OpenSearch, index_name: str) -> None:
    first = client.index(index=index_name, id="1", body={"title": "a"})
    assert first == {
        "_index": index_name,
        "_id": "1",
        "_version": 1,
        "result": "created",
        "_shards": SHARDS,
        "_seq_no": 0,
        "_primary_term": 1,
    }
    second = client.index(index=index_name, id="1", body={"title": "b"})
    assert (second["result"], second["_version"], second["_seq_no"]) == ("updated", 2, 1)
    third = client.index(index=index_name, id="2", body={"title": "c"})
    assert (third["result"], third["_version"], third["_seq_no"]) == ("created", 1, 2)


def test_index_status_codes(http: RawHttp, index_name: str) -> None:
    status, body = http.request("PUT", f"/{index_name}/_doc/1", {"a": 1})
    assert status == 201 and body["result"] == "created"
    status, body = http.request("POST", f"/{index_name}/_doc/1", {"a": 2})
    assert status == 200 and body["result"] == "updated"


def test_auto_id(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    status, body = http.request("POST", f"/{index_name}/_doc", {"a": 1})
    assert status == 201 and body["result"] == "created" and body["_version"] == 1
    assert re.fullmatch(r"[A-Za-z0-9_-]{20}", body["_id"]), body
    other = client.index(index=index_name, body={"a": 2})
    assert other["_id"] != body["_id"] and len(other["_id"]) == 20
    assert client.get(index=index_name, id=body["_id"])["_source"] == {"a": 1}


def test_put_without_id_is_rejected(http: RawHttp, index_name: str) -> None:
    status, body = http.request("PUT", f"/{index_name}/_doc", {"a": 1})
    assert status == 405, body


def test_create_conflicts_when_document_exists(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    created = client.create(index=index_name, id="1", body={"a": 1})
    assert created["result"] == "created" and created["_version"] == 1
    reason = "[1]: version conflict, document already exists (current version [1])"
    with pytest.raises(ConflictError) as exc:
        client.create(index=index_name, id="1", body={"a": 2})
    assert_error(exc.value.info, 409, "version_conflict_engine_exception", reason)
    assert exc.value.info["error"]["reason"] == reason
    assert exc.value.info["error"]["index"] == index_name and exc.value.info["error"]["shard"] == "0"
    status, body = http.request("PUT", f"/{index_name}/_doc/1?op_type=create", {"a": 3})
    assert status == 409 and body["error"]["reason"] == reason
    status, body = http.request("POST", f"/{index_name}/_create/1", {"a": 3})
    assert status == 409
    assert client.get(index=index_name, id="1")["_source"] == {"a": 1}
    # a failed create consumes no sequence number
    assert client.index(index=index_name, id="2", body={"a": 1})["_seq_no"] == 1


def test_bad_op_type(http: RawHttp, index_name: str) -> None:
    _status, body = http.request("PUT", f"/{index_name}/_doc/1?op_type=upsert", {"a": 1})
    assert_error(body, 400, "illegal_argument_exception", "opType must be 'create' or 'index', found: [upsert]")


def test_routing_is_accepted(client: OpenSearch, index_name: str) -> None:
    assert client.index(index=index_name, id="1", body={"a": 1}, routing="r1")["result"] == "created"
    assert client.get(index=index_name, id="1", routing="r1")["found"] is True
    assert client.delete(index=index_name, id="1", routing="r1")["result"] == "deleted"


# ---- get / exists / _source -----------------------------------------------------------------------------------


def test_get_found_and_source_filters(client: OpenSearch, index_name: str) -> None:
    doc = {"title": "t", "meta": {"a": 1, "b": 2}, "n": 5}
    client.index(index=index_name, id="1", body=doc)
    got = client.get(index=index_name, id="1")
    assert got == {
        "_index": index_name,
        "_id": "1",
        "_version": 1,
        "_seq_no": 0,
        "_primary_term": 1,
        "found": True,
        "_source": doc,
    }
    assert client.get(index=index_name, id="1", _source_includes="meta.*")["_source"] == {"meta": {"a": 1, "b": 2}}
    assert client.get(index=index_name, id="1", _source_excludes="meta")["_source"] == {"title": "t", "n": 5}
    assert client.get(index=index_name, id="1", _source_includes="meta", _source_excludes="meta.b")["_source"] == {
        "meta": {"a": 1}
    }
    no_source = client.get(index=index_name, id="1", _source="false")
    assert "_source" not in no_source and no_source["found"] is True
    assert client.get(index=index_name, id="1", _source="title,n")["_source"] == {"title": "t", "n": 5}


def test_get_missing(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"a": 1})
    status, body = http.request("GET", f"/{index_name}/_doc/nope")
    assert status == 404 and body == {"_index": index_name, "_id": "nope", "found": False}
    with pytest.raises(NotFoundError):
        client.get(index=index_name, id="nope")
    status, body = http.request("GET", "/no-such-index-docs/_doc/1")
    assert_error(body, 404, "index_not_found_exception", "no such index [no-such-index-docs]")


def test_exists(client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"a": 1})
    assert client.exists(index=index_name, id="1") is True
    assert client.exists(index=index_name, id="2") is False
    assert client.exists_source(index=index_name, id="1") is True
    assert client.exists(index="no-such-index-exists", id="1") is False


def test_get_source(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"a": 1, "b": {"c": 2}})
    assert client.get_source(index=index_name, id="1") == {"a": 1, "b": {"c": 2}}
    assert client.get_source(index=index_name, id="1", _source_includes="b") == {"b": {"c": 2}}
    _status, body = http.request("GET", f"/{index_name}/_source/2")
    assert_error(body, 404, "resource_not_found_exception", f"Document not found [{index_name}]/[2]")


# ---- delete -----------------------------------------------------------------------------------------------------


def test_delete(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"a": 1})
    deleted = client.delete(index=index_name, id="1")
    assert deleted == {
        "_index": index_name,
        "_id": "1",
        "_version": 2,
        "result": "deleted",
        "_shards": SHARDS,
        "_seq_no": 1,
        "_primary_term": 1,
    }
    assert client.exists(index=index_name, id="1") is False
    status, body = http.request("DELETE", f"/{index_name}/_doc/1")
    assert status == 404 and body["result"] == "not_found" and body["_id"] == "1"
    assert body["_version"] == 3 and body["_seq_no"] == 2
    # re-indexing after a delete continues the version
    assert client.index(index=index_name, id="1", body={"a": 2})["_version"] == 4


def test_delete_missing_index(http: RawHttp) -> None:
    _status, body = http.request("DELETE", "/no-such-index-del/_doc/1")
    assert_error(body, 404, "index_not_found_exception", "no such index [no-such-index-del]")


# ---- _update ----------------------------------------------------------------------------------------------------


def test_update_partial_doc_deep_merges(client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"a": 1, "obj": {"x": 1, "y": {"z": 1}}, "list": [1, 2]})
    updated = client.update(index=index_name, id="1", body={"doc": {"obj": {"y": {"w": 2}}, "list": [3], "b": 2}})
    assert updated == {
        "_index": index_name,
        "_id": "1",
        "_version": 2,
        "result": "updated",
        "_shards": SHARDS,
        "_seq_no": 1,
        "_primary_term": 1,
    }
    assert client.get(index=index_name, id="1")["_source"] == {
        "a": 1,
        "obj": {"x": 1, "y": {"z": 1, "w": 2}},
        "list": [3],
        "b": 2,
    }


def test_update_noop(client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"a": 1, "o": {"b": 2}})
    noop = client.update(index=index_name, id="1", body={"doc": {"o": {"b": 2}}})
    assert noop == {
        "_index": index_name,
        "_id": "1",
        "_version": 1,
        "result": "noop",
        "_shards": {"total": 0, "successful": 0, "failed": 0},
        "_seq_no": 0,
        "_primary_term": 1,
    }
    forced = client.update(index=index_name, id="1", body={"doc": {"a": 1}, "detect_noop": False})
    assert (forced["result"], forced["_version"], forced["_seq_no"]) == ("updated", 2, 1)


def test_update_missing_document(client: OpenSearch, index_name: str) -> None:
    client.indices.create(index=index_name)
    with pytest.raises(NotFoundError) as exc:
        client.update(index=index_name, id="9", body={"doc": {"a": 1}})
    assert_error(exc.value.info, 404, "document_missing_exception", "[9]: document missing")
    assert exc.value.info["error"]["index"] == index_name


def test_update_upserts(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    status, body = http.request("POST", f"/{index_name}/_update/1", {"doc": {"a": 1}, "doc_as_upsert": True})
    assert status == 201 and body["result"] == "created" and body["_version"] == 1
    assert client.get(index=index_name, id="1")["_source"] == {"a": 1}
    created = client.update(index=index_name, id="2", body={"doc": {"a": 5}, "upsert": {"a": 0, "fresh": True}})
    assert created["result"] == "created"
    assert client.get(index=index_name, id="2")["_source"] == {"a": 0, "fresh": True}
    again = client.update(index=index_name, id="2", body={"doc": {"a": 5}, "upsert": {"a": 0}})
    assert again["result"] == "updated" and again["_version"] == 2
    assert client.get(index=index_name, id="2")["_source"] == {"a": 5, "fresh": True}


def test_update_requires_doc_or_script(http: RawHttp, index_name: str) -> None:
    http.request("PUT", f"/{index_name}/_doc/1", {"a": 1})
    _status, body = http.request("POST", f"/{index_name}/_update/1", {"upsert": {"a": 1}})
    assert_error(body, 400, "action_request_validation_exception", "script or doc is missing")
    _status, body = http.request("POST", f"/{index_name}/_update/1", {"doc": {"a": 1}, "bogus": 1})
    assert_error(body, 400, "parsing_exception", "[UpdateRequest] unknown field [bogus]")


def test_update_returns_source_when_asked(client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"a": 1, "b": 2})
    updated = client.update(index=index_name, id="1", body={"doc": {"a": 3}}, _source="true")
    assert updated["get"]["_source"] == {"a": 3, "b": 2} and updated["get"]["found"] is True


# ---- _mget ------------------------------------------------------------------------------------------------------


def test_mget_docs_and_ids(client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"a": 1, "b": 2})
    client.index(index=index_name, id="2", body={"a": 3, "b": 4})
    by_ids = client.mget(index=index_name, body={"ids": ["1", "3"]})
    assert by_ids["docs"][0] == {
        "_index": index_name,
        "_id": "1",
        "_version": 1,
        "_seq_no": 0,
        "_primary_term": 1,
        "found": True,
        "_source": {"a": 1, "b": 2},
    }
    assert by_ids["docs"][1] == {"_index": index_name, "_id": "3", "found": False}
    docs = client.mget(
        body={
            "docs": [
                {"_index": index_name, "_id": "1", "_source": ["a"]},
                {"_index": index_name, "_id": "2", "_source": False},
                {"_index": "no-such-index-mget", "_id": "1"},
            ]
        }
    )["docs"]
    assert docs[0]["_source"] == {"a": 1}
    assert docs[1]["found"] is True and "_source" not in docs[1]
    assert docs[2]["error"]["type"] == "index_not_found_exception"
    filtered = client.mget(index=index_name, body={"ids": ["2"]}, _source_includes="b")
    assert filtered["docs"][0]["_source"] == {"b": 4}


# ---- optimistic concurrency -------------------------------------------------------------------------------------


def test_if_seq_no_and_primary_term(client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"a": 1})
    ok = client.index(index=index_name, id="1", body={"a": 2}, if_seq_no=0, if_primary_term=1)
    assert ok["_seq_no"] == 1 and ok["_version"] == 2
    with pytest.raises(ConflictError) as exc:
        client.index(index=index_name, id="1", body={"a": 3}, if_seq_no=0, if_primary_term=1)
    assert exc.value.info["error"]["reason"] == (
        "[1]: version conflict, required seqNo [0], primary term [1]. current document has seqNo [1] and "
        "primary term [1]"
    )
    with pytest.raises(ConflictError) as exc:
        client.index(index=index_name, id="2", body={"a": 3}, if_seq_no=0, if_primary_term=1)
    assert exc.value.info["error"]["reason"] == (
        "[2]: version conflict, required seqNo [0], primary term [1]. but no document was found"
    )
    with pytest.raises(ConflictError):
        client.delete(index=index_name, id="1", if_seq_no=0, if_primary_term=1)
    with pytest.raises(ConflictError):
        client.update(index=index_name, id="1", body={"doc": {"a": 9}}, if_seq_no=5, if_primary_term=1)
    assert client.get(index=index_name, id="1")["_source"] == {"a": 2}
    assert client.delete(index=index_name, id="1", if_seq_no=1, if_primary_term=1)["result"] == "deleted"


def test_if_seq_no_needs_primary_term(http: RawHttp, index_name: str) -> None:
    http.request("PUT", f"/{index_name}/_doc/1", {"a": 1})
    status, body = http.request("PUT", f"/{index_name}/_doc/1?if_seq_no=0", {"a": 2})
    assert status == 400 and body["error"]["type"] in (
        "illegal_argument_exception",
        "action_request_validation_exception",
    )


def test_external_versions(client: OpenSearch, index_name: str) -> None:
    first = client.index(index=index_name, id="1", body={"a": 1}, version=5, version_type="external")
    assert (first["result"], first["_version"]) == ("created", 5)
    second = client.index(index=index_name, id="1", body={"a": 2}, version=7, version_type="external")
    assert (second["result"], second["_version"]) == ("updated", 7)
    with pytest.raises(ConflictError) as exc:
        client.index(index=index_name, id="1", body={"a": 3}, version=7, version_type="external")
    assert exc.value.info["error"]["reason"] == (
        "[1]: version conflict, current version [7] is higher or equal to the one provided [7]"
    )
    same = client.index(index=index_name, id="1", body={"a": 4}, version=7, version_type="external_gte")
    assert same["_version"] == 7
    with pytest.raises(ConflictError) as exc:
        client.index(index=index_name, id="1", body={"a": 5}, version=6, version_type="external_gte")
    assert exc.value.info["error"]["reason"] == (
        "[1]: version conflict, current version [7] is higher than the one provided [6]"
    )
    assert client.get(index=index_name, id="1")["_source"] == {"a": 4}


def test_internal_version_is_rejected(http: RawHttp, index_name: str) -> None:
    reason = "internal versioning can not be used for optimistic concurrency control"
    status, body = http.request("PUT", f"/{index_name}/_doc/1?version=1", {"a": 1})
    assert status == 400 and reason in body["error"]["reason"]
    status, body = http.request("DELETE", f"/{index_name}/_doc/1?version=1")
    assert status == 400 and reason in body["error"]["reason"]


# ---- refresh ----------------------------------------------------------------------------------------------------


def test_refresh_true_and_wait_for(client: OpenSearch, index_name: str) -> None:
    client.indices.create(index=index_name, body={"settings": {"index.refresh_interval": "-1"}})
    forced = client.index(index=index_name, id="1", body={"a": 1}, refresh="true")
    assert forced["forced_refresh"] is True
    assert _count(client, index_name) == 1
    waited = client.index(index=index_name, id="2", body={"a": 1}, refresh="wait_for")
    assert "forced_refresh" not in waited
    assert _count(client, index_name) == 2
    client.index(index=index_name, id="3", body={"a": 1})
    assert _count(client, index_name) == 2  # refresh_interval -1: not searchable until a refresh
    client.delete(index=index_name, id="1", refresh="true")
    assert _count(client, index_name) == 2


def test_default_refresh_interval(client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"a": 1})
    assert "forced_refresh" not in client.index(index=index_name, id="2", body={"a": 1})
    assert _wait_count(client, index_name, 2, deadline_s=3.0) < 2.5


# ---- auto-create and dynamic mapping ----------------------------------------------------------------------------


def test_auto_create_and_dynamic_mapping(client: OpenSearch, index_name: str) -> None:
    assert client.indices.exists(index=index_name) is False
    client.index(
        index=index_name,
        id="1",
        body={
            "title": "hello",
            "count": 3,
            "ratio": 0.5,
            "ok": True,
            "when": "2024-01-02T03:04:05Z",
            "obj": {"inner": "x", "n": 1},
        },
    )
    assert client.indices.exists(index=index_name) is True
    props = client.indices.get_mapping(index=index_name)[index_name]["mappings"]["properties"]
    assert props["title"] == {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    assert props["count"] == {"type": "long"}
    assert props["ratio"] == {"type": "float"}
    assert props["ok"] == {"type": "boolean"}
    assert props["when"] == {"type": "date"}
    assert props["obj"]["properties"]["n"] == {"type": "long"}
    assert props["obj"]["properties"]["inner"]["type"] == "text"


def test_mapper_parsing_exception_changes_nothing(client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"n": 1})
    before = client.indices.get_mapping(index=index_name)
    with pytest.raises(RequestError) as exc:
        client.index(index=index_name, id="2", body={"n": "abc", "newfield": "x"})
    assert_error(
        exc.value.info,
        400,
        "mapper_parsing_exception",
        "failed to parse field [n] of type [long] in document with id '2'. Preview of field's value: 'abc'",
    )
    assert client.exists(index=index_name, id="2") is False
    assert client.indices.get_mapping(index=index_name) == before
    assert client.index(index=index_name, id="3", body={"n": 2})["_seq_no"] == 1


def test_strict_dynamic_mapping(client: OpenSearch, index_name: str) -> None:
    client.indices.create(
        index=index_name, body={"mappings": {"dynamic": "strict", "properties": {"a": {"type": "keyword"}}}}
    )
    with pytest.raises(RequestError) as exc:
        client.index(index=index_name, id="1", body={"a": "x", "b": 1})
    assert_error(
        exc.value.info,
        400,
        "strict_dynamic_mapping_exception",
        "mapping set to strict, dynamic introduction of [b] within [_doc] is not allowed",
    )
    assert client.exists(index=index_name, id="1") is False


def test_malformed_json_body(http: RawHttp, index_name: str) -> None:
    status, body = http.request("PUT", f"/{index_name}/_doc/1", b'{"a": ')
    assert_error(body, 400, "mapper_parsing_exception", "failed to parse")
    status, body = http.request("POST", f"/{index_name}/_update/1", b'{"doc": {')
    assert status == 400 and "error" in body and body["status"] == 400
