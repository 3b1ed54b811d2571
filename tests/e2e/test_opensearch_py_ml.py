"""opensearch-py-ml's MLCommonClient against the real server with the real all-MiniLM-L6-v2: register pretrained,
generate embeddings, upload a custom model by chunks from a local zip, deploy, predict, undeploy, delete."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from opensearch_py_ml import ml_commons
from opensearchpy import OpenSearch

from mlsearch.launcher import ServerProcess
from mlsearch.ml import catalog
from tests.e2e.test_minilm_parity import FIXTURE, TEXTS
from tests.e2e.test_ml_local_models import MINILM, ST_CONFIG, _cache_dir, _link


@pytest.fixture(scope="module")
def minilm_zip(request: pytest.FixtureRequest) -> Path:
    return catalog.fetch_pretrained(MINILM, "1.0.2", "ONNX", cache_dir=_cache_dir(request.config))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, minilm_zip: Path) -> Iterator[OpenSearch]:
    cache = tmp_path_factory.mktemp("py-ml-cache")
    seeded = catalog.cached_zip_path(cache, MINILM, "1.0.2", "ONNX")
    seeded.parent.mkdir(parents=True)
    _link(minilm_zip, seeded)
    proc = ServerProcess(tmp_path_factory.mktemp("py-ml-data"), env={"MLSEARCH_CACHE_DIR": str(cache)}).start()
    client = OpenSearch(hosts=[{"host": proc.host, "port": proc.port}], timeout=120)
    client.cluster.put_settings(
        body={
            "persistent": {
                "plugins.ml_commons.allow_registering_model_via_local_file": "true",
                "plugins.ml_commons.only_run_on_ml_node": "false",
            }
        }
    )
    yield client
    proc.stop()


def _embeddings(response: dict) -> np.ndarray:
    return np.array([r["output"][0]["data"] for r in response["inference_results"]], dtype=np.float32)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_pretrained_register_embed_undeploy_delete(client: OpenSearch) -> None:
    ml = ml_commons.MLCommonClient(client)
    model_id = ml.register_pretrained_model(MINILM, "1.0.2", "ONNX", deploy_model=True, wait_until_deployed=True)
    assert ml.get_model_info(model_id)["model_state"] == "DEPLOYED"
    vectors = _embeddings(ml.generate_embedding(model_id, TEXTS[:5]))
    expected = np.load(FIXTURE)[:5]
    assert vectors.shape == (5, 384)
    assert _cosine(vectors, expected).min() >= 0.999
    found = ml.search_model(input_json={"query": {"term": {"_id": model_id}}})
    assert found["hits"]["total"]["value"] == 1
    undeployed = ml.undeploy_model(model_id)
    assert next(iter(undeployed.values()))["stats"][model_id] == "UNDEPLOYED"
    assert ml.delete_model(model_id)["result"] == "deleted"


def test_custom_model_uploaded_by_chunks(client: OpenSearch, minilm_zip: Path, tmp_path: Path) -> None:
    ml = ml_commons.MLCommonClient(client)
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"name": "custom-minilm", "version": "1", "model_format": "ONNX", "model_config": ST_CONFIG})
    )
    model_id = ml.register_model(str(minilm_zip), str(config), deploy_model=True, wait_until_deployed=True)
    model = ml.get_model_info(model_id)
    assert (model["name"], model["model_state"], model["model_format"]) == ("custom-minilm", "DEPLOYED", "ONNX")
    assert model["total_chunks"] >= 1
    vectors = _embeddings(ml.generate_embedding(model_id, TEXTS[:3]))
    assert _cosine(vectors, np.load(FIXTURE)[:3]).min() >= 0.999
    ml.undeploy_model(model_id)
    assert ml.delete_model(model_id)["result"] == "deleted"
