"""Haystack's `OpenSearchDocumentStore` and retrievers (opensearch-haystack), unchanged, against mlsearch.

Documents carry real all-MiniLM-L6-v2 embeddings computed by the server's deployed model. The store's own index
mapping (a knn_vector, a text field, dynamic templates mapping strings to keywords) is created by Haystack; its
filter language goes through its own translation into bool / term / terms / range queries; BM25 and embedding
retrieval, filtered retrieval, metadata aggregations, update and delete by filter all run as Haystack sends them."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from haystack import Document
from haystack.document_stores.types import DuplicatePolicy
from haystack_integrations.components.retrievers.opensearch import (
    OpenSearchBM25Retriever,
    OpenSearchEmbeddingRetriever,
)
from haystack_integrations.document_stores.opensearch import OpenSearchDocumentStore
from opensearchpy import OpenSearch

from mlsearch.launcher import ServerProcess
from tests import neural_support
from tests.neural_support import embed

minilm_zip, neural_node = neural_support.minilm_zip, neural_support.neural_node
nclient, minilm_id = neural_support.nclient, neural_support.minilm_id

INDEX = "haystack-docs"
ROWS = [
    ("Vitamin D supplements reduce the risk of bone fractures in older adults.", "bones", 2019),
    ("Calcium intake and bone mineral density in postmenopausal women.", "bones", 2015),
    ("Deep learning models for protein structure prediction.", "ml", 2021),
    ("Transformer networks improve machine translation quality.", "ml", 2017),
    ("Regular exercise lowers blood pressure in hypertensive patients.", "heart", 2012),
    ("Salt reduction and its effect on cardiovascular disease.", "heart", 2010),
]
QUERY = "what prevents broken bones in the elderly"


@pytest.fixture(scope="module")
def vectors(nclient: OpenSearch, minilm_id: str) -> np.ndarray:
    return embed(nclient, minilm_id, [text for text, _, _ in ROWS])


@pytest.fixture(scope="module")
def store(neural_node: ServerProcess, nclient: OpenSearch, vectors: np.ndarray) -> Iterator[OpenSearchDocumentStore]:
    ds = OpenSearchDocumentStore(hosts=neural_node.url, index=INDEX, embedding_dim=384)
    docs = [
        Document(id=f"d{i}", content=text, meta={"topic": topic, "year": year}, embedding=vectors[i].tolist())
        for i, (text, topic, year) in enumerate(ROWS)
    ]
    assert ds.write_documents(docs, policy=DuplicatePolicy.OVERWRITE) == len(ROWS)
    nclient.indices.refresh(index=INDEX)
    yield ds
    ds.close()
    nclient.indices.delete(index=INDEX)


def test_documents_round_trip(store: OpenSearchDocumentStore, vectors: np.ndarray) -> None:
    assert store.count_documents() == len(ROWS)
    got = {d.id: d for d in store.filter_documents()}
    assert set(got) == {f"d{i}" for i in range(len(ROWS))}
    assert got["d2"].content == ROWS[2][0]
    assert got["d2"].meta == {"topic": "ml", "year": 2021}
    assert got["d2"].embedding is None  # the store excludes embeddings from `_source` unless asked


def test_haystack_filters_translate_and_match(store: OpenSearchDocumentStore) -> None:
    def ids(filters: dict) -> set[str]:
        return {d.id for d in store.filter_documents(filters=filters)}

    assert ids({"field": "meta.topic", "operator": "==", "value": "bones"}) == {"d0", "d1"}
    assert ids({"field": "meta.topic", "operator": "!=", "value": "bones"}) == {"d2", "d3", "d4", "d5"}
    assert ids({"field": "meta.year", "operator": ">=", "value": 2017}) == {"d0", "d2", "d3"}
    assert ids({"field": "meta.topic", "operator": "in", "value": ["heart", "ml"]}) == {"d2", "d3", "d4", "d5"}
    assert ids({"field": "meta.topic", "operator": "not in", "value": ["heart", "ml"]}) == {"d0", "d1"}
    both = {
        "operator": "AND",
        "conditions": [
            {"field": "meta.topic", "operator": "in", "value": ["bones", "heart"]},
            {"field": "meta.year", "operator": "<", "value": 2015},
        ],
    }
    assert ids(both) == {"d4", "d5"}
    either = {
        "operator": "OR",
        "conditions": [
            {"field": "meta.topic", "operator": "==", "value": "ml"},
            {"field": "meta.year", "operator": "==", "value": 2010},
        ],
    }
    assert ids(either) == {"d2", "d3", "d5"}
    assert ids({"operator": "NOT", "conditions": [either]}) == {"d0", "d1", "d4"}
    assert store.count_documents_by_filter({"field": "meta.topic", "operator": "==", "value": "ml"}) == 2


def test_bm25_retriever(store: OpenSearchDocumentStore) -> None:
    retriever = OpenSearchBM25Retriever(document_store=store, top_k=3)
    docs = retriever.run(query="bone fractures")["documents"]
    assert docs[0].id == "d0"
    assert docs[0].score > 0
    assert all(d.meta["topic"] == "bones" for d in docs if d.score > 0)
    filtered = retriever.run(query="bone", filters={"field": "meta.year", "operator": "<", "value": 2019})
    assert [d.id for d in filtered["documents"]] == ["d1"]


def test_embedding_retriever_ranks_like_numpy(
    store: OpenSearchDocumentStore, nclient: OpenSearch, minilm_id: str, vectors: np.ndarray
) -> None:
    qvec = embed(nclient, minilm_id, [QUERY])[0]
    d2 = ((vectors - qvec) ** 2).sum(axis=1)
    order = [f"d{i}" for i in np.argsort(d2, kind="stable")]
    retriever = OpenSearchEmbeddingRetriever(document_store=store, top_k=3)
    docs = retriever.run(query_embedding=qvec.tolist())["documents"]
    assert [d.id for d in docs] == order[:3]
    assert docs[0].score == pytest.approx(1 / (1 + d2.min()), rel=1e-4)

    heart = {"field": "meta.topic", "operator": "==", "value": "heart"}
    want = [i for i in order if ROWS[int(i[1:])][1] == "heart"]
    for efficient in (False, True):
        found = OpenSearchEmbeddingRetriever(document_store=store, top_k=6, efficient_filtering=efficient).run(
            query_embedding=qvec.tolist(), filters=heart
        )["documents"]
        assert [d.id for d in found] == want, efficient


def test_metadata_aggregations(store: OpenSearchDocumentStore) -> None:
    counts = store.count_unique_metadata_by_filter(filters={}, metadata_fields=["topic"])
    assert counts == {"topic": 3}
    assert store.get_metadata_field_min_max("year") == {"min": 2010, "max": 2021}
    info = store.get_metadata_fields_info()
    assert info["topic"] == {"type": "keyword"}
    assert info["year"]["type"] == "long"


def test_update_and_delete_by_filter(store: OpenSearchDocumentStore, nclient: OpenSearch) -> None:
    ml = {"field": "meta.topic", "operator": "==", "value": "ml"}
    assert store.update_by_filter(ml, {"reviewed": True}, refresh=True) == 2
    reviewed = store.filter_documents(filters={"field": "meta.reviewed", "operator": "==", "value": True})
    assert {d.id for d in reviewed} == {"d2", "d3"}

    store.write_documents([Document(id="tmp", content="temporary", meta={"topic": "tmp", "year": 1999})])
    nclient.indices.refresh(index=INDEX)
    assert store.delete_by_filter({"field": "meta.topic", "operator": "==", "value": "tmp"}, refresh=True) == 1
    store.delete_documents(["d5"])
    nclient.indices.refresh(index=INDEX)
    assert store.count_documents() == len(ROWS) - 1
    assert store.filter_documents(filters={"field": "id", "operator": "==", "value": "d5"}) == []
