"""The k-NN plugin APIs: stats counters, warmup / clear_cache, and trained models (train -> get -> used by a
knn_vector mapping -> searched -> delete refused while used -> deleted after the index), through opensearch-py."""

from __future__ import annotations

import time

import numpy as np
import pytest
from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import ConflictError, NotFoundError, RequestError

from tests.conftest import RawHttp, assert_error

DIM = 8


def _vectors(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 5, size=(8, DIM))
    return (centers[rng.integers(0, 8, n)] + rng.normal(0, 1, size=(n, DIM))).astype(np.float32)


def _load(client: OpenSearch, name: str, data: np.ndarray, field: dict) -> None:
    client.indices.create(
        index=name, body={"settings": {"index.knn": True}, "mappings": {"properties": {"vec": field}}}
    )
    helpers.bulk(
        client,
        [{"_index": name, "_id": str(i), "_source": {"vec": v.tolist()}} for i, v in enumerate(data)],
        refresh=True,
        chunk_size=2000,
    )


def _node(client: OpenSearch, **kwargs) -> dict:
    body = client.plugins.knn.stats(**kwargs)
    assert body["_nodes"] == {"total": 1, "successful": 1, "failed": 0}
    [node] = body["nodes"].values()
    return node


def _knn(client: OpenSearch, name: str, q: np.ndarray, k: int = 5) -> list[dict]:
    body = {"size": k, "query": {"knn": {"vec": {"vector": q.tolist(), "k": k}}}}
    return client.search(index=name, body=body)["hits"]["hits"]


def test_stats_shape_and_counters_move(client: OpenSearch, index_name: str, http: RawHttp) -> None:
    data = _vectors(1200)
    _load(client, index_name, data, {"type": "knn_vector", "dimension": DIM})
    before = _node(client)
    for key in (
        "graph_memory_usage",
        "knn_query_requests",
        "script_query_requests",
        "hit_count",
        "miss_count",
        "indices_in_cache",
        "training_requests",
        "faiss_initialized",
        "eviction_count",
    ):
        assert key in before
    # Warmup builds the pending graph and loads it: the index shows up in the cache.
    assert client.plugins.knn.warmup(index=index_name) == {"_shards": {"total": 1, "successful": 1, "failed": 0}}
    warm = _node(client)
    assert warm["indices_in_cache"][index_name]["graph_count"] == 1
    assert warm["indices_in_cache"][index_name]["graph_memory_usage"] > DIM * 4 * 1200 // 1024 - 1
    assert warm["graph_memory_usage"] >= warm["indices_in_cache"][index_name]["graph_memory_usage"]
    assert warm["load_success_count"] > before["load_success_count"]
    _knn(client, index_name, data[0])
    after = _node(client)
    assert after["knn_query_requests"] == warm["knn_query_requests"] + 1
    assert after["graph_query_requests"] == warm["graph_query_requests"] + 1
    assert after["hit_count"] == warm["hit_count"] + 1
    script = {
        "lang": "knn",
        "source": "knn_score",
        "params": {"field": "vec", "query_value": data[0].tolist(), "space_type": "l2"},
    }
    client.search(index=index_name, body={"query": {"script_score": {"query": {"match_all": {}}, "script": script}}})
    assert _node(client)["script_query_requests"] == after["script_query_requests"] + 1
    # clear_cache evicts; the next search misses and reloads.
    _status, body = http.request("POST", f"/_plugins/_knn/clear_cache/{index_name}")
    assert _status == 200 and body == {"_shards": {"total": 1, "successful": 1, "failed": 0}}
    cleared = _node(client)
    assert index_name not in cleared["indices_in_cache"]
    assert cleared["eviction_count"] >= after["eviction_count"] + 1
    _knn(client, index_name, data[1])
    assert _node(client)["miss_count"] == cleared["miss_count"] + 1
    # Filtering by stat names, and by node id.
    body = client.plugins.knn.stats(stat="knn_query_requests,circuit_breaker_triggered")
    [only] = body["nodes"].values()
    assert set(only) == {"knn_query_requests"} and body["circuit_breaker_triggered"] is False
    node_id = next(iter(body["nodes"]))
    _status, body = http.request("GET", f"/_plugins/_knn/{node_id}/stats/hit_count")
    assert _status == 200 and set(body["nodes"][node_id]) == {"hit_count"}
    _status, body = http.request("GET", "/_plugins/_knn/stats/not_a_stat")
    assert_error(body, 400, "illegal_argument_exception", "not_a_stat")


def _wait_model(client: OpenSearch, model_id: str, deadline_s: float = 30.0) -> dict:
    deadline = time.monotonic() + deadline_s
    while True:
        model = client.plugins.knn.get_model(model_id=model_id)
        if model["state"] != "training" or time.monotonic() > deadline:
            return model
        time.sleep(0.05)


