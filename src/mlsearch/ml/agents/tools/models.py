"""Tools that call models: MLModelTool (a model's answer, by `response_field`), ConnectorTool (a connector's
`execute` action) and AgentTool (another agent)."""

from __future__ import annotations

from typing import Any

from mlsearch.ml.agents.tools import ToolContext, as_text, fill, required, tool
from mlsearch.ml.connectors import jsonpath
from mlsearch.ml.predictor import PredictInput, Tensor


def tensor_value(tensor: Tensor) -> Any:
    if tensor.data_as_map is not None:
        return tensor.data_as_map
    return None if tensor.data is None else tensor.data.tolist()


def pick(data: Any, params: dict[str, str], field: str) -> Any:
    """The answer inside a model's output: the `field` key (the connector already applied `response_filter`, so the
    output is `{"response": ...}`), else the `response_filter` JSONPath, else all of it."""
    if isinstance(data, dict) and field in data:
        return data[field]
    if params.get("response_filter"):
        found = jsonpath.read(data, params["response_filter"])
        if found is not None:
            return found
    return data


def model_answer(ctx: ToolContext, model_id: str, params: dict[str, str], field: str) -> Any:
    """Run a model with the parameters as its request parameters; the answer it gives."""
    results = ctx.infer(model_id, PredictInput(parameters=dict(params)))
    tensors = results[0] if results else []
    if not tensors:
        return ""
    return pick(tensor_value(tensors[0]), params, field)


@tool("MLModelTool", "Use this tool to run any model.")
def ml_model(params: dict[str, str], ctx: ToolContext) -> Any:
    model_id = required(params, "model_id", "MLModelTool")
    values = dict(params)
    if "prompt" in values:
        values["prompt"] = fill(values["prompt"], values)
    elif values.get("input") and "question" not in values:
        values["prompt"] = values["input"]
    return model_answer(ctx, model_id, values, params.get("response_field", "response"))


@tool("ConnectorTool", "Invokes external service. Required: 'connector_id'. Returns: service response.")
def connector(params: dict[str, str], ctx: ToolContext) -> Any:
    connector_id = required(params, "connector_id", "ConnectorTool")
    tensors = ctx.call_connector(connector_id, dict(params))
    data = tensor_value(tensors[0]) if tensors else None
    return pick(data, params, "response")


@tool("AgentTool", "Use this tool to run any agent.")
def agent(params: dict[str, str], ctx: ToolContext) -> str:
    agent_id = required(params, "agent_id", "AgentTool")
    return as_text(ctx.run_agent(agent_id, dict(params)))
