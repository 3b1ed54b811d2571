"""Agent records in `.plugins-ml-agent`: validated on register / update, read back as ML Commons returns them.

ML Commons keeps tool, LLM and agent parameters as string maps, so non-string values are stored (and returned)
JSON-stringified, e.g. `"source_field": "[\\"text\\"]"`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mlsearch.engine.index import OpResult
from mlsearch.errors import IllegalArgumentError, ParsingError, StatusError
from mlsearch.ml.connectors.templates import to_text
from mlsearch.ml.ids import new_id
from mlsearch.ml.system_indices import AGENT_INDEX, SystemIndices
from mlsearch.ml.tasks import now_millis

AGENT_TYPES = ("flow", "conversational_flow", "conversational", "conversational_v2", "plan_execute_and_reflect")
NEEDS_LLM = ("conversational", "conversational_v2", "plan_execute_and_reflect")
_FIELDS = {
    "name",
    "type",
    "description",
    "tools",
    "llm",
    "memory",
    "parameters",
    "app_type",
    "is_hidden",
    "inject_datetime",
    "datetime_format",
    "created_time",
    "last_updated_time",
    "lastUpdateTime",
}
_TOOL_FIELDS = {"type", "name", "description", "parameters", "attributes", "include_output_in_agent_response", "config"}


def not_found(agent_id: str) -> StatusError:
    return StatusError(f"Failed to find agent with the provided agent id: {agent_id}", status=404)


def string_map(value: Any, what: str) -> dict[str, str]:
    """A parameter map as ML Commons keeps it: every value a string (objects and arrays as JSON)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ParsingError(f"[{what}] must be an object")
    return {str(k): to_text(v) for k, v in value.items() if v is not None}


class AgentRecords:
    """Register, get, update, search and delete agent records; `known_tool` says whether a tool type exists."""

    def __init__(self, records: SystemIndices, known_tool: Callable[[str], bool]) -> None:
        self._records = records
        self._known_tool = known_tool

    def register(self, body: Any) -> str:
        stamp = now_millis()
        doc = {**self._validated(body), "created_time": stamp, "last_updated_time": stamp}
        agent_id = new_id()
        self._records.create(AGENT_INDEX, agent_id, doc)
        return agent_id

    def find(self, agent_id: str) -> dict[str, Any] | None:
        return self._records.get(AGENT_INDEX, agent_id)

    def get(self, agent_id: str) -> dict[str, Any]:
        doc = self.find(agent_id)
        if doc is None:
            raise not_found(agent_id)
        return doc

    def update(self, agent_id: str, body: Any) -> OpResult:
        """ML Commons' update replaces the given top-level fields; name and type stay valid."""
        current = self.get(agent_id)
        if not isinstance(body, dict):
            raise ParsingError("request body must be an object")
        if "type" in body and str(body["type"]).lower() != current["type"]:
            raise IllegalArgumentError("Agent type cannot be updated")
        merged = {k: v for k, v in current.items() if k not in ("created_time", "last_updated_time")}
        merged.update(body)
        doc = {**self._validated(merged), "created_time": current.get("created_time")}
        doc["last_updated_time"] = now_millis()
        return self._records.put(AGENT_INDEX, agent_id, doc)

    def search(self, body: Any) -> dict[str, Any]:
        return self._records.search(AGENT_INDEX, body)

    def delete(self, agent_id: str) -> OpResult:
        if self.find(agent_id) is None:
            raise StatusError("Fail to find ml agent", status=404)
        return self._records.delete(AGENT_INDEX, agent_id)

    # ---- validation -------------------------------------------------------------------------------------

    def _validated(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ParsingError("request body must be an object")
        for key in body:
            if key not in _FIELDS and key != "model":
                raise ParsingError(f"Unknown field [{key}] in agent registration")
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise IllegalArgumentError("Agent name can't be null")
        kind = str(body.get("type") or "").lower()
        if kind not in AGENT_TYPES:
            raise IllegalArgumentError(f"{body.get('type')} is not a valid Agent Type")
        doc: dict[str, Any] = {"name": name, "type": kind}
        if body.get("description") is not None:
            doc["description"] = str(body["description"])
        llm = self._llm(body.get("llm"))
        if llm is not None:
            doc["llm"] = llm
        elif kind in NEEDS_LLM:
            raise IllegalArgumentError(f"We need model information for the {kind} agent type")
        doc["tools"] = self._tools(body.get("tools"))
        if body.get("parameters") is not None:
            doc["parameters"] = string_map(body["parameters"], "parameters")
        if body.get("memory") is not None:
            doc["memory"] = self._memory(body["memory"])
        for key in ("app_type", "is_hidden", "inject_datetime", "datetime_format"):
            if body.get(key) is not None:
                doc[key] = body[key]
        return doc

    @staticmethod
    def _llm(value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("model_id"), str) or not value["model_id"]:
            raise IllegalArgumentError("model id is null")
        return {"model_id": value["model_id"], "parameters": string_map(value.get("parameters"), "llm.parameters")}

    @staticmethod
    def _memory(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ParsingError("[memory] must be an object")
        kind = value.get("type")
        if kind not in ("conversation_index", "agentic_memory"):
            raise IllegalArgumentError(f"Invalid memory type: {kind}")
        return dict(value)

    def _tools(self, value: Any) -> list[dict[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ParsingError("[tools] must be an array")
        tools, names = [], set()
        for item in value:
            tool = self._tool(item)
            if tool["name"] in names:
                raise IllegalArgumentError(f"Duplicate tool defined: {tool['name']}")
            names.add(tool["name"])
            tools.append(tool)
        return tools

    def _tool(self, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict):
            raise ParsingError("a tool must be an object")
        unknown = set(item) - _TOOL_FIELDS
        if unknown:
            raise ParsingError(f"Unknown field [{sorted(unknown)[0]}] in tool")
        kind = item.get("type")
        if not isinstance(kind, str) or not kind:
            raise IllegalArgumentError("tool type can't be null")
        if not self._known_tool(kind):
            raise IllegalArgumentError(f"Tool not found: {kind}")
        tool: dict[str, Any] = {"type": kind, "name": str(item.get("name") or kind)}
        if item.get("description") is not None:
            tool["description"] = str(item["description"])
        tool["parameters"] = string_map(item.get("parameters"), "tools.parameters")
        if item.get("attributes") is not None:
            tool["attributes"] = item["attributes"]
        tool["include_output_in_agent_response"] = bool(item.get("include_output_in_agent_response", False))
        if item.get("config") is not None:
            tool["config"] = string_map(item["config"], "tools.config")
        return tool