@pytest.mark.parametrize("encoder", [None, {"name": "pq", "parameters": {"m": 4, "code_size": 8}}])
def test_model_lifecycle(client: OpenSearch, index_name: str, http: RawHttp, encoder: dict | None) -> None:
    train_index, target = f"{index_name}-train", f"{index_name}-target"
    client.indices.delete(index=[train_index, target], ignore_unavailable=True)
    data = _vectors(600, seed=2)
    _load(client, train_index, data, {"type": "knn_vector", "dimension": DIM})
    model_id = f"model-{index_name}"[:60]
    params = {"nlist": 8, "nprobes": 8, **({"encoder": encoder} if encoder else {})}
    requests_before = _node(client)["training_requests"]
    body = {
        "training_index": train_index,
        "training_field": "vec",
        "dimension": DIM,
        "description": "test model",
        "method": {"name": "ivf", "engine": "faiss", "space_type": "l2", "parameters": params},
    }
    assert client.plugins.knn.train_model(model_id=model_id, body=body) == {"model_id": model_id}
    model = _wait_model(client, model_id)
    assert model["state"] == "created", model
    assert model["model_blob"] and model["dimension"] == DIM and model["space_type"] == "l2"
    assert model["engine"] == "faiss" and model["model_definition"]["name"] == "ivf"
    assert model["timestamp"].endswith("Z") and model["description"] == "test model" and model["error"] == ""
    assert _node(client)["training_requests"] == requests_before + 1
    # Searchable in the system index.
    found = client.plugins.knn.search_models(
        body={"query": {"term": {"model_id": model_id}}}, params={"_source_excludes": "model_blob"}
    )
    assert found["hits"]["total"]["value"] == 1
    assert "model_blob" not in found["hits"]["hits"][0]["_source"]
    # A mapping using the model; dimension and space come from it.
    client.indices.create(
        index=target,
        body={
            "settings": {"index.knn": True},
            "mappings": {"properties": {"vec": {"type": "knn_vector", "model_id": model_id}}},
        },
    )
    docs = _vectors(300, seed=3)
    helpers.bulk(
        client,
        [{"_index": target, "_id": str(i), "_source": {"vec": v.tolist()}} for i, v in enumerate(docs)],
        refresh=True,
    )
    client.plugins.knn.warmup(index=target)  # segments get their copy of the trained index
    assert _node(client)["indices_in_cache"][target]["graph_count"] >= 1
    hits = _knn(client, target, docs[7], k=5)
    exact = np.argsort(((docs - docs[7]) ** 2).sum(axis=1))[:5]
    assert hits[0]["_id"] == "7"
    assert len({h["_id"] for h in hits} & {str(i) for i in exact}) >= (3 if encoder else 5)  # PQ codes are lossy
    # Deleting a model in use is refused; after the index is gone it works.
    with pytest.raises(ConflictError) as refused:
        client.plugins.knn.delete_model(model_id=model_id)
    assert target in str(refused.value.info)
    client.indices.delete(index=target)
    assert client.plugins.knn.delete_model(model_id=model_id) == {"model_id": model_id, "result": "deleted"}
    with pytest.raises(NotFoundError):
        client.plugins.knn.get_model(model_id=model_id)
    client.indices.delete(index=train_index)


def test_training_validation_and_failure(client: OpenSearch, index_name: str, http: RawHttp) -> None:
    data = _vectors(20)
    _load(client, index_name, data, {"type": "knn_vector", "dimension": DIM})
    method = {"name": "ivf", "engine": "faiss", "parameters": {"nlist": 64}}
    base = {"training_index": index_name, "training_field": "vec", "dimension": DIM, "method": method}
    with pytest.raises(RequestError) as bad:
        client.plugins.knn.train_model(body={**base, "bogus": 1})
    assert 'Unable to parse token. "bogus" is not a valid parameter.' in str(bad.value.info)
    with pytest.raises(RequestError):
        client.plugins.knn.train_model(body={k: v for k, v in base.items() if k != "training_field"})
    with pytest.raises(RequestError) as bad:
        client.plugins.knn.train_model(body={**base, "dimension": DIM + 1})
    assert "different from dimension" in str(bad.value.info)
    # Too few points for 64 lists: the model ends up failed, with the reason.
    errors_before = _node(client)["training_errors"]
    model_id = client.plugins.knn.train_model(body=base)["model_id"]
    model = _wait_model(client, model_id)
    assert model["state"] == "failed" and "nlist" in model["error"]
    assert _node(client)["training_errors"] == errors_before + 1
    _status, body = http.request(
        "PUT",
        f"/{index_name}-uses-failed",
        {
            "settings": {"index.knn": True},
            "mappings": {"properties": {"vec": {"type": "knn_vector", "model_id": model_id}}},
        },
    )
    assert_error(body, 400, "mapper_parsing_exception", "is not created")
    _status, body = http.request(
        "PUT",
        f"/{index_name}-uses-missing",
        {
            "settings": {"index.knn": True},
            "mappings": {"properties": {"vec": {"type": "knn_vector", "model_id": "nope"}}},
        },
    )
    assert_error(body, 400, "mapper_parsing_exception", "does not exist")
    assert client.plugins.knn.delete_model(model_id=model_id)["result"] == "deleted"
