"""Scripted updates (Painless `ctx`): `_update`, `_bulk` update, `_update_by_query` and `_reindex` with `script`."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from opensearchpy import NotFoundError, OpenSearch

from tests.conftest import RawHttp, assert_error

# Haystack's OpenSearchDocumentStore.update_by_filter sends exactly this script.
HAYSTACK_SCRIPT = "for (entry in params.entrySet()) { ctx._source[entry.getKey()] = entry.getValue(); }"


def _update(http: RawHttp, index: str, doc_id: str, body: dict, query: str = "") -> tuple[int, dict]:
    status, response = http.request("POST", f"/{index}/_update/{doc_id}{query}", body)
    assert isinstance(response, dict), response
    return status, response


def _doc(client: OpenSearch, index: str, doc_id: str) -> tuple[int, dict]:
    found = client.get(index=index, id=doc_id)
    return found["_version"], found["_source"]


@pytest.fixture
def dest(client: OpenSearch, index_name: str) -> Iterator[str]:
    name = index_name + "-dest"
    client.indices.delete(index=name, ignore_unavailable=True)
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


# ---- _update --------------------------------------------------------------------------------------------------


def test_counter_and_string_shorthand(client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"counter": 1, "name": "a"})
    script = {"source": "ctx._source.counter += params.count", "lang": "painless", "params": {"count": 4}}
    response = client.update(index=index_name, id="1", body={"script": script})
    assert response["result"] == "updated" and response["_version"] == 2
    assert _doc(client, index_name, "1") == (2, {"counter": 5, "name": "a"})
    response = client.update(index=index_name, id="1", body={"script": "ctx._source.counter++"})
    assert response["result"] == "updated"
    assert _doc(client, index_name, "1") == (3, {"counter": 6, "name": "a"})


def test_lists_and_maps(client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"tags": ["red", "blue"], "old": 1, "keep": {"x": 1}})
    source = (
        "ctx._source.tags.add(params.tag); ctx._source.tags.remove(ctx._source.tags.indexOf('red'));"
        "if (ctx._source.containsKey('old')) { ctx._source.remove('old') }"
        "ctx._source.has_blue = ctx._source.tags.contains('blue'); ctx._source.keep.y = 2;"
    )
    client.update(index=index_name, id="1", body={"script": {"source": source, "params": {"tag": "green"}}})
    assert _doc(client, index_name, "1")[1] == {
        "tags": ["blue", "green"],
        "keep": {"x": 1, "y": 2},
        "has_blue": True,
    }


def test_haystack_entry_set_script(client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"content": "hello", "category": "a"})
    params = {"category": "b", "year": 2024, "meta": {"lang": "en"}}
    body = {"script": {"source": HAYSTACK_SCRIPT, "params": params, "lang": "painless"}}
    assert client.update(index=index_name, id="1", body=body)["result"] == "updated"
    assert _doc(client, index_name, "1")[1] == {
        "content": "hello",
        "category": "b",
        "year": 2024,
        "meta": {"lang": "en"},
    }


def test_ctx_metadata_and_unchanged_source_still_reindexes(client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="d1", body={"a": 1})
    before = int(time.time() * 1000)
    response = client.update(index=index_name, id="d1", body={"script": "ctx._source.a = ctx._source.a"})
    assert response["result"] == "updated" and response["_version"] == 2  # scripts skip detect_noop
    source = (
        "ctx._source.meta = ctx._id + '/' + ctx._index + '/' + ctx._version + '/' + ctx.op; ctx._source.t = ctx._now"
    )
    client.update(index=index_name, id="d1", body={"script": source})
    version, doc = _doc(client, index_name, "d1")
    assert version == 3 and doc["meta"] == f"d1/{index_name}/2/index"
    assert before <= doc["t"] <= int(time.time() * 1000)


@pytest.mark.parametrize("op", ["noop", "none"])
def test_op_noop(client: OpenSearch, index_name: str, op: str) -> None:
    client.index(index=index_name, id="1", body={"n": 1})
    body = {"script": f"ctx._source.n = 99; ctx.op = '{op}'"}
    response = client.update(index=index_name, id="1", body=body)
    assert response["result"] == "noop" and response["_version"] == 1
    assert _doc(client, index_name, "1") == (1, {"n": 1})


def test_op_delete(client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"n": 1})
    client.index(index=index_name, id="2", body={"n": 7}, refresh=True)
    script = {"source": "if (ctx._source.n < params.min) { ctx.op = 'delete' }", "params": {"min": 5}}
    response = client.update(index=index_name, id="1", body={"script": script}, refresh=True)
    assert response["result"] == "deleted" and response["_version"] == 2
    with pytest.raises(NotFoundError):
        client.get(index=index_name, id="1")
    assert client.update(index=index_name, id="2", body={"script": script})["result"] == "updated"
    assert client.count(index=index_name)["count"] == 1


def test_upsert_and_scripted_upsert(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    script = {"source": "ctx._source.count += params.n", "params": {"n": 2}}
    status, response = _update(http, index_name, "1", {"script": script, "upsert": {"count": 10}})
    assert status == 201 and response["result"] == "created"
    assert _doc(client, index_name, "1") == (1, {"count": 10})  # the upsert document as is: the script did not run
    _update(http, index_name, "1", {"script": script, "upsert": {"count": 10}})
    assert _doc(client, index_name, "1") == (2, {"count": 12})

    counting = {
        "source": "if (ctx.op == 'create') { ctx._source.count = params.n * 100 } else { ctx._source.count += params.n }",
        "params": {"n": 3},
    }
    body = {"script": counting, "upsert": {}, "scripted_upsert": True}
    status, response = _update(http, index_name, "2", body)
    assert status == 201 and response["result"] == "created"
    assert _doc(client, index_name, "2") == (1, {"count": 300})
    _update(http, index_name, "2", body)
    assert _doc(client, index_name, "2") == (2, {"count": 303})

    abandon = {"script": "ctx.op = 'none'", "upsert": {"a": 1}, "scripted_upsert": True}
    status, response = _update(http, index_name, "3", abandon)
    assert status == 200 and response["result"] == "noop"
    with pytest.raises(NotFoundError):
        client.get(index=index_name, id="3")


def test_missing_document_without_upsert(http: RawHttp, index_name: str) -> None:
    http.request("PUT", f"/{index_name}/_doc/1", {"a": 1})
    _status, body = _update(http, index_name, "nope", {"script": "ctx._source.a = 1"})
    assert_error(body, 404, "document_missing_exception", "[nope]: document missing")


def test_update_returns_scripted_source(client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"a": 1})
    response = client.update(index=index_name, id="1", body={"script": "ctx._source.b = 2"}, _source="true")
    assert response["get"]["_source"] == {"a": 1, "b": 2}


def test_runtime_error_leaves_document_unchanged(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"tags": ["a"], "n": 1})
    source = "ctx._source.n = 2;\nctx._source.missing.add('x')"
    _status, body = _update(http, index_name, "1", {"script": {"source": source, "lang": "painless"}})
    assert_error(body, 400, "illegal_argument_exception", "failed to execute script")
    cause = body["error"]["caused_by"]
    assert cause["type"] == "script_exception" and cause["reason"] == "runtime error"
    assert cause["lang"] == "painless" and cause["script"] == source
    assert cause["script_stack"] == ["ctx._source.missing.add('x')"]
    assert cause["caused_by"]["type"] == "null_pointer_exception"
    assert _doc(client, index_name, "1") == (1, {"tags": ["a"], "n": 1})


def test_compile_error_and_script_checks(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"n": 1})
    _status, body = _update(http, index_name, "1", {"script": "ctx._source.n = = 2"})
    assert_error(body, 400, "illegal_argument_exception", "failed to execute script")
    assert body["error"]["caused_by"]["reason"] == "compile error"

    _status, body = _update(http, index_name, "1", {"script": {"source": "ctx._source.n = 2", "lang": "groovy"}})
    assert_error(body, 400, "illegal_argument_exception", "failed to execute script")
    assert body["error"]["caused_by"]["reason"] == "script_lang not supported [groovy]"

    _status, body = _update(http, index_name, "1", {"script": {"id": "stored-one"}})
    assert_error(body, 400, "illegal_argument_exception", "failed to execute script")
    assert "stored scripts are not supported" in body["error"]["caused_by"]["reason"]

    _status, body = _update(http, index_name, "1", {"script": "ctx._source.n = 2", "doc": {"n": 3}})
    assert_error(body, 400, "action_request_validation_exception", "can't provide both script and doc")
    assert _doc(client, index_name, "1") == (1, {"n": 1})


# ---- _bulk ----------------------------------------------------------------------------------------------------


def test_bulk_update_with_script(client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"n": 1, "tags": []})
    client.index(index=index_name, id="2", body={"n": 2})
    client.index(index=index_name, id="3", body={"n": 3})
    lines = [
        {"update": {"_index": index_name, "_id": "1", "retry_on_conflict": 3}},
        {"script": {"source": "ctx._source.n += params.by; ctx._source.tags.add('x')", "params": {"by": 10}}},
        {"update": {"_index": index_name, "_id": "1"}},
        {"script": "ctx._source.n *= 2"},  # sees the previous item's change
        {"update": {"_index": index_name, "_id": "2"}},
        {"script": "ctx._source.missing.add(1)"},
        {"update": {"_index": index_name, "_id": "3"}},
        {"script": "ctx.op = 'delete'"},
        {"update": {"_index": index_name, "_id": "4"}},
        {"script": {"source": "ctx._source.n = 1"}, "upsert": {"n": 0, "new": True}},
        {"update": {"_index": index_name, "_id": "2"}},
        {"script": "ctx._source.n = 5", "doc": {"n": 6}},
    ]
    response = client.bulk(body=lines, refresh="true")
    assert response["errors"] is True
    items = [item["update"] for item in response["items"]]
    assert [i.get("result") for i in items] == ["updated", "updated", None, "deleted", "created", None]
    assert [i["status"] for i in items] == [200, 200, 400, 200, 201, 400]
    assert items[2]["error"]["type"] == "illegal_argument_exception"
    assert items[2]["error"]["caused_by"]["type"] == "script_exception"
    assert items[5]["error"]["type"] == "action_request_validation_exception"
    assert "can't provide both script and doc" in items[5]["error"]["reason"]
    assert _doc(client, index_name, "1") == (3, {"n": 22, "tags": ["x"]})
    assert _doc(client, index_name, "2") == (1, {"n": 2})
    assert _doc(client, index_name, "4") == (1, {"n": 0, "new": True})
    with pytest.raises(NotFoundError):
        client.get(index=index_name, id="3")


# ---- _update_by_query -----------------------------------------------------------------------------------------


def _load(client: OpenSearch, index: str, n: int = 6) -> None:
    client.indices.create(index=index, body={"mappings": {"properties": {"category": {"type": "keyword"}}}})
    lines: list[dict] = []
    for i in range(n):
        lines += [{"index": {"_index": index, "_id": str(i)}}, {"n": i, "category": "a" if i < 4 else "b"}]
    assert client.bulk(body=lines, refresh="true")["errors"] is False


def test_update_by_query_haystack_update_by_filter(client: OpenSearch, index_name: str) -> None:
    _load(client, index_name)
    body = {
        "query": {"bool": {"filter": [{"term": {"category": "a"}}]}},
        "script": {"source": HAYSTACK_SCRIPT, "params": {"category": "c", "reviewed": True}, "lang": "painless"},
    }
    response = client.update_by_query(index=index_name, body=body, refresh=True)
    assert (response["total"], response["updated"], response["noops"], response["deleted"]) == (4, 4, 0, 0)
    assert response["failures"] == []
    assert client.count(index=index_name, body={"query": {"term": {"category": "c"}}})["count"] == 4
    assert _doc(client, index_name, "2") == (2, {"n": 2, "category": "c", "reviewed": True})
    assert _doc(client, index_name, "5") == (1, {"n": 5, "category": "b"})


def test_update_by_query_noop_and_delete(client: OpenSearch, index_name: str) -> None:
    _load(client, index_name)
    source = (
        "if (ctx._source.n == 0) { ctx.op = 'delete' } else if (ctx._source.n % 2 == 1) { ctx.op = 'noop' }"
        " else { ctx._source.n += params.add }"
    )
    body = {"query": {"range": {"n": {"lte": 4}}}, "script": {"source": source, "params": {"add": 100}}}
    response = client.update_by_query(index=index_name, body=body, refresh=True)
    assert (response["total"], response["updated"], response["noops"], response["deleted"]) == (5, 2, 2, 1)
    assert client.count(index=index_name)["count"] == 5
    assert _doc(client, index_name, "2") == (2, {"n": 102, "category": "a"})
    assert _doc(client, index_name, "3") == (1, {"n": 3, "category": "a"})
    assert client.count(index=index_name, body={"query": {"range": {"n": {"gte": 100}}}})["count"] == 2


def test_update_by_query_script_errors(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    _load(client, index_name)
    path = f"/{index_name}/_update_by_query"
    _status, body = http.request(
        "POST", path, {"script": "ctx._source.n += 1; if (ctx._source.n == 4) { ctx._source.x.y = 1 }"}
    )
    assert_error(body, 400, "script_exception", "runtime error")
    assert body["error"]["caused_by"]["type"] == "null_pointer_exception"
    assert all(_doc(client, index_name, str(i))[0] == 1 for i in range(6))  # the failing batch wrote nothing

    _status, body = http.request("POST", path, {"script": "ctx.op = 'bogus'"})
    assert_error(
        body, 400, "illegal_argument_exception", "Operation type [bogus] not allowed, only [noop, index, delete]"
    )
    _status, body = http.request("POST", path, {"script": "ctx._id = 'other'"})
    assert_error(body, 400, "illegal_argument_exception", "Modifying [_id] not allowed")
    _status, body = http.request("POST", path, {"script": {"source": "ctx._source.n = 1", "lang": "mustache"}})
    assert_error(body, 400, "illegal_argument_exception", "script_lang not supported [mustache]")
    _status, body = http.request("POST", path, {"script": "ctx._source.n = "})
    assert_error(body, 400, "script_exception", "compile error")
    assert all(_doc(client, index_name, str(i)) == (1, {"n": i, "category": "a" if i < 4 else "b"}) for i in range(6))


# ---- _reindex -------------------------------------------------------------------------------------------------


def test_reindex_with_script(client: OpenSearch, index_name: str, dest: str) -> None:
    _load(client, index_name, 4)
    source = (
        "if (ctx._source.n == 1) { ctx.op = 'noop' } else { ctx._source.copied = true; ctx._source.remove('category') }"
        " if (ctx._source.n == 3) { ctx._id = 'three' }"
    )
    body = {"source": {"index": index_name}, "dest": {"index": dest}, "script": {"source": source}}
    response = client.reindex(body=body, refresh=True)
    assert (response["total"], response["created"], response["noops"]) == (4, 3, 1)
    assert client.count(index=dest)["count"] == 3
    assert _doc(client, dest, "0") == (1, {"n": 0, "copied": True})
    assert _doc(client, dest, "three") == (1, {"n": 3, "copied": True})
    with pytest.raises(NotFoundError):
        client.get(index=dest, id="1")
    assert _doc(client, index_name, "0") == (1, {"n": 0, "category": "a"})  # the source index is untouched
