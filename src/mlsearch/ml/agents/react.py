"""The `conversational` agent: the LLM picks tools until it answers (ReAct), bounded by `max_iteration`.

Without `_llm_interface` the LLM writes JSON with `thought` and `action` / `action_input`, or `final_answer`, in
text (read through `response_filter`); with it, tools go to the LLM as function definitions and its tool calls
come back structured (OpenAI chat completions, Bedrock converse). Every LLM turn and tool run is a trace of the
turn's message; an LLM failure fails the request and leaves the turn in memory marked with the error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from mlsearch.errors import IllegalArgumentError, MLSearchError
from mlsearch.ml.agents.conversation import REACT_HISTORY_PREFIX, Conversation
from mlsearch.ml.agents.llm import INTERFACES, NO_ESCAPE, Interface, Step, parse_react
from mlsearch.ml.agents.tools import TOOLS, as_text, fill

DEFAULT_MAX_ITERATION = 10
_INPUT_SCHEMA = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "the input of the tool"}},
    "required": ["input"],
}
_FORMAT = (
    "RESPONSE FORMAT INSTRUCTIONS\n----------------------------\n"
    "Output a JSON markdown code snippet containing a valid JSON object in one of two formats:\n\n"
    "**Option 1:**\nUse this if you want the human to use a tool.\n"
    '```json\n{\n    "thought": string, // think about what to do next\n'
    '    "action": string, // The action to take. Must be one of these tool names: [${parameters.tool_names}]\n'
    '    "action_input": string // The input to the action, may be a JSON object\n}\n```\n\n'
    "**Option #2:**\nUse this if you want to respond directly and conversationally to the human.\n"
    '```json\n{\n    "thought": "Now I know the final answer",\n'
    '    "final_answer": string // summarize and return the final answer in a sentence with details\n}\n```\n'
)
_PROMPT = (
    "${parameters.prompt.prefix}\n\nHuman:TOOLS\n------\nAssistant can ask Human to use tools to look up "
    "information that may be helpful in answering the users original question. The tools the human can use are:\n\n"
    "${parameters.tool_descriptions}\n\n${parameters.chat_history}\n\n${parameters.prompt.format_instruction}\n\n"
    "Human:USER'S INPUT\n--------------------\nHere is the user's input :\n${parameters.question}\n\n"
    "${parameters.scratchpad}"
)
_PREFIX = (
    "Assistant is a large language model.\n\nAssistant is designed to be able to assist with a wide range of tasks, "
    "from answering simple questions to providing in-depth explanations and discussions on a wide range of topics."
)

CallLLM = Callable[[str, dict[str, str]], Any]  # (model_id, parameters) -> the model's dataAsMap
RunTool = Callable[[dict[str, Any], dict[str, str], dict[str, str]], Any]  # (spec, params, overrides) -> output


@dataclass
class AgentRun:
    """What one execution of an LLM-driven agent is given."""

    agent: dict[str, Any]
    params: dict[str, str]
    conversation: Conversation
    call_llm: CallLLM
    run_tool: RunTool

    def settings(self) -> dict[str, str]:
        """The LLM's parameters, overridden by the agent's, then by the execute request's."""
        return {**self.agent["llm"].get("parameters", {}), **self.agent.get("parameters", {}), **self.params}


