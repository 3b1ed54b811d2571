"""The pretrained catalog: entries and validation, OpenSearch's artefact URLs, the cache, and downloads served by a
local http.server (no test contacts a real hub)."""

from __future__ import annotations

import functools
import hashlib
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml import catalog

MINILM = "huggingface/sentence-transformers/all-MiniLM-L6-v2"
MPNET = "huggingface/sentence-transformers/all-mpnet-base-v2"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server over tmp_path/www; yields (base URL, root)."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _model_zip(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("all-mpnet-base-v2.onnx", b"\x08\x01fake onnx bytes")
        zf.writestr("tokenizer.json", "{}")
    return path.read_bytes()


def test_artifact_url_follows_opensearch_pattern() -> None:
    assert catalog.artifact_url(MINILM, "1.0.1", "TORCH_SCRIPT") == (
        "https://artifacts.opensearch.org/models/ml-models/huggingface/sentence-transformers/all-MiniLM-L6-v2/"
        "1.0.1/torch_script/sentence-transformers_all-MiniLM-L6-v2-1.0.1-torch_script.zip"
    )
    assert catalog.artifact_url(
        "amazon/neural-sparse/opensearch-neural-sparse-tokenizer-v1", "1.0.1", "TORCH_SCRIPT"
    ).endswith(
        "/amazon/neural-sparse/opensearch-neural-sparse-tokenizer-v1/1.0.1/torch_script/"
        "neural-sparse_opensearch-neural-sparse-tokenizer-v1-1.0.1-torch_script.zip"
    )
    assert catalog.config_url(MINILM, "1.0.2", "ONNX").endswith("/all-MiniLM-L6-v2/1.0.2/onnx/config.json")


def test_catalog_entries_carry_function_and_model_config() -> None:
    minilm = catalog.get_pretrained(MINILM, "1.0.1", "onnx")
    assert minilm.function_name == "TEXT_EMBEDDING" and minilm.current_version == "1.0.2"
    config = minilm.config()
    assert (config.embedding_dimension, config.pooling_mode, config.normalize_result) == (384, "MEAN", True)
    assert config.framework_type == "SENTENCE_TRANSFORMERS" and config.model_type == "bert"
    tas_b = catalog.get_pretrained("huggingface/sentence-transformers/msmarco-distilbert-base-tas-b", "1.0.1", "ONNX")
    assert tas_b.config().pooling_mode == "CLS" and tas_b.versions[0] == "1.0.3"
    sparse = catalog.get_pretrained(
        "amazon/neural-sparse/opensearch-neural-sparse-tokenizer-v1", "1.0.1", "TORCH_SCRIPT"
    )
    assert sparse.function_name == "SPARSE_TOKENIZE"
    cross = catalog.get_pretrained("huggingface/cross-encoders/ms-marco-MiniLM-L-6-v2", "1.0.0", "ONNX")
    assert cross.function_name == "TEXT_SIMILARITY"
    assert len(catalog.CATALOG) == 23
    assert {"name": MINILM, "version": ["1.0.2", "1.0.1"], "format": ["torch_script", "onnx"]} in catalog.listing()


@pytest.mark.parametrize(
    ("name", "version", "fmt"),
    [
        ("huggingface/sentence-transformers/no-such-model", "1.0.1", "ONNX"),
        (MINILM, "9.9.9", "ONNX"),
        ("amazon/neural-sparse/opensearch-neural-sparse-encoding-v1", "1.0.1", "ONNX"),  # TORCH_SCRIPT only
        (MINILM, "1.0.1", None),
    ],
)
def test_unknown_name_version_or_format_gives_opensearch_message(name: str, version: str, fmt: str | None) -> None:
    with pytest.raises(IllegalArgumentError, match="not in the pre-trained model list"):
        catalog.get_pretrained(name, version, fmt)


def test_resolve_prefers_the_cache(tmp_path: Path) -> None:
    cached = catalog.cached_zip_path(tmp_path, MPNET, "1.0.2", "ONNX")
    _model_zip(cached)
    resolved = catalog.resolve(MPNET, "1.0.2", "onnx", cache_dir=tmp_path)
    assert resolved.local_zip == cached
    assert resolved.url == catalog.artifact_url(MPNET, "1.0.2", "ONNX")
    assert resolved.model_config().embedding_dimension == 768


def test_resolve_without_local_source_gives_only_the_url(tmp_path: Path) -> None:
    resolved = catalog.resolve(MPNET, None, "TORCH_SCRIPT", cache_dir=tmp_path)
    assert resolved.local_zip is None and resolved.version == "1.0.2"
    assert resolved.url.endswith("/torch_script/sentence-transformers_all-mpnet-base-v2-1.0.2-torch_script.zip")
    minilm = catalog.resolve(MINILM, "1.0.1", "ONNX", cache_dir=tmp_path, convert=False)
    assert minilm.local_zip is None


def test_fetch_pretrained_downloads_into_the_cache_once(tmp_path: Path, served: tuple[str, Path]) -> None:
    base, root = served
    relative = catalog.artifact_url(MPNET, "1.0.1", "ONNX", base_url="").lstrip("/")
    body = _model_zip(root / relative)
    cache = tmp_path / "cache"
    path = catalog.fetch_pretrained(MPNET, "1.0.1", "ONNX", cache_dir=cache, base_url=base)
    assert path == catalog.cached_zip_path(cache, MPNET, "1.0.1", "ONNX")
    assert path.read_bytes() == body
    (root / relative).unlink()  # a second fetch must not go to the network
    assert catalog.fetch_pretrained(MPNET, "1.0.1", "ONNX", cache_dir=cache, base_url=base) == path


def test_download_streams_and_hashes(tmp_path: Path, served: tuple[str, Path]) -> None:
    base, root = served
    body = _model_zip(root / "m.zip")
    sha = hashlib.sha256(body).hexdigest()
    got = catalog.download(f"{base}/m.zip", tmp_path / "out" / "m.zip", expected_sha256=sha.upper())
    assert (got.sha256, got.size) == (sha, len(body))
    assert got.path.read_bytes() == body
    by_file = catalog.download((root / "m.zip").as_uri(), tmp_path / "file.zip")
    assert by_file.sha256 == sha


def test_download_with_wrong_hash_leaves_nothing(tmp_path: Path, served: tuple[str, Path]) -> None:
    base, root = served
    _model_zip(root / "m.zip")
    dest = tmp_path / "m.zip"
    with pytest.raises(IllegalArgumentError, match="hash"):
        catalog.download(f"{base}/m.zip", dest, expected_sha256="0" * 64)
    assert list(tmp_path.glob("m.zip*")) == []


def test_download_errors_are_400s_and_leave_nothing(tmp_path: Path, served: tuple[str, Path]) -> None:
    base, root = served
    _model_zip(root / "m.zip")
    with pytest.raises(IllegalArgumentError, match="failed to download"):
        catalog.download(f"{base}/missing.zip", tmp_path / "a.zip")
    with pytest.raises(IllegalArgumentError, match="larger than"):
        catalog.download(f"{base}/m.zip", tmp_path / "b.zip", max_bytes=10)
    assert list(tmp_path.glob("*.zip*")) == []


def test_default_cache_dir_honours_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLSEARCH_CACHE_DIR", str(tmp_path))
    assert catalog.default_cache_dir() == tmp_path
    monkeypatch.delenv("MLSEARCH_CACHE_DIR")
    assert catalog.default_cache_dir() == Path.home() / ".cache" / "mlsearch"
