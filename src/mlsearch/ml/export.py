"""Hugging Face model directory → OpenSearch-compatible model zip (ONNX or TorchScript), for `mlsearch model export`
and for registering a sentence-transformers directory directly.

The zip holds, at its root, `<name>.onnx` or `<name>.pt`, `tokenizer.json` (padding off, truncation at the model's
maximum length) and the model's `config.json` — the layout of OpenSearch's pretrained zips. Needs torch and
transformers (the `torch` extra); both are imported only when an export runs.

ONNX exports then go through onnxruntime's transformer optimizer (attention, LayerNorm, GELU and embedding fusions),
which makes BERT-family encoders markedly faster on CPU; the fused graph is kept only when it reproduces the plain
graph's outputs, so unsupported architectures fall back to the plain export. `quantize="int8"` additionally applies
dynamic per-channel int8 weight quantization: faster still, but embeddings drift (cosine ~0.99), so it is opt-in."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.runtimes._pooling import pooling_mode as canonical_pooling
from mlsearch.ml.runtimes.torchscript import import_torch

log = logging.getLogger(__name__)

FORMATS = ("ONNX", "TORCH_SCRIPT")
QUANTIZATIONS = ("int8",)
ONNX_OPSET = 17  # ≥ 14 (scaled_dot_product / LayerNormalization fusions); 17 is what onnxruntime ≥ 1.12 runs natively
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # fixed timestamps: the same model exports to the same bytes and hash


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    sha256: str
    size: int
    name: str
    model_format: str
    function_name: str
    model_config: dict[str, Any] = field(default_factory=dict)

    def register_body(self, version: str = "1.0.0") -> dict[str, Any]:
        """A suggested `POST /_plugins/_ml/models/_register` body for this zip (served from its file:// URL)."""
        return {
            "name": self.name,
            "version": version,
            "function_name": self.function_name,
            "model_format": self.model_format,
            "model_content_hash_value": self.sha256,
            "model_content_size_in_bytes": self.size,
            "url": self.path.resolve().as_uri(),
            "model_config": self.model_config,
        }


@dataclass(frozen=True, slots=True)
class _Source:
    """What the HF directory says about itself."""

    config: dict[str, Any]
    function_name: str
    pooling_mode: str
    normalize: bool
    max_length: int


def export_model(
    src_dir: Path | str,
    fmt: str,
    out_zip: Path | str,
    *,
    name: str | None = None,
    pooling_mode: str | None = None,
    normalize: bool | None = None,
    max_length: int | None = None,
    quantize: str | None = None,
) -> ExportResult:
    """Convert a HF (sentence-transformers, cross-encoder or masked-LM) directory into a model zip at `out_zip`."""
    src = Path(src_dir)
    fmt = fmt.upper()
    if fmt not in FORMATS:
        raise IllegalArgumentError(f"unsupported model format [{fmt}]; expected one of {list(FORMATS)}")
    if quantize is not None and (fmt != "ONNX" or quantize.lower() not in QUANTIZATIONS):
        raise IllegalArgumentError(f"unsupported quantization [{quantize}] for [{fmt}]; ONNX supports {QUANTIZATIONS}")
    if not (src / "config.json").is_file() or not (src / "tokenizer.json").is_file():
        raise IllegalArgumentError(f"[{src}] is not a Hugging Face model directory (config.json and tokenizer.json)")
    info = _describe(src, pooling_mode, normalize, max_length)
    name = name or src.resolve().name
    out = Path(out_zip)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlsearch-export-") as tmp:
        work = Path(tmp)
        model_file = work / (f"{name}.onnx" if fmt == "ONNX" else f"{name}.pt")
        dim = _convert(src, info, fmt, model_file)
        if fmt == "ONNX":
            _optimize_onnx(model_file, info, quantize)
        _write_tokenizer(src / "tokenizer.json", work / "tokenizer.json", info.max_length)
        (work / "config.json").write_text(json.dumps(info.config, indent=2, sort_keys=True), encoding="utf-8")
        partial = out.with_suffix(out.suffix + ".part")
        _write_zip(partial, [model_file, work / "tokenizer.json", work / "config.json"])
        partial.replace(out)
    digest, size = file_sha256(out)
    return ExportResult(out, digest, size, name, fmt, info.function_name, _model_config(info, dim))


def file_sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _describe(src: Path, pooling_mode: str | None, normalize: bool | None, max_length: int | None) -> _Source:
    config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    architectures = " ".join(config.get("architectures") or [])
    if "ForSequenceClassification" in architectures:
        function_name = "TEXT_SIMILARITY"
    elif "ForMaskedLM" in architectures and not (src / "modules.json").is_file():
        function_name = "SPARSE_ENCODING"
    else:
        function_name = "TEXT_EMBEDDING"
    st_pooling = _read(src / "1_Pooling" / "config.json")
    modules = json.loads((src / "modules.json").read_text()) if (src / "modules.json").is_file() else []
    st_normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
    st_max = _read(src / "sentence_bert_config.json").get("max_seq_length")
    return _Source(
        config=config,
        function_name=function_name,
        pooling_mode=canonical_pooling(pooling_mode or _st_pooling(st_pooling)),
        normalize=st_normalize if normalize is None else normalize,
        max_length=int(max_length or st_max or min(int(config.get("max_position_embeddings", 512)), 512)),
    )


def _st_pooling(pooling: dict[str, Any]) -> str:
    modes = {
        "pooling_mode_cls_token": "CLS",
        "pooling_mode_max_tokens": "MAX",
        "pooling_mode_mean_sqrt_len_tokens": "MEAN_SQRT_LEN",
        "pooling_mode_weightedmean_tokens": "WEIGHTEDMEAN",
        "pooling_mode_lasttoken": "LASTTOKEN",
        "pooling_mode_mean_tokens": "MEAN",
    }
    return next((mode for key, mode in modes.items() if pooling.get(key)), "MEAN")


def _model_config(info: _Source, dim: int) -> dict[str, Any]:
    config: dict[str, Any] = {
        "model_type": info.config.get("model_type"),
        "framework_type": "sentence_transformers",
        "all_config": json.dumps(info.config, sort_keys=True),
        "model_max_length": info.max_length,
    }
    if info.function_name == "TEXT_EMBEDDING":
        config.update(embedding_dimension=dim, pooling_mode=info.pooling_mode, normalize_result=info.normalize)
    else:
        config["framework_type"] = "huggingface_transformers"
    return config


def _convert(src: Path, info: _Source, fmt: str, model_file: Path) -> int:
    """Write the model file; returns the hidden size (the embedding dimension for TEXT_EMBEDDING)."""
    torch = import_torch()
    try:
        import transformers
    except ImportError as exc:
        raise IllegalArgumentError("model export needs transformers: pip install 'mlsearch[torch]'") from exc
    auto = {
        "TEXT_SIMILARITY": transformers.AutoModelForSequenceClassification,
        "SPARSE_ENCODING": transformers.AutoModelForMaskedLM,
    }.get(info.function_name, transformers.AutoModel)
    # Eager attention traces to plain MatMul/Softmax that both exporters handle; SDPA paths do not trace cleanly.
    model = auto.from_pretrained(str(src), attn_implementation="eager").eval()
    with_types = "token_type_ids" in _forward_parameters(model)
    wrapper = _wrap(torch, model, info, with_types)
    example = _example(torch, with_types, int(info.config.get("vocab_size") or 30522))
    with torch.inference_mode():
        if fmt == "ONNX":
            _export_onnx(torch, wrapper, example, model_file, info.function_name)
        else:
            traced = torch.jit.trace(wrapper, example_inputs=(example,), strict=False, check_trace=False)
            traced.save(str(model_file))
    return int(info.config.get("hidden_size") or info.config.get("dim") or 0)


def _forward_parameters(model: Any) -> set[str]:
    import inspect

    return set(inspect.signature(model.forward).parameters)


def _example(torch: Any, with_types: bool, vocab_size: int) -> dict[str, Any]:
    # Token values only need to be in range; the second row is padded so the trace sees a real mask.
    ids = torch.tensor([[101, 7592, 2088, 102, 0], [101, 7592, 2088, 2003, 102]], dtype=torch.long) % vocab_size
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.long)
    example = {"input_ids": ids, "attention_mask": mask}
    if with_types:
        example["token_type_ids"] = torch.zeros_like(ids)
    return example


