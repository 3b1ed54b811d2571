"""BM25 query latency on 100k synthetic documents: mlsearch in-process and over HTTP vs bare tantivy.

Documents are drawn from a seeded vocabulary with a Zipf-like word distribution. Queries are 2-term `match`
queries on mid-frequency words, fetching the top 10 with `_source`. Three paths, same queries, one run:
(a) `mlsearch.engine.search.execute` in-process, (b) `_search` over HTTP with one keep-alive client,
(c) bare tantivy: the same term query, top 10, and the 10 stored documents read back.

    python bench/search.py [--quick] [--profile]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import tantivy

from _common import Server, chunks, percentiles, quick, table
from mlsearch.engine.index import DocOp
from mlsearch.engine.indices import Indices
from mlsearch.engine.search import execute, parse_request

INDEX = "synth"
SEED = 42
VOCABULARY = 30_000
MAPPINGS = {"properties": {"body": {"type": "text"}, "n": {"type": "integer"}}}


def vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words: set[str] = set()
    while len(words) < size:
        length = int(rng.integers(3, 11))
        words.add("".join(rng.choice(letters, length)))
    return sorted(words, key=lambda w: (len(w), w))  # rank order: short words are the frequent ones


def documents(n: int) -> tuple[list[str], list[str]]:
    """`n` document bodies and the vocabulary, deterministic for SEED."""
    rng = np.random.default_rng(SEED)
    words = vocabulary(rng, VOCABULARY)
    ranks = np.arange(1, VOCABULARY + 1, dtype=np.float64)
    weights = 1.0 / ranks**1.07
    lengths = rng.integers(20, 120, size=n)
    tokens = rng.choice(VOCABULARY, size=int(lengths.sum()), p=weights / weights.sum())
    table_ = np.array(words, dtype=object)
    bodies, start = [], 0
    for length in lengths:
        bodies.append(" ".join(table_[tokens[start : start + length]]))
        start += length
    return bodies, words


def queries(words: list[str], count: int) -> list[str]:
    rng = np.random.default_rng(SEED + 1)
    picks = rng.integers(100, 5000, size=(count, 2))
    return [f"{words[a]} {words[b]}" for a, b in picks]


def build_mlsearch(path: Path, bodies: list[str]) -> None:
    indices = Indices(path)
    index = indices.create(INDEX, {"settings": {"index.translog.durability": "async"}, "mappings": MAPPINGS})
    for batch_no, batch in enumerate(chunks(bodies, 5000)):
        base = batch_no * 5000
        index.write([DocOp("index", str(base + i), {"body": b, "n": base + i}) for i, b in enumerate(batch)])
    index.refresh()
    indices.close()


def build_tantivy(path: Path, bodies: list[str]) -> tantivy.Index:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("_id", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("body", stored=True, tokenizer_name="std", index_option="position")
    builder.add_integer_field("n", stored=True, indexed=True, fast=True)
    index = tantivy.Index(builder.build(), path=str(path))
    index.register_tokenizer("std", _standard())
    writer = index.writer(64_000_000, 1)
    for i, body in enumerate(bodies):
        writer.add_document(tantivy.Document(_id=str(i), body=body, n=i))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    return index


def _standard() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(255))
        .filter(tantivy.Filter.lowercase())
        .build()
    )


def timed(run: Callable[[str], Any], texts: list[str], warmup: int) -> list[float]:
    for text in texts[:warmup]:
        run(text)
    samples = []
    for text in texts:
        started = time.perf_counter()
        run(text)
        samples.append(time.perf_counter() - started)
    return samples


def bare_runner(index: tantivy.Index) -> Callable[[str], Any]:
    schema, searcher, analyzer = index.schema, index.searcher(), _standard()

    def run(text: str) -> list[dict[str, Any]]:
        terms = [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", t)) for t in analyzer.analyze(text)]
        result = searcher.search(tantivy.Query.boolean_query(terms), 10)
        return [searcher.doc(addr).to_dict() for _, addr in result.hits]

    return run


def inprocess_runner(path: Path) -> tuple[Indices, Callable[[str], Any]]:
    indices = Indices(path)
    indices.open_all()
    index = indices.get(INDEX)

    def run(text: str) -> dict[str, Any]:
        return execute([index], parse_request({"query": {"match": {"body": text}}, "size": 10}))

    return indices, run


def http_runner(server: Server) -> Callable[[str], Any]:
    client = server.client()

    def run(text: str) -> bytes:
        body = orjson.dumps({"query": {"match": {"body": text}}, "size": 10})
        status, data = client.request_raw("POST", f"/{INDEX}/_search", body)
        if status != 200:
            raise RuntimeError(data[:300])
        return data

    return run


def check_same_hits(a: Callable[[str], Any], b: Callable[[str], Any], texts: list[str]) -> None:
    for text in texts:
        ours = [h["_id"] for h in a(text)["hits"]["hits"]]
        theirs = [d["_id"][0] for d in b(text)]
        if sorted(ours) != sorted(theirs):
            print(f"warning: different top 10 for {text!r}: {ours} vs {theirs}")


def profile(run: Callable[[str], Any], texts: list[str]) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for text in texts:
        run(text)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def main() -> None:
    n_docs, n_queries = (20_000, 500) if quick() else (100_000, 2000)
    started = time.perf_counter()
    bodies, words = documents(n_docs)
    texts = queries(words, n_queries)
    print(
        f"{n_docs} documents ({sum(len(b) for b in bodies) / 1e6:.1f} MB of text), {n_queries} 2-term queries; "
        f"generated in {time.perf_counter() - started:.1f} s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "bare").mkdir()
        t0 = time.perf_counter()
        bare = bare_runner(build_tantivy(root / "bare", bodies))
        t1 = time.perf_counter()
        build_mlsearch(root / "ml", bodies)
        t2 = time.perf_counter()
        print(f"indexed: bare tantivy {t1 - t0:.1f} s, mlsearch in-process {t2 - t1:.1f} s")
        indices, local = inprocess_runner(root / "ml")
        check_same_hits(local, bare, texts[:50])
        bare_samples = timed(bare, texts, 200)
        local_samples = timed(local, texts, 200)
        if "--profile" in sys.argv:
            profile(local, texts[:500])
        indices.close()
        with Server(root / "ml") as server:
            remote_samples = timed(http_runner(server), texts, 200)
    bare_p = percentiles(bare_samples)
    rows = []
    for name, samples in (
        ("bare tantivy (baseline)", bare_samples),
        ("mlsearch in-process execute", local_samples),
        ("mlsearch HTTP _search, 1 client", remote_samples),
    ):
        p50, p99, mean = percentiles(samples)
        rows.append((name, p50, p99, mean, p50 / bare_p[0], p99 / bare_p[1]))
    table("BM25 2-term match, top 10 with _source (ms)", ("path", "p50", "p99", "mean", "p50 ratio", "p99 ratio"), rows)
    in_ratio, http_p50 = rows[1][4], rows[2][1]
    print(
        f"\nin-process / bare p50: {in_ratio:.2f}x (target <= 2x: {'met' if in_ratio <= 2 else 'NOT met'}); "
        f"HTTP p50 {http_p50:.2f} ms (target <= 3 ms: {'met' if http_p50 <= 3 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
