"""Search body keys beyond query / sort / paging: `collapse`, `rescore`, `terminate_after`, `indices_boost`,
`profile`, `timeout`, and the refusals of what mlsearch does not do (`script_fields`, `suggest`, `pit`, `slice`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch

from tests.conftest import RawHttp, assert_error

IDX = "extras-a"
MAPPINGS = {
    "properties": {
        "title": {"type": "text"},
        "color": {"type": "keyword"},
        "rank": {"type": "integer"},
        "price": {"type": "float"},
    }
}
DOCS = {
    "1": {"title": "apple", "color": "red", "rank": 1, "price": 10.0},
    "2": {"title": "apple pie", "color": "red", "rank": 2, "price": 30.0},
    "3": {"title": "banana", "color": "blue", "rank": 1, "price": 20.0},
    "4": {"title": "banana split", "color": "blue", "rank": 3, "price": 5.0},
    "5": {"title": "cherry", "color": "green", "rank": 2, "price": 15.0},
    "6": {"title": "date", "rank": 3, "price": 25.0},
    "7": {"title": "apple cherry", "color": "red", "rank": 1, "price": 1.0},
}
BY_PRICE = [{"price": "desc"}]


@pytest.fixture(scope="module")
def docs(client: OpenSearch) -> Iterator[str]:
    client.indices.delete(index=IDX, ignore_unavailable=True)
    client.indices.create(index=IDX, body={"mappings": MAPPINGS})
    for doc_id, doc in DOCS.items():
        client.index(index=IDX, id=doc_id, body=doc)
    client.indices.refresh(index=IDX)
    yield IDX
    client.indices.delete(index=IDX, ignore_unavailable=True)


def _search(client: OpenSearch, body: dict[str, Any], index: str = IDX, **params: Any) -> dict[str, Any]:
    return client.search(index=index, body=body, params=params or None)


def _ids(result: dict[str, Any]) -> list[str]:
    return [h["_id"] for h in result["hits"]["hits"]]


# ---- collapse ----------------------------------------------------------------------------------------------------


def test_collapse_keeps_the_best_hit_per_keyword(client: OpenSearch, docs: str) -> None:
    result = _search(client, {"sort": BY_PRICE, "collapse": {"field": "color"}})
    # leaders by price: red 2 (30), no color 6 (25), blue 3 (20), green 5 (15)
    assert _ids(result) == ["2", "6", "3", "5"]
    assert [h["fields"] for h in result["hits"]["hits"] if h["_id"] != "6"] == [
        {"color": ["red"]},
        {"color": ["blue"]},
        {"color": ["green"]},
    ]
    # the total counts matching documents, not groups (as OpenSearch)
    assert result["hits"]["total"] == {"value": 7, "relation": "eq"}


def test_collapse_on_a_number_by_score(client: OpenSearch, docs: str) -> None:
    plain = _search(client, {"query": {"match": {"title": "apple cherry"}}})
    result = _search(client, {"query": {"match": {"title": "apple cherry"}}, "collapse": {"field": "rank"}})
    best: dict[int, str] = {}
    for hit in plain["hits"]["hits"]:
        best.setdefault(DOCS[hit["_id"]]["rank"], hit["_id"])
    assert _ids(result) == list(best.values())
    assert [h["fields"]["rank"] for h in result["hits"]["hits"]] == [[r] for r in best]
    assert result["hits"]["total"]["value"] == plain["hits"]["total"]["value"]


def test_collapse_pages_over_groups(client: OpenSearch, docs: str) -> None:
    page = _search(client, {"sort": BY_PRICE, "collapse": {"field": "color"}, "from": 1, "size": 2})
    assert _ids(page) == ["6", "3"]
    assert page["hits"]["total"]["value"] == 7


def test_collapse_inner_hits(client: OpenSearch, docs: str) -> None:
    inner = {"name": "cheapest", "size": 2, "sort": [{"price": "asc"}]}
    result = _search(client, {"sort": BY_PRICE, "collapse": {"field": "color", "inner_hits": inner}, "size": 1})
    [red] = result["hits"]["hits"]
    group = red["inner_hits"]["cheapest"]["hits"]
    assert red["_id"] == "2"
    assert group["total"] == {"value": 3, "relation": "eq"}
    assert [h["_id"] for h in group["hits"]] == ["7", "1"]
    assert [h["sort"] for h in group["hits"]] == [[1.0], [10.0]]
    assert group["hits"][0]["_source"] == DOCS["7"]


@pytest.mark.parametrize(
    ("collapse", "status", "error_type", "reason"),
    [
        ({"field": "title"}, 400, "illegal_argument_exception", "unknown type for collapse field `title`"),
        ({"field": "nope"}, 400, "illegal_argument_exception", "no mapping found for `nope` in order to collapse on"),
        ({"field": "color", "inner_hits": {"size": 1}}, 400, "illegal_argument_exception", "must have a [name]"),
    ],
)
def test_collapse_errors(
    http: RawHttp, docs: str, collapse: dict[str, Any], status: int, error_type: str, reason: str
) -> None:
    code, body = http.request("POST", f"/{docs}/_search", {"collapse": collapse})
    assert code == status
    assert_error(body, status, error_type, reason)


def test_collapse_refuses_rescore_and_search_after(http: RawHttp, docs: str) -> None:
    rescore = {"query": {"rescore_query": {"match_all": {}}}}
    code, body = http.request("POST", f"/{docs}/_search", {"collapse": {"field": "color"}, "rescore": rescore})
    assert code == 500
    assert body["error"]["caused_by"]["reason"] == "cannot use `collapse` in conjunction with `rescore`"
    after = {"collapse": {"field": "color"}, "sort": BY_PRICE, "search_after": [20.0]}
    code, body = http.request("POST", f"/{docs}/_search", after)
    assert body["error"]["caused_by"]["reason"] == "cannot use `collapse` in conjunction with `search_after`"
