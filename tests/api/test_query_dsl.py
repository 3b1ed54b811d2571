"""The query DSL end to end through opensearch-py: which documents match, and scores where they are defined."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import RequestError

INDEX = "dsl-corpus"
MAPPINGS = {
    "properties": {
        "title": {"type": "text"},
        "body": {"type": "text"},
        "tag": {"type": "keyword"},
        "count": {"type": "integer"},
        "price": {"type": "float"},
        "active": {"type": "boolean"},
        "born": {"type": "date"},
        "meta": {"properties": {"color": {"type": "keyword"}, "size": {"type": "integer"}}},
    }
}
DOCS: dict[str, dict[str, Any]] = {
    "1": {
        "title": "quick brown fox",
        "body": "the fox jumps over the lazy dog",
        "tag": "animal",
        "count": 1,
        "price": 1.5,
        "active": True,
        "born": "2020-01-01",
        "meta": {"color": "red", "size": 3},
    },
    "2": {
        "title": "lazy brown dog",
        "body": "a dog sleeps all day long",
        "tag": "animal",
        "count": 2,
        "price": 2.0,
        "active": False,
        "born": "2021-06-15T10:00:00Z",
    },
    "3": {
        "title": "quick search engine",
        "body": "search engines index documents quickly",
        "tag": "tech",
        "count": 3,
        "price": 2.5,
        "active": True,
        "born": "2022-03-01",
        "meta": {"color": "blue"},
    },
    "4": {
        "title": "brown sugar recipes",
        "body": "quick recipes with brown sugar",
        "tag": "Food",
        "count": 10,
        "price": 10.25,
        "born": "2019-12-31",
    },
    "5": {"body": "nothing but a body about foxes and dogs", "count": -5},
}


@pytest.fixture(scope="module")
def corpus(client: OpenSearch) -> Iterator[str]:
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    client.indices.create(index=INDEX, body={"mappings": MAPPINGS})
    for doc_id, doc in DOCS.items():
        client.index(index=INDEX, id=doc_id, body=doc)
    client.indices.refresh(index=INDEX)
    yield INDEX
    client.indices.delete(index=INDEX, ignore_unavailable=True)


def ids(client: OpenSearch, query: dict[str, Any], **extra: Any) -> list[str]:
    """Matching ids in ranking order (ties by id, to compare sets reliably use sorted())."""
    hits = client.search(index=INDEX, body={"query": query, "size": 50, **extra})["hits"]["hits"]
    return [h["_id"] for h in hits]


def scores(client: OpenSearch, query: dict[str, Any]) -> dict[str, float]:
    hits = client.search(index=INDEX, body={"query": query, "size": 50})["hits"]["hits"]
    return {h["_id"]: h["_score"] for h in hits}


def test_match_operator_msm_fuzziness_analyzer(client: OpenSearch, corpus: str) -> None:
    assert sorted(ids(client, {"match": {"title": "quick brown"}})) == ["1", "2", "3", "4"]
    assert ids(client, {"match": {"title": {"query": "quick brown", "operator": "and"}}}) == ["1"]
    assert ids(client, {"match": {"title": {"query": "quick brown fox", "minimum_should_match": 2}}}) == ["1"]
    assert ids(client, {"match": {"title": {"query": "quick brown fox", "minimum_should_match": "67%"}}}) == ["1"]
    assert ids(client, {"match": {"title": {"query": "quikc", "fuzziness": 0}}}) == []
    assert sorted(ids(client, {"match": {"title": {"query": "quikc", "fuzziness": "AUTO"}}})) == ["1", "3"]
    assert sorted(ids(client, {"match": {"title": {"query": "quack", "fuzziness": "AUTO"}}})) == ["1", "3"]
    # the keyword analyzer keeps "quick brown" as one token, which no title holds
    assert ids(client, {"match": {"title": {"query": "quick brown", "analyzer": "keyword"}}}) == []
    assert ids(client, {"match": {"tag": "Food"}}) == ["4"]
    assert ids(client, {"match": {"tag": "food"}}) == []
    assert ids(client, {"match": {"count": "10"}}) == ["4"]
    assert ids(client, {"match": {"missing_field": "x"}}) == []


def test_match_phrase_slop_and_prefix(client: OpenSearch, corpus: str) -> None:
    assert ids(client, {"match_phrase": {"title": "brown fox"}}) == ["1"]
    assert ids(client, {"match_phrase": {"title": "quick fox"}}) == []
    assert ids(client, {"match_phrase": {"title": {"query": "quick fox", "slop": 1}}}) == ["1"]
    assert ids(client, {"match_phrase_prefix": {"title": "quick bro"}}) == ["1"]
    assert sorted(ids(client, {"match_phrase_prefix": {"title": "qui"}})) == ["1", "3"]


def test_multi_match_types(client: OpenSearch, corpus: str) -> None:
    assert sorted(ids(client, {"multi_match": {"query": "dog", "fields": ["title", "body"]}})) == ["1", "2"]
    best = scores(client, {"multi_match": {"query": "dog", "fields": ["title", "body"]}})
    title = scores(client, {"match": {"title": "dog"}})
    body = scores(client, {"match": {"body": "dog"}})
    assert best["2"] == pytest.approx(max(title["2"], body["2"]), rel=1e-5)
    tie = scores(client, {"multi_match": {"query": "dog", "fields": ["title", "body"], "tie_breaker": 0.3}})
    assert tie["2"] == pytest.approx(max(title["2"], body["2"]) + 0.3 * min(title["2"], body["2"]), rel=1e-5)
    most = scores(client, {"multi_match": {"query": "dog", "fields": ["title", "body"], "type": "most_fields"}})
    assert most["2"] == pytest.approx(title["2"] + body["2"], rel=1e-5)
    boosted = scores(client, {"multi_match": {"query": "dog", "fields": ["title^3", "body"]}})
    assert boosted["2"] == pytest.approx(max(3 * title["2"], body["2"]), rel=1e-5)
    assert ids(client, {"multi_match": {"query": "lazy dog", "fields": ["title", "body"], "type": "phrase"}}) == ["1"]
    assert sorted(ids(client, {"multi_match": {"query": "sugar", "fields": ["ti*", "bo*"]}})) == ["4"]
    assert sorted(ids(client, {"multi_match": {"query": "red", "fields": ["meta.*"]}})) == ["1"]


def test_term_and_terms(client: OpenSearch, corpus: str) -> None:
    assert sorted(ids(client, {"term": {"tag": "animal"}})) == ["1", "2"]
    assert ids(client, {"term": {"tag": {"value": "food", "case_insensitive": True}}}) == ["4"]
    assert ids(client, {"term": {"count": 10}}) == ["4"]
    assert ids(client, {"term": {"count": "10"}}) == ["4"]
    assert ids(client, {"term": {"price": 2.5}}) == ["3"]
    assert sorted(ids(client, {"term": {"active": True}})) == ["1", "3"]
    assert ids(client, {"term": {"active": "false"}}) == ["2"]
    assert ids(client, {"term": {"born": "2020-01-01"}}) == ["1"]
    assert ids(client, {"term": {"_id": "3"}}) == ["3"]
    assert ids(client, {"term": {"title": "fox"}}) == ["1"]
    assert sorted(ids(client, {"terms": {"tag": ["tech", "Food"]}})) == ["3", "4"]
    assert sorted(ids(client, {"terms": {"count": [1, 3, 99]}})) == ["1", "3"]
    assert sorted(ids(client, {"terms": {"_id": ["1", "5"]}})) == ["1", "5"]
    assert scores(client, {"term": {"count": {"value": 10, "boost": 2.5}}}) == {"4": 2.5}
    with pytest.raises(RequestError) as info:
        client.search(index=INDEX, body={"query": {"term": {"count": "ten"}}})
    assert info.value.status_code == 400


def test_range(client: OpenSearch, corpus: str) -> None:
    assert sorted(ids(client, {"range": {"count": {"gte": 2, "lte": 10}}})) == ["2", "3", "4"]
    assert sorted(ids(client, {"range": {"count": {"gt": 2, "lt": 10}}})) == ["3"]
    assert sorted(ids(client, {"range": {"count": {"gt": 1.5, "lt": 3.5}}})) == ["2", "3"]
    assert sorted(ids(client, {"range": {"count": {"lt": 0}}})) == ["5"]
    assert sorted(ids(client, {"range": {"price": {"gt": 1.5, "lte": 2.5}}})) == ["2", "3"]
    assert sorted(ids(client, {"range": {"price": {"gte": 1.5, "lt": 2.0}}})) == ["1"]
    assert sorted(ids(client, {"range": {"born": {"gte": "2020-01-01", "lt": "2022-01-01"}}})) == ["1", "2"]
    assert sorted(ids(client, {"range": {"born": {"gte": "01/06/2021", "format": "dd/MM/yyyy"}}})) == ["2", "3"]
    assert sorted(ids(client, {"range": {"born": {"lte": "now-1d/d"}}})) == ["1", "2", "3", "4"]
    assert ids(client, {"range": {"born": {"gte": "now-1d/d"}}}) == []
    assert sorted(ids(client, {"range": {"born": {"gt": "2019-12-31", "lte": "2020-01-01"}}})) == ["1"]
    assert scores(client, {"range": {"count": {"gte": 10, "boost": 3}}}) == {"4": 3.0}


def test_exists_ids_and_patterns(client: OpenSearch, corpus: str) -> None:
    assert sorted(ids(client, {"exists": {"field": "title"}})) == ["1", "2", "3", "4"]
    assert sorted(ids(client, {"exists": {"field": "tag"}})) == ["1", "2", "3", "4"]
    assert sorted(ids(client, {"exists": {"field": "active"}})) == ["1", "2", "3"]
    assert sorted(ids(client, {"exists": {"field": "meta"}})) == ["1", "3"]
    assert sorted(ids(client, {"exists": {"field": "meta.size"}})) == ["1"]
    assert ids(client, {"exists": {"field": "nope"}}) == []
    assert sorted(ids(client, {"ids": {"values": ["2", "4", "99"]}})) == ["2", "4"]
    assert sorted(ids(client, {"prefix": {"tag": "ani"}})) == ["1", "2"]
    assert sorted(ids(client, {"prefix": {"title": "qui"}})) == ["1", "3"]
    assert sorted(ids(client, {"wildcard": {"tag": "t?c*"}})) == ["3"]
    assert sorted(ids(client, {"wildcard": {"tag": {"value": "FO*", "case_insensitive": True}}})) == ["4"]
    assert sorted(ids(client, {"regexp": {"tag": "an.*l"}})) == ["1", "2"]
    assert sorted(ids(client, {"fuzzy": {"title": "foz"}})) == ["1"]
    assert sorted(ids(client, {"fuzzy": {"tag": {"value": "animl", "fuzziness": 1}}})) == ["1", "2"]


def test_bool_scoring(client: OpenSearch, corpus: str) -> None:
    fox = scores(client, {"match": {"title": "fox"}})
    q = {"bool": {"must": [{"match": {"title": "fox"}}], "filter": [{"term": {"tag": "animal"}}]}}
    assert scores(client, q) == pytest.approx(fox)
    assert scores(client, {"bool": {"filter": [{"term": {"tag": "animal"}}]}}) == {"1": 0.0, "2": 0.0}
    assert scores(client, {"bool": {"must_not": [{"term": {"tag": "animal"}}]}}) == {"3": 0.0, "4": 0.0, "5": 0.0}
    should = {
        "bool": {
            "should": [{"term": {"tag": "animal"}}, {"term": {"tag": "tech"}}, {"term": {"count": 1}}],
            "minimum_should_match": 2,
        }
    }
    assert ids(client, should) == ["1"]
    assert sorted(ids(client, {"bool": {"should": [{"term": {"tag": "tech"}}, {"term": {"count": 10}}]}})) == ["3", "4"]
    # with a must clause, should clauses are optional and only add to the score
    q = {"bool": {"must": [{"term": {"tag": "animal"}}], "should": [{"match": {"title": "fox"}}]}}
    got = scores(client, q)
    assert sorted(got) == ["1", "2"] and got["1"] > got["2"]
    q = {
        "bool": {
            "must": [{"exists": {"field": "tag"}}],
            "must_not": [{"term": {"tag": "animal"}}],
            "filter": {"range": {"count": {"gte": 3}}},
        }
    }
    assert sorted(ids(client, q)) == ["3", "4"]
    nested = {"bool": {"should": [{"bool": {"must": [{"term": {"tag": "tech"}}]}}, {"ids": {"values": ["5"]}}]}}
    assert sorted(ids(client, nested)) == ["3", "5"]


def test_constant_score_dis_max_and_boosts(client: OpenSearch, corpus: str) -> None:
    assert scores(client, {"constant_score": {"filter": {"term": {"tag": "animal"}}, "boost": 1.7}}) == {
        "1": pytest.approx(1.7),
        "2": pytest.approx(1.7),
    }
    assert scores(client, {"constant_score": {"filter": {"match": {"title": "fox"}}}}) == {"1": 1.0}
    dm = scores(
        client,
        {
            "dis_max": {
                "queries": [
                    {"constant_score": {"filter": {"term": {"tag": "animal"}}, "boost": 2}},
                    {"constant_score": {"filter": {"term": {"count": 1}}, "boost": 5}},
                ],
                "tie_breaker": 0.5,
            }
        },
    )
    assert dm == {"1": pytest.approx(6.0), "2": pytest.approx(2.0)}
    fox = scores(client, {"match": {"title": "fox"}})["1"]
    assert scores(client, {"match": {"title": {"query": "fox", "boost": 4}}})["1"] == pytest.approx(4 * fox, rel=1e-6)
    assert scores(client, {"match_all": {"boost": 2}})["3"] == 2.0


def test_function_score(client: OpenSearch, corpus: str) -> None:
    base = {"constant_score": {"filter": {"exists": {"field": "count"}}, "boost": 2}}
    got = scores(client, {"function_score": {"query": base, "weight": 3}})
    assert got["1"] == pytest.approx(6.0)
    fvf = {"function_score": {"query": base, "field_value_factor": {"field": "price", "factor": 2, "missing": 1}}}
    got = scores(client, fvf)
    assert got == pytest.approx({"1": 6.0, "2": 8.0, "3": 10.0, "4": 41.0, "5": 4.0})
    assert ids(client, fvf) == ["4", "3", "2", "1", "5"]
    positive = {"range": {"count": {"gte": 0}}}
    log1p = {
        "function_score": {
            "query": positive,
            "boost_mode": "replace",
            "field_value_factor": {"field": "count", "modifier": "log1p", "missing": 0},
        }
    }
    got = scores(client, log1p)
    assert got["4"] == pytest.approx(math.log10(11), rel=1e-5)
    assert got["1"] == pytest.approx(math.log10(2), rel=1e-5)
    negative = {
        "function_score": {
            "query": {"ids": {"values": ["5"]}},
            "field_value_factor": {"field": "count", "modifier": "log1p"},
        }
    }
    with pytest.raises(RequestError):  # log10(-4) is not a score, as in OpenSearch
        client.search(index=INDEX, body={"query": negative})
    pos_base = {"constant_score": {"filter": positive, "boost": 2}}
    multi = {
        "function_score": {
            "query": pos_base,
            "functions": [
                {"filter": {"term": {"tag": "animal"}}, "weight": 10},
                {"field_value_factor": {"field": "count", "missing": 1}},
            ],
            "score_mode": "sum",
            "boost_mode": "sum",
            "max_boost": 11,
        }
    }
    got = scores(client, multi)
    # doc 1: functions 10 + 1 = 11 (<= max_boost) -> 2 + 11; doc 2: 10 + 2 = 12 capped at 11 -> 13
    assert got["1"] == pytest.approx(13.0) and got["2"] == pytest.approx(13.0)
    assert got["3"] == pytest.approx(5.0) and got["4"] == pytest.approx(12.0)
    min_score = {
        "function_score": {
            "query": pos_base,
            "field_value_factor": {"field": "count", "missing": 0},
            "boost_mode": "replace",
            "min_score": 3,
        }
    }
    assert sorted(scores(client, min_score)) == ["3", "4"]
    first = {
        "function_score": {
            "query": base,
            "functions": [{"filter": {"term": {"tag": "tech"}}, "weight": 7}, {"weight": 2}],
            "score_mode": "first",
        }
    }
    got = scores(client, first)
    assert got["3"] == pytest.approx(14.0) and got["1"] == pytest.approx(4.0)


def test_query_string_forms(client: OpenSearch, corpus: str) -> None:
    def qs(text: str, **opts: Any) -> list[str]:
        return sorted(ids(client, {"query_string": {"query": text, **opts}}))

    assert qs("tag:animal") == ["1", "2"]
    assert qs("title:quick AND title:brown") == ["1"]
    assert qs("title:fox OR tag:tech") == ["1", "3"]
    assert qs("tag:animal AND NOT title:fox") == ["2"]
    assert qs("+tag:animal -title:fox") == ["2"]
    assert qs('title:"brown fox"') == ["1"]
    assert qs("quick brown", default_field="title", default_operator="AND") == ["1"]
    assert qs("sugar", fields=["title", "body"]) == ["4"]
    assert qs("count:10") == ["4"]
    assert sorted(
        ids(client, {"simple_query_string": {"query": "+brown -fox", "fields": ["title"], "default_operator": "and"}})
    ) == ["2", "4"]
    assert sorted(ids(client, {"simple_query_string": {"query": '"lazy dog"', "fields": ["body", "title"]}})) == ["1"]


def test_unknown_query_and_bad_clauses(client: OpenSearch, corpus: str) -> None:
    for body, reason in [
        ({"foo": {}}, "unknown query [foo]"),
        ({"match": {"a": "x", "b": "y"}}, "[match] query doesn't support multiple fields"),
        ({"bool": {"must": [{"nope": {}}]}}, "unknown query [nope]"),
        ({"constant_score": {}}, "[constant_score] requires a 'filter' element"),
    ]:
        with pytest.raises(RequestError) as info:
            client.search(index=INDEX, body={"query": body})
        assert info.value.error == "parsing_exception"
        assert reason in info.value.info["error"]["reason"]
