"""Paths as OpenSearch matches them: empty segments (a trailing slash, a doubled slash) are ignored, and an
encoded slash stays part of the segment it is in."""

from __future__ import annotations

from opensearchpy import OpenSearch

from tests.conftest import RawHttp


def test_trailing_and_doubled_slashes_route_like_the_plain_path(http: RawHttp, index_name: str) -> None:
    status, body = http.request("PUT", f"/{index_name}/", {"mappings": {"properties": {"n": {"type": "integer"}}}})
    assert status == 200 and body["index"] == index_name, body
    status, body = http.request("PUT", f"//{index_name}//_doc/1/?refresh=true", {"n": 1})
    assert status == 201, body
    status, body = http.request("GET", f"/{index_name}/_count/")
    assert (status, body["count"]) == (200, 1)
    status, body = http.request("GET", "/_search/pipeline/")
    assert status in (200, 404) and isinstance(body, dict), (status, body)


def test_an_encoded_trailing_slash_stays_in_the_id(http: RawHttp, client: OpenSearch, index_name: str) -> None:
    status, body = http.request("PUT", f"/{index_name}/_doc/a%2F?refresh=true", {"n": 2})
    assert status == 201 and body["_id"] == "a/", body
    assert client.get(index=index_name, id="a/")["_source"] == {"n": 2}
    status, body = http.request("GET", f"/{index_name}/_doc/a")
    assert status == 404 and body["found"] is False, body
