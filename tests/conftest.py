"""Shared fixtures: a real mlsearch server process on a loopback port, and opensearch-py clients for it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import urllib3
from opensearchpy import OpenSearch

from mlsearch.launcher import ServerProcess

__all__ = ["RawHttp", "ServerProcess", "assert_error"]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("data")).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def client(server: ServerProcess) -> OpenSearch:
    return OpenSearch(hosts=[{"host": server.host, "port": server.port}], use_ssl=False, timeout=60)


@pytest.fixture(scope="module", autouse=True)
def no_leaked_models(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a module that leaves more models deployed on the shared server than it found.

    The shared server caps deployed models (plugins.ml_commons.max_model_on_node, 10 by default), so a module that
    leaks deployments makes a later module's deploy fail far from the cause. Autouse fixtures of a scope are set up
    first and torn down last, so the module's own fixtures have undeployed by the time this counts again."""
    if not _module_uses_server(request):
        yield
        return
    http = RawHttp(request.getfixturevalue("server").url)
    before = _deployed_models(http)
    yield
    leaked = _deployed_models(http) - before
    assert not leaked, f"{request.node.nodeid} left models deployed: {sorted(leaked)}; undeploy and delete them"


@pytest.fixture(scope="module")
def remove_deployed_models(server: ServerProcess) -> Iterator[None]:
    """Undeploys and deletes, at module end, the models deployed during the module.

    For modules whose remote models deploy themselves on first predict, so no single fixture owns them."""
    http = RawHttp(server.url)
    before = _deployed_models(http)
    yield
    for model_id in sorted(_deployed_models(http) - before):
        # A test may already have removed it: 404s are fine; a failed undeploy shows in no_leaked_models.
        http.request("POST", f"/_plugins/_ml/models/{model_id}/_undeploy")
        http.request("DELETE", f"/_plugins/_ml/models/{model_id}")


def _module_uses_server(request: pytest.FixtureRequest) -> bool:
    return any(
        "server" in getattr(item, "fixturenames", ()) for item in request.session.items if item.module is request.module
    )


def _deployed_models(http: RawHttp) -> set[str]:
    status, body = http.request("GET", "/_plugins/_ml/profile/models")
    assert status == 200, body
    assert isinstance(body, dict), body
    return {model_id for node in body.get("nodes", {}).values() for model_id in node.get("models", {})}


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
