"""OpenSearch's "Getting started with semantic and hybrid search" tutorial (spec §8.1, steps A0-A25) replayed on a
private server, with all-MiniLM-L6-v2 (1.0.2, ONNX, 384-d) in place of msmarco-distilbert-base-tas-b.

IDs are captured from responses (task → model → model group). Keyword scores are the published ones (legacy BM25)
or those ÷ 2.2 (3.x default BM25); neural and hybrid expectations are computed from the API itself: `_predict`'s
embedding of the query against each document's stored vector, and min_max + arithmetic_mean over the separate
keyword and neural results. The steps run in order and share state through `STATE`; the server is private so that
model versions, `_seq_no`s and the auto-created group do not depend on other test modules."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlsearch.launcher import ServerProcess
from tests import neural_support
from tests.conftest import RawHttp
from tests.neural_support import MINILM, MINILM_VERSION

minilm_zip = neural_support.minilm_zip  # the session fixture: the converted zip, cached across runs

INDEX = "my-nlp-index"
LEGACY_INDEX = "my-nlp-index-b"  # historical (B) mapping, plus LegacyBM25 for the published keyword scores
INGEST = "nlp-ingest-pipeline"
SEARCH = "nlp-search-pipeline"
DOCS = {
    "1": (
        "A West Virginia university women 's basketball team , officials , and a small gathering of fans are in a "
        "West Virginia arena .",
        "4319130149.jpg",
    ),
    "2": ("A wild animal races across an uncut field with a minimal amount of trees .", "1775029934.jpg"),
    "3": (
        "People line the stands which advertise Freemont 's orthopedics , a cowboy rides a light brown bucking "
        "bronco .",
        "2664027527.jpg",
    ),
    "4": ("A man who is riding a wild horse in the rodeo is very near to falling off .", "4427058951.jpg"),
    "5": ("A rodeo cowboy , wearing a cowboy hat , is being thrown off of a wild white horse .", "2691147709.jpg"),
}
WILD_WEST_LEGACY = [("1", 1.7878418), ("2", 0.58093566), ("5", 0.55228686), ("4", 0.53899646)]
STATE: dict[str, Any] = {}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, minilm_zip: Path) -> Iterator[ServerProcess]:
    proc = neural_support.start_node(tmp_path_factory, minilm_zip)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def http(node: ServerProcess) -> RawHttp:
    return RawHttp(f"http://{node.host}:{node.port}")


def ok(http: RawHttp, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    got, out = http.request(method, path, body)
    assert got == status, (method, path, out)
    return out


def poll(http: RawHttp, path: str, done: Any, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        out = ok(http, "GET", path)
        if done(out):
            return out
        assert time.monotonic() < deadline, out
        time.sleep(0.05)


def neural_body(model_id: str, key: str = "excludes") -> dict[str, Any]:
    return {
        "_source": {key: ["passage_embedding"]},
        "query": {"neural": {"passage_embedding": {"query_text": "wild west", "model_id": model_id, "k": 5}}},
    }


def hybrid_body(model_id: str) -> dict[str, Any]:
    neural = neural_body(model_id)["query"]
    return {
        "_source": {"exclude": ["passage_embedding"]},
        "query": {"hybrid": {"queries": [{"match": {"text": {"query": "cowboy rodeo bronco"}}}, neural]}},
    }


def ranked(result: dict[str, Any]) -> list[tuple[str, float]]:
    return [(h["_id"], h["_score"]) for h in result["hits"]["hits"]]


# ---- A0-A4: settings, model ------------------------------------------------------------------------------------


def test_a0_cluster_settings(http: RawHttp) -> None:
    body = {
        "persistent": {
            "plugins.ml_commons.only_run_on_ml_node": "false",
            "plugins.ml_commons.native_memory_threshold": "99",
        }
    }
    assert ok(http, "PUT", "/_cluster/settings", body) == {
        "acknowledged": True,
        "persistent": {"plugins": {"ml_commons": {"only_run_on_ml_node": "false", "native_memory_threshold": "99"}}},
        "transient": {},
    }


def test_a1_a2_register_with_deploy_and_poll_the_task(http: RawHttp) -> None:
    body = {"name": MINILM, "version": MINILM_VERSION, "model_format": "ONNX"}
    created = ok(http, "POST", "/_plugins/_ml/models/_register?deploy=true", body)
    assert set(created) == {"task_id", "status"} and created["status"] == "CREATED", created
    task = poll(http, f"/_plugins/_ml/tasks/{created['task_id']}", lambda t: t["state"] in ("COMPLETED", "FAILED"))
    assert task["state"] == "COMPLETED", task
    assert task["task_type"] == "REGISTER_MODEL"
    assert task["function_name"] == "TEXT_EMBEDDING"
    assert task["is_async"] is True
    assert isinstance(task["worker_node"], list) and len(task["worker_node"]) == 1
    assert isinstance(task["create_time"], int) and task["last_update_time"] >= task["create_time"]
    STATE["model_id"] = task["model_id"]
    STATE["node_id"] = task["worker_node"][0]


def test_a3_the_model_is_deployed_in_a_group_named_after_it(http: RawHttp) -> None:
    model_id = STATE["model_id"]
    model = poll(http, f"/_plugins/_ml/models/{model_id}", lambda m: m["model_state"] in ("DEPLOYED", "DEPLOY_FAILED"))
    assert model["model_state"] == "DEPLOYED", model
    assert model["name"] == MINILM
    assert model["algorithm"] == "TEXT_EMBEDDING"
    assert model["model_version"] == "1"
    assert model["model_format"] == "ONNX"
    config = model["model_config"]
    assert config["model_type"] == "bert"
    assert config["embedding_dimension"] == 384
    assert config["framework_type"] == "SENTENCE_TRANSFORMERS"
    assert isinstance(config["all_config"], str) and config["all_config"]
    assert isinstance(model["total_chunks"], int) and model["total_chunks"] >= 1
    assert model["planning_worker_node_count"] == model["current_worker_node_count"] == 1
    assert model["planning_worker_nodes"] == [STATE["node_id"]]
    group_id = model["model_group_id"]
    group = ok(http, "GET", f"/_plugins/_ml/model_groups/{group_id}")
    assert group["name"] == MINILM and group["latest_version"] == 1, group
    STATE["group_id"] = group_id


def test_a4_profile_shows_the_deployed_model(http: RawHttp) -> None:
    profile = ok(http, "GET", "/_plugins/_ml/profile/models")
    entry = profile["nodes"][STATE["node_id"]]["models"][STATE["model_id"]]
    assert entry["model_state"] == "DEPLOYED"
    assert entry["worker_nodes"] == [STATE["node_id"]]


# ---- A5-A14: ingest pipeline, index, documents -------------------------------------------------------------------


def test_a5_a6_ingest_pipeline_is_stored_as_sent(http: RawHttp) -> None:
    body = {
        "description": "An NLP ingest pipeline",
        "processors": [{"text_embedding": {"model_id": STATE["model_id"], "field_map": {"text": "passage_embedding"}}}],
    }
    assert ok(http, "PUT", f"/_ingest/pipeline/{INGEST}", body) == {"acknowledged": True}
    assert ok(http, "GET", "/_ingest/pipeline") == {INGEST: body}


def _create_index(http: RawHttp, name: str, settings: dict[str, Any], embedding: dict[str, Any]) -> None:
    body = {
        "settings": {"index.knn": True, "default_pipeline": INGEST, **settings},
        "mappings": {
            "properties": {
                "id": {"type": "text"},
                "passage_embedding": {"type": "knn_vector", "dimension": 384, **embedding},
                "text": {"type": "text"},
            }
        },
    }
    assert ok(http, "PUT", f"/{name}", body) == {"acknowledged": True, "shards_acknowledged": True, "index": name}


def _index_docs(http: RawHttp, name: str) -> None:
    for seq_no, (doc_id, (text, image)) in enumerate(DOCS.items()):
        out = ok(http, "PUT", f"/{name}/_doc/{doc_id}", {"text": text, "id": image}, status=201)
        assert out == {
            "_index": name,
            "_id": doc_id,
            "_version": 1,
            "result": "created",
            "_shards": {"total": 2, "successful": 1, "failed": 0},
            "_seq_no": seq_no,
            "_primary_term": 1,
        }
    ok(http, "POST", f"/{name}/_refresh")


def test_a7_a13_index_with_default_pipeline_and_the_five_documents(http: RawHttp) -> None:
    _create_index(http, INDEX, {}, {"space_type": "l2"})
    settings = ok(http, "GET", f"/{INDEX}/_settings")[INDEX]["settings"]["index"]
    assert settings["knn"] == "true" and settings["default_pipeline"] == INGEST, settings
    properties = ok(http, "GET", f"/{INDEX}/_mappings")[INDEX]["mappings"]["properties"]
    assert properties["id"] == properties["text"] == {"type": "text"}
    assert properties["passage_embedding"]["type"] == "knn_vector"
    assert properties["passage_embedding"]["dimension"] == 384
    assert properties["passage_embedding"].get("space_type", "l2") == "l2"
    _index_docs(http, INDEX)


def test_b7_historical_lucene_hnsw_mapping_with_legacy_bm25(http: RawHttp) -> None:
    method = {"engine": "lucene", "space_type": "l2", "name": "hnsw", "parameters": {}}
    _create_index(http, LEGACY_INDEX, {"index.similarity.default.type": "LegacyBM25"}, {"method": method})
    properties = ok(http, "GET", f"/{LEGACY_INDEX}/_mappings")[LEGACY_INDEX]["mappings"]["properties"]
    assert properties["passage_embedding"]["method"]["engine"] == "lucene"
    _index_docs(http, LEGACY_INDEX)


def test_a14_the_pipeline_embedded_each_document(http: RawHttp) -> None:
    doc = ok(http, "GET", f"/{INDEX}/_doc/1")
    assert {k: v for k, v in doc.items() if k != "_source"} == {
        "_index": INDEX,
        "_id": "1",
        "_version": 1,
        "_seq_no": 0,
        "_primary_term": 1,
        "found": True,
    }
    source = doc["_source"]
    assert set(source) == {"passage_embedding", "text", "id"}
    assert (source["text"], source["id"]) == DOCS["1"]
    embedding = source["passage_embedding"]
    assert len(embedding) == 384 and all(isinstance(x, float) for x in embedding)
    # What the pipeline stored is the model's embedding of the text.
    predicted = _embed(http, [DOCS["1"][0]])[0]
    np.testing.assert_allclose(np.asarray(embedding, dtype=np.float32), predicted, rtol=1e-5, atol=1e-6)


# ---- A15-A19: keyword, neural, hybrid ----------------------------------------------------------------------------


def _embed(http: RawHttp, texts: list[str]) -> np.ndarray:
    out = ok(http, "POST", f"/_plugins/_ml/_predict/text_embedding/{STATE['model_id']}", {"text_docs": texts})
    return np.asarray([r["output"][0]["data"] for r in out["inference_results"]], dtype=np.float32)


def _stored_vectors(http: RawHttp, name: str) -> dict[str, np.ndarray]:
    return {
        doc_id: np.asarray(ok(http, "GET", f"/{name}/_doc/{doc_id}")["_source"]["passage_embedding"], np.float32)
        for doc_id in DOCS
    }


@pytest.mark.parametrize(("name", "scale"), [(INDEX, 1 / 2.2), (LEGACY_INDEX, 1.0)])
def test_a15_keyword_search(http: RawHttp, name: str, scale: float) -> None:
    body = {"_source": {"excludes": ["passage_embedding"]}, "query": {"match": {"text": {"query": "wild west"}}}}
    result = ok(http, "POST", f"/{name}/_search", body)
    assert result["hits"]["total"] == {"value": 4, "relation": "eq"}
    assert [doc_id for doc_id, _ in ranked(result)] == [doc_id for doc_id, _ in WILD_WEST_LEGACY]
    for (_, got), (_, published) in zip(ranked(result), WILD_WEST_LEGACY, strict=True):
        assert got == pytest.approx(published * scale, rel=5e-5)
    assert result["hits"]["hits"][0]["_source"] == {"text": DOCS["1"][0], "id": DOCS["1"][1]}


def _expected_neural(http: RawHttp, name: str) -> list[tuple[str, float]]:
    query = _embed(http, ["wild west"])[0]
    scores = {
        doc_id: 1.0 / (1.0 + float(((vec - query) ** 2).sum())) for doc_id, vec in _stored_vectors(http, name).items()
    }
    return sorted(scores.items(), key=lambda item: -item[1])


@pytest.mark.parametrize(("name", "key"), [(INDEX, "excludes"), (INDEX, "exclude"), (LEGACY_INDEX, "excludes")])
def test_a16_neural_search(http: RawHttp, name: str, key: str) -> None:
    result = ok(http, "POST", f"/{name}/_search", neural_body(STATE["model_id"], key))
    expected = _expected_neural(http, name)
    assert result["hits"]["total"] == {"value": 5, "relation": "eq"}
    assert [doc_id for doc_id, _ in ranked(result)] == [doc_id for doc_id, _ in expected]
    for (_, got), (_, want) in zip(ranked(result), expected, strict=True):
        assert got == pytest.approx(want, rel=1e-4)
    for hit in result["hits"]["hits"]:
        assert hit["_source"] == {"text": DOCS[hit["_id"]][0], "id": DOCS[hit["_id"]][1]}


def test_a17_search_pipeline(http: RawHttp) -> None:
    body = {
        "description": "Post processor for hybrid search",
        "phase_results_processors": [
            {
                "normalization-processor": {
                    "normalization": {"technique": "min_max"},
                    "combination": {"technique": "arithmetic_mean", "parameters": {"weights": [0.3, 0.7]}},
                }
            }
        ],
    }
    assert ok(http, "PUT", f"/_search/pipeline/{SEARCH}", body) == {"acknowledged": True}


def _min_max(scores: dict[str, float]) -> dict[str, float]:
    low, high = min(scores.values()), max(scores.values())
    if high == low:
        return dict.fromkeys(scores, 1.0)
    # The sub-query's lowest hit gets 0.001, not 0: it matched, unlike documents absent from the sub-query.
    return {doc_id: ((s - low) / (high - low)) or 0.001 for doc_id, s in scores.items()}


def _expected_hybrid(http: RawHttp, name: str) -> list[tuple[str, float]]:
    match = {"query": {"match": {"text": {"query": "cowboy rodeo bronco"}}}}
    keyword = _min_max(dict(ranked(ok(http, "POST", f"/{name}/_search", match))))
    neural = _min_max(dict(ranked(ok(http, "POST", f"/{name}/_search", neural_body(STATE["model_id"])))))
    assert set(keyword) == {"3", "4", "5"} and len(neural) == 5
    combined = {doc_id: 0.3 * keyword.get(doc_id, 0.0) + 0.7 * neural[doc_id] for doc_id in neural}
    return sorted(combined.items(), key=lambda item: -item[1])


def _assert_hybrid(result: dict[str, Any], expected: list[tuple[str, float]]) -> None:
    assert result["hits"]["total"] == {"value": 5, "relation": "eq"}
    assert [doc_id for doc_id, _ in ranked(result)] == [doc_id for doc_id, _ in expected]
    for (_, got), (_, want) in zip(ranked(result), expected, strict=True):
        assert got == pytest.approx(want, rel=1e-4, abs=1e-6)
    assert result["hits"]["max_score"] == pytest.approx(expected[0][1], rel=1e-4)
    for hit in result["hits"]["hits"]:
        assert "passage_embedding" not in hit["_source"]


@pytest.mark.parametrize("name", [INDEX, LEGACY_INDEX])
def test_a18_hybrid_search(http: RawHttp, name: str) -> None:
    result = ok(http, "POST", f"/{name}/_search?search_pipeline={SEARCH}", hybrid_body(STATE["model_id"]))
    expected = _expected_hybrid(http, name)
    _assert_hybrid(result, expected)
    STATE.setdefault("hybrid", {})[name] = result


def test_a19_default_search_pipeline_gives_the_same_result(http: RawHttp) -> None:
    body = {"index.search.default_pipeline": SEARCH}
    assert ok(http, "PUT", f"/{INDEX}/_settings", body) == {"acknowledged": True}
    result = ok(http, "POST", f"/{INDEX}/_search", hybrid_body(STATE["model_id"]))
    assert ranked(result) == ranked(STATE["hybrid"][INDEX])
    assert result["hits"]["max_score"] == STATE["hybrid"][INDEX]["hits"]["max_score"]


# ---- A20-A25: cleanup --------------------------------------------------------------------------------------------


def test_a20_a25_cleanup(http: RawHttp) -> None:
    model_id, group_id, node_id = STATE["model_id"], STATE["group_id"], STATE["node_id"]
    for name in (INDEX, LEGACY_INDEX):
        assert ok(http, "DELETE", f"/{name}") == {"acknowledged": True}
    assert ok(http, "DELETE", f"/_search/pipeline/{SEARCH}") == {"acknowledged": True}
    assert ok(http, "DELETE", f"/_ingest/pipeline/{INGEST}") == {"acknowledged": True}
    assert ok(http, "POST", f"/_plugins/_ml/models/{model_id}/_undeploy") == {
        node_id: {"stats": {model_id: "UNDEPLOYED"}}
    }
    deleted = ok(http, "DELETE", f"/_plugins/_ml/models/{model_id}")
    assert deleted["_index"] == ".plugins-ml-model" and deleted["_id"] == model_id
    assert deleted["result"] == "deleted"
    # A25: deleting a group's last model deletes the group too (spec §8.1), so the group delete finds nothing.
    # Our server drops the group in the same call as the model, so it answers like a settled cluster: 200 not_found.
    gone = ok(http, "DELETE", f"/_plugins/_ml/model_groups/{group_id}")
    assert gone["_id"] == group_id and gone["result"] == "not_found", gone
