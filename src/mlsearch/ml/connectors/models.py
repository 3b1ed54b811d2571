"""Remote models (`function_name: remote`): register with `connector_id` or an inline `connector`, deploy (a
RemotePredictor in the registry), predict with ML Commons' remote output, update and the connectors they use."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from pydantic import Field

from mlsearch.errors import IllegalArgumentError, StatusError
from mlsearch.ml.connectors.batch import BATCH_PREDICTION, BatchJobs
from mlsearch.ml.connectors.model import Connector, public_form
from mlsearch.ml.connectors.remote import RateLimiter, RemoteConnector, RemotePredictor
from mlsearch.ml.connectors.store import ConnectorStore, check_enabled
from mlsearch.ml.groups import ModelGroups
from mlsearch.ml.ids import new_id
from mlsearch.ml.inference import render_output
from mlsearch.ml.predictor import PredictInput
from mlsearch.ml.registry import DEPLOYED, REGISTERED, UNDEPLOYED, ModelRegistry
from mlsearch.ml.schemas import AccessFields, ModelConfigBody, PredictBody, parse_body
from mlsearch.ml.system_indices import TASK_INDEX, SystemIndices
from mlsearch.ml.tasks import Tasks, now_millis

REMOTE = "REMOTE"
Setting = Callable[[str], Any]
_P = "plugins.ml_commons."


class RegisterRemoteBody(AccessFields):
    name: str | None = None
    description: str | None = None
    function_name: str | None = None
    model_group_id: str | None = None
    connector_id: str | None = None
    connector: dict[str, Any] | None = None
    config: ModelConfigBody | None = Field(None, alias="model_config")
    is_enabled: bool | None = None
    rate_limiter: dict[str, Any] | None = None
    deploy_setting: dict[str, Any] | None = None
    interface: dict[str, Any] | None = None
    guardrails: dict[str, Any] | None = None
    parameters: dict[str, Any] | None = None  # model-level defaults over the connector's (extension)
    deploy_model: bool | None = None


def is_remote(body_or_doc: Any) -> bool:
    if not isinstance(body_or_doc, dict):
        return False
    name = body_or_doc.get("function_name") or body_or_doc.get("algorithm")
    return isinstance(name, str) and name.upper() == REMOTE


class RemoteModels:
    def __init__(
        self,
        store: ConnectorStore,
        registry: ModelRegistry,
        groups: ModelGroups,
        tasks: Tasks,
        records: SystemIndices,
        setting: Setting,
        access_control: Callable[[], bool],
    ) -> None:
        self.store = store
        self._registry = registry
        self._groups = groups
        self._tasks = tasks
        self._records = records
        self._setting = setting
        self._access_control = access_control
        self._deploy_lock = threading.Lock()
        self.batch = BatchJobs(tasks, registry.find, self._batch_connector, setting)
        tasks.add_view(BATCH_PREDICTION, self.batch.refresh)

    # ---- register ---------------------------------------------------------------------------------------

    def register(self, body: Any, *, deploy: bool) -> dict[str, Any]:
        check_enabled(self._setting)
        req = parse_body(RegisterRemoteBody, body)
        if not req.name:
            raise IllegalArgumentError("model name is null")
        if req.model_group_id is not None and self._records.get(".plugins-ml-model-group", req.model_group_id) is None:
            raise StatusError(f"Failed to find model group with ID: {req.model_group_id}", status=404)
        RateLimiter.of(req.rate_limiter)  # validated now, used once deployed
        doc = self._record(req)
        task_id = self._tasks.create("REGISTER_MODEL", REMOTE, is_async=False)
        model_id = new_id()
        self._registry.create(model_id, doc)
        self._records.update(TASK_INDEX, task_id, {"model_id": model_id, "state": "COMPLETED"})
        if deploy or req.deploy_model:
            self.deploy(model_id)
        return {"task_id": task_id, "status": "CREATED", "model_id": model_id}

    def _record(self, req: RegisterRemoteBody) -> dict[str, Any]:
        assert req.name is not None
        if req.connector_id is None and req.connector is None:
            raise IllegalArgumentError(
                "Connector endpoint is required when creating a remote model without connector id!"
            )
        doc: dict[str, Any] = {}
        if req.connector_id is not None:
            self.store.get_stored(req.connector_id)
            doc["connector_id"] = req.connector_id
        else:
            connector = self.store.validated(req.connector)
            if connector.action("PREDICT") is None:
                raise IllegalArgumentError(
                    "Connector endpoint is required when creating a remote model without connector id!"
                )
            doc["connector"] = self.store.stored(connector)
        group_id = req.model_group_id or self._groups.group_for_model(
            req.name, req, access_control=self._access_control()
        )
        stamp = now_millis()
        record: dict[str, Any] = {
            "name": req.name,
            "model_group_id": group_id,
            "algorithm": REMOTE,
            "model_version": self._groups.next_version(group_id),
            **({"description": req.description} if req.description is not None else {}),
            "model_state": REGISTERED,
            **doc,
        }
        if req.config is not None:
            record["model_config"] = req.config.to_record()
        for name in ("is_enabled", "rate_limiter", "deploy_setting", "interface", "guardrails", "parameters"):
            if getattr(req, name) is not None:
                record[name] = getattr(req, name)
        record.update({"created_time": stamp, "last_updated_time": stamp, "last_registered_time": stamp})
        return record

    # ---- deploy -----------------------------------------------------------------------------------------

    def deploy(self, model_id: str, node_id: str | None = None) -> dict[str, Any]:
        check_enabled(self._setting)
        task_id = self._tasks.create("DEPLOY_MODEL", REMOTE, model_id=model_id, is_async=False)
        self.load(model_id, self._registry.get(model_id))
        self._records.update(TASK_INDEX, task_id, {"state": "COMPLETED"})
        return {"task_id": task_id, "task_type": "DEPLOY_MODEL", "status": "COMPLETED"}

    def load(self, model_id: str, doc: dict[str, Any]) -> RemotePredictor:
        """Build the model's predictor (connector, executor, rate limiter) and mark the model DEPLOYED."""
        predictor = RemotePredictor(self._connector_for(doc), RateLimiter.of(doc.get("rate_limiter")))
        self._registry.install(model_id, predictor)
        self._registry.set_state(
            model_id,
            DEPLOYED,
            last_deployed_time=now_millis(),
            current_worker_node_count=1,
            planning_worker_node_count=1,
            deploy_to_all_nodes=True,
        )
        return predictor

    def _connector_for(self, doc: dict[str, Any]) -> RemoteConnector:
        stored = self.store.get_stored(doc["connector_id"]) if doc.get("connector_id") else doc.get("connector")
        if not stored:
            raise IllegalArgumentError("The remote model has no connector")
        connector = Connector.model_validate(stored)
        return RemoteConnector(
            connector,
            dict(stored.get("credential") or {}),
            self.store.secrets.decrypt_map,
            self._setting,
            doc.get("parameters"),
        )

    def _batch_connector(self, model_id: str, doc: dict[str, Any]) -> tuple[RemoteConnector, bool]:
        """A batch job's connector: the deployed model's (a deploy as predict would do it), else a temporary one."""
        check_enabled(self._setting)
        found = self._registry.predictor(model_id)
        if isinstance(found, RemotePredictor):
            return found.remote, False
        if self._setting(_P + "model_auto_deploy.enable") and doc.get("is_enabled") is not False:
            return self.predictor(model_id, doc).remote, False
        return self._connector_for(doc), True

    def predictor(self, model_id: str, doc: dict[str, Any]) -> RemotePredictor:
        """The deployed predictor, deploying it first when `model_auto_deploy.enable` allows (as ML Commons does)."""
        check_enabled(self._setting)
        if doc.get("is_enabled") is False:
            raise IllegalArgumentError("Model is disabled.")
        found = self._registry.predictor(model_id)
        if isinstance(found, RemotePredictor):
            return found
        if not self._setting(_P + "model_auto_deploy.enable"):
            raise IllegalArgumentError("Model not ready yet. Please deploy the model first.")
        with self._deploy_lock:  # concurrent first calls deploy once, not once each (and close each other's pools)
            found = self._registry.predictor(model_id)
            if isinstance(found, RemotePredictor):
                return found
            return self.load(model_id, doc)

    # ---- predict ----------------------------------------------------------------------------------------

    def predict(self, model_id: str, doc: dict[str, Any], body: Any) -> dict[str, Any]:
        req = parse_body(PredictBody, body)
        docs = [d if d is not None else "" for d in req.text_docs or []]
        inputs = PredictInput(
            text_docs=docs, query_text=req.query_text, target_response=None, parameters=dict(req.parameters or {})
        )
        result = self.predictor(model_id, doc).call(inputs)
        rendered = render_output([result.tensors], req, REMOTE)
        for item in rendered["inference_results"]:
            item["status_code"] = result.status
        return rendered

    # ---- records ----------------------------------------------------------------------------------------

    def users_of(self, connector_id: str) -> list[str]:
        return [m for m, doc in self._registry.all_models() if doc.get("connector_id") == connector_id]

    def update(self, model_id: str, doc: dict[str, Any], partial: dict[str, Any]) -> dict[str, Any]:
        """A model update's remote part: the inline connector merged and re-encrypted, or a new connector id."""
        connector = partial.pop("connector", None)
        if connector is not None:
            if not doc.get("connector"):
                raise IllegalArgumentError(
                    "Trying to update the connector of a model that uses a standalone connector."
                )
            partial["connector"] = self.store.merged(doc["connector"], connector)
        if partial.get("connector_id") is not None:
            self.store.get_stored(partial["connector_id"])
        return partial

    def reload(self, model_id: str) -> None:
        """After an update, a deployed model picks up its new connector, limiter and parameters."""
        old = self._registry.predictor(model_id)
        if isinstance(old, RemotePredictor):
            self.load(model_id, self._registry.get(model_id))

    def reload_users(self, connector_id: str) -> None:
        for model_id in self.users_of(connector_id):
            self.reload(model_id)

    def undeployed_state(self) -> str:
        return UNDEPLOYED


def public_model(doc: dict[str, Any]) -> dict[str, Any]:
    """A remote model record as get / search return it: the inline connector without its credential."""
    if isinstance(doc.get("connector"), dict):
        return {**doc, "connector": public_form(doc["connector"])}
    return doc
