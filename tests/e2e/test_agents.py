"""Conversational agents end to end against a scripted LLM (tests/agent_llm.py) and a remote embedding model:
the agent picks VectorDBTool, reads the hits, answers; memory carries the history into the next turn; traces are
kept per turn; LLM failures (500, timeout, malformed tool call) give clear errors and leave memory intact;
`max_iteration` bounds the loop; `?async=true` runs as an AGENT_EXECUTION task."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch

from tests.agent_llm import ScriptedLLM
from tests.api.ml_support import trusted_fixture, wait_task  # noqa: F401
from tests.api.test_connectors import openai_embedding, provider, register  # noqa: F401
from tests.api.test_ml_agents import execute
from tests.conftest import RawHttp, assert_error
from tests.providers import Provider, vector

ML = "/_plugins/_ml"

# Remote models here deploy on first predict; undeploy and delete them when the module ends.
pytestmark = pytest.mark.usefixtures("remove_deployed_models")
OPENAI_FC_BODY = (
    '{"model": "gpt", "messages": [{"role": "system", "content": "${parameters.system_prompt}"}, '
    '${parameters._chat_history:-}{"role": "user", "content": "${parameters.prompt}"}${parameters._interactions:-}]'
    "${parameters.tool_configs:-}}"
)
CONVERSE_BODY = (
    '{"system": [{"text": "${parameters.system_prompt}"}], "messages": [${parameters._chat_history:-}'
    '{"role": "user", "content": [{"text": "${parameters.prompt}"}]}${parameters._interactions:-}]'
    "${parameters.tool_configs:-}}"
)
REACT_BODY = '{"model": "gpt", "messages": [{"role": "user", "content": "${parameters.prompt}"}]}'
DOCS = {"1": "Seattle has about 750000 people", "2": "Paris is the capital of France"}


@pytest.fixture
def llm(trusted: None) -> Iterator[ScriptedLLM]:
    server = ScriptedLLM()
    yield server
    server.close()


@pytest.fixture
def corpus(http: RawHttp, client: OpenSearch, index_name: str, provider: Provider) -> dict[str, str]:  # noqa: F811
    """An index of two passages embedded as the fake provider embeds, and the remote embedding model."""
    mappings = {"properties": {"text": {"type": "text"}, "emb": {"type": "knn_vector", "dimension": 8}}}
    client.indices.create(index=index_name, body={"settings": {"index.knn": True}, "mappings": mappings})
    for doc_id, text in DOCS.items():
        client.index(index=index_name, id=doc_id, body={"text": text, "emb": vector(text)}, refresh=True)
    model_id = register(http, connector=openai_embedding(provider.url))
    return {"index": index_name, "embedding_model": model_id}


def chat_model(http: RawHttp, url: str, body: str, path: str = "/v1/chat/completions", **config: Any) -> str:
    connector = {
        "name": "scripted llm",
        "version": 1,
        "protocol": "http",
        "parameters": {},
        "credential": {"key": "unused"},
        "client_config": {"max_retry_times": 0, **config},
        "actions": [{"action_type": "predict", "method": "POST", "url": url + path, "request_body": body}],
    }
    status, out = http.request(
        "POST", f"{ML}/models/_register", {"name": "llm", "function_name": "remote", "connector": connector}
    )
    assert status == 200, out
    return out["model_id"]


def agent(http: RawHttp, model_id: str, corpus: dict[str, str], **llm_params: Any) -> str:
    tool = {
        "type": "VectorDBTool",
        "description": "Searches passages about cities",
        "parameters": {
            "model_id": corpus["embedding_model"],
            "index": corpus["index"],
            "embedding_field": "emb",
            "source_field": ["text"],
            "doc_size": 2,
        },
    }
    body = {
        "name": "city bot",
        "type": "conversational",
        "llm": {"model_id": model_id, "parameters": llm_params},
        "memory": {"type": "conversation_index"},
        "tools": [tool],
    }
    status, out = http.request("POST", f"{ML}/agents/_register", body)
    assert status == 200, out
    return out["agent_id"]


def outputs(out: dict[str, Any]) -> dict[str, Any]:
    """Tensors by name over every output entry; a `dataAsMap` answer gives its `response`."""
    found = {}
    for entry in out["inference_results"]:
        for t in entry["output"]:
            value = t.get("result", t.get("dataAsMap"))
            found[t["name"]] = value["response"] if isinstance(value, dict) and "response" in value else value
    return found


def traces(http: RawHttp, message_id: str) -> list[dict[str, Any]]:
    status, found = http.request("GET", f"{ML}/memory/message/{message_id}/traces")
    assert status == 200, found
    return found["traces"]


def turns(http: RawHttp, memory_id: str) -> list[dict[str, Any]]:
    """A memory's messages (not traces), oldest first, through the memory API: no refresh needed."""
    status, found = http.request("GET", f"{ML}/memory/{memory_id}/messages?max_results=100")
    assert status == 200, found
    return found["messages"]


