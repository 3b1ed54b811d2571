"""The ML Commons operations the routes call: model groups, register (pretrained / URL / chunks), deploy, undeploy,
predict, and the records' CRUD. Long steps run as tasks; records live in system indices, artefacts in the store."""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from mlsearch.engine.index import OpResult
from mlsearch.errors import IllegalArgumentError, MLSearchError, StatusError
from mlsearch.ml import inference, memory_guard
from mlsearch.ml.artefacts import MAX_CHUNK_BYTES, Artefact, ArtefactStore
from mlsearch.ml.connectors.models import RemoteModels, is_remote, public_model
from mlsearch.ml.connectors.remote import RemotePredictor
from mlsearch.ml.connectors.store import ConnectorStore
from mlsearch.ml.groups import ModelGroups, resolve_access
from mlsearch.ml.ids import new_id
from mlsearch.ml.predictor import PredictInput, Tensor
from mlsearch.ml.registry import (
    CONTENT_FIELDS,
    DEPLOY_FAILED,
    DEPLOYED,
    DEPLOYING,
    REGISTERED,
    REGISTERING,
    TRAINED,
    UNDEPLOYED,
    WANTS_DEPLOYMENT,
    ModelRegistry,
    RuntimeFor,
    model_config_of,
)
from mlsearch.ml.schemas import (
    ModelConfigBody,
    ModelGroupBody,
    PredictBody,
    RegisterModelBody,
    UndeployBody,
    UpdateModelBody,
    parse_body,
)
from mlsearch.ml.stats import MLStats
from mlsearch.ml.system_indices import SystemIndices
from mlsearch.ml.tasks import TaskFailed, Tasks, now_millis
from mlsearch.ml.training import ClassicML
from mlsearch.security.secrets import SecretBox

log = logging.getLogger(__name__)

_P = "plugins.ml_commons."
_URL_DISABLED = (
    "To upload custom model user needs to enable allow_registering_model_via_url settings. Otherwise "
    "please use OpenSearch pre-trained models."
)
_LOCAL_FILE_DISABLED = (
    "To upload custom model from local file, user needs to enable "
    "allow_registering_model_via_local_file settings. Otherwise please use OpenSearch pre-trained "
    "models."
)
_NOT_PRETRAINED = "This model is not in the pre-trained model list, please check your parameters."
_NOT_READY = "Model not ready yet. Please deploy the model first."
_REGISTER_CHUNK_BYTES = 10_000_000  # ML Commons ModelHelper.CHUNK_SIZE: the chunking of archives registered by URL


@dataclass(frozen=True, slots=True)
class PretrainedArtefact:
    """What the pretrained catalog gives for (name, version, format): where the zip is and how to run it."""

    source: str  # a URL (http, https, file) or a local path to the model zip
    model_config: dict[str, Any]
    function_name: str = "TEXT_EMBEDDING"
    content_hash: str | None = None  # sha256 of the zip, verified when given
    description: str | None = None


# (name, version, model_format) -> the artefact, or None when the model is not in the catalog.
Catalog = Callable[[str, str | None, str], PretrainedArtefact | None]
Setting = Callable[[str], Any]


