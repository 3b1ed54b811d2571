"""Hybrid query latency over HTTP against its parts run separately (target: hybrid p50 <= 1.1 x the sum).

Data: 20k synthetic documents (5k with --quick): 12-word texts over a 2,000-word Zipf vocabulary and 64-d Gaussian
vectors (l2). Each query is a 2-word `match` and a `knn` (k 10) with a random vector; the hybrid query runs both as
sub-queries (size 10, min_max + arithmetic_mean pipeline). One keep-alive client; the three requests are interleaved
per query so drift hits all three alike.

    python bench/hybrid.py [--quick]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import Client, Server, chunks, percentiles, quick, table

INDEX = "hybrid"
DIM = 64
SEED = 7
PIPELINE = {
    "phase_results_processors": [
        {
            "normalization-processor": {
                "normalization": {"technique": "min_max"},
                "combination": {"technique": "arithmetic_mean", "parameters": {"weights": [0.3, 0.7]}},
            }
        }
    ]
}


def documents(n: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    vocab = [f"w{i}" for i in range(2000)]
    ranks = np.minimum(rng.zipf(1.3, size=(n, 12)), len(vocab)) - 1
    texts = [" ".join(vocab[r] for r in row) for row in ranks]
    return texts, rng.normal(size=(n, DIM)).astype(np.float32)


def load(client: Client, texts: list[str], vectors: np.ndarray) -> None:
    client.check(
        "PUT",
        f"/{INDEX}",
        {
            "settings": {"index.knn": True},
            "mappings": {
                "properties": {
                    "text": {"type": "text"},
                    "vec": {"type": "knn_vector", "dimension": DIM, "space_type": "l2"},
                }
            },
        },
    )
    rows = [(str(i), {"text": t, "vec": v}) for i, (t, v) in enumerate(zip(texts, vectors.tolist(), strict=True))]
    for part in chunks(rows, 2000):
        client.bulk(INDEX, part)
    client.check("POST", f"/{INDEX}/_refresh")
    client.check("PUT", "/_search/pipeline/bench-hybrid", PIPELINE)


def timed(client: Client, path: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    client.check("POST", path, body)
    return time.perf_counter() - started


def main() -> None:
    n, n_queries = (5000, 200) if quick() else (20000, 500)
    rng = np.random.default_rng(SEED)
    texts, vectors = documents(n, rng)
    with tempfile.TemporaryDirectory() as tmp, Server(Path(tmp) / "data") as server:
        client = server.client()
        load(client, texts, vectors)
        samples: dict[str, list[float]] = {"match": [], "knn": [], "hybrid": []}
        for q in range(n_queries + 50):
            words = " ".join(f"w{int(i)}" for i in rng.integers(0, 200, 2))
            match = {"match": {"text": words}}
            knn = {"knn": {"vec": {"vector": rng.normal(size=DIM).round(5).tolist(), "k": 10}}}
            times = {
                "match": timed(client, f"/{INDEX}/_search", {"query": match, "_source": False}),
                "knn": timed(client, f"/{INDEX}/_search", {"query": knn, "_source": False}),
                "hybrid": timed(
                    client,
                    f"/{INDEX}/_search?search_pipeline=bench-hybrid",
                    {"query": {"hybrid": {"queries": [match, knn]}}, "_source": False},
                ),
            }
            if q >= 50:  # warm-up
                for name, value in times.items():
                    samples[name].append(value)
    stats = {name: percentiles(values) for name, values in samples.items()}
    parts = stats["match"][0] + stats["knn"][0]
    rows = [(name, f"{p50:.2f}", f"{p99:.2f}", f"{mean:.2f}") for name, (p50, p99, mean) in stats.items()]
    rows.append(("match + knn (sum of p50s)", f"{parts:.2f}", "", ""))
    table(f"hybrid over HTTP, {n} docs, {n_queries} queries (ms)", ["request", "p50", "p99", "mean"], rows)
    print(f"\nhybrid p50 / (match p50 + knn p50) = {stats['hybrid'][0] / parts:.2f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
