"""The HTTP executor of one connector: a pooled httpx client (`max_connection`), connect / read timeouts, and retries
with backoff (constant, or exponential with equal / full jitter) on 429, 5xx and connection errors, bounded by
`max_retry_times` and `retry_timeout_seconds`, honouring `Retry-After`. Redirects are followed only to trusted URLs."""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from mlsearch.errors import StatusError
from mlsearch.ml.connectors.model import ClientConfig

log = logging.getLogger(__name__)

RETRYABLE = frozenset({429, 500, 502, 503, 504})
_MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes
    headers: dict[str, str]


class HttpExecutor:
    """Sends connector requests; thread-safe (one client, one pool, shared by every caller of the connector)."""

    def __init__(self, config: ClientConfig, check_url: Callable[[str], None]) -> None:
        self._config = config
        self._check_url = check_url
        limits = httpx.Limits(max_connections=config.max_connection, max_keepalive_connections=config.max_connection)
        timeout = httpx.Timeout(connect=config.connection_timeout, read=config.read_timeout, write=30.0, pool=None)
        self._client = httpx.Client(
            limits=limits, timeout=timeout, follow_redirects=False, verify=not config.skip_ssl_verification
        )

    def close(self) -> None:
        self._client.close()

    def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> HttpResponse:
        """The provider's final answer, after retries; transport failures that outlast them become a 5xx/504."""
        cfg = self._config
        deadline = time.monotonic() + cfg.retry_timeout_seconds
        attempt = 0
        while True:
            try:
                response = self._send_following(method, url, headers, body)
                if response.status not in RETRYABLE:
                    return response
                failure: HttpResponse | Exception = response
            except httpx.TransportError as exc:
                failure = exc
            delay = self._delay(attempt, failure)
            if not self._may_retry(attempt, deadline, delay):
                return _final(failure)
            log.debug("retrying %s %s in %.3fs after %s", method, url, delay, _describe(failure))
            time.sleep(delay)
            attempt += 1

    def _may_retry(self, attempt: int, deadline: float, delay: float) -> bool:
        limit = self._config.max_retry_times
        if limit is not None and limit >= 0 and attempt >= limit:
            return False
        return time.monotonic() + delay < deadline

    def _delay(self, attempt: int, failure: HttpResponse | Exception) -> float:
        base = self._config.retry_backoff_millis / 1000
        policy = self._config.retry_backoff_policy
        if policy == "constant":
            delay = base
        else:
            ceiling = min(base * (2**attempt), 30.0)
            delay = (
                random.uniform(0, ceiling)
                if policy == "exponential_full_jitter"
                else ceiling / 2 + random.uniform(0, ceiling / 2)
            )
        if isinstance(failure, HttpResponse):
            delay = max(delay, _retry_after(failure.headers.get("retry-after")))
        return delay

    def _send_following(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> HttpResponse:
        for _ in range(_MAX_REDIRECTS + 1):
            response = self._client.request(method, url, headers=headers, content=body)
            if response.status_code not in (301, 302, 303, 307, 308) or "location" not in response.headers:
                return HttpResponse(response.status_code, response.content, dict(response.headers))
            url = str(response.url.join(response.headers["location"]))
            self._check_url(url)  # a redirect to an untrusted host is refused, not followed
            if response.status_code == 303:
                method, body = "GET", None
        raise StatusError("Error from remote service: too many redirects", status=502)


def _retry_after(value: str | None) -> float:
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, when.timestamp() - time.time())


def _final(failure: HttpResponse | Exception) -> HttpResponse:
    if isinstance(failure, HttpResponse):
        return failure
    if isinstance(failure, httpx.TimeoutException):
        raise StatusError(f"Error from remote service: request timed out ({type(failure).__name__})", status=504)
    raise StatusError(f"Error from remote service: connection failed ({failure})", status=502) from failure


def _describe(failure: Any) -> str:
    return f"status {failure.status}" if isinstance(failure, HttpResponse) else type(failure).__name__
