"""The lexical projection is rebuilt from the store when missing or damaged, and catches up when behind.

Each scenario records search results, breaks the projection on disk while the server is down, restarts it and
expects the very same hits and scores (the store is the source of truth; the projection is derived)."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from mlsearch.engine.lexical import verify_segments
from tests.conftest import RawHttp, ServerProcess

INDEX = "proj"
WORDS = [
    "protein",
    "cell",
    "gene",
    "tumor",
    "brain",
    "immune",
    "virus",
    "signal",
    "receptor",
    "dose",
    "patient",
    "trial",
    "mouse",
    "blood",
    "heart",
    "memory",
    "sleep",
    "insulin",
    "liver",
    "kidney",
]
QUERIES: list[dict[str, Any]] = [
    {"query": {"match": {"title": "protein gene"}}},
    {"query": {"match": {"body": "tumor immune signal"}}, "size": 20},
    {"query": {"multi_match": {"query": "brain memory sleep", "fields": ["title", "body"]}}},
    {"query": {"bool": {"must": [{"match": {"body": "patient"}}], "filter": [{"term": {"tag": "t3"}}]}}},
    {"query": {"range": {"n": {"gte": 10, "lt": 40}}}, "sort": [{"n": "desc"}], "size": 5},
    {"query": {"match_phrase": {"body": "blood heart"}}},
]


def _doc(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "title": " ".join(rng.choices(WORDS, k=rng.randint(2, 5))),
        "body": " ".join(rng.choices(WORDS, k=rng.randint(10, 40))),
        "tag": f"t{i % 7}",
        "n": i,
    }


def _bulk(http: RawHttp, docs: dict[str, dict[str, Any] | None], refresh: bool = False) -> None:
    lines = []
    for doc_id, source in docs.items():
        if source is None:
            lines.append({"delete": {"_index": INDEX, "_id": doc_id}})
        else:
            lines += [{"index": {"_index": INDEX, "_id": doc_id}}, source]
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    status, result = http.request(
        "POST",
        f"/_bulk?refresh={'true' if refresh else 'false'}",
        body,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert status == 200 and not result["errors"], result


def _results(http: RawHttp) -> list[tuple[int, list[tuple[str, Any, Any]]]]:
    out = []
    for query in QUERIES:
        status, body = http.request("POST", f"/{INDEX}/_search", {**query, "track_total_hits": True})
        assert status == 200, body
        hits = [(h["_id"], h["_score"], h.get("sort")) for h in body["hits"]["hits"]]
        out.append((body["hits"]["total"]["value"], hits))
    return out


def _lexical_dir(data: Path, http: RawHttp) -> Path:
    status, body = http.request("GET", f"/{INDEX}/_settings")
    assert status == 200, body
    return data / "indices" / body[INDEX]["settings"]["index"]["uuid"] / "lexical"


@pytest.fixture
def loaded(tmp_path: Path) -> Iterator[tuple[Path, ServerProcess, Path]]:
    """A server with 300 documents in three refreshed segments."""
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        http = RawHttp(server.url)
        status, body = http.request(
            "PUT",
            f"/{INDEX}",
            {
                "mappings": {
                    "properties": {
                        "title": {"type": "text"},
                        "body": {"type": "text"},
                        "tag": {"type": "keyword"},
                        "n": {"type": "integer"},
                    }
                }
            },
        )
        assert status == 200, body
        rng = random.Random(7)
        for batch in range(3):
            _bulk(http, {str(i): _doc(rng, i) for i in range(batch * 100, batch * 100 + 100)}, refresh=True)
        lexical = _lexical_dir(data, http)
        yield data, server, lexical
    finally:
        server.stop()


def _restart(data: Path, server: ServerProcess) -> tuple[ServerProcess, RawHttp]:
    server.stop()
    server = ServerProcess(data).start()
    return server, RawHttp(server.url)


def test_missing_projection_is_rebuilt_with_same_hits_and_scores(loaded: tuple[Path, ServerProcess, Path]) -> None:
    data, server, lexical = loaded
    before = _results(RawHttp(server.url))
    assert all(total > 0 for total, _ in before)
    server.stop()
    shutil.rmtree(lexical)
    server, http = _restart(data, server)
    try:
        assert _results(http) == before
        assert lexical.is_dir()
        for generation in lexical.iterdir():
            verify_segments(generation)
    finally:
        server.stop()


def _garble_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for k in range(len(data) // 4, len(data) // 2):
        data[k] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _segment_files(generation: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return [p for p in generation.iterdir() if p.suffix in suffixes]


DAMAGE: dict[str, Callable[[Path], None]] = {
    # Damage inside a file, footer intact: tantivy would open it and panic mid-search without our checksum pass.
    "garbled postings": lambda g: [_garble_middle(p) for p in _segment_files(g, (".idx", ".pos", ".term"))],
    "truncated segments": lambda g: [_truncate(p) for p in _segment_files(g, (".store", ".fast", ".fieldnorm"))],
    "garbled meta.json": lambda g: (g / "meta.json").write_text("{oops"),
    "garbled checkpoint": lambda g: (g / "checkpoint.json").write_bytes(b"\x00\x01garbage"),
    "missing segment file": lambda g: _segment_files(g, (".term",))[0].unlink(),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_projection_is_rebuilt(loaded: tuple[Path, ServerProcess, Path], damage: str) -> None:
    data, server, lexical = loaded
    before = _results(RawHttp(server.url))
    server.stop()
    (generation,) = list(lexical.iterdir())
    DAMAGE[damage](generation)
    server, http = _restart(data, server)
    try:
        assert _results(http) == before
        for generation in lexical.iterdir():
            verify_segments(generation)
        status, counted = http.request("GET", f"/{INDEX}/_count")
        assert status == 200 and counted["count"] == 300
    finally:
        server.stop()


def test_checkpoint_behind_catches_up_from_the_ops_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data).start()
    try:
        http = RawHttp(server.url)
        status, body = http.request(
            "PUT",
            f"/{INDEX}",
            {
                "settings": {"index": {"refresh_interval": "-1"}},
                "mappings": {
                    "properties": {
                        "title": {"type": "text"},
                        "body": {"type": "text"},
                        "tag": {"type": "keyword"},
                        "n": {"type": "integer"},
                    }
                },
            },
        )
        assert status == 200, body
        rng = random.Random(11)
        _bulk(http, {str(i): _doc(rng, i) for i in range(100)}, refresh=True)
        later = {f"late-{i}": {"title": "latecomer", "body": "zebra", "tag": "late", "n": 1000 + i} for i in range(40)}
        later["0"] = {"title": "rewritten", "body": "zebra", "tag": "late", "n": 0}
        later["1"] = None
        _bulk(http, later)
        # Not refreshed: the projection's checkpoint is behind the store.
        status, found = http.request("POST", f"/{INDEX}/_search", {"query": {"match": {"body": "zebra"}}})
        assert status == 200 and found["hits"]["total"]["value"] == 0, found
        server.kill()
        server = ServerProcess(data).start()
        http = RawHttp(server.url)
        status, found = http.request(
            "POST", f"/{INDEX}/_search", {"query": {"match": {"body": "zebra"}}, "size": 100, "_source": ["title"]}
        )
        assert status == 200, found
        hits = {h["_id"]: h["_source"]["title"] for h in found["hits"]["hits"]}
        assert set(hits) == {f"late-{i}" for i in range(40)} | {"0"}
        assert hits["0"] == "rewritten"
        status, found = http.request("POST", f"/{INDEX}/_search", {"query": {"ids": {"values": ["1"]}}})
        assert status == 200 and found["hits"]["total"]["value"] == 0, found
        status, found = http.request("POST", f"/{INDEX}/_search", {"query": {"term": {"tag": "late"}}, "size": 0})
        assert found["hits"]["total"]["value"] == 41
        status, counted = http.request("GET", f"/{INDEX}/_count")
        assert counted["count"] == 100 + 40 - 1
    finally:
        server.stop()
