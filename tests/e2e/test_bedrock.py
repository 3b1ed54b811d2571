"""AWS connectors end to end: Bedrock (Titan v1 / v2, Cohere embed, Claude messages and converse) and SageMaker,
signed with SigV4 and checked by provider-like servers that recompute the signature with botocore; connectors whose
pre / post-processing are Painless scripts, through `_predict`, a `text_embedding` pipeline and a `neural` query;
a remote model in an `ml_inference` ingest processor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch

from tests.api.test_connectors import ML, cleanup, create, predict, register
from tests.conftest import RawHttp, assert_error
from tests.providers import AWS_ACCESS_KEY, AWS_REGION, AWS_SECRET_KEY, BAD_SIGNATURE, BAD_TOKEN, Provider, vector

P = "plugins.ml_commons."
CREDENTIAL = {"access_key": AWS_ACCESS_KEY, "secret_key": AWS_SECRET_KEY, "session_token": "mlsearch-e2e-session"}
TITAN_V1 = "amazon.titan-embed-text-v1"
CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"

# Our own Painless scripts, in the style of the connector blueprints: the pre-process builds the request parameter
# from the first document (escaped for the JSON body), the post-process turns {"embedding": [...]} into tensors.
PRE_SCRIPT = """
    String doc = params.text_docs[0];
    if (doc == null || doc.length() == 0) {
      throw new IllegalArgumentException("nothing to embed");
    }
    return "{\\"parameters\\": {\\"inputText\\": \\"" + escape(doc) + "\\"}}";
"""
POST_TENSOR_SCRIPT = """
    def values = params.embedding;
    if (values == null || values.isEmpty()) {
      throw new IllegalArgumentException("the provider returned no embedding");
    }
    StringBuilder out = new StringBuilder();
    out.append("[{\\"name\\": \\"sentence_embedding\\", \\"data_type\\": \\"FLOAT32\\", ");
    out.append("\\"shape\\": [").append(values.size()).append("], \\"data\\": ").append(values).append("}]");
    return out.toString();
"""
# A post-process answering {"response": [...]}: a remote model's dataAsMap, as the neural rewriter reads it.
POST_RESPONSE_SCRIPT = """
    List kept = new ArrayList();
    for (def x : params.embedding) { kept.add(x); }
    return "{\\"response\\": " + kept + "}";
