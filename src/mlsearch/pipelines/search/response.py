"""Response processors over rendered hits: `rename_field`, `truncate_hits`, `collapse`, `hybrid_score_explanation`."""

from __future__ import annotations

from typing import Any

import orjson

from mlsearch.errors import IllegalArgumentError
from mlsearch.pipelines.search._registry import processor
from mlsearch.pipelines.search.base import Processor, SearchContext, check_keys, required, string


def hits_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    return response.get("hits", {}).get("hits", [])


def source_value(hit: dict[str, Any], path: str) -> Any:
    """A dotted path inside `_source` (None when absent)."""
    node: Any = hit.get("_source") or {}
    if path in node:
        return node[path]
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


class RenameField(Processor):
    kind = "response_processors"
    type_name = "rename_field"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.field = string(self.type_name, config, "field") or required(self.type_name, config, "field")
        self.target = string(self.type_name, config, "target_field") or required(self.type_name, config, "target_field")
        self.ignore_missing = bool(config.get("ignore_missing", False))

    def process_response(self, response: dict[str, Any], ctx: SearchContext) -> dict[str, Any]:
        for hit in hits_of(response):
            source = hit.get("_source")
            if isinstance(source, dict) and self.field in source:
                source[self.target] = source.pop(self.field)
            elif not self.ignore_missing:
                raise IllegalArgumentError(f"Document with id {hit.get('_id')} is missing field {self.field}")
        return response


@processor("response_processors", "rename_field")
def rename_field(config: dict[str, Any]) -> Processor:
    check_keys("rename_field", config, {"field", "target_field", "ignore_missing"})
    return RenameField(config)


class TruncateHits(Processor):
    kind = "response_processors"
    type_name = "truncate_hits"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        size = config.get("target_size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise IllegalArgumentError(f"[target_size] must be a non-negative integer, got [{size}]")
        self.target_size = size
        self.prefix = config.get("context_prefix")

    def process_response(self, response: dict[str, Any], ctx: SearchContext) -> dict[str, Any]:
        size = self.target_size
        if size is None:
            key = f"{self.prefix}.original_size" if self.prefix else "original_size"
            size = ctx.state.get(key)
        if size is None:
            raise IllegalArgumentError("Unable to determine target size for truncate_hits: set [target_size]")
        hits = response.get("hits")
        if isinstance(hits, dict):
            hits["hits"] = hits.get("hits", [])[:size]
        return response


@processor("response_processors", "truncate_hits")
def truncate_hits(config: dict[str, Any]) -> Processor:
    check_keys("truncate_hits", config, {"target_size", "context_prefix"})
    return TruncateHits(config)


class Collapse(Processor):
    """Keeps the first hit of each value of a field (hits are already ordered)."""

    kind = "response_processors"
    type_name = "collapse"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.field = string(self.type_name, config, "field") or required(self.type_name, config, "field")

    def process_response(self, response: dict[str, Any], ctx: SearchContext) -> dict[str, Any]:
        seen: set[bytes] = set()
        kept = []
        for hit in hits_of(response):
            key = orjson.dumps(source_value(hit, self.field))
            if key not in seen:
                seen.add(key)
                kept.append(hit)
        if isinstance(response.get("hits"), dict):
            response["hits"]["hits"] = kept
        return response


@processor("response_processors", "collapse")
def collapse(config: dict[str, Any]) -> Processor:
    check_keys("collapse", config, {"field", "context_prefix"})
    return Collapse(config)


class HybridScoreExplanation(Processor):
    """Accepted as in neural-search 2.19+; the engine already explains a hybrid hit as normalised sub-query scores
    under their combination (with or without this processor: OpenSearch's raw sub-query form helps no one)."""

    kind = "response_processors"
    type_name = "hybrid_score_explanation"


@processor("response_processors", "hybrid_score_explanation")
def hybrid_score_explanation(config: dict[str, Any]) -> Processor:
    check_keys("hybrid_score_explanation", config, set())
    return HybridScoreExplanation(config)
