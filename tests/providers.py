"""Provider-like HTTP servers on 127.0.0.1 for connector tests: OpenAI (embeddings, chat), Azure OpenAI, Cohere
(embed v1 / v2, rerank), OpenAI-compatible servers, and AWS (Bedrock, SageMaker; SigV4 recomputed with
botocore); real status codes, error bodies, Retry-After and latency.

A `Provider` is a `FakeHttpServer`; `plan`, `fail_rate` and `latency` let a test make it answer 429 / 5xx / slowly,
and `requests` records what it received (path, headers, JSON body)."""

from __future__ import annotations

import hashlib
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fake_http import Answer, FakeHttpServer

DIM = 8


def vector(text: str, dim: int = DIM) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round((digest[i % len(digest)] - 128) / 128, 6) for i in range(dim)]


@dataclass
class Provider(FakeHttpServer):
    """One fake provider. `fail_rate` answers 429 (with Retry-After) to that share of requests; `plan` a fixed list
    of statuses for the next requests; `latency` seconds per answer."""

    latency: float = 0.0
    fail_rate: float = 0.0
    retry_after: str | None = "0"
    plan: list[int] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    seed: int = 7
    methods = ("POST", "GET")  # no annotation: a class setting, not a dataclass field

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self.serve()

    def answer(self, handler: BaseHTTPRequestHandler, raw: bytes, body: Any) -> Answer:
        with self.lock:
            self.requests.append({"path": handler.path, "headers": dict(handler.headers), "body": body})
            planned = self.plan.pop(0) if self.plan else None
            throttled = planned is None and self.fail_rate and self._random.random() < self.fail_rate
        if self.latency:
            time.sleep(self.latency)
        if planned is not None and planned != 200:
            return planned, _error_body(planned), self._retry_after(planned)
        if throttled:
            return 429, _error_body(429), self._retry_after(429)
        if is_aws_path(handler.path):
            status, answer = aws_route(handler, raw, body)
        else:
            status, answer = route(handler.path, handler.headers, body)
        return status, answer, {}

    def _retry_after(self, status: int) -> dict[str, str]:
        return {"Retry-After": self.retry_after} if self.retry_after is not None and status in (429, 503) else {}


