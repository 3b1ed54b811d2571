"""Hybrid search beyond plain fusion: `collapse`, `explain` (hybrid_score_explanation's shape), `sort` with `from` /
`size` against `pagination_depth` (neural-search's errors), and search pipelines in `_msearch`."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from opensearchpy import OpenSearch

from mlsearch.engine.fusion import fuse
from tests.api import test_hybrid
from tests.api.test_hybrid import FUSIONS, KNN, MATCH, PIPELINES, _hybrid, _raw
from tests.conftest import RawHttp, assert_error

hybrid_docs = test_hybrid.docs  # the module fixture of test_hybrid (its index and pipelines), under its own name


def _search(client: OpenSearch, index: str, body: dict[str, Any], pipeline: str = "hy-minmax") -> dict[str, Any]:
    return client.search(index=index, body=body, params={"search_pipeline": pipeline})["hits"]


# ---- collapse ----------------------------------------------------------------------------------------------------


def test_collapse_keeps_the_best_fused_hit_per_value(client: OpenSearch, hybrid_docs: str) -> None:
    full = _search(client, hybrid_docs, _hybrid([MATCH, KNN], size=10, _source=["color"]))["hits"]
    body = _hybrid([MATCH, KNN], size=10, _source=["color"], collapse={"field": "color"})
    collapsed = _search(client, hybrid_docs, body)
    firsts: dict[str, dict[str, Any]] = {}
    for hit in full:
        firsts.setdefault(hit["_source"]["color"], hit)
    assert [h["_id"] for h in collapsed["hits"]] == [h["_id"] for h in firsts.values()]
    assert [h["_score"] for h in collapsed["hits"]] == pytest.approx([h["_score"] for h in firsts.values()])
    assert [h["fields"] for h in collapsed["hits"]] == [{"color": [c]} for c in firsts]
    # totals count the matching documents, not the groups (as OpenSearch's collapse)
    assert collapsed["total"]["value"] == len(full)


def test_collapse_pages_over_groups(client: OpenSearch, hybrid_docs: str) -> None:
    body = _hybrid([MATCH, KNN], size=10, collapse={"field": "color"})
    every = [h["_id"] for h in _search(client, hybrid_docs, body)["hits"]]
    pages = []
    for start in range(len(every)):
        page = _hybrid([MATCH, KNN], size=1, collapse={"field": "color"}, **{"from": start})
        page["query"]["hybrid"]["pagination_depth"] = 10
        pages += [h["_id"] for h in _search(client, hybrid_docs, page)["hits"]]
    assert pages == every and len(every) == 3


def test_collapse_on_a_number_and_bad_fields(client: OpenSearch, hybrid_docs: str, http: RawHttp) -> None:
    hits = _search(client, hybrid_docs, _hybrid([MATCH, KNN], size=10, collapse={"field": "rank"}))["hits"]
    values = [h["fields"]["rank"][0] for h in hits]
    assert len(values) == len(set(values)) > 0
    for field, reason in (
        ("text", "unknown type for collapse field `text`, only keywords and numbers are accepted"),
        ("nope", "no mapping found for `nope` in order to collapse on"),
    ):
        body = _hybrid([MATCH, KNN], collapse={"field": field})
        _, error = http.request("POST", f"/{hybrid_docs}/_search?search_pipeline=hy-minmax", body)
        assert_error(error, 400, "illegal_argument_exception", reason)


# ---- explain -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pipeline", ["hy-minmax", "hy-rrf"])
def test_explain_gives_each_normalized_sub_query_score(
    client: OpenSearch, hybrid_docs: str, http: RawHttp, pipeline: str
) -> None:
    # the pipeline as neural-search documents it: the fusion plus the hybrid_score_explanation response processor
    definition = {
        "phase_results_processors": [PIPELINES[pipeline]],
        "response_processors": [{"hybrid_score_explanation": {}}],
    }
    assert http.request("PUT", "/_search/pipeline/hy-explain", definition)[0] == 200
    try:
        hits = _search(client, hybrid_docs, _hybrid([MATCH, KNN], size=10, explain=True), "hy-explain")["hits"]
    finally:
        http.request("DELETE", "/_search/pipeline/hy-explain")
    fused = {f.doc: f for f in fuse(FUSIONS[pipeline], [_raw(client, MATCH), _raw(client, KNN)])}
    raw = [_raw(client, MATCH), _raw(client, KNN)]
    normalization, combination = (
        ("min_max", "arithmetic_mean, weights [0.3, 0.7]")
        if pipeline == "hy-minmax"
        else ("rrf, rank_constant [20]", "rrf, weights [0.6, 0.4]")
    )
    for hit in hits:
        explanation = hit["_explanation"]
        assert explanation["value"] == pytest.approx(hit["_score"], rel=1e-6)
        assert explanation["description"] == f"{combination} combination of:"
        expected = [(i, s) for i, s in enumerate(fused[hit["_id"]].sub_scores) if s is not None]
        assert len(explanation["details"]) == len(expected)
        for detail, (position, score) in zip(explanation["details"], expected, strict=True):
            assert detail["description"] == f"{normalization} normalization of:"
            assert detail["value"] == pytest.approx(score, rel=1e-6)
            # under it, the sub-query's own explanation of its raw score
            assert detail["details"][0]["value"] == pytest.approx(raw[position][hit["_id"]], rel=1e-5)


def test_hybrid_score_explanation_takes_no_parameters(http: RawHttp) -> None:
    definition = {"response_processors": [{"hybrid_score_explanation": {"depth": 2}}]}
    _, error = http.request("PUT", "/_search/pipeline/hy-explain-bad", definition)
    assert_error(error, 400, "illegal_argument_exception", "doesn't support one or more provided configuration")


# ---- sort and pagination -------------------------------------------------------------------------------------------


def test_from_needs_pagination_depth(client: OpenSearch, hybrid_docs: str, http: RawHttp) -> None:
    _, error = http.request(
        "POST", f"/{hybrid_docs}/_search?search_pipeline=hy-minmax", _hybrid([MATCH, KNN], **{"from": 2})
    )
    assert_error(error, 400, "illegal_argument_exception", "pagination_depth is missing in the search request")
    # from 0 without a depth is the first page: sub-queries go from + size deep
    assert len(_search(client, hybrid_docs, _hybrid([MATCH, KNN], size=2))["hits"]) == 2


def test_page_past_the_end_of_the_fused_results(client: OpenSearch, hybrid_docs: str, http: RawHttp) -> None:
    body = _hybrid([MATCH, KNN], size=2, **{"from": 50})
    body["query"]["hybrid"]["pagination_depth"] = 3
    _, error = http.request("POST", f"/{hybrid_docs}/_search?search_pipeline=hy-minmax", body)
    assert_error(
        error, 400, "illegal_argument_exception", "Reached end of search result, increase pagination_depth value"
    )


def test_sorted_pages_are_slices_of_the_sorted_union(client: OpenSearch, hybrid_docs: str) -> None:
    def sorted_body(**extra: Any) -> dict[str, Any]:
        body = _hybrid([MATCH, KNN], sort=[{"color": "asc"}, {"rank": "desc"}], **extra)
        body["query"]["hybrid"]["pagination_depth"] = 3
        return body

    full = _search(client, hybrid_docs, sorted_body(size=10))["hits"]
    keys = [tuple(h["sort"]) for h in full]
    assert keys == sorted(keys, key=lambda k: (k[0], -k[1])) and len(full) >= 3
    pages = []
    for start in range(0, len(full), 2):
        pages += _search(client, hybrid_docs, sorted_body(size=2, **{"from": start}))["hits"]
    assert [h["_id"] for h in pages] == [h["_id"] for h in full]
    # with pagination_depth 3 only the best 3 of each sub-query take part
    union = set(list(_raw(client, MATCH))[:3]) | set(list(_raw(client, KNN))[:3])
    assert {h["_id"] for h in full} == union


# ---- _msearch --------------------------------------------------------------------------------------------------


def _msearch(http: RawHttp, lines: list[dict[str, Any]], path: str = "/_msearch") -> list[dict[str, Any]]:
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    status, response = http.request("POST", path, body, {"Content-Type": "application/x-ndjson"})
    assert status == 200, response
    return response["responses"]  # type: ignore[index]


def test_msearch_runs_each_line_through_its_pipeline(client: OpenSearch, hybrid_docs: str, http: RawHttp) -> None:
    expected = {
        name: [h["_id"] for h in _search(client, hybrid_docs, _hybrid([MATCH, KNN]), name)["hits"]]
        for name in ("hy-minmax", "hy-rrf")
    }
    assert expected["hy-minmax"] != expected["hy-rrf"]
    inline = {**_hybrid([MATCH, KNN]), "search_pipeline": {"phase_results_processors": [PIPELINES["hy-rrf"]]}}
    responses = _msearch(
        http,
        [
            {"index": hybrid_docs, "search_pipeline": "hy-minmax"},
            _hybrid([MATCH, KNN]),
            {"index": hybrid_docs, "search_pipeline": "hy-rrf"},
            _hybrid([MATCH, KNN]),
            {"index": hybrid_docs},
            {**_hybrid([MATCH, KNN]), "search_pipeline": "hy-rrf"},
            {"index": hybrid_docs},
            inline,
            {"index": hybrid_docs},
            _hybrid([MATCH, KNN]),
            {"index": hybrid_docs, "search_pipeline": "nope"},
            {"query": {"match_all": {}}},
        ],
    )
    ids = [[h["_id"] for h in r["hits"]["hits"]] if "hits" in r else None for r in responses]
    assert ids[:4] == [expected["hy-minmax"], expected["hy-rrf"], expected["hy-rrf"], expected["hy-rrf"]]
    assert [r["status"] for r in responses[:4]] == [200] * 4
    assert_error(responses[4], 400, "illegal_argument_exception", "search pipeline")
    assert_error(responses[5], 400, "illegal_argument_exception", "Pipeline nope is not defined")


def test_msearch_uses_the_index_default_pipeline(client: OpenSearch, hybrid_docs: str, http: RawHttp) -> None:
    client.indices.put_settings(index=hybrid_docs, body={"index.search.default_pipeline": "hy-rrf"})
    try:
        expected = [h["_id"] for h in _search(client, hybrid_docs, _hybrid([MATCH, KNN]), "hy-rrf")["hits"]]
        responses = _msearch(
            http,
            [{}, _hybrid([MATCH, KNN]), {"search_pipeline": "_none"}, _hybrid([MATCH, KNN])],
            f"/{hybrid_docs}/_msearch",
        )
        assert [h["_id"] for h in responses[0]["hits"]["hits"]] == expected
        assert_error(responses[1], 400, "illegal_argument_exception", "search pipeline")
    finally:
        client.indices.put_settings(index=hybrid_docs, body={"index.search.default_pipeline": "_none"})
