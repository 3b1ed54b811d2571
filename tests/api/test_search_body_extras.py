"""Search body keys beyond query / sort / paging: `collapse`, `rescore`, `terminate_after`, `indices_boost`,
`profile`, `timeout`, and the refusals of what mlsearch does not do (`script_fields`, `suggest`, `pit`, `slice`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch, helpers

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


# ---- rescore -----------------------------------------------------------------------------------------------------

# first pass: each document scores its price (2: 30, 6: 25, 3: 20, 5: 15, 1: 10, 4: 5, 7: 1)
BY_PRICE_SCORE = {
    "function_score": {"query": {"match_all": {}}, "field_value_factor": {"field": "price"}, "boost_mode": "replace"}
}
BLUE_OR_GREEN = {"constant_score": {"filter": {"terms": {"color": ["blue", "green"]}}, "boost": 10}}
PRICES = {doc_id: doc["price"] for doc_id, doc in DOCS.items()}


def _scores(result: dict[str, Any]) -> list[tuple[str, float]]:
    return [(h["_id"], h["_score"]) for h in result["hits"]["hits"]]


def test_rescore_window_reorders_and_the_rest_keeps_its_order(client: OpenSearch, docs: str) -> None:
    rescore = {
        "window_size": 3,
        "query": {"rescore_query": BLUE_OR_GREEN, "query_weight": 0.5, "rescore_query_weight": 2},
    }
    result = _search(client, {"query": BY_PRICE_SCORE, "rescore": rescore, "size": 7})
    # window 2, 6, 3: 3 matched (0.5·20 + 2·10 = 30), 2 and 6 not (0.5·score); 5, 1, 4, 7 below, unchanged
    expected = [("3", 30.0), ("2", 15.0), ("6", 12.5), ("5", 15.0), ("1", 10.0), ("4", 5.0), ("7", 1.0)]
    assert _scores(result) == expected
    assert result["hits"]["max_score"] == 30.0


@pytest.mark.parametrize(
    ("mode", "matched"),
    [
        ("total", {"3": 30.0, "4": 15.0, "5": 25.0}),
        ("multiply", {"3": 200.0, "4": 50.0, "5": 150.0}),
        ("avg", {"3": 15.0, "4": 7.5, "5": 12.5}),
        ("max", {"3": 20.0, "4": 10.0, "5": 15.0}),
        ("min", {"3": 10.0, "4": 5.0, "5": 10.0}),
    ],
)
def test_rescore_score_modes(client: OpenSearch, docs: str, mode: str, matched: dict[str, float]) -> None:
    rescore = {"query": {"rescore_query": BLUE_OR_GREEN, "score_mode": mode}}
    result = _search(client, {"query": BY_PRICE_SCORE, "rescore": rescore, "size": 7})
    scores = dict(_scores(result))
    assert scores == {**PRICES, **matched}
    assert [s for _, s in _scores(result)] == sorted(scores.values(), reverse=True)


def test_rescorers_apply_in_order(client: OpenSearch, docs: str) -> None:
    red = {"constant_score": {"filter": {"term": {"color": "red"}}, "boost": 100}}
    rescore = [
        {"window_size": 7, "query": {"rescore_query": BLUE_OR_GREEN, "score_mode": "multiply"}},
        {"window_size": 2, "query": {"rescore_query": red, "query_weight": 0.1}},
    ]
    result = _search(client, {"query": BY_PRICE_SCORE, "rescore": rescore, "size": 3})
    # after the first: 3 (200), 5 (150), 4 (50), 2 (30), ...; the second sees 3 and 5 (neither red): 20 and 15
    assert _scores(result) == [("3", 20.0), ("5", 15.0), ("4", 50.0)]


def test_rescore_refuses_a_field_sort(client: OpenSearch, http: RawHttp, docs: str) -> None:
    rescore = {"query": {"rescore_query": BLUE_OR_GREEN}}
    code, body = http.request("POST", f"/{docs}/_search", {"rescore": rescore, "sort": BY_PRICE})
    assert_error(body, 400, "search_phase_execution_exception")
    assert body["error"]["caused_by"] == {
        "type": "illegal_argument_exception",
        "reason": "Cannot use [sort] option in conjunction with [rescore].",
    }
    # sorting by _score is the rescorer's own order; 2 (30, unmatched) and 3 (20 + 10) tie: index order
    result = _search(client, {"query": BY_PRICE_SCORE, "rescore": rescore, "sort": ["_score"], "size": 2})
    assert _scores(result) == [("2", 30.0), ("3", 30.0)]
    assert [h["sort"] for h in result["hits"]["hits"]] == [[30.0], [30.0]]
    plain = {"query": {"match": {"title": "apple"}}, "rescore": rescore, "sort": ["_score"]}
    assert [h["sort"] for h in _search(client, plain)["hits"]["hits"]] == [
        [h["_score"]] for h in _search(client, plain)["hits"]["hits"]
    ]
    code, body = http.request("POST", f"/{docs}/_search", {"rescore": {"query": {"score_mode": "total"}}})
    assert_error(body, 400, "parsing_exception", "rescore_query")
    code, body = http.request(
        "POST", f"/{docs}/_search", {"rescore": {"query": {"rescore_query": {}, "score_mode": "x"}}}
    )
    assert code == 400


# ---- terminate_after, indices_boost, timeout ---------------------------------------------------------------------


def test_terminate_after(client: OpenSearch, docs: str) -> None:
    stopped = _search(client, {"terminate_after": 3, "aggs": {"colors": {"terms": {"field": "color"}}}})
    assert stopped["terminated_early"] is True
    assert stopped["hits"]["total"] == {"value": 3, "relation": "eq"}
    assert sorted(_ids(stopped)) == ["1", "2", "3"]
    buckets = {b["key"]: b["doc_count"] for b in stopped["aggregations"]["colors"]["buckets"]}
    assert buckets == {"red": 2, "blue": 1}
    not_reached = _search(client, {"terminate_after": 100})
    assert not_reached["terminated_early"] is False
    assert not_reached["hits"]["total"]["value"] == 7
    assert "terminated_early" not in _search(client, {"size": 0})


def test_indices_boost(client: OpenSearch, docs: str, index_name: str) -> None:
    client.indices.create(index=index_name, body={"mappings": MAPPINGS})
    client.index(index=index_name, id="x", body={"title": "fig", "price": 12.0}, refresh=True)
    target = f"{docs},{index_name}"
    plain = _search(client, {"query": BY_PRICE_SCORE, "size": 3}, index=target)
    assert _scores(plain) == [("2", 30.0), ("6", 25.0), ("3", 20.0)]
    for boost in ([{index_name: 3}], {index_name: 3}, [{"nomatch-*": 9}, {index_name[:5] + "*": 3}]):
        boosted = _search(client, {"query": BY_PRICE_SCORE, "size": 3, "indices_boost": boost}, index=target)
        assert _scores(boosted) == [("x", 36.0), ("2", 30.0), ("6", 25.0)], boost


def test_timeout_is_accepted(client: OpenSearch, docs: str) -> None:
    result = _search(client, {"timeout": "1ms", "query": {"match": {"title": "apple"}}})
    assert result["timed_out"] is False
    assert sorted(_ids(result)) == ["1", "2", "7"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("script_fields", {"x": {"script": {"source": "1"}}}),
        ("suggest", {"s": {"text": "aple", "term": {"field": "title"}}}),
        ("pit", {"id": "abc", "keep_alive": "1m"}),
        ("slice", {"id": 0, "max": 2}),
        ("profile", True),
    ],
)
def test_unsupported_options_are_refused(http: RawHttp, docs: str, key: str, value: Any) -> None:
    code, body = http.request("POST", f"/{docs}/_search", {key: value})
    assert code == 400
    assert_error(body, 400, "illegal_argument_exception", f"[{key}] is not supported")


def test_profile_false_is_accepted(client: OpenSearch, docs: str) -> None:
    assert _search(client, {"profile": False})["hits"]["total"]["value"] == 7


def test_helpers_scan_pages_through_scroll(client: OpenSearch, docs: str) -> None:
    # the scroll API (tests/api/test_scroll.py) replaced the former refusal of `?scroll`
    assert len(list(helpers.scan(client, index=docs, size=2))) == 7
