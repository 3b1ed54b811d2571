"""Offline batch inference through a remote model's connector (ML Commons' `_batch_predict`).

The connector's `batch_predict` action starts a job at the provider (OpenAI batch API, SageMaker batch transform,
Bedrock model invocation jobs); the job's JSON becomes the `remote_job` of a BATCH_PREDICTION task. Each GET of the task
calls `batch_predict_status` with the job's string fields as parameters, merges the answer into `remote_job` and derives
the task state from the job's status field (`plugins.ml_commons.remote_job.*` settings); `_cancel` calls
`cancel_batch_predict`. A connector without a status / cancel action gets ML Commons' default one for the provider
its batch_predict URL names."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mlsearch.errors import IllegalArgumentError, MLSearchError, StatusError, UnsupportedOperationError
from mlsearch.ml.connectors import templates
from mlsearch.ml.connectors.model import Action, Connector
from mlsearch.ml.connectors.remote import RemoteConnector, RemoteResult
from mlsearch.ml.predictor import PredictInput
from mlsearch.ml.schemas import PredictBody, parse_body
from mlsearch.ml.tasks import Tasks

Setting = Callable[[str], Any]
# The deployed (or a freshly built) connector of a remote model, and whether the caller must close it.
ConnectorOf = Callable[[str, dict[str, Any]], tuple[RemoteConnector, bool]]

BATCH_PREDICTION = "BATCH_PREDICTION"
REMOTE = "REMOTE"
DISABLED = (
    "Offline Batch Inference is currently disabled. To enable it, update the setting "
    '"plugins.ml_commons.offline_batch_inference_enabled" to true.'
)
_P = "plugins.ml_commons."
# ML Commons checks these in this order: "cancelling" must win over "cancelled"'s pattern, and so on.
_STATES = ("cancelling", "cancelled", "completed", "expired", "failed")
_SERVERS = ("sagemaker", "openai", "bedrock", "cohere")  # ML Commons: the first one the URL contains


class BatchJobs:
    """Start, refresh and cancel remote batch jobs recorded as tasks."""

    def __init__(
        self,
        tasks: Tasks,
        find_model: Callable[[str], dict[str, Any] | None],
        connector_of: ConnectorOf,
        setting: Setting,
    ) -> None:
        self._tasks = tasks
        self._find_model = find_model
        self._connector_of = connector_of
        self._setting = setting

    def start(self, model_id: str, body: Any) -> dict[str, Any]:
        """Call the `batch_predict` action; the job it started becomes a RUNNING task's `remote_job`."""
        self._check_enabled()
        doc = self._model(model_id)
        req = parse_body(PredictBody, body)
        inputs = PredictInput(text_docs=[], parameters=dict(req.parameters or {}))
        result = self._call(model_id, doc, "BATCH_PREDICT", inputs)
        job = _job_of(result)
        if job is None:
            raise StatusError("Unable to create batch transform job", status=404)
        task_id = self._tasks.create(BATCH_PREDICTION, REMOTE, model_id=model_id, input_type=REMOTE, is_async=False)
        self._tasks.update(task_id, {"state": "RUNNING", "remote_job": job})
        return {"task_id": task_id, "status": "CREATED"}

    def refresh(self, task_id: str, task: dict[str, Any]) -> dict[str, Any]:
        """A batch task as GET returns it: its remote job's status fetched, merged and turned into the task state."""
        self._check_enabled()
        if task.get("function_name") != REMOTE:
            return task
        remote_job = dict(task.get("remote_job") or {})
        doc = self._owner(task)
        result = self._call(str(task.get("model_id")), doc, "BATCH_PREDICT_STATUS", _job_input(remote_job))
        status = _job_of(result)
        if status is None:
            raise StatusError("Couldn't fetch status of the transform job", status=404)
        remote_job.update(status)
        fields: dict[str, Any] = {"remote_job": remote_job}
        state = self._state_of(remote_job)
        if state is not None:
            fields["state"] = state
        self._tasks.update(task_id, fields)
        return self._tasks.get(task_id)

    def cancel(self, task_id: str) -> dict[str, Any]:
        task = self._tasks.find(task_id)
        if task is None:
            raise StatusError("Fail to find task", status=404)
        if task.get("task_type") == BATCH_PREDICTION:
            self._check_enabled()
        if task.get("task_type") != BATCH_PREDICTION or task.get("function_name") != REMOTE:
            raise IllegalArgumentError("The task ID you provided does not have any associated batch job")
        doc = self._owner(task)
        job = dict(task.get("remote_job") or {})
        result = self._call(str(task.get("model_id")), doc, "CANCEL_BATCH_PREDICT", _job_input(job))
        if result.status != 200:
            raise StatusError("Couldn't cancel the transform job. Please try again", status=500)
        return {"status": "OK"}

    # ---- helpers ----------------------------------------------------------------------------------------

    def _check_enabled(self) -> None:
        if not self._setting(_P + "offline_batch_inference_enabled"):
            raise StatusError(DISABLED, status=400)

    def _model(self, model_id: str) -> dict[str, Any]:
        doc = self._find_model(model_id)
        if doc is None:
            raise StatusError("Failed to find model", status=404)
        if str(doc.get("algorithm", "")).upper() != REMOTE:
            raise IllegalArgumentError("Batch prediction is only supported for remote models")
        return doc

    def _owner(self, task: dict[str, Any]) -> dict[str, Any]:
        doc = self._find_model(str(task.get("model_id")))
        if doc is None:
            raise StatusError("Failed to retrieve the ML model for the given task ID", status=404)
        return doc

    def _call(self, model_id: str, doc: dict[str, Any], action_type: str, inputs: PredictInput) -> RemoteResult:
        remote, owned = self._connector_of(model_id, doc)
        try:
            action = remote.connector.action(action_type) or default_action(remote.connector, action_type)
            return remote.run(action, inputs)
        except MLSearchError:
            raise
        except Exception as exc:  # an answer we could not use: a status, never a bare 500
            raise StatusError(f"Error from remote service: {exc}", status=502) from exc
        finally:
            if owned:
                remote.close()

    def _state_of(self, remote_job: dict[str, Any]) -> str | None:
        state = None
        for field in self._setting(_P + "remote_job.status_field") or []:
            if field not in remote_job:
                continue
            value = "null" if remote_job[field] is None else str(remote_job[field])
            for name in _STATES:
                if re.search(str(self._setting(_P + f"remote_job.status_regex.{name}")), value, re.IGNORECASE):
                    state = name.upper()
                    break
        return state


