"""LlamaIndex's `OpensearchVectorStore` (llama-index-vector-stores-opensearch), unchanged, against mlsearch.

Nodes carry real all-MiniLM-L6-v2 embeddings from the server's deployed model. The client creates its own index
(faiss HNSW), checks the server's version to choose efficient filtering, and queries in its three modes: k-NN
(plain and with metadata filters), text search, and hybrid through a normalization search pipeline; then the
sync and async delete paths. Expected orders come from numpy on the same embeddings."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)
from llama_index.vector_stores.opensearch import OpensearchVectorClient, OpensearchVectorStore
from opensearchpy import OpenSearch

from mlsearch.launcher import ServerProcess
from tests import neural_support
from tests.neural_support import embed

minilm_zip, neural_node = neural_support.minilm_zip, neural_support.neural_node
nclient, minilm_id = neural_support.nclient, neural_support.minilm_id

INDEX = "llamaindex-nodes"
PIPELINE = "llamaindex-hybrid"
ROWS = [
    ("Vitamin D supplements reduce the risk of bone fractures in older adults.", "bones", 2019, "paper-a"),
    ("Calcium intake and bone mineral density in postmenopausal women.", "bones", 2015, "paper-a"),
    ("Deep learning models for protein structure prediction.", "ml", 2021, "paper-b"),
    ("Transformer networks improve machine translation quality.", "ml", 2017, "paper-b"),
    ("Regular exercise lowers blood pressure in hypertensive patients.", "heart", 2012, "paper-c"),
    ("Salt reduction and its effect on cardiovascular disease.", "heart", 2010, "paper-c"),
]
QUERY = "what prevents broken bones in the elderly"


@pytest.fixture(scope="module")
def vectors(nclient: OpenSearch, minilm_id: str) -> np.ndarray:
    return embed(nclient, minilm_id, [text for text, *_ in ROWS])


@pytest.fixture(scope="module")
def store(neural_node: ServerProcess, nclient: OpenSearch, vectors: np.ndarray) -> Iterator[OpensearchVectorStore]:
    nclient.transport.perform_request(
        "PUT",
        f"/_search/pipeline/{PIPELINE}",
        body={
            "phase_results_processors": [
                {
                    "normalization-processor": {
                        "normalization": {"technique": "min_max"},
                        "combination": {"technique": "arithmetic_mean", "parameters": {"weights": [0.5, 0.5]}},
                    }
                }
            ]
        },
    )
    client = OpensearchVectorClient(neural_node.url, INDEX, dim=384, search_pipeline=PIPELINE)
    vs = OpensearchVectorStore(client)
    nodes = [
        TextNode(
            id_=f"n{i}",
            text=text,
            metadata={"topic": topic, "year": year},
            embedding=vectors[i].tolist(),
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=source)},
        )
        for i, (text, topic, year, source) in enumerate(ROWS)
    ]
    assert vs.add(nodes) == [f"n{i}" for i in range(len(ROWS))]
    yield vs
    vs.close()
    nclient.indices.delete(index=INDEX)
    nclient.transport.perform_request("DELETE", f"/_search/pipeline/{PIPELINE}")


def _order(qvec: np.ndarray, vectors: np.ndarray, allowed: set[int] | None = None) -> list[str]:
    d2 = ((vectors - qvec) ** 2).sum(axis=1)
    return [f"n{i}" for i in np.argsort(d2, kind="stable") if allowed is None or i in allowed]


def test_knn_query_ranks_like_numpy(
    store: OpensearchVectorStore, nclient: OpenSearch, minilm_id: str, vectors: np.ndarray
) -> None:
    qvec = embed(nclient, minilm_id, [QUERY])[0]
    result = store.query(VectorStoreQuery(query_embedding=qvec.tolist(), similarity_top_k=3))
    assert result.ids == _order(qvec, vectors)[:3]
    assert result.nodes[0].get_content() == ROWS[0][0]
    assert result.nodes[0].metadata["topic"] == "bones"
    d2 = float(((vectors[0] - qvec) ** 2).sum())
    assert result.similarities[0] == pytest.approx(1 / (1 + d2), rel=1e-4)


def test_metadata_filters(
    store: OpensearchVectorStore, nclient: OpenSearch, minilm_id: str, vectors: np.ndarray
) -> None:
    qvec = embed(nclient, minilm_id, [QUERY])[0].tolist()

    def ids(*filters: MetadataFilter, condition: FilterCondition = FilterCondition.AND) -> list[str]:
        query = VectorStoreQuery(
            query_embedding=qvec,
            similarity_top_k=6,
            filters=MetadataFilters(filters=list(filters), condition=condition),
        )
        return store.query(query).ids

    assert ids(MetadataFilter(key="topic", value="heart")) == _order(np.asarray(qvec), vectors, {4, 5})
    newer = ids(MetadataFilter(key="year", value=2016, operator=FilterOperator.GT))
    assert newer == _order(np.asarray(qvec), vectors, {0, 2, 3})
    either = ids(
        MetadataFilter(key="topic", value="ml"),
        MetadataFilter(key="year", value=2010),
        condition=FilterCondition.OR,
    )
    assert set(either) == {"n2", "n3", "n5"}
    not_in = ids(MetadataFilter(key="topic", value=["ml", "heart"], operator=FilterOperator.NIN))
    assert set(not_in) == {"n0", "n1"}
    # ALL is sent as a terms_set query whose script asks for every term
    assert set(ids(MetadataFilter(key="topic", value=["bones"], operator=FilterOperator.ALL))) == {"n0", "n1"}
    assert ids(MetadataFilter(key="topic", value=["bones", "ml"], operator=FilterOperator.ALL)) == []
    assert set(ids(MetadataFilter(key="topic", value=["ml", "heart"], operator=FilterOperator.IN))) == {
        "n2",
        "n3",
        "n4",
        "n5",
    }


def test_text_and_hybrid_modes(store: OpensearchVectorStore, nclient: OpenSearch, minilm_id: str) -> None:
    text = store.query(
        VectorStoreQuery(query_str="bone fractures", similarity_top_k=2, mode=VectorStoreQueryMode.TEXT_SEARCH)
    )
    assert text.ids[0] == "n0"
    qvec = embed(nclient, minilm_id, ["bone fractures"])[0].tolist()
    hybrid = store.query(
        VectorStoreQuery(
            query_str="bone fractures",
            query_embedding=qvec,
            similarity_top_k=3,
            mode=VectorStoreQueryMode.HYBRID,
        )
    )
    assert hybrid.ids[0] == "n0"
    # min_max + arithmetic mean: the best document of both sub-queries scores 1.0.
    assert hybrid.similarities[0] == pytest.approx(1.0, abs=1e-6)
    assert all(0.0 <= s <= 1.0 for s in hybrid.similarities)


def test_async_query_and_deletes(store: OpensearchVectorStore, nclient: OpenSearch, vectors: np.ndarray) -> None:
    async def run() -> list[str]:
        result = await store.aquery(VectorStoreQuery(query_embedding=vectors[2].tolist(), similarity_top_k=1))
        return result.ids

    assert asyncio.run(run()) == ["n2"]
    store.delete("paper-c")  # by the source document: deletes both of its nodes
    nclient.indices.refresh(index=INDEX)
    assert nclient.count(index=INDEX)["count"] == 4
    store.delete_nodes(["n3"])
    assert nclient.count(index=INDEX)["count"] == 3
    remaining = store.query(VectorStoreQuery(query_embedding=vectors[4].tolist(), similarity_top_k=6)).ids
    assert set(remaining) == {"n0", "n1", "n2"}
