"""Local model runtimes on tiny synthetic models built here: pooling, normalisation, truncation, length sorting,
cross-encoder scores, sparse encodings and tokenizer-only models, dimension checks, and the runtime registry."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.predictor import ModelConfig, PredictInput
from mlsearch.ml.runtimes import get_runtime, model_formats
from mlsearch.ml.runtimes._encoder import EncoderPredictor
from mlsearch.ml.runtimes._tokenize import Batch, TextTokenizer

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
VOCAB = {t: i for i, t in enumerate(SPECIAL + WORDS)}
DIM = 8
RNG = np.random.default_rng(7)
EMB = RNG.normal(size=(len(VOCAB), DIM)).astype(np.float32)
TYPE_EMB = RNG.normal(size=(2, DIM)).astype(np.float32)
MLM = RNG.normal(size=(len(VOCAB), len(VOCAB))).astype(np.float32)

TEXTS = ["alpha", "beta gamma delta epsilon zeta eta", "", "theta iota", "kappa alpha beta gamma", "zeta"]


def _write_tokenizer(model_dir: Path, pad_to: int | None = None) -> None:
    tok = Tokenizer(models.WordLevel(VOCAB, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", VOCAB["[CLS]"]), ("[SEP]", VOCAB["[SEP]"])],
    )
    tok.add_special_tokens(SPECIAL)
    if pad_to:  # like all-MiniLM-L6-v2's file: fixed padding the runtime must switch off
        tok.enable_padding(length=pad_to, pad_id=0, pad_token="[PAD]")
        tok.enable_truncation(pad_to)
    tok.save(str(model_dir / "tokenizer.json"))


def _ids(text: str, max_len: int = 512) -> list[int]:
    ids = [VOCAB["[CLS]"], *(VOCAB[w] for w in text.split()), VOCAB["[SEP]"]]
    return ids if len(ids) <= max_len else [*ids[: max_len - 1], VOCAB["[SEP]"]]


def _save(model_dir: Path, nodes: list, inputs: list[str], output: str, out_shape: list, inits: list) -> None:
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in inputs],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, out_shape)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(model_dir / "model.onnx"))


def _embedding_model(model_dir: Path, pad_to: int | None = None) -> Path:
    """last_hidden_state = EMB[input_ids]: pooling is then easy to compute by hand."""
    _write_tokenizer(model_dir, pad_to)
    nodes = [helper.make_node("Gather", ["emb", "input_ids"], ["last_hidden_state"])]
    _save(
        model_dir,
        nodes,
        ["input_ids", "attention_mask"],
        "last_hidden_state",
        ["batch", "seq", DIM],
        [numpy_helper.from_array(EMB, "emb")],
    )
    return model_dir


def _cross_encoder(model_dir: Path) -> Path:
    """logits = sum over real tokens and dims of EMB[id] + TYPE_EMB[type]: depends on the pair and on type ids."""
    _write_tokenizer(model_dir)
    nodes = [
        helper.make_node("Gather", ["emb", "input_ids"], ["h1"]),
        helper.make_node("Gather", ["temb", "token_type_ids"], ["h2"]),
        helper.make_node("Add", ["h1", "h2"], ["h"]),
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m", "axis2"], ["m3"]),
        helper.make_node("Mul", ["h", "m3"], ["hm"]),
        helper.make_node("ReduceSum", ["hm", "axes12"], ["logits"], keepdims=0),
        helper.make_node("Unsqueeze", ["logits", "axis1"], ["scores"]),
    ]
    inits = [
        numpy_helper.from_array(EMB, "emb"),
        numpy_helper.from_array(TYPE_EMB, "temb"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "axes12"),
    ]
    _save(model_dir, nodes, ["input_ids", "attention_mask", "token_type_ids"], "scores", ["batch", 1], inits)
    return model_dir


def _sparse_model(model_dir: Path) -> Path:
    """Masked-LM logits = MLM[input_ids]: [batch, seq, vocab]."""
    _write_tokenizer(model_dir)
    nodes = [helper.make_node("Gather", ["mlm", "input_ids"], ["logits"])]
    _save(
        model_dir,
        nodes,
        ["input_ids", "attention_mask"],
        "logits",
        ["batch", "seq", len(VOCAB)],
        [numpy_helper.from_array(MLM, "mlm")],
    )
    return model_dir


def _reference_pool(text: str, mode: str, max_len: int = 512) -> np.ndarray:
    """Pooling written per text, without masks or vectorisation, as the independent reference."""
    ids = _ids(text, max_len)
    h = EMB[ids].astype(np.float64)
    n = len(ids)
    if mode == "MEAN":
        return h.mean(axis=0)
    if mode == "MEAN_SQRT_LEN":
        return h.sum(axis=0) / np.sqrt(n)
    if mode == "MAX":
        return h.max(axis=0)
    if mode == "WEIGHTEDMEAN":
        w = np.arange(1, n + 1, dtype=np.float64)[:, None]
        return (h * w).sum(axis=0) / w.sum()
    if mode == "CLS":
        return h[0]
    if mode == "LASTTOKEN":
        return h[-1]
    raise AssertionError(mode)


def _embeddings(predictor, texts: list[str]) -> np.ndarray:
    results = predictor.predict(PredictInput(text_docs=texts))
    assert all(len(r) == 1 and r[0].name == "sentence_embedding" for r in results)
    return np.stack([r[0].data for r in results])


@pytest.mark.parametrize("mode", ["MEAN", "MEAN_SQRT_LEN", "MAX", "WEIGHTEDMEAN", "CLS", "LASTTOKEN"])
def test_pooling_modes_match_a_per_text_reference(tmp_path: Path, mode: str) -> None:
    predictor = get_runtime("ONNX").load(_embedding_model(tmp_path), "TEXT_EMBEDDING", ModelConfig(pooling_mode=mode))
    got = _embeddings(predictor, TEXTS)
    expected = np.stack([_reference_pool(t, mode) for t in TEXTS])
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), DIM)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_pooling_mode_names_are_case_insensitive_and_validated(tmp_path: Path) -> None:
    model_dir = _embedding_model(tmp_path)
    runtime = get_runtime("onnx")
    lower = _embeddings(runtime.load(model_dir, "text_embedding", ModelConfig(pooling_mode="weighted_mean")), TEXTS)
    np.testing.assert_allclose(lower[1], _reference_pool(TEXTS[1], "WEIGHTEDMEAN"), rtol=1e-5)
    with pytest.raises(IllegalArgumentError, match="pooling_mode"):
        runtime.load(model_dir, "TEXT_EMBEDDING", ModelConfig(pooling_mode="median"))


def test_normalize_result_gives_unit_vectors_in_the_same_direction(tmp_path: Path) -> None:
    model_dir = _embedding_model(tmp_path)
    plain = _embeddings(get_runtime("ONNX").load(model_dir, "TEXT_EMBEDDING", ModelConfig()), TEXTS)
    unit = _embeddings(get_runtime("ONNX").load(model_dir, "TEXT_EMBEDDING", ModelConfig(normalize_result=True)), TEXTS)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(unit, plain / np.linalg.norm(plain, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_truncation_at_max_length_and_shipped_padding_switched_off(tmp_path: Path) -> None:
    # The tokenizer.json pads and truncates at 4; the runtime must use max_length 5 and no fixed padding.
    model_dir = _embedding_model(tmp_path, pad_to=4)
    predictor = get_runtime("ONNX").load(model_dir, "TEXT_EMBEDDING", ModelConfig(max_length=5))
    got = _embeddings(predictor, TEXTS)
    expected = np.stack([_reference_pool(t, "MEAN", max_len=5) for t in TEXTS])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert predictor.tokenizer.max_length == 5


def test_max_length_falls_back_to_the_tokenizer_file_then_sentence_transformers_config(tmp_path: Path) -> None:
    model_dir = _embedding_model(tmp_path, pad_to=4)
    assert get_runtime("ONNX").load(model_dir, "TEXT_EMBEDDING", ModelConfig()).tokenizer.max_length == 4
    (model_dir / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 6}))
    assert get_runtime("ONNX").load(model_dir, "TEXT_EMBEDDING", ModelConfig()).tokenizer.max_length == 6


def test_batches_are_length_sorted_and_results_return_in_input_order(tmp_path: Path) -> None:
    _write_tokenizer(tmp_path)
    widths: list[int] = []

    def forward(batch: Batch) -> dict[str, np.ndarray]:
        widths.append(batch.input_ids.shape[1])
        return {"last_hidden_state": EMB[batch.input_ids]}

    tokenizer = TextTokenizer.from_dir(tmp_path, ModelConfig())
    predictor = EncoderPredictor("TEXT_EMBEDDING", tokenizer, forward, ModelConfig(), chunk_size=2)
    texts = ["alpha beta gamma delta epsilon zeta", "eta", "alpha beta gamma delta epsilon theta", "iota"]
    got = _embeddings(predictor, texts)
    assert widths == [3, 8]  # the two short texts share a chunk, the two long ones the other: no wasted padding
    np.testing.assert_allclose(got, np.stack([_reference_pool(t, "MEAN") for t in texts]), rtol=1e-5, atol=1e-6)


def test_embedding_dimension_mismatch_is_a_clear_400(tmp_path: Path) -> None:
    model_dir = _embedding_model(tmp_path)
    assert get_runtime("ONNX").load(model_dir, "TEXT_EMBEDDING", ModelConfig(embedding_dimension=DIM)).predict
    with pytest.raises(
        IllegalArgumentError, match=r"dimension \[8\] does not match .*embedding_dimension \[384\]"
    ) as err:
        get_runtime("ONNX").load(model_dir, "TEXT_EMBEDDING", ModelConfig(embedding_dimension=384))
    assert err.value.status == 400


def test_target_response_keeps_named_tensors(tmp_path: Path) -> None:
    predictor = get_runtime("ONNX").load(_embedding_model(tmp_path), "TEXT_EMBEDDING", ModelConfig())
    result = predictor.predict(PredictInput(text_docs=["alpha"], target_response=["sentence_embedding"]))
    assert [t.name for t in result[0]] == ["sentence_embedding"]
    assert result[0][0].shape == (DIM,)


def test_cross_encoder_scores_each_pair_in_input_order(tmp_path: Path) -> None:
    predictor = get_runtime("ONNX").load(_cross_encoder(tmp_path), "TEXT_SIMILARITY", ModelConfig())
    docs = ["beta gamma delta", "alpha", "zeta eta theta iota kappa"]
    result = predictor.predict(PredictInput(text_docs=docs, query_text="alpha beta"))
    query_ids = _ids("alpha beta")
    for doc, tensors in zip(docs, result, strict=True):
        doc_ids = [VOCAB[w] for w in doc.split()] + [VOCAB["[SEP]"]]
        expected = EMB[query_ids].sum() + TYPE_EMB[0].sum() * len(query_ids)
        expected += EMB[doc_ids].sum() + TYPE_EMB[1].sum() * len(doc_ids)
        assert tensors[0].name == "similarity" and tensors[0].shape == (1,)
        assert tensors[0].data.dtype == np.float32
        assert tensors[0].data[0] == pytest.approx(expected, rel=1e-4)
    with pytest.raises(IllegalArgumentError, match="No query text was provided"):
        predictor.predict(PredictInput(text_docs=docs))


def test_sparse_encoding_is_max_log1p_relu_over_real_tokens(tmp_path: Path) -> None:
    predictor = get_runtime("ONNX").load(_sparse_model(tmp_path), "SPARSE_ENCODING", ModelConfig())
    texts = ["alpha beta", "kappa"]
    result = predictor.predict(PredictInput(text_docs=texts))
    id_to_token = {i: t for t, i in VOCAB.items()}
    for text, tensors in zip(texts, result, strict=True):
        weights = np.log1p(np.maximum(MLM[_ids(text)], 0)).max(axis=0)
        weights[[VOCAB[s] for s in SPECIAL]] = 0
        expected = {id_to_token[i]: float(weights[i]) for i in np.flatnonzero(weights > 0)}
        assert tensors[0].name == "output" and tensors[0].data is None
        got = tensors[0].data_as_map["response"][0]
        assert got.keys() == expected.keys()
        for token, weight in expected.items():
            assert got[token] == pytest.approx(weight, rel=1e-5)
    by_id = predictor.predict(PredictInput(text_docs=["kappa"], parameters={"sparse_embedding_format": "token_id"}))
    assert set(by_id[0][0].data_as_map["response"][0]) == {
        str(VOCAB[t]) for t in result[1][0].data_as_map["response"][0]
    }


def test_sparse_tokenize_weighs_tokens_by_idf_without_a_model_file(tmp_path: Path) -> None:
    _write_tokenizer(tmp_path)
    (tmp_path / "idf.json").write_text(json.dumps({"alpha": 2.5, "beta": 0.5}))
    for fmt in ("ONNX", "TORCH_SCRIPT"):  # tokenizer-only models need no onnxruntime session and no torch
        predictor = get_runtime(fmt).load(tmp_path, "SPARSE_TOKENIZE", ModelConfig())
        result = predictor.predict(PredictInput(text_docs=["alpha beta gamma", "gamma"]))
        assert result[0][0].data_as_map == {"response": [{"alpha": 2.5, "beta": 0.5, "gamma": 1.0}]}
        assert result[1][0].data_as_map == {"response": [{"gamma": 1.0}]}


def test_hf_style_directory_with_nested_onnx_file(tmp_path: Path) -> None:
    _embedding_model(tmp_path)
    (tmp_path / "onnx").mkdir()
    (tmp_path / "model.onnx").rename(tmp_path / "onnx" / "model.onnx")
    got = _embeddings(get_runtime("ONNX").load(tmp_path, "TEXT_EMBEDDING", ModelConfig()), ["alpha beta"])
    np.testing.assert_allclose(got[0], _reference_pool("alpha beta", "MEAN"), rtol=1e-5)


def test_bad_artefacts_are_400s(tmp_path: Path) -> None:
    _write_tokenizer(tmp_path)
    with pytest.raises(IllegalArgumentError, match=r"no \.onnx file"):
        get_runtime("ONNX").load(tmp_path, "TEXT_EMBEDDING", ModelConfig())
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(IllegalArgumentError, match="cannot load ONNX model"):
        get_runtime("ONNX").load(tmp_path, "TEXT_EMBEDDING", ModelConfig())
    no_tokenizer = tmp_path / "bare"
    no_tokenizer.mkdir()
    (no_tokenizer / "m.onnx").write_bytes((tmp_path / "broken.onnx").read_bytes())
    with pytest.raises(IllegalArgumentError):
        get_runtime("ONNX").load(no_tokenizer, "TEXT_EMBEDDING", ModelConfig())


def test_runtime_registry_by_model_format() -> None:
    assert model_formats() == ["ONNX", "TORCH_SCRIPT"]
    assert type(get_runtime("onnx")).__name__ == "OnnxRuntime"
    assert type(get_runtime("TORCH_SCRIPT")).__name__ == "TorchScriptRuntime"
    with pytest.raises(IllegalArgumentError, match="unsupported model format"):
        get_runtime("TENSORFLOW")
    with pytest.raises(IllegalArgumentError, match="model format is null"):
        get_runtime(None)


def test_missing_torch_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_tokenizer(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(IllegalArgumentError, match=r"mlsearch\[torch\]"):
        get_runtime("TORCH_SCRIPT").load(tmp_path, "TEXT_EMBEDDING", ModelConfig())


def test_torchscript_model_with_dict_inputs_matches_onnx(tmp_path: Path) -> None:
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Parameter(torch.from_numpy(EMB))

        def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {"token_embeddings": self.emb[features["input_ids"]]}

    onnx_dir = tmp_path / "onnx_model"
    onnx_dir.mkdir()
    _embedding_model(onnx_dir)
    ts_dir = tmp_path / "ts"
    ts_dir.mkdir()
    _write_tokenizer(ts_dir)
    torch.jit.script(Tiny()).save(str(ts_dir / "tiny.pt"))
    config = ModelConfig(pooling_mode="MAX", normalize_result=True, embedding_dimension=DIM)
    ts = _embeddings(get_runtime("TORCH_SCRIPT").load(ts_dir, "TEXT_EMBEDDING", config), TEXTS)
    ox = _embeddings(get_runtime("ONNX").load(onnx_dir, "TEXT_EMBEDDING", config), TEXTS)
    np.testing.assert_allclose(ts, ox, rtol=1e-5, atol=1e-6)
