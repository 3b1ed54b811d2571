"""Tools that describe the cluster's indices: ListIndexTool (and its older name CatIndexTool), IndexMappingTool.
Their output is the text ML Commons gives the LLM: a CSV table (ListIndexTool), and `index: ...` / `mappings:` /
`settings:` blocks with Java's `Map.toString()` and flat `key=value` settings (IndexMappingTool)."""

from __future__ import annotations

from typing import Any

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
_LIST_SCHEMA = (
    '{"type":"object","properties":{"indices":{"type":"array","items": {"type": "string"},"description":'
    '"OpenSearch index name list, separated by comma. for example: [\\"index1\\", \\"index2\\"], use empty array [] '
    'to list all indices in the cluster"}},"additionalProperties":false}'
)
_MAPPING_SCHEMA = (
    '{"type":"object","properties":{"index":{"type":"array","description":"OpenSearch index name list, separated '
    'by comma. for example: [\\"index1\\", \\"index2\\"]","items":{"type":"string"}}},"required":["index"],'
    '"additionalProperties":false}'
)


def _names(params: dict[str, str], key: str) -> list[str] | None:
    """A JSON list of names, or (as an LLM may give it) one name or a comma-delimited list."""
    value = json_param(params, key)
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def byte_size(size: int) -> str:
    """OpenSearch's ByteSizeValue text: the largest unit with a value of at least 1, one decimal unless whole."""
    value, unit = float(size), "b"
    for next_unit in ("kb", "mb", "gb", "tb"):
        if value < 1024:
            break
        value, unit = value / 1024, next_unit
    text = f"{value:.1f}"
    return (text[:-2] if text.endswith(".0") else text) + unit


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [",".join(header for _, header in _COLUMNS)]
    for n, row in enumerate(rows, start=1):
        values = {**row, "row": n}
        for key in ("store.size", "pri.store.size"):
            values[key] = byte_size(int(row[key]))
        lines.append(",".join(str(values.get(key, "")) for key, _ in _COLUMNS))
    return "\n".join(lines) + "\n"


def _list_indices(params: dict[str, str], ctx: ToolContext) -> str:
    names = _names(params, "indices") or _names(params, "index")
    rows = ctx.index_rows(names)
    if not rows:
        return f"There were no results searching the indices parameter [{params.get('indices', 'null')}]."
    return _table(rows)


@tool(
    "ListIndexTool",
    "This tool returns information about indices in the OpenSearch cluster along with the index `health`, `status`, "
    "`index`, `uuid`, `pri`, `rep`, `docs.count`, `docs.deleted`, `store.size`, `pri.store. size `, `pri.store.size`, "
    "`pri.store`. Optional arguments: 1. `indices`, a comma-delimited list of one or more indices to get information "
    "from (default is an empty list meaning all indices). Use only valid index names. 2. `local`, whether to return "
    "information from the local node only instead of the cluster manager node (Default is false)",
    {"input_schema": _LIST_SCHEMA, "strict": False},
)
def list_index(params: dict[str, str], ctx: ToolContext) -> str:
    return _list_indices(params, ctx)


@tool("CatIndexTool", "Use this tool to get OpenSearch index information: (health, status, index, uuid, primary "
      "count, replica count, docs.count, docs.deleted, store.size, primary.store.size).")  # fmt: skip
def cat_index(params: dict[str, str], ctx: ToolContext) -> str:
    return _list_indices(params, ctx)


@tool(
    "IndexMappingTool",
    "This tool returns index mappings and settings for specified indices. Required argument: 'index' - "
    "comma-delimited list of one or more indices (supports wildcards like 'my-index-*'). Optional argument: 'local' - "
    "if true, returns info from local node only instead of cluster manager (default: false). Response format: For "
    "each index, 'mappings' contains field definitions under 'properties' (each field has a 'type'), and 'settings' "
    "contains configuration as a flattened key-value map.",
    {"input_schema": _MAPPING_SCHEMA, "strict": True},
)
def index_mapping(params: dict[str, str], ctx: ToolContext) -> str:
    names = _names(params, "index")
    infos = [info for name in names or [] for info in ctx.index_info(name)]
    if not infos:
        return f"There were no results searching the index parameter [{params.get('index', 'null')}]."
    parts = []
    for info in infos:
        mappings = "".join(f"{key}={java_text(value)}\n" for key, value in info["mappings"].items())
        settings = "".join(f"{key}={java_text(value)}\n" for key, value in sorted(info["settings"].items()))
        parts.append(f"index: {info['index']}\n\nmappings:\n{mappings}\n\nsettings:\n{settings}\n\n")
    return "".join(parts)


def java_text(value: Any) -> str:
    """A value as Java's `toString()` writes it: maps `{k=v, k2=v2}`, lists `[a, b]`, booleans `true`."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={java_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(java_text(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)
