"""Helpers shared by route modules: the node, running engine work off the event loop, write responses."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from mlsearch.engine.index import Index, OpResult
from mlsearch.node import Node

T = TypeVar("T")


def node_of(request: Request) -> Node:
    return request.app.state.node


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Engine calls block (SQLite fsync, tantivy); run them on the thread pool."""
    return await run_in_threadpool(fn, *args, **kwargs)


def shards(index: Index) -> dict[str, int]:
    replicas = int(index.setting("index.number_of_replicas", 1))
    return {"total": 1 + replicas, "successful": 1, "failed": 0}


def write_result(index: Index, result: OpResult, *, forced_refresh: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "_index": index.name,
        "_id": result.id,
        "_version": result.version,
        "result": result.result,
    }
    if forced_refresh and result.result != "noop":
        body["forced_refresh"] = True
    body["_shards"] = shards(index) if result.result != "noop" else {"total": 0, "successful": 0, "failed": 0}
    body["_seq_no"] = result.seq_no
    body["_primary_term"] = result.primary_term
    return body


def dir_size(path: Any) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # a file removed while we walk
                total += os.path.getsize(os.path.join(root, name))
    return total
