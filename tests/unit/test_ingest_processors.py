"""Ingest processors in-process: chunking offsets and overlap against hand-computed chunks, the condition
evaluator, sparse pruning, the embedding cache (LRU bound, persistence), and batching through a counting fake model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlsearch.errors import IllegalArgumentError, ParseError, ScriptError
from mlsearch.ml.predictor import PredictInput, Tensor
from mlsearch.pipelines.base import Services, registry
from mlsearch.pipelines.cache import EmbeddingCache
from mlsearch.pipelines.condition import ConditionError, compile_condition
from mlsearch.pipelines.document import IngestDocument
from mlsearch.pipelines.ingest.sparse_encoding import prune
from mlsearch.pipelines.ingest.text_chunking import delimiter, fixed_char_length, fixed_token_length
from mlsearch.pipelines.store import PipelineStore

TEXT = "one two three four five six seven"
#       0   4   8     14   19   24  28


def test_fixed_token_length_offsets_without_overlap() -> None:
    assert fixed_token_length(3, 0.0, "standard")(TEXT, -1) == ["one two three ", "four five six ", "seven"]


def test_fixed_token_length_overlap_shares_floor_of_limit_times_rate() -> None:
    # limit 4, rate 0.5 -> 2 shared tokens, a new chunk every 2 tokens; the last chunk runs to the end
    assert fixed_token_length(4, 0.5, "standard")(TEXT, -1) == [
        "one two three four ",
        "three four five six ",
        "five six seven",
    ]
    # rate 0.3 of 3 floors to 0 shared tokens
    assert fixed_token_length(3, 0.3, "standard")(TEXT, -1) == ["one two three ", "four five six ", "seven"]


def test_fixed_token_length_keeps_leading_text_and_punctuation() -> None:
    assert fixed_token_length(2, 0.0, "standard")("  Hi, there! How are you?", -1) == [
        "  Hi, there! ",
        "How are ",
        "you?",
    ]


def test_max_chunk_limit_puts_the_rest_in_the_last_chunk() -> None:
    assert fixed_token_length(2, 0.0, "standard")(TEXT, 2) == ["one two ", "three four five six seven"]
    assert fixed_char_length(5, 0.0)("abcdefghijkl", 2) == ["abcde", "fghijkl"]
    assert delimiter(".")("a.b.c.d", 2) == ["a.", "b.c.d"]


def test_fixed_char_length_and_delimiter() -> None:
    assert fixed_char_length(4, 0.25)("abcdefghij", -1) == ["abcd", "defg", "ghij"]
    assert delimiter("\n\n")("p1\n\np2\n\np3", -1) == ["p1\n\n", "p2\n\n", "p3"]
    assert delimiter(".")("a.b.", -1) == ["a.", "b."]


def test_chunking_processor_nested_field_map_and_document_wide_limit() -> None:
    step = _step(
        "text_chunking",
        {
            "field_map": {"a": "a_chunks", "obj": {"b": "b_chunks"}},
            "algorithm": {"fixed_token_length": {"token_limit": 1, "max_chunk_limit": 3}},
        },
    )
    doc = IngestDocument({"a": "x y", "obj": {"b": "p q r"}, "none": None})
    step.processor.execute(doc)
    assert doc.source["a_chunks"] == ["x ", "y"]
    assert doc.source["obj"]["b_chunks"] == ["p q r"]  # one chunk left in the document's budget


def test_chunking_config_errors() -> None:
    with pytest.raises(IllegalArgumentError, match="overlap_rate"):
        _step("text_chunking", {"field_map": {"a": "b"}, "algorithm": {"fixed_token_length": {"overlap_rate": 0.6}}})
    with pytest.raises(IllegalArgumentError, match="not supported"):
        _step("text_chunking", {"field_map": {"a": "b"}, "algorithm": {"sentences": {}}})
    with pytest.raises(ParseError, match="doesn't support"):
        _step("text_chunking", {"field_map": {"a": "b"}, "algorithm": {"delimiter": {"token_limit": 3}}})


@pytest.mark.parametrize(
    ("source", "result"),
    [
        ("ctx.a == 1 && (ctx.b == null || ctx.c.d > 2)", True),
        ("!(ctx.a == 1)", False),
        ("ctx.s != 'x' && ctx.s.endsWith('z')", True),
        ("ctx?.missing?.deeper == null", True),
        ("ctx.list[1] == 'b'", True),
    ],
)
def test_conditions(source: str, result: bool) -> None:
    ctx = {"a": 1, "c": {"d": 3}, "s": "yz", "list": ["a", "b"]}
    assert compile_condition(source)(ctx) is result


def test_conditions_refuse_code_and_fail_on_null_dereference() -> None:
    for bad in ("ctx.a = 1", "System.exit(0)", "ctx.a.getClass()", "ctx.a +"):
        with pytest.raises(ScriptError):
            compile_condition(bad)
    with pytest.raises(ConditionError):
        compile_condition("ctx.missing.deeper == 1")({})


def test_prune_rules() -> None:
    weights = {"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0}
    assert prune(weights, "top_k", 2) == {"a": 4.0, "b": 3.0}
    assert prune(weights, "max_ratio", 0.5) == {"a": 4.0, "b": 3.0, "c": 2.0}
    assert prune(weights, "abs_value", 2.5) == {"a": 4.0, "b": 3.0}
    assert prune(weights, "alpha_mass", 0.7) == {"a": 4.0, "b": 3.0}  # 7 <= 0.7 * 10
    assert prune(weights, "none", 0) == weights


def test_cache_is_a_bounded_lru_and_persists(tmp_path: Path) -> None:
    vec = np.ones(4, dtype=np.float32)  # 16 bytes
    cache = EmbeddingCache(max_bytes=32)
    cache.put_many("m", ["a", "b"], [vec, vec * 2])
    cache.get_many("m", ["a"])  # touch a: b becomes the oldest
    cache.put_many("m", ["c"], [vec * 3])
    assert [v is not None for v in cache.get_many("m", ["a", "b", "c"])] == [True, False, True]
    assert cache.get_many("other-model", ["a"]) == [None]
    stored = EmbeddingCache(path=tmp_path / "cache.sqlite")
    stored.put_many("m", ["x"], [vec * 5])
    stored.close()
    reopened = EmbeddingCache(path=tmp_path / "cache.sqlite")
    np.testing.assert_array_equal(reopened.get_many("m", ["x"])[0], vec * 5)


class CountingModel:
    """A fake model: the vector of a text is [len(text)]; sparse output maps words to their lengths."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def infer(self, model_id: str, inputs: PredictInput) -> list[list[Tensor]]:
        self.calls.append(list(inputs.text_docs))
        if model_id == "sparse":
            return [
                [Tensor("output", data_as_map={"response": [{w: float(len(w)) for w in t.split()}]})]
                for t in inputs.text_docs
            ]
        return [[Tensor("sentence_embedding", data=np.array([len(t)], dtype=np.float32))] for t in inputs.text_docs]