def test_react_agent_uses_vectordb_then_answers_with_memory(http: RawHttp, llm: ScriptedLLM, corpus: dict) -> None:
    model_id = chat_model(http, llm.url, REACT_BODY)
    agent_id = agent(http, model_id, corpus, response_filter="$.choices[0].message.content", max_iteration=3)
    action = {"thought": "I should search", "action": "VectorDBTool", "action_input": "Seattle population"}
    llm.say("```json\n" + json.dumps(action) + "\n```")
    llm.say(json.dumps({"thought": "Now I know the final answer", "final_answer": "About 750000 people."}))
    status, out = execute(http, agent_id, {"question": "How many people live in Seattle?"})
    assert status == 200, out
    first = outputs(out)
    assert first["response"] == "About 750000 people."
    memory_id, parent_id = first["memory_id"], first["parent_interaction_id"]
    prompts = llm.prompts()
    assert "VectorDBTool: Searches passages about cities" in prompts[0]
    assert "How many people live in Seattle?" in prompts[0]
    assert "Seattle has about 750000 people" in prompts[1]  # the tool's hit reached the LLM
    steps = traces(http, parent_id)
    assert [t["origin"] for t in steps] == ["LLM", "VectorDBTool", "LLM"]
    assert steps[1]["input"] == "Seattle population" and "750000" in steps[1]["response"]
    final = out["inference_results"][-1]["output"]
    assert final == [{"name": "response", "dataAsMap": {"response": "About 750000 people.", "additional_info": {}}}]

    llm.say(json.dumps({"thought": "I know", "final_answer": "Still about 750000."}))
    status, out = execute(http, agent_id, {"question": "And again?", "memory_id": memory_id})
    assert status == 200, out
    assert outputs(out)["memory_id"] == memory_id
    # ML Commons' ConversationIndexMessage.toString(), one a line
    assert "Human:How many people live in Seattle?\\nAssistant:About 750000 people." in llm.prompts()[-1]
    history = turns(http, memory_id)
    assert [(m["input"], m["response"]) for m in history] == [
        ("How many people live in Seattle?", "About 750000 people."),
        ("And again?", "Still about 750000."),
    ]


def test_openai_function_calling(http: RawHttp, llm: ScriptedLLM, corpus: dict) -> None:
    model_id = chat_model(http, llm.url, OPENAI_FC_BODY)
    agent_id = agent(http, model_id, corpus, _llm_interface="openai/v1/chat/completions")
    llm.call("VectorDBTool", {"input": "Paris"}, call_id="call_42").say("Paris is the capital of France.")
    status, out = execute(http, agent_id, {"question": "What is Paris?", "verbose": True})
    assert status == 200, out
    entries = [entry["output"] for entry in out["inference_results"]]
    assert entries[-1] == [{"name": "response", "result": "Paris is the capital of France."}]
    assert [t["name"] for t in entries[0]] == ["memory_id", "parent_interaction_id"]
    assert len(entries) > 3  # verbose: each step is an entry of its own, before the answer
    first, second = (r["body"] for r in llm.requests)
    assert first["tools"][0]["function"]["name"] == "VectorDBTool"
    assert first["messages"][-1] == {"role": "user", "content": "What is Paris?"}
    assert second["messages"][-2]["tool_calls"][0]["id"] == "call_42"
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "call_42"
    assert "Paris is the capital of France" in tool_message["content"]


def test_bedrock_converse_function_calling(http: RawHttp, llm: ScriptedLLM, corpus: dict) -> None:
    model_id = chat_model(http, llm.url, CONVERSE_BODY, path="/model/claude/converse")
    agent_id = agent(http, model_id, corpus, _llm_interface="bedrock/converse/claude")
    llm.call("VectorDBTool", {"input": "Seattle"}, call_id="tu_1").say("Seattle: 750000 people.")
    status, out = execute(http, agent_id, {"question": "Seattle size?"})
    assert status == 200, out
    assert outputs(out)["response"] == "Seattle: 750000 people."
    second = llm.requests[1]["body"]
    assert second["toolConfig"]["tools"][0]["toolSpec"]["name"] == "VectorDBTool"
    result = second["messages"][-1]["content"][0]["toolResult"]
    assert result["toolUseId"] == "tu_1" and "750000" in result["content"][0]["text"]


def test_max_iteration_bounds_the_loop(http: RawHttp, llm: ScriptedLLM, corpus: dict) -> None:
    model_id = chat_model(http, llm.url, OPENAI_FC_BODY)
    agent_id = agent(http, model_id, corpus, _llm_interface="openai/v1/chat/completions", max_iteration=2)
    for n in range(5):
        llm.call("VectorDBTool", {"input": f"try {n}"}, call_id=f"c{n}")
    status, out = execute(http, agent_id, {"question": "loop forever"})
    assert status == 200, out
    assert outputs(out)["response"].startswith("Agent reached maximum iterations (2)")
    assert len(llm.requests) == 2


