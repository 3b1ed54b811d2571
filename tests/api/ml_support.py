"""Test support for the ML APIs: a deterministic fake runtime and catalog the server loads through its `ml_runtime`
and `ml_catalog` settings (MLSEARCH_ML_RUNTIME / MLSEARCH_ML_CATALOG), model zips, and task polling.

The fake embeds a text as the normalised sum of per-token pseudo-random vectors (seeded by a hash of the token), so
equal texts embed equally and texts sharing words are close; it needs no model weights."""

from __future__ import annotations

import hashlib
import io
import os
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opensearchpy import OpenSearch

from mlsearch.launcher import ServerProcess
from mlsearch.ml.predictor import ModelConfig, PredictInput, Tensor
from mlsearch.ml.service import PretrainedArtefact
from tests.llm_server import LlmServer

ROOT = Path(__file__).resolve().parents[2]
PRETRAINED = "huggingface/sentence-transformers/all-MiniLM-L6-v2"
P = "plugins.ml_commons."
# Connector tests talk to fake providers on 127.0.0.1: the cluster must trust that address and allow private IPs.
LOCAL_TRUST = {
    P + "trusted_connector_endpoints_regex": [r"^http://127\.0\.0\.1:.*$"],
    P + "connector.private_ip_enabled": True,
}
FAKE_ENV = {
    "MLSEARCH_ML_RUNTIME": "tests.api.ml_support:runtime_for",
    "MLSEARCH_ML_CATALOG": "tests.api.ml_support:catalog",
}


def _token_vector(token: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(token.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def embed(text: str, dim: int) -> np.ndarray:
    vec = np.zeros(dim, dtype=np.float32)
    for token in text.lower().split():
        vec += _token_vector(token, dim)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm else vec


class HashPredictor:
    def __init__(self, function_name: str, config: ModelConfig) -> None:
        self.function_name = function_name
        self.dim = config.embedding_dimension or 8
        self.closed = False

    def predict(self, inputs: PredictInput) -> list[list[Tensor]]:
        if self.function_name in ("SPARSE_ENCODING", "SPARSE_TOKENIZE"):
            return [[Tensor("output", data_as_map={"response": [_sparse(t)]})] for t in inputs.text_docs]
        if self.function_name == "TEXT_SIMILARITY":
            query = embed(inputs.query_text or "", self.dim)
            return [
                [Tensor("similarity", np.array([float(query @ embed(t, self.dim))], dtype=np.float32))]
                for t in inputs.text_docs
            ]
        return [[Tensor("sentence_embedding", embed(t, self.dim))] for t in inputs.text_docs]

    def close(self) -> None:
        self.closed = True


def _sparse(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for token in text.lower().split():
        out[token] = out.get(token, 0.0) + 1.0
    return out


class HashRuntime:
    def load(self, model_dir: Path, function_name: str, config: ModelConfig) -> HashPredictor:
        if not (model_dir / "tokenizer.json").is_file():
            raise RuntimeError("no tokenizer.json in the model directory")
        if (model_dir / "FAIL_LOAD").exists():
            raise RuntimeError("the fake runtime was told to fail")
        gate = model_dir / "GATE"
        if gate.exists():  # hold the deploy until the test creates the file named there (a RUNNING task)
            _wait_for(Path(gate.read_text().strip()))
        return HashPredictor(function_name, config)


def _wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def runtime_for(model_format: str) -> HashRuntime:
    return HashRuntime()


def catalog(name: str, version: str | None, model_format: str) -> PretrainedArtefact | None:
    zip_path = os.environ.get("ML_TEST_PRETRAINED_ZIP")
    if name != PRETRAINED or version != "1.0.1" or zip_path is None:
        return None
    config = {"model_type": "bert", "embedding_dimension": 384, "framework_type": "SENTENCE_TRANSFORMERS"}
    return PretrainedArtefact(
        source=zip_path,
        model_config=config,
        function_name="TEXT_EMBEDDING",
        description="This is a sentence-transformers model",
    )


def model_zip(model_format: str = "ONNX", *, extra: dict[str, bytes] | None = None, tokenizer: bool = True) -> bytes:
    """A model archive as OpenSearch expects one: a model file and tokenizer.json (contents don't matter here)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("model.onnx" if model_format == "ONNX" else "model.pt", b"fake model weights")
        if tokenizer:
            zf.writestr("tokenizer.json", b'{"version": "1.0"}')
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ml_server(data_dir: Path, pretrained_zip: Path | None = None) -> ServerProcess:
    env = {**FAKE_ENV, "PYTHONPATH": str(ROOT)}
    if pretrained_zip is not None:
        env["ML_TEST_PRETRAINED_ZIP"] = str(pretrained_zip)
    return ServerProcess(data_dir, env=env)


def wait_task(client: Any, task_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll a task until it is COMPLETED or FAILED."""
    deadline = time.monotonic() + timeout
    while True:
        task = client.plugins.ml.get_task(task_id=task_id)
        if task["state"] in ("COMPLETED", "FAILED", "COMPLETED_WITH_ERROR"):
            return task
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} still {task['state']}")
        time.sleep(0.02)


def wait_state(client: Any, model_id: str, state: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        model = client.plugins.ml.get_model(model_id=model_id)
        if model["model_state"] == state:
            return model
        if time.monotonic() > deadline:
            raise AssertionError(f"model {model_id} is {model['model_state']}, not {state}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def pretrained_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("zips") / "all-MiniLM-L6-v2.zip"
    path.write_bytes(model_zip())
    return path


@pytest.fixture(scope="module")
def ml(tmp_path_factory: pytest.TempPathFactory, pretrained_zip: Path) -> Iterator[ServerProcess]:
    proc = ml_server(tmp_path_factory.mktemp("mldata"), pretrained_zip).start()
    yield proc
    proc.stop()


# Test modules import these under their function names; pytest knows them by `name` (no shadowing lint).
@pytest.fixture(scope="module", name="trusted")
def trusted_fixture(client: OpenSearch) -> Iterator[None]:
    """The module's server trusts connectors to 127.0.0.1 (reset afterwards)."""
    client.cluster.put_settings(body={"persistent": LOCAL_TRUST})
    yield
    client.cluster.put_settings(body={"persistent": dict.fromkeys(LOCAL_TRUST)})


@pytest.fixture(scope="module", name="llm")
def llm_fixture(trusted: None) -> Iterator[LlmServer]:
    """A scripted LLM-like server for the module's RAG and conversational tests, with 127.0.0.1 trusted."""
    server = LlmServer()
    yield server
    server.close()
