"""k-NN on nested fields (chunked documents): every element's vector is indexed under its parent document; a `nested`
query around `knn` (or `neural`) returns k distinct parents scored by their best element (or by `score_mode` over
every element with `expand_nested_docs`), with `inner_hits` naming the elements; filters on parent fields, updates,
deletes, graphs and restarts; text_chunking -> text_embedding -> a neural nested query with a fake model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opensearchpy import OpenSearch, helpers

from tests.api.ml_support import PRETRAINED, embed, ml_server, model_zip, wait_task
from tests.conftest import RawHttp, ServerProcess, assert_error

# ---- helpers -------------------------------------------------------------------------------------------------


def _create(client: OpenSearch, name: str, dim: int, space: str = "l2", settings: dict | None = None) -> None:
    inner = {"my_vector": {"type": "knn_vector", "dimension": dim, "space_type": space}, "color": {"type": "keyword"}}
    body = {
        "settings": {"index.knn": True, **(settings or {})},
        "mappings": {
            "properties": {"parking": {"type": "boolean"}, "nested_field": {"type": "nested", "properties": inner}}
        },
    }
    client.indices.create(index=name, body=body)


def _docs(n: int, dim: int, seed: int) -> list[np.ndarray]:
    """n documents of 1 to 5 chunks each, clustered so that parents compete."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(8, dim))
    return [
        (centers[rng.integers(0, 8)] + rng.normal(0, 1, size=(int(rng.integers(1, 6)), dim))).astype(np.float32)
        for _ in range(n)
    ]


def _load(client: OpenSearch, name: str, docs: list[np.ndarray], first: int = 0) -> None:
    actions = [
        {
            "_index": name,
            "_id": str(first + i),
            "_source": {
                "parking": (first + i) % 2 == 0,
                "nested_field": [{"my_vector": v.tolist(), "color": f"c{j}"} for j, v in enumerate(chunks)],
            },
        }
        for i, chunks in enumerate(docs)
    ]
    helpers.bulk(client, actions, refresh=True)


def _scores(space: str, data: np.ndarray, q: np.ndarray) -> np.ndarray:
    """OpenSearch's scores (spec §5.4) by brute force in float64."""
    x, y = data.astype(np.float64), q.astype(np.float64)
    if space == "l2":
        return 1 / (1 + ((x - y) ** 2).sum(axis=1))
    if space == "cosinesimil":
        return (1 + x @ y / (np.linalg.norm(x, axis=1) * np.linalg.norm(y))) / 2
    ip = x @ y
    return np.where(ip > 0, ip + 1, 1 / (1 - ip))


def _best_parents(space: str, docs: dict[str, np.ndarray], q: np.ndarray, k: int) -> list[tuple[str, float]]:
    best = {doc_id: float(_scores(space, chunks, q).max()) for doc_id, chunks in docs.items()}
    return sorted(best.items(), key=lambda item: (-item[1], int(item[0])))[:k]


def _nested_knn(vector: Any, k: int, **options: Any) -> dict[str, Any]:
    knn = {"nested_field.my_vector": {"vector": [float(x) for x in vector], "k": k}}
    knn["nested_field.my_vector"].update(options.pop("knn", {}))
    return {"nested": {"path": "nested_field", "query": {"knn": knn}, **options}}


def _search(client: OpenSearch, name: str, query: dict[str, Any], size: int = 10, **body: Any) -> dict[str, Any]:
    return client.search(index=name, body={"size": size, "query": query, **body})


def _pairs(resp: dict[str, Any]) -> list[tuple[str, float]]:
    return [(h["_id"], h["_score"]) for h in resp["hits"]["hits"]]


def _assert_parents(resp: dict[str, Any], expected: list[tuple[str, float]]) -> None:
    got = _pairs(resp)
    assert [i for i, _ in got] == [i for i, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-5)


# ---- scores and k distinct parents -----------------------------------------------------------------------------


@pytest.mark.parametrize("space", ["l2", "cosinesimil", "innerproduct"])
def test_parents_score_by_their_best_element(client: OpenSearch, index_name: str, space: str) -> None:
    docs = _docs(60, 6, seed=3)
    _create(client, index_name, 6, space)
    _load(client, index_name, docs)
    by_id = {str(i): d for i, d in enumerate(docs)}
    for q in (docs[5][0], np.random.default_rng(9).normal(size=6).astype(np.float32)):
        resp = _search(client, index_name, _nested_knn(q, 10), size=10)
        _assert_parents(resp, _best_parents(space, by_id, q, 10))
        assert resp["hits"]["total"]["value"] == 10  # k distinct parents, not k elements


