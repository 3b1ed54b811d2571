"""The keyword search of OpenSearch's neural search tutorial (spec §8): ranking and legacy BM25 scores."""

from __future__ import annotations

import pytest
from opensearchpy import OpenSearch

DOCS = {
    "1": "A West Virginia university women 's basketball team , officials , and a small gathering of fans are in a "
    "West Virginia arena .",
    "2": "A wild animal races across an uncut field with a minimal amount of trees .",
    "3": "People line the stands which advertise Freemont 's orthopedics , a cowboy rides a light brown bucking "
    "bronco .",
    "4": "A man who is riding a wild horse in the rodeo is very near to falling off .",
    "5": "A rodeo cowboy , wearing a cowboy hat , is being thrown off of a wild white horse .",
}
LEGACY = [("1", 1.7878418), ("2", 0.58093566), ("5", 0.55228686), ("4", 0.53899646)]


def _load(client: OpenSearch, name: str, settings: dict) -> None:
    client.indices.create(
        index=name,
        body={"settings": settings, "mappings": {"properties": {"id": {"type": "text"}, "text": {"type": "text"}}}},
    )
    for doc_id, text in DOCS.items():
        client.index(index=name, id=doc_id, body={"text": text, "id": f"{doc_id}.jpg"})
    client.indices.refresh(index=name)


@pytest.mark.parametrize("similarity", ["LegacyBM25", "BM25"])
def test_wild_west_ranking_and_scores(client: OpenSearch, index_name: str, similarity: str) -> None:
    _load(client, index_name, {"index.similarity.default.type": similarity} if similarity != "BM25" else {})
    result = client.search(
        index=index_name,
        body={"_source": {"excludes": ["passage_embedding"]}, "query": {"match": {"text": {"query": "wild west"}}}},
    )
    hits = result["hits"]["hits"]
    assert result["hits"]["total"] == {"value": 4, "relation": "eq"}
    assert [h["_id"] for h in hits] == [doc_id for doc_id, _ in LEGACY]
    scale = 1.0 if similarity == "LegacyBM25" else 1 / 2.2
    for hit, (_, expected) in zip(hits, LEGACY, strict=True):
        assert hit["_score"] == pytest.approx(expected * scale, rel=5e-5)
    assert result["hits"]["max_score"] == pytest.approx(LEGACY[0][1] * scale, rel=5e-5)
    assert hits[0]["_source"] == {"text": DOCS["1"], "id": "1.jpg"}


def test_cowboy_rodeo_bronco_legacy(client: OpenSearch, index_name: str) -> None:
    _load(client, index_name, {"index.similarity.default.type": "LegacyBM25"})
    hits = client.search(index=index_name, body={"query": {"match": {"text": "cowboy rodeo bronco"}}})["hits"]["hits"]
    assert [(h["_id"], round(h["_score"], 4)) for h in hits] == [("3", 2.2618), ("5", 2.1211), ("4", 0.8755)]
