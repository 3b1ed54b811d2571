"""Model records in `.plugins-ml-model` with their state machine, and the deployed predictors held in memory.

Records say what a model is and where its artefact lives; predictors are models loaded and ready. They are kept
apart, as ML Commons keeps them: a record outlives a restart, a predictor does not."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlsearch.engine.index import OpResult
from mlsearch.errors import StatusError
from mlsearch.ml.predictor import ModelConfig, Predictor, Runtime
from mlsearch.ml.system_indices import MODEL_INDEX, SystemIndices
from mlsearch.ml.tasks import now_millis

log = logging.getLogger(__name__)

RuntimeFor = Callable[[str], Runtime]

REGISTERING, REGISTERED = "REGISTERING", "REGISTERED"
DEPLOYING, DEPLOYED, DEPLOY_FAILED, UNDEPLOYED = "DEPLOYING", "DEPLOYED", "DEPLOY_FAILED", "UNDEPLOYED"
# Models of the classic algorithms (`_train`): their learned state is in the record (`model_content`), no artefact.
TRAINED = "TRAINED"
# Fields holding a model's content, left out of get and search answers unless asked for (as ML Commons does).
CONTENT_FIELDS = ("model_content", "content", "ui_metadata")
# States in which the model counts as wanting to be deployed: after a restart they are deployed again.
WANTS_DEPLOYMENT = (DEPLOYED, DEPLOYING)


class ModelRegistry:
    """Model records (CRUD and state changes) and the predictors of deployed models."""

    def __init__(self, records: SystemIndices, runtime_for: RuntimeFor) -> None:
        self._records = records
        self._runtime_for = runtime_for
        self._predictors: dict[str, Predictor] = {}
        self._lock = threading.Lock()

    # ---- records ----------------------------------------------------------------------------------------

    def create(self, model_id: str, doc: dict[str, Any]) -> None:
        self._records.create(MODEL_INDEX, model_id, doc)

    def find(self, model_id: str) -> dict[str, Any] | None:
        doc = self._records.get(MODEL_INDEX, model_id)
        if doc is None or "chunk_number" in doc:
            return None
        return doc

    def get(self, model_id: str) -> dict[str, Any]:
        doc = self.find(model_id)
        if doc is None:
            raise StatusError("Failed to find model", status=404)
        return doc

    def set_fields(self, model_id: str, fields: dict[str, Any]) -> None:
        self._records.update(MODEL_INDEX, model_id, {**fields, "last_updated_time": now_millis()})

    def set_state(self, model_id: str, state: str, **fields: Any) -> None:
        self.set_fields(model_id, {"model_state": state, **fields})

    def update(self, model_id: str, partial: dict[str, Any]) -> OpResult:
        doc = self.find(model_id)
        if doc is None:
            raise StatusError(f"Failed to find model to update with the provided model id: {model_id}", status=404)
        if doc.get("model_state") == DEPLOYING:
            raise StatusError(
                f"Model is deploying. Please wait for the model to complete deployment. model ID {model_id}", status=400
            )
        return self._records.update(MODEL_INDEX, model_id, {**partial, "last_updated_time": now_millis()})

    def delete(self, model_id: str) -> OpResult:
        doc = self.get(model_id)
        if doc.get("model_state") in WANTS_DEPLOYMENT or self.predictor(model_id) is not None:
            raise StatusError(
                "Model cannot be deleted in deploying or deployed state. Try undeploy model first then delete",
                status=400,
            )
        return self._records.delete(MODEL_INDEX, model_id)

    def all_models(self, query: dict[str, Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
        must_not = [{"exists": {"field": "chunk_number"}}]
        full = {"bool": {"must": [query or {"match_all": {}}], "must_not": must_not}}
        return self._records.find_all(MODEL_INDEX, full)

    def search(self, body: Any) -> dict[str, Any]:
        """Search model records; content fields are left out of `_source` unless the body's `_source` says otherwise."""
        if body is None:
            body = {}
        if isinstance(body, dict) and "_source" not in body:
            body = {**body, "_source": {"excludes": list(CONTENT_FIELDS)}}
        response = self._records.search(MODEL_INDEX, body)
        for hit in response.get("hits", {}).get("hits", []):
            connector = (hit.get("_source") or {}).get("connector")
            if isinstance(connector, dict):
                connector.pop("credential", None)  # inline connectors' credentials never leave
        return response

    # ---- predictors -------------------------------------------------------------------------------------

    def load(self, model_id: str, doc: dict[str, Any], directory: Path) -> Predictor:
        """Load the model's artefact through its runtime and keep the predictor (replacing an older one)."""
        runtime = self._runtime_for(str(doc.get("model_format", "")))
        predictor = runtime.load(
            directory, str(doc.get("algorithm", "TEXT_EMBEDDING")), model_config_of(doc.get("model_config") or {})
        )
        with self._lock:
            previous = self._predictors.pop(model_id, None)
            self._predictors[model_id] = predictor
        if previous is not None:
            _close(model_id, previous)
        return predictor

    def install(self, model_id: str, predictor: Predictor) -> None:
        """Keep a predictor built elsewhere (a remote model's), replacing and closing an older one."""
        with self._lock:
            previous = self._predictors.pop(model_id, None)
            self._predictors[model_id] = predictor
        if previous is not None:
            _close(model_id, previous)

    def unload(self, model_id: str) -> bool:
        with self._lock:
            predictor = self._predictors.pop(model_id, None)
        if predictor is None:
            return False
        _close(model_id, predictor)
        return True

    def predictor(self, model_id: str) -> Predictor | None:
        with self._lock:
            return self._predictors.get(model_id)

    def deployed_ids(self) -> list[str]:
        with self._lock:
            return list(self._predictors)

    def close(self) -> None:
        """Free every predictor; records keep saying DEPLOYED so that the next start deploys them again."""
        for model_id in self.deployed_ids():
            self.unload(model_id)


def model_config_of(record: dict[str, Any]) -> ModelConfig:
    """The runtime's view of a record's `model_config`."""
    known = {
        "model_type",
        "embedding_dimension",
        "framework_type",
        "pooling_mode",
        "normalize_result",
        "all_config",
        "model_max_length",
    }
    return ModelConfig(
        model_type=record.get("model_type"),
        embedding_dimension=record.get("embedding_dimension"),
        framework_type=record.get("framework_type"),
        pooling_mode=record.get("pooling_mode"),
        normalize_result=record.get("normalize_result"),
        all_config=record.get("all_config"),
        max_length=record.get("model_max_length"),
        extra={k: v for k, v in record.items() if k not in known},
    )


def _close(model_id: str, predictor: Predictor) -> None:
    try:
        predictor.close()
    except Exception:
        log.exception("closing the predictor of model %s failed", model_id)
