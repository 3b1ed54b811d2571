"""OpenSearch's documentation for conversational search, replayed: the "Conversational search with RAG" tutorial,
the "Agents and tools" tutorial, the flow / conversational flow / conversational agent pages, the tool pages
(MLModelTool, VectorDBTool, RAGTool, ListIndexTool, IndexMappingTool), the Execute Tool, Tools and Memory APIs.

Bodies are the documentation's, with its ids replaced by ours, a local LLM-like server (tests/llm_server.py) in place
of OpenAI / Bedrock (plain HTTP instead of SigV4) and the fake remote embedding model (tests/providers.py) in place of
the pretrained one (8 dimensions instead of 384). Outputs are checked against what ML Commons and the skills plugin
produce (their sources where the pages lag behind them)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from opensearchpy import OpenSearch

from tests.api.ml_support import llm_fixture, trusted_fixture, wait_task  # noqa: F401
from tests.api.test_connectors import ML, openai_embedding, register
from tests.conftest import RawHttp, assert_error
from tests.llm_server import LlmServer
from tests.providers import Provider

MEM = f"{ML}/memory"
# Its models (embedding, chat, RAG) deploy in fixtures and tests; undeploy and delete them when the module ends.
pytestmark = pytest.mark.usefixtures("remove_deployed_models")
INDEX = "my_test_data_docs"
CITIES = ("Ogden-Layton", "New York City", "Chicago", "Miami", "Austin", "Seattle")
QUESTION = "what's the population increase of Seattle from 2021 to 2023"
ANALYST = (
    "\n\nHuman:You are a professional data analyst. You will always answer a question based on the given context "
    "first. If the answer is not directly shown in the context, you will analyze the data and find the answer. If you "
    "don't know the answer, just say you don't know. \n\n Context:\n${parameters.VectorDBTool.output}\n\n"
    "Human:${parameters.question}\n\nAssistant:"
)
# Java's Instant.toString(), as ML Commons writes memory timestamps.
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6}|\.\d{9})?Z$")


def city_text(city: str) -> str:
    return (
        f"Chart and table of population level and growth rate for the {city} metro area from 1950 to 2023. "
        f"The current metro area population of {city} in 2023 is 3,519,000, a 0.86% increase from 2022."
    )


# ---- shared set-up (Agents and tools tutorial, steps 1-5) -----------------------------------------------------


@pytest.fixture(scope="module")
def embedding_model(http_module: RawHttp, trusted: None) -> Iterator[str]:
    provider = Provider()
    yield register(http_module, connector=openai_embedding(provider.url))
    provider.close()


@pytest.fixture(scope="module")
def http_module(server: Any) -> RawHttp:
    return RawHttp(server.url)


@pytest.fixture(scope="module")
def population(http_module: RawHttp, client: OpenSearch, embedding_model: str) -> Iterator[str]:
    """Steps 2 and 3: the ingest pipeline and the vector index of population data, as the tutorial creates them."""
    http = http_module
    pipeline = {
        "description": "text embedding pipeline",
        "processors": [{"text_embedding": {"model_id": embedding_model, "field_map": {"text": "embedding"}}}],
    }
    status, out = http.request("PUT", "/_ingest/pipeline/test-pipeline-local-model-docs", pipeline)
    assert status == 200, out
    body = {
        "mappings": {"properties": {"text": {"type": "text"}, "embedding": {"type": "knn_vector", "dimension": 8}}},
        "settings": {
            "index": {
                "knn.space_type": "cosinesimil",
                "default_pipeline": "test-pipeline-local-model-docs",
                "knn": "true",
            }
        },
    }
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    status, out = http.request("PUT", f"/{INDEX}", body)
    assert status == 200, out
    lines = []
    for n, city in enumerate(CITIES, start=1):
        lines += [json.dumps({"index": {"_index": INDEX, "_id": str(n)}}), json.dumps({"text": city_text(city)})]
    status, out = http.request("POST", "/_bulk?refresh=true", "\n".join(lines) + "\n")
    assert status == 200 and not out["errors"], out
    yield INDEX
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    http.request("DELETE", "/_ingest/pipeline/test-pipeline-local-model-docs")


@pytest.fixture(scope="module")
def claude(http_module: RawHttp, client: OpenSearch, llm: LlmServer) -> str:
    """Steps 4 and 5: the Bedrock Claude connector (plain HTTP to the local server), a model group, the model."""
    http = http_module
    connector = {
        "name": "BedRock test claude Connector",
        "description": "The connector to BedRock service for claude model",
        "version": 1,
        "protocol": "http",
        "parameters": {
            "anthropic_version": "bedrock-2023-05-31",
            "content_type": "application/json",
            "max_tokens_to_sample": 8000,
            "temperature": 0.0001,
            "response_filter": "$.completion",
        },
        "credential": {"access_key": "<bedrock_access_key>", "secret_key": "<bedrock_secret_key>"},
        "actions": [
            {
                "action_type": "predict",
                "method": "POST",
                "url": f"{llm.url}/bedrock/model/anthropic.claude-v2/invoke",
                "headers": {"content-type": "application/json"},
                "request_body": '{"prompt":"${parameters.prompt}", "max_tokens_to_sample":${parameters.max_tokens_to_sample}, '
                '"temperature":${parameters.temperature},  "anthropic_version":"${parameters.anthropic_version}" }',
            }
        ],
    }
    status, out = http.request("POST", f"{ML}/connectors/_create", connector)
    assert status == 200 and list(out) == ["connector_id"], out
    connector_id = out["connector_id"]
    group = {"name": "test_model_group_bedrock_docs", "description": "This is a public model group"}
    status, out = http.request("POST", f"{ML}/model_groups/_register", group)
    assert status == 200 and out["status"] == "CREATED", out
    model = {
        "name": "Bedrock Claude V2 model",
        "function_name": "remote",
        "model_group_id": out["model_group_id"],
        "description": "test model",
        "connector_id": connector_id,
    }
    status, out = http.request("POST", f"{ML}/models/_register?deploy=true", model)
    assert status == 200, out
    task = wait_task(client, out["task_id"])
    assert task["state"] == "COMPLETED", task
    return str(task["model_id"])


def register_agent(http: RawHttp, body: dict[str, Any]) -> str:
    status, out = http.request("POST", f"{ML}/agents/_register", body)
    assert status == 200 and list(out) == ["agent_id"], out
    return str(out["agent_id"])


def execute(http: RawHttp, agent_id: str, params: dict[str, Any]) -> list[list[dict[str, Any]]]:
    status, out = http.request("POST", f"{ML}/agents/{agent_id}/_execute", {"parameters": params})
    assert status == 200, out
    assert list(out) == ["inference_results"], out
    return [entry["output"] for entry in out["inference_results"]]


def vector_db_tool(embedding_model: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "VectorDBTool",
        "parameters": {
            "model_id": embedding_model,
            "index": INDEX,
            "embedding_field": "embedding",
            "source_field": ["text"],
            "input": "${parameters.question}",
        },
        **extra,
    }


def last_prompt(llm: LlmServer) -> str:
    return str(llm.requests[-1]["body"]["prompt"])


# ---- Agents and tools tutorial, step 6; flow agents ------------------------------------------------------------


def test_agents_tutorial_flow_agent(
    http: RawHttp, llm: LlmServer, population: str, claude: str, embedding_model: str
) -> None:
    tools = [
        vector_db_tool(embedding_model),
        {
            "type": "MLModelTool",
            "description": "A general tool to answer any question",
            "parameters": {"model_id": claude, "prompt": ANALYST},
        },
    ]
    body = {"name": "Test_Agent_For_RAG", "type": "flow", "description": "this is a test agent", "tools": tools}
    agent_id = register_agent(http, body)

    status, agent = http.request("GET", f"{ML}/agents/{agent_id}")
    assert status == 200 and agent["name"] == "Test_Agent_For_RAG" and agent["type"] == "flow"
    stored = agent["tools"][0]
    assert stored["type"] == "VectorDBTool" and stored["include_output_in_agent_response"] is False
    assert stored["parameters"]["source_field"] == '["text"]'  # ML Commons keeps parameters as strings

    llm.script(" The population increase of Seattle from 2021 to 2023 is 58,000.")
    output = execute(http, agent_id, {"question": QUESTION})
    # Two tools: the last one's text output, named after the tool (ML Commons' MLFlowAgentRunner).
    assert output == [
        [{"name": "MLModelTool", "result": " The population increase of Seattle from 2021 to 2023 is 58,000."}]
    ]
    prompt = last_prompt(llm)
    assert prompt.startswith("\n\nHuman:You are a professional data analyst.")
    context = prompt.split("Context:\n", 1)[1].split("\n\nHuman:", 1)[0]
    hits = [json.loads(line) for line in context.strip().split("\n")]
    assert len(hits) == 2 and all(list(hit) == ["_index", "_source", "_id", "_score"] for hit in hits)
    assert hits[0]["_index"] == INDEX and hits[0]["_source"]["text"].startswith("Chart and table")
    assert prompt.endswith(f"Human:{QUESTION}\n\nAssistant:")


def test_single_tool_flow_agents_name_their_output_response(
    http: RawHttp, llm: LlmServer, population: str, claude: str, embedding_model: str
) -> None:
    """The tool pages' flow agents have one tool: ML Commons returns its output as the `response` tensor."""
    prompt = "\n\nHuman:You are a professional data analyst. \n\nHuman:${parameters.question}\n\nAssistant:"
    model_tool = {
        "type": "MLModelTool",
        "description": "A general tool",
        "parameters": {"model_id": claude, "prompt": prompt},
    }
    agent_id = register_agent(http, {"name": "Test agent for embedding model", "type": "flow", "tools": [model_tool]})
    llm.script(" I do not have direct data on the population increase of Seattle.")
    output = execute(http, agent_id, {"question": QUESTION})
    assert output == [
        [{"name": "response", "result": " I do not have direct data on the population increase of Seattle."}]
    ]
    assert last_prompt(llm).startswith(f"\n\nHuman:You are a professional data analyst. \n\nHuman:{QUESTION}")

    agent_id = register_agent(
        http, {"name": "Test_Agent_For_VectorDB", "type": "flow", "tools": [vector_db_tool(embedding_model)]}
    )
    [[tensor]] = execute(http, agent_id, {"question": QUESTION})
    assert tensor["name"] == "response"
    text = tensor["result"]
    assert text.endswith("\n") and text.count("\n") == 2  # doc_size 2, one JSON object a line
    for line in text.strip().split("\n"):
        assert line.startswith('{"_index":"my_test_data_docs","_source":{"text":"Chart and table')
        score = line.rsplit('"_score":', 1)[1].rstrip("}")
        assert 0 < float(score) <= 1 and len(score.lstrip("0.").replace(".", "")) <= 9  # a Java float


