"""Search pipeline API (PUT / GET / DELETE) and request / response processors applied to searches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch

from mlsearch.pipelines.search import SearchContext, build_pipeline
from tests.conftest import RawHttp, assert_error

NORMALIZE = {
    "normalization-processor": {
        "normalization": {"technique": "min_max"},
        "combination": {"technique": "arithmetic_mean"},
    }
}


@pytest.fixture
def pipelines(http: RawHttp) -> Iterator[list[str]]:
    created: list[str] = []
    yield created
    for name in created:
        http.request("DELETE", f"/_search/pipeline/{name}")


def _put(http: RawHttp, created: list[str], name: str, body: dict[str, Any]) -> tuple[int, Any]:
    created.append(name)
    return http.request("PUT", f"/_search/pipeline/{name}", body)


@pytest.fixture
def shop(client: OpenSearch, index_name: str) -> str:
    docs = [
        ("1", "red shirt", "red", 3.5),
        ("2", "red hat", "red", 4.9),
        ("3", "blue shirt", "blue", 1.0),
        ("4", "green shirt", "green", 2.2),
    ]
    for doc_id, title, color, stars in docs:
        client.index(index=index_name, id=doc_id, body={"title": title, "color": color, "stars": stars})
    client.indices.refresh(index=index_name)
    return index_name


def test_crud_and_wildcards(http: RawHttp, pipelines: list[str]) -> None:
    body = {"description": "hybrid", "phase_results_processors": [NORMALIZE]}
    assert _put(http, pipelines, "sp-one", body) == (200, {"acknowledged": True})
    assert (
        _put(http, pipelines, "sp-two", {"request_processors": [{"filter_query": {"query": {"match_all": {}}}}]})[0]
        == 200
    )
    assert http.request("GET", "/_search/pipeline/sp-one") == (200, {"sp-one": body})
    status, found = http.request("GET", "/_search/pipeline/sp-*")
    assert status == 200 and set(found) == {"sp-one", "sp-two"}
    status, everything = http.request("GET", "/_search/pipeline")
    assert status == 200 and {"sp-one", "sp-two"} <= set(everything)
    assert http.request("DELETE", "/_search/pipeline/sp-one") == (200, {"acknowledged": True})
    assert http.request("GET", "/_search/pipeline/sp-one") == (404, {})
    status, err = http.request("DELETE", "/_search/pipeline/sp-one")
    assert_error(err, 404, "resource_not_found_exception", "pipeline [sp-one] is missing")


def test_invalid_definitions_are_rejected_at_put(http: RawHttp, pipelines: list[str]) -> None:
    _, err = _put(http, pipelines, "sp-bad", {"request_processors": [{"nope": {}}]})
    assert_error(err, 400, "illegal_argument_exception", "Invalid processor type nope")
    _, err = _put(
        http,
        pipelines,
        "sp-bad",
        {
            "phase_results_processors": [
                {
                    "normalization-processor": {
                        "combination": {"technique": "arithmetic_mean", "parameters": {"weights": [0.3, 0.5]}}
                    }
                }
            ]
        },
    )
    assert_error(
        err,
        400,
        "illegal_argument_exception",
        "sum of weights for combination must be equal to 1.0, submitted weights: [0.3, 0.5]",
    )
    _, err = _put(
        http,
        pipelines,
        "sp-bad",
        {"phase_results_processors": [{"normalization-processor": {"normalization": {"technique": "max"}}}]},
    )
    assert_error(err, 400, "illegal_argument_exception", "provided normalization technique is not supported [max]")
    _, err = _put(
        http,
        pipelines,
        "sp-bad",
        {
            "phase_results_processors": [
                {"score-ranker-processor": {"combination": {"technique": "rrf", "rank_constant": 0}}}
            ]
        },
    )
    assert_error(err, 400, "illegal_argument_exception", "rank constant must be in the interval between 1 and 10000")
    _, err = _put(http, pipelines, "sp-bad", {"response_processors": [{"rename_field": {"field": "a"}}]})
    assert_error(err, 400, "parse_exception", "[target_field] required property is missing")
    assert http.request("GET", "/_search/pipeline/sp-bad") == (404, {})


def test_pipelines_are_persisted_in_the_data_dir(http: RawHttp, pipelines: list[str], server: Any) -> None:
    assert _put(http, pipelines, "sp-durable", {"phase_results_processors": [NORMALIZE]})[0] == 200
    assert b"sp-durable" in (server.data_dir / "search_pipelines.json").read_bytes()


def test_filter_query_and_rename_field(client: OpenSearch, shop: str, http: RawHttp, pipelines: list[str]) -> None:
    _put(
        http,
        pipelines,
        "sp-filter",
        {
            "request_processors": [{"filter_query": {"query": {"term": {"color": "red"}}}}],
            "response_processors": [{"rename_field": {"field": "title", "target_field": "name"}}],
        },
    )
    hits = client.search(
        index=shop, body={"query": {"match": {"title": "shirt"}}}, params={"search_pipeline": "sp-filter"}
    )["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["1"]
    assert hits[0]["_source"] == {"name": "red shirt", "color": "red", "stars": 3.5}


def test_oversample_then_truncate_and_collapse(
    client: OpenSearch, shop: str, http: RawHttp, pipelines: list[str]
) -> None:
    _put(
        http,
        pipelines,
        "sp-over",
        {
            "request_processors": [{"oversample": {"sample_factor": 2}}],
            "response_processors": [{"collapse": {"field": "color"}}, {"truncate_hits": {}}],
        },
    )
    body = {"query": {"match_all": {}}, "size": 2, "sort": [{"stars": "desc"}]}
    hits = client.search(index=shop, body=body, params={"search_pipeline": "sp-over"})["hits"]["hits"]
    # 4 hits fetched (2 x 2), collapsed by color (red 4.9, green 2.2, blue 1.0), truncated back to 2
    assert [h["_id"] for h in hits] == ["2", "4"]


def test_rerank_by_field(client: OpenSearch, shop: str, http: RawHttp, pipelines: list[str]) -> None:
    _put(
        http,
        pipelines,
        "sp-rerank",
        {
            "response_processors": [
                {
                    "rerank": {
                        "by_field": {"target_field": "stars", "remove_target_field": True, "keep_previous_score": True}
                    }
                }
            ]
        },
    )
    result = client.search(
        index=shop, body={"query": {"match": {"title": "shirt"}}}, params={"search_pipeline": "sp-rerank"}
    )["hits"]
    assert [h["_id"] for h in result["hits"]] == ["1", "4", "3"]
    assert [h["_score"] for h in result["hits"]] == [3.5, 2.2, 1.0]
    assert result["max_score"] == 3.5
    assert all("stars" not in h["_source"] and h["_source"]["previous_score"] > 0 for h in result["hits"])


def test_ignore_failure_skips_a_failing_processor(
    client: OpenSearch, shop: str, http: RawHttp, pipelines: list[str]
) -> None:
    _put(
        http,
        pipelines,
        "sp-fail",
        {"response_processors": [{"rename_field": {"field": "missing", "target_field": "x", "ignore_failure": True}}]},
    )
    hits = client.search(index=shop, body={"query": {"match_all": {}}}, params={"search_pipeline": "sp-fail"})
    assert hits["hits"]["total"]["value"] == 4
    _put(
        http,
        pipelines,
        "sp-fail2",
        {"response_processors": [{"rename_field": {"field": "missing", "target_field": "x"}}]},
    )
    _, err = http.request("POST", f"/{shop}/_search?search_pipeline=sp-fail2", {"query": {"match_all": {}}})
    assert_error(err, 400, "illegal_argument_exception", "is missing field missing")


def test_neural_query_enricher_fills_missing_model_ids() -> None:
    pipeline = build_pipeline(
        "p",
        {
            "request_processors": [
                {
                    "neural_query_enricher": {
                        "default_model_id": "m-default",
                        "neural_field_default_id": {"special": "m-special"},
                    }
                }
            ]
        },
    )
    body = {
        "query": {
            "hybrid": {
                "queries": [
                    {"neural": {"emb": {"query_text": "x", "k": 3}}},
                    {"neural": {"special": {"query_text": "x", "k": 3}}},
                    {"neural_sparse": {"sparse": {"query_text": "x", "model_id": "mine"}}},
                ]
            }
        }
    }
    out = pipeline.transform_request(body, SearchContext(request=body))
    queries = out["query"]["hybrid"]["queries"]
    assert queries[0]["neural"]["emb"]["model_id"] == "m-default"
    assert queries[1]["neural"]["special"]["model_id"] == "m-special"
    assert queries[2]["neural_sparse"]["sparse"]["model_id"] == "mine"
    assert "model_id" not in body["query"]["hybrid"]["queries"][0]["neural"]["emb"]  # the input is not mutated


def test_rerank_ml_opensearch_scores_concatenated_fields_against_the_query_text() -> None:
    """The cross-encoder path with a stand-in scorer (the server test needs a deployed TEXT_SIMILARITY model)."""
    pipeline = build_pipeline(
        "p",
        {
            "response_processors": [
                {"rerank": {"ml_opensearch": {"model_id": "ce"}, "context": {"document_fields": ["title", "tags"]}}}
            ]
        },
    )
    seen: list[tuple[str, str, list[str]]] = []

    def similarity(model_id: str, query_text: str, texts: Any) -> list[float]:
        seen.append((model_id, query_text, list(texts)))
        return [float(len(t)) for t in texts]

    request = {
        "query": {"match": {"title": {"query": "red"}}},
        "ext": {"rerank": {"query_context": {"query_text_path": "query.match.title.query"}}},
    }
    response = {
        "hits": {
            "max_score": 1.0,
            "hits": [
                {"_id": "a", "_score": 1.0, "_source": {"title": "ab"}},
                {"_id": "b", "_score": 0.5, "_source": {"title": "abc", "tags": ["x", "y"]}},
            ],
        }
    }
    out = pipeline.transform_response(response, SearchContext(request=request, similarity=similarity))
    assert seen == [("ce", "red", ["ab", "abcx y"])]
    assert [h["_id"] for h in out["hits"]["hits"]] == ["b", "a"] and out["hits"]["max_score"] == 6.0
