"""The `semantic` field type (neural-search 3.1+) with the real all-MiniLM-L6-v2 and a sparse tokenizer model: the
mapping grows a `<field>_semantic_info` object from the model's config, writes embed the text (no pipeline) into
`_source`, `neural` queries need no model id, the raw text stays searchable, and bad mappings / models fail as in
OpenSearch."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import struct
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opensearchpy import OpenSearch, TransportError

from tests import neural_support
from tests.neural_support import embed, wait_deployed, wait_task

minilm_zip, neural_node = neural_support.minilm_zip, neural_support.neural_node
nclient, minilm_id = neural_support.nclient, neural_support.minilm_id

TEXTS = [
    "A cowboy rides a bucking bronco at the rodeo.",
    "The wild west was settled by pioneers in wagons.",
    "Neural networks learn representations from data.",
    "The stock market fell sharply on Monday.",
    "Horses gallop across the open prairie at dusk.",
    "A recipe for lemon cake with poppy seeds.",
]
MODEL_PROPS = {"properties": {k: {"type": "text", "index": False} for k in ("id", "name", "type")}}


def _error(call: Callable[[], Any]) -> tuple[int, dict[str, Any]]:
    with pytest.raises(TransportError) as info:
        call()
    return info.value.status_code, info.value.info["error"]


def _stats_predicts(client: OpenSearch, model_id: str) -> int:
    stats = client.transport.perform_request("GET", "/_plugins/_ml/stats")
    node = next(iter(stats["nodes"].values()))
    return int(node.get("models", {}).get(model_id, {}).get("predict", {}).get("ml_action_request_count", 0))


@pytest.fixture(scope="module")
def dense(nclient: OpenSearch, minilm_id: str) -> Iterator[str]:
    index = "semantic-dense"
    nclient.indices.create(
        index=index,
        body={
            "settings": {"index.knn": True},
            "mappings": {"properties": {"passage": {"type": "semantic", "model_id": minilm_id}, "n": {"type": "long"}}},
        },
    )
    yield index
    nclient.indices.delete(index=index)


def test_mapping_gets_the_semantic_info_field(nclient: OpenSearch, minilm_id: str, dense: str) -> None:
    props = nclient.indices.get_mapping(index=dense)[dense]["mappings"]["properties"]
    assert props["passage"] == {"type": "semantic", "model_id": minilm_id, "raw_field_type": "text"}
    assert props["passage_semantic_info"] == {
        "properties": {
            "embedding": {
                "type": "knn_vector",
                "dimension": 384,
                "method": {"engine": "faiss", "space_type": "l2", "name": "hnsw", "parameters": {}},
            },
            "model": MODEL_PROPS,
        }
    }


def test_bulk_embeds_in_one_model_call_and_neural_needs_no_model_id(
    nclient: OpenSearch, minilm_id: str, dense: str
) -> None:
    before = _stats_predicts(nclient, minilm_id)
    lines = []
    for i, text in enumerate(TEXTS):
        lines += [json.dumps({"index": {"_index": dense, "_id": str(i)}}), json.dumps({"passage": text, "n": i})]
    resp = nclient.bulk(body="\n".join(lines) + "\n", params={"refresh": "true"})
    assert resp["errors"] is False, resp
    assert _stats_predicts(nclient, minilm_id) - before == 1  # 6 documents, one batch (default batch size 10)
    want = embed(nclient, minilm_id, TEXTS)
    for i in range(len(TEXTS)):
        source = nclient.get(index=dense, id=str(i))["_source"]
        assert source["passage"] == TEXTS[i]
        info = source["passage_semantic_info"]
        assert info["model"] == {"id": minilm_id, "name": neural_support.MINILM, "type": "TEXT_EMBEDDING"}
        np.testing.assert_allclose(np.asarray(info["embedding"], dtype=np.float32), want[i], atol=1e-5)
    # neural on the semantic field: k-NN on its embedding with the field's model, scores 1 / (1 + squared L2)
    query = "wild west horses"
    qvec = embed(nclient, minilm_id, [query])[0]
    d2 = ((want - qvec) ** 2).sum(axis=1)
    expected = sorted(((str(i), 1.0 / (1.0 + float(d))) for i, d in enumerate(d2)), key=lambda kv: -kv[1])[:3]
    body = {"query": {"neural": {"passage": {"query_text": query, "k": 3}}}, "size": 3}
    hits = nclient.search(index=dense, body=body)["hits"]["hits"]
    assert [h["_id"] for h in hits] == [i for i, _ in expected]
    assert [h["_score"] for h in hits] == pytest.approx([s for _, s in expected], rel=1e-4)
    # the raw text is a text field
    hits = nclient.search(index=dense, body={"query": {"match": {"passage": "lemon cake"}}})["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["5"]


def test_agent_search_tools_query_semantic_fields_like_search_does(nclient: OpenSearch, minilm_id: str) -> None:
    index = "semantic-agent"
    mapping = {"properties": {"passage": {"type": "semantic", "model_id": minilm_id}}}
    nclient.indices.create(index=index, body={"settings": {"index.knn": True}, "mappings": mapping})
    try:
        for i, text in enumerate(TEXTS):
            nclient.index(index=index, id=str(i), body={"passage": text})
        nclient.indices.refresh(index=index)
        query = {"query": {"neural": {"passage": {"query_text": "wild west horses", "k": 3}}}, "size": 3}
        want = [h["_id"] for h in nclient.search(index=index, body=query)["hits"]["hits"]]
        assert len(want) == 3
        params = {"input": json.dumps({"index": index, "query": query})}
        out = nclient.transport.perform_request(
            "POST", "/_plugins/_ml/tools/_execute/SearchIndexTool", body={"parameters": params}
        )
        result = out["inference_results"][0]["output"][0]["result"]
        # SearchIndexTool answers one JSON hit per line, in rank order
        assert [json.loads(line)["_id"] for line in result.splitlines() if line.strip()] == want
    finally:
        nclient.indices.delete(index=index)


def test_single_document_write_embeds_it(nclient: OpenSearch, minilm_id: str, dense: str) -> None:
    text = "Sailing boats drift across a calm harbour."
    nclient.index(index=dense, id="single", body={"passage": text}, params={"refresh": "true"})
    source = nclient.get(index=dense, id="single")["_source"]
    got = np.asarray(source["passage_semantic_info"]["embedding"], dtype=np.float32)
    np.testing.assert_allclose(got, embed(nclient, minilm_id, [text])[0], atol=1e-5)
    # a document without the field gets no semantic info
    nclient.index(index=dense, id="bare", body={"n": 1}, params={"refresh": "true"})
    assert nclient.get(index=dense, id="bare")["_source"] == {"n": 1}


def test_updates_that_would_leave_a_stale_embedding_are_refused(
    nclient: OpenSearch, minilm_id: str, dense: str
) -> None:
    text = "Owls hunt at night over open fields."
    nclient.index(index=dense, id="upd", body={"passage": text, "n": 1}, params={"refresh": "true"})
    before = nclient.get(index=dense, id="upd")
    for body in (
        {"doc": {"passage": "Bees pollinate orchards in spring."}},
        {"script": {"source": "ctx._source.passage = 'Bees pollinate orchards.'"}},
    ):
        status, error = _error(lambda body=body: nclient.update(index=dense, id="upd", body=body))
        assert (status, error["type"]) == (400, "illegal_argument_exception")
        assert "semantic field [passage]" in error["reason"]
    status, error = _error(
        lambda: nclient.update(index=dense, id="new-upd", body={"doc": {"passage": "x"}, "doc_as_upsert": True})
    )
    assert status == 400 and "semantic field [passage]" in error["reason"]
    after = nclient.get(index=dense, id="upd")
    assert (after["_version"], after["_source"]) == (before["_version"], before["_source"])
    # other fields update as usual, and the embedding stays that of the unchanged text
    nclient.update(index=dense, id="upd", body={"doc": {"n": 2}}, params={"refresh": "true"})
    source = nclient.get(index=dense, id="upd")["_source"]
    assert source["n"] == 2 and source["passage"] == text
    np.testing.assert_allclose(
        np.asarray(source["passage_semantic_info"]["embedding"], dtype=np.float32),
        embed(nclient, minilm_id, [text])[0],
        atol=1e-5,
    )


def test_mapping_errors(nclient: OpenSearch, minilm_id: str) -> None:
    def create(field: dict[str, Any]) -> Callable[[], Any]:
        body = {"settings": {"index.knn": True}, "mappings": {"properties": {"p": field}}}
        return lambda: nclient.indices.create(index="semantic-bad", body=body)

    status, err = _error(create({"type": "semantic"}))
    assert (status, err["type"]) == (400, "illegal_argument_exception")
    assert err["reason"] == "model_id is required for the semantic field at p"
    status, err = _error(create({"type": "semantic", "model_id": "no-such-model"}))
    assert (status, err["type"], err["reason"]) == (404, "status_exception", "Failed to find model")
    status, err = _error(create({"type": "semantic", "model_id": minilm_id, "chunking": "yes"}))
    assert (status, err["type"]) == (400, "mapper_parsing_exception")
    status, err = _error(create({"type": "semantic", "model_id": minilm_id, "chunking": [{"algorithm": "nope"}]}))
    assert (status, err["type"]) == (400, "illegal_argument_exception")
    assert "chunker algorithm [nope] is not supported" in err["reason"]
    status, err = _error(create({"type": "semantic", "model_id": minilm_id, "raw_field_type": "long"}))
    assert (status, err["type"]) == (400, "mapper_parsing_exception")
    status, err = _error(create({"type": "semantic", "model_id": minilm_id, "bogus": 1}))
    assert "unknown parameter [bogus]" in err["reason"]
    assert not nclient.indices.exists(index="semantic-bad")


def test_a_model_of_another_kind_is_refused(nclient: OpenSearch) -> None:
    rows = [[0.0, 0.0], [0.1, 0.1], [5.0, 5.0], [5.1, 5.1]]
    frame = {
        "column_metas": [{"name": n, "column_type": "DOUBLE"} for n in ("a", "b")],
        "rows": [{"values": [{"column_type": "DOUBLE", "value": v} for v in row]} for row in rows],
    }
    trained = nclient.transport.perform_request(
        "POST", "/_plugins/_ml/_train/kmeans", body={"parameters": {"centroids": 2}, "input_data": frame}
    )
    kmeans = trained["model_id"]
    body = {"mappings": {"properties": {"p": {"type": "semantic", "model_id": kmeans}}}}
    status, err = _error(lambda: nclient.indices.create(index="semantic-kmeans", body=body))
    assert (status, err["type"]) == (400, "illegal_argument_exception")
    assert err["reason"] == (
        f"Failed to transform the mapping for the semantic field at p due to The algorithm KMEANS of the model "
        f"{kmeans} is not supported in the semantic field. Supported algorithms: "
        f"[TEXT_EMBEDDING,REMOTE,SPARSE_ENCODING,SPARSE_TOKENIZE]."
    )


def test_put_mapping_adds_a_semantic_field(nclient: OpenSearch, minilm_id: str) -> None:
    index = "semantic-put"
    nclient.indices.create(index=index, body={"settings": {"index.knn": True}})
    try:
        body = {"properties": {"body": {"type": "semantic", "model_id": minilm_id, "semantic_info_field_name": "bi"}}}
        nclient.indices.put_mapping(index=index, body=body)
        nclient.indices.put_mapping(index=index, body=body)  # again: the same semantic info merges cleanly
        props = nclient.indices.get_mapping(index=index)[index]["mappings"]["properties"]
        assert props["bi"]["properties"]["embedding"]["dimension"] == 384
        nclient.index(index=index, id="1", body={"body": "hello there"}, params={"refresh": "true"})
        assert len(nclient.get(index=index, id="1")["_source"]["bi"]["embedding"]) == 384
    finally:
        nclient.indices.delete(index=index)


# ---- sparse: a SPARSE_TOKENIZE model (MiniLM's tokenizer and an idf table) -------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def tokenizer_site(minilm_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with zipfile.ZipFile(minilm_zip) as zf:
        tokenizer = zf.read("tokenizer.json")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("tokenizer.json", tokenizer)
        zf.writestr("idf.json", json.dumps({"hello": 2.5, "world": 0.5}))
    root = tmp_path_factory.mktemp("semantic-tokenizer")
    (root / "tok.zip").write_bytes(buffer.getvalue())
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/tok.zip", hashlib.sha256(buffer.getvalue()).hexdigest()
    httpd.shutdown()


def _register_tokenizer(client: OpenSearch, site: tuple[str, str], deploy: bool) -> str:
    body = {
        "name": "semantic-tokenizer",
        "version": "1.0.0",
        "function_name": "SPARSE_TOKENIZE",
        "model_format": "ONNX",
        "model_content_hash_value": site[1],
        "url": site[0],
    }
    created = client.plugins.ml.register_model(body=body, params={"deploy": "true" if deploy else "false"})
    task = wait_task(client, created["task_id"])
    assert task["state"] == "COMPLETED", task.get("error")
    if deploy:
        assert wait_deployed(client, task["model_id"])["model_state"] == "DEPLOYED"
    return str(task["model_id"])


def _stored(w: float) -> float:
    """A weight as rank_features keeps it (Lucene's FeatureField: the float32's top 17 bits)."""
    bits = struct.unpack("<I", struct.pack("<f", w))[0] >> 15 << 15
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def test_sparse_semantic_field(nclient: OpenSearch, tokenizer_site: tuple[str, str]) -> None:
    model = _register_tokenizer(nclient, tokenizer_site, deploy=True)
    index = "semantic-sparse"
    nclient.indices.create(
        index=index, body={"mappings": {"properties": {"t": {"type": "semantic", "model_id": model}}}}
    )
    try:
        props = nclient.indices.get_mapping(index=index)[index]["mappings"]["properties"]
        assert props["t_semantic_info"] == {
            "properties": {"embedding": {"type": "rank_features"}, "model": MODEL_PROPS}
        }
        docs = {"1": "hello world", "2": "hello there", "3": "nothing in common"}
        lines = []
        for doc_id, text in docs.items():
            lines += [json.dumps({"index": {"_id": doc_id}}), json.dumps({"t": text})]
        assert nclient.bulk(index=index, body="\n".join(lines) + "\n", params={"refresh": "true"})["errors"] is False
        stored = {i: nclient.get(index=index, id=i)["_source"]["t_semantic_info"] for i in docs}
        assert stored["1"]["embedding"] == {"hello": 2.5, "world": 0.5}
        assert stored["1"]["model"] == {"id": model, "name": "semantic-tokenizer", "type": "SPARSE_TOKENIZE"}
        query = {"hello": 2.5, "world": 0.5}
        want = {}
        for i, info in stored.items():
            shared = [t for t in info["embedding"] if t in query]
            if shared:
                want[i] = sum(query[t] * _stored(info["embedding"][t]) for t in shared)
        body = {"query": {"neural": {"t": {"query_text": "Hello, World!"}}}}
        got = {h["_id"]: h["_score"] for h in nclient.search(index=index, body=body)["hits"]["hits"]}
        assert got == pytest.approx(want)
        # an analyzer instead of the model at query time: every token weighs 1
        spec = {"query_text": "hello world", "semantic_field_search_analyzer": "standard"}
        got = {
            h["_id"]: h["_score"]
            for h in nclient.search(index=index, body={"query": {"neural": {"t": spec}}})["hits"]["hits"]
        }
        ones = {
            i: sum(_stored(e["embedding"][t]) for t in ("hello", "world") if t in e["embedding"])
            for i, e in stored.items()
        }
        assert got == pytest.approx({i: v for i, v in ones.items() if v})
        # k-NN options make no sense on a sparse embedding
        status, err = _error(
            lambda: nclient.search(index=index, body={"query": {"neural": {"t": {"query_text": "x", "k": 3}}}})
        )
        assert status == 400 and "[k]" in err["reason"]
    finally:
        nclient.indices.delete(index=index)


def test_chunking_with_a_sparse_model_is_refused(nclient: OpenSearch, tokenizer_site: tuple[str, str]) -> None:
    model = _register_tokenizer(nclient, tokenizer_site, deploy=False)
    body = {"mappings": {"properties": {"t": {"type": "semantic", "model_id": model, "chunking": True}}}}
    status, err = _error(lambda: nclient.indices.create(index="semantic-sparse-chunks", body=body))
    assert (status, err["type"]) == (400, "illegal_argument_exception")
    assert "chunking with a sparse model is not supported" in err["reason"]


def test_a_failing_model_call_fails_the_document(nclient: OpenSearch, tokenizer_site: tuple[str, str]) -> None:
    model = _register_tokenizer(nclient, tokenizer_site, deploy=False)  # registered, never deployed
    index = "semantic-undeployed"
    nclient.indices.create(
        index=index, body={"mappings": {"properties": {"t": {"type": "semantic", "model_id": model}}}}
    )
    try:
        status, err = _error(lambda: nclient.index(index=index, id="1", body={"t": "hello"}))
        assert status == 400 and err["type"] == "illegal_argument_exception"
        lines = [json.dumps({"index": {"_id": "2"}}), json.dumps({"t": "hello"})]
        resp = nclient.bulk(index=index, body="\n".join(lines) + "\n", params={"refresh": "true"})
        assert resp["errors"] is True and resp["items"][0]["index"]["status"] == 400
        assert nclient.count(index=index)["count"] == 0
    finally:
        nclient.indices.delete(index=index)


def test_batch_size_setting_and_skip_existing_embedding(nclient: OpenSearch, minilm_id: str) -> None:
    index = "semantic-batch"
    field = {"type": "semantic", "model_id": minilm_id, "skip_existing_embedding": True}
    nclient.indices.create(
        index=index,
        body={
            "settings": {"index.knn": True, "index.neural_search.semantic_ingest_batch_size": 2},
            "mappings": {"properties": {"p": field}},
        },
    )
    try:
        # texts no other test embeds: the node's embedding cache would answer for those
        texts = [f"batch sentence number {i} about rivers and mountains" for i in range(5)]
        lines = []
        for i, text in enumerate(texts):
            lines += [json.dumps({"index": {"_id": str(i)}}), json.dumps({"p": text})]
        before = _stats_predicts(nclient, minilm_id)
        assert nclient.bulk(index=index, body="\n".join(lines) + "\n", params={"refresh": "true"})["errors"] is False
        assert _stats_predicts(nclient, minilm_id) - before == 3  # 5 documents in batches of 2
        # the same text again makes no model call (stored embedding reused, or the embedding cache); a new text does
        before = _stats_predicts(nclient, minilm_id)
        nclient.index(index=index, id="0", body={"p": texts[0]}, params={"refresh": "true"})
        assert _stats_predicts(nclient, minilm_id) == before
        assert len(nclient.get(index=index, id="0")["_source"]["p_semantic_info"]["embedding"]) == 384
        fresh = "a different sentence about deserts at noon"
        nclient.index(index=index, id="0", body={"p": fresh}, params={"refresh": "true"})
        assert _stats_predicts(nclient, minilm_id) == before + 1
        got = np.asarray(nclient.get(index=index, id="0")["_source"]["p_semantic_info"]["embedding"], np.float32)
        np.testing.assert_allclose(got, embed(nclient, minilm_id, [fresh])[0], atol=1e-5)
        status, err = _error(
            lambda: nclient.indices.put_settings(
                index=index, body={"index.neural_search.semantic_ingest_batch_size": 0}
            )
        )
        assert status == 400 and err["type"] == "illegal_argument_exception"
    finally:
        nclient.indices.delete(index=index)


def test_dense_embedding_config_and_raw_field_type(nclient: OpenSearch, minilm_id: str) -> None:
    index = "semantic-config"
    field = {
        "type": "semantic",
        "model_id": minilm_id,
        "search_model_id": minilm_id,
        "raw_field_type": "keyword",
        "dense_embedding_config": {"method": {"name": "hnsw", "engine": "faiss", "parameters": {"m": 8}}},
    }
    nclient.indices.create(
        index=index, body={"settings": {"index.knn": True}, "mappings": {"properties": {"p": field}}}
    )
    try:
        props = nclient.indices.get_mapping(index=index)[index]["mappings"]["properties"]
        assert props["p"]["raw_field_type"] == "keyword"
        assert props["p_semantic_info"]["properties"]["embedding"]["method"] == {
            "engine": "faiss",
            "space_type": "l2",
            "name": "hnsw",
            "parameters": {"m": 8},
        }
        for i, text in enumerate(TEXTS[:3]):
            nclient.index(index=index, id=str(i), body={"p": text})
        nclient.indices.refresh(index=index)
        # keyword raw field: exact term only
        hits = nclient.search(index=index, body={"query": {"term": {"p": TEXTS[1]}}})["hits"]["hits"]
        assert [h["_id"] for h in hits] == ["1"]
        body = {"query": {"neural": {"p": {"query_text": "cowboy at a rodeo", "k": 1}}}, "size": 1}
        assert [h["_id"] for h in nclient.search(index=index, body=body)["hits"]["hits"]] == ["0"]
        bad = {"type": "semantic", "model_id": minilm_id, "dense_embedding_config": {"dimension": 3}}
        status, err = _error(lambda: nclient.indices.put_mapping(index=index, body={"properties": {"q": bad}}))
        assert (status, err["type"]) == (400, "mapper_parsing_exception")
    finally:
        nclient.indices.delete(index=index)


def test_semantic_field_inside_an_object(nclient: OpenSearch, minilm_id: str) -> None:
    index = "semantic-object"
    mappings = {"properties": {"doc": {"properties": {"body": {"type": "semantic", "model_id": minilm_id}}}}}
    nclient.indices.create(index=index, body={"settings": {"index.knn": True}, "mappings": mappings})
    try:
        props = nclient.indices.get_mapping(index=index)[index]["mappings"]["properties"]["doc"]["properties"]
        assert set(props) == {"body", "body_semantic_info"}
        field = nclient.indices.get_field_mapping(index=index, fields="doc.body")[index]["mappings"]["doc.body"]
        assert field["mapping"]["body"]["type"] == "semantic"
        for i, text in enumerate(TEXTS[:4]):
            nclient.index(index=index, id=str(i), body={"doc": {"body": text}})
        nclient.indices.refresh(index=index)
        source = nclient.get(index=index, id="3")["_source"]
        assert source["doc"]["body"] == TEXTS[3] and len(source["doc"]["body_semantic_info"]["embedding"]) == 384
        body = {"query": {"neural": {"doc.body": {"query_text": "stock prices dropped", "k": 1}}}, "size": 1}
        assert [h["_id"] for h in nclient.search(index=index, body=body)["hits"]["hits"]] == ["3"]
    finally:
        nclient.indices.delete(index=index)


def test_chunked_semantic_field(nclient: OpenSearch, minilm_id: str) -> None:
    index = "semantic-chunks"
    chunking = [{"algorithm": "delimiter", "parameters": {"delimiter": "\n\n"}}]
    field = {"type": "semantic", "model_id": minilm_id, "chunking": chunking}
    nclient.indices.create(
        index=index, body={"settings": {"index.knn": True}, "mappings": {"properties": {"p": field}}}
    )
    try:
        info = nclient.indices.get_mapping(index=index)[index]["mappings"]["properties"]["p_semantic_info"]
        chunks_mapping = info["properties"]["chunks"]
        assert chunks_mapping["type"] == "nested" and chunks_mapping["properties"]["text"] == {"type": "text"}
        assert chunks_mapping["properties"]["embedding"]["dimension"] == 384
        docs = {"a": [TEXTS[0], TEXTS[3]], "b": [TEXTS[2], TEXTS[5], TEXTS[1]]}
        for doc_id, parts in docs.items():
            nclient.index(index=index, id=doc_id, body={"p": "\n\n".join(parts)})
        nclient.indices.refresh(index=index)
        stored = nclient.get(index=index, id="b")["_source"]["p_semantic_info"]
        assert [c["text"] for c in stored["chunks"]] == [TEXTS[2] + "\n\n", TEXTS[5] + "\n\n", TEXTS[1]]
        want = embed(nclient, minilm_id, [c["text"] for c in stored["chunks"]])
        got = np.asarray([c["embedding"] for c in stored["chunks"]], dtype=np.float32)
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert stored["model"]["id"] == minilm_id
        # parents score by their best chunk
        query = "pioneers travelling west in wagons"
        qvec = embed(nclient, minilm_id, [query])[0]
        best = {}
        for doc_id in docs:
            chunks = nclient.get(index=index, id=doc_id)["_source"]["p_semantic_info"]["chunks"]
            vecs = np.asarray([c["embedding"] for c in chunks], dtype=np.float32)
            best[doc_id] = float(max(1.0 / (1.0 + ((vecs - qvec) ** 2).sum(axis=1))))
        hits = nclient.search(index=index, body={"query": {"neural": {"p": {"query_text": query}}}})["hits"]["hits"]
        assert [h["_id"] for h in hits] == sorted(best, key=lambda i: -best[i])
        assert {h["_id"]: h["_score"] for h in hits} == pytest.approx(best, rel=1e-4)
    finally:
        nclient.indices.delete(index=index)


def test_reindex_into_a_semantic_index_embeds(nclient: OpenSearch, minilm_id: str) -> None:
    src, dest = "semantic-reindex-src", "semantic-reindex-dest"
    nclient.indices.create(index=src, body={"mappings": {"properties": {"p": {"type": "text"}}}})
    mappings = {"properties": {"p": {"type": "semantic", "model_id": minilm_id}}}
    nclient.indices.create(index=dest, body={"settings": {"index.knn": True}, "mappings": mappings})
    try:
        for i, text in enumerate(TEXTS[:3]):
            nclient.index(index=src, id=str(i), body={"p": text})
        nclient.indices.refresh(index=src)
        resp = nclient.reindex(body={"source": {"index": src}, "dest": {"index": dest}}, params={"refresh": "true"})
        assert resp["created"] == 3 and not resp["failures"]
        got = np.asarray(nclient.get(index=dest, id="2")["_source"]["p_semantic_info"]["embedding"], np.float32)
        np.testing.assert_allclose(got, embed(nclient, minilm_id, [TEXTS[2]])[0], atol=1e-5)
    finally:
        nclient.indices.delete(index=f"{src},{dest}")