def test_rag_tool_flow_agent(http: RawHttp, llm: LlmServer, population: str, claude: str, embedding_model: str) -> None:
    rag_prompt = (
        "\n\nHuman:You are a professional data analyst. You will always answer question based on the given context "
        "first. If the answer is not directly shown in the context, you will analyze the data and find the answer. If "
        "you don't know the answer, just say don't know. \n\n Context:\n${parameters.output_field}\n\n"
        "Human:${parameters.question}\n\nAssistant:"
    )
    tool = {
        "type": "RAGTool",
        "description": "A description of the tool",
        "parameters": {
            "embedding_model_id": embedding_model,
            "inference_model_id": claude,
            "index": INDEX,
            "embedding_field": "embedding",
            "query_type": "neural",
            "source_field": ["text"],
            "input": "${parameters.question}",
            "prompt": rag_prompt,
        },
    }
    agent_id = register_agent(
        http,
        {"name": "Test_Agent_For_RagTool", "type": "flow", "description": "this is a test flow agent", "tools": [tool]},
    )
    llm.script("58,000")
    assert execute(http, agent_id, {"question": QUESTION}) == [[{"name": "response", "result": "58,000"}]]
    # The skills' RAGTool context: `_id:` / `_source:` lines per hit, JSON-quoted as a whole.
    context = last_prompt(llm).split("Context:\n", 1)[1].split("\n\nHuman:", 1)[0]
    assert context.startswith('"_id: ') and context.endswith('\\n"')
    assert '\\n_source: {\\"text\\":\\"Chart and table' in context and context.count("_id: ") == 2


