"""Helpers shared by the benchmark scripts: a server launcher, a keep-alive HTTP client, SciFact, tables.

Nothing runs at import time; `python bench/_common.py` does nothing."""

from __future__ import annotations

import http.client
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
SCIFACT = Path(os.environ.get("MLSEARCH_SCIFACT", ROOT.parent / "shared" / "data" / "scifact"))
_LISTENING = re.compile(r"listening on http://([\d.]+):(\d+)")

if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))  # the scripts run from a checkout, without installing the package

from mlsearch.launcher import ServerProcess  # noqa: E402


def quick() -> bool:
    """Smaller sizes with `--quick` or MLSEARCH_BENCH_QUICK=1."""
    return "--quick" in sys.argv or os.environ.get("MLSEARCH_BENCH_QUICK") == "1"


# ---- a server process -----------------------------------------------------------------------------------------


class Server(ServerProcess):
    """The launcher, with a keep-alive client for the benchmark scripts."""

    def client(self) -> Client:
        return Client(self.host, self.port)


class Client:
    """One keep-alive HTTP/1.1 connection (http.client): the cheapest client Python has."""

    def __init__(self, host: str, port: int) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=300)

    def request_raw(
        self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type} if body is not None else {}
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        payload = None if body is None else orjson.dumps(body)
        status, data = self.request_raw(method, path, payload)
        return status, orjson.loads(data) if data else None

    def check(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.request(method, path, body)
        if status >= 300:
            raise RuntimeError(f"{method} {path} -> {status}: {str(data)[:500]}")
        return data

    def bulk(self, index: str, docs: Iterable[tuple[str, dict[str, Any]]], refresh: bool = False) -> None:
        body = b"".join(orjson.dumps({"index": {"_index": index, "_id": i}}) + b"\n" + orjson.dumps(d) + b"\n"
                        for i, d in docs)  # fmt: skip
        path = "/_bulk?refresh=true" if refresh else "/_bulk"
        status, data = self.request_raw("POST", path, body, "application/x-ndjson")
        result = orjson.loads(data)
        if status != 200 or result.get("errors"):
            raise RuntimeError(f"bulk failed: {str(result)[:500]}")


# ---- SciFact ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SciFact:
    corpus: list[dict[str, str]]  # {"_id", "title", "text"}
    queries: dict[str, str]  # test queries only: id -> text
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> grade


def load_scifact(root: Path = SCIFACT) -> SciFact:
    corpus = [json.loads(line) for line in (root / "corpus.jsonl").read_text().splitlines() if line.strip()]
    qrels: dict[str, dict[str, int]] = {}
    for line in (root / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, did, grade = line.split("\t")
        qrels.setdefault(qid, {})[did] = int(grade)
    queries = {}
    for line in (root / "queries.jsonl").read_text().splitlines():
        if line.strip():
            q = json.loads(line)
            if q["_id"] in qrels:
                queries[q["_id"]] = q["text"]
    return SciFact(corpus, queries, qrels)


# ---- measuring and printing ---------------------------------------------------------------------------------------


def percentiles(samples_s: Sequence[float]) -> tuple[float, float, float]:
    """p50, p99 and mean, in milliseconds."""
    ms = np.asarray(samples_s) * 1000.0
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.mean())


def table(title: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    cells = [[str(h) for h in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
