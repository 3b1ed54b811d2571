"""Request processors: `filter_query`, `neural_query_enricher`, `oversample` (rewrite the search body's JSON)."""

from __future__ import annotations

import copy
import math
from typing import Any

from mlsearch.engine.query import dsl
from mlsearch.errors import IllegalArgumentError
from mlsearch.pipelines.search._registry import processor
from mlsearch.pipelines.search.base import Processor, SearchContext, check_keys, required

_NEURAL_QUERIES = ("neural", "neural_sparse")


class FilterQuery(Processor):
    kind = "request_processors"
    type_name = "filter_query"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.query = required(self.type_name, config, "query")
        dsl.parse_query(self.query)  # a malformed filter fails when the pipeline is stored

    def process_request(self, body: dict[str, Any], ctx: SearchContext) -> dict[str, Any]:
        body = dict(body)
        original = body.get("query") or {"match_all": {}}
        if isinstance(original, dict) and "hybrid" in original:
            # hybrid must stay the top-level query: its own filter applies to every sub-query
            hybrid = dict(original["hybrid"])
            current = hybrid.get("filter")
            hybrid["filter"] = self.query if current is None else {"bool": {"filter": [current, self.query]}}
            body["query"] = {"hybrid": hybrid}
        else:
            body["query"] = {"bool": {"must": [original], "filter": [self.query]}}
        return body


@processor("request_processors", "filter_query")
def filter_query(config: dict[str, Any]) -> Processor:
    check_keys("filter_query", config, {"query"})
    return FilterQuery(config)


class NeuralQueryEnricher(Processor):
    """Fills `model_id` of neural / neural_sparse queries that omit it (a field-specific default wins)."""

    kind = "request_processors"
    type_name = "neural_query_enricher"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.default_model_id = config.get("default_model_id")
        self.by_field = config.get("neural_field_default_id") or {}
        if self.default_model_id is None and not self.by_field:
            raise IllegalArgumentError("Either default_model_id or neural_field_default_id must be set")
        if not isinstance(self.by_field, dict):
            raise IllegalArgumentError("[neural_field_default_id] must be a map of field name to model id")

    def process_request(self, body: dict[str, Any], ctx: SearchContext) -> dict[str, Any]:
        body = copy.deepcopy(body)
        if isinstance(body.get("query"), dict):
            self._enrich(body["query"])
        return body

    def _enrich(self, node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                self._enrich(item)
            return
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            if key in _NEURAL_QUERIES and isinstance(value, dict):
                self._fill(value)
            else:
                self._enrich(value)

    def _fill(self, query: dict[str, Any]) -> None:
        for field_name, spec in query.items():
            if isinstance(spec, dict) and "model_id" not in spec:
                model_id = self.by_field.get(field_name, self.default_model_id)
                if model_id is not None:
                    spec["model_id"] = model_id


@processor("request_processors", "neural_query_enricher")
def neural_query_enricher(config: dict[str, Any]) -> Processor:
    check_keys("neural_query_enricher", config, {"default_model_id", "neural_field_default_id"})
    return NeuralQueryEnricher(config)


class Oversample(Processor):
    """Asks for `sample_factor` times more hits; `truncate_hits` later cuts back to the original size."""

    kind = "request_processors"
    type_name = "oversample"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        factor = required(self.type_name, config, "sample_factor")
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor < 1.0:
            raise IllegalArgumentError(f"Value [{factor}] for [sample_factor] must be >= 1.0")
        self.factor = float(factor)
        self.prefix = config.get("context_prefix")

    def process_request(self, body: dict[str, Any], ctx: SearchContext) -> dict[str, Any]:
        body = dict(body)
        size = int(body.get("size", 10))
        ctx.state[self._key("original_size")] = size
        body["size"] = math.ceil(size * self.factor)
        return body

    def _key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name


@processor("request_processors", "oversample")
def oversample(config: dict[str, Any]) -> Processor:
    check_keys("oversample", config, {"sample_factor", "context_prefix"})
    return Oversample(config)