def test_list_index_and_index_mapping_tools(http: RawHttp, population: str) -> None:
    tool = {"type": "ListIndexTool", "name": "DemoListIndexTool", "parameters": {"input": "${parameters.question}"}}
    agent_id = register_agent(
        http, {"name": "Test_Agent_For_ListIndex_tool", "type": "flow", "description": "test", "tools": [tool]}
    )
    [[tensor]] = execute(http, agent_id, {"question": "How many indices do I have?"})
    assert tensor["name"] == "response"
    header, *rows = tensor["result"].split("\n")
    assert header == (
        "row,health,status,index,uuid,pri(number of primary shards),rep(number of replica shards),docs.count(number "
        "of available documents),docs.deleted(number of deleted documents),store.size(store size of primary and "
        "replica shards),pri.store.size(store size of primary shards)"
    )
    assert rows[-1] == "" and [row.split(",")[0] for row in rows[:-1]] == [str(n) for n in range(1, len(rows))]
    [ours] = [row.split(",") for row in rows if f",{INDEX}," in row]
    assert ours[1:3] == ["yellow", "open"] and ours[5:9] == ["1", "1", "6", "0"]
    assert re.fullmatch(r"\d+(\.\d)?(b|kb|mb)", ours[9]) and not ours[9].endswith(".0kb")  # ByteSizeValue text
    assert any(",.plugins-ml-agent," in row for row in rows)  # system indices are listed too

    tool = {
        "type": "IndexMappingTool",
        "name": "DemoIndexMappingTool",
        "parameters": {"index": "${parameters.index}", "input": "${parameters.question}"},
    }
    agent_id = register_agent(http, {"name": "Test_Agent_For_IndexMapping_tool", "type": "flow", "tools": [tool]})
    params = {"index": [INDEX], "question": f"What fields are in the {INDEX} index?"}
    [[tensor]] = execute(http, agent_id, params)
    text = tensor["result"]
    assert tensor["name"] == "response" and text.startswith(f"index: {INDEX}\n\nmappings:\nproperties={{")
    assert "text={type=text}" in text and "embedding={type=knn_vector, dimension=8" in text
    settings = text.split("\n\n\nsettings:\n", 1)[1]
    assert f"index.provided_name={INDEX}\n" in settings and "index.knn=true\n" in settings
    assert settings.endswith("\n\n\n")

    [[tensor]] = execute(http, agent_id, {"index": ["my_test_data_d*"], "question": "?"})  # wildcards expand
    assert tensor["result"].startswith(f"index: {INDEX}\n")
    _, out = http.request("POST", f"{ML}/agents/{agent_id}/_execute", {"parameters": {"index": ["nope-docs"]}})
    assert_error(out, 404, "index_not_found_exception", "no such index [nope-docs]")


