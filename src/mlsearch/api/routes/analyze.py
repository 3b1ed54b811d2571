"""`_analyze`: run a built-in analyzer (or a mapped field's) over text and list its tokens, as OpenSearch does."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body
from mlsearch.api.render import json_response
from mlsearch.api.routes._common import blocking, node_of
from mlsearch.engine.analysis import KEYWORD, Analyzers, known_analyzer
from mlsearch.engine.index import Index
from mlsearch.errors import (
    ActionRequestValidationError,
    IllegalArgumentError,
    XContentParseError,
)

_KNOWN = {"text", "analyzer", "tokenizer", "filter", "char_filter", "field", "explain", "attributes", "normalizer"}
# Custom analysis chains are not built here; asking for one is refused rather than silently ignored.
_UNSUPPORTED = ("tokenizer", "filter", "char_filter", "normalizer")
# Lucene's defaults for the named analyzers: positions jump by 100 between the values of an array, offsets by 1.
_POSITION_GAP = 100
_OFFSET_GAP = 1


async def analyze(request: Request) -> Response:
    body = await json_body(request) or {}
    if not isinstance(body, dict):
        raise XContentParseError("[analyze_request] Expected START_OBJECT")
    node = node_of(request)
    expression = request.path_params.get("index")
    index = node.indices.get(expression) if expression else None
    texts, analyzer = _parse(body, index)
    tokens = await blocking(_tokens, index.analyzers if index is not None else Analyzers(), analyzer, texts)
    return json_response({"tokens": tokens}, request=request)


def _parse(body: dict[str, Any], index: Index | None) -> tuple[list[str], str]:
    for key in body:
        if key not in _KNOWN:
            raise XContentParseError(f"[analyze_request] unknown field [{key}]")
    for key in _UNSUPPORTED:
        if key in body:
            raise IllegalArgumentError(f"[_analyze] [{key}] is not supported; name a built-in analyzer instead")
    if body.get("explain"):
        raise IllegalArgumentError("[_analyze] [explain] is not supported")
    text = body.get("text")
    texts = [text] if isinstance(text, str) else text
    if not texts or not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ActionRequestValidationError("Validation Failed: 1: text is missing;")
    analyzer = body.get("analyzer")
    if analyzer is not None:
        if not isinstance(analyzer, str) or not known_analyzer(analyzer):
            where = "analyzer" if index is not None else "global analyzer"
            raise IllegalArgumentError(f"failed to find {where} [{analyzer}]")
        return texts, analyzer
    return texts, _field_analyzer(index, body.get("field"))


def _field_analyzer(index: Index | None, field: Any) -> str:
    """A mapped field's index analyzer (keyword fields: `keyword`); the standard analyzer otherwise."""
    if index is None or not isinstance(field, str):
        return "standard"
    mapped = index.meta.mappings.field(field)
    if mapped is None:
        return "standard"
    return KEYWORD if mapped.type == "keyword" else mapped.analyzer


def _tokens(analyzers: Analyzers, name: str, texts: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    position_base, offset_base = 0, 0
    for text in texts:
        last = -1
        for token in analyzers.tokens(name, text):
            last = position_base + token.position
            out.append(
                {
                    "token": token.token,
                    "start_offset": offset_base + token.start_offset,
                    "end_offset": offset_base + token.end_offset,
                    "type": token.type,
                    "position": last,
                }
            )
        position_base = max(last, position_base - 1) + 1 + _POSITION_GAP
        offset_base += len(text) + _OFFSET_GAP
    return out


def routes() -> list[Route]:
    return [
        Route("/_analyze", analyze, methods=["GET", "POST"]),
        Route("/{index}/_analyze", analyze, methods=["GET", "POST"]),
    ]
