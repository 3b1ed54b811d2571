"""The `terms_set` query: at least N of the terms, N from a field or from the script forms clients send."""

from __future__ import annotations

from typing import Any

import pytest
from opensearchpy import OpenSearch, RequestError

DOCS = {
    "a": {"tags": ["x", "y", "z"], "need": 3},
    "b": {"tags": ["x", "y"], "need": 2},
    "c": {"tags": ["x"], "need": 2},
    "d": {"tags": ["x", "q"], "need": 0},
    "e": {"tags": ["y", "z"], "need": 5},
    "f": {"tags": ["x", "y", "z"]},  # no requirement field
}
TERMS = ["x", "y", "z"]


@pytest.fixture
def tagged(client: OpenSearch, index_name: str) -> str:
    client.indices.create(
        index=index_name,
        body={"mappings": {"properties": {"tags": {"type": "keyword"}, "need": {"type": "long"}}}},
    )
    for doc_id, doc in DOCS.items():
        client.index(index=index_name, id=doc_id, body=doc)
    client.indices.refresh(index=index_name)
    return index_name


def _expected(required: Any) -> set[str]:
    """Brute force over DOCS: `required(doc)` terms needed (None: no match); 0 or less needs one."""
    out = set()
    for doc_id, doc in DOCS.items():
        need = required(doc)
        matched = len(set(doc["tags"]) & set(TERMS))
        if need is not None and matched >= max(need, 1):
            out.add(doc_id)
    return out


def _ids(client: OpenSearch, index: str, spec: dict[str, Any]) -> set[str]:
    body = {"query": {"terms_set": {"tags": {"terms": TERMS, **spec}}}, "size": 20}
    return {h["_id"] for h in client.search(index=index, body=body)["hits"]["hits"]}


def test_requirement_from_a_field(client: OpenSearch, tagged: str) -> None:
    got = _ids(client, tagged, {"minimum_should_match_field": "need"})
    assert got == _expected(lambda d: d.get("need") if d.get("need", 99) <= len(TERMS) else None)
    assert got == {"a", "b", "d"}


@pytest.mark.parametrize(
    ("source", "required"),
    [
        ("params.num_terms", lambda d: 3),
        ("2", lambda d: 2),
        ("doc['need'].value", lambda d: d.get("need") if d.get("need", 99) <= 3 else None),
        ("Math.min(params.num_terms, doc['need'].value)", lambda d: None if "need" not in d else min(3, d["need"])),
        ("Math.max(params.floor, doc['need'].value)", lambda d: None if "need" not in d else max(2, d["need"])),
    ],
)
def test_requirement_from_a_script(client: OpenSearch, tagged: str, source: str, required: Any) -> None:
    spec = {"minimum_should_match_script": {"source": source, "params": {"floor": 2}}}
    want = _expected(lambda d: (lambda r: None if r is None or r > 3 else r)(required(d)))
    assert _ids(client, tagged, spec) == want


def test_scores_are_the_sum_of_the_matching_terms(client: OpenSearch, tagged: str) -> None:
    body = {"query": {"terms_set": {"tags": {"terms": TERMS, "minimum_should_match_field": "need"}}}}
    got = {h["_id"]: h["_score"] for h in client.search(index=tagged, body=body)["hits"]["hits"]}
    should = [{"term": {"tags": t}} for t in TERMS]
    for doc_id, score in got.items():
        same = {"bool": {"should": should, "filter": [{"ids": {"values": [doc_id]}}]}}
        [hit] = client.search(index=tagged, body={"query": same})["hits"]["hits"]
        assert score == pytest.approx(hit["_score"], rel=1e-6), doc_id


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"minimum_should_match_field": "need", "minimum_should_match_script": {"source": "2"}}, "Cannot specify both"),
        ({}, "No minimum should match has been specified"),
        ({"minimum_should_match_script": {"source": "doc['need'].value * 2"}}, "is not supported"),
        ({"minimum_should_match_field": "need", "colour": 1}, "[terms_set] query does not support [colour]"),
    ],
)
def test_bad_requests(client: OpenSearch, tagged: str, spec: dict[str, Any], reason: str) -> None:
    with pytest.raises(RequestError) as err:
        _ids(client, tagged, spec)
    assert reason in err.value.info["error"]["reason"]
