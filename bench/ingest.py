"""Bulk ingest through a text_embedding pipeline vs the model's own throughput, on SciFact abstracts.

Rows: mlsearch's ONNX predictor in-process on the same texts in chunks of 100 (the bare model throughput), then a
server with all-MiniLM-L6-v2 deployed and an index whose default pipeline embeds `text` into a 384-d knn_vector:
`_bulk` in batches of 100 documents (docs/s), and a second `_bulk` of the same unchanged documents (served by the
content-hash embedding cache). Targets (issue #7): bulk ≥ 0.85x the predictor; the unchanged re-bulk ≥ 10x faster
than the first. `--quick` uses 200 abstracts instead of 1000. The machine is shared: expect run-to-run noise."""

from __future__ import annotations

import os
import tempfile
import time
import zipfile
from pathlib import Path

from _common import ROOT, Server, chunks, load_scifact, quick, table
from mlsearch.ml import catalog
from mlsearch.ml.predictor import PredictInput
from mlsearch.ml.runtimes import get_runtime

MINILM = "huggingface/sentence-transformers/all-MiniLM-L6-v2"
BATCH = 100


def main() -> None:
    n_docs = 200 if quick() else 1000
    corpus = load_scifact().corpus[:n_docs]
    docs = [(d["_id"], {"title": d["title"], "text": f"{d['title']} {d['text']}"}) for d in corpus]
    texts = [d["text"] for _, d in docs]
    cache = Path(os.environ.get("MLSEARCH_CACHE_DIR") or ROOT / "bench" / ".cache")
    bare = _predictor_rate(cache, texts)
    first, second = _bulk_rates(cache, docs)
    print(f"{len(docs)} SciFact abstracts, bulk batches of {BATCH}")
    table(
        "bulk ingest through text_embedding (docs/s)",
        ["scenario", "docs/s", "ratio"],
        [
            ("predictor in-process, chunks of 100 (baseline)", f"{bare:.1f}", "1.00"),
            ("_bulk through the pipeline (new documents)", f"{first:.1f}", f"{first / bare:.2f} (target >= 0.85)"),
            (
                "_bulk again, unchanged documents (cache)",
                f"{second:.1f}",
                f"{second / first:.1f}x first (target >= 10)",
            ),
        ],
    )


def _predictor_rate(cache: Path, texts: list[str]) -> float:
    model_dir = Path(tempfile.mkdtemp(prefix="mlsearch-bench-"))
    with zipfile.ZipFile(catalog.fetch_pretrained(MINILM, "1.0.2", "ONNX", cache_dir=cache)) as zf:
        zf.extractall(model_dir)
    config = catalog.get_pretrained(MINILM, "1.0.2", "ONNX").config()
    predictor = get_runtime("ONNX").load(model_dir, "TEXT_EMBEDDING", config)
    try:
        predictor.predict(PredictInput(text_docs=texts[:8]))  # warm-up
        started = time.perf_counter()
        for chunk in chunks(texts, BATCH):
            predictor.predict(PredictInput(text_docs=list(chunk)))
        return len(texts) / (time.perf_counter() - started)
    finally:
        predictor.close()


def _bulk_rates(cache: Path, docs: list[tuple[str, dict[str, str]]]) -> tuple[float, float]:
    server = Server(Path(tempfile.mkdtemp(prefix="mlsearch-bench-data-")), env={"MLSEARCH_CACHE_DIR": str(cache)})
    server.start()
    try:
        c = server.client()
        body = {"name": MINILM, "version": "1.0.2", "model_format": "ONNX"}
        task_id = c.check("POST", "/_plugins/_ml/models/_register?deploy=true", body)["task_id"]
        model_id = _poll(c, f"/_plugins/_ml/tasks/{task_id}", "state", "COMPLETED")["model_id"]
        _poll(c, f"/_plugins/_ml/models/{model_id}", "model_state", "DEPLOYED")
        c.check(
            "PUT",
            "/_ingest/pipeline/embed",
            {"processors": [{"text_embedding": {"model_id": model_id, "field_map": {"text": "embedding"}}}]},
        )
        c.check(
            "PUT",
            "/scifact",
            {
                "settings": {"index.knn": True, "default_pipeline": "embed"},
                "mappings": {
                    "properties": {
                        "title": {"type": "text"},
                        "text": {"type": "text"},
                        "embedding": {"type": "knn_vector", "dimension": 384},
                    }
                },
            },
        )
        c.check("POST", f"/_plugins/_ml/_predict/text_embedding/{model_id}", {"text_docs": ["warm up"]})
        rates = []
        for _ in range(2):
            started = time.perf_counter()
            for batch in chunks(docs, BATCH):
                c.bulk("scifact", batch)
            rates.append(len(docs) / (time.perf_counter() - started))
        return rates[0], rates[1]
    finally:
        server.stop()


def _poll(c, path: str, key: str, want: str, timeout: float = 300.0) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        body = c.check("GET", path)
        if body.get(key) == want:
            return body
        if time.monotonic() > deadline or body.get(key) in ("FAILED", "DEPLOY_FAILED"):
            raise RuntimeError(f"{path}: {body}")
        time.sleep(0.1)


if __name__ == "__main__":
    main()
