"""`neural_sparse_two_phase_processor`: parameter validation as neural-search words it, and scores: the documents the
second phase rescores score exactly as with every token (one phase), the others keep their high-token score."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch

from tests.conftest import RawHttp, assert_error

PIPELINE = "two-phase-test"
QUERY = {"alpha": 5.0, "beta": 1.5, "gamma": 0.5}  # max_ratio 0.4: alpha is high (>= 2.0), beta and gamma low
HIGH = {"alpha": 5.0}


@pytest.fixture
def docs(client: OpenSearch, index_name: str) -> dict[str, dict[str, float]]:
    """60 documents with random weights for the query's tokens; every one has `alpha`, most have a low token."""
    rng = random.Random(11)
    features = {}
    for i in range(60):
        weights = {"alpha": round(rng.uniform(0.1, 3.0), 3)}
        for token in ("beta", "gamma"):
            if rng.random() < 0.8:
                weights[token] = round(rng.uniform(0.1, 4.0), 3)
        features[str(i)] = weights
    client.indices.create(index=index_name, body={"mappings": {"properties": {"sp": {"type": "rank_features"}}}})
    for doc_id, weights in features.items():
        client.index(index=index_name, id=doc_id, body={"sp": weights})
    client.indices.refresh(index=index_name)
    return features


@pytest.fixture
def pipeline(http: RawHttp) -> Iterator[str]:
    yield PIPELINE
    http.request("DELETE", f"/_search/pipeline/{PIPELINE}")


def _put(http: RawHttp, config: dict[str, Any], name: str = PIPELINE) -> tuple[int, Any]:
    return http.request("PUT", f"/_search/pipeline/{name}", {"request_processors": [{TYPE: config}]})


TYPE = "neural_sparse_two_phase_processor"


def _search(client: OpenSearch, index: str, query: dict[str, Any], **params: Any) -> list[tuple[str, float]]:
    resp = client.search(index=index, body={"query": query}, params=params)
    return [(h["_id"], h["_score"]) for h in resp["hits"]["hits"]]


def _sparse(tokens: dict[str, float]) -> dict[str, Any]:
    return {"neural_sparse": {"sp": {"query_tokens": tokens}}}


def test_top_documents_score_as_one_phase(
    client: OpenSearch, http: RawHttp, index_name: str, docs: dict[str, Any], pipeline: str
) -> None:
    assert _put(http, {"two_phase_parameter": {"expansion_rate": 2.0}}) == (200, {"acknowledged": True})
    one_phase = dict(_search(client, index_name, _sparse(QUERY), size=60))
    two_phase = _search(client, index_name, _sparse(QUERY), size=5, search_pipeline=pipeline)
    assert len(two_phase) == 5
    for doc_id, score in two_phase:
        assert score == pytest.approx(one_phase[doc_id], rel=1e-6)
    # the 5 best of the 10 documents the high token ranks first, by their full scores
    high = dict(_search(client, index_name, _sparse(HIGH), size=60))
    window = sorted(high, key=lambda d: (-high[d], int(d)))[:10]
    best = sorted(window, key=lambda d: -one_phase[d])[:5]
    assert [d for d, _ in two_phase] == best


def test_documents_past_the_window_keep_their_first_phase_score(
    client: OpenSearch, http: RawHttp, index_name: str, docs: dict[str, Any], pipeline: str
) -> None:
    # window = size x expansion_rate = 5 (neural-search ignores `from`): hits 10-14 are past it
    assert _put(http, {"two_phase_parameter": {"expansion_rate": 1.0}})[0] == 200
    high = dict(_search(client, index_name, _sparse(HIGH), size=60))
    page = _search(client, index_name, _sparse(QUERY), size=5, from_=10, search_pipeline=pipeline)
    ranked_by_high = sorted(high, key=lambda d: (-high[d], int(d)))
    assert [d for d, _ in page] == ranked_by_high[10:15]
    for doc_id, score in page:
        assert score == pytest.approx(high[doc_id] * 1.0, rel=1e-6)


