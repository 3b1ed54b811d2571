"""The `neural` query with the real all-MiniLM-L6-v2: the query text is embedded by the model and searched as `knn`,
so scores are 1 / (1 + squared L2) between `_predict`'s embedding of the query and the indexed vectors; it composes
with bool and filters, takes min_score / max_distance, and fails like OpenSearch for bad models and fields."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from opensearchpy import OpenSearch, TransportError

from tests import neural_support
from tests.conftest import assert_error
from tests.neural_support import embed

# the session fixtures this module uses
minilm_zip, neural_node = neural_support.minilm_zip, neural_support.neural_node
nclient, minilm_id = neural_support.nclient, neural_support.minilm_id

TEXTS = [
    "A cowboy rides a bucking bronco at the rodeo.",
    "The wild west was settled by pioneers in wagons.",
    "Neural networks learn representations from data.",
    "The stock market fell sharply on Monday.",
    "Horses gallop across the open prairie at dusk.",
    "A recipe for lemon cake with poppy seeds.",
]
INDEX = "neural-docs"


@pytest.fixture(scope="module")
def docs(nclient: OpenSearch, minilm_id: str) -> Iterator[np.ndarray]:
    vectors = embed(nclient, minilm_id, TEXTS)
    nclient.indices.create(
        index=INDEX,
        body={
            "settings": {"index.knn": True},
            "mappings": {
                "properties": {
                    "text": {"type": "text"},
                    "kind": {"type": "keyword"},
                    "emb": {"type": "knn_vector", "dimension": 384},
                    "small": {"type": "knn_vector", "dimension": 3},
                }
            },
        },
    )
    for i, (text, vec) in enumerate(zip(TEXTS, vectors, strict=True)):
        kind = "west" if i in (0, 1, 4) else "other"
        nclient.index(index=INDEX, id=str(i), body={"text": text, "kind": kind, "emb": vec.tolist()})
    nclient.indices.refresh(index=INDEX)
    yield vectors
    nclient.indices.delete(index=INDEX)


def _expected(query_vec: np.ndarray, vectors: np.ndarray) -> dict[str, float]:
    d2 = ((vectors - query_vec) ** 2).sum(axis=1)
    return {str(i): float(1.0 / (1.0 + d)) for i, d in enumerate(d2)}


def _hits(resp: dict[str, Any]) -> dict[str, float]:
    return {h["_id"]: h["_score"] for h in resp["hits"]["hits"]}


def _error(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(TransportError) as info:
        call()
    return info.value.info


def test_neural_scores_are_knn_scores_of_the_query_embedding(
    nclient: OpenSearch,
    minilm_id: str,
    docs: np.ndarray,
) -> None:
    query = "wild west horses"
    qvec = embed(nclient, minilm_id, [query])[0]
    want = _expected(qvec, docs)
    resp = nclient.search(
        index=INDEX, body={"query": {"neural": {"emb": {"query_text": query, "model_id": minilm_id, "k": 3}}}}
    )
    got = _hits(resp)
    top3 = sorted(want, key=lambda i: -want[i])[:3]
    assert list(got) == top3
    for doc_id, score in got.items():
        assert score == pytest.approx(want[doc_id], rel=1e-4)
    # default k is 10: every document comes back
    resp = nclient.search(
        index=INDEX, body={"query": {"neural": {"emb": {"query_text": query, "model_id": minilm_id}}}}
    )
    assert resp["hits"]["total"]["value"] == len(TEXTS)


def test_neural_inside_bool_with_filter_and_in_msearch(
    nclient: OpenSearch,
    minilm_id: str,
    docs: np.ndarray,
) -> None:
    query = "a rodeo"
    want = _expected(embed(nclient, minilm_id, [query])[0], docs)
    neural = {"neural": {"emb": {"query_text": query, "model_id": minilm_id, "k": 6}}}
    body = {"query": {"bool": {"must": [neural], "filter": [{"term": {"kind": "west"}}]}}}
    got = _hits(nclient.search(index=INDEX, body=body))
    assert set(got) == {"0", "1", "4"}
    for doc_id, score in got.items():
        assert score == pytest.approx(want[doc_id], rel=1e-4)
    # the knn `filter` travels too, and msearch / count rewrite as well
    inner = {
        "neural": {"emb": {"query_text": query, "model_id": minilm_id, "k": 2, "filter": {"term": {"kind": "other"}}}}
    }
    msearch = nclient.msearch(body=[{"index": INDEX}, {"query": inner}])
    assert {h["_id"] for h in msearch["responses"][0]["hits"]["hits"]} <= {"2", "3", "5"}
    assert nclient.count(index=INDEX, body={"query": inner})["count"] == 2


def test_neural_min_score_and_max_distance(nclient: OpenSearch, minilm_id: str, docs: np.ndarray) -> None:
    query = "cowboys and horses"
    want = _expected(embed(nclient, minilm_id, [query])[0], docs)
    threshold = sorted(want.values())[-3] - 1e-6
    body = {"query": {"neural": {"emb": {"query_text": query, "model_id": minilm_id, "min_score": threshold}}}}
    assert set(_hits(nclient.search(index=INDEX, body=body))) == {i for i, s in want.items() if s >= threshold}
    distance = 1.0 / threshold - 1.0
    body = {"query": {"neural": {"emb": {"query_text": query, "model_id": minilm_id, "max_distance": distance}}}}
    assert set(_hits(nclient.search(index=INDEX, body=body))) == {i for i, s in want.items() if s >= threshold}


def test_neural_errors(nclient: OpenSearch, minilm_id: str, docs: np.ndarray) -> None:
    def search(spec: dict[str, Any], field: str = "emb") -> dict[str, Any]:
        return _error(lambda: nclient.search(index=INDEX, body={"query": {"neural": {field: spec}}}))

    assert_error(search({"query_text": "x"}), 400, "illegal_argument_exception", "model id must be provided")
    assert_error(search({"query_text": "x", "model_id": ""}), 400, "illegal_argument_exception", "can not be empty")
    assert_error(
        search({"model_id": minilm_id}),
        400,
        "illegal_argument_exception",
        "Either query_text or query_image must be provided.",
    )
    assert_error(
        search({"query_text": "x", "model_id": minilm_id, "k": 2, "min_score": 0.5}),
        400,
        "illegal_argument_exception",
        "Only one of k, max_distance, or min_score can be provided",
    )
    assert_error(
        search({"query_text": "x", "model_id": minilm_id, "bogus": 1}),
        400,
        "parsing_exception",
        "[neural] query does not support [bogus]",
    )
    assert_error(
        search({"query_text": "x", "model_id": "no-such-model"}), 404, "status_exception", "Failed to find model"
    )
    assert_error(
        search({"query_text": "x", "model_id": minilm_id}, field="text"),
        400,
        "illegal_argument_exception",
        "Field 'text' is not knn_vector type.",
    )
    assert_error(
        search({"query_text": "x", "model_id": minilm_id}, field="small"),
        400,
        "illegal_argument_exception",
        "Query vector has invalid dimension: 384. Dimension should be: 3",
    )
    assert_error(
        search({"query_text": "x", "query_image": "aGVsbG8=", "model_id": minilm_id}),
        400,
        "illegal_argument_exception",
        "query_image needs a multimodal model",
    )


def test_neural_with_an_undeployed_model(nclient: OpenSearch, minilm_id: str, docs: np.ndarray) -> None:
    from tests.neural_support import MINILM, wait_task

    created = nclient.plugins.ml.register_model(body={"name": MINILM, "version": "1.0.2", "model_format": "ONNX"})
    model_id = wait_task(nclient, created["task_id"])["model_id"]
    try:
        body = {"query": {"neural": {"emb": {"query_text": "x", "model_id": model_id}}}}
        assert_error(
            _error(lambda: nclient.search(index=INDEX, body=body)),
            400,
            "illegal_argument_exception",
            "Model not ready yet. Please deploy the model first.",
        )
    finally:
        nclient.plugins.ml.delete_model(model_id=model_id)
