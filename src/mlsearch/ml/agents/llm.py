"""Talking to the agent's LLM (a remote model): the ReAct text protocol (a JSON object with `thought` and
`action` / `action_input`, or `final_answer`) and the function-calling interfaces named by `_llm_interface`
(`openai/v1/chat/completions`, `bedrock/converse/claude`), whose tool calls come back as structured output."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from mlsearch.errors import StatusError
from mlsearch.ml.connectors import jsonpath

NO_ESCAPE = "_chat_history,_tools,_interactions,tool_configs"
_JSON_FENCE = re.compile(r"```json(.*?)(```|$)", re.DOTALL)
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Step:
    """One LLM turn: a tool call (`action`, `action_input`, `call_id`) or a final answer."""

    thought: str = ""
    action: str | None = None
    action_input: str = ""
    call_id: str | None = None
    final_answer: str | None = None
    raw: str = ""  # what the LLM said, as stored in traces
    assistant: Any = None  # function calling: the assistant message to send back with the tool result


def parse_react(text: str, tool_names: list[str]) -> Step:
    """The ReAct JSON in an LLM answer (fenced or bare); text that holds none is the final answer."""
    parsed = _react_json(text)
    if parsed is None:
        return Step(final_answer=text.strip(), raw=text)
    thought = _as_text(parsed.get("thought", ""))
    if parsed.get("final_answer") is not None:
        return Step(thought=thought, final_answer=_as_text(parsed["final_answer"]), raw=text)
    action = _matched_tool(_as_text(parsed.get("action", "")), tool_names)
    if action is None:
        # No usable tool: ML Commons answers with what the LLM thought (stop_when_no_tool_found).
        return Step(thought=thought, final_answer=thought or text.strip(), raw=text)
    return Step(thought=thought, action=action, action_input=_as_text(parsed.get("action_input", "")), raw=text)


def _react_json(text: str) -> dict[str, Any] | None:
    fenced = _JSON_FENCE.search(text)
    candidates = [fenced.group(1)] if fenced else []
    candidates.append(text)
    whole = _JSON_OBJECT.search(text)
    if whole:
        candidates.append(whole.group(0))
    for candidate in candidates:
        try:
            value = orjson.loads(candidate.strip())
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict) and value.keys() & {"thought", "action", "final_answer"}:
            return value
    return None


def _matched_tool(action: str, tool_names: list[str]) -> str | None:
    """ML Commons matches a tool whose name the action contains (case-insensitive)."""
    lowered = action.lower()
    return next((name for name in tool_names if name.lower() in lowered), None) if action else None


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


@dataclass(frozen=True, slots=True)
class Interface:
    """A function-calling LLM API: how tools, history and tool results are written and how calls are read."""

    name: str
    tool_template: str
    tool_configs: str
    final_path: str
    tool_calls_path: str
    assistant_path: str
    name_key: str
    input_key: str
    id_key: str

    def tools(self, specs: list[dict[str, Any]]) -> str:
        return ", ".join(self._tool(spec) for spec in specs)

    def _tool(self, spec: dict[str, Any]) -> str:
        text = self.tool_template
        for key, value in (("name", spec["name"]), ("description", spec["description"])):
            text = text.replace("${tool." + key + "}", orjson.dumps(value).decode()[1:-1])
        return text.replace("${tool.attributes.input_schema}", orjson.dumps(spec["input_schema"]).decode())

    def history(self, question: str, answer: str) -> list[dict[str, Any]]:
        if self.name == OPENAI:
            return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        return [
            {"role": "user", "content": [{"text": question}]},
            {"role": "assistant", "content": [{"text": answer}]},
        ]

    def tool_result(self, call_id: str, text: str) -> dict[str, Any]:
        if self.name == OPENAI:
            return {"role": "tool", "tool_call_id": call_id, "content": text}
        return {"role": "user", "content": [{"toolResult": {"toolUseId": call_id, "content": [{"text": text}]}}]}

    def parse(self, data: Any, tool_names: list[str]) -> Step:
        raw = orjson.dumps(data).decode()
        calls = _read(data, self.tool_calls_path)
        if isinstance(calls, list):
            calls = [c for c in calls if c is not None]
        if calls:
            return self._call(calls[0], data, raw)
        final = _read(data, self.final_path)
        if final is None:
            raise StatusError(f"The LLM response has neither an answer nor a tool call: {raw}", status=502)
        return Step(final_answer=_as_text(final), raw=raw)

    def _call(self, call: Any, data: Any, raw: str) -> Step:
        if not isinstance(call, dict):
            raise StatusError(f"Malformed tool call from the LLM: {orjson.dumps(call).decode()}", status=502)
        name = _read(call, self.name_key)
        call_id = _read(call, self.id_key)
        if not isinstance(name, str) or not name or not isinstance(call_id, str):
            raise StatusError(f"Malformed tool call from the LLM: {orjson.dumps(call).decode()}", status=502)
        arguments = _read(call, self.input_key)
        return Step(
            action=name,
            action_input=_as_text(arguments if arguments is not None else {}),
            call_id=call_id,
            raw=raw,
            assistant=_read(data, self.assistant_path),
        )


def _read(data: Any, path: str) -> Any:
    try:
        return jsonpath.read(data, path)
    except Exception:
        return None


OPENAI = "openai/v1/chat/completions"
BEDROCK_CLAUDE = "bedrock/converse/claude"
INTERFACES = {
    OPENAI: Interface(
        name=OPENAI,
        tool_template='{"type": "function", "function": {"name": "${tool.name}", "description": '
        '"${tool.description}", "parameters": ${tool.attributes.input_schema}, "strict": false}}',
        tool_configs=', "tools": [${parameters._tools}], "parallel_tool_calls": false',
        final_path="$.choices[0].message.content",
        tool_calls_path="$.choices[0].message.tool_calls",
        assistant_path="$.choices[0].message",
        name_key="$.function.name",
        input_key="$.function.arguments",
        id_key="$.id",
    ),
    BEDROCK_CLAUDE: Interface(
        name=BEDROCK_CLAUDE,
        tool_template='{"toolSpec": {"name": "${tool.name}", "description": "${tool.description}", '
        '"inputSchema": {"json": ${tool.attributes.input_schema}}}}',
        tool_configs=', "toolConfig": {"tools": [${parameters._tools}]}',
        final_path="$.output.message.content[0].text",
        tool_calls_path="$.output.message.content[*].toolUse",
        assistant_path="$.output.message",
        name_key="$.name",
        input_key="$.input",
        id_key="$.toolUseId",
    ),
}
INTERFACES["bedrock/converse/deepseek_r1"] = INTERFACES[BEDROCK_CLAUDE]