def test_text_embedding_batches_documents_dedupes_and_caches() -> None:
    model = CountingModel()
    store = PipelineStore(Path("/nonexistent/p.json"), Services(models=model, cache=EmbeddingCache()))
    pipeline = store.parse(
        "p",
        {"processors": [{"text_embedding": {"model_id": "m", "field_map": {"t": "v", "ts": "vs"}, "batch_size": 2}}]},
    )
    docs = [IngestDocument({"t": "aa", "ts": ["b", "aa"]}), IngestDocument({"t": "ccc"}), IngestDocument({"t": "aa"})]
    out = pipeline.run(docs)
    assert model.calls == [["aa", "b", "ccc"]]  # docs 0-1 in one call, duplicates once; doc 2 came from the cache
    assert [d.source for d in out] == [  # type: ignore[union-attr]
        {"t": "aa", "ts": ["b", "aa"], "v": [2.0], "vs": [{"knn": [1.0]}, {"knn": [2.0]}]},
        {"t": "ccc", "v": [3.0]},
        {"t": "aa", "v": [2.0]},
    ]


def test_sparse_encoding_prunes_and_wraps_lists() -> None:
    model = CountingModel()
    store = PipelineStore(Path("/nonexistent/p.json"), Services(models=model))
    pipeline = store.parse(
        "p",
        {
            "processors": [
                {
                    "sparse_encoding": {
                        "model_id": "sparse",
                        "field_map": {"t": "s", "l": "ls"},
                        "prune_type": "top_k",
                        "prune_ratio": 1,
                    }
                }
            ]
        },
    )
    [doc] = pipeline.run([IngestDocument({"t": "a bbb cc", "l": ["dd e"]})])
    assert doc.source["s"] == {"bbb": 3.0}  # type: ignore[union-attr]
    assert doc.source["ls"] == [{"sparse_encoding": {"dd": 2.0}}]  # type: ignore[union-attr]
    assert len(model.calls) == 1


def _step(type_name: str, conf: dict[str, Any]) -> Any:
    from mlsearch.pipelines.runner import parse_step

    return parse_step(type_name, conf, registry, Services(registry=registry))