def _wrap(torch: Any, model: Any, info: _Source, with_types: bool) -> Any:
    """A module taking a dict of named tensors (how ml-commons' DJL calls TorchScript models) and returning a dict:
    `token_embeddings` + pooled `sentence_embedding` for embedding models, `logits` otherwise."""

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, features: dict[str, Any]) -> dict[str, Any]:
            kwargs = {"input_ids": features["input_ids"], "attention_mask": features["attention_mask"]}
            if with_types:
                kwargs["token_type_ids"] = features["token_type_ids"]
            out = self.model(**kwargs)
            if info.function_name != "TEXT_EMBEDDING":
                return {"logits": out.logits}
            hidden = out.last_hidden_state
            pooled = _torch_pool(torch, hidden, features["attention_mask"], info.pooling_mode)
            if info.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
            return {"token_embeddings": hidden, "sentence_embedding": pooled}

    return Wrapper().eval()


def _torch_pool(torch: Any, hidden: Any, mask: Any, mode: str) -> Any:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "CLS":
        return hidden[:, 0]
    if mode == "MAX":
        return hidden.masked_fill(m == 0, -1e9).max(dim=1).values
    if mode == "LASTTOKEN":
        last = (mask.sum(dim=1) - 1).clamp(min=0)
        return hidden[torch.arange(hidden.shape[0]), last]
    if mode == "WEIGHTEDMEAN":
        m = m * torch.arange(1, hidden.shape[1] + 1, dtype=hidden.dtype).view(1, -1, 1)
    summed = (hidden * m).sum(dim=1)
    count = m.sum(dim=1).clamp(min=1e-9)
    return summed / (count.sqrt() if mode == "MEAN_SQRT_LEN" else count)


