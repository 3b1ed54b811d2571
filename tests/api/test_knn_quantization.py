"""Quantized knn_vector fields: `mode: on_disk`, `compression_level` 2x-32x and the `sq` / `binary` / `pq` encoders
build quantized graphs, search them with oversampling and exact rescoring (recall against brute force, scores equal
to the §5.4 formula), report less graph memory than full precision, honour `rescore: false`, and survive a restart."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from opensearchpy import OpenSearch, helpers

from tests.conftest import RawHttp, ServerProcess, assert_error

DIM = 64
N = 2000


def _data(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1, size=(40, DIM))
    return (centers[rng.integers(0, 40, N)] + rng.normal(0, 0.5, size=(N, DIM))).astype(np.float32)


DATA = _data()
QUERIES = DATA[np.random.default_rng(5).integers(0, N, 20)] + np.random.default_rng(6).normal(
    0, 0.25, size=(20, DIM)
).astype(np.float32)


def _hnsw(encoder: dict | None = None, space: str = "l2") -> dict:
    params: dict = {"m": 16, "ef_construction": 100}
    if encoder is not None:
        params["encoder"] = encoder
    return {"name": "hnsw", "engine": "faiss", "space_type": space, "parameters": params}


def _create_and_load(client: OpenSearch, name: str, field: dict) -> None:
    client.indices.create(
        index=name,
        body={
            "settings": {"index.knn": True, "index.knn.advanced.approximate_threshold": 0},
            "mappings": {"properties": {"vec": {"type": "knn_vector", "dimension": DIM, **field}}},
        },
    )
    actions = [{"_index": name, "_id": str(i), "_source": {"vec": v.tolist()}} for i, v in enumerate(DATA)]
    helpers.bulk(client, actions, refresh=True, chunk_size=N)
    client.plugins.knn.warmup(index=name)  # builds the graph now (the merger would, a moment later)


def _search(client: OpenSearch, name: str, q: np.ndarray, k: int = 10, **options) -> list[dict]:
    body = {"size": k, "_source": False, "query": {"knn": {"vec": {"vector": q.tolist(), "k": k, **options}}}}
    return client.search(index=name, body=body)["hits"]["hits"]


def _exact_scores(q: np.ndarray, space: str = "l2") -> np.ndarray:
    x, y = DATA.astype(np.float64), q.astype(np.float64)
    if space == "cosinesimil":
        return (1 + x @ y / (np.linalg.norm(x, axis=1) * np.linalg.norm(y))) / 2
    return 1 / (1 + ((x - y) ** 2).sum(axis=1))


def _graph_kb(client: OpenSearch, name: str) -> int:
    [node] = client.plugins.knn.stats()["nodes"].values()
    return int(node["indices_in_cache"][name]["graph_memory_usage"])


@pytest.fixture(scope="module")
def flat_kb(client: OpenSearch) -> Iterator[int]:
    """Graph memory of the same data at full precision (HNSW flat)."""
    _create_and_load(client, "quant-flat-reference", {"method": _hnsw()})
    yield _graph_kb(client, "quant-flat-reference")
    client.indices.delete(index="quant-flat-reference")


CASES = {
    "2x": ({"compression_level": "2x", "method": _hnsw()}, 0.95),
    "4x": ({"compression_level": "4x", "method": _hnsw()}, 0.95),
    "on_disk-32x": ({"mode": "on_disk"}, 0.9),
    "on_disk-16x": ({"mode": "on_disk", "compression_level": "16x"}, 0.9),
    "on_disk-8x": ({"mode": "on_disk", "compression_level": "8x"}, 0.9),
    "in_memory-32x": ({"mode": "in_memory", "compression_level": "32x", "method": _hnsw()}, 0.9),
    "sq-fp16": ({"method": _hnsw({"name": "sq", "parameters": {"type": "fp16"}})}, 0.95),
    "sq-1bit": ({"method": _hnsw({"name": "sq", "parameters": {"bits": 1}})}, 0.9),
    "binary-2bit": ({"method": _hnsw({"name": "binary", "parameters": {"bits": 2}})}, 0.9),
    "pq": ({"method": _hnsw({"name": "pq", "parameters": {"m": 16, "code_size": 8}})}, 0.9),
    "ivf-pq": (
        {
            "method": {
                "name": "ivf",
                "engine": "faiss",
                "parameters": {"nlist": 8, "nprobes": 8, "encoder": {"name": "pq", "parameters": {"m": 16}}},
            }
        },
        0.9,
    ),
    "on_disk-cosine": ({"mode": "on_disk", "space_type": "cosinesimil"}, 0.9),
}


@pytest.mark.parametrize("case", list(CASES))
def test_quantized_recall_scores_and_memory(client: OpenSearch, index_name: str, flat_kb: int, case: str) -> None:
    field, min_recall = CASES[case]
    space = field.get("space_type", "l2")
    _create_and_load(client, index_name, field)
    found = 0
    for q in QUERIES:
        expected = _exact_scores(q, space)
        truth = set(np.argsort(-expected, kind="stable")[:10].tolist())
        hits = _search(client, index_name, q)
        assert len(hits) == 10
        found += len(truth & {int(h["_id"]) for h in hits})
        # rescored on the float32 vectors: every score is the exact formula of its document
        got = np.array([h["_score"] for h in hits])
        np.testing.assert_allclose(got, expected[[int(h["_id"]) for h in hits]], rtol=2e-5)
        assert np.all(np.diff(got) <= 0)
    assert found / (10 * len(QUERIES)) >= min_recall
    assert _graph_kb(client, index_name) < flat_kb


def test_rescore_false_returns_quantized_scores(client: OpenSearch, index_name: str) -> None:
    _create_and_load(client, index_name, {"mode": "on_disk"})
    q = QUERIES[0]
    plain = _search(client, index_name, q, rescore=False)
    # 32x: the graph measures Hamming distances between 1-bit codes, so each score is 1 / (1 + bits)
    bits = np.array([1 / h["_score"] - 1 for h in plain])
    np.testing.assert_allclose(bits, np.round(bits), atol=1e-3)
    rescored = _search(client, index_name, q, rescore={"oversample_factor": 3.0})
    expected = _exact_scores(q)
    np.testing.assert_allclose([h["_score"] for h in rescored], expected[[int(h["_id"]) for h in rescored]], rtol=2e-5)
    assert rescored[0]["_score"] > plain[0]["_score"]


@pytest.mark.parametrize(
    ("encoder", "reason"),
    [
        ({"name": "sq", "parameters": {"type": "int8"}}, "Invalid value for parameter [type]"),
        ({"name": "sq", "parameters": {"bits": 3}}, "Invalid value for parameter [bits]"),
        ({"name": "binary", "parameters": {"bits": 8}}, "Invalid value for parameter [bits]"),
        ({"name": "pq", "parameters": {"m": 7}}, "Invalid value for parameter [m]"),
        ({"name": "pq", "parameters": {"m": 8, "code_size": 4}}, "Code size must be 8 for HNSW PQ"),
        ({"name": "lvq"}, "Invalid encoder: lvq"),
    ],
)
def test_encoder_validation(http: RawHttp, index_name: str, encoder: dict, reason: str) -> None:
    body = {
        "settings": {"index.knn": True},
        "mappings": {"properties": {"vec": {"type": "knn_vector", "dimension": DIM, "method": _hnsw(encoder)}}},
    }
    _, answer = http.request("PUT", f"/{index_name}", body)
    assert_error(answer, 400, "mapper_parsing_exception", reason)


@pytest.fixture
def own_server(tmp_path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data").start()
    yield proc
    if proc.proc is not None and proc.proc.poll() is None:
        proc.stop()


def _client(proc: ServerProcess) -> OpenSearch:
    return OpenSearch(hosts=[{"host": proc.host, "port": proc.port}], use_ssl=False, timeout=60)


def test_on_disk_survives_restart(own_server: ServerProcess) -> None:
    client = _client(own_server)
    _create_and_load(client, "disk", {"mode": "on_disk", "compression_level": "16x"})
    before = [_search(client, "disk", q) for q in QUERIES[:5]]
    kb = _graph_kb(client, "disk")
    own_server.stop()
    own_server.start()
    client = _client(own_server)
    client.plugins.knn.warmup(index="disk")
    after = [_search(client, "disk", q) for q in QUERIES[:5]]
    assert [[(h["_id"], h["_score"]) for h in r] for r in after] == [
        [(h["_id"], h["_score"]) for h in r] for r in before
    ]
    assert _graph_kb(client, "disk") == kb
