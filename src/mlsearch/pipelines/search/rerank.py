"""The `rerank` response processor: by a cross-encoder (`ml_opensearch`) or by a numeric field (`by_field`)."""

from __future__ import annotations

from typing import Any

from mlsearch.errors import IllegalArgumentError
from mlsearch.pipelines.search._registry import processor
from mlsearch.pipelines.search.base import Processor, SearchContext, check_keys, required
from mlsearch.pipelines.search.response import hits_of, source_value

_MAX_PATH = 1000


class Rerank(Processor):
    kind = "response_processors"
    type_name = "rerank"

    def process_response(self, response: dict[str, Any], ctx: SearchContext) -> dict[str, Any]:
        hits = hits_of(response)
        if not hits:
            return response
        scores = self.scores(hits, ctx)
        for hit, score in zip(hits, scores, strict=True):
            hit["_score"] = float(score)
        hits.sort(key=lambda h: -h["_score"])
        response["hits"]["max_score"] = hits[0]["_score"]
        return response

    def scores(self, hits: list[dict[str, Any]], ctx: SearchContext) -> list[float]:
        raise NotImplementedError


class CrossEncoderRerank(Rerank):
    def __init__(self, config: dict[str, Any], model_id: str, fields: list[str]) -> None:
        super().__init__(config)
        self.model_id = model_id
        self.fields = fields

    def scores(self, hits: list[dict[str, Any]], ctx: SearchContext) -> list[float]:
        if ctx.similarity is None:
            raise IllegalArgumentError("rerank [ml_opensearch] needs a model service")
        texts = [self._context(hit) for hit in hits]
        return ctx.similarity(self.model_id, query_text(ctx.request), texts)

    def _context(self, hit: dict[str, Any]) -> str:
        return "".join(_text(_field(hit, name)) for name in self.fields)


class FieldRerank(Rerank):
    def __init__(self, config: dict[str, Any], spec: dict[str, Any]) -> None:
        super().__init__(config)
        self.target = str(required("rerank", spec, "target_field"))
        self.remove = bool(spec.get("remove_target_field", False))
        self.keep_previous = bool(spec.get("keep_previous_score", False))
        self.previous_field = str(spec.get("previous_score_field", "previous_score"))

    def scores(self, hits: list[dict[str, Any]], ctx: SearchContext) -> list[float]:
        out = []
        for hit in hits:
            value = source_value(hit, self.target)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise IllegalArgumentError(
                    f"The field to rerank [{self.target}] is not found or not numeric at hit [{hit.get('_id')}]"
                )
            source = hit.setdefault("_source", {})
            if self.keep_previous:
                source[self.previous_field] = hit.get("_score")
            if self.remove:
                _remove(source, self.target)
            out.append(float(value))
        return out


def query_text(request: dict[str, Any]) -> str:
    """`ext.rerank.query_context`: `query_text`, or `query_text_path` into the request body (exactly one); the
    messages are neural-search's (QueryContextSourceFetcher)."""
    context = ((request.get("ext") or {}).get("rerank") or {}).get("query_context")
    if context is None:
        raise IllegalArgumentError("must specify query_context")
    if not isinstance(context, dict):
        raise IllegalArgumentError("query_context must be a map")
    if "query_text" in context:
        if "query_text_path" in context:
            raise IllegalArgumentError('Cannot specify both "query_text" and "query_text_path"')
        return str(context["query_text"])
    if "query_text_path" not in context:
        raise IllegalArgumentError('Must specify either "query_text" or "query_text_path"')
    path = str(context["query_text_path"])
    if len(path) > _MAX_PATH:
        raise IllegalArgumentError(f"query_text_path exceeds maximum length of {_MAX_PATH}")
    text = _at_path(request, path.split("."))
    if not isinstance(text, str):
        raise IllegalArgumentError("query_text_path must point to a string field")
    return text


def _at_path(node: Any, parts: list[str]) -> Any:
    """The value at a dotted path of the request as OpenSearch re-serialises it: there a short-form leaf query
    (`{"match": {"title": "red"}}`) reads as its long form (`{"match": {"title": {"query": "red"}}}`), so the
    documented path `query.match.title.query` works for both."""
    for i, part in enumerate(parts):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, str) and part == "query" and i == len(parts) - 1 and i >= 3:
            return node
        else:
            return None
    return node


def _field(hit: dict[str, Any], name: str) -> Any:
    fields = hit.get("fields") or {}
    if name in fields:
        return fields[name]
    return source_value(hit, name)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def _remove(source: dict[str, Any], path: str) -> None:
    if path in source:
        source.pop(path)
        return
    *parents, last = path.split(".")
    node: Any = source
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(last, None)


@processor("response_processors", "rerank")
def rerank(config: dict[str, Any]) -> Processor:
    check_keys("rerank", config, {"ml_opensearch", "by_field", "context"})
    methods = [k for k in ("ml_opensearch", "by_field") if k in config]
    if len(methods) != 1:
        raise IllegalArgumentError("rerank processor must have exactly one rerank type: [ml_opensearch, by_field]")
    if methods[0] == "by_field":
        spec = config["by_field"]
        if not isinstance(spec, dict):
            raise IllegalArgumentError("[by_field] must be an object")
        check_keys(
            "rerank", spec, {"target_field", "remove_target_field", "keep_previous_score", "previous_score_field"}
        )
        return FieldRerank(config, spec)
    spec = config["ml_opensearch"]
    model_id = required("rerank", spec if isinstance(spec, dict) else {}, "model_id")
    context = config.get("context")
    fields = (context or {}).get("document_fields") if isinstance(context, dict) else None
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        raise IllegalArgumentError("[context.document_fields] must be a non-empty list of field names")
    return CrossEncoderRerank(config, str(model_id), fields)
