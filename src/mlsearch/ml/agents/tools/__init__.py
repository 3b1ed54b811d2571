"""Agent tools by type name (spec §7.5): a registry of built-ins, what they may use (`ToolContext`), and the
parameter substitution they share. Each tool takes its string parameters (registered + execute-time, with
`${parameters.x}` filled in) and returns text or a JSON-able value."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.predictor import PredictInput, Tensor

_PLACEHOLDER = re.compile(r"\$\{parameters\.([^}:]+?)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What tools reach: models (ML service), searches through the engine, connectors and other agents."""

    infer: Callable[[str, PredictInput], list[list[Tensor]]]
    search: Callable[[str, dict[str, Any]], dict[str, Any]]
    index_names: Callable[[], list[str]]
    index_rows: Callable[[list[str] | None], list[dict[str, Any]]]
    index_info: Callable[[str], list[dict[str, Any]]]
    call_connector: Callable[[str, dict[str, str]], list[Tensor]]
    run_agent: Callable[[str, dict[str, str]], Any]


Run = Callable[[dict[str, str], ToolContext], Any]


@dataclass(frozen=True, slots=True)
class ToolType:
    type: str
    description: str
    run: Run
    version: str | None = None
    attributes: Mapping[str, Any] | None = None  # the factory's default attributes (input_schema, strict)

    def listing(self) -> dict[str, Any]:
        """As ML Commons' ToolMetadata renders: a missing version reads "undefined"; attributes only when set."""
        out: dict[str, Any] = {
            "name": self.type,
            "description": self.description,
            "type": self.type,
            "version": self.version if self.version is not None else "undefined",
        }
        if self.attributes is not None:
            out["attributes"] = dict(self.attributes)
        return out


TOOLS: dict[str, ToolType] = {}


def tool(type_name: str, description: str, attributes: Mapping[str, Any] | None = None) -> Callable[[Run], Run]:
    """Register a built-in tool under its ML Commons type name."""

    def register(run: Run) -> Run:
        TOOLS[type_name] = ToolType(type_name, description, run, attributes=attributes)
        return run

    return register


def get_tool(type_name: str) -> ToolType:
    found = TOOLS.get(type_name)
    if found is None:
        raise IllegalArgumentError(f"Tool not found: {type_name}")
    return found


def fill(template: str, params: Mapping[str, str]) -> str:
    """`${parameters.x}` / `${parameters.x:-default}` from params; unknown placeholders without default stay."""

    def replace(match: re.Match[str]) -> str:
        value = params.get(match.group(1))
        if value is not None:
            return value
        return match.group(2) if match.group(2) is not None else match.group(0)

    return _PLACEHOLDER.sub(replace, template)


def filled(params: Mapping[str, str]) -> dict[str, str]:
    """Every parameter with the placeholders of the others filled in (one pass, as ML Commons does)."""
    return {k: fill(v, params) if "${parameters." in v else v for k, v in params.items()}


def as_text(value: Any) -> str:
    """A tool's output as the text an LLM or a later tool sees."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def required(params: Mapping[str, str], key: str, tool_type: str) -> str:
    value = params.get(key)
    if value is None or not str(value).strip():
        raise IllegalArgumentError(f"[{key}] is null or empty, can not process it.")
    return value


def int_param(params: Mapping[str, str], key: str, default: int) -> int:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise IllegalArgumentError(f"[{key}] must be an integer, got [{raw}]") from None


def json_param(params: Mapping[str, str], key: str, default: Any = None) -> Any:
    raw = params.get(key)
    if raw is None:
        return default
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


# Built-ins register themselves on import.
from mlsearch.ml.agents.tools import indices, models, retrieval  # noqa: E402,F401
