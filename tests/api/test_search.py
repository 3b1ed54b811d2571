"""Search request features: paging, sort, search_after, _source filtering, totals, explain, msearch, count, targets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, RequestError

A, B = "srch-a", "srch-b"
MAPPINGS = {
    "properties": {
        "title": {"type": "text"},
        "tag": {"type": "keyword"},
        "n": {"type": "integer"},
        "price": {"type": "float"},
        "user": {"properties": {"name": {"type": "keyword"}, "age": {"type": "integer"}}},
    }
}


def _doc(i: int) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "title": f"doc number {i}" + (" special" if i % 3 == 0 else ""),
        "n": i,
        "user": {"name": f"u{i % 4}", "age": 20 + i},
    }
    if i % 5 != 0:
        doc["tag"] = f"t{i % 4}"
    if i % 2 == 0:
        doc["price"] = i / 2
    return doc


@pytest.fixture(scope="module")
def two_indices(client: OpenSearch) -> Iterator[None]:
    for name in (A, B):
        client.indices.delete(index=name, ignore_unavailable=True)
        client.indices.create(
            index=name,
            body={"mappings": MAPPINGS, "aliases": {"srch-alias": {}}} if name == A else {"mappings": MAPPINGS},
        )
    for i in range(1, 21):
        client.index(index=A, id=str(i), body=_doc(i))
    for i in range(21, 26):
        client.index(index=B, id=str(i), body=_doc(i))
    client.indices.refresh(index=f"{A},{B}")
    yield
    client.indices.delete(index=f"{A},{B}", ignore_unavailable=True)


def search(client: OpenSearch, body: dict[str, Any], index: str = A, **params: Any) -> dict[str, Any]:
    return client.search(index=index, body=body, params=params or None)


def hit_ids(result: dict[str, Any]) -> list[str]:
    return [h["_id"] for h in result["hits"]["hits"]]


def test_from_size_and_sorts(client: OpenSearch, two_indices: None) -> None:
    page = search(client, {"sort": [{"n": "asc"}], "from": 5, "size": 3})
    assert hit_ids(page) == ["6", "7", "8"]
    assert [h["sort"] for h in page["hits"]["hits"]] == [[6], [7], [8]]
    assert all(h["_score"] is None for h in page["hits"]["hits"]) and page["hits"]["max_score"] is None
    assert hit_ids(search(client, {"sort": [{"n": {"order": "desc"}}], "size": 2})) == ["20", "19"]
    multi = search(client, {"sort": [{"user.name": "asc"}, {"n": "desc"}], "size": 4})
    assert hit_ids(multi) == ["20", "16", "12", "8"]
    assert multi["hits"]["hits"][0]["sort"] == ["u0", 20]
    kw = search(client, {"sort": [{"tag": "desc"}], "size": 20})
    tags = [h["sort"][0] for h in kw["hits"]["hits"]]
    assert tags[:15] == sorted(tags[:15], reverse=True) and tags[-4:] == [None] * 4
    first = search(client, {"sort": [{"tag": {"order": "asc", "missing": "_first"}}, {"n": "asc"}], "size": 5})
    assert hit_ids(first) == ["5", "10", "15", "20", "4"]
    price = search(client, {"sort": [{"price": {"order": "asc", "missing": "_last"}}], "size": 20})
    assert hit_ids(price)[:3] == ["2", "4", "6"] and hit_ids(price)[-1] in {str(i) for i in range(1, 21, 2)}
    assert search(client, {"sort": [{"price": "asc"}], "size": 1})["hits"]["hits"][0]["sort"] == [1.0]
    doc_order = search(client, {"sort": ["_doc"], "size": 3})
    assert hit_ids(doc_order) == ["1", "2", "3"]
    scored = search(client, {"query": {"match": {"title": "special"}}, "sort": ["_score", {"n": "desc"}]})
    assert hit_ids(scored)[:2] == ["18", "15"] and scored["hits"]["hits"][0]["_score"] is not None
    tracked = search(
        client, {"query": {"match": {"title": "special"}}, "sort": [{"n": "desc"}], "track_scores": True, "size": 1}
    )
    assert tracked["hits"]["hits"][0]["_score"] > 0 and tracked["hits"]["max_score"] > 0
    q = search(client, {}, sort="n:desc", size="2")
    assert hit_ids(q) == ["20", "19"]
    with pytest.raises(RequestError) as info:
        search(client, {"sort": [{"title": "asc"}]})
    assert info.value.error == "illegal_argument_exception"


def test_search_after(client: OpenSearch, two_indices: None) -> None:
    body: dict[str, Any] = {"sort": [{"user.name": "asc"}, {"n": "asc"}], "size": 6}
    seen: list[str] = []
    while True:
        page = search(client, body)
        hits = page["hits"]["hits"]
        if not hits:
            break
        seen += [h["_id"] for h in hits]
        body["search_after"] = hits[-1]["sort"]
    expected = [str(i) for i in sorted(range(1, 21), key=lambda i: (f"u{i % 4}", i))]
    assert seen == expected
    with pytest.raises(RequestError):
        search(client, {"sort": [{"n": "asc"}], "search_after": [1, 2]})


def test_source_filtering(client: OpenSearch, two_indices: None) -> None:
    def source(spec: Any, **params: Any) -> Any:
        body = (
            {"query": {"ids": {"values": ["4"]}}}
            if spec is ...
            else {"query": {"ids": {"values": ["4"]}}, "_source": spec}
        )
        hit = search(client, body, **params)["hits"]["hits"][0]
        return hit.get("_source")

    full = _doc(4)
    assert source(...) == full
    assert source(False) is None
    assert source(True) == full
    assert source("title") == {"title": full["title"]}
    assert source(["n", "user.name"]) == {"n": 4, "user": {"name": "u0"}}
    assert source({"includes": ["user.*"], "excludes": ["user.age"]}) == {"user": {"name": "u0"}}
    assert source({"include": "user", "exclude": "user.name"}) == {"user": {"age": 24}}
    assert source({"excludes": ["t*", "user"]}) == {"n": 4, "price": 2.0}
    assert source("u*") == {"user": full["user"]}
    assert source(..., _source_includes="n,tag") == {"n": 4, "tag": "t0"}
    assert source(..., _source="false") is None
    assert source(..., _source_excludes="user,title") == {"n": 4, "tag": "t0", "price": 2.0}


def test_total_hits_tracking(client: OpenSearch, two_indices: None) -> None:
    assert search(client, {"size": 0})["hits"]["total"] == {"value": 20, "relation": "eq"}
    assert search(client, {"track_total_hits": 5, "size": 1})["hits"]["total"] == {"value": 5, "relation": "gte"}
    assert search(client, {"track_total_hits": True})["hits"]["total"] == {"value": 20, "relation": "eq"}
    assert "total" not in search(client, {"track_total_hits": False})["hits"]
    assert search(client, {}, track_total_hits="3")["hits"]["total"]["relation"] == "gte"


def test_explain_min_score_post_filter_versions(client: OpenSearch, two_indices: None) -> None:
    result = search(client, {"query": {"match": {"title": "special"}}, "explain": True, "size": 2})
    for hit in result["hits"]["hits"]:
        exp = hit["_explanation"]
        assert exp["value"] == pytest.approx(hit["_score"], rel=1e-5)
        assert isinstance(exp["description"], str) and isinstance(exp["details"], list)
    all_scores = [
        h["_score"]
        for h in search(client, {"query": {"match": {"title": "special number"}}, "size": 30})["hits"]["hits"]
    ]
    cut = sorted(all_scores)[len(all_scores) // 2]
    above = search(client, {"query": {"match": {"title": "special number"}}, "min_score": cut, "size": 30})
    assert len(above["hits"]["hits"]) == sum(1 for s in all_scores if s >= cut)
    assert above["hits"]["total"]["value"] == len(above["hits"]["hits"])
    pf = search(client, {"query": {"match": {"title": "special"}}, "post_filter": {"term": {"tag": "t3"}}})
    assert sorted(hit_ids(pf)) == ["3"] or sorted(hit_ids(pf)) == sorted(
        str(i) for i in range(1, 21) if i % 3 == 0 and i % 5 and i % 4 == 3
    )
    plain = search(client, {"query": {"match": {"title": "special"}}})
    assert pf["hits"]["hits"][0]["_score"] == next(
        h["_score"] for h in plain["hits"]["hits"] if h["_id"] == pf["hits"]["hits"][0]["_id"]
    )
    ver = search(client, {"query": {"ids": {"values": ["1"]}}, "version": True, "seq_no_primary_term": True})
    hit = ver["hits"]["hits"][0]
    assert hit["_version"] == 1 and hit["_seq_no"] >= 0 and hit["_primary_term"] == 1
    assert "_version" not in search(client, {"query": {"ids": {"values": ["1"]}}})["hits"]["hits"][0]


def test_url_search_count_and_targets(client: OpenSearch, two_indices: None) -> None:
    assert sorted(hit_ids(search(client, {}, q="tag:t1", size=30))) == ["1", "13", "17", "9"]
    assert client.count(index=A, body={"query": {"term": {"tag": "t1"}}})["count"] == 4
    assert client.count(index=A)["count"] == 20
    assert client.count(index=A, q="title:special")["count"] == 6
    assert search(client, {"size": 0}, index=f"{A},{B}")["hits"]["total"]["value"] == 25
    assert search(client, {"size": 0}, index="srch-*")["hits"]["total"]["value"] == 25
    assert search(client, {"size": 0}, index="srch-alias")["hits"]["total"]["value"] == 20
    assert (
        search(client, {"size": 0, "query": {"terms": {"_id": ["1", "21"]}}}, index="_all")["hits"]["total"]["value"]
        == 2
    )
    both = search(client, {"sort": [{"n": "desc"}], "size": 2}, index=f"{A},{B}")
    assert [(h["_index"], h["_id"]) for h in both["hits"]["hits"]] == [(B, "25"), (B, "24")]
    with pytest.raises(NotFoundError) as info:
        search(client, {}, index=f"{A},srch-missing")
    assert info.value.error == "index_not_found_exception"
    ok = search(client, {"size": 0}, index=f"{A},srch-missing", ignore_unavailable="true")
    assert ok["hits"]["total"]["value"] == 20


def test_max_result_window(client: OpenSearch, two_indices: None) -> None:
    with pytest.raises(RequestError) as info:
        search(client, {"from": 9995, "size": 10})
    assert info.value.status_code == 400
    assert (
        "Result window is too large" in info.value.info["error"]["root_cause"][0]["reason"]
        or "Result window is too large" in info.value.info["error"]["reason"]
    )
    client.indices.put_settings(index=B, body={"index": {"max_result_window": 3}})
    with pytest.raises(RequestError):
        search(client, {"size": 4}, index=B)
    assert len(search(client, {"size": 3}, index=B)["hits"]["hits"]) == 3


def test_msearch(client: OpenSearch, two_indices: None) -> None:
    body = [
        {"index": A},
        {"query": {"term": {"tag": "t1"}}, "size": 0},
        {"index": B},
        {"query": {"match_all": {}}, "size": 1},
        {"index": "srch-missing"},
        {"query": {"match_all": {}}},
        {},
        {"query": {"foo": {}}},
        {"index": [A, B]},
        {"size": 0},
    ]
    responses = client.msearch(body=body, index=A)["responses"]
    assert [r["status"] for r in responses] == [200, 200, 404, 400, 200]
    assert responses[0]["hits"]["total"]["value"] == 4
    assert len(responses[1]["hits"]["hits"]) == 1 and responses[1]["hits"]["hits"][0]["_index"] == B
    assert responses[2]["error"]["type"] == "index_not_found_exception"
    assert responses[3]["error"]["type"] == "parsing_exception"
    assert responses[4]["hits"]["total"]["value"] == 25
