"""Conversational search end to end: an index, an LLM behind a connector (a local LLM-like server), a
`retrieval_augmented_generation` search pipeline and the conversation memory across turns."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from opensearchpy import OpenSearch

from tests.api.ml_support import LOCAL_TRUST, llm_fixture, trusted_fixture  # noqa: F401
from tests.api.test_connectors import cleanup, register
from tests.conftest import RawHttp, ServerProcess, assert_error
from tests.llm_server import LlmServer, Reply, bedrock_completion, bedrock_converse, cohere_chat, openai_chat

MEM = "/_plugins/_ml/memory"
DOCS = [
    {"title": "Population of NYC", "text": "New York City (NYC) had a population of 8.3 million in 2023."},
    {"title": "Population of Miami", "text": "Miami had a population of 450 thousand in 2023."},
    {"title": "Rain in Seattle", "text": "Seattle gets about 150 days of rain a year."},
]


@pytest.fixture(scope="module")
def corpus(client: OpenSearch) -> Iterator[str]:
    name = "rag-corpus"
    client.indices.delete(index=name, ignore_unavailable=True)
    for i, doc in enumerate(DOCS):
        client.index(index=name, id=str(i), body=doc)
    client.indices.refresh(index=name)
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture
def pipeline(http: RawHttp, llm: LlmServer) -> Iterator[tuple[str, str]]:
    """An OpenAI-style RAG pipeline: (pipeline id, model id)."""
    model_id = register(http, connector=openai_chat(llm.url))
    pipeline_id = "rag-openai"
    body = {
        "response_processors": [
            {
                "retrieval_augmented_generation": {
                    "tag": "openai_pipeline_demo",
                    "model_id": model_id,
                    "context_field_list": ["text"],
                    "system_prompt": "You are a helpful assistant",
                    "user_instructions": "Generate a concise answer",
                }
            }
        ]
    }
    status, out = http.request("PUT", f"/_search/pipeline/{pipeline_id}", body)
    assert status == 200, out
    llm.requests.clear()
    yield pipeline_id, model_id
    http.request("DELETE", f"/_search/pipeline/{pipeline_id}")
    cleanup(http, model_id)


def _search(http: RawHttp, index: str, pipeline_id: str, question: str, **qa: Any) -> tuple[int, Any]:
    body = {
        "query": {"match": {"text": question}},
        "size": 2,
        "ext": {"generative_qa_parameters": {"llm_question": question, "llm_model": "gpt-4o-mini", **qa}},
    }
    return http.request("POST", f"/{index}/_search?search_pipeline={pipeline_id}", body)


def _memory(http: RawHttp) -> str:
    status, out = http.request("POST", MEM, {"name": "rag conversation"})
    assert status == 200
    return out["memory_id"]


def _texts(messages: list[dict[str, Any]]) -> list[str]:
    return [block["text"] for m in messages for block in m["content"]]


def test_conversation_over_two_turns_carries_the_first_exchange(
    http: RawHttp, corpus: str, llm: LlmServer, pipeline: tuple[str, str]
) -> None:
    pipeline_id, _ = pipeline
    memory_id = _memory(http)
    llm.script("NYC had 8.3 million people.", "Miami is much smaller: 450 thousand.")

    status, first = _search(http, corpus, pipeline_id, "population of NYC", memory_id=memory_id, context_size=1)
    assert status == 200, first
    assert first["hits"]["hits"][0]["_id"] == "0"  # the search response is intact
    rag = first["ext"]["retrieval_augmented_generation"]
    assert rag["answer"] == "NYC had 8.3 million people."
    assert rag["message_id"]

    request = llm.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["body"]["model"] == "gpt-4o-mini"
    messages = request["body"]["messages"]
    assert messages[0] == {"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant"}]}
    assert _texts(messages[1:]) == [
        "Generate a concise answer",
        f"SEARCH RESULT 1: {DOCS[0]['text']}",
        "QUESTION: population of NYC\n",
        "ANSWER:",
    ]

    status, second = _search(http, corpus, pipeline_id, "and Miami?", memory_id=memory_id, context_size=1)
    assert status == 200, second
    assert second["ext"]["retrieval_augmented_generation"]["answer"].startswith("Miami")
    roles = [(m["role"], _texts([m])) for m in llm.requests[1]["body"]["messages"]]
    # the first exchange comes back as a user turn and the assistant's answer, before the new question
    assert roles[1][1][-1] == "population of NYC"
    assert roles[2] == ("assistant", ["NYC had 8.3 million people."])
    assert roles[3] == ("user", ["QUESTION: and Miami?\n", "ANSWER:"])

    status, stored = http.request("GET", f"{MEM}/{memory_id}/messages")
    assert [m["input"] for m in stored["messages"]] == ["population of NYC", "and Miami?"]
    message = stored["messages"][0]
    assert message["origin"] == "retrieval_augmented_generation"
    assert message["response"] == "NYC had 8.3 million people."
    assert orjson.loads(message["prompt_template"]) == [
        {"role": "system", "content": "You are a helpful assistant"},
        {"role": "user", "content": "Generate a concise answer"},
    ]
    assert orjson.loads(message["additional_info"]["metadata"]) == [DOCS[0]["text"]]


def test_without_memory_there_is_no_message_id(
    http: RawHttp, corpus: str, llm: LlmServer, pipeline: tuple[str, str]
) -> None:
    pipeline_id, _ = pipeline
    status, out = _search(http, corpus, pipeline_id, "rain in Seattle")
    assert status == 200, out
    assert out["ext"]["retrieval_augmented_generation"] == {"answer": llm.default}


def test_llm_error_body_is_reported_in_ext_and_not_remembered(
    http: RawHttp, corpus: str, llm: LlmServer, pipeline: tuple[str, str]
) -> None:
    pipeline_id, _ = pipeline
    memory_id = _memory(http)
    llm.script(Reply(body={"error": {"message": "The model is overloaded", "type": "server_error"}}))
    status, out = _search(http, corpus, pipeline_id, "population of NYC", memory_id=memory_id)
    assert status == 200, out
    assert out["ext"]["retrieval_augmented_generation"] == {"error": "The model is overloaded"}
    _, stored = http.request("GET", f"{MEM}/{memory_id}/messages")
    assert stored["messages"] == []


def test_llm_500_and_timeout_fail_the_search_and_leave_memory_usable(
    http: RawHttp, corpus: str, llm: LlmServer, pipeline: tuple[str, str]
) -> None:
    pipeline_id, _ = pipeline
    memory_id = _memory(http)
    llm.script("first answer")
    status, _ = _search(http, corpus, pipeline_id, "population of NYC", memory_id=memory_id)
    assert status == 200

    llm.script(Reply(status=500))
    status, out = _search(http, corpus, pipeline_id, "and Miami?", memory_id=memory_id)
    assert_error(out, 500, "status_exception", "Error from remote service")
    assert "scripted failure 500" in out["error"]["reason"]

    llm.script(Reply(text="too late", delay=3.0))
    status, out = _search(http, corpus, pipeline_id, "and Miami?", memory_id=memory_id, timeout=1)
    assert_error(out, 504, "status_exception", "Timed out after [1s]")

    llm.script("second answer")
    status, out = _search(http, corpus, pipeline_id, "and Miami?", memory_id=memory_id)
    assert status == 200, out
    _, stored = http.request("GET", f"{MEM}/{memory_id}/messages")
    assert [m["response"] for m in stored["messages"]] == ["first answer", "second answer"]


def test_bedrock_converse_style(http: RawHttp, corpus: str, llm: LlmServer) -> None:
    model_id = register(http, connector=bedrock_converse(llm.url))
    body = {"response_processors": [{"retrieval_augmented_generation": {
        "model_id": model_id, "context_field_list": ["title", "text"], "system_prompt": "Be brief",
        "llm_model": "bedrock-converse/anthropic.claude-3-sonnet"}}]}  # fmt: skip
    assert http.request("PUT", "/_search/pipeline/rag-converse", body)[0] == 200
    llm.requests.clear()
    llm.script("Seattle: 150 rainy days.")
    search = {
        "query": {"match": {"text": "rain"}},
        "ext": {"generative_qa_parameters": {"llm_question": "How rainy is Seattle?", "context_size": 1}},
    }
    status, out = http.request("POST", f"/{corpus}/_search?search_pipeline=rag-converse", search)
    assert status == 200, out
    assert out["ext"]["retrieval_augmented_generation"]["answer"] == "Seattle: 150 rainy days."
    sent = llm.requests[0]["body"]
    assert sent["system"] == [{"text": "Be brief"}]
    # As ML Commons: the system prompt travels apart, so the default instructions open the user turn.
    [turn] = sent["messages"]
    assert turn["role"] == "user" and turn["content"][0]["text"].startswith("Generate a concise and informative")
    assert turn["content"][1:] == [
        {"text": "SEARCH RESULT 1: Rain in Seattle"},
        {"text": f"SEARCH RESULT 2: {DOCS[2]['text']}"},
        {"text": "QUESTION: How rainy is Seattle?\n"},
        {"text": "ANSWER:"},
    ]
    http.request("DELETE", "/_search/pipeline/rag-converse")
    cleanup(http, model_id)


@pytest.mark.parametrize(
    ("connector", "llm_model"), [(bedrock_completion, "bedrock/anthropic-claude"), (cohere_chat, "cohere/command")]
)
def test_single_prompt_styles(http: RawHttp, corpus: str, llm: LlmServer, connector: Any, llm_model: str) -> None:
    model_id = register(http, connector=connector(llm.url))
    body = {"response_processors": [{"retrieval_augmented_generation": {
        "model_id": model_id, "context_field_list": ["text"], "llm_model": llm_model}}]}  # fmt: skip
    assert http.request("PUT", "/_search/pipeline/rag-single", body)[0] == 200
    llm.requests.clear()
    llm.script("single prompt answer")
    search = {"query": {"match": {"text": "Miami"}}, "ext": {"generative_qa_parameters": {"llm_question": "Miami?"}}}
    status, out = http.request("POST", f"/{corpus}/_search?search_pipeline=rag-single", search)
    assert status == 200, out
    assert out["ext"]["retrieval_augmented_generation"]["answer"] == "single prompt answer"
    sent = llm.requests[0]["body"]
    prompt = sent.get("prompt") or sent.get("message")
    assert f"SEARCH RESULT 1: {DOCS[1]['text']}" in prompt and "QUESTION: Miami?" in prompt
    http.request("DELETE", "/_search/pipeline/rag-single")
    cleanup(http, model_id)


def test_validation_errors(http: RawHttp, corpus: str, pipeline: tuple[str, str]) -> None:
    pipeline_id, model_id = pipeline
    url = f"/{corpus}/_search?search_pipeline={pipeline_id}"
    _, out = http.request("POST", url, {"query": {"match_all": {}}})
    assert_error(out, 400, "illegal_argument_exception", "generative_qa_parameters not found")
    _, out = http.request("POST", url, {"ext": {"generative_qa_parameters": {"llm_model": "gpt-4o-mini"}}})
    assert_error(out, 400, "illegal_argument_exception", "At least one of llm_question or llm_messages")
    _, out = http.request("POST", url, {"ext": {"generative_qa_parameters": {"llm_question": "q"}}})
    assert_error(out, 400, "illegal_argument_exception", "llm_model cannot be null.")
    bad = {"response_processors": [{"retrieval_augmented_generation": {"model_id": model_id}}]}
    _, out = http.request("PUT", "/_search/pipeline/rag-bad", bad)
    assert_error(out, 400, "parse_exception", "[context_field_list] required property is missing")
    bad["response_processors"][0]["retrieval_augmented_generation"]["context_field_list"] = []
    _, out = http.request("PUT", "/_search/pipeline/rag-bad", bad)
    assert_error(out, 400, "parse_exception", "[context_field_list] required property can't be empty.")


def test_rag_feature_setting(http: RawHttp, corpus: str, pipeline: tuple[str, str]) -> None:
    pipeline_id, _ = pipeline
    key = "plugins.ml_commons.rag_pipeline_feature_enabled"
    assert http.request("PUT", "/_cluster/settings", {"persistent": {key: False}})[0] == 200
    try:
        _, out = _search(http, corpus, pipeline_id, "population of NYC")
        assert_error(out, 500, "m_l_exception", f"{key} is not enabled.")
    finally:
        http.request("PUT", "/_cluster/settings", {"persistent": {key: None}})


def test_a_stop_signal_cuts_llm_calls_that_hang(tmp_path: Path) -> None:
    """SIGTERM while one RAG request waits on an LLM that never answers and another one's call was left behind by
    its timeout: both calls are cancelled, the waiting request gets an error, the process exits at once."""
    llm = LlmServer()
    server = ServerProcess(tmp_path).start()
    try:
        http = RawHttp(server.url)
        assert http.request("PUT", "/_cluster/settings", {"persistent": LOCAL_TRUST})[0] == 200
        assert http.request("PUT", "/docs/_doc/1?refresh=true", DOCS[0])[0] == 201
        model_id = register(http, connector=openai_chat(llm.url))
        rag = {"model_id": model_id, "context_field_list": ["text"]}
        body = {"response_processors": [{"retrieval_augmented_generation": rag}]}
        assert http.request("PUT", "/_search/pipeline/rag", body)[0] == 200
        llm.script(Reply(text="never", delay=120), Reply(text="never", delay=120))
        status, out = _search(http, "docs", "rag", "population of NYC", timeout=1)
        assert_error(out, 504, "status_exception", "Timed out after [1s]")

        waiting: dict[str, Any] = {}
        thread = threading.Thread(
            target=lambda: waiting.update(reply=_search(RawHttp(server.url), "docs", "rag", "population of NYC"))
        )
        thread.start()
        deadline = time.monotonic() + 10
        while len(llm.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(llm.requests) == 2, "the second request did not reach the LLM"
        started = time.monotonic()
        assert server.stop(signal.SIGTERM, timeout=60) == 0
        assert time.monotonic() - started < 5
        thread.join(10)
        status, out = waiting["reply"]
        assert status == 503
        assert_error(out, 503, "status_exception", "the call was cancelled")
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.kill()
        llm.close()
