"""The k-NN plugin surface: knn_vector mappings, vector documents, the `knn` query and its scores, filters,
radial search, updates and deletes, recall of the HNSW segments, and persistence across restarts and kill -9."""

from __future__ import annotations

import numpy as np
import pytest
from opensearchpy import OpenSearch, helpers

from tests.conftest import RawHttp, ServerProcess, assert_error

# ---- helpers -------------------------------------------------------------------------------------------------


def _create(
    client: OpenSearch,
    name: str,
    dim: int,
    *,
    space: str = "l2",
    knn: bool = True,
    extra: dict | None = None,
    settings: dict | None = None,
    data_type: str = "float",
) -> None:
    field = {"type": "knn_vector", "dimension": dim, "space_type": space}
    if data_type != "float":
        field["data_type"] = data_type
    body = {
        "settings": {"index.knn": knn, **(settings or {})},
        "mappings": {"properties": {"vec": field, **(extra or {})}},
    }
    client.indices.create(index=name, body=body)


def _load(client: OpenSearch, name: str, vectors: np.ndarray, **fields: list) -> None:
    actions = []
    for i, vec in enumerate(vectors):
        doc = {"vec": vec.tolist(), **{k: v[i] for k, v in fields.items()}}
        actions.append({"_index": name, "_id": str(i), "_source": doc})
    helpers.bulk(client, actions, refresh=True, chunk_size=2000)


def _knn(
    client: OpenSearch, name: str, query: np.ndarray | list, k: int = 10, size: int | None = None, **options
) -> list[dict]:
    body = {"size": size or k, "query": {"knn": {"vec": {"vector": list(map(float, query)), "k": k, **options}}}}
    return client.search(index=name, body=body)["hits"]["hits"]


def _clustered(n: int, dim: int, seed: int = 7, clusters: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 4, size=(clusters, dim))
    return (centers[rng.integers(0, clusters, n)] + rng.normal(0, 1, size=(n, dim))).astype(np.float32)


def _expected(space: str, data: np.ndarray, q: np.ndarray) -> np.ndarray:
    """OpenSearch's scores (spec §5.4) by brute force in float64."""
    x, y = data.astype(np.float64), q.astype(np.float64)
    if space == "l2":
        return 1 / (1 + ((x - y) ** 2).sum(axis=1))
    if space == "l1":
        return 1 / (1 + np.abs(x - y).sum(axis=1))
    if space == "linf":
        return 1 / (1 + np.abs(x - y).max(axis=1))
    if space == "cosinesimil":
        cos = x @ y / (np.linalg.norm(x, axis=1) * np.linalg.norm(y))
        return (1 + cos) / 2
    if space == "innerproduct":
        ip = x @ y
        return np.where(ip > 0, ip + 1, 1 / (1 - ip))
    raise AssertionError(space)


def _check_top(hits: list[dict], expected: np.ndarray, k: int, allowed: np.ndarray | None = None) -> None:
    scores = expected.copy()
    if allowed is not None:
        scores[~allowed] = -np.inf
    order = np.argsort(-scores, kind="stable")[:k]
    assert len(hits) == k
    got = np.array([h["_score"] for h in hits])
    np.testing.assert_allclose(got, scores[order], rtol=2e-5)
    # the ids are the true top k (up to ties at the cut, which random data doesn't have)
    assert {int(h["_id"]) for h in hits} == set(order.tolist())


# ---- mappings and documents ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "settings", "reason"),
    [
        ({"type": "knn_vector"}, {"index.knn": True}, "Dimension value missing for vector: vec"),
        ({"type": "knn_vector", "dimension": 20000}, {"index.knn": True}, "Dimension value cannot be greater"),
        (
            {"type": "knn_vector", "dimension": 4, "space_type": "nope"},
            {"index.knn": True},
            "Unable to find space: nope",
        ),
        (
            {"type": "knn_vector", "dimension": 4, "method": {"name": "hnsw", "engine": "elastic"}},
            {"index.knn": True},
            "Invalid engine type: elastic",
        ),
        (
            {"type": "knn_vector", "dimension": 4, "method": {"name": "hnsw", "engine": "faiss"}},
            {"index.knn": False},
            "Cannot set modelId or method parameters when index.knn setting is false",
        ),
        (
            {"type": "knn_vector", "dimension": 4, "space_type": "l2", "method": {"name": "hnsw", "space_type": "l1"}},
            {"index.knn": True},
            'Space type in "method" and top level space type should be same',
        ),
        (
            {"type": "knn_vector", "dimension": 12, "data_type": "binary"},
            {"index.knn": True},
            "Dimension should be multiply of 8",
        ),
        (
            {"type": "knn_vector", "dimension": 16, "data_type": "binary", "space_type": "l2"},
            {"index.knn": True},
            "Space type [l2] is not supported with [binary] data type",
        ),
    ],
)
def test_mapping_validation(http: RawHttp, index_name: str, field: dict, settings: dict, reason: str) -> None:
    status, body = http.request(
        "PUT", f"/{index_name}", {"settings": settings, "mappings": {"properties": {"vec": field}}}
    )
    assert_error(body, 400, "mapper_parsing_exception", reason)
    status, _ = http.request("HEAD", f"/{index_name}")
    assert status == 404


