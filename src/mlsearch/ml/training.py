"""Train, predict, train-and-predict and execute for the classic algorithms: inputs in, frames and model ids out.

Inputs are `input_data` frames or `input_query` + `input_index`, run through the engine's own search (each hit's
`_source` becomes a row; at most `max_input_rows`, 10,000 as in ML Commons). Fitted models go to `TrainedModels`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlsearch.engine.indices import Indices
from mlsearch.engine.search import execute as run_search
from mlsearch.engine.search import parse_request
from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.algorithms import EXECUTE, PREDICT, TRAIN, TRAIN_PREDICT, algorithms
from mlsearch.ml.algorithms.frame import Frame, frame_from_sources, parse_frame
from mlsearch.ml.trained_models import TrainedModels

MAX_INPUT_ROWS = 10_000


class ClassicML:
    """The four APIs of ML Commons' classic algorithms over one node's indices."""

    def __init__(self, indices: Indices, models: TrainedModels, *, max_input_rows: int = MAX_INPUT_ROWS) -> None:
        self.indices = indices
        self.models = models
        self.max_input_rows = max_input_rows

    def train(self, algorithm: str, body: Mapping[str, Any]) -> str:
        spec = algorithms.for_api(algorithm, TRAIN)
        model = spec.factory(body.get("parameters"))
        model.fit(self.input_frame(body))
        return self.models.save(spec.name, body.get("parameters") or {}, model.state())

    def predict(self, algorithm: str, model_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        spec = algorithms.for_api(algorithm, PREDICT)
        record = self.models.get(model_id)
        if record.algorithm != spec.name:
            raise IllegalArgumentError(
                f"model [{model_id}] is a [{record.algorithm}] model and cannot predict with algorithm [{spec.name}]"
            )
        model = spec.factory(record.parameters)
        model.load_state(record.state)
        return {"status": "COMPLETED", "prediction_result": model.predict(self.input_frame(body))}

    def train_predict(self, algorithm: str, body: Mapping[str, Any]) -> dict[str, Any]:
        spec = algorithms.for_api(algorithm, TRAIN_PREDICT)
        frame = self.input_frame(body)
        model = spec.factory(body.get("parameters"))
        if hasattr(model, "fit_predict"):  # streaming algorithms score each row before learning it
            return {"status": "COMPLETED", "prediction_result": model.fit_predict(frame)}
        model.fit(frame)
        return {"status": "COMPLETED", "prediction_result": model.predict(frame)}

    def execute(self, algorithm: str, body: Mapping[str, Any]) -> dict[str, Any]:
        spec = algorithms.for_api(algorithm, EXECUTE)
        return spec.factory(None).execute(body, self.read_sources)

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


def _index_expression(index: Any) -> str:
    if isinstance(index, str):
        return index
    if isinstance(index, Sequence) and all(isinstance(i, str) for i in index):
        return ",".join(index)
    raise IllegalArgumentError("input_index must be an index name or an array of index names")
