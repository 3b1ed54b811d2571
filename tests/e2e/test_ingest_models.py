"""Ingest pipelines with the real all-MiniLM-L6-v2 (ONNX) on a real server: text_embedding vectors equal to
`_predict` for the same texts (plain, nested, lists), skip_existing, one model call per bulk batch (counted through
the ML stats API), the embedding cache, text_chunking chained into text_embedding, ml_inference with a local model,
per-item failures, and the opensearch-api-specification stories `ingest/pipeline/neural_search.yaml` (MiniLM in
place of tas-b; the closing `neural` query belongs to the neural-query work, so a `knn` query with the `_predict`
vector of the same text stands in) and `ingest/pipeline/text_chunking.yaml`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from opensearchpy import OpenSearch

from mlsearch.launcher import ServerProcess
from mlsearch.ml import catalog
from tests.e2e.test_ml_local_models import MINILM, _cache_dir, _link

BULK = 12


@pytest.fixture(scope="module")
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    minilm_zip = catalog.fetch_pretrained(MINILM, "1.0.2", "ONNX", cache_dir=_cache_dir(request.config))
    cache = tmp_path_factory.mktemp("ingest-cache")
    seeded = catalog.cached_zip_path(cache, MINILM, "1.0.2", "ONNX")
    seeded.parent.mkdir(parents=True)
    _link(minilm_zip, seeded)
    proc = ServerProcess(tmp_path_factory.mktemp("ingest-node"), env={"MLSEARCH_CACHE_DIR": str(cache)}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def c(node: ServerProcess) -> OpenSearch:
    client = OpenSearch(hosts=[{"host": node.host, "port": node.port}], timeout=120)
    client.cluster.put_settings(body={"persistent": {"plugins.ml_commons.only_run_on_ml_node": "false"}})
    return client


def _wait(fn: Any, done: Any, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if done(value):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.05)


def _register_deploy(c: OpenSearch, group_id: str | None = None) -> str:
    body: dict[str, Any] = {"name": MINILM, "version": "1.0.2", "model_format": "ONNX"}
    if group_id:
        body["model_group_id"] = group_id
    task_id = c.plugins.ml.register_model(body=body)["task_id"]
    task = _wait(lambda: c.plugins.ml.get_task(task_id=task_id), lambda t: t["state"] in ("COMPLETED", "FAILED"))
    assert task["state"] == "COMPLETED", task
    model_id = task["model_id"]
    deploy = c.plugins.ml.deploy_model(model_id=model_id)
    _wait(lambda: c.plugins.ml.get_task(task_id=deploy["task_id"]), lambda t: t["state"] == "COMPLETED")
    return model_id


@pytest.fixture(scope="module")
def model_id(c: OpenSearch) -> str:
    return _register_deploy(c)


def _predict(c: OpenSearch, model_id: str, texts: list[str]) -> np.ndarray:
    out = c.plugins.ml.predict(algorithm_name="text_embedding", model_id=model_id, body={"text_docs": texts})
    return np.asarray([r["output"][0]["data"] for r in out["inference_results"]], dtype=np.float32)


def _predict_calls(c: OpenSearch, model_id: str) -> int:
    stats = c.transport.perform_request("GET", "/_plugins/_ml/stats")
    [node] = stats["nodes"].values()
    return node.get("models", {}).get(model_id, {}).get("predict", {}).get("ml_action_request_count", 0)


def _pipeline(c: OpenSearch, pipeline_id: str, *processors: dict[str, Any]) -> None:
    assert c.ingest.put_pipeline(id=pipeline_id, body={"processors": list(processors)}) == {"acknowledged": True}


def test_text_embedding_matches_predict_for_plain_nested_and_list_fields(c: OpenSearch, model_id: str) -> None:
    field_map = {
        "text": "text_embedding",
        "obj.title": "title_embedding",
        "parts": {"body": "body_embedding"},
        "tags": "tag_embeddings",
    }
    _pipeline(c, "emb-shapes", {"text_embedding": {"model_id": model_id, "field_map": field_map}})
    source = {
        "text": "a wild horse in the rodeo",
        "obj": {"title": "west virginia arena"},
        "parts": [{"body": "cowboy hat"}, {"body": "uncut field"}],
        "tags": ["money", "bronco"],
    }
    c.index(index="emb-shapes", id="1", body=source, params={"pipeline": "emb-shapes", "refresh": "true"})
    got = c.get(index="emb-shapes", id="1")["_source"]
    texts = ["a wild horse in the rodeo", "west virginia arena", "cowboy hat", "uncut field", "money", "bronco"]
    want = _predict(c, model_id, texts)
    vectors = [
        got["text_embedding"],
        got["obj"]["title_embedding"],
        got["parts"][0]["body_embedding"],
        got["parts"][1]["body_embedding"],
        got["tag_embeddings"][0]["knn"],
        got["tag_embeddings"][1]["knn"],
    ]
    np.testing.assert_allclose(np.asarray(vectors, dtype=np.float32), want, atol=1e-5)
    assert len(got["text_embedding"]) == 384 and got["text"] == source["text"]
    c.index(index="emb-shapes", id="2", body={"other": 1}, params={"pipeline": "emb-shapes"})  # no input: unchanged
    assert c.get(index="emb-shapes", id="2")["_source"] == {"other": 1}
    c.indices.delete(index="emb-shapes")


def test_bulk_makes_one_model_call_per_batch_and_the_cache_skips_unchanged_text(c: OpenSearch, model_id: str) -> None:
    _pipeline(c, "emb-batch", {"text_embedding": {"model_id": model_id, "field_map": {"t": "v"}, "batch_size": 5}})
    _pipeline(c, "emb-whole", {"text_embedding": {"model_id": model_id, "field_map": {"t": "v"}}})

    def bulk(pipeline: str, texts: list[str]) -> dict[str, Any]:
        lines = "".join(
            f'{{"index": {{"_index": "emb-batch", "_id": "{pipeline}{i}"}}}}\n{json.dumps({"t": t})}\n'
            for i, t in enumerate(texts)
        )
        return c.bulk(body=lines, params={"pipeline": pipeline})

    before = _predict_calls(c, model_id)
    assert not bulk("emb-batch", [f"batched text number {i}" for i in range(BULK)])["errors"]
    assert _predict_calls(c, model_id) - before == 3  # 12 documents in batches of 5
    before = _predict_calls(c, model_id)
    assert not bulk("emb-whole", [f"whole text number {i}" for i in range(BULK)])["errors"]
    assert _predict_calls(c, model_id) - before == 1
    before = _predict_calls(c, model_id)
    assert not bulk("emb-whole", [f"whole text number {i}" for i in range(BULK)])["errors"]  # unchanged: cached
    assert _predict_calls(c, model_id) == before
    doc = c.get(index="emb-batch", id="emb-whole3")["_source"]
    np.testing.assert_allclose(doc["v"], _predict(c, model_id, ["whole text number 3"])[0], atol=1e-5)
    c.indices.delete(index="emb-batch")


def test_skip_existing_reuses_the_stored_embedding_for_unchanged_text(c: OpenSearch, model_id: str) -> None:
    _pipeline(c, "emb-skip", {"text_embedding": {"model_id": model_id, "field_map": {"t": "v"}, "skip_existing": True}})
    marker = [0.5] * 384
    c.index(index="emb-skip", id="1", body={"t": "unchanged text", "v": marker}, params={"pipeline": "_none"})
    c.index(index="emb-skip", id="1", body={"t": "unchanged text"}, params={"pipeline": "emb-skip"})
    assert c.get(index="emb-skip", id="1")["_source"]["v"] == marker
    c.index(index="emb-skip", id="1", body={"t": "changed text"}, params={"pipeline": "emb-skip"})
    got = c.get(index="emb-skip", id="1")["_source"]["v"]
    np.testing.assert_allclose(got, _predict(c, model_id, ["changed text"])[0], atol=1e-5)
    c.indices.delete(index="emb-skip")


def test_a_failing_document_fails_only_its_bulk_item(c: OpenSearch, model_id: str) -> None:
    _pipeline(c, "emb-good", {"text_embedding": {"model_id": model_id, "field_map": {"t": "v"}}})
    _pipeline(c, "emb-ghost", {"text_embedding": {"model_id": "no-such-model", "field_map": {"t": "v"}}})
    lines = (
        '{"index": {"_index": "emb-fail", "_id": "1", "pipeline": "emb-ghost"}}\n{"t": "x"}\n'
        '{"index": {"_index": "emb-fail", "_id": "2", "pipeline": "emb-good"}}\n{"t": "y"}\n'
        '{"index": {"_index": "emb-fail", "_id": "3", "pipeline": "emb-good"}}\n{"t": 5}\n'
    )
    items = [i["index"] for i in c.bulk(body=lines, params={"refresh": "true"})["items"]]
    assert items[0]["status"] == 404 and items[0]["error"]["reason"] == "Failed to find model"
    assert items[1]["status"] == 201
    assert items[2]["status"] == 400 and "cannot process it" in items[2]["error"]["reason"]
    assert c.count(index="emb-fail")["count"] == 1
    c.indices.delete(index="emb-fail")


def test_chunks_then_embeddings_as_nested_knn_objects(c: OpenSearch, model_id: str) -> None:
    _pipeline(
        c,
        "chunk-embed",
        {
            "text_chunking": {
                "field_map": {"passage_text": "passage_chunk"},
                "algorithm": {"fixed_token_length": {"token_limit": 10, "overlap_rate": 0.2, "tokenizer": "standard"}},
            }
        },
        {"text_embedding": {"model_id": model_id, "field_map": {"passage_chunk": "passage_chunk_embedding"}}},
    )
    c.indices.create(
        index="chunks",
        body={
            "settings": {"index.knn": True, "default_pipeline": "chunk-embed"},
            "mappings": {
                "properties": {
                    "passage_text": {"type": "text"},
                    "passage_chunk_embedding": {
                        "type": "nested",
                        "properties": {"knn": {"type": "knn_vector", "dimension": 384}},
                    },
                }
            },
        },
    )
    text = (
        "This is an example document to be chunked. The document contains a single paragraph, two sentences "
        "and 24 tokens by standard tokenizer in OpenSearch."
    )
    c.index(index="chunks", id="1", body={"passage_text": text}, params={"refresh": "true"})
    got = c.get(index="chunks", id="1")["_source"]
    assert got["passage_chunk"] == [
        "This is an example document to be chunked. The document ",
        "The document contains a single paragraph, two sentences and 24 ",
        "and 24 tokens by standard tokenizer in OpenSearch.",
    ]
    vectors = np.asarray([o["knn"] for o in got["passage_chunk_embedding"]], dtype=np.float32)
    np.testing.assert_allclose(vectors, _predict(c, model_id, got["passage_chunk"]), atol=1e-5)
    c.indices.delete(index="chunks")


def test_ml_inference_with_a_local_model(c: OpenSearch, model_id: str) -> None:
    processor = {
        "ml_inference": {
            "model_id": model_id,
            "input_map": [{"text_docs": "text"}],
            "output_map": [{"emb": "$.inference_results[0].output[0].data"}],
        }
    }
    out = c.ingest.simulate(
        body={"pipeline": {"processors": [processor]}, "docs": [{"_source": {"text": "the rodeo"}}]}
    )
    vector = out["docs"][0]["doc"]["_source"]["emb"]
    np.testing.assert_allclose(vector, _predict(c, model_id, ["the rodeo"])[0], atol=1e-5)


def test_spec_story_neural_search_yaml(c: OpenSearch) -> None:
    group = c.plugins.ml.register_model_group(body={"name": "NLP_Group", "description": "Model group for NLP models"})
    model = _register_deploy(c, group["model_group_id"])
    assert c.ingest.put_pipeline(
        id="movies_pipeline",
        body={
            "description": "Text embedding pipeline",
            "processors": [{"text_embedding": {"model_id": model, "field_map": {"title": "passage_embedding"}}}],
        },
    ) == {"acknowledged": True}
    c.indices.create(
        index="movies",
        body={
            "settings": {"index.knn": True, "default_pipeline": "movies_pipeline"},
            "mappings": {
                "properties": {
                    "passage_embedding": {
                        "type": "knn_vector",
                        "dimension": 384,
                        "method": {"engine": "lucene", "space_type": "l2", "name": "hnsw", "parameters": {}},
                    },
                    "title": {"type": "text"},
                }
            },
        },
    )
    titles = ["Moneyball", "The Lion King", "Money Plane", "Shark Tank"]
    lines = "".join(
        f'{{"create": {{"_index": "movies", "_id": "{i}"}}}}\n{json.dumps({"title": t})}\n'
        for i, t in enumerate(titles)
    )
    out = c.bulk(body=lines, params={"refresh": "true"})
    assert not out["errors"] and [i["create"]["status"] for i in out["items"]] == [201] * 4
    query = _predict(c, model, ["Money"])[0].tolist()
    hits = c.search(
        index="movies",
        body={
            "_source": {"excludes": ["passage_embedding"]},
            "query": {"knn": {"passage_embedding": {"vector": query, "k": 100}}},
        },
    )
    assert hits["hits"]["total"]["value"] == 4
    assert {h["_source"]["title"] for h in hits["hits"]["hits"][:2]} == {"Moneyball", "Money Plane"}
    assert "passage_embedding" not in hits["hits"]["hits"][0]["_source"]
    undeploy = c.plugins.ml.undeploy_model(model_id=model)
    assert [s["stats"] for s in undeploy.values()] == [{model: "UNDEPLOYED"}]
    c.indices.delete(index="movies")
    c.ingest.delete_pipeline(id="movies_pipeline")


def test_spec_story_text_chunking_yaml(c: OpenSearch) -> None:
    assert c.ingest.put_pipeline(
        id="chunking_pipeline",
        body={
            "description": "Text chunking pipeline",
            "processors": [
                {
                    "text_chunking": {
                        "algorithm": {
                            "fixed_token_length": {"token_limit": 384, "overlap_rate": 0.2, "tokenizer": "standard"}
                        },
                        "field_map": {"passage_text": "passage_chunk"},
                    }
                }
            ],
        },
    ) == {"acknowledged": True}
    c.indices.create(index="chunked_docs", body={"settings": {"index.default_pipeline": "chunking_pipeline"}})
    out = c.transport.perform_request(
        "POST",
        "/chunked_docs/_doc",
        params={"refresh": "true"},
        body={"passage_text": "This is a short passage about chunking."},
    )
    assert out["result"] == "created"
    got = c.get(index="chunked_docs", id=out["_id"])["_source"]
    assert got["passage_chunk"] == ["This is a short passage about chunking."]
    c.indices.delete(index="chunked_docs")
    assert c.ingest.delete_pipeline(id="chunking_pipeline") == {"acknowledged": True}
