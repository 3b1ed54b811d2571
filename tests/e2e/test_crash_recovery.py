"""Crash recovery: `kill -9` while `_bulk` requests stream in loses nothing that was acknowledged.

A writer thread sends batches of new documents, updates and deletes, and keeps a model of every acknowledged
item; the server is killed at a random moment, restarted on the same data directory, and every acknowledged
document must come back with its acknowledged `_source` and `_version` (deleted ones stay gone), through GET,
`_count` and a `match` search. The one batch in flight when the server died may or may not have landed."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import urllib3

from tests.conftest import RawHttp, ServerProcess

INDEX = "crashy"
BATCH_NEW = 50
BATCH_UPDATES = 5
BATCH_DELETES = 5
MAX_BATCHES = 60  # per cycle: bounds the verification work whatever the machine's speed


@dataclass(frozen=True, slots=True)
class Ack:
    """The acknowledged state of one document: its source and version, or None for deleted."""

    source: dict[str, Any] | None
    version: int


@dataclass
class Model:
    """Everything the writer sent, and what the server acknowledged."""

    acked: dict[str, Ack] = field(default_factory=dict)
    sent: set[str] = field(default_factory=set)
    # The batch whose response never came: id -> the state it would leave (None source = deleted).
    in_flight: dict[str, Ack] = field(default_factory=dict)
    batches: int = 0

    def live_ids(self) -> list[str]:
        return [doc_id for doc_id, ack in self.acked.items() if ack.source is not None]


class Writer(threading.Thread):
    """Loops `_bulk` requests until the server stops answering (or MAX_BATCHES)."""

    def __init__(self, url: str, model: Model, rng: random.Random, cycle: int) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.model = model
        self.rng = rng
        self.cycle = cycle
        self.pool = urllib3.PoolManager(retries=False)
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            for batch in range(MAX_BATCHES):
                if not self._send(self._plan(batch)):
                    return
        except BaseException as exc:  # reported by the test thread
            self.failure = exc

    def _plan(self, batch: int) -> list[tuple[str, str, dict[str, Any] | None]]:
        ops: list[tuple[str, str, dict[str, Any] | None]] = []
        for i in range(BATCH_NEW):
            doc_id = f"c{self.cycle}-b{batch}-{i}"
            ops.append(("index", doc_id, {"body": f"alpha common words tok{self.cycle}x{batch}x{i}", "n": i}))
        live = self.model.live_ids()
        chosen = self.rng.sample(live, min(len(live), BATCH_UPDATES + BATCH_DELETES))
        for doc_id in chosen[:BATCH_UPDATES]:
            ops.append(("index", doc_id, {"body": f"alpha updated text for {doc_id}", "n": -batch}))
        for doc_id in chosen[BATCH_UPDATES:]:
            ops.append(("delete", doc_id, None))
        return ops

    def _send(self, ops: list[tuple[str, str, dict[str, Any] | None]]) -> bool:
        lines = []
        for action, doc_id, source in ops:
            lines.append(orjson.dumps({action: {"_index": INDEX, "_id": doc_id}}))
            if source is not None:
                lines.append(orjson.dumps(source))
        body = b"\n".join(lines) + b"\n"
        self.model.sent.update(doc_id for _, doc_id, _ in ops)
        self.model.in_flight = {doc_id: Ack(src, self._version_after(doc_id)) for _, doc_id, src in ops}
        try:
            response = self.pool.request(
                "POST", self.url + "/_bulk", body=body, headers={"Content-Type": "application/x-ndjson"}, timeout=30
            )
        except urllib3.exceptions.HTTPError:
            return False  # the server died under us: this batch stays in flight
        if response.status != 200:
            return False
        self._record(ops, orjson.loads(response.data)["items"])
        return True

    def _version_after(self, doc_id: str) -> int:
        ack = self.model.acked.get(doc_id)
        return 1 if ack is None else ack.version + 1

    def _record(self, ops: list[tuple[str, str, dict[str, Any] | None]], items: list[dict[str, Any]]) -> None:
        assert len(items) == len(ops)
        for (action, doc_id, source), item in zip(ops, items, strict=True):
            result = item[action]
            assert result["_id"] == doc_id
            assert result["status"] in (200, 201), result
            self.model.acked[doc_id] = Ack(source, result["_version"])
        self.model.in_flight = {}
        self.model.batches += 1


def _create_index(http: RawHttp) -> None:
    status, body = http.request(
        "PUT", f"/{INDEX}", {"mappings": {"properties": {"body": {"type": "text"}, "n": {"type": "integer"}}}}
    )
    assert status == 200, body


def _run_and_kill(server: ServerProcess, model: Model, rng: random.Random, cycle: int) -> None:
    writer = Writer(server.url, model, rng, cycle)
    writer.start()
    time.sleep(rng.uniform(0.5, 2.0))  # the crash moment is the scenario, not a readiness wait
    server.kill()
    writer.join(timeout=30)
    assert not writer.is_alive()
    assert writer.failure is None, writer.failure
    assert model.batches > 0, "no batch was acknowledged before the kill"


def _mget(http: RawHttp, ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 1000):
        status, body = http.request("POST", f"/{INDEX}/_mget", {"ids": ids[start : start + 1000]})
        assert status == 200, body
        for doc in body["docs"]:
            found[doc["_id"]] = doc
    return found


def _verify(http: RawHttp, model: Model) -> None:
    docs = _mget(http, sorted(model.sent))
    for doc_id, ack in model.acked.items():
        states = [ack] + ([model.in_flight[doc_id]] if doc_id in model.in_flight else [])
        doc = docs[doc_id]
        got = Ack(doc["_source"], doc["_version"]) if doc["found"] else None
        allowed = [s if s.source is not None else None for s in states]
        if got is None:
            assert None in allowed, f"acknowledged document {doc_id} is missing"
        else:
            assert any(a is not None and a.source == got.source and a.version == got.version for a in allowed), (
                doc_id,
                got,
                states,
            )
    new_in_flight = [i for i in model.in_flight if i not in model.acked]
    for doc_id in new_in_flight:
        doc = docs[doc_id]
        if doc["found"]:
            assert doc["_source"] == model.in_flight[doc_id].source and doc["_version"] == 1

    live = len(model.live_ids())
    deleted_in_flight = sum(
        1
        for i, s in model.in_flight.items()
        if s.source is None and i in model.acked and model.acked[i].source is not None
    )
    status, counted = http.request("GET", f"/{INDEX}/_count")
    assert status == 200
    assert live - deleted_in_flight <= counted["count"] <= live + len(new_in_flight), (counted, live)

    status, _ = http.request("POST", f"/{INDEX}/_refresh")
    assert status == 200
    status, found = http.request(
        "POST",
        f"/{INDEX}/_search",
        {"query": {"match": {"body": "alpha"}}, "size": 10000, "_source": False, "track_total_hits": True},
    )
    assert status == 200, found
    hit_ids = {h["_id"] for h in found["hits"]["hits"]}
    assert found["hits"]["total"]["value"] == counted["count"] == len(hit_ids)
    assert hit_ids <= model.sent, "a document nobody sent came back"
    assert hit_ids == {i for i, d in docs.items() if d["found"]}, "search and GET disagree"


def _settle_in_flight(http: RawHttp, model: Model) -> None:
    """Whatever of the in-flight batch survived becomes the acknowledged state for the next cycle."""
    for doc_id, doc in _mget(http, sorted(model.in_flight)).items():
        if doc["found"]:
            model.acked[doc_id] = Ack(doc["_source"], doc["_version"])
        elif doc_id in model.acked:
            model.acked[doc_id] = Ack(None, model.in_flight[doc_id].version)
    model.in_flight = {}


def test_kill_9_during_bulk_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(20240611)
    model = Model()
    server = ServerProcess(tmp_path / "data").start()
    try:
        _create_index(RawHttp(server.url))
        for cycle in range(2):
            _run_and_kill(server, model, rng, cycle)
            server = ServerProcess(tmp_path / "data").start()
            _verify(RawHttp(server.url), model)
            _settle_in_flight(RawHttp(server.url), model)
    finally:
        server.stop()


def test_settings_and_mappings_survive_kill_9(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        http = RawHttp(server.url)
        status, body = http.request(
            "PUT",
            "/kept",
            {
                "settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "5s"}},
                "mappings": {
                    "properties": {
                        "title": {"type": "text", "analyzer": "english"},
                        "tag": {"type": "keyword"},
                        "when": {"type": "date"},
                    }
                },
                "aliases": {"kept-alias": {}},
            },
        )
        assert status == 200, body
        status, body = http.request("PUT", "/kept/_mapping", {"properties": {"score": {"type": "float"}}})
        assert status == 200, body
        status, body = http.request("PUT", "/kept/_settings", {"index": {"refresh_interval": "-1"}})
        assert status == 200, body
        status, body = http.request("PUT", "/kept/_doc/1?refresh=true", {"title": "Running dogs", "tag": "a"})
        assert status == 201, body
        before = {path: http.request("GET", path)[1] for path in ("/kept/_mapping", "/kept/_settings", "/kept")}
        server.kill()
        server = ServerProcess(tmp_path / "data").start()
        http = RawHttp(server.url)
        after = {path: http.request("GET", path)[1] for path in before}
        assert after == before
        props = after["/kept/_mapping"]["kept"]["mappings"]["properties"]
        assert props["score"] == {"type": "float"} and props["title"]["analyzer"] == "english"
        assert after["/kept/_settings"]["kept"]["settings"]["index"]["refresh_interval"] == "-1"
        # The english analyzer still applies after the restart: "run" matches the stemmed "Running".
        status, found = http.request("POST", "/kept-alias/_search", {"query": {"match": {"title": "run"}}})
        assert status == 200 and [h["_id"] for h in found["hits"]["hits"]] == ["1"], found
    finally:
        server.stop()