def test_execute_tool_api(http: RawHttp, population: str) -> None:
    status, out = http.request(
        "POST", f"{ML}/tools/_execute/ListIndexTool", {"parameters": {"question": "How many indices do I have?"}}
    )
    assert status == 200, out
    [[tensor]] = [entry["output"] for entry in out["inference_results"]]
    assert tensor["name"] == "response" and tensor["result"].startswith("row,health,status,index,uuid,pri(")
    assert f",{INDEX}," in tensor["result"]


def test_tools_list_and_get(http: RawHttp) -> None:
    status, tools = http.request("GET", f"{ML}/tools")
    assert status == 200 and isinstance(tools, list)
    for entry in tools:
        assert set(entry) <= {"name", "description", "type", "version", "attributes"}, entry
        assert entry["name"] == entry["type"] and entry["description"]
        assert entry["version"] == "undefined"  # ToolMetadata's text for a tool without a version
    by_name = {entry["name"]: entry for entry in tools}
    listing = by_name["ListIndexTool"]
    assert listing["attributes"]["strict"] is False
    assert json.loads(listing["attributes"]["input_schema"])["properties"]["indices"]["type"] == "array"
    assert by_name["SearchIndexTool"]["attributes"]["strict"] is True
    assert "attributes" not in by_name["MLModelTool"]
    assert by_name["MLModelTool"]["description"] == "Use this tool to run any model."
    status, one = http.request("GET", f"{ML}/tools/ListIndexTool")
    assert status == 200 and one == listing
    status, body = http.request("GET", f"{ML}/tools/Nope")
    assert_error(body, 404, "status_exception", "Failed to find tool information with the provided tool name: Nope")