def test_mapping_echoes_what_was_given(client: OpenSearch, index_name: str) -> None:
    field = {
        "type": "knn_vector",
        "dimension": 3,
        "method": {
            "name": "hnsw",
            "engine": "lucene",
            "space_type": "l2",
            "parameters": {"m": 8, "ef_construction": 64},
        },
    }
    client.indices.create(
        index=index_name, body={"settings": {"index": {"knn": True}}, "mappings": {"properties": {"vec": field}}}
    )
    mapping = client.indices.get_mapping(index=index_name)[index_name]["mappings"]
    assert mapping["properties"]["vec"] == field


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([1.0, 2.0], "Vector dimension mismatch. Expected: 3, Given: 2"),
        (["a", "b", "c"], "KNN vector values cannot be NaN or Infinity, or non numbers"),
        ([1, 2, 300], "byte range [-128, 127]"),
        ([1.5, 2, 3], "floats instead of byte integers"),
    ],
)
def test_bad_document_vectors_write_nothing(
    client: OpenSearch, http: RawHttp, index_name: str, value: list, reason: str
) -> None:
    _create(client, index_name, 3, data_type="byte")
    _, body = http.request("PUT", f"/{index_name}/_doc/1?refresh=true", {"vec": value})
    assert_error(body, 400, "mapper_parsing_exception", reason)
    assert client.search(index=index_name)["hits"]["total"]["value"] == 0
    assert _knn(client, index_name, [1, 2, 3], k=5) == []


def test_zero_vector_refused_for_cosine(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    _create(client, index_name, 2, space="cosinesimil")
    _, body = http.request("PUT", f"/{index_name}/_doc/1", {"vec": [0, 0]})
    assert_error(body, 400, "mapper_parsing_exception", "zero vector is not supported")


# ---- query validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("knn", "error", "reason"),
    [
        ({"vec": {"vector": [1, 2, 3], "k": 0}}, "illegal_argument_exception", "[knn] requires k > 0"),
        ({"vec": {"vector": [1, 2, 3], "k": 10001}}, "illegal_argument_exception", "[knn] requires k <= 10000"),
        ({"vec": {"vector": [], "k": 1}}, "illegal_argument_exception", "requires to be non-null and non-empty"),
        ({"vec": {"vector": [1, 2, 3]}}, "illegal_argument_exception", "exactly one of k, distance or score"),
        ({"vec": {"vector": [1, 2, 3], "k": 2, "min_score": 0.5}}, "illegal_argument_exception", "exactly one of k"),
        (
            {"vec": {"vector": [1, 2], "k": 2}},
            "illegal_argument_exception",
            "Query vector has invalid dimension: 2. Dimension should be: 3",
        ),
        (
            {"title": {"vector": [1, 2, 3], "k": 2}},
            "illegal_argument_exception",
            "Field 'title' is not knn_vector type.",
        ),
        (
            {"vec": {"vector": [1, 2, 3], "min_score": 1.5}},
            "illegal_argument_exception",
            "[knn] requires score to be in the range [0, 1] for space type: l2",
        ),
        (
            {"vec": {"vector": [1, 2, 3], "k": 1}, "other": {"vector": [1], "k": 1}},
            "parsing_exception",
            "[knn] query doesn't support multiple fields",
        ),
    ],
)
def test_query_validation(
    client: OpenSearch, http: RawHttp, index_name: str, knn: dict, error: str, reason: str
) -> None:
    _create(client, index_name, 3, extra={"title": {"type": "text"}})
    _, body = http.request("POST", f"/{index_name}/_search", {"query": {"knn": knn}})
    assert_error(body, 400, error, reason)


