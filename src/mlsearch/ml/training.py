"""Train, predict, train-and-predict and execute for the classic algorithms: inputs in, frames and model ids out.

Inputs are `input_data` frames or `input_query` + `input_index`, run through the engine's own search (each hit's
`_source` becomes a row; at most `max_input_rows`, 10,000 as in ML Commons). Fitted models are ordinary records of the
model registry (`.plugins-ml-model`), shaped as ML Commons writes trained models: `name` = `algorithm`,
`model_state: TRAINED`, no model group, and the fitted model in `model_content` as a JSON string (parameters and
learned state; no pickle, and the index mapping never depends on an algorithm's state layout). `?async=true` training
runs as a TRAINING task of the shared task service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import orjson

from mlsearch.engine.indices import Indices
from mlsearch.engine.search import execute as run_search
from mlsearch.engine.search import parse_request
from mlsearch.errors import IllegalArgumentError, StatusError
from mlsearch.ml.algorithms import EXECUTE, PREDICT, TRAIN, TRAIN_PREDICT, algorithms
from mlsearch.ml.algorithms.frame import Frame, frame_from_sources, parse_frame
from mlsearch.ml.algorithms.registry import AlgorithmSpec
from mlsearch.ml.ids import new_id
from mlsearch.ml.registry import TRAINED, ModelRegistry
from mlsearch.ml.stats import MLStats
from mlsearch.ml.tasks import Tasks, now_millis

MAX_INPUT_ROWS = 10_000
# The version ML Commons' classic trainers give their models.
TRAINED_MODEL_VERSION = "1"


class ClassicML:
    """The four APIs of ML Commons' classic algorithms over one node's indices, model registry and tasks."""

    def __init__(
        self,
        indices: Indices,
        registry: ModelRegistry,
        tasks: Tasks,
        stats: MLStats,
        *,
        max_input_rows: int = MAX_INPUT_ROWS,
    ) -> None:
        self.indices = indices
        self.registry = registry
        self.tasks = tasks
        self.stats = stats
        self.max_input_rows = max_input_rows

    # ---- train ------------------------------------------------------------------------------------------

    def train(self, algorithm: str, body: Mapping[str, Any]) -> str:
        spec = algorithms.for_api(algorithm, TRAIN)
        with self._request("train", spec.name):
            return self._fit_and_save(spec, body)

    def train_async(self, algorithm: str, body: Mapping[str, Any]) -> str:
        """A TRAINING task (CREATED now; COMPLETED with `model_id` or FAILED with `error` later); its id."""
        spec = algorithms.for_api(algorithm, TRAIN)
        spec.factory(body.get("parameters"))  # reject bad parameters now, not in the task
        task_id = self.tasks.create("TRAINING", spec.name, input_type=self.input_type(body))
        self.tasks.submit(task_id, lambda: self._train_job(spec, body))
        return task_id

    def _train_job(self, spec: AlgorithmSpec, body: Mapping[str, Any]) -> dict[str, Any]:
        # The task service counts the job as executing; only the request counts are recorded here.
        try:
            model_id = self._fit_and_save(spec, body)
        except Exception:
            self.stats.record("train", spec.name, None, failed=True)
            raise
        self.stats.record("train", spec.name, model_id, failed=False)
        return {"model_id": model_id}

    def _fit_and_save(self, spec: AlgorithmSpec, body: Mapping[str, Any]) -> str:
        model = spec.factory(body.get("parameters"))
        model.fit(self.input_frame(body))
        content = {"parameters": dict(body.get("parameters") or {}), "state": dict(model.state())}
        model_id = new_id()
        stamp = now_millis()
        self.registry.create(
            model_id,
            {
                "name": spec.name,
                "algorithm": spec.name,
                "model_version": TRAINED_MODEL_VERSION,
                "model_state": TRAINED,
                "model_content": orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
                "created_time": stamp,
                "last_updated_time": stamp,
            },
        )
        return model_id

    # ---- predict, train_predict, execute ----------------------------------------------------------------

    def predict(self, algorithm: str, model_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        spec = algorithms.for_api(algorithm, PREDICT)
        record = self.registry.find(model_id)
        # A missing model counts against the algorithm only: no per-model stats for ids that name nothing.
        with self._request("predict", spec.name, model_id if record is not None else None):
            if record is None:
                raise StatusError("Failed to find model", status=404)
            parameters, state = _trained_content(model_id, record, spec.name)
            model = spec.factory(parameters)
            model.load_state(state)
            return {"status": "COMPLETED", "prediction_result": model.predict(self.input_frame(body))}

    def train_predict(self, algorithm: str, body: Mapping[str, Any]) -> dict[str, Any]:
        spec = algorithms.for_api(algorithm, TRAIN_PREDICT)
        with self._request("train_predict", spec.name):
            frame = self.input_frame(body)
            model = spec.factory(body.get("parameters"))
            if hasattr(model, "fit_predict"):  # streaming algorithms score each row before learning it
                return {"status": "COMPLETED", "prediction_result": model.fit_predict(frame)}
            model.fit(frame)
            return {"status": "COMPLETED", "prediction_result": model.predict(frame)}

    def execute(self, algorithm: str, body: Mapping[str, Any]) -> dict[str, Any]:
        spec = algorithms.for_api(algorithm, EXECUTE)
        with self._request("execute", spec.name):
            return spec.factory(None).execute(body, self.read_sources)

    @contextmanager
    def _request(self, action: str, algorithm: str, model_id: str | None = None) -> Iterator[None]:
        """One synchronous request: executing while it runs, then counted (and timed) as done or failed."""
        started = time.perf_counter()
        with self.stats.executing():
            try:
                yield
            except Exception:
                self.stats.record(action, algorithm, model_id, failed=True)
                raise
        millis = (time.perf_counter() - started) * 1000
        self.stats.record(action, algorithm, model_id, failed=False, millis=millis)

    @staticmethod
    def input_type(body: Mapping[str, Any]) -> str:
        return "DATA_FRAME" if body.get("input_data") is not None else "SEARCH_QUERY"

    def input_frame(self, body: Mapping[str, Any]) -> Frame:
        """The one data source of a request: an inline frame or a query over indices."""
        data, query, index = body.get("input_data"), body.get("input_query"), body.get("input_index")
        if data is not None and (query is not None or index is not None):
            raise IllegalArgumentError("give either input_data or input_query with input_index, not both")
        if data is not None:
            return parse_frame(data)
        if query is None or not index:
            raise IllegalArgumentError("input data is required: input_data, or input_query with input_index")
        if not isinstance(query, Mapping):
            raise IllegalArgumentError("input_query must be an object")
        sources = self.read_sources(_index_expression(index), query, self.max_input_rows)
        return frame_from_sources(sources)

    def read_sources(self, index: str, query: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
        """The `_source` of up to `limit` documents matching a search body (its own `size`, default 10)."""
        body = dict(query)
        body["size"] = min(int(body.get("size", 10)), limit, self.max_input_rows)
        request = parse_request(body)
        response = run_search(self.indices.resolve(index), request)
        return [hit["_source"] for hit in response["hits"]["hits"] if "_source" in hit]


def _trained_content(model_id: str, record: Mapping[str, Any], algorithm: str) -> tuple[dict[str, Any], Any]:
    """(parameters, learned state) of a trained model record of `algorithm`."""
    if record.get("algorithm") != algorithm:
        raise IllegalArgumentError(
            f"model [{model_id}] is a [{record.get('algorithm')}] model and cannot predict with algorithm [{algorithm}]"
        )
    raw = record.get("model_content")
    if record.get("model_state") != TRAINED or not isinstance(raw, str):
        raise IllegalArgumentError(f"model [{model_id}] is not a trained [{algorithm}] model")
    content = orjson.loads(raw)
    return content["parameters"], content["state"]


def _index_expression(index: Any) -> str:
    if isinstance(index, str):
        return index
    if isinstance(index, Sequence) and all(isinstance(i, str) for i in index):
        return ",".join(index)
    raise IllegalArgumentError("input_index must be an index name or an array of index names")
