"""The `rerank` response processor with `ml_opensearch` end to end on the real server: a remote cross-encoder (the
Cohere Rerank blueprint of OpenSearch's tutorial, against the Cohere-like provider of tests/providers.py), a local
synthetic ONNX cross-encoder uploaded in chunks, and the errors as neural-search words them."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opensearchpy import OpenSearch

from tests.api.ml_support import trusted_fixture  # noqa: F401  (module fixture `trusted`: 127.0.0.1 endpoints)
from tests.api.test_connectors import SECRET
from tests.conftest import RawHttp, assert_error
from tests.neural_support import wait_task
from tests.providers import Provider, _cohere_rerank
from tests.unit.test_runtimes import _cross_encoder, _embedding_model

ML = "/_plugins/_ml"
INDEX = "rerank-e2e"
LOCAL_FILE = "plugins.ml_commons.allow_registering_model_via_local_file"
# Words of the synthetic model's vocabulary, so that the local cross-encoder sees real tokens.
DOCS = {
    "1": {"title": "alpha beta", "body": "gamma delta alpha"},
    "2": {"title": "kappa", "body": "alpha"},
    "3": {"title": "beta gamma", "body": "alpha zeta eta theta"},
    "4": {"title": "iota", "body": "alpha iota kappa beta"},
    "5": {"body": "alpha alpha epsilon"},  # no title: its context is the body alone
}
FIELDS = ["title", "body"]
QUERY = "alpha beta gamma"


# ---- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider(trusted: None) -> Iterator[Provider]:
    p = Provider()
    yield p
    p.close()


@pytest.fixture(scope="module")
def index(client: OpenSearch) -> Iterator[str]:
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    client.indices.create(index=INDEX, body={"mappings": {"properties": {"title": {"type": "text"}}}})
    for doc_id, doc in DOCS.items():
        client.index(index=INDEX, id=doc_id, body=doc)
    client.indices.refresh(index=INDEX)
    yield INDEX
    client.indices.delete(index=INDEX, ignore_unavailable=True)


@pytest.fixture(scope="module")
def pipelines(http: RawHttp) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for name in made:
        http.request("DELETE", f"/_search/pipeline/{name}")


@pytest.fixture(scope="module")
def http(server: Any) -> RawHttp:
    return RawHttp(server.url)


@pytest.fixture(scope="module")
def cohere(http: RawHttp, provider: Provider) -> Iterator[str]:
    """The tutorial's connector and remote model, registered with `?deploy=true`."""
    status, out = http.request("POST", f"{ML}/connectors/_create", cohere_connector(provider.url))
    assert status == 200, out
    connector_id = out["connector_id"]
    body = {"name": "cohere rerank model", "function_name": "remote", "connector_id": connector_id}
    status, out = http.request("POST", f"{ML}/models/_register?deploy=true", body)
    assert status == 200, out
    model_id = out["model_id"]
    yield model_id
    _remove_model(http, model_id)
    http.request("DELETE", f"{ML}/connectors/{connector_id}")


@pytest.fixture(scope="module")
def local_files(client: OpenSearch) -> Iterator[None]:
    client.cluster.put_settings(body={"persistent": {LOCAL_FILE: "true"}})
    yield
    client.cluster.put_settings(body={"persistent": {LOCAL_FILE: None}})


