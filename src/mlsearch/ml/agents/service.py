"""Agents of a node: records, execution by type (flow, conversational_flow, conversational, plan_execute_and_reflect),
async execution as AGENT_EXECUTION tasks, and direct tool execution.

Outputs follow ML Commons' ModelTensorOutput: `{"inference_results": [{"output": [tensor, ...]}]}`, where a tensor
is `{"name", "result"}` (text) or `{"name", "dataAsMap"}`."""

from __future__ import annotations

import logging
import threading
from typing import Any

import orjson

from mlsearch.engine.index import OpResult
from mlsearch.engine.indices import Indices
from mlsearch.errors import IllegalArgumentError, MLSearchError, ParsingError, StatusError
from mlsearch.ml.agents.context import build_context
from mlsearch.ml.agents.conversation import Conversation, Memory
from mlsearch.ml.agents.plan import PlanRun
from mlsearch.ml.agents.react import ReactRun
from mlsearch.ml.agents.records import AgentRecords, string_map
from mlsearch.ml.agents.tools import TOOLS, ToolContext, as_text, filled, get_tool
from mlsearch.ml.agents.tools.models import tensor_value
from mlsearch.ml.predictor import PredictInput
from mlsearch.ml.service import MLService

log = logging.getLogger(__name__)
FEATURE_SETTING = "plugins.ml_commons.agent_framework_enabled"
_MAX_DEPTH = 5  # AgentTool nesting: an agent that calls itself stops here instead of recursing forever


class AgentFrameworkDisabledError(MLSearchError):
    """ML Commons throws an IllegalStateException from its REST actions: `illegal_state_exception`, 500."""

    status = 500
    error_type = "illegal_state_exception"

    def __init__(self) -> None:
        super().__init__(
            f'Agent Framework is currently disabled. To enable it, update the setting "{FEATURE_SETTING}" to true.'
        )