def test_the_documented_example_inner_hits_and_expand_nested_docs(client: OpenSearch, index_name: str) -> None:
    _create(client, index_name, 3)
    colors = [["blue", "yellow", "white"], ["red", "green", "black"]]
    for i, scale in enumerate((1, 10)):
        elements = [{"my_vector": [scale * j] * 3, "color": colors[i][j - 1]} for j in (1, 2, 3)]
        client.index(index=index_name, id=str(i + 1), body={"nested_field": elements}, refresh=True)
    # Even though the three nearest vectors are all in document 1, k=2 returns both documents.
    resp = _search(client, index_name, _nested_knn([1, 1, 1], 2))
    assert _pairs(resp) == [("1", 1.0), ("2", pytest.approx(0.0040983604))]
    assert resp["hits"]["hits"][0]["_source"]["nested_field"][0]["color"] == "blue"

    inner = {"_source": False, "fields": ["nested_field.color"]}
    resp = _search(client, index_name, _nested_knn([1, 1, 1], 2, inner_hits=inner), _source=False)
    first = resp["hits"]["hits"][0]
    assert "_source" not in first
    assert first["inner_hits"]["nested_field"]["hits"] == {
        "total": {"value": 1, "relation": "eq"},
        "max_score": 1.0,
        "hits": [
            {
                "_index": index_name,
                "_id": "1",
                "_nested": {"field": "nested_field", "offset": 0},
                "_score": 1.0,
                "fields": {"nested_field.color": ["blue"]},
            }
        ],
    }
    second = resp["hits"]["hits"][1]["inner_hits"]["nested_field"]["hits"]
    assert second["hits"][0]["fields"] == {"nested_field.color": ["red"]}

    # expand_nested_docs: every element scores; the parent takes score_mode over them (avg by default).
    expanded = _nested_knn([1, 1, 1], 2, knn={"expand_nested_docs": True}, inner_hits={"size": 5}, score_mode="max")
    resp = _search(client, index_name, expanded)
    inner_hits = resp["hits"]["hits"][0]["inner_hits"]["nested_field"]["hits"]
    assert inner_hits["total"]["value"] == 3
    assert [(h["_nested"]["offset"], h["_score"]) for h in inner_hits["hits"]] == [
        (0, 1.0),
        (1, 0.25),
        (2, pytest.approx(0.07692308)),
    ]
    assert inner_hits["hits"][1]["_source"] == {"my_vector": [2, 2, 2], "color": "yellow"}
    assert _pairs(resp)[0] == ("1", 1.0)
    for mode, want in (("avg", (1 + 0.25 + 1 / 13) / 3), ("min", 1 / 13), ("sum", 1 + 0.25 + 1 / 13), ("none", 0)):
        expanded["nested"]["score_mode"] = mode
        assert _search(client, index_name, expanded)["hits"]["hits"][0]["_score"] == pytest.approx(want, rel=1e-6)


def test_filter_on_parent_fields(client: OpenSearch, index_name: str) -> None:
    _create(client, index_name, 3)
    for i, scale in enumerate((1, 10, 100)):
        body = {"parking": i > 0, "nested_field": [{"my_vector": [scale * j] * 3} for j in (1, 2, 3)]}
        client.index(index=index_name, id=str(i + 1), body=body, refresh=True)
    query = _nested_knn([1, 1, 1], 3, knn={"filter": {"term": {"parking": True}}})
    assert _pairs(_search(client, index_name, query)) == [
        ("2", pytest.approx(0.0040983604)),
        ("3", pytest.approx(3.400898e-5)),
    ]
    # The same filter over many documents, against numpy.
    docs = _docs(80, 3, seed=11)
    _load(client, index_name, docs, first=10)
    q = docs[7][0]
    allowed = {str(10 + i): d for i, d in enumerate(docs) if (10 + i) % 2 == 0}
    resp = _search(client, index_name, _nested_knn(q, 5, knn={"filter": {"term": {"parking": True}}}))
    _assert_parents(resp, _best_parents("l2", allowed, q, 5))


def test_updates_and_deletes_replace_all_elements(client: OpenSearch, index_name: str) -> None:
    docs = _docs(30, 4, seed=5)
    _create(client, index_name, 4)
    _load(client, index_name, docs)
    q = docs[4][1] if len(docs[4]) > 1 else docs[4][0]
    assert _pairs(_search(client, index_name, _nested_knn(q, 1)))[0] == ("4", 1.0)
    # Document 4 now has a single far element; 6 is deleted; both refreshes leave no stale rows behind.
    far = np.full(4, 50.0, dtype=np.float32)
    client.index(index=index_name, id="4", body={"nested_field": [{"my_vector": far.tolist()}]}, refresh=True)
    client.delete(index=index_name, id="6", refresh=True)
    current = {str(i): d for i, d in enumerate(docs) if i not in (4, 6)}
    current["4"] = far[None, :]
    resp = _search(client, index_name, _nested_knn(q, 40), size=40)
    _assert_parents(resp, _best_parents("l2", current, q, 40))
    assert resp["hits"]["total"]["value"] == 29
    # A document that loses every vector leaves the results.
    client.index(index=index_name, id="4", body={"nested_field": [{"color": "none"}]}, refresh=True)
    assert "4" not in {i for i, _ in _pairs(_search(client, index_name, _nested_knn(far, 40), size=40))}


