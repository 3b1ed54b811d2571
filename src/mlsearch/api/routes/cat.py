"""`_cat/plugins`, `_cat/count`, `_cat/aliases`, and index `_stats`.

Tools find out whether a cluster can do ML search by listing its plugins (`_cat/plugins`, `_nodes` → `plugins`),
so mlsearch names the OpenSearch plugins whose APIs it serves, at the API level it speaks."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch import API_LEVEL
from mlsearch.api.render import cat_response, json_response
from mlsearch.api.routes._common import blocking, dir_size, node_of

# The plugins whose REST APIs this server implements, as OpenSearch's distribution names them.
PLUGINS = [
    ("opensearch-knn", "k-NN vector fields and queries"),
    ("opensearch-ml", "ML Commons: models, connectors, agents, memory, training"),
    ("opensearch-neural-search", "neural, neural_sparse and hybrid queries; normalization and rerank"),
    ("opensearch-search-pipelines", "search pipelines"),
]


def plugin_infos() -> list[dict[str, Any]]:
    """The `plugins` list of `_nodes` info."""
    return [
        {
            "name": name,
            "version": f"{API_LEVEL}.0",
            "opensearch_version": API_LEVEL,
            "java_version": "21",
            "description": description,
            "classname": "",
            "custom_foldername": "",
            "extended_plugins": [],
            "has_native_controller": False,
        }
        for name, description in PLUGINS
    ]


async def cat_plugins(request: Request) -> Response:
    node = node_of(request)
    rows = [{"name": node.settings.node_name, "component": p, "version": f"{API_LEVEL}.0"} for p, _ in PLUGINS]
    return cat_response(
        request, ["name", "component", "version", "description"], rows, ["name", "component", "version"]
    )


async def cat_count(request: Request) -> Response:
    node = node_of(request)
    expression = request.path_params.get("index")
    indices = node.indices.resolve(expression) if expression else node.indices.all()
    now = time.time()
    count = sum(index.count() for index in indices)
    row = {"epoch": int(now), "timestamp": time.strftime("%H:%M:%S", time.gmtime(now)), "count": count}
    return cat_response(request, ["epoch", "timestamp", "count"], [row])


async def cat_aliases(request: Request) -> Response:
    node = node_of(request)
    wanted = request.path_params.get("name")
    rows = []
    for index in node.indices.all():
        for alias, spec in sorted(index.meta.aliases.items()):
            if wanted and alias not in wanted.split(","):
                continue
            routing = spec.get("routing")
            rows.append(
                {
                    "alias": alias,
                    "index": index.name,
                    "filter": "*" if spec.get("filter") else "-",
                    "routing.index": spec.get("index_routing", routing) or "-",
                    "routing.search": spec.get("search_routing", routing) or "-",
                    "is_write_index": str(spec["is_write_index"]).lower() if "is_write_index" in spec else "-",
                }
            )
    columns = ["alias", "index", "filter", "routing.index", "routing.search", "is_write_index"]
    return cat_response(request, columns, rows)


async def index_stats(request: Request) -> Response:
    node = node_of(request)
    expression = request.path_params.get("index")
    indices = node.indices.resolve(expression) if expression else node.indices.all()
    per_index = await blocking(lambda: {index.name: _stats_of(index) for index in indices})
    docs = sum(s["docs"]["count"] for s in per_index.values())
    size = sum(s["store"]["size_in_bytes"] for s in per_index.values())
    totals = {"docs": {"count": docs, "deleted": 0}, "store": {"size_in_bytes": size, "reserved_in_bytes": 0}}
    body = {
        "_shards": {"total": len(indices), "successful": len(indices), "failed": 0},
        "_all": {"primaries": totals, "total": totals},
        "indices": {
            name: {"uuid": index.meta.uuid, "primaries": stats, "total": stats}
            for (name, stats), index in zip(per_index.items(), indices, strict=True)
        },
    }
    return json_response(body, request=request)


def _stats_of(index: Any) -> dict[str, Any]:
    return {
        "docs": {"count": index.count(), "deleted": 0},
        "store": {"size_in_bytes": dir_size(index.path), "reserved_in_bytes": 0},
    }


def routes() -> list[Route]:
    return [
        Route("/_cat/plugins", cat_plugins, methods=["GET"]),
        Route("/_cat/count", cat_count, methods=["GET"]),
        Route("/_cat/count/{index}", cat_count, methods=["GET"]),
        Route("/_cat/aliases", cat_aliases, methods=["GET"]),
        Route("/_cat/aliases/{name}", cat_aliases, methods=["GET"]),
        Route("/_stats", index_stats, methods=["GET"]),
        Route("/{index}/_stats", index_stats, methods=["GET"]),
    ]