def test_unknown_tool_is_reported_to_the_llm(http: RawHttp, llm: ScriptedLLM, corpus: dict) -> None:
    model_id = chat_model(http, llm.url, OPENAI_FC_BODY)
    agent_id = agent(http, model_id, corpus, _llm_interface="openai/v1/chat/completions")
    llm.call("DropIndexTool", {"input": "x"}).say("Sorry, I cannot.")
    status, out = execute(http, agent_id, {"question": "drop it"})
    assert status == 200, out
    assert "Failed to run the tool DropIndexTool which is unsupported." in llm.prompts()[1]


def test_llm_failures_give_errors_and_keep_memory(http: RawHttp, llm: ScriptedLLM, corpus: dict) -> None:
    model_id = chat_model(http, llm.url, OPENAI_FC_BODY, read_timeout=1)
    agent_id = agent(http, model_id, corpus, _llm_interface="openai/v1/chat/completions")
    llm.say("First answer.")
    status, out = execute(http, agent_id, {"question": "first"})
    assert status == 200, out
    memory_id = outputs(out)["memory_id"]

    llm.status(500)
    status, body = execute(http, agent_id, {"question": "second", "memory_id": memory_id})
    assert_error(body, 500, "status_exception", "scripted failure 500")

    llm.hang(3)
    status, body = execute(http, agent_id, {"question": "third", "memory_id": memory_id})
    assert_error(body, 504, "status_exception", "timed out")

    llm.raw({"choices": [{"message": {"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}}]})
    status, body = execute(http, agent_id, {"question": "fourth", "memory_id": memory_id})
    assert_error(body, 502, "status_exception", "Malformed tool call")

    history = turns(http, memory_id)
    assert [m["input"] for m in history] == ["first", "second", "third", "fourth"]
    assert history[0]["response"] == "First answer."
    assert all("error" in m["additional_info"] for m in history[1:])


def test_async_execute_runs_as_a_task(http: RawHttp, client: OpenSearch, llm: ScriptedLLM, corpus: dict) -> None:
    model_id = chat_model(http, llm.url, OPENAI_FC_BODY)
    agent_id = agent(http, model_id, corpus, _llm_interface="openai/v1/chat/completions")
    llm.say("Done later.")
    status, out = execute(http, agent_id, {"question": "async please"}, query="?async=true")
    assert status == 200, out
    assert out["status"] == "RUNNING" and out["response"]["memory_id"]
    task = wait_task(client, out["task_id"])
    assert task["state"] == "COMPLETED" and task["task_type"] == "AGENT_EXECUTION" and task["function_name"] == "AGENT"
    final = outputs(task["response"])
    assert final["response"] == "Done later." and final["memory_id"] == out["response"]["memory_id"]


def test_conversational_flow_and_agent_tool(http: RawHttp, llm: ScriptedLLM, corpus: dict) -> None:
    model_id = chat_model(http, llm.url, REACT_BODY)
    tool = {
        "type": "MLModelTool",
        "parameters": {
            "model_id": model_id,
            "response_filter": "$.choices[0].message.content",
            "prompt": "${parameters.chat_history:-}Q: ${parameters.question}",
        },
    }
    status, out = http.request(
        "POST", f"{ML}/agents/_register", {"name": "chat flow", "type": "conversational_flow", "tools": [tool]}
    )
    inner = out["agent_id"]
    outer = {"name": "outer", "type": "flow", "tools": [{"type": "AgentTool", "parameters": {"agent_id": inner}}]}
    status, out = http.request("POST", f"{ML}/agents/_register", outer)
    outer_id = out["agent_id"]
    llm.say("one").say("two")
    status, out = execute(http, inner, {"question": "q1"})
    assert status == 200, out
    first = outputs(out)
    assert first["MLModelTool"] == "one" and first["memory_id"] and first["parent_interaction_id"]
    status, out = execute(http, outer_id, {"question": "q2"})
    assert status == 200, out
    assert outputs(out) == {"response": "two"}  # a one-tool flow agent's output is named `response`


def test_plan_execute_and_reflect(http: RawHttp, llm: ScriptedLLM, corpus: dict) -> None:
    model_id = chat_model(http, llm.url, REACT_BODY)
    body = {
        "name": "planner",
        "type": "plan_execute_and_reflect",
        "llm": {"model_id": model_id, "parameters": {"response_filter": "$.choices[0].message.content"}},
        "memory": {"type": "conversation_index"},
        "tools": [{"type": "ListIndexTool"}],
    }
    status, out = http.request("POST", f"{ML}/agents/_register", body)
    agent_id = out["agent_id"]
    llm.say('{"steps": ["count the indices"]}')
    llm.say(json.dumps({"thought": "done", "final_answer": "There are some indices."}))
    llm.say('{"result": "The cluster has some indices."}')
    status, out = execute(http, agent_id, {"question": "How many indices?"})
    assert status == 200, out
    final = outputs(out)
    assert final["response"] == "The cluster has some indices."  # dataAsMap {"response": ...}
    assert final["executor_agent_memory_id"] != final["memory_id"]
    assert "count the indices" in llm.prompts()[1] and "There are some indices." in llm.prompts()[2]
