"""Bulk indexing throughput on SciFact (5,183 abstracts): `_bulk` over HTTP vs bare tantivy, in one run.

Three ways to index the same documents with the same fields (title and text as analyzed text):
bare tantivy (the python `tantivy` package, one writer thread, stored fields, one commit at the end), mlsearch
in-process (`Index.write` in batches, then refresh) and mlsearch over HTTP (`_bulk` with one keep-alive client,
then `_refresh`). mlsearch also writes every document to its SQLite store and fsyncs each batch
(`index.translog.durability: request`). Best of a few repetitions.

    python bench/bulk.py [--quick]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import tantivy

from _common import Server, chunks, load_scifact, quick, table
from mlsearch.engine.index import DocOp
from mlsearch.engine.indices import Indices

BATCH = 500
MAPPINGS = {"properties": {"title": {"type": "text"}, "text": {"type": "text"}}}


def _standard() -> tantivy.TextAnalyzer:
    # The same chain as mlsearch's `standard` analyzer.
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(255))
        .filter(tantivy.Filter.lowercase())
        .build()
    )


def bare_tantivy(docs: list[dict[str, Any]], path: Path) -> float:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("_id", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("_key", stored=False, indexed=True, fast=True)
    builder.add_text_field("title", stored=True, tokenizer_name="std", index_option="position")
    builder.add_text_field("text", stored=True, tokenizer_name="std", index_option="position")
    index = tantivy.Index(builder.build(), path=str(path))
    index.register_tokenizer("std", _standard())
    started = time.perf_counter()
    writer = index.writer(64_000_000, 1)
    for key, doc in enumerate(docs):
        writer.add_document(tantivy.Document(_id=doc["_id"], _key=key, title=doc["title"], text=doc["text"]))
    writer.commit()
    index.reload()
    return time.perf_counter() - started


def in_process(docs: list[dict[str, Any]], path: Path) -> float:
    indices = Indices(path)
    index = indices.create("bulk", {"mappings": MAPPINGS})
    started = time.perf_counter()
    for batch in chunks(docs, BATCH):
        index.write([DocOp("index", d["_id"], {"title": d["title"], "text": d["text"]}) for d in batch])
    index.refresh()
    elapsed = time.perf_counter() - started
    indices.close()
    return elapsed


def over_http(docs: list[dict[str, Any]], path: Path) -> float:
    with Server(path) as server:
        client = server.client()
        client.check("PUT", "/bulk", {"mappings": MAPPINGS})
        started = time.perf_counter()
        for batch in chunks(docs, BATCH):
            client.bulk("bulk", [(d["_id"], {"title": d["title"], "text": d["text"]}) for d in batch])
        client.check("POST", "/bulk/_refresh")
        elapsed = time.perf_counter() - started
        count = client.check("GET", "/bulk/_count")["count"]
        if count != len(docs):
            raise RuntimeError(f"indexed {count} of {len(docs)} documents")
        return elapsed


def best_of(runs: int, fn: Any, docs: list[dict[str, Any]]) -> float:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            times.append(fn(docs, Path(tmp)))
    return min(times)


def main() -> None:
    docs = load_scifact().corpus
    runs = 1 if quick() else 3
    if quick():
        docs = docs[:2000]
    print(f"{len(docs)} SciFact documents, batches of {BATCH}, best of {runs}")
    bare = best_of(runs, bare_tantivy, docs)
    local = best_of(runs, in_process, docs)
    remote = best_of(runs, over_http, docs)
    rate = len(docs) / bare
    rows = [
        ("bare tantivy (baseline)", bare, rate, 1.0),
        ("mlsearch in-process Index.write", local, len(docs) / local, (len(docs) / local) / rate),
        ("mlsearch HTTP _bulk", remote, len(docs) / remote, (len(docs) / remote) / rate),
    ]
    table("Bulk indexing, SciFact", ("path", "seconds", "docs/s", "ratio to bare"), rows)


if __name__ == "__main__":
    main()