def test_bool_should_is_accelerated_must_is_not(
    client: OpenSearch, http: RawHttp, index_name: str, docs: dict[str, Any], pipeline: str
) -> None:
    assert _put(http, {"two_phase_parameter": {"expansion_rate": 1.0}})[0] == 200
    one_phase = dict(_search(client, index_name, _sparse(QUERY), size=60))
    high = dict(_search(client, index_name, _sparse(HIGH), size=60))
    should = {"bool": {"should": [_sparse(QUERY)]}}
    page = _search(client, index_name, should, size=5, from_=10, search_pipeline=pipeline)
    assert all(score == pytest.approx(high[d], rel=1e-6) for d, score in page)
    top = _search(client, index_name, should, size=5, search_pipeline=pipeline)
    assert all(score == pytest.approx(one_phase[d], rel=1e-6) for d, score in top)
    # neural-search leaves must / filter clauses alone: every score is the one-phase score
    must = {"bool": {"must": [_sparse(QUERY)]}}
    page = _search(client, index_name, must, size=5, from_=10, search_pipeline=pipeline)
    assert all(score == pytest.approx(one_phase[d], rel=1e-6) for d, score in page)


def test_disabled_or_zero_ratio_changes_nothing(
    client: OpenSearch, http: RawHttp, index_name: str, docs: dict[str, Any], pipeline: str
) -> None:
    one_phase = _search(client, index_name, _sparse(QUERY), size=5, from_=10)
    for config in ({"enabled": False}, {"two_phase_parameter": {"prune_ratio": 0.0}}):
        assert _put(http, config)[0] == 200
        assert _search(client, index_name, _sparse(QUERY), size=5, from_=10, search_pipeline=pipeline) == one_phase


def test_prune_types_split_the_tokens(
    client: OpenSearch, http: RawHttp, index_name: str, docs: dict[str, Any], pipeline: str
) -> None:
    # top_k 2 keeps alpha and beta for the first phase: past the window, documents score by those two only
    assert (
        _put(http, {"two_phase_parameter": {"prune_type": "top_k", "prune_ratio": 2, "expansion_rate": 1.0}})[0] == 200
    )
    first = dict(_search(client, index_name, _sparse({"alpha": 5.0, "beta": 1.5}), size=60))
    page = _search(client, index_name, _sparse(QUERY), size=5, from_=10, search_pipeline=pipeline)
    assert all(score == pytest.approx(first[d], rel=1e-6) for d, score in page)


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"two_phase_parameter": {"expansion_rate": 0.5}}, "The two_phase_parameter.expansion_rate must >= 1.0"),
        ({"two_phase_parameter": {"max_window_size": 10}}, "The two_phase_parameter.max_window_size must >= 50"),
        ({"two_phase_parameter": {"prune_ratio": 1.5}}, "Illegal prune_ratio 1.500000 for prune_type: max_ratio"),
        (
            {"two_phase_parameter": {"prune_type": "top_k", "prune_ratio": 2.5}},
            "prune_ratio should be positive integer.",
        ),
        ({"two_phase_parameter": {"prune_type": "biggest"}}, "Unknown prune type: biggest"),
        ({"unknown": 1}, "doesn't support one or more provided configuration parameters"),
    ],
)
def test_configuration_errors(http: RawHttp, config: dict[str, Any], reason: str) -> None:
    _, body = _put(http, config, "two-phase-bad")
    assert_error(body, 400, "illegal_argument_exception", reason)
    assert http.request("GET", "/_search/pipeline/two-phase-bad")[0] == 404


def test_enabled_must_be_a_boolean(http: RawHttp) -> None:
    _, body = _put(http, {"enabled": "yes"}, "two-phase-bad")
    assert_error(body, 400, "parse_exception", "[enabled] property isn't a boolean")


def test_window_larger_than_max_window_size_is_refused(
    client: OpenSearch, http: RawHttp, index_name: str, docs: dict[str, Any], pipeline: str
) -> None:
    assert _put(http, {"two_phase_parameter": {"max_window_size": 100}})[0] == 200
    _, body = http.request(
        "POST", f"/{index_name}/_search?search_pipeline={pipeline}", {"query": _sparse(QUERY), "size": 30}
    )
    assert_error(
        body,
        400,
        "illegal_argument_exception",
        "The two-phase window size of neural_sparse_two_phase_processor should be [0,100], but get the value of 150",
    )
