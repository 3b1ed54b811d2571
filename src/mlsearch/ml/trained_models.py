"""Trained classic-ML models as records of `.plugins-ml-model`: parameters and learned state as JSON, no pickle.

A thin seam: `save`, `get` and `delete` are all the train / predict APIs need, so the shared model registry can
replace this store at merge. A record looks like ML Commons' trained models (`name` = `algorithm`,
`model_state: TRAINED`), with the fitted model in `model_content`, a JSON string (so that the system index mapping
never depends on an algorithm's state layout).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from mlsearch.engine.index import DocOp
from mlsearch.engine.indices import Indices
from mlsearch.errors import StatusError
from mlsearch.ml import _system_index

MODEL_INDEX = ".plugins-ml-model"
_MAPPINGS = {
    "properties": {
        "name": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
        "algorithm": {"type": "keyword"},
        "model_version": {"type": "keyword"},
        "model_state": {"type": "keyword"},
        "model_content": {"type": "text", "index": False},
        "created_time": {"type": "date", "format": "strict_date_time||epoch_millis"},
        "last_updated_time": {"type": "date", "format": "strict_date_time||epoch_millis"},
    }
}


@dataclass(frozen=True, slots=True)
class TrainedModel:
    model_id: str
    algorithm: str
    parameters: dict[str, Any]
    state: dict[str, Any]


class TrainedModels:
    """save / get / delete of trained models over the node's indices."""

    def __init__(self, indices: Indices) -> None:
        self.indices = indices

    def save(self, algorithm: str, parameters: Mapping[str, Any], state: Mapping[str, Any]) -> str:
        index = _system_index.ensure(self.indices, MODEL_INDEX, _MAPPINGS)
        model_id = _system_index.new_id()
        now = _system_index.now_millis()
        content = orjson.dumps(
            {"parameters": dict(parameters), "state": dict(state)}, option=orjson.OPT_SERIALIZE_NUMPY
        ).decode()
        _system_index.put(
            index,
            model_id,
            {
                "name": algorithm,
                "algorithm": algorithm,
                "model_version": "1",
                "model_state": "TRAINED",
                "model_content": content,
                "created_time": now,
                "last_updated_time": now,
            },
        )
        return model_id

    def get(self, model_id: str) -> TrainedModel:
        """The model; 404 `status_exception` "Failed to find model" when missing or not a trained model."""
        index = self.indices.find(MODEL_INDEX)
        doc = index.get(model_id) if index is not None else None
        source = orjson.loads(doc.source) if doc is not None and doc.source is not None else None
        if not isinstance(source, dict) or "model_content" not in source:
            raise StatusError("Failed to find model", status=404)
        content = orjson.loads(source["model_content"])
        return TrainedModel(model_id, source["algorithm"], content["parameters"], content["state"])

    def delete(self, model_id: str) -> bool:
        index = self.indices.find(MODEL_INDEX)
        if index is None:
            return False
        [result] = index.write([DocOp("delete", model_id)], refresh=True)
        return result.result == "deleted"
