"""Session fixtures for neural-search tests: a server whose model cache is seeded with all-MiniLM-L6-v2 (converted
once into pytest's cache dir or MLSEARCH_CACHE_DIR, never downloaded), an opensearch-py client for it, and the
model registered as a pretrained model and deployed. Import the fixtures into a test module (or a conftest)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opensearchpy import OpenSearch

from mlsearch.launcher import ServerProcess
from mlsearch.ml import catalog

MINILM = "huggingface/sentence-transformers/all-MiniLM-L6-v2"
MINILM_VERSION = "1.0.2"


def cache_dir(config: pytest.Config) -> Path:
    env = os.environ.get("MLSEARCH_CACHE_DIR")
    return Path(env) if env else Path(config.cache.mkdir("mlsearch-models"))


@pytest.fixture(scope="session")
def minilm_zip(request: pytest.FixtureRequest) -> Path:
    return catalog.fetch_pretrained(MINILM, MINILM_VERSION, "ONNX", cache_dir=cache_dir(request.config))


def start_node(tmp_path_factory: pytest.TempPathFactory, minilm_zip: Path) -> ServerProcess:
    """A fresh server whose private model cache holds the MiniLM zip (so registering it never downloads)."""
    cache = tmp_path_factory.mktemp("neural-cache")
    seeded = catalog.cached_zip_path(cache, MINILM, MINILM_VERSION, "ONNX")
    seeded.parent.mkdir(parents=True)
    try:
        os.link(minilm_zip, seeded)
    except OSError:
        shutil.copyfile(minilm_zip, seeded)
    return ServerProcess(tmp_path_factory.mktemp("neural-data"), env={"MLSEARCH_CACHE_DIR": str(cache)}).start()


@pytest.fixture(scope="session")
def neural_node(tmp_path_factory: pytest.TempPathFactory, minilm_zip: Path) -> Iterator[ServerProcess]:
    proc = start_node(tmp_path_factory, minilm_zip)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def nclient(neural_node: ServerProcess) -> OpenSearch:
    client = OpenSearch(hosts=[{"host": neural_node.host, "port": neural_node.port}], timeout=120)
    client.cluster.put_settings(
        body={
            "persistent": {
                "plugins.ml_commons.allow_registering_model_via_url": "true",
                "plugins.ml_commons.only_run_on_ml_node": "false",
            }
        }
    )
    return client


@pytest.fixture(scope="session")
def minilm_id(nclient: OpenSearch) -> str:
    """all-MiniLM-L6-v2, registered and deployed once per session."""
    created = nclient.plugins.ml.register_model(
        body={"name": MINILM, "version": MINILM_VERSION, "model_format": "ONNX"}, params={"deploy": "true"}
    )
    task = wait_task(nclient, created["task_id"])
    assert task["state"] == "COMPLETED", task
    assert wait_deployed(nclient, task["model_id"])["model_state"] == "DEPLOYED"
    return task["model_id"]


def wait_task(client: OpenSearch, task_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = client.plugins.ml.get_task(task_id=task_id)
        if task["state"] in ("COMPLETED", "FAILED"):
            return task
        assert time.monotonic() < deadline, task
        time.sleep(0.05)


def wait_deployed(client: OpenSearch, model_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        model = client.plugins.ml.get_model(model_id=model_id)
        if model["model_state"] in ("DEPLOYED", "DEPLOY_FAILED"):
            return model
        assert time.monotonic() < deadline, model
        time.sleep(0.05)


def embed(client: OpenSearch, model_id: str, texts: list[str]) -> np.ndarray:
    """Embeddings through `_predict`, as float32 rows."""
    out = client.plugins.ml.predict(algorithm_name="text_embedding", model_id=model_id, body={"text_docs": texts})
    return np.asarray([r["output"][0]["data"] for r in out["inference_results"]], dtype=np.float32)
