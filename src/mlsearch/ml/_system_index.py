"""ML Commons system indices (`.plugins-ml-*`) created on first use through the engine's catalog."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Mapping
from typing import Any

from mlsearch.engine.index import DocOp, Index
from mlsearch.engine.indices import Indices
from mlsearch.errors import ResourceAlreadyExistsError


def ensure(indices: Indices, name: str, mappings: Mapping[str, Any]) -> Index:
    """The system index, created hidden with `mappings` when missing (a concurrent creator may win the race)."""
    index = indices.find(name)
    if index is not None:
        return index
    try:
        return indices.create(name, {"settings": {"index.hidden": True}, "mappings": dict(mappings)})
    except ResourceAlreadyExistsError:
        return indices.get(name)


def put(index: Index, doc_id: str, source: dict[str, Any]) -> None:
    """Index (create or replace) one document, searchable on return."""
    [result] = index.write([DocOp("index", doc_id, source)], refresh=True)
    if result.error is not None:
        raise result.error


def new_id() -> str:
    """A 20-character URL-safe id, time-ordered like OpenSearch's auto-generated ids."""
    raw = int(time.time() * 1000).to_bytes(6, "big") + os.urandom(9)
    return base64.urlsafe_b64encode(raw).decode()[:20]


def now_millis() -> int:
    return int(time.time() * 1000)
