"""Connectors API and remote models against provider-like HTTP servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch

from tests.api.ml_support import P, trusted_fixture  # noqa: F401
from tests.conftest import RawHttp, ServerProcess, assert_error
from tests.providers import Provider, vector

SECRET = "sk-test-secret-123"
ML = "/_plugins/_ml"


@pytest.fixture
def provider(trusted: None) -> Iterator[Provider]:
    p = Provider()
    yield p
    p.close()


def openai_embedding(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "OpenAI embedding",
        "description": "test",
        "version": 1,
        "protocol": "http",
        "parameters": {"model": "text-embedding-ada-002"},
        "credential": {"openAI_key": SECRET},
        "actions": [
            {
                "action_type": "predict",
                "method": "POST",
                "url": f"{url}/v1/embeddings",
                "headers": {"Authorization": "Bearer ${credential.openAI_key}"},
                "request_body": '{ "input": ${parameters.input}, "model": "${parameters.model}" }',
                "pre_process_function": "connector.pre_process.openai.embedding",
                "post_process_function": "connector.post_process.openai.embedding",
            }
        ],
        **extra,
    }


def create(http: RawHttp, body: dict[str, Any]) -> str:
    status, out = http.request("POST", f"{ML}/connectors/_create", body)
    assert status == 200, out
    assert list(out) == ["connector_id"]
    return out["connector_id"]


def register(http: RawHttp, **body: Any) -> str:
    status, out = http.request(
        "POST", f"{ML}/models/_register", {"name": "remote-model", "function_name": "remote", **body}
    )
    assert status == 200, out
    assert out["status"] == "CREATED" and out["task_id"]
    return out["model_id"]


def predict(http: RawHttp, model_id: str, body: dict[str, Any]) -> tuple[int, Any]:
    return http.request("POST", f"{ML}/models/{model_id}/_predict", body)


def cleanup(http: RawHttp, model_id: str) -> None:
    http.request("POST", f"{ML}/models/{model_id}/_undeploy")
    http.request("DELETE", f"{ML}/models/{model_id}")


def test_create_get_search_hide_credential(http: RawHttp, provider: Provider) -> None:
    connector_id = create(http, openai_embedding(provider.url))
    status, got = http.request("GET", f"{ML}/connectors/{connector_id}")
    assert status == 200
    assert "credential" not in got
    assert got["actions"][0]["action_type"] == "PREDICT"
    assert got["version"] == "1" and got["protocol"] == "http"
    status, found = http.request("POST", f"{ML}/connectors/_search", {"query": {"ids": {"values": [connector_id]}}})
    assert status == 200
    [hit] = found["hits"]["hits"]
    assert hit["_index"] == ".plugins-ml-connector" and "credential" not in hit["_source"]
    status, out = http.request("DELETE", f"{ML}/connectors/{connector_id}")
    assert status == 200 and out["result"] == "deleted"
    status, out = http.request("GET", f"{ML}/connectors/{connector_id}")
    assert_error(out, 404, "status_exception", "Failed to find connector")


def test_credential_encrypted_at_rest(http: RawHttp, provider: Provider, server: ServerProcess) -> None:
    connector_id = create(http, openai_embedding(provider.url))
    model_id = register(http, connector={**openai_embedding(provider.url)})
    status, _ = predict(http, model_id, {"text_docs": ["hello"]})
    assert status == 200
    http.request("POST", "/_flush")
    hits = [p for p in server.data_dir.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert hits == []
    key = server.data_dir / "master.key"
    assert key.exists() and (key.stat().st_mode & 0o777) == 0o600
    status, got = http.request("GET", f"{ML}/models/{model_id}")
    assert "credential" not in got["connector"]
    cleanup(http, model_id)
    http.request("DELETE", f"{ML}/connectors/{connector_id}")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"name": None}, "Connector name is null"),
        ({"version": None}, "Connector version is null"),
        ({"protocol": None}, "Connector protocol is null"),
        ({"credential": {}}, "Connector credential is null or empty list"),
        ({"protocol": "grpc"}, "Unsupported connector protocol"),
        ({"actions": [{"method": "POST", "url": "http://127.0.0.1:1/x"}]}, "action type can't be null"),
        ({"actions": [{"action_type": "predict", "method": "POST"}]}, "url can't be null"),
        ({"actions": [{"action_type": "predict", "url": "http://127.0.0.1:1/x"}]}, "method can't be null"),
        ({"protocol": "aws_sigv4"}, "Missing credential"),
    ],
)
def test_create_validation(http: RawHttp, provider: Provider, change: dict[str, Any], reason: str) -> None:
    body = {k: v for k, v in {**openai_embedding(provider.url), **change}.items() if v is not None}
    _status, out = http.request("POST", f"{ML}/connectors/_create", body)
    assert_error(out, 400, "illegal_argument_exception", reason)


def test_untrusted_endpoint_refused_at_create_update_and_register(http: RawHttp, provider: Provider) -> None:
    body = openai_embedding("https://evil.example.com")
    _status, out = http.request("POST", f"{ML}/connectors/_create", body)
    assert_error(
        out, 400, "illegal_argument_exception", "Connector URL is not matching the trusted connector endpoint regex"
    )
    connector_id = create(http, openai_embedding(provider.url))
    _status, out = http.request("PUT", f"{ML}/connectors/{connector_id}", {"actions": body["actions"]})
    assert_error(out, 400, "illegal_argument_exception", "trusted connector endpoint regex")
    _status, out = http.request(
        "POST", f"{ML}/models/_register", {"name": "x", "function_name": "remote", "connector": body}
    )
    assert_error(out, 400, "illegal_argument_exception", "trusted connector endpoint regex")
    http.request("DELETE", f"{ML}/connectors/{connector_id}")


def test_url_checked_at_call_time(http: RawHttp, provider: Provider) -> None:
    body = openai_embedding(provider.url)
    body["actions"][0]["url"] = "https://${parameters.host}/v1/embeddings"
    connector_id = create(http, body)  # an unresolved placeholder: checked once the request fills it in
    model_id = register(http, connector_id=connector_id)
    _status, out = predict(http, model_id, {"text_docs": ["a"], "parameters": {"host": "evil.example.com"}})
    assert_error(out, 400, "illegal_argument_exception", "trusted connector endpoint regex")
    assert provider.requests == []
    cleanup(http, model_id)
    http.request("DELETE", f"{ML}/connectors/{connector_id}")


def test_openai_embedding_end_to_end(http: RawHttp, provider: Provider) -> None:
    connector_id = create(http, openai_embedding(provider.url))
    model_id = register(http, connector_id=connector_id)
    status, got = http.request("GET", f"{ML}/models/{model_id}")
    assert got["algorithm"] == "REMOTE" and got["model_state"] == "REGISTERED" and got["connector_id"] == connector_id
    status, out = predict(http, model_id, {"text_docs": ["hello world", "second"]})  # auto-deploy
    assert status == 200, out
    [result] = out["inference_results"]
    assert result["status_code"] == 200
    assert [t["name"] for t in result["output"]] == ["sentence_embedding", "sentence_embedding"]
    assert result["output"][0]["data_type"] == "FLOAT32" and result["output"][0]["shape"] == [8]
    assert result["output"][0]["data"] == pytest.approx(vector("hello world"), abs=1e-6)
    sent = provider.requests[-1]
    assert sent["body"] == {"input": ["hello world", "second"], "model": "text-embedding-ada-002"}
    assert {k.lower(): v for k, v in sent["headers"].items()}["authorization"] == f"Bearer {SECRET}"
    status, got = http.request("GET", f"{ML}/models/{model_id}")
    assert got["model_state"] == "DEPLOYED"
    # parameters input: the request's own parameters, no pre-processing
    status, out = predict(http, model_id, {"parameters": {"input": ["What is the meaning of life?"]}})
    assert status == 200 and len(out["inference_results"][0]["output"]) == 1
    status, out = http.request("DELETE", f"{ML}/connectors/{connector_id}")
    assert_error(
        out,
        409,
        "status_exception",
        f"1 models are still using this connector, please delete or update the models first: [{model_id}]",
    )
    cleanup(http, model_id)
    status, out = http.request("DELETE", f"{ML}/connectors/{connector_id}")
    assert status == 200 and out["result"] == "deleted"


def test_chat_raw_output_and_escaping(http: RawHttp, provider: Provider) -> None:
    body = {
        "name": "chat",
        "version": "1",
        "protocol": "http",
        "parameters": {"endpoint": provider.url.removeprefix("http://"), "model": "gpt-3.5-turbo"},
        "credential": {"openAI_key": SECRET},
        "actions": [
            {
                "action_type": "predict",
                "method": "POST",
                "url": "http://${parameters.endpoint}/v1/chat/completions",
                "headers": {"Authorization": "Bearer ${credential.openAI_key}"},
                "request_body": '{ "model": "${parameters.model}", "messages": [{"role": "user", "content": "${parameters.prompt}"}] }',
            }
        ],
    }
    model_id = register(http, connector=body, deploy_model=True)
    prompt = 'say "hi"\nand a \\ slash </tag>'
    status, out = predict(http, model_id, {"parameters": {"prompt": prompt}})
    assert status == 200, out
    [tensor] = out["inference_results"][0]["output"]
    assert tensor["name"] == "response"
    assert tensor["dataAsMap"]["choices"][0]["message"]["content"] == f"echo: {prompt}"
    assert provider.requests[-1]["body"]["messages"][0]["content"] == prompt
    # response_filter selects a scalar: wrapped as {"response": value}
    status, out = predict(
        http, model_id, {"parameters": {"prompt": "x", "response_filter": "$.choices[0].message.content"}}
    )
    assert out["inference_results"][0]["output"][0]["dataAsMap"] == {"response": "echo: x"}
    status, out = predict(http, model_id, {"parameters": {}})
    assert_error(out, 400, "illegal_argument_exception", "Some parameter placeholder not filled in payload: prompt")
    cleanup(http, model_id)


def test_cohere_embed_v2_and_rerank(http: RawHttp, provider: Provider) -> None:
    embed = {
        "name": "cohere",
        "version": "1",
        "protocol": "http",
        "parameters": {"model": "embed-english-v3.0", "input_type": "search_document", "truncate": "END"},
        "credential": {"cohere_key": SECRET},
        "actions": [
            {
                "action_type": "predict",
                "method": "POST",
                "url": f"{provider.url}/v2/embed",
                "headers": {"Authorization": "Bearer ${credential.cohere_key}"},
                "request_body": '{ "texts": ${parameters.texts}, "truncate": "${parameters.truncate}", "model": "${parameters.model}", "input_type": "${parameters.input_type}", "embedding_types": ["float"] }',
                "pre_process_function": "connector.pre_process.cohere.embedding",
                "post_process_function": "connector.post_process.cohere_v2.embedding.float",
            }
        ],
    }
    model_id = register(http, connector=embed)
    status, out = predict(http, model_id, {"text_docs": ["a b", "c"]})
    assert status == 200, out
    assert [t["data"] for t in out["inference_results"][0]["output"]] == [
        pytest.approx(vector("a b"), abs=1e-6),
        pytest.approx(vector("c"), abs=1e-6),
    ]
    cleanup(http, model_id)
    rerank = {
        **embed,
        "parameters": {"model": "rerank-english-v2.0"},
        "actions": [
            {
                "action_type": "predict",
                "method": "POST",
                "url": f"{provider.url}/v1/rerank",
                "headers": {"Authorization": "Bearer ${credential.cohere_key}"},
                "request_body": '{ "documents": ${parameters.documents}, "query": "${parameters.query}", "model": "${parameters.model}", "top_n": ${parameters.top_n} }',
                "pre_process_function": "connector.pre_process.cohere.rerank",
                "post_process_function": "connector.post_process.cohere.rerank",
            }
        ],
    }
    model_id = register(http, connector=rerank)
    status, out = predict(
        http, model_id, {"query_text": "red apple", "text_docs": ["blue sky", "red apple pie", "apple"]}
    )
    assert status == 200, out
    scores = [t["data"][0] for t in out["inference_results"][0]["output"]]
    assert [t["name"] for t in out["inference_results"][0]["output"]] == ["similarity"] * 3
    assert scores[1] > scores[2] > scores[0]  # input order, not rank order
    cleanup(http, model_id)


def test_tei_with_response_mapping(http: RawHttp, provider: Provider) -> None:
    body = {
        "name": "tei",
        "version": "1",
        "protocol": "http",
        "credential": {"key": SECRET},
        "actions": [
            {
                "action_type": "predict",
                "method": "POST",
                "url": f"{provider.url}/embed",
                "headers": {"Authorization": "Bearer ${credential.key}"},
                "request_body": '{"inputs": ${parameters.input}}',
                "response_mapping": {"sentence_embedding": "$[*]"},
            }
        ],
    }
    model_id = register(http, connector=body)
    status, out = predict(http, model_id, {"text_docs": ["x", "y", "z"]})
    assert status == 200, out
    assert [t["shape"] for t in out["inference_results"][0]["output"]] == [[8]] * 3
    cleanup(http, model_id)


def test_provider_errors_reach_the_caller(http: RawHttp, provider: Provider) -> None:
    model_id = register(http, connector=openai_embedding(provider.url))
    _status, out = predict(http, model_id, {"text_docs": ["x" * 3000]})
    assert_error(out, 400, "status_exception", "Error from remote service:")
    assert "context_length_exceeded" in out["error"]["reason"]
    bad = openai_embedding(provider.url, credential={"openAI_key": "wrong"})
    other = register(http, connector=bad)
    _status, out = predict(http, other, {"text_docs": ["x"]})
    assert_error(out, 401, "status_exception", "Incorrect API key provided")
    cleanup(http, model_id)
    cleanup(http, other)


def test_retries_429_then_succeeds(http: RawHttp, provider: Provider) -> None:
    provider.plan = [429, 503, 429]
    model_id = register(
        http,
        connector=openai_embedding(
            provider.url, client_config={"retry_backoff_millis": 10, "retry_backoff_policy": "exponential_full_jitter"}
        ),
    )
    status, out = predict(http, model_id, {"text_docs": ["x"]})
    assert status == 200, out
    assert len(provider.requests) == 4
    cleanup(http, model_id)


def test_retries_bounded_by_max_retry_times(http: RawHttp, provider: Provider) -> None:
    provider.plan = [503, 503, 503, 503]
    model_id = register(
        http, connector=openai_embedding(provider.url, client_config={"max_retry_times": 1, "retry_backoff_millis": 5})
    )
    _status, out = predict(http, model_id, {"text_docs": ["x"]})
    assert_error(out, 503, "status_exception", "Error from remote service")
    assert len(provider.requests) == 2
    cleanup(http, model_id)


def test_read_timeout(http: RawHttp, provider: Provider) -> None:
    provider.latency = 1.0
    model_id = register(
        http, connector=openai_embedding(provider.url, client_config={"read_timeout": 0.2, "max_retry_times": 0})
    )
    _status, out = predict(http, model_id, {"text_docs": ["x"]})
    assert_error(out, 504, "status_exception", "timed out")
    cleanup(http, model_id)


def test_rate_limiter(http: RawHttp, provider: Provider) -> None:
    model_id = register(http, connector=openai_embedding(provider.url), rate_limiter={"limit": 2, "unit": "MINUTES"})
    assert predict(http, model_id, {"text_docs": ["x"]})[0] == 200
    assert predict(http, model_id, {"text_docs": ["x"]})[0] == 200
    _status, out = predict(http, model_id, {"text_docs": ["x"]})
    assert_error(out, 429, "status_exception", "Request is throttled at model level.")
    cleanup(http, model_id)


def test_remote_inference_disabled(http: RawHttp, client: OpenSearch, provider: Provider) -> None:
    client.cluster.put_settings(body={"persistent": {P + "remote_inference.enabled": False}})
    try:
        _status, out = http.request("POST", f"{ML}/connectors/_create", openai_embedding(provider.url))
        assert_error(out, 400, "status_exception", "Remote Inference is currently disabled")
    finally:
        client.cluster.put_settings(body={"persistent": {P + "remote_inference.enabled": None}})


def test_update_connector_credential_and_redeploy(http: RawHttp, provider: Provider) -> None:
    connector_id = create(http, openai_embedding(provider.url, credential={"openAI_key": "wrong"}))
    model_id = register(http, connector_id=connector_id)
    assert predict(http, model_id, {"text_docs": ["x"]})[0] == 401
    status, out = http.request("PUT", f"{ML}/connectors/{connector_id}", {"credential": {"openAI_key": SECRET}})
    assert status == 200 and out["result"] == "updated"
    assert predict(http, model_id, {"text_docs": ["x"]})[0] == 200
    cleanup(http, model_id)
    http.request("DELETE", f"{ML}/connectors/{connector_id}")