@dataclass
class MLService:
    records: SystemIndices
    artefacts: ArtefactStore
    runtime_for: RuntimeFor
    catalog: Catalog
    setting: Setting
    node_id: str
    workers: int = 4
    # Where Hugging Face directories registered by `file://` URL are exported to a model zip (a temporary dir if None).
    export_dir: Path | None = None
    # Encrypts connector credentials; by default with a key kept beside the model store (`<data_dir>/master.key`).
    secrets: SecretBox | None = None
    registry: ModelRegistry = field(init=False)
    groups: ModelGroups = field(init=False)
    tasks: Tasks = field(init=False)
    stats: MLStats = field(init=False)
    # The classic algorithms (`_train`, `_predict/{algorithm}`, ...) over the same registry, tasks and stats; built by
    # the node wiring (`wiring.build_ml_service`), which holds the node's indices they read their inputs from.
    classic: ClassicML = field(init=False)
    connectors: ConnectorStore = field(init=False)
    remote: RemoteModels = field(init=False)

    def __post_init__(self) -> None:
        self.registry = ModelRegistry(self.records, self.runtime_for)
        self.groups = ModelGroups(self.records)
        self.tasks = Tasks(self.records, self.node_id, workers=self.workers)
        self.stats = MLStats(int(self.setting(_P + "monitoring_request_count") or 100))
        box = self.secrets or SecretBox(self.artefacts.root.parent)
        self.connectors = ConnectorStore(self.records, box, self.setting)
        self.remote = RemoteModels(
            self.connectors, self.registry, self.groups, self.tasks, self.records, self.setting, self._access_control
        )

    # ---- life cycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Deploy again the models that were deployed (or deploying) when the node stopped."""
        self.artefacts.clean_incoming()
        if not self.records.exists(".plugins-ml-model") or not self.setting(_P + "model_auto_redeploy.enable"):
            return
        for model_id, doc in self.registry.all_models({"terms": {"model_state": list(WANTS_DEPLOYMENT)}}):
            log.info("redeploying model %s (%s) deployed before the restart", model_id, doc.get("name"))
            self._start_deploy(model_id, doc)

    def close(self) -> None:
        self.tasks.close()
        self.registry.close()

    def cancel_remote_calls(self) -> None:
        """Cut the calls to externally hosted models in flight and refuse new ones: the node is stopping, and a
        provider that does not answer must not hold up the requests waiting for it (nor the process's exit)."""
        for model_id in self.registry.deployed_ids():
            predictor = self.registry.predictor(model_id)
            if isinstance(predictor, RemotePredictor):
                predictor.close()

    def _access_control(self) -> bool:
        return bool(self.setting(_P + "model_access_control_enabled"))

    # ---- model groups -----------------------------------------------------------------------------------

    def register_model_group(self, body: Any) -> dict[str, Any]:
        group_id = self.groups.register(parse_body(ModelGroupBody, body), access_control=self._access_control())
        return {"model_group_id": group_id, "status": "CREATED"}

    def update_model_group(self, group_id: str, body: Any) -> dict[str, Any]:
        self.groups.update(group_id, parse_body(ModelGroupBody, body), access_control=self._access_control())
        return {"status": "Updated"}

    def get_model_group(self, group_id: str) -> dict[str, Any]:
        return self.groups.get(group_id)

    def delete_model_group(self, group_id: str) -> OpResult:
        return self.groups.delete(group_id)

    # ---- register ---------------------------------------------------------------------------------------

    def register_model(self, body: Any, *, deploy: bool) -> dict[str, Any]:
        if is_remote(body):
            response = self.remote.register(body, deploy=deploy)
            self.stats.record("register", "REMOTE", response["model_id"], failed=False)
            return response
        req = parse_body(RegisterModelBody, body)
        self._check_local_models_enabled()
        if not req.name:
            raise IllegalArgumentError("model name is null")
        if not req.model_format:
            raise IllegalArgumentError("model format is null")
        self._check_group_or_access(req)
        if req.url is not None:
            self._check_url(req)
        function_name = req.function_name or "TEXT_EMBEDDING"
        task_id = self.tasks.create("REGISTER_MODEL", function_name)
        deploy = deploy or bool(req.deploy_model)
        # The task turns RUNNING once the model record exists, carrying its model_id: opensearch-py-ml reads
        # model_id as soon as the state leaves CREATED, then deploys it.
        self.tasks.submit(
            task_id, lambda: self._register_job(req, function_name, deploy, task_id), announce_running=False
        )
        self.stats.record("register", function_name, None, failed=False)
        return {"task_id": task_id, "status": "CREATED"}

    def _check_local_models_enabled(self) -> None:
        if not self.setting(_P + "local_model.enabled"):
            raise StatusError("Local Model is disabled.", status=400)

    def _check_group_or_access(self, req: RegisterModelBody) -> None:
        if req.model_group_id is not None:
            if self.records.get(".plugins-ml-model-group", req.model_group_id) is None:
                raise StatusError(f"Failed to find model group with ID: {req.model_group_id}", status=404)
        else:
            resolve_access(req, access_control=self._access_control())  # validated now, applied in the task

    def _check_url(self, req: RegisterModelBody) -> None:
        if not self.setting(_P + "allow_registering_model_via_url"):
            raise IllegalArgumentError(_URL_DISABLED)
        pattern = str(self.setting(_P + "trusted_url_regex"))
        if not re.fullmatch(pattern, req.url or ""):
            raise IllegalArgumentError("URL can't match trusted url regex")
        if local_model_dir(req.url) is not None:
            return  # a Hugging Face directory: exported here, so its config and hash come from the export
        if req.config is None and req.function_name not in ("SPARSE_ENCODING", "SPARSE_TOKENIZE"):
            raise IllegalArgumentError("model config is null")
        if not req.model_content_hash_value:
            raise IllegalArgumentError("model content hash value is null")

    def _register_job(
        self, req: RegisterModelBody, function_name: str, deploy: bool, task_id: str | None = None
    ) -> dict[str, Any]:
        assert req.name is not None and req.model_format is not None
        hf_dir = local_model_dir(req.url)
        if hf_dir is not None:
            archive, config, exported_function = self._export_hf_dir(hf_dir, req)
            function_name = req.function_name or exported_function
            expected = req.model_content_hash_value
            description = req.description
        elif req.url is not None:
            config = req.config.to_record() if req.config is not None else {}
            archive = self.artefacts.fetch(req.url)
            expected = req.model_content_hash_value
            description = req.description
        else:
            entry = self.catalog(req.name, req.version, req.model_format)
            if entry is None:
                raise TaskFailed(_NOT_PRETRAINED)
            function_name = (req.function_name or entry.function_name).upper()
            config = dict(entry.model_config)
            archive = self._fetch_source(entry.source)
            expected = entry.content_hash
            description = req.description or entry.description
        artefact = self.artefacts.add(archive, expected, req.model_format, function_name)
        self._validate_or_drop(artefact, req.model_format, function_name, config)
        fields = {"algorithm": function_name, "model_config": config, "description": description}
        model_id = self._create_record(req, fields, artefact, state=REGISTERED)
        if task_id is not None:
            self.tasks.mark_running(task_id, model_id=model_id)
        if deploy:
            self._start_deploy(model_id, self.registry.get(model_id))
        return {"model_id": model_id}

    def _validate_or_drop(
        self,
        artefact: Artefact,
        model_format: str,
        function_name: str,
        config: dict[str, Any],
        *,
        but: str | None = None,
    ) -> None:
        """Load the new artefact once where the runtime can (output width vs embedding_dimension, a graph that loads):
        a model that could never deploy is refused now, and its artefact goes with it."""
        try:
            validate = getattr(self.runtime_for(model_format), "validate", None)
            if validate is not None:
                validate(artefact.directory, function_name, model_config_of(config))
        except Exception as exc:
            self._drop_artefact_if_unused(artefact.sha256, but=but)
            if isinstance(exc, MLSearchError):
                raise
            raise IllegalArgumentError(f"the model cannot be loaded: {exc}") from exc

    def _export_hf_dir(self, src: Path, req: RegisterModelBody) -> tuple[Path, dict[str, Any], str]:
        """A Hugging Face (sentence-transformers) directory → an OpenSearch model zip in the store's incoming area."""
        from mlsearch.ml.export import export_model

        assert req.model_format is not None and req.name is not None
        given = req.config.to_record() if req.config is not None else {}
        work = self.export_dir or Path(tempfile.gettempdir())
        work.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="export-", dir=work))
        try:
            result = export_model(
                src,
                req.model_format,
                tmp / "model.zip",
                name=req.name.rsplit("/", 1)[-1],
                pooling_mode=given.get("pooling_mode"),
                normalize=given.get("normalize_result"),
                max_length=given.get("model_max_length"),
            )
            config = ModelConfigBody.model_validate({**result.model_config, **given}).to_record()
            archive = self.artefacts.fetch(result.path.as_uri())
        except MLSearchError:
            raise
        except Exception as exc:
            raise IllegalArgumentError(f"cannot export the Hugging Face model directory [{src}]: {exc}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return archive, config, result.function_name

    def _fetch_source(self, source: str) -> Path:
        if "://" in source:
            return self.artefacts.fetch(source)
        return self.artefacts.fetch(Path(source).resolve().as_uri())

    def _create_record(
        self, req: RegisterModelBody, fields: dict[str, Any], artefact: Artefact | None, *, state: str
    ) -> str:
        """The model record, in its group (created when needed) with the group's next version."""
        assert req.name is not None
        try:
            group_id = req.model_group_id or self.groups.group_for_model(
                req.name, req, access_control=self._access_control()
            )
            version = self.groups.next_version(group_id)
            model_id = new_id()
            stamp = now_millis()
            doc: dict[str, Any] = {
                "name": req.name,
                "model_group_id": group_id,
                "algorithm": fields["algorithm"],
                "model_version": version,
            }
            if fields.get("description") is not None:
                doc["description"] = fields["description"]
            doc.update({"model_format": req.model_format, "model_state": state})
            if artefact is not None:
                doc.update({"model_content_size_in_bytes": artefact.size, "model_content_hash_value": artefact.sha256})
            elif req.model_content_hash_value:
                doc["model_content_hash_value"] = req.model_content_hash_value.lower()
            doc["model_config"] = fields["model_config"]
            for name in ("is_enabled", "deploy_setting", "rate_limiter", "total_chunks"):
                if getattr(req, name) is not None:
                    doc[name] = getattr(req, name)
            if artefact is not None and "total_chunks" not in doc:
                # ML Commons splits a downloaded archive into 10,000,000-byte chunks and records how many.
                doc["total_chunks"] = max(1, -(-artefact.size // _REGISTER_CHUNK_BYTES))
            doc.update({"created_time": stamp, "last_updated_time": stamp})
            if state == REGISTERED:
                doc["last_registered_time"] = stamp
            self.registry.create(model_id, doc)
            return model_id
        except BaseException:
            if artefact is not None:
                self._drop_artefact_if_unused(artefact.sha256)
            raise

    def _drop_artefact_if_unused(self, digest: str, *, but: str | None = None) -> None:
        users = [m for m, _ in self.registry.all_models({"term": {"model_content_hash_value": digest}}) if m != but]
        if not users:
            self.artefacts.remove(digest)

    # ---- chunked upload ---------------------------------------------------------------------------------

    def register_model_meta(self, body: Any) -> dict[str, Any]:
        if not self.setting(_P + "allow_registering_model_via_local_file"):
            raise IllegalArgumentError(_LOCAL_FILE_DISABLED)
        req = parse_body(RegisterModelBody, body)
        self._check_local_models_enabled()
        for name, value in (
            ("model name", req.name),
            ("model format", req.model_format),
            ("model content hash value", req.model_content_hash_value),
            ("model config", req.config),
            ("total chunks field", req.total_chunks),
        ):
            if value is None or value == "":
                raise IllegalArgumentError(f"{name} is null")
        assert req.total_chunks is not None
        if req.total_chunks < 1:
            raise IllegalArgumentError("total chunks must be positive")
        self._check_group_or_access(req)
        function_name = req.function_name or "TEXT_EMBEDDING"
        config = req.config.to_record() if req.config is not None else {}
        fields = {"algorithm": function_name, "model_config": config, "description": req.description}
        model_id = self._create_record(req, fields, None, state=REGISTERING)
        self.stats.record("register", function_name, model_id, failed=False)
        return {"model_id": model_id, "status": "CREATED"}

    def upload_chunk(self, model_id: str, chunk_number: int, data: bytes) -> dict[str, Any]:
        if not self.setting(_P + "allow_registering_model_via_local_file"):
            raise IllegalArgumentError(_LOCAL_FILE_DISABLED)
        doc = self.registry.get(model_id)
        total = int(doc.get("total_chunks") or 0)
        if doc.get("model_state") != REGISTERING:
            raise IllegalArgumentError(f"Model {model_id} is not waiting for chunks (state {doc.get('model_state')})")
        if chunk_number < 0 or chunk_number >= total:
            raise IllegalArgumentError("Chunk number exceeds total chunks")
        if not data:
            raise IllegalArgumentError("Chunk size either 0 or null")
        if len(data) > MAX_CHUNK_BYTES:
            raise IllegalArgumentError("Chunk size exceeds 10MB")
        self.artefacts.put_chunk(model_id, chunk_number, data)
        if self.artefacts.chunks_present(model_id, total):
            self._complete_upload(model_id, doc, total)
        return {"status": "Uploaded"}

    def _complete_upload(self, model_id: str, doc: dict[str, Any], total: int) -> None:
        archive = self.artefacts.assemble(model_id, total)
        try:
            artefact = self.artefacts.add(
                archive, doc.get("model_content_hash_value"), str(doc["model_format"]), str(doc.get("algorithm"))
            )
            self._validate_or_drop(
                artefact,
                str(doc["model_format"]),
                str(doc.get("algorithm")),
                doc.get("model_config") or {},
                but=model_id,
            )
        except MLSearchError:
            # A bad upload leaves nothing: no record, no chunks, and no group made only for it.
            self._delete_record(model_id, doc)
            raise
        self.registry.set_state(
            model_id,
            REGISTERED,
            model_content_size_in_bytes=artefact.size,
            model_content_hash_value=artefact.sha256,
            last_registered_time=now_millis(),
        )

    # ---- deploy / undeploy ------------------------------------------------------------------------------

    def deploy(self, model_id: str, body: Any = None) -> dict[str, Any]:
        if is_remote(self.registry.find(model_id)):
            response = self.remote.deploy(model_id)
            self.stats.record("deploy", "REMOTE", model_id, failed=False)
            return response
        self._check_local_models_enabled()
        if isinstance(body, dict) and body.get("node_ids") and not self.setting(_P + "allow_custom_deployment_plan"):
            raise IllegalArgumentError("Don't allow custom deployment plan")
        doc = self.registry.get(model_id)
        if doc.get("model_state") == REGISTERING:
            raise IllegalArgumentError(f"Model {model_id} is still being registered")
        if doc.get("model_state") == TRAINED:
            # A trained classic model predicts from its record; deploying it would only turn it into DEPLOY_FAILED.
            raise IllegalArgumentError(
                f"Model {model_id} is a trained {doc.get('algorithm')} model: it predicts without being deployed"
            )
        task_id = self._start_deploy(model_id, doc)
        self.stats.record("deploy", doc.get("algorithm"), model_id, failed=False)
        return {"task_id": task_id, "task_type": "DEPLOY_MODEL", "status": "CREATED"}

    def _start_deploy(self, model_id: str, doc: dict[str, Any]) -> str:
        function_name = str(doc.get("algorithm", "TEXT_EMBEDDING"))
        task_id = self.tasks.create("DEPLOY_MODEL", function_name, model_id=model_id)
        self.registry.set_state(
            model_id,
            DEPLOYING,
            planning_worker_node_count=1,
            planning_worker_nodes=[self.node_id],
            deploy_to_all_nodes=True,
        )
        self.tasks.submit(task_id, lambda: self._deploy_job(model_id))
        return task_id

    def _deploy_job(self, model_id: str) -> dict[str, Any]:
        try:
            doc = self.registry.get(model_id)
            if is_remote(doc):
                self.remote.load(model_id, doc)
                return {}
            artefact = self.artefacts.find(str(doc.get("model_content_hash_value", "")))
            if artefact is None:
                raise IllegalArgumentError(f"The artefact of model {model_id} is missing from the model store")
            self._check_capacity(model_id, artefact.directory)
            self.registry.load(model_id, doc, artefact.directory)
        except Exception as exc:
            reason = exc.reason if isinstance(exc, MLSearchError) else (str(exc) or type(exc).__name__)
            log.warning("deploying model %s failed: %s", model_id, reason)
            if self.registry.find(model_id) is not None:
                self.registry.set_state(model_id, DEPLOY_FAILED, current_worker_node_count=0)
            raise TaskFailed(orjson.dumps({self.node_id: reason}).decode()) from exc
        self.registry.set_state(
            model_id,
            DEPLOYED,
            last_deployed_time=now_millis(),
            current_worker_node_count=1,
            planning_worker_node_count=1,
            planning_worker_nodes=[self.node_id],
            deploy_to_all_nodes=True,
        )
        return {}

    def _check_capacity(self, model_id: str, model_dir: Path) -> None:
        limit = int(self.setting(_P + "max_model_on_node") or 10)
        if model_id not in self.registry.deployed_ids() and len(self.registry.deployed_ids()) >= limit:
            raise IllegalArgumentError(
                f"Exceed max model per node limit: {limit} models are deployed (plugins.ml_commons.max_model_on_node)"
            )
        threshold = float(self.setting(_P + "native_memory_threshold") or 90)
        memory_guard.check_fits(model_id, memory_guard.model_bytes(model_dir), memory_guard.read_meminfo(), threshold)

    def undeploy(self, model_id: str | None, body: Any = None) -> dict[str, Any]:
        req = parse_body(UndeployBody, body)
        if req.node_ids and self.node_id not in req.node_ids:
            return {}
        ids = [model_id] if model_id is not None else (req.model_ids or self.registry.deployed_ids())
        stats: dict[str, str] = {}
        for mid in ids:
            doc = self.registry.find(mid)
            unloaded = self.registry.unload(mid)
            if doc is not None and (unloaded or doc.get("model_state") in (*WANTS_DEPLOYMENT, DEPLOY_FAILED)):
                self.registry.set_state(
                    mid,
                    UNDEPLOYED,
                    last_undeployed_time=now_millis(),
                    current_worker_node_count=0,
                    planning_worker_node_count=0,
                    planning_worker_nodes=[],
                )
                stats[mid] = UNDEPLOYED
            self.stats.record("undeploy", doc.get("algorithm") if doc else None, mid, failed=False)
        return {self.node_id: {"stats": stats}} if stats else {}

    # ---- records ----------------------------------------------------------------------------------------

    def get_model(self, model_id: str, *, return_content: bool = False) -> dict[str, Any]:
        doc = public_model(self.registry.get(model_id))
        if return_content:
            return doc
        return {k: v for k, v in doc.items() if k not in CONTENT_FIELDS}

    def update_model(self, model_id: str, body: Any) -> OpResult:
        req = parse_body(UpdateModelBody, body)
        doc = self.registry.find(model_id)
        if doc is None:
            raise StatusError(f"Failed to find model to update with the provided model id: {model_id}", status=404)
        remote = is_remote(doc)
        if not remote and (req.connector is not None or req.connector_id is not None):
            raise IllegalArgumentError("Trying to update the connector or connector_id field on a local model.")
        partial = req.model_dump(exclude_none=True, exclude={"config", "connector", "connector_id"})
        if remote:
            partial = self.remote.update(
                model_id, doc, {**partial, **req.model_dump(exclude_none=True, include={"connector", "connector_id"})}
            )
        if req.config is not None:
            partial["model_config"] = req.config.to_record()
        if req.model_group_id is not None and req.model_group_id != doc.get("model_group_id"):
            self.groups.get(req.model_group_id)
            partial["model_version"] = self.groups.next_version(req.model_group_id)
        result = self.registry.update(model_id, partial)
        if "model_version" in partial:
            self._drop_group_if_empty(doc.get("model_group_id"))
        if remote:
            self.remote.reload(model_id)
        return result

    def delete_model(self, model_id: str) -> OpResult:
        doc = self.registry.get(model_id)
        result = self.registry.delete(model_id)
        self._after_delete(model_id, doc)
        return result

    def _delete_record(self, model_id: str, doc: dict[str, Any]) -> None:
        self.records.delete(".plugins-ml-model", model_id)
        self._after_delete(model_id, doc)

    def _after_delete(self, model_id: str, doc: dict[str, Any]) -> None:
        self.artefacts.discard_upload(model_id)
        digest = doc.get("model_content_hash_value")
        if digest and doc.get("model_state") != REGISTERING:
            self._drop_artefact_if_unused(str(digest), but=model_id)
        self._drop_group_if_empty(doc.get("model_group_id"))
        self.stats.forget(model_id)

    def _drop_group_if_empty(self, group_id: str | None) -> None:
        if not group_id:  # trained models belong to no group
            return
        with self.groups.lock:
            if self.records.get(".plugins-ml-model-group", group_id) is not None and not self.groups.model_count(
                group_id
            ):
                self.records.delete(".plugins-ml-model-group", group_id)

    # ---- connectors ---------------------------------------------------------------------------------------

    def delete_connector(self, connector_id: str) -> OpResult:
        return self.connectors.delete(connector_id, self.remote.users_of(connector_id))

    def update_connector(self, connector_id: str, body: Any) -> OpResult:
        result = self.connectors.update(connector_id, body)
        self.remote.reload_users(connector_id)
        return result

    # ---- predict ----------------------------------------------------------------------------------------

    def predict(self, model_id: str, body: Any, algorithm: str | None = None) -> dict[str, Any]:
        started = time.perf_counter()
        doc = self.registry.find(model_id)
        if algorithm is None and doc is not None and doc.get("model_state") == TRAINED:
            # `models/{id}/_predict` with a trained classic model: its algorithm comes from the record.
            return self.classic.predict(str(doc.get("algorithm")), model_id, body if isinstance(body, dict) else {})
        function_name = str(doc.get("algorithm")) if doc else (algorithm or "").upper()
        try:
            if doc is None:
                raise StatusError("Failed to find model", status=404)
            response = self._predict(model_id, doc, function_name, body)
        except MLSearchError:
            self.stats.record("predict", function_name, model_id, failed=True)
            raise
        millis = (time.perf_counter() - started) * 1000
        self.stats.record("predict", function_name, model_id, failed=False, millis=millis)
        return response

    def infer(self, model_id: str, inputs: PredictInput) -> list[list[Tensor]]:
        """Run a deployed model for pipelines and neural queries: the predict API's checks, without JSON bodies."""
        started = time.perf_counter()
        doc = self.registry.find(model_id)
        if doc is None:
            raise StatusError("Failed to find model", status=404)
        function_name = str(doc.get("algorithm"))
        if doc.get("is_enabled") is False:
            raise IllegalArgumentError("Model is disabled.")
        predictor = self.remote.predictor(model_id, doc) if is_remote(doc) else self.registry.predictor(model_id)
        if predictor is None:
            raise IllegalArgumentError(_NOT_READY)
        try:
            results = predictor.predict(inputs)
        except MLSearchError:
            self.stats.record("predict", function_name, model_id, failed=True)
            raise
        except Exception as exc:
            self.stats.record("predict", function_name, model_id, failed=True)
            log.exception("inference with model %s failed", model_id)
            raise StatusError(f"Failed to run prediction with model {model_id}: {exc}", status=500) from exc
        self.stats.record(
            "predict", function_name, model_id, failed=False, millis=(time.perf_counter() - started) * 1000
        )
        return results

    def model_function(self, model_id: str) -> str:
        """The function name (TEXT_EMBEDDING, SPARSE_ENCODING, ...) of a model record; 404 when unknown."""
        doc = self.registry.find(model_id)
        if doc is None:
            raise StatusError("Failed to find model", status=404)
        return str(doc.get("algorithm"))

    def _predict(self, model_id: str, doc: dict[str, Any], function_name: str, body: Any) -> dict[str, Any]:
        if is_remote(doc):
            return self.remote.predict(model_id, doc, body)
        if doc.get("is_enabled") is False:
            raise IllegalArgumentError("Model is disabled.")
        predictor = self.registry.predictor(model_id)
        if predictor is None:
            raise IllegalArgumentError(_NOT_READY)
        req = parse_body(PredictBody, body)
        inputs = inference.predict_input(function_name, req)
        try:
            results = predictor.predict(inputs)
        except MLSearchError:
            raise
        except Exception as exc:
            log.exception("predict with model %s failed", model_id)
            raise StatusError(f"Failed to run prediction with model {model_id}: {exc}", status=500) from exc
        return inference.render_output(results, req, function_name)


def local_model_dir(url: str | None) -> Path | None:
    """The directory a `file://` URL names, when it is a directory (a Hugging Face model to export), else None."""
    if not url or urllib.parse.urlsplit(url).scheme.lower() != "file":
        return None
    path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    return path if path.is_dir() else None