def _export_onnx(torch: Any, wrapper: Any, example: dict[str, Any], model_file: Path, function_name: str) -> None:
    """ONNX graphs output raw token embeddings (`last_hidden_state`); pooling runs in the runtime from model_config,
    as ml-commons does for ONNX models. torch 2.13's default exporter needs onnxscript, hence dynamo=False."""
    names = list(example)
    output = "last_hidden_state" if function_name == "TEXT_EMBEDDING" else "logits"

    class Positional(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = wrapper

        def forward(self, *tensors: Any) -> Any:
            out = self.inner(dict(zip(names, tensors, strict=True)))
            return out["token_embeddings"] if output == "last_hidden_state" else out["logits"]

    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes[output] = (
        {0: "batch", 1: "sequence"}
        if output == "last_hidden_state" or function_name == "SPARSE_ENCODING"
        else {0: "batch"}
    )
    torch.onnx.export(
        Positional().eval(),
        tuple(example.values()),
        str(model_file),
        input_names=names,
        output_names=[output],
        dynamic_axes=axes,
        opset_version=ONNX_OPSET,
        do_constant_folding=True,
        dynamo=False,
    )


def _optimize_onnx(model_file: Path, info: _Source, quantize: str | None) -> None:
    """Fuse the exported graph in place (and quantize it when asked); keep the plain graph if fusion fails or changes
    the outputs beyond float noise."""
    try:
        from onnxruntime.transformers.optimizer import optimize_model
    except ImportError:  # onnxruntime is a core dependency, but a trimmed install still gets a working export
        log.warning("onnxruntime.transformers is unavailable: exporting an unfused ONNX graph")
        return
    fused = model_file.with_name(model_file.stem + ".fused.onnx")
    try:
        # Heads and width come from config.json: the optimizer cannot read them off torch's export (it then skips
        # attention fusion). opt_level 1 = onnxruntime's basic, hardware-independent rewrites (constant folding,
        # redundant nodes) before the fusions, so the file still runs on any CPU; the session applies its extended,
        # machine-specific passes at load time.
        heads = int(info.config.get("num_attention_heads") or info.config.get("n_heads") or 0)
        hidden = int(info.config.get("hidden_size") or info.config.get("dim") or 0)
        model = optimize_model(str(model_file), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1)
        model.save_model_to_file(str(fused))
    except Exception as exc:  # the optimizer raises whatever its pattern matchers hit on unfamiliar graphs
        log.warning("ONNX fusion failed (%s): exporting the unfused graph", exc)
        fused.unlink(missing_ok=True)
    else:
        if _same_outputs(model_file, fused, info, atol=1e-3):
            fused.replace(model_file)
        else:
            log.warning("fused ONNX graph changed the outputs: exporting the unfused graph")
            fused.unlink()
    if quantize:
        _quantize_int8(model_file)


def _quantize_int8(model_file: Path) -> None:
    """Dynamic int8: per-channel weights with reduce_range (7-bit), which keeps MiniLM at cosine ~0.99 of fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = model_file.with_name(model_file.stem + ".pre.onnx")
    quantized = model_file.with_name(model_file.stem + ".int8.onnx")
    quant_pre_process(str(model_file), str(prepared), skip_symbolic_shape=True)
    quantize_dynamic(
        str(prepared),
        str(quantized),
        per_channel=True,
        reduce_range=True,
        weight_type=QuantType.QInt8,
        # Shape inference cannot type the outputs of the fused com.microsoft ops; everything here is float32.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    prepared.unlink()
    quantized.replace(model_file)


def _same_outputs(reference: Path, candidate: Path, info: _Source, atol: float) -> bool:
    """Both graphs on a padded batch of random tokens: equal within `atol` (relative to the output scale)."""
    import numpy as np
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    vocab = int(info.config.get("vocab_size") or 30522)
    ids = rng.integers(1, vocab, size=(3, 19), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 12:] = 0
    outputs = []
    for path in (reference, candidate):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        names = [i.name for i in session.get_inputs()]
        outputs.append(session.run(None, {n: feeds[n] for n in names})[0])
    expected, actual = outputs
    scale = max(1.0, float(np.abs(expected).max()))
    # Padded positions are garbage either way; compare the rows' real tokens only for token-level outputs.
    keep = mask.astype(bool) if expected.ndim == 3 else np.ones(expected.shape[0], dtype=bool)
    return expected.shape == actual.shape and bool(np.abs(expected[keep] - actual[keep]).max() <= atol * scale)


def _write_tokenizer(src: Path, dest: Path, max_length: int) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(src))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    tokenizer.save(str(dest))


def _write_zip(path: Path, files: list[Path]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for file in files:
            info = zipfile.ZipInfo(file.name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with file.open("rb") as src, zf.open(info, "w") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    value = json.loads(path.read_text(encoding="utf-8"))
    return value if isinstance(value, dict) else {}