def _job_of(result: RemoteResult) -> dict[str, Any] | None:
    if not 200 <= result.status < 300 or not result.tensors:
        return None
    data = result.tensors[0].data_as_map
    return dict(data) if isinstance(data, dict) else None


def _job_input(remote_job: dict[str, Any]) -> PredictInput:
    """The job's string fields as request parameters; SageMaker's job name is derived from its ARN, as ML Commons does."""
    params = {k: v for k, v in remote_job.items() if isinstance(v, str)}
    if "TransformJobName" not in params and "TransformJobArn" in params:
        params["TransformJobName"] = params["TransformJobArn"].rsplit("/", 1)[-1]
    return PredictInput(text_docs=[], parameters=params)


def default_action(connector: Connector, action_type: str) -> Action:
    """ML Commons' status / cancel action derived from the `batch_predict` action's URL, for the providers it knows."""
    batch = connector.action("BATCH_PREDICT")
    if batch is None or action_type == "BATCH_PREDICT":
        raise IllegalArgumentError(f"no {action_type} action found")
    url = templates.substitute(str(batch.url), templates.defaults(connector.parameters))
    cancel = action_type == "CANCEL_BATCH_PREDICT"
    server = next((s for s in _SERVERS if s in url), "")
    body = None
    if server == "sagemaker":
        url = url.replace("CreateTransformJob", "StopTransformJob" if cancel else "DescribeTransformJob")
        body = '{ "TransformJobName" : "${parameters.TransformJobName}"}'
        method = "POST"
    elif server in ("openai", "cohere"):
        url += "/${parameters.id}/cancel" if cancel else "/${parameters.id}"
        method = "POST" if cancel else "GET"
    elif server == "bedrock":
        url += "/${parameters.processedJobArn}/stop" if cancel else "/${parameters.processedJobArn}"
        method = "POST" if cancel else "GET"
    else:
        what = "cancel the batch job" if cancel else "get the batch job details"
        raise UnsupportedOperationError(f"Please configure the action type to {what} in the connector")
    return Action(action_type=action_type, method=method, url=url, headers=batch.headers, request_body=body)