# ---- conversational flow and conversational agents: memory through the memory API ------------------------------


def test_conversational_flow_agent_keeps_the_conversation(
    http: RawHttp, llm: LlmServer, population: str, claude: str, embedding_model: str
) -> None:
    prompt = (
        "\n\nHuman:You are a professional data analyst. You will always answer question based on the given context "
        "first.\n\n Context:\n${parameters.population_knowledge_base.output:-}\n\n${parameters.chat_history:-}\n\n"
        "Human:${parameters.question}\n\nAssistant:"
    )
    body = {
        "name": "population data analysis agent",
        "type": "conversational_flow",
        "description": "This is a demo agent for population data analysis",
        "app_type": "rag",
        "memory": {"type": "conversation_index"},
        "tools": [
            vector_db_tool(embedding_model, name="population_knowledge_base"),
            {
                "type": "MLModelTool",
                "name": "bedrock_claude_model",
                "description": "A general tool to answer any question",
                "parameters": {"model_id": claude, "prompt": prompt},
            },
        ],
    }
    agent_id = register_agent(http, body)
    llm.script("58,000 people")
    [first] = execute(http, agent_id, {"question": QUESTION})
    assert [t["name"] for t in first] == ["memory_id", "parent_interaction_id", "bedrock_claude_model"]
    memory_id, message_id = first[0]["result"], first[1]["result"]
    assert first[2] == {"name": "bedrock_claude_model", "result": "58,000 people"}

    llm.script("It was 3,489,000 in 2022.")
    [second] = execute(http, agent_id, {"question": "What was it in 2022?", "memory_id": memory_id})
    assert (
        second[0] == {"name": "memory_id", "result": memory_id} and second[2]["result"] == "It was 3,489,000 in 2022."
    )
    assert (
        "Below is Chat History between Human and AI which sorted by time with asc order:\n"
        f"Human:{QUESTION}\nAssistant:58,000 people\n" in last_prompt(llm)  # ConversationIndexMessage.toString()
    )

    status, found = http.request("GET", f"{MEM}/{memory_id}/messages")
    assert status == 200, found
    messages = found["messages"]
    assert [(m["input"], m["response"]) for m in messages] == [
        (QUESTION, "58,000 people"),
        ("What was it in 2022?", "It was 3,489,000 in 2022."),
    ]
    assert messages[0]["message_id"] == message_id and all(m["memory_id"] == memory_id for m in messages)
    status, found = http.request("GET", f"{MEM}/message/{message_id}/traces")
    assert status == 200, found
    traces = found["traces"]
    assert [(t["origin"], t["trace_number"], t["parent_message_id"]) for t in traces] == [
        ("population_knowledge_base", 1, message_id),
        ("bedrock_claude_model", 2, message_id),
    ]
    assert traces[0]["input"] == QUESTION and traces[1]["response"] == "58,000 people"
    status, memory = http.request("GET", f"{MEM}/{memory_id}")
    assert status == 200 and memory["name"] == QUESTION