"""


@pytest.fixture(scope="module")
def aws_trusted(client: OpenSearch) -> Iterator[None]:
    # Real deployments trust the AWS endpoints; the provider servers live on 127.0.0.1, so trust that too and allow
    # private addresses.
    patterns = [
        r"^https://bedrock-runtime\..*[a-z0-9-]+\.amazonaws\.com/.*$",
        r"^https://runtime\.sagemaker\..*[a-z0-9-]+\.amazonaws\.com/.*$",
        r"^http://127\.0\.0\.1:\d+/.*$",
    ]
    settings = {P + "trusted_connector_endpoints_regex": patterns, P + "connector.private_ip_enabled": True}
    client.cluster.put_settings(body={"persistent": settings})
    yield
    client.cluster.put_settings(body={"persistent": dict.fromkeys(settings)})


@pytest.fixture
def aws(aws_trusted: None) -> Iterator[Provider]:
    p = Provider()
    yield p
    p.close()


def aws_connector(url: str, service: str = "bedrock", **action: Any) -> dict[str, Any]:
    return {
        "name": f"{service} connector",
        "description": "test",
        "version": 1,
        "protocol": "aws_sigv4",
        "credential": dict(CREDENTIAL),
        "parameters": {"region": AWS_REGION, "service_name": service},
        "actions": [
            {
                "action_type": "predict",
                "method": "POST",
                "url": url,
                "headers": {"content-type": "application/json", "x-amz-content-sha256": "required"},
                **action,
            }
        ],
    }


def titan(url: str, version: str = "v1", **action: Any) -> dict[str, Any]:
    body = '{"inputText": "${parameters.inputText}"}'
    if version == "v2":
        body = (
            '{"inputText": "${parameters.inputText}", "dimensions": ${parameters.dimensions}, '
            '"normalize": ${parameters.normalize}, "embeddingTypes": ["float"]}'
        )
    steps = {
        "pre_process_function": "connector.pre_process.bedrock.embedding",
        "post_process_function": "connector.post_process.bedrock.embedding",
    }
    connector = aws_connector(
        f"{url}/model/amazon.titan-embed-text-{version}/invoke", request_body=body, **{**steps, **action}
    )
    if version == "v2":
        connector["parameters"].update({"dimensions": 16, "normalize": "true"})
    return connector


def sent(provider: Provider) -> dict[str, Any]:
    request = provider.requests[-1]
    return {**request, "headers": {k.lower(): v for k, v in request["headers"].items()}}


def tensors(out: Any) -> list[dict[str, Any]]:
    [result] = out["inference_results"]
    return result["output"]


# ---- SigV4 and the Bedrock / SageMaker APIs -------------------------------------------------------------


def test_titan_v1_signed_request_end_to_end(http: RawHttp, aws: Provider) -> None:
    connector_id = create(http, titan(aws.url))
    model_id = register(http, connector_id=connector_id)
    text = 'tides "rise" and fall\n/ twice a day'
    status, out = predict(http, model_id, {"text_docs": [text]})
    assert status == 200, out
    [tensor] = tensors(out)
    assert tensor["name"] == "sentence_embedding" and tensor["shape"] == [8]
    assert tensor["data"] == pytest.approx(vector(text), abs=1e-6)
    assert out["inference_results"][0]["status_code"] == 200
    request = sent(aws)
    assert request["path"] == "/model/amazon.titan-embed-text-v1/invoke"
    assert request["body"] == {"inputText": text}  # escaped into the template, unescaped by the provider
    assert request["headers"]["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AWS_ACCESS_KEY}/")
    assert f"/{AWS_REGION}/bedrock/aws4_request" in request["headers"]["authorization"]
    assert request["headers"]["x-amz-security-token"] == "mlsearch-e2e-session"
    assert len(request["headers"]["x-amz-content-sha256"]) == 64  # "required" replaced by the body hash
    cleanup(http, model_id)
    http.request("DELETE", f"{ML}/connectors/{connector_id}")


def test_titan_v2_dimensions_and_typed_post_process(http: RawHttp, aws: Provider) -> None:
    model_id = register(http, connector=titan(aws.url, "v2"))
    status, out = predict(http, model_id, {"text_docs": ["lunar gravity"]})
    assert status == 200, out
    assert tensors(out)[0]["shape"] == [16]
    assert tensors(out)[0]["data"] == pytest.approx(vector("lunar gravity", 16), abs=1e-6)
    assert sent(aws)["body"] == {
        "inputText": "lunar gravity",
        "dimensions": 16,
        "normalize": True,
        "embeddingTypes": ["float"],
    }
    typed = titan(aws.url, "v2", post_process_function="connector.post_process.bedrock_v2.embedding.float")
    other = register(http, connector=typed)
    status, out = predict(http, other, {"text_docs": ["lunar gravity"]})
    assert status == 200, out
    assert tensors(out)[0]["data"] == pytest.approx(vector("lunar gravity", 16), abs=1e-6)
    cleanup(http, model_id)
    cleanup(http, other)


@pytest.mark.parametrize(
    ("credential", "message"),
    [
        ({"secret_key": "not-the-secret"}, BAD_SIGNATURE),
        ({"access_key": "AKIAUNKNOWNKEY000000"}, BAD_TOKEN),
    ],
)
def test_wrong_credentials_surface_the_providers_403(
    http: RawHttp, aws: Provider, credential: dict[str, str], message: str
) -> None:
    body = titan(aws.url)
    body["credential"].update(credential)
    model_id = register(http, connector=body)
    _status, out = predict(http, model_id, {"text_docs": ["x"]})
    assert_error(out, 403, "status_exception", "Error from remote service: ")
    assert message in out["error"]["reason"]
    assert len(aws.requests) == 1  # a 403 is not retried
    cleanup(http, model_id)


def test_wrong_region_is_refused_by_the_provider(http: RawHttp, aws: Provider) -> None:
    body = titan(aws.url)
    body["parameters"]["region"] = "eu-north-1"
    model_id = register(http, connector=body)
    _status, out = predict(http, model_id, {"text_docs": ["x"]})
    assert_error(out, 403, "status_exception", "Credential should be scoped to a valid region")
    cleanup(http, model_id)


def test_cohere_embed_on_bedrock(http: RawHttp, aws: Provider) -> None:
    body = aws_connector(
        f"{aws.url}/model/cohere.embed-english-v3/invoke",
        request_body='{"texts": ${parameters.texts}, "truncate": "END", "input_type": "search_document"}',
        pre_process_function="connector.pre_process.cohere.embedding",
        post_process_function="connector.post_process.cohere.embedding",
    )
    model_id = register(http, connector=body)
    status, out = predict(http, model_id, {"text_docs": ["alpha", "beta", "gamma"]})
    assert status == 200, out
    assert [t["data"] for t in tensors(out)] == [pytest.approx(vector(t), abs=1e-6) for t in ("alpha", "beta", "gamma")]
    assert sent(aws)["body"]["texts"] == ["alpha", "beta", "gamma"]
    cleanup(http, model_id)


def test_claude_messages_and_converse_on_bedrock(http: RawHttp, aws: Provider) -> None:
    messages = aws_connector(
        f"{aws.url}/model/{CLAUDE}/invoke",
        request_body=(
            '{"anthropic_version": "${parameters.anthropic_version}", "max_tokens": ${parameters.max_tokens}, '
            '"messages": [{"role": "user", "content": "${parameters.prompt}"}]}'
        ),
    )
    messages["parameters"].update({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 200})
    model_id = register(http, connector=messages)
    status, out = predict(http, model_id, {"parameters": {"prompt": 'Say "hi"'}})
    assert status == 200, out
    [tensor] = tensors(out)
    assert tensor["name"] == "response"
    assert tensor["dataAsMap"]["content"] == [{"type": "text", "text": 'claude: Say "hi"'}]
    assert tensor["dataAsMap"]["stop_reason"] == "end_turn"
    assert sent(aws)["path"] == f"/model/{CLAUDE}/invoke"

    converse = aws_connector(
        f"{aws.url}/model/${{parameters.model}}/converse",
        request_body='{"messages": [{"role": "user", "content": [{"text": "${parameters.inputs}"}]}]}',
    )
    converse["parameters"]["model"] = CLAUDE
    other = register(http, connector=converse)
    status, out = predict(http, other, {"parameters": {"inputs": "What is a tide?"}})
    assert status == 200, out
    answer = tensors(out)[0]["dataAsMap"]
    assert answer["output"]["message"]["content"] == [{"text": "converse: What is a tide?"}]
    assert answer["usage"]["totalTokens"] == 7
    cleanup(http, model_id)
    cleanup(http, other)


def test_sagemaker_endpoint(http: RawHttp, aws: Provider) -> None:
    body = aws_connector(
        f"{aws.url}/endpoints/mlsearch-embedder/invocations",
        service="sagemaker",
        request_body="${parameters.input}",
        pre_process_function="connector.pre_process.default.embedding",
        post_process_function="connector.post_process.default.embedding",
    )
    model_id = register(http, connector=body)
    status, out = predict(http, model_id, {"text_docs": ["one", "two"]})
    assert status == 200, out
    assert [t["data"] for t in tensors(out)] == [pytest.approx(vector(t), abs=1e-6) for t in ("one", "two")]
    request = sent(aws)
    assert request["body"] == ["one", "two"]
    assert f"/{AWS_REGION}/sagemaker/aws4_request" in request["headers"]["authorization"]
    # Signed for bedrock but sent to SageMaker: the provider refuses the credential scope.
    body["parameters"]["service_name"] = "bedrock"
    other = register(http, connector=body)
    _status, out = predict(http, other, {"text_docs": ["one"]})
    assert_error(out, 403, "status_exception", "valid region and service sagemaker")
    cleanup(http, model_id)
    cleanup(http, other)


# ---- Painless pre / post-processing ------------------------------------------------------------------------


def painless_titan(url: str, post: str = POST_TENSOR_SCRIPT) -> dict[str, Any]:
    return titan(url, pre_process_function=PRE_SCRIPT, post_process_function=post)


def test_painless_scripts_through_predict(http: RawHttp, aws: Provider) -> None:
    model_id = register(http, connector=painless_titan(aws.url))
    text = 'a "quoted" text\twith a tab and a backslash \\'
    status, out = predict(http, model_id, {"text_docs": [text]})
    assert status == 200, out
    [tensor] = tensors(out)
    assert tensor["name"] == "sentence_embedding" and tensor["data_type"] == "FLOAT32" and tensor["shape"] == [8]
    assert tensor["data"] == pytest.approx(vector(text), abs=1e-6)
    assert sent(aws)["body"] == {"inputText": text}
    other = register(http, connector=painless_titan(aws.url, POST_RESPONSE_SCRIPT))
    status, out = predict(http, other, {"text_docs": [text]})
    assert status == 200, out
    assert tensors(out)[0]["dataAsMap"]["response"] == pytest.approx(vector(text), abs=1e-6)
    _status, out = predict(http, model_id, {"text_docs": [""]})  # the script's own exception
    assert_error(out, 400, "illegal_argument_exception", "nothing to embed")
    cleanup(http, model_id)
    cleanup(http, other)


@pytest.mark.parametrize("post", [POST_TENSOR_SCRIPT, POST_RESPONSE_SCRIPT], ids=["tensor", "response"])
def test_painless_model_in_pipeline_and_neural_query(
    http: RawHttp, client: OpenSearch, aws: Provider, index_name: str, post: str
) -> None:
    model_id = register(http, connector=painless_titan(aws.url, post))
    pipeline = f"{index_name}-emb"
    client.ingest.put_pipeline(
        id=pipeline, body={"processors": [{"text_embedding": {"model_id": model_id, "field_map": {"text": "vec"}}}]}
    )
    client.indices.create(
        index=index_name,
        body={
            "settings": {"index.knn": True, "default_pipeline": pipeline},
            "mappings": {
                "properties": {"text": {"type": "text"}, "vec": {"type": "knn_vector", "dimension": 8}},
            },
        },
    )
    texts = ["ocean tides follow the moon", "volcanoes erupt lava", "glaciers carve valleys"]
    for i, text in enumerate(texts):
        client.index(index=index_name, id=str(i), body={"text": text})
    client.indices.refresh(index=index_name)
    stored = client.get(index=index_name, id="1")["_source"]
    assert stored["vec"] == pytest.approx(vector(texts[1]), abs=1e-6)
    query = {"neural": {"vec": {"query_text": texts[2], "model_id": model_id, "k": 3}}}
    hits = client.search(index=index_name, body={"query": query, "_source": False})["hits"]["hits"]
    assert hits[0]["_id"] == "2"  # the query text's own vector is the nearest
    assert len(hits) == 3
    client.ingest.delete_pipeline(id=pipeline)
    client.indices.delete(index=index_name)
    cleanup(http, model_id)


# ---- ml_inference with a remote model ----------------------------------------------------------------------


def test_ml_inference_processor_with_remote_models(http: RawHttp, client: OpenSearch, aws: Provider) -> None:
    raw_titan = titan(aws.url)  # no post-process: the provider's JSON is the tensor's dataAsMap
    for key in ("pre_process_function", "post_process_function"):
        raw_titan["actions"][0].pop(key)
    embedder = register(http, connector=raw_titan)
    chat = aws_connector(
        f"{aws.url}/model/{CLAUDE}/invoke",
        request_body=(
            '{"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, '
            '"messages": [{"role": "user", "content": "${parameters.prompt}"}]}'
        ),
    )
    chatter = register(http, connector=chat)
    processors = [
        {
            "ml_inference": {
                "model_id": embedder,
                "input_map": [{"inputText": "passage"}],
                "output_map": [{"passage_embedding": "embedding"}],
            }
        },
        {
            "ml_inference": {
                "model_id": chatter,
                "input_map": [{"prompt": "question"}],
                "output_map": [{"answer": "$.inference_results[0].output[0].dataAsMap.content[0].text"}],
            }
        },
    ]
    client.ingest.put_pipeline(id="remote-mli", body={"processors": processors})
    doc = {"passage": 'the "moon" pulls', "question": "why tides?"}
    out = client.ingest.simulate(id="remote-mli", body={"docs": [{"_source": doc}]})
    source = out["docs"][0]["doc"]["_source"]
    assert source["passage_embedding"] == pytest.approx(vector('the "moon" pulls'), abs=1e-6)
    assert source["answer"] == "claude: why tides?"
    paths = [r["path"] for r in aws.requests]
    assert paths == ["/model/amazon.titan-embed-text-v1/invoke", f"/model/{CLAUDE}/invoke"]
    client.ingest.delete_pipeline(id="remote-mli")
    cleanup(http, embedder)
    cleanup(http, chatter)
