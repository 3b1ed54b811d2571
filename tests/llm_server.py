"""An LLM-like HTTP server on 127.0.0.1 for RAG tests: OpenAI chat completions, Bedrock `inputs`/`completion`,
Bedrock Converse and Cohere chat shapes, with scripted answers.

`answers` is a queue of replies (text, or an `Reply` with a status / delay / raw body); when empty the server answers
`default`. `requests` records each request's path and JSON body so tests can assert on the prompt."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fake_http import Answer, FakeHttpServer


@dataclass(frozen=True)
class Reply:
    """One scripted reply: an answer text, or a status with a body; `delay` seconds before answering."""

    text: str = ""
    status: int = 200
    delay: float = 0.0
    body: Any = None  # a raw JSON body, replacing the provider-shaped one


@dataclass
class LlmServer(FakeHttpServer):
    default: str = "I am a scripted answer."
    answers: list[Reply | str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.serve()

    def script(self, *replies: Reply | str) -> None:
        with self.lock:
            self.answers.extend(replies)

    def _next(self) -> Reply:
        with self.lock:
            item = self.answers.pop(0) if self.answers else self.default
        return Reply(text=item) if isinstance(item, str) else item

    def answer(self, handler: BaseHTTPRequestHandler, raw: bytes, body: Any) -> Answer:
        self.record({"path": handler.path, "body": body})
        reply = self._next()
        if reply.delay:
            time.sleep(reply.delay)
        if reply.body is not None:
            return reply.status, reply.body, {}
        if reply.status >= 400:
            return reply.status, {"error": {"message": f"scripted failure {reply.status}", "type": "server_error"}}, {}
        return reply.status, _shaped(handler.path, reply.text), {}


def _shaped(path: str, text: str) -> dict[str, Any]:
    """The provider's answer shape, chosen by path."""
    if path.endswith("/converse"):
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
        }
    if path.startswith("/bedrock"):
        return {"completion": text, "stop_reason": "stop_sequence"}
    if path.startswith("/cohere"):
        return {"text": text, "generation_id": "g-1", "finish_reason": "COMPLETE"}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


# ---- connectors for these endpoints (ML Commons blueprints' request bodies) ----------------------------------


def _connector(name: str, url: str, request_body: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "description": "local LLM for tests",
        "version": 1,
        "protocol": "http",
        "parameters": parameters,
        "credential": {"api_key": "sk-test"},
        "client_config": {"max_retry_times": 0},  # an LLM failure shows at once (the tests script them)
        "actions": [
            {
                "action_type": "predict",
                "method": "POST",
                "url": url,
                "headers": {"Authorization": "Bearer ${credential.api_key}"},
                "request_body": request_body,
            }
        ],
    }


def openai_chat(base: str) -> dict[str, Any]:
    body = '{ "model": "${parameters.model}", "messages": ${parameters.messages} }'
    return _connector("OpenAI chat", f"{base}/v1/chat/completions", body, {"model": "gpt-4o-mini"})


def bedrock_completion(base: str) -> dict[str, Any]:
    body = '{"prompt": "\\n\\nHuman: ${parameters.inputs}\\n\\nAssistant:", "max_tokens_to_sample": 300}'
    return _connector("Bedrock claude", f"{base}/bedrock/model/anthropic.claude-v2/invoke", body, {})


def bedrock_converse(base: str) -> dict[str, Any]:
    body = '{"system": [{"text": "${parameters.system_prompt}"}], "messages": ${parameters.messages}}'
    return _connector("Bedrock converse", f"{base}/model/anthropic.claude-3/converse", body, {"system_prompt": ""})


def cohere_chat(base: str) -> dict[str, Any]:
    body = '{"message": "${parameters.inputs}", "model": "command-r"}'
    return _connector("Cohere chat", f"{base}/cohere/v1/chat", body, {})


def prompts(server: LlmServer) -> Iterator[Any]:
    """The request bodies the server received, oldest first."""
    return (r["body"] for r in server.requests)
