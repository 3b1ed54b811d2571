"""`plan_execute_and_reflect`: a planner LLM writes a list of steps, a ReAct executor runs the first one with the
agent's tools, and the planner, shown what was done, either re-plans the remaining steps or gives the result.
Bounded by `max_steps` (20). The planner answers JSON `{"steps": [...]}` or `{"result": "..."}`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from mlsearch.errors import IllegalArgumentError, MLSearchError, StatusError
from mlsearch.ml.agents.conversation import Conversation
from mlsearch.ml.agents.react import AgentRun, ReactRun
from mlsearch.ml.agents.tools import as_text, fill

_PLANNER = (
    "You are a planner. For the objective below, write a simple step-by-step plan using the tools: "
    '${parameters.tools_prompt}\nAnswer ONLY with JSON: {"steps": ["step 1", ...]} or, when the objective is '
    'already met, {"result": "the final answer"}.\n\nObjective: ${parameters.question}\n'
)
_REFLECT = (
    "${parameters.planner_prompt}\n\nYou have completed these steps:\n${parameters.completed_steps}\n"
    'Update the plan: answer with the remaining {"steps": [...]} or give the {"result": "..."}.\n'
)
_JSON = re.compile(r"\{.*\}", re.DOTALL)


@dataclass
class PlanRun(AgentRun):
    """One execution of a plan_execute_and_reflect agent."""

    def run(self) -> list[dict[str, Any]]:
        settings = self.settings()
        max_steps = int(settings.get("max_steps", "20"))
        tools = ", ".join(f"{t['name']}: {t.get('description', t['type'])}" for t in self.agent.get("tools", []))
        values = {**settings, "tools_prompt": tools}
        planner = fill(settings.get("planner_prompt", _PLANNER), values)
        completed: list[tuple[str, str]] = []
        executor: Conversation | None = None
        try:
            prompt = planner
            result = None
            for _ in range(max_steps):
                plan = self._plan(settings, prompt)
                if "result" in plan:
                    result = as_text(plan["result"])
                    break
                step = plan["steps"][0]
                answer, executor = self._execute(step, settings, executor)
                completed.append((step, answer))
                done = "\n".join(f"Step: {s}\nResult: {r}" for s, r in completed)
                prompt = fill(_REFLECT, {"planner_prompt": planner, "completed_steps": done})
            if result is None:
                result = f"Max steps [{max_steps}] reached. Completed steps: " + "; ".join(r for _, r in completed)
        except MLSearchError as exc:
            self.conversation.failed(exc.reason)
            raise
        self.conversation.answer(result)
        out = self.conversation.output()
        if executor is not None:
            out += [
                {"name": "executor_agent_memory_id", "result": executor.memory_id},
                {"name": "executor_agent_parent_interaction_id", "result": executor.message_id},
            ]
        return [*out, {"name": "response", "dataAsMap": {"response": result}}]

    def _plan(self, settings: dict[str, str], prompt: str) -> dict[str, Any]:
        data = self.call_llm(self.agent["llm"]["model_id"], {**settings, "prompt": prompt})
        text = data.get("response") if isinstance(data, dict) and "response" in data else as_text(data)
        self.conversation.trace("Planner", prompt, as_text(text))
        parsed = _json(as_text(text))
        steps = parsed.get("steps") if parsed else None
        if parsed and "result" in parsed:
            return parsed
        if isinstance(steps, list) and steps:
            return {"steps": [as_text(s) for s in steps]}
        raise StatusError(f"The planner LLM returned neither steps nor a result: {text}", status=502)

    def _execute(self, step: str, settings: dict[str, str], executor: Conversation | None) -> tuple[str, Conversation]:
        memory = self.conversation.memory
        conv = Conversation.open(memory, executor.memory_id if executor else None, step, "os_chat", 10)
        params = {**self.params, "question": step, "max_iteration": settings.get("executor_max_iterations", "20")}
        react = ReactRun(self.agent, params, conv, self.call_llm, self.run_tool)
        final = react.run()[-1][-1]  # verbose is off: {"name": "response", "dataAsMap": {"response": ...}}
        return str(final["dataAsMap"]["response"]), conv


def _json(text: str) -> dict[str, Any] | None:
    match = _JSON.search(text)
    if match is None:
        return None
    try:
        value = orjson.loads(match.group(0))
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        raise IllegalArgumentError("planner output must be a JSON object")
    return value
