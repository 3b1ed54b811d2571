"""What the ML route modules share: the node's ML service, running its blocking work, and write results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request

from mlsearch.api.routes._common import blocking, node_of, write_result
from mlsearch.engine.index import OpResult
from mlsearch.ml.service import MLService

T = TypeVar("T")
ML = "/_plugins/_ml"


def ml_of(request: Request) -> MLService:
    return node_of(request).ml


async def run(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """ML operations read and write system indices (SQLite, tantivy): run them off the event loop."""
    return await blocking(fn, *args, **kwargs)


def system_write_result(request: Request, index_name: str, result: OpResult) -> dict[str, Any]:
    index = ml_of(request).records.index(index_name)
    return write_result(index, result, forced_refresh=result.result != "not_found")


def id_list(value: str | None) -> list[str] | None:
    """Comma-separated ids in a path segment."""
    if not value:
        return None
    return [part for part in value.split(",") if part]
