"""LangChain's `OpenSearchVectorSearch` (langchain-community), unchanged, against mlsearch.

The embeddings come from all-MiniLM-L6-v2 deployed on the server itself (`_predict`), so what LangChain indexes
and queries with are real sentence embeddings. Each search type the vector store offers runs here: approximate
k-NN (plain, boolean filter, efficient filter), script scoring, painless scripting, MMR and hybrid search
through a normalization pipeline that LangChain configures. Expected rankings come from numpy on the same
embeddings, so a wrong score formula or filter shows up as a wrong order, not just a failed call."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from opensearchpy import OpenSearch

from mlsearch.launcher import ServerProcess
from tests import neural_support
from tests.neural_support import embed

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # langchain-community announces its own sunset on import
    from langchain_community.vectorstores import OpenSearchVectorSearch
    from langchain_core.embeddings import Embeddings

minilm_zip, neural_node = neural_support.minilm_zip, neural_support.neural_node
nclient, minilm_id = neural_support.nclient, neural_support.minilm_id

INDEX = "langchain-docs"
TEXTS = [
    "Vitamin D supplements reduce the risk of bone fractures in older adults.",
    "Calcium intake and bone mineral density in postmenopausal women.",
    "Deep learning models for protein structure prediction.",
    "Transformer networks improve machine translation quality.",
    "Regular exercise lowers blood pressure in hypertensive patients.",
    "Salt reduction and its effect on cardiovascular disease.",
    "Graph neural networks for molecule property prediction.",
    "Sleep deprivation impairs memory consolidation.",
]
TOPICS = ["bones", "bones", "ml", "ml", "heart", "heart", "ml", "brain"]
QUERY = "what prevents broken bones in the elderly"


class ServerEmbeddings(Embeddings):
    """LangChain embeddings computed by the mlsearch server's deployed model."""

    def __init__(self, client: OpenSearch, model_id: str) -> None:
        self.client, self.model_id = client, model_id

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return embed(self.client, self.model_id, texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


@pytest.fixture(scope="module")
def store(neural_node: ServerProcess, nclient: OpenSearch, minilm_id: str) -> Iterator[OpenSearchVectorSearch]:
    embeddings = ServerEmbeddings(nclient, minilm_id)
    vs = OpenSearchVectorSearch.from_texts(
        TEXTS,
        embeddings,
        metadatas=[{"topic": t, "n": i} for i, t in enumerate(TOPICS)],
        ids=[f"d{i}" for i in range(len(TEXTS))],
        opensearch_url=neural_node.url,
        index_name=INDEX,
        engine="faiss",
    )
    yield vs
    nclient.indices.delete(index=INDEX)


@pytest.fixture(scope="module")
def vectors(nclient: OpenSearch, minilm_id: str) -> np.ndarray:
    return embed(nclient, minilm_id, TEXTS)


def _ranked(query_vec: np.ndarray, vectors: np.ndarray, allowed: list[int] | None = None) -> list[str]:
    order = np.argsort(((vectors - query_vec) ** 2).sum(axis=1), kind="stable")
    return [TEXTS[i] for i in order if allowed is None or i in allowed]


def test_index_mapping_is_what_langchain_asked_for(store: OpenSearchVectorSearch, nclient: OpenSearch) -> None:
    mapping = nclient.indices.get_mapping(index=INDEX)[INDEX]["mappings"]["properties"]
    assert mapping["vector_field"]["type"] == "knn_vector"
    assert mapping["vector_field"]["dimension"] == 384
    assert mapping["vector_field"]["method"]["engine"] == "faiss"
    assert nclient.count(index=INDEX)["count"] == len(TEXTS)


def test_approximate_search_ranks_like_numpy(
    store: OpenSearchVectorSearch, nclient: OpenSearch, minilm_id: str, vectors: np.ndarray
) -> None:
    qvec = embed(nclient, minilm_id, [QUERY])[0]
    docs = store.similarity_search(QUERY, k=4)
    assert [d.page_content for d in docs] == _ranked(qvec, vectors)[:4]
    assert docs[0].metadata == {"topic": "bones", "n": 0}
    scored = store.similarity_search_with_score(QUERY, k=2)
    d2 = float(((vectors[0] - qvec) ** 2).sum())
    assert scored[0][1] == pytest.approx(1 / (1 + d2), rel=1e-4)


def test_boolean_and_efficient_filters(
    store: OpenSearchVectorSearch, nclient: OpenSearch, minilm_id: str, vectors: np.ndarray
) -> None:
    qvec = embed(nclient, minilm_id, [QUERY])[0]
    ml = [i for i, t in enumerate(TOPICS) if t == "ml"]
    want = _ranked(qvec, vectors, ml)
    flt = {"term": {"metadata.topic": "ml"}}
    efficient = store.similarity_search(QUERY, k=3, efficient_filter=flt)
    assert [d.page_content for d in efficient] == want
    # A boolean filter beside a knn of k=8 keeps the k nearest that pass it.
    boolean = store.similarity_search(QUERY, k=8, boolean_filter=flt)
    assert [d.page_content for d in boolean] == want
    # `filter` is sent as an efficient filter for faiss.
    generic = store.similarity_search(QUERY, k=2, filter={"range": {"metadata.n": {"gte": 4}}})
    assert [d.page_content for d in generic] == _ranked(qvec, vectors, [4, 5, 6, 7])[:2]


def test_script_scoring_and_painless_scripting(
    store: OpenSearchVectorSearch, nclient: OpenSearch, minilm_id: str, vectors: np.ndarray
) -> None:
    qvec = embed(nclient, minilm_id, [QUERY])[0]
    heart_or_bones = [i for i, t in enumerate(TOPICS) if t in ("heart", "bones")]
    pre = {"terms": {"metadata.topic": ["heart", "bones"]}}
    scored = store.similarity_search_with_score(QUERY, k=3, search_type="script_scoring", pre_filter=pre)
    assert [d.page_content for d, _ in scored] == _ranked(qvec, vectors, heart_or_bones)[:3]
    assert scored[0][0].page_content == TEXTS[0]
    d2 = float(((vectors[0] - qvec) ** 2).sum())
    assert scored[0][1] == pytest.approx(1 / (1 + d2), rel=1e-4)

    painless = store.similarity_search_with_score(QUERY, k=3, search_type="painless_scripting", pre_filter=pre)
    assert [d.page_content for d, _ in painless] == _ranked(qvec, vectors, heart_or_bones)[:3]
    assert painless[0][1] == pytest.approx(1 / (1 + d2), rel=1e-4)

    cosine = store.similarity_search_with_score(
        QUERY, k=8, search_type="painless_scripting", space_type="cosineSimilarity"
    )
    cos = vectors @ qvec / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(qvec))
    assert [d.page_content for d, _ in cosine] == [TEXTS[i] for i in np.argsort(-cos, kind="stable")]
    assert cosine[0][1] == pytest.approx(1 + cos.max(), rel=1e-4)


