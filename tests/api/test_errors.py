"""One error envelope everywhere: a bad request for every route family, malformed JSON, unknown queries and routes,
bodies over http.max_content_length; afterwards the server still serves and nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from tests.conftest import RawHttp, ServerProcess

IDX = "errors-idx"


def assert_envelope(body: object, status: int, error_type: str, reason_part: str = "") -> None:
    assert isinstance(body, dict), body
    assert body["status"] == status, body
    error = body["error"]
    assert isinstance(error, dict) and isinstance(error["root_cause"], list) and error["root_cause"], body
    for cause in error["root_cause"]:
        assert isinstance(cause["type"], str) and isinstance(cause["reason"], str), body
    assert error["type"] == error_type, body
    assert reason_part in error["reason"], body


@pytest.fixture
def seeded(client: OpenSearch) -> Iterator[str]:
    client.indices.delete(index=IDX, ignore_unavailable=True)
    client.indices.create(index=IDX, body={"mappings": {"properties": {"n": {"type": "long"}}}})
    client.index(index=IDX, id="1", body={"n": 1}, refresh=True)
    yield IDX
    client.indices.delete(index=IDX, ignore_unavailable=True)


def _snapshot(client: OpenSearch) -> tuple[object, ...]:
    return (
        sorted(client.cat.indices(format="json", h="index,docs.count"), key=lambda r: r["index"]),
        client.cluster.get_settings(flat_settings=True),
        client.indices.get(index=IDX),
        client.search(index=IDX)["hits"]["hits"],
    )


CASES = [
    # (family, method, path, body, status, type, reason part)
    (
        "cluster",
        "PUT",
        "/_cluster/settings",
        {"persistent": {"nope.x": 1}},
        400,
        "illegal_argument_exception",
        "unknown setting [nope.x]",
    ),
    ("cluster health", "GET", "/_cluster/health/errors-missing", None, 404, "index_not_found_exception", ""),
    ("indices", "PUT", "/Bad-Name", None, 400, "invalid_index_name_exception", "must be lowercase"),
    ("indices exists", "PUT", f"/{IDX}", None, 400, "resource_already_exists_exception", ""),
    (
        "mapping",
        "PUT",
        f"/{IDX}/_mapping",
        {"properties": {"n": {"type": "text"}}},
        400,
        "illegal_argument_exception",
        "mapper [n] cannot be changed from type [long] to [text]",
    ),
    (
        "mapping parse",
        "PUT",
        f"/{IDX}/_mapping",
        {"properties": {"m": {"type": "nope"}}},
        400,
        "mapper_parsing_exception",
        "No handler for type [nope] declared on field [m]",
    ),
    (
        "settings",
        "PUT",
        f"/{IDX}/_settings",
        {"index.bogus": 1},
        400,
        "illegal_argument_exception",
        "unknown setting [index.bogus]",
    ),
    ("documents", "GET", "/errors-missing/_doc/1", None, 404, "index_not_found_exception", "no such index"),
    ("documents parse", "PUT", f"/{IDX}/_doc/2", {"n": "not a number"}, 400, "mapper_parsing_exception", ""),
    ("bulk", "POST", "/_bulk", '{"explode": {"_index": "errors-idx"}}\n{}\n', 400, "illegal_argument_exception", ""),
    ("search", "POST", f"/{IDX}/_search", {"query": {"foo": {}}}, 400, "parsing_exception", "unknown query [foo]"),
    ("search missing", "POST", "/errors-missing/_search", {}, 404, "index_not_found_exception", ""),
    ("search body", "POST", f"/{IDX}/_search", {"bogus": {}}, 400, "parsing_exception", ""),
    ("count", "POST", f"/{IDX}/_count", {"query": {"bar": {}}}, 400, "parsing_exception", "unknown query [bar]"),
    ("msearch", "POST", "/_msearch", '{"index": "errors-idx"}\n', 400, "illegal_argument_exception", ""),
    (
        "aliases",
        "POST",
        "/_aliases",
        {"actions": [{"add": {"index": "errors-missing", "alias": "a"}}]},
        404,
        "index_not_found_exception",
        "",
    ),
    ("cat", "GET", "/_cat/indices/errors-missing", None, 404, "index_not_found_exception", ""),
    ("delete", "DELETE", "/errors-missing", None, 404, "index_not_found_exception", ""),
    ("malformed json", "POST", f"/{IDX}/_search", "{not json", 400, None, ""),
    ("malformed json doc", "PUT", f"/{IDX}/_doc/3", "{not json", 400, None, ""),
]


def test_every_route_family_answers_with_the_envelope(client: OpenSearch, http: RawHttp, seeded: str) -> None:
    before = _snapshot(client)
    for family, method, path, body, status, error_type, reason in CASES:
        got_status, got = http.request(method, path, body)
        assert got_status == status, (family, got)
        if error_type is None:
            assert isinstance(got, dict) and got["status"] == status and got["error"]["root_cause"], (family, got)
        else:
            assert_envelope(got, status, error_type, reason)
    # an unknown route answers as OpenSearch's RestController does
    status, got = http.request("GET", "/_no/such/route")
    assert status == 400
    assert got == {"error": "no handler found for uri [/_no/such/route] and method [GET]"}
    status, got = http.request("DELETE", "/_cluster/health")
    assert status == 405 and "Incorrect HTTP method for uri [/_cluster/health]" in got["error"]
    assert client.cluster.health()["status"] in ("green", "yellow")
    assert _snapshot(client) == before


def test_body_over_max_content_length(tmp_path: Path) -> None:
    small = ServerProcess(tmp_path, env={"MLSEARCH_MAX_CONTENT_LENGTH": "2048"}).start()
    try:
        http = RawHttp(small.url)
        assert http.request("PUT", "/limited")[0] == 200
        status, body = http.request("POST", "/limited/_doc/1", {"text": "x" * 4096})
        assert status == 413
        if body:
            assert_envelope(body, 413, "content_too_long_exception")
        assert http.request("POST", "/limited/_doc/1?refresh=true", {"text": "small"})[0] == 201
        status, body = http.request("POST", "/limited/_search", {"query": {"match": {"text": "x" * 3000}}})
        assert status == 413
        status, body = http.request("GET", "/limited/_count")
        assert status == 200 and body["count"] == 1
        status, nodes = http.request("GET", "/_nodes")
        assert next(iter(nodes["nodes"].values()))["http"]["max_content_length_in_bytes"] == 2048
    finally:
        small.stop()
