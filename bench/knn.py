"""k-NN: recall@10 and QPS of HNSW search, mlsearch (in-process and over HTTP) against bare faiss.

Data: a seeded Gaussian mixture (clustered, like real embeddings; not uniform noise), 100k x 384 float32 (20k
with --quick), HNSW M=16, ef_construction=100, l2. For ef_search in 16..256: recall@10 against exact search and
single-query QPS for bare faiss (same parameters, queried one at a time from Python), mlsearch's
`engine.search.execute` in-process (knn query, size 10, `_source` excluded), and `_search` over HTTP with one
keep-alive client and with 8 concurrent clients (threads). Then filtered search at 10% and 1% selectivity, build
times (mlsearch builds graphs in its merger, after refresh: the bench waits for that and reports it) and resident
memory per vector.

    python bench/knn.py [--quick]
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from _common import Server, percentiles, quick, table
from mlsearch.engine.index import DocOp
from mlsearch.engine.indices import Indices
from mlsearch.engine.search import execute, parse_request

INDEX = "vecs"
DIM = 384
K = 10
EFS = (16, 32, 64, 128, 256)
SEED = 1234


def dataset(n: int, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    clusters = 100
    centers = rng.normal(0, 1.0, size=(clusters, DIM)).astype(np.float32)
    spread = rng.uniform(0.3, 0.7, size=clusters).astype(np.float32)

    def draw(m: int) -> np.ndarray:
        c = rng.integers(0, clusters, m)
        return (centers[c] + rng.normal(0, 1, size=(m, DIM)).astype(np.float32) * spread[c, None]).astype(np.float32)

    return draw(n), draw(n_queries)


def exact(data: np.ndarray, queries: np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """Ids of the exact top K per query (l2), within `allowed` rows when given."""
    ids = np.arange(len(data)) if allowed is None else np.flatnonzero(allowed)
    sub = data[ids]
    norms = (sub * sub).sum(axis=1)
    out = []
    for q in queries:
        d = norms - 2 * (sub @ q)
        top = np.argpartition(d, K)[:K]
        out.append(ids[top[np.argsort(d[top])]])
    return np.array(out)


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(found, truth, strict=True)]))


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed(run: Callable[[np.ndarray], list[int]], queries: np.ndarray) -> tuple[list[list[int]], list[float]]:
    for q in queries[:20]:
        run(q)  # warm caches
    found, samples = [], []
    for q in queries:
        t = time.perf_counter()
        found.append(run(q))
        samples.append(time.perf_counter() - t)
    return found, samples


def knn_body(q: np.ndarray, ef: int, flt: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"vector": q.tolist(), "k": K, "method_parameters": {"ef_search": ef}}
    if flt is not None:
        spec["filter"] = flt
    return {"size": K, "_source": False, "query": {"knn": {"vec": spec}}}


def build_mlsearch(root: Path, data: np.ndarray) -> tuple[float, float]:
    indices = Indices(root)
    mapping = {
        "type": "knn_vector",
        "dimension": DIM,
        "space_type": "l2",
        "method": {"name": "hnsw", "engine": "faiss", "parameters": {"m": 16, "ef_construction": 100}},
    }
    index = indices.create(
        INDEX,
        {
            "settings": {"index.knn": True, "index.translog.durability": "async", "index.refresh_interval": "-1"},
            "mappings": {"properties": {"vec": mapping, "tag": {"type": "integer"}}},
        },
    )
    t0 = time.perf_counter()
    for start in range(0, len(data), 5000):
        ops = [
            DocOp("index", str(i), {"vec": data[i].tolist(), "tag": i % 100})
            for i in range(start, min(start + 5000, len(data)))
        ]
        index.write(ops)
    index.refresh()
    t1 = time.perf_counter()
    index.vectors.settle()  # the merger builds the graph; wait for it (or build it here)
    assert index.vectors.graph_count() >= 1, "no graph was built"
    t2 = time.perf_counter()
    indices.close()
    return t1 - t0, t2 - t1


def http_clients(server: Server, queries: np.ndarray, ef: int, threads: int) -> tuple[list[float], float]:
    bodies = [knn_body(q, ef) for q in queries]
    samples: list[float] = []
    lock = threading.Lock()

    def worker(part: list[dict[str, Any]]) -> None:
        client = server.client()
        client.check("POST", f"/{INDEX}/_search", part[0])
        local = []
        for body in part:
            t = time.perf_counter()
            client.check("POST", f"/{INDEX}/_search", body)
            local.append(time.perf_counter() - t)
        with lock:
            samples.extend(local)

    parts = [bodies[i::threads] for i in range(threads)]
    t0 = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(p,)) for p in parts]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return samples, len(bodies) / (time.perf_counter() - t0)


def main() -> None:
    n, n_queries = (20_000, 100) if quick() else (100_000, 300)
    data, queries = dataset(n, n_queries)
    truth = exact(data, queries)
    print(
        f"{n} x {DIM} clustered vectors, {n_queries} queries, k={K}, HNSW M=16 ef_construction=100; "
        f"faiss threads={faiss.omp_get_max_threads()}"
    )
    rows: list[list[Any]] = []
    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        bare = faiss.IndexHNSWFlat(DIM, 16)
        bare.hnsw.efConstruction = 100
        bare.add(data)
        bare_build = time.perf_counter() - t0
        index_s, graph_s = build_mlsearch(root / "ml", data)
        print(
            f"build: bare faiss {bare_build:.1f} s; mlsearch writes+refresh {index_s:.1f} s, "
            f"graph build by the merger {graph_s:.1f} s"
        )

        rss0 = rss_mb()
        indices = Indices(root / "ml")
        indices.open_all()
        index = indices.get(INDEX)
        index.vectors.warmup()
        rss_inproc = rss_mb() - rss0
        for ef in EFS:
            params = faiss.SearchParametersHNSW()
            params.efSearch = ef

            def bare_run(q: np.ndarray, params: faiss.SearchParametersHNSW = params) -> list[int]:
                return bare.search(q.reshape(1, -1), K, params=params)[1][0].tolist()

            def local_run(q: np.ndarray, ef: int = ef) -> list[int]:
                hits = execute([index], parse_request(knn_body(q, ef)))["hits"]["hits"]
                return [int(h["_id"]) for h in hits]

            bf, bs = timed(bare_run, queries)
            lf, ls = timed(local_run, queries)
            summary[ef] = (recall(bf, truth), len(bs) / sum(bs), recall(lf, truth), len(ls) / sum(ls))
        filtered = []
        for label, modulo in (("10%", 10), ("1%", 1)):
            allowed = (np.arange(n) % 100) < modulo
            ftruth = exact(data, queries, allowed)
            flt = {"range": {"tag": {"lt": modulo}}}

            def frun(q: np.ndarray, flt: dict[str, Any] = flt) -> list[int]:
                hits = execute([index], parse_request(knn_body(q, 100, flt)))["hits"]["hits"]
                return [int(h["_id"]) for h in hits]

            ff, fs = timed(frun, queries)
            filtered.append([label, recall(ff, ftruth), len(fs) / sum(fs), percentiles(fs)[0]])
        indices.close()

        with Server(root / "ml") as server:
            server.client().check("GET", f"/_plugins/_knn/warmup/{INDEX}")
            server_rss = rss_mb(server.proc.pid)
            for ef in EFS:
                one, one_qps = http_clients(server, queries, ef, 1)
                _eight, eight_qps = http_clients(server, queries, ef, 8)
                br, bq, lr, lq = summary[ef]
                rows.append([ef, br, bq, lr, lq, lq / bq, percentiles(one)[0], one_qps, eight_qps])
    table(
        "recall@10 and QPS by ef_search",
        [
            "ef",
            "faiss recall",
            "faiss QPS",
            "mls recall",
            "mls QPS",
            "mls/faiss",
            "HTTP p50 ms",
            "HTTP QPS 1c",
            "HTTP QPS 8c",
        ],
        rows,
    )
    table("filtered (ef_search 100)", ["selectivity", "recall", "QPS in-process", "p50 ms"], filtered)
    raw = n * DIM * 4 / 1e6
    print(
        f"\nmemory: in-process +{rss_inproc:.0f} MB after open+warmup ({rss_inproc * 1e6 / n:.0f} B/vector; raw "
        f"vectors {raw:.0f} MB = {DIM * 4} B/vector); server RSS {server_rss:.0f} MB"
    )
    good = [r for r in rows if r[3] >= 0.95]
    if good:
        r = good[0]
        print(
            f"targets: at ef={r[0]} (first with mlsearch recall >= 0.95): in-process QPS {r[5]:.2f}x bare faiss "
            f"(target >= 0.7x); HTTP p50 {r[6]:.2f} ms (target <= 3 ms)"
        )
    print(f"filtered recall: {', '.join(f'{f[0]} {f[1]:.3f}' for f in filtered)} (target >= 0.95)")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # single-query latency, as the server runs it
    main()
