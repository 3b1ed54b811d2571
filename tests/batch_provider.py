"""An OpenAI-like batch API on 127.0.0.1 for batch-predict tests: `POST …/v1/batches` creates a job (status
`validating`), each `GET …/v1/batches/{id}` moves it one step (validating → in_progress → finalizing → completed),
`POST …/v1/batches/{id}/cancel` makes it `cancelling`, then `cancelled` on the next GET. Paths may carry a prefix
(e.g. `/openai/v1/batches`) so that a connector URL can name the provider. Bearer auth, OpenAI's error bodies."""

from __future__ import annotations

import itertools
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fake_http import Answer, FakeHttpServer

KEY = "sk-batch-secret-456"
_STEPS = {
    "validating": "in_progress",
    "in_progress": "finalizing",
    "finalizing": "completed",
    "cancelling": "cancelled",
}


class BatchProvider(FakeHttpServer):
    """The fake batch API. `jobs` by id; `requests` records (method, path, body) of every call."""

    methods = ("POST", "GET")

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self.fail_next: list[int] = []  # statuses to answer with, before anything else
        self._ids = itertools.count(1)
        self.lock = threading.Lock()
        self.serve()

    def answer(self, handler: BaseHTTPRequestHandler, raw: bytes, body: Any) -> Answer:
        method = handler.command
        with self.lock:
            self.requests.append((method, handler.path, body))
            if self.fail_next:
                status = self.fail_next.pop(0)
                return status, _error(f"The server answered {status}", "server_error"), {}
            if handler.headers.get("Authorization") != f"Bearer {KEY}":
                return 401, _error("Incorrect API key provided", "invalid_request_error"), {}
            status, answer = self._route(method, handler.path.split("/v1/", 1)[-1], body)
        return status, answer, {}

    def _route(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if parts[0] != "batches":
            return 404, _error(f"Unknown request URL: {method} /v1/{path}", "invalid_request_error")
        if method == "POST" and len(parts) == 1:
            return self._create(body)
        job = self.jobs.get(parts[1]) if len(parts) > 1 else None
        if job is None:
            return 404, _error(
                f"No batch found with id '{parts[1] if len(parts) > 1 else ''}'.", "invalid_request_error"
            )
        if method == "GET" and len(parts) == 2:
            job["status"] = _STEPS.get(job["status"], job["status"])
            return 200, dict(job)
        if method == "POST" and parts[2:] == ["cancel"]:
            if job["status"] in ("completed", "failed", "expired", "cancelled"):
                return 409, _error(f"Cannot cancel a batch with status '{job['status']}'.", "invalid_request_error")
            job["status"] = "cancelling"
            return 200, dict(job)
        return 404, _error(f"Unknown request URL: {method} /v1/{path}", "invalid_request_error")

    def _create(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or not str(body.get("input_file_id", "")).startswith("file-"):
            return 400, _error("Invalid 'input_file_id'.", "invalid_request_error")
        now = int(time.time())
        job = {
            "id": f"batch_{next(self._ids):04d}",
            "object": "batch",
            "endpoint": body.get("endpoint"),
            "errors": None,
            "input_file_id": body["input_file_id"],
            "completion_window": body.get("completion_window", "24h"),
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "expires_at": now + 86400,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": None,
        }
        self.jobs[job["id"]] = job
        return 200, dict(job)


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}
