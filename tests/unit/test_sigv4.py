"""SigV4 signing against a local HTTP server that recomputes the signature with botocore independently."""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.connectors.sigv4 import sign

ACCESS_KEY, SECRET_KEY, REGION, SERVICE = (
    "AKIAMLSEARCHTESTKEY1",
    "mlsearch/unit-test+secret/not-a-real-key0",
    "us-east-1",
    "bedrock",
)
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([^,]+), Signature=(\w+)"
)


class _VerifyingHandler(BaseHTTPRequestHandler):
    """Answers 200 when the request's SigV4 signature is what botocore computes for it, else 403."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status = 200 if self._signature_ok(body) else 403
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _signature_ok(self, body: bytes) -> bool:
        match = _AUTH.fullmatch(self.headers.get("Authorization", ""))
        if match is None or match.group(1) != ACCESS_KEY:
            return False
        signed = match.group(5).split(";")
        headers = {name: self.headers[name] for name in signed if self.headers.get(name) is not None}
        if len(headers) != len(signed):
            return False
        url = f"http://{self.headers['Host']}{self.path}"
        request = AWSRequest(method=self.command, url=url, data=body, headers=headers)
        request.context["timestamp"] = self.headers["X-Amz-Date"]
        token = self.headers.get("X-Amz-Security-Token")
        signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, token), match.group(4), match.group(3))
        content_hash = self.headers.get("X-Amz-Content-SHA256")
        if content_hash is not None and content_hash != signer.payload(request):
            return False
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        return bool(expected == match.group(6))

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _VerifyingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _post(host: str, path: str, headers: dict[str, str], body: bytes) -> int:
    conn = http.client.HTTPConnection(host, timeout=5)
    try:
        conn.request("POST", path, body=body, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def _signed(host: str, path: str, body: bytes, headers: dict[str, str], token: str | None = None) -> dict[str, str]:
    added = sign(
        "POST", f"http://{host}{path}", headers, body,
        access_key=ACCESS_KEY, secret_key=SECRET_KEY, session_token=token, region=REGION, service=SERVICE,
    )  # fmt: skip
    return {**headers, **added}


BODY = b'{"inputText": "How do tides work on a lake?"}'
PATH = "/model/amazon.titan-embed-text-v1/invoke"


def test_signed_request_is_accepted(provider: str) -> None:
    headers = _signed(provider, PATH, BODY, {"content-type": "application/json"})
    assert headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "X-Amz-Date" in headers and "X-Amz-Security-Token" not in headers
    assert _post(provider, PATH, headers, BODY) == 200


def test_session_token_is_sent_and_signed(provider: str) -> None:
    headers = _signed(provider, PATH, BODY, {"content-type": "application/json"}, token="mlsearch-session-token-1")
    assert headers["X-Amz-Security-Token"] == "mlsearch-session-token-1"
    assert "x-amz-security-token" in headers["Authorization"]
    assert _post(provider, PATH, headers, BODY) == 200
    headers["X-Amz-Security-Token"] = "another-token"
    assert _post(provider, PATH, headers, BODY) == 403


def test_tampered_body_is_refused(provider: str) -> None:
    headers = _signed(provider, PATH, BODY, {"content-type": "application/json"})
    assert _post(provider, PATH, headers, BODY.replace(b"lake", b"LAKE")) == 403


def test_tampered_path_or_unsigned_request_is_refused(provider: str) -> None:
    headers = _signed(provider, PATH, BODY, {"content-type": "application/json"})
    assert _post(provider, PATH + "x", headers, BODY) == 403
    assert _post(provider, PATH, {"content-type": "application/json"}, BODY) == 403


def test_content_sha256_required_is_replaced_by_the_body_hash(provider: str) -> None:
    # The Bedrock blueprints send "x-amz-content-sha256: required"; the signed request carries the real hash.
    headers = _signed(provider, PATH, BODY, {"content-type": "application/json", "x-amz-content-sha256": "required"})
    assert re.fullmatch(r"[0-9a-f]{64}", headers["x-amz-content-sha256"])
    assert "X-Amz-Content-SHA256" not in headers
    assert _post(provider, PATH, headers, BODY) == 200
    assert _post(provider, PATH, headers, BODY + b" ") == 403


def test_missing_credentials_are_an_illegal_argument() -> None:
    with pytest.raises(IllegalArgumentError, match="access_key"):
        sign("POST", "https://x.amazonaws.com/", {}, b"", access_key="", secret_key="s", session_token=None,
             region=REGION, service=SERVICE)  # fmt: skip


def test_missing_botocore_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("botocore", "botocore.auth", "botocore.awsrequest", "botocore.credentials"):
        monkeypatch.setitem(__import__("sys").modules, name, None)
    with pytest.raises(IllegalArgumentError, match=r"\[aws\] extra"):
        sign("POST", "https://x.amazonaws.com/", {}, b"", access_key="a", secret_key="s", session_token=None,
             region=REGION, service=SERVICE)  # fmt: skip