def test_max_marginal_relevance_reads_vectors_back(store: OpenSearchVectorSearch) -> None:
    docs = store.max_marginal_relevance_search(QUERY, k=3, fetch_k=8, lambda_mult=0.2)
    assert len(docs) == 3
    assert docs[0].page_content == TEXTS[0]
    # Low lambda favours diversity: the second pick is not the other bone abstract.
    assert docs[1].metadata["topic"] != "bones"


def test_hybrid_search_through_the_pipeline_langchain_configures(
    store: OpenSearchVectorSearch, nclient: OpenSearch
) -> None:
    store.configure_search_pipelines("langchain_hybrid", keyword_weight=0.5, vector_weight=0.5)
    assert store.search_pipeline_exists("langchain_hybrid")
    info = store.get_search_pipeline_info("langchain_hybrid")
    assert "normalization-processor" in info["langchain_hybrid"]["phase_results_processors"][0]
    docs = store.similarity_search(
        "bone fractures", k=3, search_type="hybrid_search", search_pipeline="langchain_hybrid"
    )
    assert docs[0].page_content == TEXTS[0]
    assert "vector_field" not in docs[0].metadata  # the hybrid query excludes vectors from `_source`
    filtered = store.similarity_search(
        "bone fractures",
        k=3,
        search_type="hybrid_search",
        search_pipeline="langchain_hybrid",
        post_filter={"term": {"metadata.topic": "heart"}},
    )
    assert filtered and {d.metadata["topic"] for d in filtered} == {"heart"}
    nclient.transport.perform_request("DELETE", "/_search/pipeline/langchain_hybrid")


def test_add_and_delete_texts(store: OpenSearchVectorSearch, nclient: OpenSearch) -> None:
    ids = store.add_texts(["Zinc and the common cold."], metadatas=[{"topic": "cold", "n": 99}], ids=["extra"])
    assert ids == ["extra"]
    assert store.similarity_search("zinc lozenges for a cold", k=1)[0].page_content == "Zinc and the common cold."
    assert store.delete(["extra"]) is True
    assert nclient.count(index=INDEX)["count"] == len(TEXTS)
    assert all(d.page_content != "Zinc and the common cold." for d in store.similarity_search("zinc cold", k=8))
