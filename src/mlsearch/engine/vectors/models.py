"""Trained k-NN models (`/_plugins/_knn/models`): faiss IVF / IVF-PQ / HNSW-PQ indices trained on the vectors of
an existing knn_vector field, kept in the system index `.opensearch-knn-models` (faiss's serialised index as
base64 `model_blob`). Training runs on a background thread: state `training`, then `created` or `failed`.

A knn_vector field with `model_id` takes dimension, space and method from the model; each of its segments is a
copy of the trained index with the segment's vectors added (engine/vectors/segment.py build_graph)."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from mlsearch.engine.index import DocOp, Index
from mlsearch.engine.search import execute, parse_request
from mlsearch.engine.vectors.spaces import SPACE_TYPES, space
from mlsearch.engine.vectors.stats import KnnStats
from mlsearch.errors import (
    IllegalArgumentError,
    MLSearchError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
)

if TYPE_CHECKING:
    from mlsearch.engine.indices import Indices

log = logging.getLogger(__name__)

MODEL_INDEX = ".opensearch-knn-models"
_MAPPINGS = {
    "dynamic": False,
    "properties": {
        "model_id": {"type": "keyword"},
        "state": {"type": "keyword"},
        "timestamp": {"type": "date", "format": "strict_date_time||epoch_millis"},
        "description": {"type": "text"},
        "error": {"type": "text"},
        "engine": {"type": "keyword"},
        "space_type": {"type": "keyword"},
        "dimension": {"type": "integer"},
        "data_type": {"type": "keyword"},
        "training_node_assignment": {"type": "keyword"},
        "model_version": {"type": "keyword"},
    },
}
_TRAIN_KEYS = {
    "training_index",
    "training_field",
    "dimension",
    "method",
    "space_type",
    "spaceType",
    "engine",
    "max_training_vector_count",
    "search_size",
    "description",
    "data_type",
    "mode",
    "compression_level",
}


class DeleteModelError(MLSearchError):
    status = 409
    error_type = "delete_model_exception"


class KnnModels:
    """The node's trained models: training, reads, deletes and searches over the system index."""

    def __init__(self, indices: Indices, stats: KnnStats, node_id: str) -> None:
        self.indices = indices
        self.stats = stats
        self.node_id = node_id
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()

    # ---- system index ------------------------------------------------------------------------------------

    def _index(self) -> Index:
        index = self.indices.find(MODEL_INDEX)
        if index is not None:
            return index
        try:
            return self.indices.create(
                MODEL_INDEX, {"settings": {"index.hidden": True, "index.number_of_replicas": 0}, "mappings": _MAPPINGS}
            )
        except ResourceAlreadyExistsError:
            return self.indices.get(MODEL_INDEX)

    def _put(self, doc: dict[str, Any]) -> None:
        [result] = self._index().write([DocOp("index", doc["model_id"], doc)], refresh=True)
        if result.error is not None:
            raise result.error

    def _doc(self, model_id: str) -> dict[str, Any] | None:
        index = self.indices.find(MODEL_INDEX)
        stored = None if index is None else index.get(model_id)
        if stored is None:
            return None
        import orjson

        return orjson.loads(stored.source)

    # ---- API -----------------------------------------------------------------------------------------------

    def train(self, model_id: str | None, body: Any) -> str:
        spec = self._validate(body)
        model_id = model_id or _new_id()
        with self._lock:
            if self._doc(model_id) is not None:
                raise IllegalArgumentError(f'Model with id "{model_id}" already exists')
            doc = {
                "model_id": model_id,
                "model_blob": "",
                "state": "training",
                "timestamp": _now(),
                "description": spec["description"],
                "error": "",
                "space_type": spec["space_type"],
                "dimension": spec["dimension"],
                "engine": spec["engine"],
                "training_node_assignment": self.node_id,
                "model_definition": spec["method"],
                "data_type": spec["data_type"],
                "mode": spec["mode"],
                "compression_level": spec["compression_level"],
                "model_version": "3.0.0",
            }
            self._put(doc)
        self.stats.bump("training_requests")
        thread = threading.Thread(target=self._run, args=(doc, spec), name=f"knn-train-{model_id}", daemon=True)
        self._threads.add(thread)
        thread.start()
        return model_id

    def get(self, model_id: str) -> dict[str, Any]:
        doc = self._doc(model_id)
        if doc is None:
            raise ResourceNotFoundError(f"Unable to retrieve model [{model_id}]: model does not exist")
        return doc

    def delete(self, model_id: str) -> dict[str, Any]:
        doc = self._doc(model_id)
        if doc is None:
            raise ResourceNotFoundError(f"Unable to delete model [{model_id}]. Model does not exist")
        if doc.get("state") == "training":
            raise DeleteModelError(f"Cannot delete model [{model_id}]. Model is still in training")
        users = self.indices_using(model_id)
        if users:
            raise DeleteModelError(
                f"Cannot delete model [{model_id}].  Model is in use by the following indices "
                f"[{', '.join(users)}], which must be deleted first."
            )
        [result] = self._index().write([DocOp("delete", model_id, None)], refresh=True)
        if result.error is not None:
            raise result.error
        return {"model_id": model_id, "result": "deleted"}

    def search(self, body: Any, params: Mapping[str, str]) -> dict[str, Any]:
        if body is not None and not isinstance(body, dict):
            raise IllegalArgumentError("request body must be an object")
        req = parse_request(body or {}, dict(params))
        return execute([self._index()], req)

    def indices_using(self, model_id: str) -> list[str]:
        return sorted(
            index.name
            for index in self.indices.all()
            if any(
                f.type == "knn_vector" and f.params.get("model_id") == model_id for f in index.mappings.fields.values()
            )
        )

    # ---- training ------------------------------------------------------------------------------------------

    def _validate(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise IllegalArgumentError("Request body must be an object")
        for key in body:
            if key not in _TRAIN_KEYS:
                raise IllegalArgumentError(f'Unable to parse token. "{key}" is not a valid parameter.')
        for key in ("training_index", "training_field", "dimension"):
            if body.get(key) is None:
                raise IllegalArgumentError(f"Validation Failed: 1: {key} is not set;")
        dimension = body["dimension"]
        if isinstance(dimension, bool) or not isinstance(dimension, int) or not 1 <= dimension <= 16000:
            raise IllegalArgumentError("Validation Failed: 1: dimension must be between 1 and 16000;")
        method = body.get("method")
        if not isinstance(method, dict):
            raise IllegalArgumentError("Validation Failed: 1: method is not set;")
        space_name = str(body.get("space_type") or body.get("spaceType") or method.get("space_type") or "l2")
        if space_name not in SPACE_TYPES or space_name == "hamming":
            raise IllegalArgumentError(f"Unable to find space: {space_name}")
        name = str(method.get("name", "ivf"))
        if name not in ("ivf", "hnsw"):
            raise IllegalArgumentError(f"Invalid method name: {name}")
        params = dict(method.get("parameters") or {})
        encoder = params.get("encoder") or {"name": "flat"}
        if name == "hnsw" and encoder.get("name") != "pq":
            raise IllegalArgumentError("Validation Failed: 1: Method does not require training.;")
        pq = encoder.get("parameters") or {}
        if encoder.get("name") == "pq" and dimension % int(pq.get("m", 1)) != 0:
            raise IllegalArgumentError("Validation Failed: 1: dimension must be divisible by the pq m parameter;")
        index = self.indices.find(str(body["training_index"]))
        if index is None:
            raise IllegalArgumentError(
                f'Validation Failed: 1: training index "{body["training_index"]}" does not exist;'
            )
        leaf = index.mappings.field(str(body["training_field"]))
        if leaf is None or leaf.type != "knn_vector":
            raise IllegalArgumentError(
                f'Validation Failed: 1: Field "{body["training_field"]}" in training index must be of type knn_vector;'
            )
        if int(leaf.params.get("dimension", -1)) != dimension:
            raise IllegalArgumentError(
                f'Validation Failed: 1: Field "{body["training_field"]}" has dimension '
                f"{leaf.params.get('dimension')}, which is different from dimension specified in the training request: "
                f"{dimension};"
            )
        description = str(body.get("description", ""))
        if "," in description:
            raise IllegalArgumentError("Validation Failed: 1: Model description cannot contain any commas: ','")
        return {
            "training_index": index.name,
            "training_field": leaf.path,
            "dimension": dimension,
            "space_type": space_name,
            "engine": str(body.get("engine") or method.get("engine") or "faiss"),
            "method": {
                **method,
                "name": name,
                "engine": method.get("engine", "faiss"),
                "space_type": space_name,
                "parameters": params,
            },
            "max_vectors": body.get("max_training_vector_count"),
            "description": description,
            "data_type": str(body.get("data_type", "float")),
            "mode": str(body.get("mode", "")),
            "compression_level": str(body.get("compression_level", "")),
        }

    def _run(self, doc: dict[str, Any], spec: dict[str, Any]) -> None:
        started = time.perf_counter()
        try:
            data = self._training_vectors(spec)
            self.stats.training_memory_bytes += data.nbytes
            try:
                trained = train_index(spec["method"], spec["dimension"], data)
            finally:
                self.stats.training_memory_bytes -= data.nbytes
            blob = faiss.serialize_index(trained).tobytes()
            doc.update(model_blob=base64.b64encode(blob).decode(), state="created")
        except Exception as exc:  # a failed training is recorded on the model, not raised anywhere
            log.info("training k-NN model %s failed: %s", doc["model_id"], exc)
            self.stats.bump("training_errors")
            doc.update(state="failed", error=str(exc) or type(exc).__name__)
        log.info("k-NN model %s: %s in %.1fs", doc["model_id"], doc["state"], time.perf_counter() - started)
        try:
            self._put(doc)
        except Exception:
            log.exception("storing k-NN model %s failed", doc["model_id"])

    def _training_vectors(self, spec: dict[str, Any]) -> np.ndarray:
        index = self.indices.get(spec["training_index"])
        index.refresh()
        vectors = index.vectors.field(spec["training_field"])
        if vectors is None:
            raise IllegalArgumentError("training field has no vectors")
        parts = [np.asarray(s.data)[np.asarray(s.live)] for s in vectors.segments]
        data = np.concatenate(parts) if parts else np.empty((0, spec["dimension"]), dtype=np.float32)
        limit = spec["max_vectors"]
        if limit is not None and len(data) > int(limit):
            data = data[: int(limit)]
        if len(data) == 0:
            raise IllegalArgumentError("Number of training points should be greater than 0")
        return np.ascontiguousarray(data, dtype=np.float32)

    def resolve(self, model_id: str) -> dict[str, Any] | None:
        """The model as a knn_vector field needs it (KnnNode.models)."""
        doc = self._doc(model_id)
        if doc is None:
            return None
        out = dict(doc)
        out["blob"] = base64.b64decode(doc.get("model_blob") or "")
        return out


def train_index(method: Mapping[str, Any], dim: int, data: np.ndarray) -> faiss.Index:
    """An empty, trained faiss index for `method` (ivf with flat or pq encoder; hnsw with pq)."""
    sp = space(str(method.get("space_type", "l2")))
    data = sp.prepare(data)
    params = method.get("parameters") or {}
    encoder = params.get("encoder") or {"name": "flat"}
    pq = encoder.get("parameters") or {}
    metric = sp.faiss_metric
    if method.get("name") == "hnsw":
        index = faiss.IndexHNSWPQ(dim, int(pq.get("m", 1)), int(params.get("m", 16)), int(pq.get("code_size", 8)))
        index.metric_type = metric
        index.hnsw.efConstruction = int(params.get("ef_construction", 100))
    else:
        nlist = int(params.get("nlist", 4))
        if len(data) < nlist:
            raise IllegalArgumentError(f"Number of training points ({len(data)}) should be at least nlist ({nlist})")
        quantizer = faiss.IndexFlat(dim, metric)
        if encoder.get("name") == "pq":
            index = faiss.IndexIVFPQ(quantizer, dim, nlist, int(pq.get("m", 1)), int(pq.get("code_size", 8)), metric)
        else:
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, metric)
        index.own_fields = True
        quantizer.this.disown()
        index.nprobe = int(params.get("nprobes", 1))
    index.train(data)
    return index


def _new_id() -> str:
    raw = int(time.time() * 1000).to_bytes(6, "big") + os.urandom(9)
    return base64.urlsafe_b64encode(raw).decode()[:20]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
