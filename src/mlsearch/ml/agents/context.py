"""The tool context of a node: searches through the engine (with `neural` / `neural_sparse` run through their
models), index listings, connector calls and model inference, all in-process."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlsearch.engine import aggs
from mlsearch.engine.indices import Indices
from mlsearch.engine.search import execute, parse_request
from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.agents.tools import ToolContext
from mlsearch.ml.connectors.model import Connector
from mlsearch.ml.connectors.remote import RemoteConnector
from mlsearch.ml.predictor import PredictInput, Tensor
from mlsearch.ml.service import MLService
from mlsearch.neural import mentions_models, rewrite


def build_context(ml: MLService, indices: Indices, run_agent: Callable[[str, dict[str, str]], Any]) -> ToolContext:
    def search(expression: str, body: dict[str, Any]) -> dict[str, Any]:
        targets = indices.resolve(expression)
        if mentions_models(body):
            body = rewrite(body, ml)
        return execute(targets, parse_request(body), aggs_runner=aggs.run)

    def index_rows(names: list[str] | None) -> list[dict[str, Any]]:
        chosen = indices.resolve(",".join(names), include_hidden=True) if names else indices.all()
        return [_row(index) for index in chosen if names or not index.name.startswith(".")]

    def index_info(name: str) -> dict[str, Any]:
        [index] = indices.resolve(name)[:1] or [None]
        if index is None:
            raise IllegalArgumentError(f"no such index [{name}]")
        return {"index": index.name, "mappings": index.mappings.to_json(), "settings": index.meta.settings}

    def call_connector(connector_id: str, params: dict[str, str]) -> list[Tensor]:
        stored = ml.connectors.get_stored(connector_id)
        remote = RemoteConnector(
            Connector.model_validate(stored),
            dict(stored.get("credential") or {}),
            ml.connectors.secrets.decrypt_map,
            ml.setting,
        )
        try:
            return remote.call(PredictInput(parameters=params), "EXECUTE").tensors
        finally:
            remote.close()

    return ToolContext(
        infer=ml.infer,
        search=search,
        index_names=indices.names,
        index_rows=index_rows,
        index_info=index_info,
        call_connector=call_connector,
        run_agent=run_agent,
    )


def _row(index: Any) -> dict[str, Any]:
    size = _dir_size(index.path)
    replicas = int(index.setting("index.number_of_replicas", 1))
    return {
        "health": "yellow" if replicas else "green",
        "status": index.meta.state,
        "index": index.name,
        "uuid": index.meta.uuid,
        "pri": 1,
        "rep": replicas,
        "docs.count": index.count(),
        "docs.deleted": 0,
        "store.size": f"{size / 1024:.1f}kb",
        "pri.store.size": f"{size / 1024:.1f}kb",
    }


def _dir_size(path: Path) -> int:
    total = 0
    for item in Path(path).rglob("*"):
        with contextlib.suppress(OSError):  # a file removed (merged segment) while we walk
            total += item.stat().st_size if item.is_file() else 0
    return total
