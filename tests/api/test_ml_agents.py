"""Agents and tools API: register / get / update / search / delete, their errors, the tools list, flow agents over
ListIndexTool, IndexMappingTool, SearchIndexTool and MLModelTool (an LLM scripted by tests/agent_llm.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch

from tests.agent_llm import ScriptedLLM
from tests.api.ml_support import trusted_fixture  # noqa: F401
from tests.conftest import RawHttp, assert_error

ML = "/_plugins/_ml"

# Remote models here deploy on first predict; undeploy and delete them when the module ends.
pytestmark = pytest.mark.usefixtures("remove_deployed_models")


@pytest.fixture
def llm(trusted: None) -> Iterator[ScriptedLLM]:
    server = ScriptedLLM()
    yield server
    server.close()


def openai_chat_model(http: RawHttp, url: str, **client_config: Any) -> str:
    """A remote chat model whose prompt is one user message (`${parameters.prompt}`)."""
    connector = {
        "name": "scripted chat",
        "version": 1,
        "protocol": "http",
        "parameters": {"model": "gpt-scripted"},
        "credential": {"key": "k"},
        "client_config": {"max_retry_times": 0, **client_config},
        "actions": [
            {
                "action_type": "predict",
                "method": "POST",
                "url": f"{url}/v1/chat/completions",
                "headers": {"Authorization": "Bearer ${credential.key}"},
                "request_body": '{"model": "${parameters.model}", "messages": [{"role": "user", '
                '"content": "${parameters.prompt}"}]}',
            }
        ],
    }
    status, out = http.request(
        "POST", f"{ML}/models/_register", {"name": "chat", "function_name": "remote", "connector": connector}
    )
    assert status == 200, out
    return out["model_id"]


def register(http: RawHttp, body: dict[str, Any]) -> str:
    status, out = http.request("POST", f"{ML}/agents/_register", body)
    assert status == 200, out
    return out["agent_id"]


def execute(http: RawHttp, agent_id: str, params: dict[str, Any], query: str = "") -> tuple[int, Any]:
    return http.request("POST", f"{ML}/agents/{agent_id}/_execute{query}", {"parameters": params})


def test_register_get_stringifies_tool_parameters(http: RawHttp) -> None:
    agent_id = register(
        http,
        {
            "name": "lister",
            "type": "flow",
            "description": "lists indices",
            "app_type": "test",
            "tools": [{"type": "ListIndexTool", "parameters": {"indices": ["a", "b"], "page_size": 5}}],
        },
    )
    status, got = http.request("GET", f"{ML}/agents/{agent_id}")
    assert status == 200
    assert got["name"] == "lister" and got["type"] == "flow" and got["app_type"] == "test"
    [tool] = got["tools"]
    assert tool == {
        "type": "ListIndexTool",
        "name": "ListIndexTool",
        "parameters": {"indices": '["a","b"]', "page_size": "5"},
        "include_output_in_agent_response": False,
    }
    assert isinstance(got["created_time"], int) and got["last_updated_time"] == got["created_time"]


def test_search_update_delete(http: RawHttp) -> None:
    agent_id = register(http, {"name": "searchable-agent", "type": "FLOW", "tools": [{"type": "CatIndexTool"}]})
    status, found = http.request(
        "POST", f"{ML}/agents/_search", {"query": {"term": {"name.keyword": "searchable-agent"}}}
    )
    assert status == 200
    assert [h["_id"] for h in found["hits"]["hits"]] == [agent_id]
    status, out = http.request("PUT", f"{ML}/agents/{agent_id}", {"description": "now described"})
    assert status == 200 and out["result"] == "updated" and out["_index"] == ".plugins-ml-agent"
    status, got = http.request("GET", f"{ML}/agents/{agent_id}")
    assert got["description"] == "now described" and got["type"] == "flow"
    status, out = http.request("DELETE", f"{ML}/agents/{agent_id}")
    assert status == 200 and out["result"] == "deleted"
    status, body = http.request("GET", f"{ML}/agents/{agent_id}")
    assert_error(body, 404, "status_exception", f"Failed to find agent with the provided agent id: {agent_id}")
    status, body = http.request("DELETE", f"{ML}/agents/{agent_id}")
    assert_error(body, 404, "status_exception", "Fail to find ml agent")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"type": "flow"}, "Agent name can't be null"),
        ({"name": "x", "type": "chatty"}, "chatty is not a valid Agent Type"),
        ({"name": "x", "type": "conversational", "tools": []}, "We need model information"),
        ({"name": "x", "type": "flow", "tools": [{"type": "NoSuchTool"}]}, "Tool not found: NoSuchTool"),
        ({"name": "x", "type": "flow", "tools": [{"type": "CatIndexTool"}, {"type": "CatIndexTool"}]}, "Duplicate"),
    ],
)
def test_register_rejects(http: RawHttp, body: dict[str, Any], reason: str) -> None:
    _status, out = http.request("POST", f"{ML}/agents/_register", body)
    assert_error(out, 400, "illegal_argument_exception", reason)


def test_tools_list_and_get(http: RawHttp) -> None:
    status, tools = http.request("GET", f"{ML}/tools")
    assert status == 200
    names = {t["name"] for t in tools}
    assert {"MLModelTool", "VectorDBTool", "SearchIndexTool", "ListIndexTool", "AgentTool", "RAGTool"} <= names
    status, one = http.request("GET", f"{ML}/tools/VectorDBTool")
    assert status == 200 and one["type"] == "VectorDBTool" and "dense retrieval" in one["description"]
    status, body = http.request("GET", f"{ML}/tools/Nope")
    assert_error(body, 404, "status_exception", "Nope")


def test_flow_index_tools_and_search(http: RawHttp, client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"title": "red apple", "n": 1}, refresh=True)
    client.index(index=index_name, id="2", body={"title": "green pear", "n": 2}, refresh=True)
    agent_id = register(
        http,
        {
            "name": "indices",
            "type": "flow",
            "tools": [
                {"type": "ListIndexTool", "include_output_in_agent_response": True},
                {
                    "type": "IndexMappingTool",
                    "parameters": {"index": [index_name]},
                    "include_output_in_agent_response": True,
                },
                {"type": "SearchIndexTool"},
            ],
        },
    )
    search_input = f'{{"index": "{index_name}", "query": {{"query": {{"match": {{"title": "apple"}}}}}}}}'
    status, out = execute(http, agent_id, {"question": "what is there?", "input": search_input})
    assert status == 200, out
    listing, mapping, hits = out["inference_results"][0]["output"]
    assert listing["name"] == "ListIndexTool"
    header, *rows = listing["result"].strip().split("\n")
    assert header.startswith("row,health,status,index,uuid,pri(number of primary shards)")
    assert any(f",{index_name}," in row and ",2," in row for row in rows)
    assert any(",.plugins-ml-agent," in row for row in rows)  # system indices are listed, as in ML Commons' docs
    assert mapping["name"] == "IndexMappingTool" and f"index: {index_name}" in mapping["result"]
    assert "title={type=text" in mapping["result"]  # Java's Map.toString(), as ML Commons writes it
    assert hits["name"] == "SearchIndexTool"
    [line] = hits["result"].strip().split("\n")
    assert '"_id":"1"' in line and '"title":"red apple"' in line


def test_flow_mlmodel_tool_chains_outputs(http: RawHttp, llm: ScriptedLLM, client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="1", body={"text": "the population of Seattle is 750,000"}, refresh=True)
    model_id = openai_chat_model(http, llm.url)
    agent_id = register(
        http,
        {
            "name": "rag-flow",
            "type": "flow",
            "tools": [
                {
                    "type": "SearchIndexTool",
                    "name": "search",
                    "parameters": {
                        "input": f'{{"index": "{index_name}", "query": {{"match": {{"text": "${{parameters.question}}"}}}}}}'
                    },
                },
                {
                    "type": "MLModelTool",
                    "parameters": {
                        "model_id": model_id,
                        "response_filter": "$.choices[0].message.content",
                        "prompt": "Context: ${parameters.search.output}\nQuestion: ${parameters.question}",
                    },
                },
            ],
        },
    )
    llm.say("About 750,000 people.")
    status, out = execute(http, agent_id, {"question": "Seattle population"})
    assert status == 200, out
    assert out["inference_results"][0]["output"] == [{"name": "MLModelTool", "result": "About 750,000 people."}]
    [request] = llm.requests
    prompt = request["body"]["messages"][0]["content"]
    assert prompt.startswith("Context: {") and "750,000" in prompt and prompt.endswith("Question: Seattle population")


def test_execute_tool_directly(http: RawHttp, client: OpenSearch, index_name: str) -> None:
    client.index(index=index_name, id="a", body={"k": "v"}, refresh=True)
    status, out = http.request("POST", f"{ML}/tools/_execute/IndexMappingTool", {"parameters": {"index": index_name}})
    assert status == 200, out
    [tensor] = out["inference_results"][0]["output"]
    assert tensor["name"] == "response" and f"index: {index_name}" in tensor["result"]
    status, body = http.request("POST", f"{ML}/tools/_execute/Nope", {"parameters": {}})
    assert_error(body, 400, "illegal_argument_exception", "Tool not found: Nope")


def test_execute_unknown_agent(http: RawHttp) -> None:
    _status, body = execute(http, "missing-agent", {"question": "hi"})
    assert_error(body, 404, "status_exception", "Failed to find agent with the provided agent id: missing-agent")


def test_agent_framework_setting_gates_register_and_execute(http: RawHttp) -> None:
    setting = "plugins.ml_commons.agent_framework_enabled"
    body = {"name": "gated", "type": "flow", "tools": [{"type": "ListIndexTool"}]}
    agent_id = register(http, body)
    try:
        assert http.request("PUT", "/_cluster/settings", {"persistent": {setting: False}})[0] == 200
        for method, path, payload in [
            ("POST", f"{ML}/agents/_register", body),
            ("POST", f"{ML}/agents/{agent_id}/_execute", {"parameters": {"question": "which indices?"}}),
            ("POST", f"{ML}/agents/{agent_id}/_execute?async=true", {"parameters": {"question": "which indices?"}}),
        ]:
            status, out = http.request(method, path, payload)
            assert_error(out, 500, "illegal_state_exception", f'update the setting "{setting}" to true.')
        assert http.request("GET", f"{ML}/agents/{agent_id}")[0] == 200  # reading records is not gated
    finally:
        http.request("PUT", "/_cluster/settings", {"persistent": {setting: None}})
    status, out = http.request("POST", f"{ML}/agents/{agent_id}/_execute", {"parameters": {"question": "which?"}})
    assert status == 200, out
    http.request("DELETE", f"{ML}/agents/{agent_id}")
