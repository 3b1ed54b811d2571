"""The tool context of a node: searches through the engine (with `neural` / `neural_sparse` run through their
models), index listings, connector calls and model inference, all in-process."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlsearch.engine import aggs
from mlsearch.engine.indices import VERSION_CREATED, Indices
from mlsearch.engine.search import execute, parse_request
from mlsearch.engine.settings import as_string
from mlsearch.ml.agents.tools import ToolContext
from mlsearch.ml.connectors.model import Connector
from mlsearch.ml.connectors.remote import RemoteConnector
from mlsearch.ml.predictor import PredictInput, Tensor
from mlsearch.ml.service import MLService
from mlsearch.neural import mentions_models, rewrite
from mlsearch.neural.semantic import targets_of


def build_context(ml: MLService, indices: Indices, run_agent: Callable[[str, dict[str, str]], Any]) -> ToolContext:
    def search(expression: str, body: dict[str, Any]) -> dict[str, Any]:
        targets = indices.resolve(expression)
        if mentions_models(body):
            # as `_search` does: a neural query on a semantic field finds its embedding field and model
            semantic = targets_of([index.mappings.tree for index in targets], ml.registry.find)
            body = rewrite(body, ml, None, semantic)
        return execute(targets, parse_request(body), aggs_runner=aggs.run)

    def index_rows(names: list[str] | None) -> list[dict[str, Any]]:
        # Every index without names, system ones included, as `_cat/indices` and ML Commons' ListIndexTool list them.
        chosen = indices.resolve(",".join(names), include_hidden=True) if names else indices.all()
        return [_row(index) for index in chosen]

    def index_info(name: str) -> list[dict[str, Any]]:
        """Mappings and flat settings of the indices `name` resolves to (wildcards expand; unknown names 404)."""
        return [
            {"index": index.name, "mappings": index.mappings.to_json(), "settings": _flat_settings(index)}
            for index in indices.resolve(name, allow_no_indices=False)
        ]

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
        "pri": int(index.setting("index.number_of_shards", 1)),
        "rep": replicas,
        "docs.count": index.count(),
        "docs.deleted": 0,
        "store.size": size,
        "pri.store.size": size,
    }


def _flat_settings(index: Any) -> dict[str, Any]:
    """The index's settings as `GET <index>/_settings?flat_settings=true` gives them."""
    values = {
        "index.creation_date": index.meta.creation_date,
        "index.uuid": index.meta.uuid,
        "index.version.created": VERSION_CREATED,
        "index.provided_name": index.name,
        **index.meta.settings,
    }
    return {k: as_string(v) for k, v in values.items()}


def _dir_size(path: Path) -> int:
    total = 0
    for item in Path(path).rglob("*"):
        with contextlib.suppress(OSError):  # a file removed (merged segment) while we walk
            total += item.stat().st_size if item.is_file() else 0
    return total