class Agents:
    """The agents of a node. Owns no threads: async executions run in the ML service's task pool."""

    def __init__(self, ml: MLService, indices: Indices, memory: Memory | None) -> None:
        self._ml = ml
        self._memory = memory
        self.records = AgentRecords(ml.records, lambda kind: kind in TOOLS)
        self._nesting = threading.local()  # AgentTool depth of the run on this thread (runs are concurrent)
        self.context: ToolContext = build_context(ml, indices, self._run_nested)

    # ---- records ---------------------------------------------------------------------------------------

    def check_enabled(self) -> None:
        """Registering and executing agents need the agent framework (ML Commons gates those two actions)."""
        if not self._ml.setting(FEATURE_SETTING):
            raise AgentFrameworkDisabledError()

    def register(self, body: Any) -> dict[str, Any]:
        self.check_enabled()
        return {"agent_id": self.records.register(body)}

    def get(self, agent_id: str) -> dict[str, Any]:
        return self.records.get(agent_id)

    def update(self, agent_id: str, body: Any) -> OpResult:
        return self.records.update(agent_id, body)

    def search(self, body: Any) -> dict[str, Any]:
        return self.records.search(body)

    def delete(self, agent_id: str) -> OpResult:
        return self.records.delete(agent_id)

    # ---- execute ---------------------------------------------------------------------------------------

    def execute(self, agent_id: str, body: Any) -> dict[str, Any]:
        self.check_enabled()
        agent = self.records.get(agent_id)
        params = _execute_params(body)
        return {"inference_results": [{"output": output} for output in self.run(agent, params)]}

    def execute_async(self, agent_id: str, body: Any) -> dict[str, Any]:
        self.check_enabled()
        agent = self.records.get(agent_id)
        params = _execute_params(body)
        conversation = self._open(agent, params) if _has_memory(agent) else None
        tasks = self._ml.tasks
        task_id = tasks.create("AGENT_EXECUTION", "AGENT", is_async=True)

        def job() -> dict[str, Any]:
            outputs = self.run(agent, params, conversation)
            return {"response": {"inference_results": [{"output": output} for output in outputs]}}

        tasks.submit(task_id, job)
        response: dict[str, Any] = {"task_id": task_id, "status": "RUNNING"}
        if conversation is not None:
            response["response"] = {"memory_id": conversation.memory_id}
        return response

    def run(
        self, agent: dict[str, Any], params: dict[str, str], conversation: Conversation | None = None
    ) -> list[list[dict[str, Any]]]:
        """The output entries of a run (`inference_results`), each a list of tensors."""
        kind = agent["type"]
        if kind == "flow":
            return [self._flow(agent, params, None)]
        conversation = conversation or self._open(agent, params)
        if kind == "conversational_flow":
            return [self._flow(agent, params, conversation)]
        verbose = params.get("verbose", "false").lower() == "true"
        if kind == "plan_execute_and_reflect":
            return [PlanRun(agent, params, conversation, self._call_llm, self._run_tool).run()]
        return ReactRun(agent, params, conversation, self._call_llm, self._run_tool, verbose=verbose).run()

    def _open(self, agent: dict[str, Any], params: dict[str, str]) -> Conversation:
        memory = self._memory
        if memory is None:
            raise IllegalArgumentError("Conversation memory is not available on this node")
        limit = int(
            params.get("message_history_limit") or agent.get("parameters", {}).get("message_history_limit") or 10
        )
        question = params.get("question") or params.get("input") or ""
        return Conversation.open(memory, params.get("memory_id"), question, agent.get("app_type"), limit)

    # ---- flow ------------------------------------------------------------------------------------------

    def _flow(self, agent: dict[str, Any], params: dict[str, str], conv: Conversation | None) -> list[dict[str, Any]]:
        """Tools in order; each output is `${parameters.<tool name>.output}` for the next ones."""
        values = dict(params)
        if conv is not None:
            values["chat_history"] = conv.history_text()
        tools = agent.get("tools", [])
        if not tools:
            raise IllegalArgumentError("no tool defined in the flow agent")
        output: list[dict[str, Any]] = []
        last: Any = None
        for n, spec in enumerate(tools):
            last = self._run_tool(spec, values, {})
            values[f"{spec['name']}.output"] = as_text(last)
            if conv is not None:
                conv.trace(spec["name"], values.get("question", ""), as_text(last))
            if spec.get("include_output_in_agent_response") or n == len(tools) - 1:
                # ML Commons hands a one-tool flow agent's output to the executor as is, which names it `response`.
                name = "response" if conv is None and len(tools) == 1 else spec["name"]
                output.append({"name": name, "result": as_text(last)})
        if conv is not None:
            conv.answer(as_text(last))
            return [*conv.output(), *output]
        return output

    # ---- tools and models ------------------------------------------------------------------------------

    def _run_tool(self, spec: dict[str, Any], params: dict[str, str], overrides: dict[str, str]) -> Any:
        """As ML Commons' ToolUtils.buildToolParameters: the tool's own parameters, overridden by the execute-time
        ones (`<tool name>.<key>` for this tool only), then the tool's `config`; placeholders filled; then per-call
        overrides (an LLM's tool input)."""
        name = spec["name"]
        merged = {**spec.get("parameters", {}), **params}
        merged.update({k[len(name) + 1 :]: v for k, v in params.items() if k.startswith(name + ".")})
        merged.update(spec.get("config") or {})
        merged = {**filled(merged), **overrides}
        return get_tool(spec["type"]).run(merged, self.context)

    def _call_llm(self, model_id: str, params: dict[str, str]) -> Any:
        results = self._ml.infer(model_id, PredictInput(parameters=params))
        tensors = results[0] if results else []
        if not tensors:
            raise StatusError("The LLM returned no output", status=502)
        return tensor_value(tensors[0])

    def _run_nested(self, agent_id: str, params: dict[str, str]) -> Any:
        depth = getattr(self._nesting, "depth", 0)
        if depth >= _MAX_DEPTH:
            raise IllegalArgumentError(f"AgentTool nesting deeper than {_MAX_DEPTH} agents")
        agent = self.records.get(agent_id)
        self._nesting.depth = depth + 1
        try:
            output = self.run(agent, params)
        finally:
            self._nesting.depth = depth
        return _result_of(output)

    # ---- tools API -------------------------------------------------------------------------------------

    def list_tools(self) -> list[dict[str, Any]]:
        return [t.listing() for t in TOOLS.values()]

    def get_tool(self, name: str) -> dict[str, Any]:
        found = TOOLS.get(name)
        if found is None:
            raise StatusError(f"Failed to find tool information with the provided tool name: {name}", status=404)
        return found.listing()

    def execute_tool(self, tool_type: str, body: Any) -> dict[str, Any]:
        if tool_type not in TOOLS:
            raise IllegalArgumentError(f"Tool not found: {tool_type}")
        params = _execute_params(body)
        output = get_tool(tool_type).run(filled(params), self.context)
        return {"inference_results": [{"output": [{"name": "response", "result": as_text(output)}]}]}


def _execute_params(body: Any) -> dict[str, str]:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ParsingError("request body must be an object")
    if "input" in body and "parameters" not in body:
        text = body["input"] if isinstance(body["input"], str) else orjson.dumps(body["input"]).decode()
        return {"question": text}
    params = body.get("parameters", {})
    if not isinstance(params, dict):
        raise ParsingError("[parameters] must be an object")
    return string_map(params, "parameters")


def _has_memory(agent: dict[str, Any]) -> bool:
    return agent["type"] != "flow"


def _result_of(outputs: list[list[dict[str, Any]]]) -> Any:
    """What an agent run gives a calling tool: its last tensor's result (or dataAsMap's response, or dataAsMap)."""
    last = outputs[-1][-1] if outputs and outputs[-1] else {}
    if "result" in last:
        return last["result"]
    data = last.get("dataAsMap", "")
    return data["response"] if isinstance(data, dict) and "response" in data else data
