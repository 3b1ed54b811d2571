"""rank_features indexing and the `neural_sparse` query: mapping checks, sum of query weight * stored weight scoring (with
Lucene's 9-bit stored weights), updates and deletes after refresh, persistence across a restart and a `kill -9`,
composition with bool, the `rank_feature` query, and `query_text` through a SPARSE_TOKENIZE model built here."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import math
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch, TransportError

from mlsearch.launcher import ServerProcess
from tests import neural_support
from tests.conftest import assert_error
from tests.neural_support import wait_deployed, wait_task

minilm_zip, neural_node, nclient = neural_support.minilm_zip, neural_support.neural_node, neural_support.nclient

MAPPING = {
    "properties": {
        "title": {"type": "keyword"},
        "sp": {"type": "rank_features"},
        "pagerank": {"type": "rank_feature"},
        "age": {"type": "rank_feature", "positive_score_impact": False},
    }
}
DOCS = {
    "1": {"title": "a", "sp": {"hello": 2.0, "world": 0.5}, "pagerank": 8.0, "age": 2.0},
    "2": {"title": "b", "sp": {"hello": 1.25}, "pagerank": 2.0, "age": 4.0},
    "3": {"title": "c", "sp": {"world": 3.0, "other": 1.2345}, "pagerank": 1.0},
    "4": {"title": "d", "sp": {"unrelated": 1.0}},
}


def _stored(w: float) -> float:
    """A weight as Lucene's FeatureField keeps it: the float32's top 17 bits."""
    import struct

    bits = struct.unpack("<I", struct.pack("<f", w))[0] >> 15 << 15
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def _expected(query: dict[str, float], docs: dict[str, dict[str, Any]]) -> dict[str, float]:
    out = {}
    for doc_id, doc in docs.items():
        shared = [t for t in doc["sp"] if t in query]
        if shared:
            out[doc_id] = sum(query[t] * _stored(doc["sp"][t]) for t in shared)
    return out


def _hits(resp: dict[str, Any]) -> dict[str, float]:
    return {h["_id"]: h["_score"] for h in resp["hits"]["hits"]}


def _error(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(TransportError) as info:
        call()
    return info.value.info


def _load(client: OpenSearch, index: str, docs: dict[str, dict[str, Any]] = DOCS) -> None:
    client.indices.create(index=index, body={"mappings": MAPPING})
    for doc_id, doc in docs.items():
        client.index(index=index, id=doc_id, body=doc)
    client.indices.refresh(index=index)


def _sparse(client: OpenSearch, index: str, tokens: dict[str, float], **extra: Any) -> dict[str, float]:
    body = {"query": {"neural_sparse": {"sp": {"query_tokens": tokens, **extra}}}}
    return _hits(client.search(index=index, body=body))


def test_rank_features_values_are_checked(client: OpenSearch, index_name: str) -> None:
    client.indices.create(index=index_name, body={"mappings": MAPPING})
    for bad, part in (({"x": -1.0}, "negative or zero"), ({"x": 0}, "negative or zero"), ({"x": "a"}, "numbers")):
        err = _error(lambda bad=bad: client.index(index=index_name, id="x", body={"sp": bad}))
        assert_error(err, 400, "mapper_parsing_exception", part)
    assert client.count(index=index_name)["count"] == 0


def test_query_tokens_score_as_the_dot_product(client: OpenSearch, index_name: str) -> None:
    _load(client, index_name)
    query = {"hello": 1.5, "world": 2.0, "other": 1.0}
    want = _expected(query, DOCS)
    got = _sparse(client, index_name, query)
    assert list(got) == sorted(want, key=lambda i: -want[i])
    for doc_id, score in want.items():
        assert got[doc_id] == pytest.approx(score, rel=1e-6)
    assert got["3"] == pytest.approx(2.0 * 3.0 + 1.234375, rel=1e-6)  # 1.2345 is stored with 9 significant bits
    # max_token_score is deprecated and ignored; boost multiplies
    assert _sparse(client, index_name, query, max_token_score=0.1) == got
    boosted = _sparse(client, index_name, query, boost=2.0)
    assert {k: v / 2 for k, v in boosted.items()} == pytest.approx(got)


def test_updates_and_deletes_show_after_refresh(client: OpenSearch, index_name: str) -> None:
    _load(client, index_name)
    client.index(index=index_name, id="2", body={"sp": {"world": 4.0}})
    client.delete(index=index_name, id="1")
    client.index(index=index_name, id="5", body={"sp": {"hello": 0.5}})
    client.indices.refresh(index=index_name)
    got = _sparse(client, index_name, {"hello": 1.0, "world": 1.0})
    assert got == pytest.approx({"2": 4.0, "3": 3.0, "5": 0.5})


def test_neural_sparse_composes_with_bool(client: OpenSearch, index_name: str) -> None:
    _load(client, index_name)
    sparse = {"neural_sparse": {"sp": {"query_tokens": {"hello": 1.0, "world": 1.0}}}}
    body = {"query": {"bool": {"should": [sparse], "filter": [{"terms": {"title": ["a", "c"]}}]}}}
    assert _hits(client.search(index=index_name, body=body)) == pytest.approx({"1": 2.5, "3": 3.0})
    body = {"query": {"bool": {"must": [sparse, {"term": {"title": "b"}}]}}}
    (hit,) = client.search(index=index_name, body=body)["hits"]["hits"]
    assert hit["_id"] == "2" and hit["_score"] > 1.25  # the term query's constant score adds up


def test_rank_feature_functions(client: OpenSearch, index_name: str) -> None:
    _load(client, index_name)

    def scores(spec: dict[str, Any]) -> dict[str, float]:
        return _hits(client.search(index=index_name, body={"query": {"rank_feature": spec}}))

    assert scores({"field": "pagerank", "saturation": {"pivot": 8}}) == pytest.approx({"1": 0.5, "2": 0.2, "3": 1 / 9})
    assert scores({"field": "pagerank", "log": {"scaling_factor": 2}}) == pytest.approx(
        {"1": math.log(10), "2": math.log(4), "3": math.log(3)}
    )
    assert scores({"field": "pagerank", "sigmoid": {"pivot": 2, "exponent": 2}, "boost": 2}) == pytest.approx(
        {"1": 2 * 64 / 68, "2": 1.0, "3": 2 * 1 / 5}
    )
    assert scores({"field": "sp.world", "linear": {}}) == pytest.approx({"1": 0.5, "3": 3.0})
    # positive_score_impact: false stores 1 / value, so younger ranks higher
    assert scores({"field": "age", "linear": {}}) == pytest.approx({"1": 0.5, "2": 0.25})
    assert_error(
        _error(lambda: scores({"field": "age", "log": {"scaling_factor": 1}})),
        400,
        "illegal_argument_exception",
        "negative score impact",
    )
    assert_error(
        _error(lambda: scores({"field": "title"})),
        400,
        "illegal_argument_exception",
        "[rank_feature] query only works on [rank_feature] fields",
    )


def test_neural_sparse_errors(client: OpenSearch, index_name: str) -> None:
    _load(client, index_name)

    def search(spec: dict[str, Any], field: str = "sp") -> dict[str, Any]:
        return _error(lambda: client.search(index=index_name, body={"query": {"neural_sparse": {field: spec}}}))

    assert_error(
        search({}),
        400,
        "illegal_argument_exception",
        "either query_text field or query_tokens field must be provided for [neural_sparse] query",
    )
    assert_error(
        search({"query_tokens": {"a": 1}}, field="title"),
        400,
        "illegal_argument_exception",
        "[neural_sparse] query only works on [rank_features] fields",
    )
    assert_error(search({"query_tokens": {"a": 1}, "bogus": 1}), 400, "parsing_exception", "does not support [bogus]")
    assert_error(
        search({"query_text": "hi", "model_id": "m", "analyzer": "standard"}),
        400,
        "illegal_argument_exception",
        "can not be set at the same time",
    )
    assert_error(
        search({"query_text": "hi", "model_id": "no-such-model"}), 404, "status_exception", "Failed to find model"
    )


def test_features_survive_restart_and_kill_9(tmp_path: Path) -> None:
    node = ServerProcess(tmp_path / "data").start()
    try:
        client = OpenSearch(hosts=[{"host": node.host, "port": node.port}])
        _load(client, "s")
        client.indices.put_settings(index="s", body={"index": {"refresh_interval": "-1"}})
        node.stop()
        node = ServerProcess(tmp_path / "data").start()
        client = OpenSearch(hosts=[{"host": node.host, "port": node.port}])
        query = {"hello": 1.0, "world": 1.0}
        assert _sparse(client, "s", query) == pytest.approx(_expected(query, DOCS))
        # acknowledged but never refreshed: only the store's operations log has these when the process dies
        client.index(index="s", id="5", body={"sp": {"hello": 6.0}})
        client.delete(index="s", id="3")
        client.index(index="s", id="1", body={"sp": {"world": 1.0}})
        node.kill()
        node = ServerProcess(tmp_path / "data").start()
        client = OpenSearch(hosts=[{"host": node.host, "port": node.port}])
        assert _sparse(client, "s", query) == pytest.approx({"5": 6.0, "2": 1.25, "1": 1.0})
    finally:
        node.stop()


# ---- query_text through a SPARSE_TOKENIZE model ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer_model(nclient: OpenSearch, minilm_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SPARSE_TOKENIZE model made of MiniLM's tokenizer.json and an idf.json, registered by URL and deployed."""
    with zipfile.ZipFile(minilm_zip) as zf:
        tokenizer = zf.read("tokenizer.json")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("tokenizer.json", tokenizer)
        zf.writestr("idf.json", json.dumps({"hello": 2.5, "world": 0.5}))
    root = tmp_path_factory.mktemp("tokenizer-site")
    (root / "tok.zip").write_bytes(buffer.getvalue())
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    body = {
        "name": "test-tokenizer",
        "version": "1.0.0",
        "function_name": "SPARSE_TOKENIZE",
        "model_format": "ONNX",
        "model_content_hash_value": hashlib.sha256(buffer.getvalue()).hexdigest(),
        "url": f"http://127.0.0.1:{httpd.server_address[1]}/tok.zip",
    }
    created = nclient.plugins.ml.register_model(body=body, params={"deploy": "true"})
    task = wait_task(nclient, created["task_id"])
    assert task["state"] == "COMPLETED", task.get("error")
    assert wait_deployed(nclient, task["model_id"])["model_state"] == "DEPLOYED"
    yield task["model_id"]
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_query_text_through_a_tokenizer_model(nclient: OpenSearch, tokenizer_model: str) -> None:
    _load(nclient, "sparse-text")
    try:
        spec = {"query_text": "Hello, World!", "model_id": tokenizer_model}
        got = _hits(nclient.search(index="sparse-text", body={"query": {"neural_sparse": {"sp": spec}}}))
        assert got == pytest.approx(_expected({"hello": 2.5, "world": 0.5}, DOCS))
        # doc-only mode with an analyzer: every token weighs 1
        spec = {"query_text": "hello world", "analyzer": "standard"}
        got = _hits(nclient.search(index="sparse-text", body={"query": {"neural_sparse": {"sp": spec}}}))
        assert got == pytest.approx(_expected({"hello": 1.0, "world": 1.0}, DOCS))
        # a tokenizer model is not an embedding model
        body = {"query": {"neural": {"sp": {"query_text": "x", "model_id": tokenizer_model}}}}
        err = _error(lambda: nclient.search(index="sparse-text", body=body))
        assert_error(err, 400, "illegal_argument_exception", "needs a text embedding model")
    finally:
        nclient.indices.delete(index="sparse-text")
