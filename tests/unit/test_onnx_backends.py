"""Choosing the engine for ONNX models: auto / onnxruntime / openvino, forced through RuntimeOptions or Settings,
the fallback when OpenVINO is missing, and the same outputs from both engines on a tiny model."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mlsearch.config import Settings
from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.predictor import ModelConfig
from mlsearch.ml.runtimes import RuntimeOptions, _backends, get_runtime
from tests.unit.test_runtimes import TEXTS, _cross_encoder, _embedding_model, _sparse_model


@pytest.fixture
def no_openvino(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """`import openvino` fails, as on a machine without the extra (and the cached probe forgets the real answer)."""
    monkeypatch.setitem(sys.modules, "openvino", None)
    _backends.openvino_bf16_available.cache_clear()
    yield
    _backends.openvino_bf16_available.cache_clear()


def _load(model_dir: Path, backend: str):  # type: ignore[no-untyped-def]
    return get_runtime("ONNX", RuntimeOptions(onnx_backend=backend)).load(model_dir, "TEXT_EMBEDDING", ModelConfig())


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_forced_backend_runs_the_model(tmp_path: Path, backend: str) -> None:
    predictor = _load(_embedding_model(tmp_path), backend)
    assert predictor.backend == backend


def test_both_backends_give_the_same_embeddings(tmp_path: Path) -> None:
    model_dir = _embedding_model(tmp_path)
    plain, openvino = (_load(model_dir, b).embed(TEXTS) for b in ("onnxruntime", "openvino"))
    np.testing.assert_allclose(openvino, plain, rtol=1e-3, atol=1e-3)


def test_auto_prefers_openvino_exactly_when_the_cpu_has_bf16(tmp_path: Path) -> None:
    expected = "openvino" if _backends.openvino_bf16_available() else "onnxruntime"
    assert _load(_embedding_model(tmp_path), "AUTO").backend == expected
    assert get_runtime("ONNX").backend == "auto"  # the default


def test_auto_keeps_sparse_and_cross_encoder_models_on_fp32_onnxruntime(tmp_path: Path) -> None:
    for name in ("sparse", "cross", "sparse2"):
        (tmp_path / name).mkdir()
    auto = get_runtime("ONNX", RuntimeOptions(onnx_backend="auto"))
    sparse = auto.load(_sparse_model(tmp_path / "sparse"), "SPARSE_ENCODING", ModelConfig())
    cross = auto.load(_cross_encoder(tmp_path / "cross"), "TEXT_SIMILARITY", ModelConfig())
    assert (sparse.backend, cross.backend) == ("onnxruntime", "onnxruntime")
    forced = get_runtime("ONNX", RuntimeOptions(onnx_backend="openvino"))
    assert forced.load(_sparse_model(tmp_path / "sparse2"), "SPARSE_ENCODING", ModelConfig()).backend == "openvino"


def test_auto_falls_back_to_onnxruntime_without_openvino(tmp_path: Path, no_openvino: None) -> None:
    assert _load(_embedding_model(tmp_path), "auto").backend == "onnxruntime"


def test_forcing_openvino_without_it_names_the_extra(tmp_path: Path, no_openvino: None) -> None:
    with pytest.raises(IllegalArgumentError, match=r"mlsearch\[openvino\]"):
        _load(_embedding_model(tmp_path), "openvino")


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(IllegalArgumentError, match=r"unknown ONNX backend \[tensorrt\]"):
        RuntimeOptions(onnx_backend="tensorrt")


def test_the_setting_comes_from_the_environment() -> None:
    settings = Settings.load(env={"MLSEARCH_ML_ONNX_BACKEND": "onnxruntime"})
    assert settings.ml_onnx_backend == "onnxruntime" and Settings().ml_onnx_backend == "auto"


def test_the_node_wiring_rejects_an_unknown_backend_at_start_up() -> None:
    from mlsearch.ml.wiring import _runtime_for

    with pytest.raises(IllegalArgumentError, match="unknown ONNX backend"):
        _runtime_for(Settings(ml_onnx_backend="tensorrt"))
