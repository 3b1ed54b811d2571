"""`ml_inference`: ML Commons' generic inference processor, for local and remote models alike (both through
`models.infer`; a remote model's input names are its connector's `${parameters.x}` names).

`input_map[i]` maps model input names (`text_docs`, or any parameter) to document fields; the model runs once per
entry, and `output_map[i]` writes document fields from the model output, addressed by a JSON path over ML Commons'
`{"inference_results": [{"output": [tensor, ...]}]}` (`$.inference_results[0].output[0].data`) or by a plain name
(a tensor name, a tensor field such as `data`, or a `dataAsMap` key)."""

from __future__ import annotations

import re
from typing import Any

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.predictor import PredictInput, Tensor
from mlsearch.pipelines.base import Config, SimpleProcessor, registry
from mlsearch.pipelines.document import IngestDocument

_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+|\*)\]|\['([^']+)'\]")


def json_path(data: Any, path: str) -> Any:
    """A small JSONPath: `$.a.b[0]`, `$.a[*].b`, `$['a']`; None when a step is missing."""
    values, wildcard = [data], False
    for match in _STEP.finditer(path[1:]):
        name, index, quoted = match.groups()
        nxt = []
        for value in values:
            if index == "*" and isinstance(value, list):
                nxt.extend(value)
                wildcard = True
            elif index is not None and isinstance(value, list) and int(index) < len(value):
                nxt.append(value[int(index)])
            elif (name or quoted) and isinstance(value, dict) and (name or quoted) in value:
                nxt.append(value[name or quoted])
        values = nxt
    if wildcard:
        return values
    return values[0] if values else None


def render_output(results: list[list[Tensor]]) -> dict[str, Any]:
    out = []
    for tensors in results:
        rendered = []
        for t in tensors:
            item: dict[str, Any] = {"name": t.name}
            if t.data is not None:
                item.update({"data_type": "FLOAT32", "shape": list(t.data.shape), "data": t.data.reshape(-1).tolist()})
            if t.data_as_map is not None:
                item["dataAsMap"] = t.data_as_map
            rendered.append(item)
        out.append({"output": rendered})
    return {"inference_results": out}


def _by_name(output: dict[str, Any], name: str) -> Any:
    values = []
    for result in output["inference_results"]:
        tensors = result["output"]
        named = [t for t in tensors if t.get("name") == name]
        if named:
            values.append(named[0].get("data", named[0].get("dataAsMap")))
        elif tensors and name in tensors[0]:
            values.append(tensors[0][name])
        elif tensors and name in (tensors[0].get("dataAsMap") or {}):
            values.append(tensors[0]["dataAsMap"][name])
    if not values:
        return None
    return values[0] if len(values) == 1 else values


class MLInferenceProcessor(SimpleProcessor):
    type = "ml_inference"

    def __init__(self, config: Config) -> None:
        self.model_id = config.string("model_id")
        self.function_name = config.string("function_name", "remote")
        self.input_map = _maps(config, "input_map")
        self.output_map = _maps(config, "output_map")
        self.model_config = config.mapping("model_config", {})
        self.ignore_missing = config.boolean("ignore_missing", False)
        config.value("model_input", None)
        config.boolean("full_response_path", False)
        config.integer("max_prediction_tasks", 10)
        if self.output_map and self.input_map and len(self.output_map) != len(self.input_map):
            raise config.error(
                "output_map", "when output_maps and input_maps are provided, their length needs to match"
            )
        self.services = config.services

    def execute(self, doc: IngestDocument) -> IngestDocument:
        for i, inputs in enumerate(self.input_map or [{}]):
            prediction = self._inputs(doc, inputs)
            if prediction is None:
                continue
            if self.services.models is None:
                raise IllegalArgumentError("no model service is available to ingest processors")
            output = render_output(self.services.models.infer(self.model_id, prediction))
            outputs = self.output_map[i] if i < len(self.output_map) else {"inference_results": "$.inference_results"}
            for field, path in outputs.items():
                value = json_path(output, path) if path.startswith("$") else _by_name(output, path)
                doc.set(field, value)
        return doc

    def _inputs(self, doc: IngestDocument, inputs: dict[str, str]) -> PredictInput | None:
        params: dict[str, Any] = dict(self.model_config)
        texts: list[str] = []
        for model_field, doc_field in inputs.items():
            value = doc.get(doc_field, None)
            if value is None:
                if self.ignore_missing:
                    return None
                raise IllegalArgumentError(f"cannot find field name defined from input map: {doc_field}")
            if model_field in ("text_docs", "texts", "inputs", "input"):
                texts.extend(value if isinstance(value, list) else [value])
            elif model_field == "query_text":
                params["query_text"] = value
            else:
                params[model_field] = value
        query = params.pop("query_text", None)
        return PredictInput(text_docs=[str(t) for t in texts], query_text=query, parameters=params)


def _maps(config: Config, key: str) -> list[dict[str, str]]:
    value = config.value(key, [])
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise config.error(key, "property isn't a list of maps")
    return value


@registry.register("ml_inference")
def _factory(config: Config) -> MLInferenceProcessor:
    return MLInferenceProcessor(config)
