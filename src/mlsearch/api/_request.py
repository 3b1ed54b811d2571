"""Reading requests: JSON and NDJSON bodies (with the size limit), and typed query-string parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request

from mlsearch.errors import ContentTooLongError, IllegalArgumentError, JsonParseError, MLSearchError


async def raw_body(request: Request) -> bytes:
    limit: int = request.app.state.node.settings.max_content_length
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ContentTooLongError(f"Request content too long: [{declared}] bytes, limit [{limit}]")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ContentTooLongError(f"Request content too long: more than [{limit}] bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body and request.query_params.get("source"):
        body = request.query_params["source"].encode()
    return body


async def json_body(
    request: Request, *, required: bool = False, error: Callable[[str], MLSearchError] | None = None
) -> Any:
    """The parsed JSON body, or None when empty; malformed JSON gets a json_parse_exception (or `error`)."""
    body = await raw_body(request)
    if not body.strip():
        if required:
            raise IllegalArgumentError("request body is required")
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        reason = f"Unexpected character in JSON: {exc}"
        raise (error(reason) if error else JsonParseError(reason)) from None


def param_bool(request: Request, name: str, default: bool = False) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return default
    if value in ("", "true"):
        return True
    if value == "false":
        return False
    raise IllegalArgumentError(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


def param_int(request: Request, name: str, default: int | None = None) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise IllegalArgumentError(f"Failed to parse int parameter [{name}] with value [{value}]") from None


def refresh_param(request: Request) -> bool:
    """`?refresh`, `?refresh=true` and `?refresh=wait_for` all return once the write is searchable."""
    value = request.query_params.get("refresh")
    if value is None or value == "false":
        return False
    if value in ("", "true", "wait_for"):
        return True
    raise IllegalArgumentError(f"Unknown value for refresh: [{value}].")