# ---- results and scores ----------------------------------------------------------------------------------


@pytest.mark.parametrize("space", ["l2", "cosinesimil", "innerproduct", "l1", "linf"])
def test_scores_match_brute_force(client: OpenSearch, index_name: str, space: str) -> None:
    data = _clustered(300, 8, seed=hash(space) % 1000)
    _create(client, index_name, 8, space=space)
    _load(client, index_name, data)
    rng = np.random.default_rng(1)
    for q in rng.normal(0, 4, size=(3, 8)).astype(np.float32):
        _check_top(_knn(client, index_name, q, k=10), _expected(space, data, q), 10)


def test_byte_vectors(client: OpenSearch, index_name: str) -> None:
    rng = np.random.default_rng(3)
    data = rng.integers(-128, 128, size=(200, 6)).astype(np.float32)
    _create(client, index_name, 6, data_type="byte")
    _load(client, index_name, data.astype(int))
    q = rng.integers(-128, 128, size=6)
    _check_top(_knn(client, index_name, q, k=5), _expected("l2", data, q.astype(np.float32)), 5)


def test_binary_vectors_hamming(client: OpenSearch, index_name: str) -> None:
    rng = np.random.default_rng(4)
    data = rng.integers(-128, 128, size=(200, 2))  # 16 bits per vector
    _create(client, index_name, 16, space="hamming", data_type="binary")
    _load(client, index_name, data)
    q = rng.integers(-128, 128, size=2)
    bits = np.unpackbits(data.astype(np.int8).view(np.uint8), axis=1)
    qbits = np.unpackbits(q.astype(np.int8).view(np.uint8))
    expected = 1 / (1 + (bits != qbits).sum(axis=1))
    hits = _knn(client, index_name, q, k=10)
    assert len(hits) == 10
    np.testing.assert_allclose([h["_score"] for h in hits], np.sort(expected)[::-1][:10], rtol=1e-6)
    for h in hits:
        assert h["_score"] == pytest.approx(expected[int(h["_id"])])


def test_paging_source_and_aggs(client: OpenSearch, index_name: str) -> None:
    data = _clustered(100, 4)
    _create(client, index_name, 4, extra={"tag": {"type": "keyword"}})
    _load(client, index_name, data, tag=["even" if i % 2 == 0 else "odd" for i in range(100)])
    q = data[0]
    body = {
        "from": 3,
        "size": 4,
        "_source": ["tag"],
        "query": {"knn": {"vec": {"vector": q.tolist(), "k": 10}}},
        "aggs": {"tags": {"terms": {"field": "tag"}}},
    }
    resp = client.search(index=index_name, body=body)
    top = np.argsort(-_expected("l2", data, q), kind="stable")[:10]
    assert [int(h["_id"]) for h in resp["hits"]["hits"]] == top[3:7].tolist()
    assert resp["hits"]["total"]["value"] == 10
    assert all(set(h["_source"]) == {"tag"} for h in resp["hits"]["hits"])
    counts = {b["key"]: b["doc_count"] for b in resp["aggregations"]["tags"]["buckets"]}
    assert sum(counts.values()) == 10


def test_filter_selectivity(client: OpenSearch, index_name: str) -> None:
    n = 3000
    data = _clustered(n, 16, seed=11)
    bucket = np.arange(n) % 100
    _create(
        client,
        index_name,
        16,
        extra={"bucket": {"type": "integer"}},
        settings={"index.knn.advanced.approximate_threshold": 0},
    )
    _load(client, index_name, data, bucket=bucket.tolist())
    rng = np.random.default_rng(5)
    for filt, allowed in [
        ({"range": {"bucket": {"gte": 0, "lt": 10}}}, bucket < 10),  # 10%
        ({"term": {"bucket": 42}}, bucket == 42),  # 1%: 30 documents
    ]:
        for q in data[rng.integers(0, n, 3)]:
            hits = _knn(client, index_name, q, k=10, filter=filt)
            assert all(allowed[int(h["_id"])] for h in hits)
            _check_top(hits, _expected("l2", data, q), 10, allowed)
    # fewer matches than k: every match comes back
    hits = _knn(client, index_name, data[0], k=50, filter={"term": {"bucket": 7}})
    assert sorted(int(h["_id"]) for h in hits) == np.flatnonzero(bucket == 7).tolist()


