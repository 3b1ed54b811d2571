"""`_batch_predict` of remote models against an OpenAI-like batch API: the task, its remote job refreshed on GET, cancel."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch

from tests.api.ml_support import P, trusted_fixture  # noqa: F401
from tests.batch_provider import KEY, BatchProvider
from tests.conftest import RawHttp, assert_error

ML = "/_plugins/_ml"

# Remote models here deploy on first predict; undeploy and delete them when the module ends.
pytestmark = pytest.mark.usefixtures("remove_deployed_models")


@pytest.fixture
def provider(trusted: None) -> Iterator[BatchProvider]:
    p = BatchProvider()
    yield p
    p.close()


def _action(action_type: str, method: str, url: str, body: str | None = None) -> dict[str, Any]:
    action = {
        "action_type": action_type,
        "method": method,
        "url": url,
        "headers": {"Authorization": "Bearer ${credential.openAI_key}"},
    }
    return {**action, "request_body": body} if body is not None else action


def _connector(base: str, *, status_and_cancel: bool) -> dict[str, Any]:
    batch_body = (
        '{ "input_file_id": "${parameters.input_file_id}", "endpoint": "${parameters.endpoint}", '
        '"completion_window": "24h" }'
    )
    actions = [
        _action("predict", "POST", f"{base}/v1/embeddings", '{ "input": ${parameters.input} }'),
        _action("batch_predict", "POST", f"{base}/v1/batches", batch_body),
    ]
    if status_and_cancel:
        actions.append(_action("batch_predict_status", "GET", f"{base}/v1/batches/${{parameters.id}}"))
        actions.append(_action("cancel_batch_predict", "POST", f"{base}/v1/batches/${{parameters.id}}/cancel"))
    return {
        "name": "OpenAI batch",
        "description": "offline batch inference",
        "version": "1",
        "protocol": "http",
        "parameters": {"model": "text-embedding-ada-002", "input_file_id": "file-abc123", "endpoint": "/v1/embeddings"},
        "credential": {"openAI_key": KEY},
        "actions": actions,
    }


def _model(http: RawHttp, connector: dict[str, Any]) -> str:
    status, out = http.request("POST", f"{ML}/connectors/_create", connector)
    assert status == 200, out
    status, out = http.request(
        "POST",
        f"{ML}/models/_register",
        {"name": "batch model", "function_name": "remote", "connector_id": out["connector_id"]},
    )
    assert status == 200, out
    return out["model_id"]


def _start(http: RawHttp, model_id: str, body: dict[str, Any] | None = None) -> str:
    status, out = http.request("POST", f"{ML}/models/{model_id}/_batch_predict", body or {"parameters": {}})
    assert status == 200, out
    assert out["status"] == "CREATED" and list(out) == ["task_id", "status"], out
    return out["task_id"]


def _task(http: RawHttp, task_id: str) -> dict[str, Any]:
    status, out = http.request("GET", f"{ML}/tasks/{task_id}")
    assert status == 200, out
    return out


def test_batch_job_runs_to_completion(http: RawHttp, provider: BatchProvider) -> None:
    model_id = _model(http, _connector(provider.url, status_and_cancel=True))
    task_id = _start(http, model_id, {"parameters": {"input_file_id": "file-request-wins"}})
    method, path, body = provider.requests[-1]
    assert (method, path) == ("POST", "/v1/batches")
    assert body == {"input_file_id": "file-request-wins", "endpoint": "/v1/embeddings", "completion_window": "24h"}

    task = _task(http, task_id)  # each GET asks the provider: validating -> in_progress
    assert task["task_type"] == "BATCH_PREDICTION" and task["function_name"] == "REMOTE"
    assert task["input_type"] == "REMOTE" and task["model_id"] == model_id and task["is_async"] is False
    assert task["state"] == "RUNNING"
    assert task["remote_job"]["id"] == "batch_0001" and task["remote_job"]["status"] == "in_progress"
    assert provider.requests[-1][:2] == ("GET", "/v1/batches/batch_0001")
    assert _task(http, task_id)["remote_job"]["status"] == "finalizing"
    done = _task(http, task_id)
    assert done["state"] == "COMPLETED" and done["remote_job"]["status"] == "completed"
    assert done["remote_job"]["input_file_id"] == "file-request-wins"


def test_default_status_and_cancel_actions_from_the_batch_url(http: RawHttp, provider: BatchProvider) -> None:
    # No status / cancel actions: as ML Commons, derive them from a batch_predict URL that names OpenAI.
    model_id = _model(http, _connector(f"{provider.url}/openai", status_and_cancel=False))
    task_id = _start(http, model_id)
    assert _task(http, task_id)["remote_job"]["status"] == "in_progress"
    assert provider.requests[-1][:2] == ("GET", "/openai/v1/batches/batch_0001")

    status, out = http.request("POST", f"{ML}/tasks/{task_id}/_cancel")
    assert (status, out) == (200, {"status": "OK"})
    assert provider.requests[-1][:2] == ("POST", "/openai/v1/batches/batch_0001/cancel")
    cancelled = _task(http, task_id)
    assert cancelled["state"] == "CANCELLED" and cancelled["remote_job"]["status"] == "cancelled"


def test_provider_errors_reach_the_caller_and_leave_no_task(http: RawHttp, provider: BatchProvider) -> None:
    model_id = _model(http, _connector(provider.url, status_and_cancel=True))
    _, out = http.request("POST", f"{ML}/models/{model_id}/_batch_predict", {"parameters": {"input_file_id": "x"}})
    assert_error(out, 400, "status_exception", "Error from remote service")
    assert "Invalid 'input_file_id'" in out["error"]["reason"]
    query = {
        "query": {"bool": {"filter": [{"term": {"model_id": model_id}}, {"term": {"task_type": "BATCH_PREDICTION"}}]}}
    }
    status, found = http.request("POST", f"{ML}/tasks/_search", query)
    assert status == 200 and found["hits"]["total"]["value"] == 0, found

    task_id = _start(http, model_id)
    provider.fail_next.append(400)  # the status call fails: the GET says so, with the provider's status
    _, out = http.request("GET", f"{ML}/tasks/{task_id}")
    assert_error(out, 400, "status_exception", "The server answered 400")
    assert _task(http, task_id)["state"] == "RUNNING"


def test_cancel_and_batch_errors(http: RawHttp, provider: BatchProvider) -> None:
    _, out = http.request("POST", f"{ML}/tasks/no-such-task/_cancel")
    assert_error(out, 404, "status_exception", "Fail to find task")

    model_id = _model(http, _connector(provider.url, status_and_cancel=True))
    _, found = http.request("POST", f"{ML}/tasks/_search", {"query": {"term": {"model_id": model_id}}, "size": 1})
    register_task = found["hits"]["hits"][0]["_id"]
    _, out = http.request("POST", f"{ML}/tasks/{register_task}/_cancel")
    assert_error(
        out, 400, "illegal_argument_exception", "The task ID you provided does not have any associated batch job"
    )

    _, out = http.request("POST", f"{ML}/models/no-such-model/_batch_predict", {"parameters": {}})
    assert_error(out, 404, "status_exception", "Failed to find model")

    # A provider ML Commons has no default status action for: the connector must say how.
    unknown = _model(http, _connector(provider.url, status_and_cancel=False))
    task_id = _start(http, unknown)
    _, out = http.request("GET", f"{ML}/tasks/{task_id}")
    assert_error(
        out, 400, "unsupported_operation_exception", "Please configure the action type to get the batch job details"
    )

    predict_only = _connector(provider.url, status_and_cancel=False)
    predict_only["actions"] = predict_only["actions"][:1]
    only = _model(http, predict_only)
    _, out = http.request("POST", f"{ML}/models/{only}/_batch_predict", {"parameters": {}})
    assert_error(out, 400, "illegal_argument_exception", "no BATCH_PREDICT action found")


def test_offline_batch_inference_can_be_disabled(client: OpenSearch, http: RawHttp, provider: BatchProvider) -> None:
    model_id = _model(http, _connector(provider.url, status_and_cancel=True))
    task_id = _start(http, model_id)
    client.cluster.put_settings(body={"persistent": {P + "offline_batch_inference_enabled": False}})
    try:
        _, out = http.request("POST", f"{ML}/models/{model_id}/_batch_predict", {"parameters": {}})
        assert_error(out, 400, "status_exception", "Offline Batch Inference is currently disabled")
        _, out = http.request("GET", f"{ML}/tasks/{task_id}")
        assert_error(out, 400, "status_exception", "offline_batch_inference_enabled")
    finally:
        client.cluster.put_settings(body={"persistent": {P + "offline_batch_inference_enabled": None}})
    assert _task(http, task_id)["state"] == "RUNNING"
