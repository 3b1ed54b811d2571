"""Responses: JSON via orjson (numpy values included), errors in OpenSearch's envelope, and `_cat` tables."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from mlsearch.errors import MLSearchError

log = logging.getLogger(__name__)
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def json_response(
    body: Any, status: int = 200, *, request: Request | None = None, headers: dict[str, str] | None = None
) -> Response:
    if request is not None:
        body = _filter_path(body, request.query_params.get("filter_path"))
    option = _OPTIONS
    if request is not None and request.query_params.get("pretty") is not None:
        option |= orjson.OPT_INDENT_2
    if request is not None and request.method == "HEAD":
        return Response(b"", status_code=status, media_type="application/json", headers=headers)
    return Response(
        orjson.dumps(body, option=option), status_code=status, media_type="application/json", headers=headers
    )


def error_body(error: MLSearchError) -> dict[str, Any]:
    return {"error": {"root_cause": error.root_causes(), **error.body()}, "status": error.status}


def error_response(error: MLSearchError, request: Request | None = None) -> Response:
    if request is not None and request.method == "HEAD":
        return Response(b"", status_code=error.status)
    return Response(
        orjson.dumps(error_body(error), option=_OPTIONS), status_code=error.status, media_type="application/json"
    )


def internal_error_response(exc: BaseException) -> Response:
    log.error("unexpected error", exc_info=exc)
    body = {
        "error": {
            "root_cause": [{"type": "exception", "reason": "internal server error"}],
            "type": "exception",
            "reason": "internal server error",
        },
        "status": 500,
    }
    return Response(orjson.dumps(body), status_code=500, media_type="application/json")


def cat_response(
    request: Request, columns: Sequence[str], rows: Sequence[dict[str, Any]], default: Sequence[str] | None = None
) -> Response:
    """A `_cat` answer: aligned text (`v` adds headers, `h` picks columns) or JSON with `format=json`."""
    wanted = _columns(request.query_params.get("h"), columns, default or columns)
    if request.query_params.get("format") == "json":
        return json_response([{c: _cell(r.get(c)) for c in wanted} for r in rows], request=request)
    table = [[_cell(r.get(c)) or "" for c in wanted] for r in rows]
    if request.query_params.get("v") is not None:
        table.insert(0, list(wanted))
    widths = [max((len(str(line[i])) for line in table), default=0) for i in range(len(wanted))]
    text = "".join(
        " ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n" for line in table
    )
    return Response(text, media_type="text/plain; charset=UTF-8")


def _columns(spec: str | None, columns: Sequence[str], default: Sequence[str]) -> list[str]:
    if not spec:
        return list(default)
    return [c for c in spec.split(",") if c in columns]


def _cell(value: Any) -> Any:
    return None if value is None else str(value)


def _filter_path(body: Any, spec: str | None) -> Any:
    """`filter_path=hits.hits._id,took`: keep only the named paths (`*` matches one level, `**` any)."""
    if not spec or not isinstance(body, dict):
        return body
    patterns = [p.split(".") for p in spec.split(",") if p]
    return _keep(body, patterns) or {}


def _keep(value: Any, patterns: list[list[str]]) -> Any:
    import fnmatch

    if any(not p for p in patterns):
        return value
    if isinstance(value, list):
        kept = [_keep(v, patterns) for v in value]
        return [k for k in kept if k is not None] or None
    if not isinstance(value, dict):
        return None
    out = {}
    for key, inner in value.items():
        rest = []
        for p in patterns:
            if p[0] == "**":
                rest.append(p)
                rest.append(p[1:])
            elif fnmatch.fnmatchcase(str(key), p[0]):
                rest.append(p[1:])
        if rest:
            kept = _keep(inner, rest)
            if kept is not None:
                out[key] = kept
    return out or None