def test_conversational_agent_page(
    http: RawHttp, llm: LlmServer, population: str, claude: str, embedding_model: str
) -> None:
    body = {
        "name": "Test_Agent_For_ReAct_ClaudeV2",
        "type": "conversational",
        "description": "this is a test agent",
        "llm": {
            "model_id": claude,
            "parameters": {"max_iteration": 5, "stop_when_no_tool_found": True, "response_filter": "$.completion"},
        },
        "memory": {"type": "conversation_index"},
        "tools": [
            vector_db_tool(
                embedding_model,
                name="VectorDBTool",
                description="A tool to search opensearch index with natural language question. Action Input: <question>",
            ),
            {
                "type": "CatIndexTool",
                "name": "RetrieveIndexMetaTool",
                "description": "Use this tool to get OpenSearch index information.",
            },
        ],
        "app_type": "my app",
    }
    agent_id = register_agent(http, body)
    status, agent = http.request("GET", f"{ML}/agents/{agent_id}")
    assert agent["llm"]["parameters"]["max_iteration"] == "5" and agent["app_type"] == "my app"

    call = {"thought": "I need the index list", "action": "RetrieveIndexMetaTool", "action_input": ""}
    llm.script(
        f"```json\n{json.dumps(call)}\n```", json.dumps({"thought": "done", "final_answer": "There are indices."})
    )
    entries = execute(http, agent_id, {"question": "How many indices are in my cluster?"})
    assert [[t["name"] for t in entry] for entry in entries] == [["memory_id", "parent_interaction_id"], ["response"]]
    assert entries[1][0]["dataAsMap"]["response"] == "There are indices."
    assert f",{INDEX}," in last_prompt(llm)  # the tool's CSV went back to the LLM

    memory_id, message_id = entries[0][0]["result"], entries[0][1]["result"]
    status, found = http.request("GET", f"{MEM}/{memory_id}/messages")
    assert status == 200 and [(m["input"], m["response"]) for m in found["messages"]] == [
        ("How many indices are in my cluster?", "There are indices.")
    ]
    _, found = http.request("GET", f"{MEM}/message/{message_id}/traces")
    origins = [t.get("origin") for t in found["traces"]]
    assert "RetrieveIndexMetaTool" in origins and [t["trace_number"] for t in found["traces"]] == list(
        range(1, len(origins) + 1)
    )


# ---- Conversational search with RAG (the tutorial) --------------------------------------------------------------


@pytest.fixture
def rag_settings(client: OpenSearch) -> Iterator[None]:
    keys = ("plugins.ml_commons.memory_feature_enabled", "plugins.ml_commons.rag_pipeline_feature_enabled")
    client.cluster.put_settings(body={"persistent": dict.fromkeys(keys, True)})
    yield
    client.cluster.put_settings(body={"persistent": dict.fromkeys(keys)})


