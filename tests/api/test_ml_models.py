"""Models: register (pretrained, URL, chunked upload), deploy, predict, undeploy, get / search / update / delete,
redeploy after a restart, and OpenSearch's errors for bad input, with a fake in-test runtime (ml_support)."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from opensearchpy import OpenSearch

from tests.api.ml_support import (  # noqa: F401
    PRETRAINED,
    embed,
    ml,
    ml_server,
    model_zip,
    pretrained_zip,
    sha256,
    wait_state,
    wait_task,
)
from tests.conftest import RawHttp, ServerProcess, assert_error

MODELS = "/_plugins/_ml/models"
CONFIG = {
    "model_type": "bert",
    "embedding_dimension": 8,
    "framework_type": "sentence_transformers",
    "pooling_mode": "mean",
    "normalize_result": True,
}


@pytest.fixture(scope="module")
def mlc(ml: ServerProcess) -> OpenSearch:  # noqa: F811
    return OpenSearch(hosts=[{"host": ml.host, "port": ml.port}], timeout=60)


@pytest.fixture
def raw(ml: ServerProcess) -> RawHttp:  # noqa: F811
    return RawHttp(ml.url)


@pytest.fixture
def allow_url(mlc: OpenSearch) -> Iterator[None]:
    mlc.cluster.put_settings(body={"persistent": {"plugins.ml_commons.allow_registering_model_via_url": "true"}})
    yield
    mlc.cluster.put_settings(body={"persistent": {"plugins.ml_commons.allow_registering_model_via_url": None}})


@pytest.fixture(scope="module")
def zip_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A local HTTP server on 127.0.0.1 serving the files of a directory."""
    root = tmp_path_factory.mktemp("served")
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _register_pretrained(mlc: OpenSearch, **extra: object) -> str:
    body = {"name": PRETRAINED, "version": "1.0.1", "model_format": "ONNX", **extra}
    task = wait_task(mlc, mlc.plugins.ml.register_model(body=body)["task_id"])
    assert task["state"] == "COMPLETED", task
    return task["model_id"]


def _deploy(mlc: OpenSearch, model_id: str) -> None:
    created = mlc.plugins.ml.deploy_model(model_id=model_id)
    assert (created["task_type"], created["status"]) == ("DEPLOY_MODEL", "CREATED")
    task = wait_task(mlc, created["task_id"])
    assert (task["state"], task["model_id"]) == ("COMPLETED", model_id), task


def _model_count(mlc: OpenSearch, name: str) -> int:
    found = mlc.plugins.ml.search_models(body={"query": {"term": {"name.keyword": name}}})
    return found["hits"]["total"]["value"]


# ---- the opensearch-py flow ------------------------------------------------------------------------------------


def test_pretrained_register_deploy_predict_undeploy_delete(mlc: OpenSearch, raw: RawHttp) -> None:
    model_id = _register_pretrained(mlc)
    model = mlc.plugins.ml.get_model(model_id=model_id)
    assert model["name"] == PRETRAINED
    assert (model["algorithm"], model["model_format"], model["model_state"]) == ("TEXT_EMBEDDING", "ONNX", "REGISTERED")
    assert model["model_config"]["embedding_dimension"] == 384
    assert len(model["model_content_hash_value"]) == 64
    group = mlc.plugins.ml.get_model_group(model_group_id=model["model_group_id"])
    assert group["name"] == PRETRAINED  # auto-created, named after the model
    assert group["latest_version"] == int(model["model_version"])

    _deploy(mlc, model_id)
    deployed = mlc.plugins.ml.get_model(model_id=model_id)
    assert deployed["model_state"] == "DEPLOYED"
    assert deployed["current_worker_node_count"] == deployed["planning_worker_node_count"] == 1

    result = mlc.plugins.ml.predict(
        algorithm_name="text_embedding",
        model_id=model_id,
        body={
            "text_docs": ["today is sunny", "that is a happy person"],
            "return_number": True,
            "target_response": ["sentence_embedding"],
        },
    )
    results = result["inference_results"]
    assert len(results) == 2
    [tensor] = results[0]["output"]
    assert (tensor["name"], tensor["data_type"], tensor["shape"]) == ("sentence_embedding", "FLOAT32", [384])
    assert np.allclose(tensor["data"], embed("today is sunny", 384), atol=1e-6)
    same = mlc.plugins.ml.predict_model(model_id=model_id, body={"text_docs": ["today is sunny"]})
    assert same["inference_results"][0]["output"][0]["data"] == tensor["data"]

    undeployed = mlc.plugins.ml.undeploy_model(model_id=model_id)
    [(_node_id, node)] = undeployed.items()
    assert node == {"stats": {model_id: "UNDEPLOYED"}}
    assert mlc.plugins.ml.get_model(model_id=model_id)["model_state"] == "UNDEPLOYED"
    _, err = raw.request("POST", f"/_plugins/_ml/_predict/text_embedding/{model_id}", {"text_docs": ["x"]})
    assert_error(err, 400, "illegal_argument_exception", "Model not ready yet. Please deploy the model first.")

    deleted = mlc.plugins.ml.delete_model(model_id=model_id)
    assert (deleted["_index"], deleted["_id"], deleted["result"]) == (".plugins-ml-model", model_id, "deleted")
    _, err = raw.request("GET", f"{MODELS}/{model_id}")
    assert_error(err, 404, "status_exception", "Failed to find model")


