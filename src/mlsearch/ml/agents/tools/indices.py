"""Tools that describe the cluster's indices: ListIndexTool (and its older name CatIndexTool), IndexMappingTool.
Their output is a CSV-like table / text, as ML Commons gives the LLM."""

from __future__ import annotations

from typing import Any

import orjson

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.agents.tools import ToolContext, json_param, tool

_COLUMNS = (
    ("row", "row"),
    ("health", "health"),
    ("status", "status"),
    ("index", "index"),
    ("uuid", "uuid"),
    ("pri", "pri(number of primary shards)"),
    ("rep", "rep(number of replica shards)"),
    ("docs.count", "docs.count(number of available documents)"),
    ("docs.deleted", "docs.deleted(number of deleted documents)"),
    ("store.size", "store.size(store size of primary and replica shards)"),
    ("pri.store.size", "pri.store.size(store size of primary shards)"),
)


def _names(params: dict[str, str], key: str) -> list[str] | None:
    value = json_param(params, key)
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [",".join(header for _, header in _COLUMNS)]
    for n, row in enumerate(rows, start=1):
        values = {**row, "row": n}
        lines.append(",".join(str(values.get(key, "")) for key, _ in _COLUMNS))
    return "\n".join(lines) + "\n"


def _list_indices(params: dict[str, str], ctx: ToolContext) -> str:
    rows = ctx.index_rows(_names(params, "indices") or _names(params, "index"))
    page_size = int(params.get("page_size") or 100)
    return _table(rows[: max(page_size, 1)] if page_size > 0 else rows)


@tool("ListIndexTool", "This tool gets index information from the OpenSearch cluster. It takes 2 optional arguments "
      "named `index` which is a comma-delimited list of one or more indices to get information from (default is an "
      "empty list meaning all indices), and `local` which means whether to return information from the local node "
      "only instead of the cluster manager node (default is false).")  # fmt: skip
def list_index(params: dict[str, str], ctx: ToolContext) -> str:
    return _list_indices(params, ctx)


@tool("CatIndexTool", "Use this tool to get OpenSearch index information: (health, status, index, uuid, primary "
      "count, replica count, docs.count, docs.deleted, store.size, primary.store.size).")  # fmt: skip
def cat_index(params: dict[str, str], ctx: ToolContext) -> str:
    return _list_indices(params, ctx)


@tool("IndexMappingTool", "This tool gets index mapping information from a certain index. It takes 1 required "
      "argument named `index` which is a comma-delimited list of one or more indices to get mapping information "
      "from, which expands wildcards.")  # fmt: skip
def index_mapping(params: dict[str, str], ctx: ToolContext) -> str:
    names = _names(params, "index")
    if not names and params.get("input"):
        names = _names({"index": params["input"]}, "index")
    if not names:
        raise IllegalArgumentError("No index information provided in the parameters")
    parts = []
    for name in names:
        info = ctx.index_info(name)
        parts.append(
            f"index: {info['index']}\n\nmappings:\n{_text(info['mappings'])}\n\nsettings:\n{_text(info['settings'])}\n"
        )
    return "\n".join(parts)


def _text(value: Any) -> str:
    return orjson.dumps(value).decode()