def test_conversational_search_tutorial(http: RawHttp, client: OpenSearch, llm: LlmServer, rag_settings: None) -> None:
    endpoint = llm.url.removeprefix("http://")
    connector = {
        "name": "OpenAI Chat Connector",
        "description": "The connector to public OpenAI model service for GPT 3.5",
        "version": 2,
        "protocol": "http",
        "parameters": {"endpoint": endpoint, "model": "gpt-3.5-turbo", "temperature": 0},
        "credential": {"openAI_key": "<YOUR_OPENAI_KEY>"},
        "actions": [
            {
                "action_type": "predict",
                "method": "POST",
                "url": "http://${parameters.endpoint}/v1/chat/completions",
                "headers": {"Authorization": "Bearer ${credential.openAI_key}"},
                "request_body": '{ "model": "${parameters.model}", "messages": ${parameters.messages}, '
                '"temperature": ${parameters.temperature} }',
            }
        ],
    }
    status, out = http.request("POST", f"{ML}/connectors/_create", connector)
    assert status == 200, out
    model = {"name": "openAI-gpt-3.5-turbo", "function_name": "remote", "description": "test model"}
    status, out = http.request("POST", f"{ML}/models/_register", {**model, "connector_id": out["connector_id"]})
    assert status == 200 and out["status"] == "CREATED", out
    model_id = out["model_id"]
    status, task = http.request("GET", f"{ML}/tasks/{out['task_id']}")
    assert task["state"] == "COMPLETED" and task["model_id"] == model_id and task["task_type"] == "REGISTER_MODEL"
    status, out = http.request("POST", f"{ML}/models/{model_id}/_deploy")
    assert status == 200 and out["task_type"] == "DEPLOY_MODEL", out
    wait_task(client, out["task_id"])

    processor = {
        "tag": "openai_pipeline_demo",
        "description": "Demo pipeline Using OpenAI Connector",
        "model_id": model_id,
        "context_field_list": ["text"],
        "system_prompt": "You are a helpful assistant",
        "user_instructions": "Generate a concise and informative answer in less than 100 words for the given question",
    }
    pipeline = {"response_processors": [{"retrieval_augmented_generation": processor}]}
    status, out = http.request("PUT", "/_search/pipeline/rag_pipeline_docs", pipeline)
    assert status == 200 and out == {"acknowledged": True}, out
    index = "my_rag_test_data_docs"
    client.indices.delete(index=index, ignore_unavailable=True)
    body = {
        "settings": {"index.search.default_pipeline": "rag_pipeline_docs"},
        "mappings": {"properties": {"text": {"type": "text"}}},
    }
    status, out = http.request("PUT", f"/{index}", body)
    assert status == 200, out
    lincoln = "Abraham Lincoln was born on February 12, 1809, the second child of Thomas Lincoln."
    nyc = (
        "Chart and table of population level and growth rate for the New York City metro area from 1950 to 2023.\\n"
        "The current metro area population of New York City in 2023 is 18,937,000, a 0.37% increase from 2022.\\n"
        "The metro area population of New York City in 2022 was 18,867,000, a 0.23% increase from 2021."
    )
    bulk = [{"index": {"_index": index, "_id": "1"}}, {"text": lincoln}, {"index": {"_index": index, "_id": "2"}}]
    bulk.append({"text": nyc})
    status, out = http.request("POST", "/_bulk?refresh=true", "\n".join(json.dumps(x) for x in bulk) + "\n")
    assert status == 200 and not out["errors"], out

    status, out = http.request("POST", f"{MEM}/", {"name": "Conversation about NYC population"})
    assert status == 200 and list(out) == ["memory_id"], out
    memory_id = out["memory_id"]

    def ask(question: str, answer: str) -> dict[str, Any]:
        llm.script(answer)
        qa = {
            "llm_model": "gpt-3.5-turbo",
            "llm_question": question,
            "memory_id": memory_id,
            "context_size": 5,
            "message_size": 5,
            "timeout": 15,
        }
        body = {"query": {"match": {"text": question}}, "ext": {"generative_qa_parameters": qa}}
        status, out = http.request("GET", f"/{index}/_search", body)
        assert status == 200, out
        return out

    first = ask("What's the population of NYC metro area in 2023", "It is projected to be 18,937,000.")
    assert [h["_id"] for h in first["hits"]["hits"]] == ["2", "1"]
    rag = first["ext"]["retrieval_augmented_generation"]
    assert list(rag) == ["answer", "message_id"] and rag["answer"] == "It is projected to be 18,937,000."
    sent = llm.requests[-1]["body"]
    assert sent["model"] == "gpt-3.5-turbo" and sent["temperature"] == 0
    assert sent["messages"][0] == {
        "role": "system",
        "content": [{"type": "text", "text": "You are a helpful assistant"}],
    }

    second = ask("What was it in 2022", "It was 18,867,000.")
    assert second["ext"]["retrieval_augmented_generation"]["answer"] == "It was 18,867,000."
    history = json.dumps(llm.requests[-1]["body"]["messages"])
    assert (
        "What's the population of NYC metro area in 2023" in history and "It is projected to be 18,937,000." in history
    )

    status, found = http.request("GET", f"{MEM}/{memory_id}/messages")
    assert status == 200, found
    messages = found["messages"]
    assert [m["message_id"] for m in messages] == [
        rag["message_id"],
        second["ext"]["retrieval_augmented_generation"]["message_id"],
    ]
    template = (
        '[{"role":"system","content":"You are a helpful assistant"},{"role":"user","content":"Generate a concise '
        'and informative answer in less than 100 words for the given question"}]'
    )
    for message in messages:
        assert message["origin"] == "retrieval_augmented_generation" and message["prompt_template"] == template
        assert json.loads(message["additional_info"]["metadata"]) == [nyc, lincoln]
        assert INSTANT.match(message["create_time"])
    client.indices.delete(index=index, ignore_unavailable=True)
    http.request("DELETE", "/_search/pipeline/rag_pipeline_docs")


