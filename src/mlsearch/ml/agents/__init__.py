"""ML Commons agents: records in `.plugins-ml-agent`, the agent types (flow, conversational_flow, conversational,
plan_execute_and_reflect) and the built-in tools (`agents.tools`)."""

from mlsearch.ml.agents.service import Agents

__all__ = ["Agents"]
