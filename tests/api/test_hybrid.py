"""The hybrid query over HTTP: sub-queries run separately, fused by the search pipeline's phase-results processor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch

from mlsearch.engine.fusion import Fusion, fuse
from tests.conftest import RawHttp, assert_error

INDEX = "hybrid-docs"
TEXTS = [
    "A West Virginia university women 's basketball team , officials , and a small gathering of fans are in a West "
    "Virginia arena .",
    "A wild animal races across an uncut field with a minimal amount of trees .",
    "People line the stands which advertise Freemont 's orthopedics , a cowboy rides a light brown bucking bronco .",
    "A man who is riding a wild horse in the rodeo is very near to falling off .",
    "A rodeo cowboy , wearing a cowboy hat , is being thrown off of a wild white horse .",
    "A cowboy eats beans by the fire .",
    "Horses graze in a wild meadow .",
]
VECTORS = [[0.1, 0.9], [0.8, 0.3], [0.5, 0.5], [0.9, 0.1], [0.7, 0.6], [0.2, 0.2], [1.0, 0.0]]
COLORS = ["red", "blue", "red", "blue", "green", "green", "red"]
MATCH = {"match": {"text": {"query": "cowboy rodeo wild"}}}
KNN = {"knn": {"vec": {"vector": [1.0, 0.2], "k": 5}}}
PIPELINES = {
    "hy-minmax": {
        "normalization-processor": {
            "normalization": {"technique": "min_max"},
            "combination": {"technique": "arithmetic_mean", "parameters": {"weights": [0.3, 0.7]}},
        }
    },
    "hy-l2": {
        "normalization-processor": {
            "normalization": {"technique": "l2"},
            "combination": {"technique": "arithmetic_mean"},
        }
    },
    "hy-z": {"normalization-processor": {"normalization": {"technique": "z_score"}}},
    "hy-geo": {
        "normalization-processor": {
            "normalization": {"technique": "min_max"},
            "combination": {"technique": "geometric_mean", "parameters": {"weights": [0.4, 0.6]}},
        }
    },
    "hy-harm": {
        "normalization-processor": {
            "normalization": {"technique": "min_max"},
            "combination": {"technique": "harmonic_mean"},
        }
    },
    "hy-rrf": {
        "score-ranker-processor": {
            "combination": {"technique": "rrf", "rank_constant": 20, "parameters": {"weights": [0.6, 0.4]}}
        }
    },
}
FUSIONS = {
    "hy-minmax": Fusion(weights=(0.3, 0.7)),
    "hy-l2": Fusion(normalization="l2"),
    "hy-z": Fusion(normalization="z_score"),
    "hy-geo": Fusion(combination="geometric_mean", weights=(0.4, 0.6)),
    "hy-harm": Fusion(combination="harmonic_mean"),
    "hy-rrf": Fusion(normalization="rrf", combination="rrf", rank_constant=20, weights=(0.6, 0.4)),
}


@pytest.fixture(scope="module")
def docs(client: OpenSearch, server: Any) -> Iterator[str]:
    http = RawHttp(server.url)
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    client.indices.create(
        index=INDEX,
        body={
            "settings": {"index.knn": True},
            "mappings": {
                "properties": {
                    "text": {"type": "text"},
                    "color": {"type": "keyword"},
                    "rank": {"type": "integer"},
                    "vec": {"type": "knn_vector", "dimension": 2, "space_type": "l2"},
                }
            },
        },
    )
    for i, (text, vec, color) in enumerate(zip(TEXTS, VECTORS, COLORS, strict=True), start=1):
        client.index(index=INDEX, id=str(i), body={"text": text, "vec": vec, "color": color, "rank": 10 - i})
    client.indices.refresh(index=INDEX)
    for name, processor in PIPELINES.items():
        status, _ = http.request("PUT", f"/_search/pipeline/{name}", {"phase_results_processors": [processor]})
        assert status == 200
    yield INDEX
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    for name in PIPELINES:
        http.request("DELETE", f"/_search/pipeline/{name}")


def _raw(client: OpenSearch, query: dict[str, Any]) -> dict[str, float]:
    hits = client.search(index=INDEX, body={"query": query, "size": 10, "_source": False})["hits"]["hits"]
    return {h["_id"]: h["_score"] for h in hits}


def _hybrid(queries: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"query": {"hybrid": {"queries": queries}}, "_source": False, **extra}


@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_hybrid_scores_are_the_fusion_of_separate_runs(client: OpenSearch, docs: str, pipeline: str) -> None:
    body = client.search(index=docs, body=_hybrid([MATCH, KNN], size=10), params={"search_pipeline": pipeline})
    expected = fuse(FUSIONS[pipeline], [_raw(client, MATCH), _raw(client, KNN)])
    got = [(h["_id"], h["_score"]) for h in body["hits"]["hits"]]
    assert [doc for doc, _ in got] == [f.doc for f in expected]
    assert [s for _, s in got] == pytest.approx([f.score for f in expected], rel=1e-5)
    assert body["hits"]["max_score"] == pytest.approx(expected[0].score, rel=1e-5)
    # distinct documents matched by any sub-query
    assert body["hits"]["total"] == {"value": len(expected), "relation": "eq"}


def test_min_max_by_hand_over_two_lexical_sub_queries(client: OpenSearch, docs: str) -> None:
    first, second = {"match": {"text": "cowboy"}}, {"match": {"text": "horse"}}
    a, b = _raw(client, first), _raw(client, second)
    body = client.search(index=docs, body=_hybrid([first, second]), params={"search_pipeline": "hy-minmax"})
    got = {h["_id"]: h["_score"] for h in body["hits"]["hits"]}

    def norm(scores: dict[str, float], doc: str) -> float:
        if doc not in scores:
            return 0.0
        low, high = min(scores.values()), max(scores.values())
        return max((scores[doc] - low) / (high - low), 0.001)

    for doc in set(a) | set(b):
        assert got[doc] == pytest.approx(0.3 * norm(a, doc) + 0.7 * norm(b, doc), rel=1e-5)


def test_pagination_is_a_consistent_slice_of_the_fused_order(client: OpenSearch, docs: str) -> None:
    params = {"search_pipeline": "hy-minmax"}
    full = client.search(index=docs, body=_hybrid([MATCH, KNN], size=10), params=params)["hits"]["hits"]
    pages = []
    for start in range(0, len(full), 2):
        body = _hybrid([MATCH, KNN], size=2, **{"from": start})
        body["query"]["hybrid"]["pagination_depth"] = 10
        pages += client.search(index=docs, body=body, params=params)["hits"]["hits"]
    assert [h["_id"] for h in pages] == [h["_id"] for h in full]
    assert [h["_score"] for h in pages] == pytest.approx([h["_score"] for h in full])


def test_filter_applies_to_every_sub_query(client: OpenSearch, docs: str) -> None:
    body = _hybrid([MATCH, KNN], size=10)
    body["query"]["hybrid"]["filter"] = {"term": {"color": "red"}}
    hits = client.search(index=docs, body=body, params={"search_pipeline": "hy-minmax"})["hits"]
    assert hits["hits"] and {h["_id"] for h in hits["hits"]} <= {"1", "3", "7"}
    assert hits["total"]["value"] == len(hits["hits"])


def test_sort_by_field_orders_the_fused_documents(client: OpenSearch, docs: str) -> None:
    body = _hybrid([MATCH, KNN], size=10, sort=[{"rank": "asc"}])
    hits = client.search(index=docs, body=body, params={"search_pipeline": "hy-minmax"})["hits"]["hits"]
    ranks = [h["sort"][0] for h in hits]
    assert ranks == sorted(ranks) and len(ranks) >= 5


def test_explain_lists_normalized_sub_query_scores(client: OpenSearch, docs: str) -> None:
    body = _hybrid([MATCH, KNN], size=3, explain=True)
    hits = client.search(index=docs, body=body, params={"search_pipeline": "hy-minmax"})["hits"]["hits"]
    top = hits[0]["_explanation"]
    assert top["value"] == pytest.approx(hits[0]["_score"])
    assert top["description"].startswith("arithmetic_mean")
    assert all(d["description"] == "min_max normalization of:" for d in top["details"])
    assert 1 <= len(top["details"]) <= 2


def test_source_and_inline_pipeline(client: OpenSearch, docs: str) -> None:
    body = {
        "query": {"hybrid": {"queries": [MATCH, KNN]}},
        "_source": ["color"],
        "search_pipeline": {"phase_results_processors": [PIPELINES["hy-minmax"]]},
    }
    hits = client.search(index=docs, body=body)["hits"]["hits"]
    expected = fuse(FUSIONS["hy-minmax"], [_raw(client, MATCH), _raw(client, KNN)])
    assert [h["_id"] for h in hits] == [f.doc for f in expected][:10]
    assert all(set(h["_source"]) == {"color"} for h in hits)


def test_default_pipeline_setting_and_none(client: OpenSearch, docs: str, http: RawHttp) -> None:
    _, body = http.request("POST", f"/{docs}/_search", _hybrid([MATCH, KNN]))
    assert_error(body, 400, "illegal_argument_exception", "search pipeline")
    client.indices.put_settings(index=docs, body={"index.search.default_pipeline": "hy-minmax"})
    try:
        with_default = client.search(index=docs, body=_hybrid([MATCH, KNN]))["hits"]["hits"]
        explicit = client.search(index=docs, body=_hybrid([MATCH, KNN]), params={"search_pipeline": "hy-minmax"})[
            "hits"
        ]["hits"]
        assert with_default == explicit
        _, body = http.request("POST", f"/{docs}/_search?search_pipeline=_none", _hybrid([MATCH, KNN]))
        assert_error(body, 400, "illegal_argument_exception", "search pipeline")
    finally:
        client.indices.put_settings(index=docs, body={"index.search.default_pipeline": "_none"})


def test_query_errors(docs: str, http: RawHttp) -> None:
    path = f"/{docs}/_search?search_pipeline=hy-minmax"
    _, body = http.request("POST", path, {"query": {"hybrid": {"queries": []}}})
    assert_error(body, 400, "parsing_exception", "[hybrid] requires 'queries' field with at least one clause")
    _, body = http.request("POST", path, {"query": {"hybrid": {"queries": [MATCH] * 6}}})
    assert_error(body, 400, "parsing_exception", "Number of sub-queries exceeds maximum supported by [hybrid] query")
    _, body = http.request("POST", path, {"query": {"hybrid": {"queries": [MATCH], "boost": 2}}})
    assert_error(body, 400, "parsing_exception", "[hybrid] query does not support [boost]")
    _, body = http.request("POST", path, {"query": {"bool": {"must": [{"hybrid": {"queries": [MATCH]}}]}}})
    assert_error(body, 400, "illegal_argument_exception", "hybrid query must be a top level query")
    _, body = http.request("POST", path, _hybrid([MATCH, KNN, MATCH]))
    assert_error(
        body,
        400,
        "illegal_argument_exception",
        "number of weights [2] must match number of sub-queries [3] in hybrid query",
    )
    _, body = http.request("POST", f"/{docs}/_search?search_pipeline=missing", _hybrid([MATCH]))
    assert_error(body, 400, "illegal_argument_exception", "Pipeline missing is not defined")


def test_count_and_aggs_see_the_union(client: OpenSearch, docs: str) -> None:
    body = _hybrid(
        [{"match": {"text": "cowboy"}}, {"match": {"text": "horse"}}],
        size=0,
        aggs={"colors": {"terms": {"field": "color"}}},
    )
    result = client.search(index=docs, body=body, params={"search_pipeline": "hy-minmax"})
    total = result["hits"]["total"]["value"]
    assert sum(b["doc_count"] for b in result["aggregations"]["colors"]["buckets"]) == total
    assert client.count(index=docs, body={"query": body["query"]})["count"] == total
