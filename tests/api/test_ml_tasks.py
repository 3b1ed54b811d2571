"""Tasks: get, search, delete (a running one refused); profile and stats while models run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from tests.api.ml_support import PRETRAINED, ml, model_zip, pretrained_zip, sha256, wait_state, wait_task  # noqa: F401
from tests.conftest import RawHttp, ServerProcess, assert_error

TASKS = "/_plugins/_ml/tasks"


@pytest.fixture(scope="module")
def mlc(ml: ServerProcess) -> OpenSearch:  # noqa: F811
    client = OpenSearch(hosts=[{"host": ml.host, "port": ml.port}], timeout=60)
    client.cluster.put_settings(body={"persistent": {"plugins.ml_commons.allow_registering_model_via_url": "true"}})
    return client


@pytest.fixture
def raw(ml: ServerProcess) -> RawHttp:  # noqa: F811
    return RawHttp(ml.url)


def _register(mlc: OpenSearch) -> str:
    task = wait_task(
        mlc,
        mlc.plugins.ml.register_model(body={"name": PRETRAINED, "version": "1.0.1", "model_format": "ONNX"})["task_id"],
    )
    return task["model_id"]


def test_a_register_task_goes_to_completed_with_its_model(mlc: OpenSearch) -> None:
    created = mlc.plugins.ml.register_model(body={"name": PRETRAINED, "version": "1.0.1", "model_format": "ONNX"})
    assert created["status"] == "CREATED"
    task = wait_task(mlc, created["task_id"])
    assert task["state"] == "COMPLETED"
    assert task["task_type"] == "REGISTER_MODEL"
    assert task["function_name"] == "TEXT_EMBEDDING"
    assert task["is_async"] is True
    assert len(task["worker_node"]) == 1
    assert task["last_update_time"] >= task["create_time"]
    assert mlc.plugins.ml.get_model(model_id=task["model_id"])["model_state"] == "REGISTERED"


def test_get_and_delete_unknown(raw: RawHttp) -> None:
    for method in ("GET", "DELETE"):
        _status, body = raw.request(method, f"{TASKS}/nosuchtask")
        assert_error(body, 404, "status_exception", "Failed to find task")


def test_search_and_delete(mlc: OpenSearch, raw: RawHttp) -> None:
    model_id = _register(mlc)
    found = mlc.plugins.ml.search_tasks(
        body={
            "query": {"bool": {"filter": [{"term": {"model_id": model_id}}, {"term": {"task_type": "REGISTER_MODEL"}}]}}
        }
    )
    assert found["hits"]["total"]["value"] == 1
    hit = found["hits"]["hits"][0]
    assert hit["_index"] == ".plugins-ml-task"
    assert hit["_source"]["state"] == "COMPLETED"
    status, body = raw.request("GET", f"{TASKS}/_search", {"query": {"term": {"state": "COMPLETED"}}, "size": 1})
    assert status == 200 and body["hits"]["total"]["value"] >= 1
    deleted = mlc.plugins.ml.delete_task(task_id=hit["_id"])
    assert (deleted["_index"], deleted["_id"], deleted["result"]) == (".plugins-ml-task", hit["_id"], "deleted")
    status, body = raw.request("GET", f"{TASKS}/{hit['_id']}")
    assert status == 404


def _gated_model(mlc: OpenSearch, tmp_path: Path) -> tuple[str, Path]:
    """A model whose deploy waits until the returned path exists (so its task stays RUNNING)."""
    gate = tmp_path / "open-gate"
    data = model_zip(extra={"GATE": str(gate).encode()})
    archive = tmp_path / "gated.zip"
    archive.write_bytes(data)
    task = wait_task(
        mlc,
        mlc.plugins.ml.register_model(
            body={
                "name": "gated-model",
                "model_format": "ONNX",
                "url": archive.as_uri(),
                "model_content_hash_value": sha256(data),
                "model_config": {
                    "model_type": "bert",
                    "embedding_dimension": 8,
                    "framework_type": "sentence_transformers",
                },
            }
        )["task_id"],
    )
    assert task["state"] == "COMPLETED", task
    return task["model_id"], gate


def _wait_running(mlc: OpenSearch, task_id: str) -> None:
    deadline = time.monotonic() + 30
    while mlc.plugins.ml.get_task(task_id=task_id)["state"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_running_task_cannot_be_deleted_and_shows_in_the_profile(
    mlc: OpenSearch, raw: RawHttp, tmp_path: Path
) -> None:
    model_id, gate = _gated_model(mlc, tmp_path)
    task_id = mlc.plugins.ml.deploy_model(model_id=model_id)["task_id"]
    try:
        _wait_running(mlc, task_id)
        assert mlc.plugins.ml.get_model(model_id=model_id)["model_state"] == "DEPLOYING"
        _, body = raw.request("DELETE", f"{TASKS}/{task_id}")
        assert_error(body, 400, "status_exception", "Task cannot be deleted in running state. Try after some time.")
        _, profile = raw.request("GET", "/_plugins/_ml/profile/tasks")
        [node] = profile["nodes"].values()
        assert node["tasks"][task_id]["task_type"] == "DEPLOY_MODEL"
        assert node["tasks"][task_id]["model_id"] == model_id
        _status, stats = raw.request("GET", "/_plugins/_ml/stats")
        [node_stats] = stats["nodes"].values()
        assert node_stats["ml_executing_task_count"] >= 1
    finally:
        gate.touch()
    assert wait_task(mlc, task_id)["state"] == "COMPLETED"
    assert mlc.plugins.ml.delete_task(task_id=task_id)["result"] == "deleted"
    mlc.plugins.ml.undeploy_model(model_id=model_id)


def test_profile_of_a_deployed_model_has_predict_latencies(mlc: OpenSearch, raw: RawHttp) -> None:
    model_id = _register(mlc)
    wait_task(mlc, mlc.plugins.ml.deploy_model(model_id=model_id)["task_id"])
    for _ in range(3):
        mlc.plugins.ml.predict(algorithm_name="text_embedding", model_id=model_id, body={"text_docs": ["a b"]})
    _, profile = raw.request("GET", f"/_plugins/_ml/profile/models/{model_id}")
    [(node_id, node)] = profile["nodes"].items()
    entry = node["models"][model_id]
    assert entry["model_state"] == "DEPLOYED"
    assert entry["worker_nodes"] == entry["target_worker_nodes"] == [node_id]
    stats = entry["predict_request_stats"]
    assert stats["count"] == 3
    assert 0 <= stats["min"] <= stats["p50"] <= stats["max"]
    assert mlc.plugins.ml.get_profile_models(model_id="nosuchmodel") == {}
    _, by_model = raw.request("GET", "/_plugins/_ml/profile?view=model", {"model_ids": [model_id]})
    assert by_model["models"][model_id]["nodes"][node_id]["model_state"] == "DEPLOYED"
    _, all_profile = raw.request("GET", "/_plugins/_ml/profile")
    assert model_id in all_profile["nodes"][node_id]["models"]
    ml_stats = mlc.plugins.ml.get_stats()
    node_stats = ml_stats["nodes"][node_id]
    assert node_stats["models"][model_id]["predict"]["ml_action_request_count"] == 3
    assert node_stats["algorithms"]["text_embedding"]["predict"]["ml_action_request_count"] >= 3
    assert node_stats["ml_deployed_model_count"] >= 1
    assert ml_stats["ml_model_index_status"] == "green"
    assert ml_stats["ml_model_count"] >= 1
    _, one = raw.request("GET", "/_plugins/_ml/stats/ml_model_count")
    assert set(one) == {"ml_model_count", "nodes"}
    _status, local = raw.request("GET", f"/_plugins/_ml/{node_id}/stats/ml_request_count")
    assert set(local["nodes"][node_id]) == {"ml_request_count"}
    mlc.plugins.ml.undeploy_model(model_id=model_id)
