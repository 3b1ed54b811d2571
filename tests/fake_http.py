"""The part every fake HTTP service in the tests shares: a ThreadingHTTPServer on 127.0.0.1 (port 0, read back) in a
daemon thread, quiet logs, the JSON request body read, a JSON answer sent, and a lock-guarded `requests` record.

A subclass sets `methods`, calls `serve()` once its own state exists, and implements `answer(handler, raw, body)`
returning (status, JSON body, extra headers)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

Answer = tuple[int, Any, dict[str, str]]


class FakeHttpServer:
    """Base of the fake providers. Subclasses own `requests` and `lock` (dataclass fields or set in `__init__`)."""

    methods: ClassVar[tuple[str, ...]] = ("POST",)
    requests: list[Any]
    lock: threading.Lock
    server: ThreadingHTTPServer

    def serve(self) -> None:
        """Start answering on an ephemeral port, in a daemon thread (one thread per connection)."""
        owner = self

        def dispatch(handler: BaseHTTPRequestHandler) -> None:
            owner._dispatch(handler)

        # Only the named methods are routed; others keep BaseHTTPRequestHandler's 501.
        handler = type("Handler", (_QuietHandler,), {f"do_{method}": dispatch for method in self.methods})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def record(self, entry: Any) -> None:
        with self.lock:
            self.requests.append(entry)

    def answer(self, handler: BaseHTTPRequestHandler, raw: bytes, body: Any) -> Answer:
        raise NotImplementedError

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        raw, body = read_body(handler)
        status, payload, headers = self.answer(handler, raw, body)
        send_json(handler, status, payload, headers)


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

    def log_message(self, *args: Any) -> None:
        pass


def read_body(handler: BaseHTTPRequestHandler) -> tuple[bytes, Any]:
    """The raw request body and its JSON (None when empty, the text when it is not JSON)."""
    length = int(handler.headers.get("content-length") or 0)
    raw = handler.rfile.read(length) if length else b""
    if not raw.strip():
        return raw, None
    try:
        return raw, json.loads(raw)
    except json.JSONDecodeError:
        return raw, raw.decode()


def send_json(handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up waiting (timeout tests)