def test_knn_inside_bool_sums_scores(client: OpenSearch, index_name: str) -> None:
    data = _clustered(50, 4)
    words = ["apple pie" if i % 3 == 0 else "banana bread" for i in range(50)]
    _create(client, index_name, 4, extra={"text": {"type": "text"}})
    _load(client, index_name, data, text=words)
    knn = {"knn": {"vec": {"vector": data[1].tolist(), "k": 10}}}
    match = {"match": {"text": "apple"}}
    knn_scores = {h["_id"]: h["_score"] for h in client.search(index=index_name, body={"query": knn})["hits"]["hits"]}
    bm25 = {
        h["_id"]: h["_score"]
        for h in client.search(index=index_name, body={"size": 50, "query": match})["hits"]["hits"]
    }
    resp = client.search(index=index_name, body={"size": 50, "query": {"bool": {"should": [knn, match]}}})
    hits = {h["_id"]: h["_score"] for h in resp["hits"]["hits"]}
    assert set(hits) == set(knn_scores) | set(bm25)
    for doc_id, score in hits.items():
        assert score == pytest.approx(knn_scores.get(doc_id, 0) + bm25.get(doc_id, 0), rel=1e-5)
    # knn as a filter clause restricts a match without scoring
    resp = client.search(index=index_name, body={"size": 50, "query": {"bool": {"must": [match], "filter": [knn]}}})
    assert {h["_id"] for h in resp["hits"]["hits"]} == set(knn_scores) & set(bm25)
    for h in resp["hits"]["hits"]:
        assert h["_score"] == pytest.approx(bm25[h["_id"]], rel=1e-5)


def test_radial_search(client: OpenSearch, index_name: str) -> None:
    data = _clustered(400, 8, seed=21)
    _create(client, index_name, 8)
    _load(client, index_name, data)
    q = data[5]
    d2 = ((data.astype(np.float64) - q) ** 2).sum(axis=1)
    radius = float(np.sort(d2)[25])
    body = {"size": 100, "query": {"knn": {"vec": {"vector": q.tolist(), "max_distance": radius}}}}
    hits = client.search(index=index_name, body=body)["hits"]["hits"]
    assert {int(h["_id"]) for h in hits} == set(np.flatnonzero(d2 <= radius).tolist())
    body = {"size": 100, "query": {"knn": {"vec": {"vector": q.tolist(), "min_score": 1 / (1 + radius)}}}}
    hits = client.search(index=index_name, body=body)["hits"]["hits"]
    assert {int(h["_id"]) for h in hits} == set(np.flatnonzero(1 / (1 + d2) >= np.float32(1 / (1 + radius))).tolist())
    assert all(h["_score"] >= 1 / (1 + radius) - 1e-6 for h in hits)


def test_updates_and_deletes_visible_after_refresh(client: OpenSearch, index_name: str) -> None:
    data = _clustered(200, 4, seed=2)
    _create(client, index_name, 4)
    _load(client, index_name, data)
    q = data[10]
    assert _knn(client, index_name, q, k=1)[0]["_id"] == "10"
    client.delete(index=index_name, id="10", refresh=True)
    hits = _knn(client, index_name, q, k=20)
    assert "10" not in {h["_id"] for h in hits} and len(hits) == 20
    far = (q + 100).tolist()
    client.index(index=index_name, id="11", body={"vec": far}, refresh=True)
    hits = _knn(client, index_name, far, k=3)
    assert hits[0]["_id"] == "11" and hits[0]["_score"] == pytest.approx(1.0)
    assert sum(h["_id"] == "11" for h in _knn(client, index_name, q, k=200)) == 1  # no stale copy
    client.update(index=index_name, id="11", body={"doc": {"vec": q.tolist()}}, refresh=True)
    assert _knn(client, index_name, q, k=1)[0]["_id"] == "11"
    assert _knn(client, index_name, far, k=1)[0]["_id"] != "11"
    client.index(index=index_name, id="12", body={"other": 1}, refresh=True)  # the vector removed
    assert "12" not in {h["_id"] for h in _knn(client, index_name, q, k=200)}


