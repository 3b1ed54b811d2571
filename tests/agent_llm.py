"""A scripted LLM-like HTTP server for agent tests: OpenAI chat completions (`POST /v1/chat/completions`) and
Bedrock converse (`POST /model/{id}/converse`) shapes.

A test queues the answers in order: `say(text)`, `call(tool, input)` (a tool call in the path's own shape),
`status(code)` (an error answer), `hang(seconds)` (for timeouts), `raw(body)` (anything, e.g. a malformed call).
Every request body is kept in `requests`, so tests assert on prompts. An empty script answers 500."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fake_http import Answer, FakeHttpServer


class ScriptedLLM(FakeHttpServer):
    def __init__(self) -> None:
        self.script: list[tuple[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.serve()

    # ---- the script ---------------------------------------------------------------------------------------

    def say(self, text: str) -> ScriptedLLM:
        self.script.append(("say", text))
        return self

    def call(self, tool: str, tool_input: dict[str, Any], call_id: str = "call_1") -> ScriptedLLM:
        self.script.append(("call", (tool, tool_input, call_id)))
        return self

    def status(self, code: int) -> ScriptedLLM:
        self.script.append(("status", code))
        return self

    def hang(self, seconds: float) -> ScriptedLLM:
        self.script.append(("hang", seconds))
        return self

    def raw(self, body: Any) -> ScriptedLLM:
        self.script.append(("raw", body))
        return self

    def prompts(self) -> list[str]:
        """The text of every request's messages, one string per request."""
        return [json.dumps(r["body"]) for r in self.requests]

    # ---- answering ----------------------------------------------------------------------------------------

    def answer(self, handler: BaseHTTPRequestHandler, raw: bytes, body: Any) -> Answer:
        with self.lock:
            self.requests.append({"path": handler.path, "body": body})
            kind, arg = self.script.pop(0) if self.script else ("status", 500)
        converse = handler.path.endswith("/converse")
        if kind == "hang":
            time.sleep(arg)
            return 200, _converse_text("late") if converse else _openai_text("late"), {}
        if kind == "status":
            return arg, {"error": {"message": f"scripted failure {arg}", "type": "server_error"}}, {}
        if kind == "raw":
            return 200, arg, {}
        if kind == "say":
            return 200, _converse_text(arg) if converse else _openai_text(arg), {}
        return 200, _converse_call(*arg) if converse else _openai_call(*arg), {}


def _openai_text(text: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    return _openai(message, "stop")


def _openai_call(tool: str, tool_input: dict[str, Any], call_id: str) -> dict[str, Any]:
    call = {"id": call_id, "type": "function", "function": {"name": tool, "arguments": json.dumps(tool_input)}}
    return _openai({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls")


def _openai(message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "model": "gpt-scripted",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _converse_text(text: str) -> dict[str, Any]:
    return _converse([{"text": text}], "end_turn")


def _converse_call(tool: str, tool_input: dict[str, Any], call_id: str) -> dict[str, Any]:
    content = [{"text": "Let me look."}, {"toolUse": {"toolUseId": call_id, "name": tool, "input": tool_input}}]
    return _converse(content, "tool_use")


def _converse(content: list[dict[str, Any]], stop: str) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
    }
