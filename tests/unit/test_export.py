"""`mlsearch model export` / export_model on a tiny random BERT saved here: the zip's layout, printed hash and
register body, and embeddings through both runtimes equal the transformers model's own (pooled as configured)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mlsearch.cli import main
from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.export import export_model
from mlsearch.ml.predictor import ModelConfig, PredictInput
from mlsearch.ml.runtimes import RuntimeOptions, get_runtime
from tests.unit.test_runtimes import VOCAB, _write_tokenizer

TEXTS = ["alpha beta", "gamma delta epsilon zeta eta theta", "iota", "kappa alpha beta gamma delta"]


def write_tiny_sentence_transformer(path: Path) -> Path:
    """A tiny random BERT laid out as a sentence-transformers directory (CLS pooling, normalized)."""
    import torch
    import transformers

    torch.manual_seed(0)
    path.mkdir(parents=True, exist_ok=True)
    config = transformers.BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    transformers.BertModel(config).eval().save_pretrained(str(path))
    _write_tokenizer(path)
    (path / "modules.json").write_text(json.dumps([{"type": "sentence_transformers.models.Normalize"}]))
    (path / "1_Pooling").mkdir()
    (path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 32}))
    return path


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_sentence_transformer(tmp_path_factory.mktemp("tiny-bert") / "model")


def _reference(hf_dir: Path, texts: list[str]) -> np.ndarray:
    """CLS pooling + L2 normalisation, computed with transformers directly."""
    import torch
    import transformers

    from mlsearch.ml.runtimes._tokenize import TextTokenizer

    model = transformers.BertModel.from_pretrained(str(hf_dir), attn_implementation="eager").eval()
    tokenizer = TextTokenizer.from_dir(hf_dir, ModelConfig())
    rows = []
    with torch.inference_mode():
        for enc in tokenizer.encode(texts):
            out = model(input_ids=torch.tensor([enc.ids]), attention_mask=torch.ones(1, len(enc.ids), dtype=torch.long))
            cls = out.last_hidden_state[0, 0].numpy()
            rows.append(cls / np.linalg.norm(cls))
    return np.stack(rows)


def _unpack(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
    return dest


def test_cli_export_onnx_prints_hash_and_register_body(
    hf_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tiny.zip"
    assert main(["model", "export", str(hf_dir), "--format", "onnx", "--out", str(out), "--name", "tiny"]) == 0
    printed = capsys.readouterr().out
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert f"model_content_hash_value: {sha}" in printed
    body = json.loads(printed[printed.index("{") :])
    assert body["model_format"] == "ONNX" and body["function_name"] == "TEXT_EMBEDDING"
    assert body["model_content_hash_value"] == sha and body["model_content_size_in_bytes"] == out.stat().st_size
    config = body["model_config"]
    assert (config["embedding_dimension"], config["pooling_mode"], config["normalize_result"]) == (16, "CLS", True)
    assert config["model_type"] == "bert" and json.loads(config["all_config"])["hidden_size"] == 16
    assert sorted(zipfile.ZipFile(out).namelist()) == ["config.json", "tiny.onnx", "tokenizer.json"]

    model_dir = _unpack(out, tmp_path / "unpacked")
    model_config = ModelConfig(
        embedding_dimension=16,
        pooling_mode=config["pooling_mode"],
        normalize_result=True,
        all_config=config["all_config"],
    )
    # The exported graph must equal the HF model to fp32 precision: checked on onnxruntime's fp32 engine (the bf16
    # OpenVINO default has its own parity tests against sentence-transformers).
    fp32 = RuntimeOptions(onnx_backend="onnxruntime")
    predictor = get_runtime("ONNX", fp32).load(model_dir, "TEXT_EMBEDDING", model_config)
    assert predictor.tokenizer.max_length == 32  # carried by the exported tokenizer.json
    got = np.stack([r[0].data for r in predictor.predict(PredictInput(text_docs=TEXTS))])
    np.testing.assert_allclose(got, _reference(hf_dir, TEXTS), atol=1e-5)


def test_export_torch_script_runs_in_the_torchscript_runtime(hf_dir: Path, tmp_path: Path) -> None:
    result = export_model(hf_dir, "torch_script", tmp_path / "ts.zip")
    assert result.model_format == "TORCH_SCRIPT"
    assert f"{hf_dir.name}.pt" in zipfile.ZipFile(result.path).namelist()
    model_dir = _unpack(result.path, tmp_path / "ts")
    predictor = get_runtime("TORCH_SCRIPT").load(model_dir, "TEXT_EMBEDDING", ModelConfig(embedding_dimension=16))
    got = np.stack([r[0].data for r in predictor.predict(PredictInput(text_docs=TEXTS))])
    np.testing.assert_allclose(got, _reference(hf_dir, TEXTS), atol=1e-5)  # pooled + normalised inside the model


def test_export_is_deterministic(hf_dir: Path, tmp_path: Path) -> None:
    first = export_model(hf_dir, "ONNX", tmp_path / "a.zip")
    second = export_model(hf_dir, "ONNX", tmp_path / "b.zip")
    assert first.sha256 == second.sha256


def test_export_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "export", str(tmp_path), "--out", str(tmp_path / "x.zip")]) == 2
    assert "not a Hugging Face model directory" in capsys.readouterr().err
    assert not (tmp_path / "x.zip").exists()


def _op_types(zip_path: Path) -> set[str]:
    import onnx

    with zipfile.ZipFile(zip_path) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".onnx"))
        graph = onnx.load_from_string(zf.read(name)).graph
    return {node.op_type for node in graph.node}


def test_onnx_export_is_fused_and_keeps_its_interface(hf_dir: Path, tmp_path: Path) -> None:
    import onnxruntime as ort

    result = export_model(hf_dir, "ONNX", tmp_path / "fused.zip", name="tiny")
    ops = _op_types(result.path)
    # onnxruntime's transformer optimizer replaced the attention subgraph and the LayerNorm/GELU chains.
    assert {"Attention", "SkipLayerNormalization"} <= ops and "Softmax" not in ops
    model_dir = _unpack(result.path, tmp_path / "fused")
    session = ort.InferenceSession(str(model_dir / "tiny.onnx"), providers=["CPUExecutionProvider"])
    (output,) = session.get_outputs()
    assert output.name == "last_hidden_state" and output.shape == ["batch", "sequence", 16]
    assert [i.shape for i in session.get_inputs()] == [["batch", "sequence"]] * len(session.get_inputs())


def test_int8_quantization_is_opt_in_and_close(hf_dir: Path, tmp_path: Path) -> None:
    plain = export_model(hf_dir, "ONNX", tmp_path / "fp32.zip")
    quantized = export_model(hf_dir, "ONNX", tmp_path / "int8.zip", quantize="int8")
    assert "MatMulInteger" not in _op_types(plain.path) and "MatMulInteger" in _op_types(quantized.path)
    predictor = get_runtime("ONNX").load(
        _unpack(quantized.path, tmp_path / "int8"),
        "TEXT_EMBEDDING",
        ModelConfig(embedding_dimension=16, pooling_mode="CLS", normalize_result=True),
    )
    got = np.stack([r[0].data for r in predictor.predict(PredictInput(text_docs=TEXTS))])
    cosines = np.sum(got * _reference(hf_dir, TEXTS), axis=1)
    assert cosines.min() > 0.9  # a 16-dim random model quantizes coarsely; MiniLM keeps ~0.99
    with pytest.raises(IllegalArgumentError, match="unsupported quantization"):
        export_model(hf_dir, "TORCH_SCRIPT", tmp_path / "ts.zip", quantize="int8")