def test_register_with_deploy_true(mlc: OpenSearch, raw: RawHttp) -> None:
    status, created = raw.request(
        "POST", f"{MODELS}/_register?deploy=true", {"name": PRETRAINED, "version": "1.0.1", "model_format": "ONNX"}
    )
    assert status == 200 and set(created) == {"task_id", "status"}
    model_id = wait_task(mlc, created["task_id"])["model_id"]
    wait_state(mlc, model_id, "DEPLOYED")
    _, err = raw.request("DELETE", f"{MODELS}/{model_id}")
    assert_error(
        err,
        400,
        "status_exception",
        "Model cannot be deleted in deploying or deployed state. Try undeploy model first then delete",
    )
    status, many = raw.request("POST", f"{MODELS}/_undeploy", {"model_ids": [model_id]})
    assert list(many.values()) == [{"stats": {model_id: "UNDEPLOYED"}}]
    status, none = raw.request("POST", f"{MODELS}/_undeploy", {"model_ids": [model_id]})
    assert (status, none) == (200, {})
    mlc.plugins.ml.delete_model(model_id=model_id)


def test_a_model_not_in_the_catalog_fails_its_task_and_leaves_no_record(mlc: OpenSearch) -> None:
    before = _model_count(mlc, "no/such-model")
    created = mlc.plugins.ml.register_model(body={"name": "no/such-model", "version": "1.0.0", "model_format": "ONNX"})
    task = wait_task(mlc, created["task_id"])
    assert task["state"] == "FAILED"
    assert task["error"] == "This model is not in the pre-trained model list, please check your parameters."
    assert "model_id" not in task
    assert _model_count(mlc, "no/such-model") == before == 0


def test_register_validation(raw: RawHttp) -> None:
    cases = [
        ({"version": "1.0.1", "model_format": "ONNX"}, "model name is null"),
        ({"name": "x", "version": "1.0.1"}, "model format is null"),
        ({"name": "x", "model_format": "SAFETENSORS"}, "model_format"),
        ({"name": "x", "model_format": "ONNX", "function_name": "nope"}, "function_name"),
        ({"name": "x", "model_format": "ONNX", "model_config": {"embedding_dimension": "many"}}, "embedding_dimension"),
        ({"name": "x", "model_format": "ONNX", "model_group_id": "nosuchgroup"}, "Failed to find model group"),
    ]
    for body, message in cases:
        _, err = raw.request("POST", f"{MODELS}/_register", body)
        expected = 404 if "group" in message else 400
        assert_error(err, expected, "status_exception" if expected == 404 else "illegal_argument_exception", message)
    _, err = raw.request("POST", f"{MODELS}/_register", b"{not json")
    assert err["status"] == 400


# ---- custom models by URL ---------------------------------------------------------------------------------------


def test_url_registration_needs_the_setting(raw: RawHttp) -> None:
    _, err = raw.request(
        "POST",
        f"{MODELS}/_register",
        {
            "name": "custom",
            "model_format": "ONNX",
            "url": "http://127.0.0.1:1/m.zip",
            "model_content_hash_value": "0" * 64,
            "model_config": CONFIG,
        },
    )
    assert_error(
        err,
        400,
        "illegal_argument_exception",
        "To upload custom model user needs to enable allow_registering_model_via_url settings. Otherwise "
        "please use OpenSearch pre-trained models.",
    )