def test_graph_segments_return_k_distinct_parents(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    docs = _docs(400, 8, seed=21)
    _create(client, index_name, 8, settings={"index.knn.advanced.approximate_threshold": 0})
    _load(client, index_name, docs)
    status, _ = http.request("GET", f"/_plugins/_knn/warmup/{index_name}")  # builds the pending graphs now
    assert status == 200
    by_id = {str(i): d for i, d in enumerate(docs)}
    recall = []
    for q in (docs[0][0], docs[123][-1], docs[321][0]):
        got = _pairs(_search(client, index_name, _nested_knn(q, 10)))
        assert len({i for i, _ in got}) == 10
        want = _best_parents("l2", by_id, q, 10)
        recall.append(len({i for i, _ in got} & {i for i, _ in want}) / 10)
        for doc_id, score in got:  # every score is its parent's exact best, whatever the graph found
            assert score == pytest.approx(float(_scores("l2", by_id[doc_id], q).max()), rel=1e-5)
    assert np.mean(recall) >= 0.9


# ---- what matches nothing, and errors -------------------------------------------------------------------------


def test_plain_knn_on_a_nested_field_matches_nothing(client: OpenSearch, index_name: str) -> None:
    _create(client, index_name, 3)
    client.index(index=index_name, id="1", body={"nested_field": [{"my_vector": [1, 1, 1]}]}, refresh=True)
    plain = {"knn": {"nested_field.my_vector": {"vector": [1, 1, 1], "k": 1}}}
    # OpenSearch never returns nested documents to a top-level query.
    assert _search(client, index_name, plain)["hits"]["total"]["value"] == 0
    in_bool = {"bool": {"should": [_nested_knn([1, 1, 1], 1, inner_hits={}), {"match_all": {}}]}}
    hit = _search(client, index_name, in_bool)["hits"]["hits"][0]
    assert hit["_score"] == pytest.approx(2.0)
    assert hit["inner_hits"]["nested_field"]["hits"]["hits"][0]["_source"] == {"my_vector": [1, 1, 1]}


def test_nested_query_errors(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    _create(client, index_name, 3)
    client.indices.put_mapping(index=index_name, body={"properties": {"obj": {"properties": {"a": {"type": "text"}}}}})

    def search(query: dict[str, Any]) -> dict[str, Any]:
        status, body = http.request("POST", f"/{index_name}/_search", {"query": query})
        assert status == 400, body
        return body

    lexical = {"nested": {"path": "nested_field", "query": {"term": {"nested_field.color": "blue"}}}}
    assert_error(search(lexical), 400, "query_shard_exception", "nested lexical queries are not supported yet")
    missing = {"nested": {"path": "nope", "query": {"match_all": {}}}}
    assert_error(search(missing), 400, "query_shard_exception", "failed to find nested object under path [nope]")
    not_nested = {"nested": {"path": "obj", "query": {"match_all": {}}}}
    assert_error(search(not_nested), 400, "query_shard_exception", "[obj] is not of nested type")
    bad_mode = _nested_knn([1, 1, 1], 1, score_mode="median")
    assert_error(search(bad_mode), 400, "illegal_argument_exception", "No score mode for child query [median]")
    assert_error(search({"nested": {"query": {"match_all": {}}}}), 400, "parsing_exception", "requires 'path'")
    bad_inner = _nested_knn([1, 1, 1], 1, inner_hits={"colour": 1})
    assert_error(search(bad_inner), 400, "parsing_exception", "[inner_hits] unknown field [colour]")
    ignored = {"nested": {"path": "nope", "query": {"match_all": {}}, "ignore_unmapped": True}}
    assert client.search(index=index_name, body={"query": ignored})["hits"]["total"]["value"] == 0


# ---- persistence ----------------------------------------------------------------------------------------------


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data").start()
    yield proc
    if proc.proc is not None and proc.proc.poll() is None:
        proc.stop()


def _client(proc: ServerProcess) -> OpenSearch:
    return OpenSearch(hosts=[{"host": proc.host, "port": proc.port}], timeout=60)


def test_results_survive_restart_and_kill(own_server: ServerProcess) -> None:
    client = _client(own_server)
    docs = _docs(50, 4, seed=8)
    _create(client, "chunks", 4)
    _load(client, "chunks", docs)
    client.delete(index="chunks", id="2", refresh=True)
    queries = [docs[0][0], docs[2][0], docs[30][-1]]
    before = [_pairs(_search(client, "chunks", _nested_knn(q, 8))) for q in queries]
    own_server.stop()
    own_server.start()
    client = _client(own_server)
    assert [_pairs(_search(client, "chunks", _nested_knn(q, 8))) for q in queries] == before
    # acknowledged but never refreshed writes, then kill -9
    client.indices.put_settings(index="chunks", body={"index.refresh_interval": "-1"})
    late = _docs(5, 4, seed=99)
    _load_unrefreshed = [
        {"_index": "chunks", "_id": str(100 + i), "_source": {"nested_field": [{"my_vector": v.tolist()} for v in d]}}
        for i, d in enumerate(late)
    ]
    helpers.bulk(client, _load_unrefreshed, refresh=False)
    client.delete(index="chunks", id="0")
    own_server.kill()
    own_server.start()
    client = _client(own_server)
    current = {str(i): d for i, d in enumerate(docs) if i not in (0, 2)}
    current.update({str(100 + i): d for i, d in enumerate(late)})
    for q in (late[3][0], docs[0][0]):
        _assert_parents(_search(client, "chunks", _nested_knn(q, 10)), _best_parents("l2", current, q, 10))


# ---- text_chunking -> text_embedding -> neural nested query -----------------------------------------------------


@pytest.fixture(scope="module")
def ml_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    zip_path = tmp_path_factory.mktemp("zips") / "all-MiniLM-L6-v2.zip"
    zip_path.write_bytes(model_zip())
    proc = ml_server(tmp_path_factory.mktemp("nested-ml"), zip_path).start()
    yield proc
    proc.stop()


def test_chunking_embedding_and_a_neural_nested_query(ml_node: ServerProcess) -> None:
    client = _client(ml_node)
    body = {"name": PRETRAINED, "version": "1.0.1", "model_format": "ONNX"}
    task = wait_task(client, client.plugins.ml.register_model(body=body, params={"deploy": "true"})["task_id"])
    model_id = task["model_id"]
    deploy = wait_task(client, client.plugins.ml.deploy_model(model_id=model_id)["task_id"])
    assert deploy["state"] == "COMPLETED", deploy
    processors = [
        {
            "text_chunking": {
                "field_map": {"passage_text": "passage_chunk"},
                "algorithm": {"fixed_token_length": {"token_limit": 4, "overlap_rate": 0, "tokenizer": "standard"}},
            }
        },
        {"text_embedding": {"model_id": model_id, "field_map": {"passage_chunk": "passage_chunk_embedding"}}},
    ]
    client.ingest.put_pipeline(id="chunk-embed", body={"processors": processors})
    mapping = {
        "passage_text": {"type": "text"},
        "passage_chunk_embedding": {"type": "nested", "properties": {"knn": {"type": "knn_vector", "dimension": 384}}},
    }
    settings = {"index.knn": True, "default_pipeline": "chunk-embed"}
    client.indices.create(index="passages", body={"settings": settings, "mappings": {"properties": mapping}})
    texts = {
        "1": "the cowboy rides a horse across the prairie and then eats lemon cake",
        "2": "stock markets fell on monday while bonds rallied",
        "3": "lemon cake with poppy seeds is a fine dessert",
    }
    for doc_id, text in texts.items():
        client.index(index="passages", id=doc_id, body={"passage_text": text})
    client.indices.refresh(index="passages")
    chunks = {i: client.get(index="passages", id=i)["_source"]["passage_chunk"] for i in texts}
    assert len(chunks["1"]) == 4  # 14 tokens, 4 a chunk

    question = "lemon cake"
    neural = {"passage_chunk_embedding.knn": {"query_text": question, "model_id": model_id, "k": 3}}
    query = {"nested": {"path": "passage_chunk_embedding", "query": {"neural": neural}, "score_mode": "max"}}
    query["nested"]["inner_hits"] = {"_source": False}
    resp = client.search(index="passages", body={"query": query, "_source": False})
    q = embed(question, 384)
    expected = {}
    best_offset = {}
    for doc_id, parts in chunks.items():
        scores = _scores("l2", np.stack([embed(p, 384) for p in parts]), q)
        expected[doc_id], best_offset[doc_id] = float(scores.max()), int(scores.argmax())
    want = sorted(expected.items(), key=lambda item: -item[1])
    _assert_parents(resp, want)
    for hit in resp["hits"]["hits"]:
        inner = hit["inner_hits"]["passage_chunk_embedding"]["hits"]["hits"]
        assert inner[0]["_nested"] == {"field": "passage_chunk_embedding", "offset": best_offset[hit["_id"]]}
        assert inner[0]["_score"] == pytest.approx(expected[hit["_id"]], rel=1e-5)