@dataclass
class ReactRun(AgentRun):
    """One execution of a conversational agent."""

    verbose: bool = False
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tools(self) -> dict[str, dict[str, Any]]:
        return {t["name"]: t for t in self.agent.get("tools", [])}

    def run(self) -> list[list[dict[str, Any]]]:
        """The output entries (`inference_results`), each a list of tensors."""
        llm = self.agent["llm"]
        settings = self.settings()
        limit = _max_iteration(settings)
        interface_name = settings.get("_llm_interface")
        try:
            if interface_name:
                interface = INTERFACES.get(interface_name.lower())
                if interface is None:
                    raise IllegalArgumentError(f"Invalid _llm_interface: {interface_name}")
                answer = self._function_calling(llm["model_id"], settings, interface, limit)
            else:
                answer = self._react(llm["model_id"], settings, limit)
        except MLSearchError as exc:
            self.conversation.failed(exc.reason)
            raise
        self.conversation.answer(answer)
        # As ML Commons' MLChatAgentRunner: one ModelTensors per entry; verbose gives each step and the answer as
        # text, otherwise the answer comes as dataAsMap with the additional_info stored with it.
        head = [self.conversation.output()]
        if self.verbose:
            return [*head, *([step] for step in self.steps), [{"name": "response", "result": answer}]]
        final = {"name": "response", "dataAsMap": {"response": answer, "additional_info": {}}}
        return [*head, [final]]

    # ---- text ReAct -------------------------------------------------------------------------------------

    def _react(self, model_id: str, settings: dict[str, str], limit: int) -> str:
        question = settings.get("question", "")
        scratchpad, last_thought = "", ""
        for _ in range(limit):
            values = {**self._prompt_values(settings), "scratchpad": scratchpad}
            prompt = fill(fill(settings.get("prompt", _PROMPT), values), values)
            data = self.call_llm(model_id, {**settings, "prompt": prompt})
            step = self._read(data)
            self.conversation.trace("LLM", question, step.raw)
            self._verbose(step.raw)
            last_thought = step.thought or last_thought
            if step.final_answer is not None:
                return step.final_answer
            observation = self._tool(step)
            scratchpad += (
                f"\n\nAI: {step.raw}\n\nHuman: TOOL RESPONSE of {step.action}: \n---------------------\n"
                f"Tool input:\n{step.action_input}\n\nTool output:\n{observation}\n\n"
                "IMPORTANT! You should now think about the tool response and either use another tool or give "
                "the final answer with the RESPONSE FORMAT INSTRUCTIONS above."
            )
        return _exhausted(limit, last_thought)

    def _prompt_values(self, settings: dict[str, str]) -> dict[str, str]:
        names = list(self.tools)
        descriptions = "".join(f"<tool>\n{n}: {self._description(t)}\n</tool>\n" for n, t in self.tools.items())
        return {
            **settings,
            "prompt.prefix": settings.get("prompt.prefix", _PREFIX),
            "prompt.format_instruction": fill(
                settings.get("prompt.format_instruction", _FORMAT), {"tool_names": ", ".join(names)}
            ),
            "tool_names": ", ".join(names),
            "tool_descriptions": settings.get(
                "tool_descriptions",
                f"You have access to the following tools defined in <tools>: \n<tools>\n{descriptions}</tools>\n",
            ),
            "chat_history": self.conversation.history_text(
                settings.get("prompt.chat_history_prefix", REACT_HISTORY_PREFIX)
            ),
        }

    def _read(self, data: Any) -> Step:
        names = list(self.tools)
        if isinstance(data, dict) and set(data) == {"response"} and isinstance(data["response"], str):
            return parse_react(data["response"], names)
        if isinstance(data, dict) and data.keys() & {"thought", "action", "final_answer"}:
            return parse_react(orjson.dumps(data).decode(), names)
        return Step(final_answer=as_text(data), raw=as_text(data))

    # ---- function calling ------------------------------------------------------------------------------

    def _function_calling(self, model_id: str, settings: dict[str, str], interface: Interface, limit: int) -> str:
        question = settings.get("question", "")
        history = [m for q, a in self.conversation.pairs() for m in interface.history(q, a)]
        specs = [
            {"name": n, "description": self._description(t), "input_schema": _schema(t)} for n, t in self.tools.items()
        ]
        interactions: list[Any] = []
        base = {
            **settings,
            "prompt": question,
            "system_prompt": settings.get("system_prompt", "You are a helpful assistant."),
            "_tools": interface.tools(specs),
            "tool_configs": interface.tool_configs.replace("${parameters._tools}", interface.tools(specs)),
            "_chat_history": "".join(orjson.dumps(m).decode() + ", " for m in history),
            "no_escape_params": NO_ESCAPE,
        }
        for _ in range(limit):
            extra = "".join(", " + orjson.dumps(m).decode() for m in interactions)
            data = self.call_llm(model_id, {**base, "_interactions": extra})
            step = interface.parse(data, list(self.tools))
            self.conversation.trace("LLM", question, step.raw)
            self._verbose(step.raw)
            if step.final_answer is not None:
                return step.final_answer
            observation = self._tool(step)
            interactions += [step.assistant, interface.tool_result(step.call_id or "", observation)]
        return _exhausted(limit, "")

    # ---- tools ----------------------------------------------------------------------------------------

    def _tool(self, step: Step) -> str:
        spec = self.tools.get(step.action or "")
        if spec is None:
            observation = f"Failed to run the tool {step.action} which is unsupported."
        else:
            try:
                observation = as_text(self.run_tool(spec, self.params, _tool_input(step.action_input)))
            except MLSearchError as exc:
                observation = f"Failed to run the tool {step.action} with the error message {exc.reason}."
        self.conversation.trace(step.action or "", step.action_input, observation)
        self._verbose(observation)
        return observation

    def _description(self, spec: dict[str, Any]) -> str:
        found = TOOLS.get(spec["type"])
        return spec.get("description") or (found.description if found else spec["type"])

    def _verbose(self, text: str) -> None:
        if self.verbose:
            self.steps.append({"name": "response", "result": text})


def _tool_input(action_input: str) -> dict[str, str]:
    """The LLM's input is the tool's `input`; a JSON object's keys are also tool parameters."""
    params = {"input": action_input}
    try:
        parsed = orjson.loads(action_input) if action_input else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        params.update({k: as_text(v) for k, v in parsed.items()})
    return params


def _schema(spec: dict[str, Any]) -> Any:
    schema = (spec.get("attributes") or {}).get("input_schema")
    if isinstance(schema, str):
        return orjson.loads(schema)
    return schema or _INPUT_SCHEMA


def _max_iteration(settings: dict[str, str]) -> int:
    raw = settings.get("max_iteration", str(DEFAULT_MAX_ITERATION))
    try:
        value = int(raw)
    except ValueError:
        raise IllegalArgumentError(f"[max_iteration] must be an integer, got [{raw}]") from None
    return max(value, 1)


def _exhausted(limit: int, thought: str) -> str:
    return f"Agent reached maximum iterations ({limit}) without completing the task. Last thought: {thought}"
