"""Shared fixtures: a real mlsearch server process on a loopback port, and opensearch-py clients for it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import urllib3
from opensearchpy import OpenSearch

_LISTENING = re.compile(r"listening on http://([\d.]+):(\d+)")


@dataclass
class ServerProcess:
    """A `mlsearch serve` child process; `url` is set once it printed its port."""

    data_dir: Path
    proc: subprocess.Popen[str] | None = None
    host: str = "127.0.0.1"
    port: int = 0
    env: dict[str, str] | None = None  # extra environment, e.g. MLSEARCH_* settings

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(self.env or {}))
        src = str(Path(__file__).resolve().parents[1] / "src")
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlsearch",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--data-dir",
                str(self.data_dir),
                "--log-level",
                "warning",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited with {self.proc.wait()}")
            match = _LISTENING.search(line)
            if match:
                self.host, self.port = match.group(1), int(match.group(2))
                break
        else:
            raise RuntimeError("server did not print its port in time")
        self._drain()
        self.wait_ready(deadline)
        return self

    def _drain(self) -> None:
        import threading

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                sys.stderr.write(f"[server] {line}")

        threading.Thread(target=pump, daemon=True).start()

    def wait_ready(self, deadline: float) -> None:
        http = urllib3.PoolManager()
        while time.monotonic() < deadline:
            try:
                if http.request("GET", self.url + "/", timeout=1.0).status == 200:
                    return
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not answer in time")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("data")).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def client(server: ServerProcess) -> OpenSearch:
    return OpenSearch(hosts=[{"host": server.host, "port": server.port}], use_ssl=False, timeout=60)


@pytest.fixture
def index_name(request: pytest.FixtureRequest, client: OpenSearch) -> Iterator[str]:
    """A fresh index name per test, deleted afterwards."""
    name = re.sub(r"[^a-z0-9_-]", "-", request.node.name.lower())[:100]
    client.indices.delete(index=name, ignore_unavailable=True)
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture
def http(server: ServerProcess) -> RawHttp:
    return RawHttp(server.url)


class RawHttp:
    """curl-style requests, for what opensearch-py has no API for or to send raw bodies."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.pool = urllib3.PoolManager()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | dict | list | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, object]:
        import orjson

        if isinstance(body, dict | list):
            body = orjson.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        response = self.pool.request(
            method,
            self.base + path,
            body=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=60,
        )
        data = response.data
        try:
            parsed = orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            parsed = data.decode()
        return response.status, parsed


def assert_error(body: object, status: int, error_type: str, reason_part: str = "") -> None:
    """The OpenSearch error envelope, with the expected type and a reason containing `reason_part`."""
    assert isinstance(body, dict), body
    assert body["status"] == status, body
    error = body["error"]
    assert error["type"] == error_type, body
    assert error["root_cause"][0]["type"] == error_type, body
    assert reason_part in error["reason"], body