@pytest.mark.usefixtures("allow_url")
def test_custom_model_from_http_and_file_urls(mlc: OpenSearch, zip_server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = zip_server
    data = model_zip()
    (root / "custom.zip").write_bytes(data)
    body = {
        "name": "custom-http",
        "version": "1.0.0",
        "model_format": "ONNX",
        "function_name": "TEXT_EMBEDDING",
        "url": f"{base}/custom.zip",
        "model_content_hash_value": sha256(data),
        "model_config": CONFIG,
        "model_content_size_in_bytes": len(data),
        "created_time": 1,
    }  # unknown fields are tolerated
    task = wait_task(mlc, mlc.plugins.ml.register_model(body=body)["task_id"])
    assert task["state"] == "COMPLETED", task
    model = mlc.plugins.ml.get_model(model_id=task["model_id"])
    assert model["model_config"]["framework_type"] == "SENTENCE_TRANSFORMERS"
    assert model["model_config"]["pooling_mode"] == "MEAN"
    assert model["model_content_size_in_bytes"] == len(data)
    _deploy(mlc, task["model_id"])
    out = mlc.plugins.ml.predict(
        algorithm_name="text_embedding", model_id=task["model_id"], body={"text_docs": ["a"], "return_number": False}
    )
    assert out["inference_results"][0]["output"][0] == {
        "name": "sentence_embedding",
        "data_type": "FLOAT32",
        "shape": [8],
    }
    mlc.plugins.ml.undeploy_model(model_id=task["model_id"])

    local = tmp_path / "local.zip"
    local.write_bytes(data)
    body.update(name="custom-file", url=local.as_uri())
    task = wait_task(mlc, mlc.plugins.ml.register_model(body=body)["task_id"])
    assert task["state"] == "COMPLETED", task


@pytest.mark.usefixtures("allow_url")
def test_bad_archives_fail_the_task_and_leave_nothing(
    mlc: OpenSearch,
    ml: ServerProcess,  # noqa: F811
    zip_server: tuple[str, Path],
) -> None:
    base, root = zip_server
    cases = {
        "wrong-hash": (model_zip(extra={"readme.txt": b"only here"}), "0" * 64, "model content changed"),
        "traversal": (model_zip(extra={"../../evil": b"x"}), None, "points outside the archive"),
        "no-tokenizer": (model_zip(tokenizer=False), None, "has no tokenizer.json"),
        "no-model": (model_zip("TORCH_SCRIPT"), None, "has no ONNX model file"),
    }
    for name, (data, digest, message) in cases.items():
        (root / f"{name}.zip").write_bytes(data)
        body = {
            "name": f"bad-{name}",
            "model_format": "ONNX",
            "url": f"{base}/{name}.zip",
            "model_content_hash_value": digest or sha256(data),
            "model_config": CONFIG,
        }
        task = wait_task(mlc, mlc.plugins.ml.register_model(body=body)["task_id"])
        assert task["state"] == "FAILED" and message in task["error"], (name, task)
        assert _model_count(mlc, f"bad-{name}") == 0
        assert not (ml.data_dir / "models" / sha256(data)).exists()
    task = wait_task(
        mlc,
        mlc.plugins.ml.register_model(
            body={
                "name": "bad-404",
                "model_format": "ONNX",
                "url": f"{base}/missing.zip",
                "model_content_hash_value": "0" * 64,
                "model_config": CONFIG,
            }
        )["task_id"],
    )
    assert task["state"] == "FAILED" and "Failed to download model" in task["error"]


@pytest.mark.usefixtures("allow_url")
def test_url_input_is_checked_before_the_task(raw: RawHttp) -> None:
    base = {"name": "x", "model_format": "ONNX", "model_content_hash_value": "0" * 64}
    _, err = raw.request("POST", f"{MODELS}/_register", {**base, "url": "gopher://x/m.zip", "model_config": CONFIG})
    assert_error(err, 400, "illegal_argument_exception", "URL can't match trusted url regex")
    _, err = raw.request("POST", f"{MODELS}/_register", {**base, "url": "http://127.0.0.1/m.zip"})
    assert_error(err, 400, "illegal_argument_exception", "model config is null")


@pytest.mark.usefixtures("allow_url")
def test_a_failed_deploy(mlc: OpenSearch, tmp_path: Path) -> None:
    data = model_zip(extra={"FAIL_LOAD": b""})
    archive = tmp_path / "fails.zip"
    archive.write_bytes(data)
    task = wait_task(
        mlc,
        mlc.plugins.ml.register_model(
            body={
                "name": "fails-to-load",
                "model_format": "ONNX",
                "url": archive.as_uri(),
                "model_content_hash_value": sha256(data),
                "model_config": CONFIG,
            }
        )["task_id"],
    )
    model_id = task["model_id"]
    deploy = wait_task(mlc, mlc.plugins.ml.deploy_model(model_id=model_id)["task_id"])
    assert deploy["state"] == "FAILED"
    import json

    [(_node_id, reason)] = json.loads(deploy["error"]).items()
    assert "told to fail" in reason
    assert mlc.plugins.ml.get_model(model_id=model_id)["model_state"] == "DEPLOY_FAILED"
    assert mlc.plugins.ml.delete_model(model_id=model_id)["result"] == "deleted"


# ---- chunked upload -------------------------------------------------------------------------------------------


def test_chunked_upload(mlc: OpenSearch, raw: RawHttp) -> None:
    meta = {"name": "chunked", "version": "1.0.0", "model_format": "ONNX", "model_config": CONFIG, "total_chunks": 3}
    data = model_zip()
    _, err = raw.request("POST", f"{MODELS}/_register_meta", {**meta, "model_content_hash_value": sha256(data)})
    assert_error(err, 400, "illegal_argument_exception", "allow_registering_model_via_local_file")
    setting = "plugins.ml_commons.allow_registering_model_via_local_file"
    mlc.cluster.put_settings(body={"persistent": {setting: "true"}})
    try:
        created = mlc.plugins.ml.register_model_meta(body={**meta, "model_content_hash_value": sha256(data)})
        assert created["status"] == "CREATED"
        model_id = created["model_id"]
        assert mlc.plugins.ml.get_model(model_id=model_id)["model_state"] == "REGISTERING"
        parts = [data[:100], data[100:200], data[200:]]
        headers = {"Content-Type": "application/octet-stream"}
        _, err = raw.request("POST", f"{MODELS}/{model_id}/upload_chunk/3", b"x", headers)
        assert_error(err, 400, "illegal_argument_exception", "Chunk number exceeds total chunks")
        _, err = raw.request("POST", f"{MODELS}/{model_id}/upload_chunk/0", b"", headers)
        assert_error(err, 400, "illegal_argument_exception", "Chunk size either 0 or null")
        for n, part in enumerate(parts):
            status, body = raw.request("POST", f"{MODELS}/{model_id}/upload_chunk/{n}", part, headers)
            assert (status, body) == (200, {"status": "Uploaded"})
        model = mlc.plugins.ml.get_model(model_id=model_id)
        assert model["model_state"] == "REGISTERED"
        assert model["model_content_size_in_bytes"] == len(data)
        _deploy(mlc, model_id)
        mlc.plugins.ml.undeploy_model(model_id=model_id)

        bad = mlc.plugins.ml.register_model_meta(
            body={**meta, "name": "chunked-bad", "total_chunks": 1, "model_content_hash_value": "0" * 64}
        )["model_id"]
        _, err = raw.request("POST", f"{MODELS}/{bad}/upload_chunk/0", data, headers)
        assert_error(err, 400, "illegal_argument_exception", "model content changed")
        assert raw.request("GET", f"{MODELS}/{bad}")[0] == 404
    finally:
        mlc.cluster.put_settings(body={"persistent": {setting: None}})


# ---- other functions, records ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("allow_url")
def test_sparse_encoding_and_text_similarity(mlc: OpenSearch, tmp_path: Path, raw: RawHttp) -> None:
    data = model_zip("TORCH_SCRIPT")
    archive = tmp_path / "m.zip"
    archive.write_bytes(data)
    ids = {}
    for function in ("SPARSE_ENCODING", "TEXT_SIMILARITY"):
        task = wait_task(
            mlc,
            mlc.plugins.ml.register_model(
                body={
                    "name": f"fn-{function}",
                    "model_format": "TORCH_SCRIPT",
                    "function_name": function.lower(),
                    "url": archive.as_uri(),
                    "model_content_hash_value": sha256(data),
                    "model_config": {
                        "model_type": "bert",
                        "embedding_dimension": 8,
                        "framework_type": "huggingface_transformers",
                    },
                }
            )["task_id"],
        )
        ids[function] = task["model_id"]
        _deploy(mlc, task["model_id"])
    sparse = mlc.plugins.ml.predict(
        algorithm_name="sparse_encoding", model_id=ids["SPARSE_ENCODING"], body={"text_docs": ["hello hello world"]}
    )
    assert sparse["inference_results"][0]["output"] == [
        {"name": "output", "dataAsMap": {"response": [{"hello": 2.0, "world": 1.0}]}}
    ]
    sim = mlc.plugins.ml.predict_model(
        model_id=ids["TEXT_SIMILARITY"], body={"query_text": "today is sunny", "text_docs": ["today is sunny", "no"]}
    )
    scores = [r["output"][0]["data"][0] for r in sim["inference_results"]]
    assert [r["output"][0]["shape"] for r in sim["inference_results"]] == [[1], [1]]
    assert scores[0] == pytest.approx(1.0, abs=1e-5) and scores[1] < scores[0]
    _, err = raw.request("POST", f"{MODELS}/{ids['TEXT_SIMILARITY']}/_predict", {"text_docs": ["a"]})
    assert_error(err, 400, "illegal_argument_exception", "No query text was provided")
    _, err = raw.request("POST", f"{MODELS}/{ids['SPARSE_ENCODING']}/_predict", {"text_docs": []})
    assert_error(err, 400, "illegal_argument_exception", "Empty text docs")
    for model_id in ids.values():
        mlc.plugins.ml.undeploy_model(model_id=model_id)


def test_get_search_update_delete(mlc: OpenSearch, raw: RawHttp) -> None:
    model_id = _register_pretrained(mlc, description="first")
    status, body = raw.request("PUT", f"{MODELS}/{model_id}", {"description": "second", "is_enabled": "false"})
    assert (status, body["result"], body["_index"]) == (200, "updated", ".plugins-ml-model")
    model = mlc.plugins.ml.get_model(model_id=model_id)
    assert (model["description"], model["is_enabled"]) == ("second", False)
    found = mlc.plugins.ml.search_models(
        body={
            "query": {
                "bool": {
                    "must": [{"match": {"description": "second"}}],
                    "must_not": [{"exists": {"field": "chunk_number"}}],
                }
            }
        }
    )
    assert [h["_id"] for h in found["hits"]["hits"]] == [model_id]
    _, err = raw.request("PUT", f"{MODELS}/nosuchmodel", {"description": "x"})
    assert_error(err, 404, "status_exception", "Failed to find model to update with the provided model id: nosuchmodel")
    _, err = raw.request("DELETE", f"{MODELS}/nosuchmodel")
    assert_error(err, 404, "status_exception", "Failed to find model")
    _, err = raw.request("POST", f"{MODELS}/nosuchmodel/_deploy")
    assert_error(err, 404, "status_exception", "Failed to find model")
    _, err = raw.request("POST", f"{MODELS}/nosuchmodel/_predict", {"text_docs": ["x"]})
    assert_error(err, 404, "status_exception", "Failed to find model")
    mlc.plugins.ml.delete_model(model_id=model_id)


def test_deployed_models_are_deployed_again_after_a_restart(tmp_path: Path, pretrained_zip: Path) -> None:  # noqa: F811
    server = ml_server(tmp_path / "data", pretrained_zip).start()
    try:
        client = OpenSearch(hosts=[{"host": server.host, "port": server.port}], timeout=60)
        kept = _register_pretrained(client)
        _deploy(client, kept)
        left = _register_pretrained(client)
    finally:
        server.stop()
    server = ml_server(tmp_path / "data", pretrained_zip).start()
    try:
        client = OpenSearch(hosts=[{"host": server.host, "port": server.port}], timeout=60)
        wait_state(client, kept, "DEPLOYED")
        out = client.plugins.ml.predict(algorithm_name="text_embedding", model_id=kept, body={"text_docs": ["x"]})
        assert out["inference_results"][0]["output"][0]["shape"] == [384]
        assert client.plugins.ml.get_model(model_id=left)["model_state"] == "REGISTERED"
    finally:
        server.stop()


def test_a_deploy_that_cannot_fit_names_the_memory_figures(mlc: OpenSearch) -> None:
    model_id = _register_pretrained(mlc)
    setting = "plugins.ml_commons.native_memory_threshold"
    mlc.cluster.put_settings(body={"transient": {setting: 1}})
    try:
        task = wait_task(mlc, mlc.plugins.ml.deploy_model(model_id=model_id)["task_id"])
    finally:
        mlc.cluster.put_settings(body={"transient": {setting: None}})
    import json

    assert task["state"] == "FAILED"
    [(_node_id, reason)] = json.loads(task["error"]).items()
    assert "Memory circuit breaker" in reason and "MB are available" in reason and "(1%)" in reason
    assert mlc.plugins.ml.get_model(model_id=model_id)["model_state"] == "DEPLOY_FAILED"
    _deploy(mlc, model_id)  # with the default threshold it fits
    mlc.plugins.ml.undeploy_model(model_id=model_id)
    assert mlc.plugins.ml.delete_model(model_id=model_id)["result"] == "deleted"