# ---- Memory APIs -------------------------------------------------------------------------------------------------


def test_memory_api_pages(http: RawHttp) -> None:
    status, out = http.request("POST", MEM, {"name": "Conversation for a RAG pipeline"})
    assert status == 200 and list(out) == ["memory_id"]
    memory_id = out["memory_id"]
    status, memory = http.request("GET", f"{MEM}/{memory_id}")
    assert status == 200 and list(memory) == ["memory_id", "create_time", "updated_time", "name"]
    assert memory["name"] == "Conversation for a RAG pipeline" and INSTANT.match(memory["create_time"])

    message = {
        "input": "How do I make an interaction?",
        "prompt_template": "Hello OpenAI, can you answer this question?",
        "response": "Hello, this is OpenAI. Here is the answer to your question.",
        "origin": "MyFirstOpenAIWrapper",
        "additional_info": {"suggestion": "api.openai.com"},
    }
    status, out = http.request("POST", f"{MEM}/{memory_id}/messages", message)
    assert status == 200 and list(out) == ["message_id"], out
    message_id = out["message_id"]
    for version, feedback in ((2, "positive"), (3, "negative")):
        status, out = http.request("PUT", f"{MEM}/message/{message_id}", {"additional_info": {"feedback": feedback}})
        assert status == 200, out
        assert out["_index"] == ".plugins-ml-memory-message" and out["_id"] == message_id
        assert out["_version"] == version and out["result"] == "updated" and out["forced_refresh"] is True
        status, got = http.request("GET", f"{MEM}/message/{message_id}")
        assert got["additional_info"] == {"feedback": feedback, "suggestion": "api.openai.com"}
    assert {k: got[k] for k in ("memory_id", "message_id", "input", "origin")} == {
        "memory_id": memory_id,
        "message_id": message_id,
        "input": message["input"],
        "origin": message["origin"],
    }
    status, out = http.request("POST", f"{MEM}/{memory_id}/messages", {"response": message["response"]})
    status, got = http.request("GET", f"{MEM}/message/{out['message_id']}")
    assert "input" not in got and "origin" not in got  # ML Commons leaves blank fields out (the page shows nulls)

    # next_token: the offset of the next page, present whenever a page is full (ML Commons' transport actions).
    status, page = http.request("GET", f"{MEM}/{memory_id}/messages?max_results=1")
    assert len(page["messages"]) == 1 and page["next_token"] == 1
    status, page = http.request("GET", f"{MEM}/{memory_id}/messages?max_results=2&next_token=0")
    assert len(page["messages"]) == 2 and page["next_token"] == 2
    status, page = http.request("GET", f"{MEM}/{memory_id}/messages?max_results=2&next_token=2")
    assert page == {"messages": []}
    status, page = http.request("GET", f"{MEM}?max_results=1")
    assert len(page["memories"]) == 1 and page["next_token"] == 1
    assert page["memories"][0]["memory_id"] == memory_id  # most recently updated first

    status, found = http.request("POST", f"{MEM}/_search", {"query": {"match": {"name": "RAG pipeline"}}, "size": 10})
    assert status == 200 and memory_id in [h["_id"] for h in found["hits"]["hits"]]
    status, found = http.request("POST", f"{MEM}/{memory_id}/_search", {"query": {"match_all": {}}, "size": 1000})
    assert status == 200 and found["hits"]["total"]["value"] == 2

    before = datetime.fromisoformat(memory["updated_time"].replace("Z", "+00:00"))
    status, memory = http.request("GET", f"{MEM}/{memory_id}")
    assert datetime.fromisoformat(memory["updated_time"].replace("Z", "+00:00")) > before  # bumped by messages

    status, out = http.request("DELETE", f"{MEM}/{memory_id}")
    assert status == 200 and out == {"success": True}
    status, out = http.request("GET", f"{MEM}/{memory_id}")
    assert_error(out, 404, "resource_not_found_exception", f"Memory [{memory_id}] not found")
    status, out = http.request("GET", f"{MEM}/message/{message_id}")
    assert_error(out, 404, "resource_not_found_exception", f"Message [{message_id}] not found")
