"""AWS Signature Version 4 for ``aws_sigv4`` connectors, done by botocore's signer (no hand-rolled crypto).

botocore is the optional ``aws`` extra (``pip install 'mlsearch[aws]'``); it is imported only when a request is signed.
"""

from __future__ import annotations

from typing import Any

from mlsearch.errors import IllegalArgumentError

# Headers the signer adds; everything else it sees was given by the caller.
_SIGNING_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256")


def sign(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    session_token: str | None,
    region: str,
    service: str,
) -> dict[str, str]:
    """The headers to add to the request so that AWS accepts it: Authorization, X-Amz-Date and, when given,
    X-Amz-Security-Token (plus the body's hash in x-amz-content-sha256 when the caller sent that header, usually
    with the value ``required``, in which case the returned value replaces the caller's)."""
    auth_module, awsrequest_module, credentials_module = _botocore()
    if not access_key or not secret_key:
        raise IllegalArgumentError("Missing credential: access_key and secret_key are required for aws_sigv4")
    if not region or not service:
        raise IllegalArgumentError("Missing parameter: region and service_name are required for aws_sigv4")
    credentials = credentials_module.Credentials(access_key, secret_key, session_token or None)
    content_hash_asked = any(key.lower() == "x-amz-content-sha256" for key in headers)
    kept = {key: value for key, value in headers.items() if key.lower() != "x-amz-content-sha256"}
    request = awsrequest_module.AWSRequest(method=method.upper(), url=url, data=body, headers=kept)
    signer = auth_module.SigV4Auth(credentials, service, region)
    if content_hash_asked:
        # Blueprints send "x-amz-content-sha256: required", which the AWS SDK replaces by the body's hash. botocore
        # would sign the literal word instead (leaving the body unsigned), so put the real hash in first.
        request.headers["X-Amz-Content-SHA256"] = signer.payload(request)
    signer.add_auth(request)
    added: dict[str, str] = {}
    for name in _SIGNING_HEADERS:
        value = request.headers.get(name)
        if value is not None and headers.get(name) != value:
            added[_canonical_case(name, headers)] = value
    return added


def _canonical_case(name: str, given: dict[str, str]) -> str:
    """Reuse the caller's spelling of a header it already set (``x-amz-content-sha256: required``)."""
    lowered = name.lower()
    return next((key for key in given if key.lower() == lowered), name)


def _botocore() -> tuple[Any, Any, Any]:
    try:
        from botocore import auth, awsrequest, credentials
    except ImportError as exc:
        raise IllegalArgumentError(
            "aws_sigv4 connectors need botocore: install the [aws] extra (pip install 'mlsearch[aws]')"
        ) from exc
    return auth, awsrequest, credentials