@pytest.fixture(scope="module")
def cross_encoder(
    client: OpenSearch, http: RawHttp, local_files: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    model_id = _upload(client, _cross_encoder(tmp_path_factory.mktemp("ce")), "TEXT_SIMILARITY")
    yield model_id
    _remove_model(http, model_id)


def cohere_connector(url: str) -> dict[str, Any]:
    """The connector of "Reranking search results using the Cohere Rerank model", pointed at the provider."""
    return {
        "name": "cohere-rerank",
        "description": "The connector to Cohere reanker model",
        "version": "1",
        "protocol": "http",
        "credential": {"cohere_key": SECRET},
        "parameters": {"model": "rerank-english-v2.0"},
        "actions": [
            {
                "action_type": "predict",
                "method": "POST",
                "url": f"{url}/v1/rerank",
                "headers": {"Authorization": "Bearer ${credential.cohere_key}"},
                "request_body": '{ "documents": ${parameters.documents}, "query": "${parameters.query}", '
                '"model": "${parameters.model}", "top_n": ${parameters.top_n} }',
                "pre_process_function": "connector.pre_process.cohere.rerank",
                "post_process_function": "connector.post_process.cohere.rerank",
            }
        ],
    }


def _upload(client: OpenSearch, model_dir: Path, function_name: str) -> str:
    """Register a model directory by chunked upload (two chunks), then deploy it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in ("model.onnx", "tokenizer.json"):
            zf.write(model_dir / name, name)
    data = buffer.getvalue()
    half = len(data) // 2
    meta = {
        "name": f"tiny-{function_name.lower()}",
        "version": "1.0.0",
        "model_format": "ONNX",
        "function_name": function_name,
        "model_content_hash_value": hashlib.sha256(data).hexdigest(),
        "model_config": {"model_type": "bert", "embedding_dimension": 8, "framework_type": "huggingface_transformers"},
        "total_chunks": 2,
    }
    model_id = client.plugins.ml.register_model_meta(body=meta)["model_id"]
    for n, chunk in enumerate((data[:half], data[half:])):
        assert client.plugins.ml.upload_chunk(model_id=model_id, chunk_number=n, body=chunk) == {"status": "Uploaded"}
    task = wait_task(client, client.plugins.ml.deploy_model(model_id=model_id)["task_id"])
    assert task["state"] == "COMPLETED", task.get("error")
    return model_id


def _remove_model(http: RawHttp, model_id: str) -> None:
    http.request("POST", f"{ML}/models/{model_id}/_undeploy")
    http.request("DELETE", f"{ML}/models/{model_id}")


def _pipeline(http: RawHttp, pipelines: list[str], name: str, model_id: str) -> str:
    body = {
        "description": "Pipeline for reranking with a cross-encoder",
        "response_processors": [
            {"rerank": {"ml_opensearch": {"model_id": model_id}, "context": {"document_fields": FIELDS}}}
        ],
    }
    status, out = http.request("PUT", f"/_search/pipeline/{name}", body)
    assert (status, out) == (200, {"acknowledged": True})
    pipelines.append(name)
    return name


def _context(doc: dict[str, Any]) -> str:
    """A hit's context as neural-search builds it: the listed fields concatenated, no separator; missing → ""."""
    return "".join(str(doc.get(f, "")) for f in FIELDS)


def _search(client: OpenSearch, body: dict[str, Any], pipeline: str | None = None) -> list[dict[str, Any]]:
    params = {"search_pipeline": pipeline} if pipeline else None
    return client.search(index=INDEX, body=body, params=params)["hits"]["hits"]


MATCH = {"match": {"body": {"query": QUERY}}}


def _expected_cohere(query: str, ids: list[str]) -> list[tuple[str, float]]:
    """The provider's relevance score of each document, as float32 (the similarity tensor's type), best first."""
    _, answer = _cohere_rerank({"query": query, "documents": [_context(DOCS[i]) for i in ids]})
    scored = [(ids[r["index"]], float(np.float32(r["relevance_score"]))) for r in answer["results"]]
    return sorted(scored, key=lambda pair: -pair[1])


def _got(hits: list[dict[str, Any]]) -> list[tuple[str, float]]:
    return [(h["_id"], h["_score"]) for h in hits]


# ---- remote cross-encoder: the Cohere Rerank blueprint ----------------------------------------------------------


@pytest.mark.usefixtures("index")
def test_cohere_rerank_scores_and_order_are_the_providers(
    client: OpenSearch, http: RawHttp, provider: Provider, cohere: str, pipelines: list[str]
) -> None:
    name = _pipeline(http, pipelines, "rerank-cohere", cohere)
    plain = [h["_id"] for h in _search(client, {"query": MATCH, "size": 10})]
    assert sorted(plain) == sorted(DOCS)  # every document has "alpha" in its body
    provider.requests.clear()
    body = {"query": MATCH, "size": 10, "ext": {"rerank": {"query_context": {"query_text": QUERY}}}}
    response = client.search(index=INDEX, body=body, params={"search_pipeline": name})
    expected = _expected_cohere(QUERY, plain)
    assert _got(response["hits"]["hits"]) == [(i, pytest.approx(s, rel=1e-6)) for i, s in expected]
    assert response["hits"]["max_score"] == pytest.approx(expected[0][1], rel=1e-6)
    assert [h["_id"] for h in response["hits"]["hits"]] != plain  # the order did change
    # One call, as documented: the query and the documents in hit order, top_n = their number, the model.
    [request] = provider.requests
    assert request["path"] == "/v1/rerank"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert request["body"] == {
        "documents": [_context(DOCS[i]) for i in plain],
        "query": QUERY,
        "model": "rerank-english-v2.0",
        "top_n": len(plain),
    }


@pytest.mark.usefixtures("index")
def test_cohere_rerank_with_query_text_path_and_a_page(
    client: OpenSearch, http: RawHttp, provider: Provider, cohere: str, pipelines: list[str]
) -> None:
    name = _pipeline(http, pipelines, "rerank-cohere-path", cohere)
    plain = [h["_id"] for h in _search(client, {"query": {"match": {"body": QUERY}}, "size": 10})]
    # The documented path reads the short-form match query as OpenSearch re-serialises it (…body.query).
    for query in ({"match": {"body": QUERY}}, MATCH):
        provider.requests.clear()
        body = {
            "query": query,
            "from": 1,
            "size": 3,
            "ext": {"rerank": {"query_context": {"query_text_path": "query.match.body.query"}}},
        }
        hits = _search(client, body, name)
        page = plain[1:4]  # only the requested page is reranked, among itself
        assert _got(hits) == [(i, pytest.approx(s, rel=1e-6)) for i, s in _expected_cohere(QUERY, page)]
        [request] = provider.requests
        assert (request["body"]["query"], request["body"]["documents"]) == (QUERY, [_context(DOCS[i]) for i in page])
        assert request["body"]["top_n"] == 3


@pytest.mark.usefixtures("index")
def test_cohere_rerank_reads_the_filtered_source(
    client: OpenSearch, http: RawHttp, provider: Provider, cohere: str, pipelines: list[str]
) -> None:
    """The context comes from the hit as returned: a field filtered out of `_source` counts as missing ("")."""
    name = _pipeline(http, pipelines, "rerank-cohere-filtered", cohere)
    provider.requests.clear()
    body = {
        "query": {"ids": {"values": ["1", "3", "5"]}},
        "_source": ["title"],
        "ext": {"rerank": {"query_context": {"query_text": "beta gamma"}}},
    }
    hits = _search(client, body, name)
    [request] = provider.requests
    titles = {i: DOCS[i].get("title", "") for i in ("1", "3", "5")}
    assert sorted(request["body"]["documents"]) == sorted(titles.values())
    assert [h["_id"] for h in hits] == ["3", "1", "5"]  # 2 words shared, then 1, then none (empty context)
    assert [h["_score"] for h in hits] == pytest.approx([2 / 3, 1 / 3, 0.0], rel=1e-6)


@pytest.mark.usefixtures("index")
def test_cohere_rerank_query_text_with_quotes_reaches_the_provider_intact(
    client: OpenSearch, http: RawHttp, provider: Provider, cohere: str, pipelines: list[str]
) -> None:
    """The blueprint puts the query inside a JSON string ("${parameters.query}"): it must arrive escaped, unchanged."""
    name = _pipeline(http, pipelines, "rerank-cohere-quotes", cohere)
    provider.requests.clear()
    query = 'alpha "beta" \\ gamma\nkappa'
    hits = _search(
        client, {"query": MATCH, "size": 10, "ext": {"rerank": {"query_context": {"query_text": query}}}}, name
    )
    [request] = provider.requests
    assert request["body"]["query"] == query
    assert _got(hits) == [(i, pytest.approx(s, rel=1e-6)) for i, s in _expected_cohere(query, _plain_ids(client))]


@pytest.mark.usefixtures("index")
def test_cohere_rerank_reads_fields_when_source_is_off(
    client: OpenSearch, http: RawHttp, provider: Provider, cohere: str, pipelines: list[str]
) -> None:
    """The tutorials' `"_source": false, "fields": [...]`: the context comes from each hit's `fields`."""
    name = _pipeline(http, pipelines, "rerank-cohere-fields", cohere)
    plain = _plain_ids(client)
    provider.requests.clear()
    body = {
        "query": MATCH,
        "size": 10,
        "_source": False,
        "fields": FIELDS,
        "ext": {"rerank": {"query_context": {"query_text": QUERY}}},
    }
    hits = _search(client, body, name)
    [request] = provider.requests
    assert request["body"]["documents"] == [_context(DOCS[i]) for i in plain]
    assert _got(hits) == [(i, pytest.approx(s, rel=1e-6)) for i, s in _expected_cohere(QUERY, plain)]
    assert all("_source" not in h and h["fields"]["body"] == [DOCS[h["_id"]]["body"]] for h in hits)


def _plain_ids(client: OpenSearch) -> list[str]:
    return [h["_id"] for h in _search(client, {"query": MATCH, "size": 10})]


# ---- local cross-encoder: a synthetic ONNX TEXT_SIMILARITY model ------------------------------------------------


@pytest.mark.usefixtures("index")
def test_local_cross_encoder_scores_equal_predict(
    client: OpenSearch, http: RawHttp, cross_encoder: str, pipelines: list[str]
) -> None:
    name = _pipeline(http, pipelines, "rerank-local", cross_encoder)
    plain = [h["_id"] for h in _search(client, {"query": MATCH, "size": 10})]
    texts = [_context(DOCS[i]) for i in plain]
    predicted = client.plugins.ml.predict_model(model_id=cross_encoder, body={"query_text": QUERY, "text_docs": texts})
    scores = [r["output"][0]["data"][0] for r in predicted["inference_results"]]
    assert len(set(scores)) == len(scores)  # distinct scores: the order below is fully determined
    expected = sorted(zip(plain, scores, strict=True), key=lambda pair: -pair[1])
    body = {"query": MATCH, "size": 10, "ext": {"rerank": {"query_context": {"query_text": QUERY}}}}
    hits = _search(client, body, name)
    assert _got(hits) == [(i, pytest.approx(s, rel=1e-6)) for i, s in expected]


# ---- errors, as neural-search words them -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedding_model(
    client: OpenSearch, http: RawHttp, local_files: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    model_id = _upload(client, _embedding_model(tmp_path_factory.mktemp("emb")), "TEXT_EMBEDDING")
    yield model_id
    _remove_model(http, model_id)


@pytest.mark.parametrize(
    ("ext", "reason"),
    [
        (None, "must specify query_context"),
        ({"rerank": {}}, "must specify query_context"),
        ({"rerank": {"query_context": "x"}}, "query_context must be a map"),
        ({"rerank": {"query_context": {}}}, 'Must specify either "query_text" or "query_text_path"'),
        (
            {"rerank": {"query_context": {"query_text": "a", "query_text_path": "query.match.body.query"}}},
            'Cannot specify both "query_text" and "query_text_path"',
        ),
        (
            {"rerank": {"query_context": {"query_text_path": "query.match.title.query"}}},
            "query_text_path must point to a string field",
        ),
        (
            {"rerank": {"query_context": {"query_text_path": "query.match"}}},
            "query_text_path must point to a string field",
        ),
    ],
)
@pytest.mark.usefixtures("index")
def test_query_context_errors(
    http: RawHttp, cross_encoder: str, pipelines: list[str], ext: dict[str, Any] | None, reason: str
) -> None:
    name = _pipeline(http, pipelines, "rerank-errors", cross_encoder)
    body: dict[str, Any] = {"query": MATCH}
    if ext is not None:
        body["ext"] = ext
    _, out = http.request("POST", f"/{INDEX}/_search?search_pipeline={name}", body)
    assert_error(out, 400, "illegal_argument_exception", reason)


@pytest.mark.usefixtures("index")
def test_a_model_that_is_not_text_similarity_is_refused(
    http: RawHttp, embedding_model: str, pipelines: list[str]
) -> None:
    name = _pipeline(http, pipelines, "rerank-embedding", embedding_model)
    body = {"query": MATCH, "ext": {"rerank": {"query_context": {"query_text": QUERY}}}}
    _, out = http.request("POST", f"/{INDEX}/_search?search_pipeline={name}", body)
    assert_error(out, 400, "illegal_argument_exception", "TEXT_SIMILARITY")
