"""Exact k-NN through scripts: the plugin's `knn_score` (every space, validation words, index.knn false, binary
hamming) and the Painless vector functions composed in the forms the documentation uses, checked against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from opensearchpy import OpenSearch, helpers

from tests.conftest import RawHttp, assert_error

DIM = 6
N = 60


def _data(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, size=(N, DIM)).astype(np.float32)


def _setup(client: OpenSearch, name: str, *, knn: bool = False, space: str = "l2", data: np.ndarray | None = None):
    data = _data() if data is None else data
    client.indices.create(
        index=name,
        body={
            "settings": {"index.knn": knn},
            "mappings": {
                "properties": {
                    "vec": {"type": "knn_vector", "dimension": DIM, "space_type": space},
                    "color": {"type": "keyword"},
                    "n": {"type": "integer"},
                }
            },
        },
    )
    actions = [
        {"_index": name, "_id": str(i), "_source": {"vec": v.tolist(), "color": "red" if i % 2 else "blue", "n": i}}
        for i, v in enumerate(data)
    ]
    helpers.bulk(client, actions, refresh=True)
    return data


def _script_search(client: OpenSearch, name: str, script: dict, query: dict | None = None, size: int = N, **extra):
    body = {
        "size": size,
        "query": {"script_score": {"query": query or {"match_all": {}}, "script": script, **extra}},
    }
    return client.search(index=name, body=body)["hits"]


def _knn_script(field: str, q: np.ndarray | list, space: str) -> dict:
    return {
        "lang": "knn",
        "source": "knn_score",
        "params": {"field": field, "query_value": [float(x) for x in q], "space_type": space},
    }


def _scores(hits: dict) -> dict[int, float]:
    return {int(h["_id"]): h["_score"] for h in hits["hits"]}


def _expected_knn(space: str, x: np.ndarray, q: np.ndarray) -> np.ndarray:
    x, q = x.astype(np.float64), q.astype(np.float64)
    if space == "l2":
        return 1 / (1 + ((x - q) ** 2).sum(axis=1))
    if space == "l1":
        return 1 / (1 + np.abs(x - q).sum(axis=1))
    if space == "linf":
        return 1 / (1 + np.abs(x - q).max(axis=1))
    if space == "innerproduct":
        ip = x @ q
        return np.where(ip <= 0, 1 / (1 - ip), ip + 1)
    cos = x @ q / (np.linalg.norm(x, axis=1) * np.linalg.norm(q))
    return np.maximum((1 + cos) / 2, 0)


@pytest.mark.parametrize("space", ["l2", "l1", "linf", "innerproduct", "cosinesimil"])
def test_knn_score_matches_numpy_for_each_space(client: OpenSearch, index_name: str, space: str) -> None:
    data = _setup(client, index_name)  # index.knn false: the script still works
    q = np.random.default_rng(11).normal(0, 1, DIM).astype(np.float32)
    hits = _script_search(client, index_name, _knn_script("vec", q, space))
    assert hits["total"]["value"] == N
    got = _scores(hits)
    expected = _expected_knn(space, data, q)
    for i, score in got.items():
        assert score == pytest.approx(expected[i], rel=1e-5)
    # Ordered best first.
    assert [int(h["_id"]) for h in hits["hits"]][:5] == list(np.argsort(-expected, kind="stable")[:5])


def test_knn_score_filter_min_score_and_boost(client: OpenSearch, index_name: str) -> None:
    data = _setup(client, index_name, knn=True)
    q = data[4]
    script = _knn_script("vec", q, "l2")
    hits = _script_search(client, index_name, script, query={"term": {"color": "blue"}}, size=5, boost=2.0)
    ids = [int(h["_id"]) for h in hits["hits"]]
    assert ids[0] == 4 and all(i % 2 == 0 for i in ids)
    assert hits["hits"][0]["_score"] == pytest.approx(2.0)
    expected = _expected_knn("l2", data, q)
    threshold = float(np.sort(expected)[-3])
    hits = _script_search(client, index_name, script, min_score=threshold)
    assert hits["total"]["value"] == 3
    # Composes with bool like any query.
    body = {
        "query": {
            "bool": {
                "must": [{"script_score": {"query": {"match_all": {}}, "script": script}}],
                "filter": [{"range": {"n": {"lt": 10}}}],
            }
        },
        "size": 20,
    }
    got = client.search(index=index_name, body=body)["hits"]
    assert got["total"]["value"] == 10


def test_knn_score_validation_errors(client: OpenSearch, index_name: str, http: RawHttp) -> None:
    _setup(client, index_name)
    base = {"field": "vec", "query_value": [1.0] * DIM, "space_type": "l2"}
    for missing in ("field", "space_type", "query_value"):
        params = {k: v for k, v in base.items() if k != missing}
        script = {"lang": "knn", "source": "knn_score", "params": params}
        _status, body = http.request(
            "POST",
            f"/{index_name}/_search",
            {"query": {"script_score": {"query": {"match_all": {}}, "script": script}}},
        )
        assert_error(body, 400, "illegal_argument_exception", f"Missing parameter [{missing}]")
    cases = [
        ({**base, "query_value": [1.0, 2.0]}, "query vector dimension mismatch. Expected: 6, Given: 2"),
        ({**base, "space_type": "nope"}, "Unable to find space: nope"),
        ({**base, "field": "color"}, "Incompatible field_type for l2 space"),
    ]
    for params, reason in cases:
        script = {"lang": "knn", "source": "knn_score", "params": params}
        _status, body = http.request(
            "POST",
            f"/{index_name}/_search",
            {"query": {"script_score": {"query": {"match_all": {}}, "script": script}}},
        )
        assert_error(body, 400, "illegal_argument_exception", reason)
    script = {"lang": "knn", "source": "other", "params": base}
    _status, body = http.request(
        "POST", f"/{index_name}/_search", {"query": {"script_score": {"query": {"match_all": {}}, "script": script}}}
    )
    assert_error(body, 400, "illegal_argument_exception", "Unknown script name other")
    _status, body = http.request("POST", f"/{index_name}/_search", {"query": {"script_score": {"script": script}}})
    assert_error(body, 400, "parsing_exception", "[script_score] requires 'query' field")


def test_hamming_on_binary_vectors(client: OpenSearch, index_name: str) -> None:
    rng = np.random.default_rng(5)
    data = rng.integers(-128, 128, size=(20, 2), dtype=np.int64)
    client.indices.create(
        index=index_name,
        body={
            "settings": {"index.knn": True},
            "mappings": {
                "properties": {
                    "vec": {"type": "knn_vector", "dimension": 16, "data_type": "binary", "space_type": "hamming"}
                }
            },
        },
    )
    helpers.bulk(
        client,
        [{"_index": index_name, "_id": str(i), "_source": {"vec": v.tolist()}} for i, v in enumerate(data)],
        refresh=True,
    )
    q = data[3]
    bits = np.bitwise_count(np.bitwise_xor(data.astype(np.int8).view(np.uint8), q.astype(np.int8).view(np.uint8)))
    expected = 1 / (1 + bits.sum(axis=1))
    for space in ("hamming", "hammingbit"):
        hits = _script_search(client, index_name, _knn_script("vec", q.tolist(), space), size=20)
        for i, score in _scores(hits).items():
            assert score == pytest.approx(expected[i], rel=1e-6)
    painless = {
        "source": "1.0 / (1 + hamming(params.query_value, doc[params.field]))",
        "params": {"field": "vec", "query_value": q.tolist()},
    }
    hits = _script_search(client, index_name, painless, size=20)
    assert _scores(hits)[3] == pytest.approx(1.0)
    for i, score in _scores(hits).items():
        assert score == pytest.approx(expected[i], rel=1e-6)


_PAINLESS = [
    (
        "1 / (1 + l2Squared(params.query_value, doc[params.field]))",
        lambda x, q, s: 1 / (1 + ((x - q) ** 2).sum(axis=1)),
    ),
    ("1 / (1 + l1Norm(params.query_value, doc[params.field]))", lambda x, q, s: 1 / (1 + np.abs(x - q).sum(axis=1))),
    ("1 / (1 + lInfNorm(params.query_value, doc[params.field]))", lambda x, q, s: 1 / (1 + np.abs(x - q).max(axis=1))),
    ("float x = 1; x", None),
    (
        "1.0 + cosineSimilarity(params.query_value, doc[params.field])",
        lambda x, q, s: 1 + x @ q / (np.linalg.norm(x, axis=1) * np.linalg.norm(q)),
    ),
    (
        "1.0 + cosineSimilarity(params.query_value, doc[params.field], params.norm)",
        lambda x, q, s: 1 + x @ q / (np.linalg.norm(x, axis=1) * 2.0),
    ),
    ("double ip = innerProduct(params.query_value, doc[params.field]); ip", None),
    (
        "innerProduct(params.query_value, doc[params.field]) > 0 ? innerProduct(params.query_value, doc['vec']) + 1 "
        ": 1 / (1 - innerProduct(params.query_value, doc[params.field]))",
        lambda x, q, s: np.where(x @ q > 0, x @ q + 1, 1 / (1 - x @ q)),
    ),
    (
        "_score * 0 + Math.sqrt(Math.log(2 + l2Squared(params.query_value, doc[params.field])))",
        lambda x, q, s: np.sqrt(np.log(2 + ((x - q) ** 2).sum(axis=1))),
    ),
    (
        "return doc[params.field].size() == 0 ? 0 : 10 - Math.min(lInfNorm(params.query_value, doc[params.field]), 9);",
        lambda x, q, s: 10 - np.minimum(np.abs(x - q).max(axis=1), 9),
    ),
]


def test_painless_vector_functions_match_numpy(client: OpenSearch, index_name: str, http: RawHttp) -> None:
    data = _setup(client, index_name).astype(np.float64)
    q = np.linspace(-1, 1, DIM)
    params = {"field": "vec", "query_value": q.tolist(), "norm": 2.0}
    for source, formula in _PAINLESS:
        script = {"lang": "painless", "source": source, "params": params}
        if formula is None:
            _status, body = http.request(
                "POST",
                f"/{index_name}/_search",
                {"query": {"script_score": {"query": {"match_all": {}}, "script": script}}},
            )
            assert_error(body, 400, "script_exception", "compile error")
            continue
        hits = _script_search(client, index_name, script)
        expected = formula(data, q, None)
        for i, score in _scores(hits).items():
            assert score == pytest.approx(expected[i], rel=1e-5), source


def test_painless_missing_vectors_and_guards(client: OpenSearch, index_name: str, http: RawHttp) -> None:
    data = _setup(client, index_name)
    client.index(index=index_name, id="novec", body={"color": "blue", "n": 100}, refresh=True)
    params = {"field": "vec", "query_value": data[0].tolist()}
    guarded = {
        "source": "doc[params.field].size() == 0 ? 0 : 1 / (1 + l2Squared(params.query_value, doc[params.field]))",
        "params": params,
    }
    hits = _script_search(client, index_name, guarded, size=N + 1)
    scores = {h["_id"]: h["_score"] for h in hits["hits"]}
    assert scores["novec"] == 0.0 and scores["0"] == pytest.approx(1.0)
    bare = {"source": "1 / (1 + l2Squared(params.query_value, doc[params.field]))", "params": params}
    _status, body = http.request(
        "POST", f"/{index_name}/_search", {"query": {"script_score": {"query": {"match_all": {}}, "script": bare}}}
    )
    assert _status == 400 and body["error"]["caused_by"]["type"] == "illegal_state_exception"
    # The knn_score script gives documents without a vector 0.
    hits = _script_search(client, index_name, _knn_script("vec", data[0], "l2"), size=N + 1)
    assert {h["_id"]: h["_score"] for h in hits["hits"]}["novec"] == 0.0


def test_painless_unsupported_constructs(client: OpenSearch, index_name: str, http: RawHttp) -> None:
    _setup(client, index_name)
    for source, word in [
        ("for (int i = 0; i < 2; i++) {}", "unsupported construct [for]"),
        ("1 +", "unexpected token [end of script]"),
        ("(int) 3", "cast to int"),
        ("foo(1)", "unsupported function [foo]"),
        ("Math.random()", "Math.random"),
        ("doc['color'].value", "only knn_vector fields"),
    ]:
        script = {"source": source, "params": {}}
        _status, body = http.request(
            "POST",
            f"/{index_name}/_search",
            {"query": {"script_score": {"query": {"match_all": {}}, "script": script}}},
        )
        assert _status == 400, (source, body)
        text = str(body["error"])
        assert word in text, (source, body)
    _status, body = http.request(
        "POST",
        f"/{index_name}/_search",
        {"query": {"script_score": {"query": {"match_all": {}}, "script": {"source": "0 - 1"}}}},
    )
    assert_error(body, 400, "illegal_argument_exception", "Must be a non-negative score")
