"""Hybrid score fusion against hand computation and the tutorial's published hybrid scores (spec §8.3)."""

from __future__ import annotations

import math

import pytest

from mlsearch.engine.fusion import Fusion, LowerBound, combine, fuse, l2, min_max, rrf_scores, z_score
from mlsearch.errors import IllegalArgumentError

# Tutorial sub-query scores: BM25 for "cowboy rodeo bronco" and the neural scores for "wild west".
KEYWORD = {"3": 2.26176, "5": 2.12108, "4": 0.87547}
SEMANTIC = {"4": 0.01585195, "2": 0.015748845, "5": 0.015177963, "1": 0.013272902, "3": 0.011347735}
PUBLISHED = {"5": 0.86481035, "4": 0.7003, "2": 0.6839765, "3": 0.3007, "1": 0.29919013}


def test_tutorial_hybrid_scores_are_reproduced() -> None:
    fused = fuse(Fusion(weights=(0.3, 0.7)), [KEYWORD, SEMANTIC])
    assert [f.doc for f in fused] == ["5", "4", "2", "3", "1"]
    for f in fused:
        assert f.score == pytest.approx(PUBLISHED[f.doc], abs=1e-5)
    doc1 = next(f for f in fused if f.doc == "1")
    assert doc1.sub_scores[0] is None  # absent from the keyword results: counts 0, not the 0.001 floor


def test_min_max_floor_and_single_score() -> None:
    assert min_max({"a": 2.0, "b": 1.0, "c": 1.5}) == {"a": 1.0, "b": 0.001, "c": 0.5}
    assert min_max({"a": 3.0}) == {"a": 1.0}


def test_min_max_lower_bounds() -> None:
    scores = {"a": 4.0, "b": 2.0, "c": 1.0}
    applied = min_max(scores, LowerBound("apply", 0.0))
    assert applied == {"a": 1.0, "b": 0.5, "c": 0.25}  # the bound (0) replaces the minimum, no floor
    below = min_max(scores, LowerBound("apply", 1.5))
    assert below["c"] == pytest.approx((1.0 - 1.0) / 3.0)  # under the bound: plain min_max
    assert below["b"] == pytest.approx((2.0 - 1.5) / 2.5)
    clipped = min_max(scores, LowerBound("clip", 0.0))
    assert clipped == {"a": 1.0, "b": 0.5, "c": 0.25}
    ignored = min_max(scores, LowerBound("ignore", 3.0))
    assert ignored == {"a": 1.0, "b": pytest.approx(1 / 3), "c": 0.001}


def test_l2_and_z_score() -> None:
    assert l2({"a": 3.0, "b": 4.0}) == {"a": 0.6, "b": 0.8}
    z = z_score({"a": 1.0, "b": 2.0, "c": 3.0})
    std = math.sqrt(2 / 3)
    assert z == {"a": 0.001, "b": 1.0, "c": pytest.approx(1.0 / std)}


def test_combinations_with_weights() -> None:
    assert combine("arithmetic_mean", [0.5, 0.0], [0.4, 0.6]) == pytest.approx(0.2)
    assert combine("geometric_mean", [0.5, 0.8], [0.4, 0.6]) == pytest.approx(
        math.exp(0.4 * math.log(0.5) + 0.6 * math.log(0.8))
    )
    assert combine("geometric_mean", [0.5, 0.0], [0.4, 0.6]) == pytest.approx(0.5)  # only positive scores count
    assert combine("harmonic_mean", [0.5, 0.8], [0.4, 0.6]) == pytest.approx(1.0 / (0.4 / 0.5 + 0.6 / 0.8))
    assert combine("harmonic_mean", [0.0, 0.0], [0.5, 0.5]) == 0.0


def test_rrf_with_rank_constant_and_weights() -> None:
    assert rrf_scores({"a": 1.0, "b": 3.0}, 60) == {"b": 1 / 61, "a": 1 / 62}
    fused = fuse(
        Fusion(combination="rrf", rank_constant=10, weights=(0.7, 0.3)), [{"a": 5.0, "b": 4.0}, {"b": 0.9, "c": 0.1}]
    )
    got = {f.doc: f.score for f in fused}
    assert got == {"a": pytest.approx(0.7 / 11), "b": pytest.approx(0.7 / 12 + 0.3 / 11), "c": pytest.approx(0.3 / 12)}
    assert [f.doc for f in fused] == ["b", "a", "c"]


def test_weights_must_match_sub_queries() -> None:
    with pytest.raises(IllegalArgumentError, match=r"number of weights \[3\] must match number of sub-queries \[2\]"):
        fuse(Fusion(weights=(0.2, 0.3, 0.5)), [KEYWORD, SEMANTIC])


def test_search_pipeline_store_reloads_from_disk(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mlsearch.pipelines.search.store import SearchPipelineStore

    store = SearchPipelineStore(tmp_path / "sp.json")
    body = {"phase_results_processors": [{"score-ranker-processor": {"combination": {"technique": "rrf"}}}]}
    store.put("p", body)
    again = SearchPipelineStore(tmp_path / "sp.json")
    assert again.definitions() == {"p": body}
    fusion = again.find("p").fusion()  # type: ignore[union-attr]
    assert fusion is not None and fusion.combination == "rrf" and fusion.rank_constant == 60
