"""Clean shutdown on SIGTERM / SIGINT: exit code 0, and what was written is there after a restart."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from tests.conftest import ServerProcess


def _client(server: ServerProcess) -> OpenSearch:
    return OpenSearch(hosts=[{"host": server.host, "port": server.port}], timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_keeps_unrefreshed_writes(tmp_path: Path, sig: int) -> None:
    server = ServerProcess(tmp_path).start()
    try:
        client = _client(server)
        client.indices.create(
            index="notes",
            body={"settings": {"index.refresh_interval": "-1"}, "mappings": {"properties": {"body": {"type": "text"}}}},
        )
        client.index(index="notes", id="1", body={"body": "written before the signal"})
        assert client.search(index="notes")["hits"]["total"]["value"] == 0  # not refreshed yet
    finally:
        assert server.stop(sig) == 0
    again = ServerProcess(tmp_path).start()
    try:
        client = _client(again)
        assert client.get(index="notes", id="1")["_source"] == {"body": "written before the signal"}
        hits = client.search(index="notes", body={"query": {"match": {"body": "signal"}}})["hits"]["hits"]
        assert [h["_id"] for h in hits] == ["1"]
        assert client.indices.get_settings(index="notes")["notes"]["settings"]["index"]["refresh_interval"] == "-1"
    finally:
        again.stop()