def _error_body(status: int) -> dict[str, Any]:
    if status == 429:
        return {
            "error": {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"}
        }
    return {"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}


def _auth_ok(headers: Any) -> bool:
    return headers.get("Authorization") == "Bearer sk-test-secret-123" or headers.get("api-key") == "sk-test-secret-123"


def route(path: str, headers: Any, body: Any) -> tuple[int, Any]:
    """The provider's answer for a path (auth checked as the real ones do: 401 with their error body)."""
    if not _auth_ok(headers):
        return 401, {
            "error": {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        }
    handler = next((h for prefix, h in ROUTES if path.split("?")[0].endswith(prefix)), None)
    if handler is None:
        return 404, {"error": {"message": f"Unknown path {path}"}}
    return handler(body)


def _openai_embeddings(body: Any) -> tuple[int, Any]:
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    if any(len(t) > 2000 for t in texts):
        return 400, {
            "error": {
                "message": "This model's maximum context length is 8192 tokens, however you requested 9000 tokens.",
                "type": "invalid_request_error",
                "code": "context_length_exceeded",
            }
        }
    data = [{"object": "embedding", "index": i, "embedding": vector(t)} for i, t in enumerate(texts)]
    return 200, {
        "object": "list",
        "data": data,
        "model": body.get("model"),
        "usage": {"prompt_tokens": 5, "total_tokens": 5},
    }


def _chat(body: Any) -> tuple[int, Any]:
    last = body["messages"][-1]["content"]
    return 200, {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": body.get("model", "gpt"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": f"echo: {last}"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def _cohere_embed(body: Any) -> tuple[int, Any]:
    vectors = [vector(t) for t in body["texts"]]
    if "embedding_types" in body:  # v2
        return 200, {"id": "e2", "embeddings": {"float": vectors}, "texts": body["texts"]}
    return 200, {"id": "e1", "embeddings": vectors, "texts": body["texts"], "meta": {"api_version": {"version": "1"}}}


def _cohere_rerank(body: Any) -> tuple[int, Any]:
    query = set(body["query"].lower().split())
    scored = [
        {"index": i, "relevance_score": len(query & set(d.lower().split())) / (1 + len(query))}
        for i, d in enumerate(body["documents"])
    ]
    scored.sort(key=lambda r: -r["relevance_score"])
    return 200, {"id": "r1", "results": scored[: body.get("top_n", len(scored))]}


def _tei_embed(body: Any) -> tuple[int, Any]:
    inputs = body["inputs"] if isinstance(body["inputs"], list) else [body["inputs"]]
    return 200, [vector(t) for t in inputs]


ROUTES: list[tuple[str, Callable[[Any], tuple[int, Any]]]] = [
    ("/v1/embeddings", _openai_embeddings),
    ("/embeddings", _openai_embeddings),  # Azure: /openai/deployments/<name>/embeddings?api-version=...
    ("/chat/completions", _chat),
    ("/v1/embed", _cohere_embed),
    ("/v2/embed", _cohere_embed),
    ("/v1/rerank", _cohere_rerank),
    ("/embed", _tei_embed),  # Hugging Face TEI
    (
        "/api/chat",
        lambda b: (200, {"model": b["model"], "message": {"role": "assistant", "content": "hi"}, "done": True}),
    ),
]


# ---- AWS: Bedrock runtime and SageMaker runtime, SigV4 checked ------------------------------------------------

AWS_ACCESS_KEY = "AKIAMLSEARCHE2EKEY01"
AWS_SECRET_KEY = "mlsearch/e2e+secret/for-local-tests-only"
AWS_REGION = "us-west-2"
_SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([^,]+), Signature=(\w+)"
)
BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
    "Key and signing method. Consult the service documentation for details."
)
BAD_TOKEN = "The security token included in the request is invalid."


def is_aws_path(path: str) -> bool:
    return path.startswith(("/model/", "/endpoints/"))


def aws_route(handler: BaseHTTPRequestHandler, raw: bytes, body: Any) -> tuple[int, Any]:
    """Bedrock `/model/<id>/invoke|converse` (service bedrock) and SageMaker `/endpoints/<name>/invocations`
    (service sagemaker): the signature is recomputed from the received request, a mismatch is AWS's 403."""
    service = "bedrock" if handler.path.startswith("/model/") else "sagemaker"
    problem = _sigv4_problem(handler, raw, service)
    if problem is not None:
        return 403, {"message": problem}
    parts = handler.path.split("?")[0].strip("/").split("/")
    if service == "sagemaker":
        return 200, [vector(t) for t in body]
    model, operation = parts[1], parts[2]
    if operation == "converse":
        return _bedrock_converse(body)
    if model.startswith("amazon.titan-embed-text"):
        return _titan_embed(model, body)
    if model.startswith("cohere.embed"):
        return 200, {"id": "c1", "embeddings": [vector(t) for t in body["texts"]], "response_type": "embeddings_floats"}
    if model.startswith("anthropic.claude"):
        return _claude_messages(model, body)
    return 404, {"message": f"Model {model} not found"}


def _sigv4_problem(handler: BaseHTTPRequestHandler, raw: bytes, service: str) -> str | None:
    match = _SIGV4.fullmatch(handler.headers.get("Authorization", ""))
    if match is None:
        return "Missing Authentication Token"
    if match.group(1) != AWS_ACCESS_KEY:
        return BAD_TOKEN
    if match.group(3) != AWS_REGION or match.group(4) != service:
        return f"Credential should be scoped to a valid region and service {service}."
    signed = match.group(5).split(";")
    headers = {name: handler.headers[name] for name in signed if handler.headers.get(name) is not None}
    if len(headers) != len(signed):
        return BAD_SIGNATURE
    request = AWSRequest(method=handler.command, url=f"http://{handler.headers['Host']}{handler.path}", data=raw)
    for name, value in headers.items():
        request.headers[name] = value
    request.context["timestamp"] = handler.headers.get("X-Amz-Date", "")
    token = handler.headers.get("X-Amz-Security-Token")
    signer = SigV4Auth(Credentials(AWS_ACCESS_KEY, AWS_SECRET_KEY, token), service, AWS_REGION)
    content_hash = handler.headers.get("X-Amz-Content-SHA256")
    if content_hash is not None and content_hash != signer.payload(request):
        return BAD_SIGNATURE
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return None if expected == match.group(6) else BAD_SIGNATURE


def _titan_embed(model: str, body: Any) -> tuple[int, Any]:
    text = body.get("inputText")
    if not isinstance(text, str):
        return 400, {"message": "Malformed input request: #: required key [inputText] not found, please reformat."}
    if model.endswith("v1"):
        return 200, {"embedding": vector(text), "inputTextTokenCount": len(text.split())}
    dim = int(body.get("dimensions", DIM))
    embedding = vector(text, dim)
    return 200, {
        "embedding": embedding,
        "embeddingsByType": {"float": embedding},
        "inputTextTokenCount": len(text.split()),
    }


def _claude_messages(model: str, body: Any) -> tuple[int, Any]:
    if body.get("anthropic_version") != "bedrock-2023-05-31" or "max_tokens" not in body:
        return 400, {"message": "Malformed input request: anthropic_version and max_tokens are required"}
    last = body["messages"][-1]["content"]
    text = last if isinstance(last, str) else last[0]["text"]
    return 200, {
        "id": "msg_bdrk_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": f"claude: {text}"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 4, "output_tokens": 3},
    }


def _bedrock_converse(body: Any) -> tuple[int, Any]:
    text = body["messages"][-1]["content"][0]["text"]
    return 200, {
        "output": {"message": {"role": "assistant", "content": [{"text": f"converse: {text}"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 4, "outputTokens": 3, "totalTokens": 7},
        "metrics": {"latencyMs": 12},
    }