def test_recall_of_hnsw_segments(client: OpenSearch, index_name: str) -> None:
    n, dim = 5000, 32
    data = _clustered(n, dim, seed=99, clusters=50)
    _create(client, index_name, dim, settings={"index.knn.advanced.approximate_threshold": 0})
    _load(client, index_name, data)
    rng = np.random.default_rng(8)
    queries = data[rng.integers(0, n, 30)] + rng.normal(0, 0.5, size=(30, dim)).astype(np.float32)
    found = 0
    for q in queries:
        truth = set(np.argsort(((data - q) ** 2).sum(axis=1))[:10].tolist())
        found += len(truth & {int(h["_id"]) for h in _knn(client, index_name, q, k=10)})
    assert found / (10 * len(queries)) >= 0.95


def test_ivf_method_and_method_parameters(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    method = {"name": "ivf", "engine": "faiss", "space_type": "l2", "parameters": {"nlist": 4, "nprobes": 2}}
    client.indices.create(
        index=index_name,
        body={
            "settings": {"index.knn": True, "index.knn.advanced.approximate_threshold": 0},
            "mappings": {"properties": {"vec": {"type": "knn_vector", "dimension": 8, "method": method}}},
        },
    )
    data = _clustered(1200, 8, seed=41)
    _load(client, index_name, data)
    for q in data[[1, 500]]:
        hits = _knn(client, index_name, q, k=10, method_parameters={"nprobes": 4, "ef_search": 50})
        _check_top(hits, _expected("l2", data, q), 10)
    _, body = http.request(
        "POST",
        f"/{index_name}/_search",
        {"query": {"knn": {"vec": {"vector": data[0].tolist(), "k": 3, "method_parameters": {"ef_search": 0}}}}},
    )
    assert_error(body, 400, "illegal_argument_exception", "ef_search")


def test_exact_search_without_index_knn(client: OpenSearch, index_name: str) -> None:
    data = _clustered(150, 5, seed=42)
    _create(client, index_name, 5, space="cosinesimil", knn=False)
    _load(client, index_name, data)
    _check_top(_knn(client, index_name, data[3], k=7), _expected("cosinesimil", data, data[3]), 7)


# ---- persistence -----------------------------------------------------------------------------------------


@pytest.fixture
def own_server(tmp_path) -> ServerProcess:
    proc = ServerProcess(tmp_path / "data").start()
    yield proc
    if proc.proc is not None and proc.proc.poll() is None:
        proc.stop()


def _client(proc: ServerProcess) -> OpenSearch:
    return OpenSearch(hosts=[{"host": proc.host, "port": proc.port}], use_ssl=False, timeout=60)


def test_results_survive_restart_and_kill(own_server: ServerProcess) -> None:
    client = _client(own_server)
    data = _clustered(1500, 8, seed=31)
    _create(client, "vecs", 8, settings={"index.knn.advanced.approximate_threshold": 0})
    _load(client, "vecs", data[:1200])
    client.delete(index="vecs", id="3", refresh=True)
    # The graph first (the merger builds it in the background): scores come from the path that found a document,
    # faiss's distances for the graph (as in OpenSearch), so both sides of the restart must search the same way.
    client.transport.perform_request("GET", "/_plugins/_knn/warmup/vecs")
    queries = data[[0, 3, 700]]
    before = [_knn(client, "vecs", q, k=10) for q in queries]
    own_server.stop()
    own_server.start()
    client = _client(own_server)
    after = [_knn(client, "vecs", q, k=10) for q in queries]
    assert [[(h["_id"], h["_score"]) for h in r] for r in after] == [
        [(h["_id"], h["_score"]) for h in r] for r in before
    ]
    # acknowledged but never refreshed writes, then kill -9
    client.indices.put_settings(index="vecs", body={"index.refresh_interval": "-1"})
    actions = [{"_index": "vecs", "_id": str(i), "_source": {"vec": data[i].tolist()}} for i in range(1200, 1500)]
    helpers.bulk(client, actions, refresh=False)
    client.delete(index="vecs", id="0")
    own_server.kill()
    own_server.start()
    client = _client(own_server)
    hits = _knn(client, "vecs", data[1400], k=1)
    assert hits[0]["_id"] == "1400" and hits[0]["_score"] == pytest.approx(1.0)
    assert "0" not in {h["_id"] for h in _knn(client, "vecs", data[0], k=20)}
    alive = np.ones(1500, dtype=bool)
    alive[[0, 3]] = False
    _check_top(_knn(client, "vecs", data[50], k=10), _expected("l2", data, data[50]), 10, alive)
