"""The HTTP executor of one connector: a pooled httpx client (`max_connection`), connect / read timeouts, and retries
with backoff (constant, or exponential with equal / full jitter) on 429, 5xx and connection errors, bounded by
`max_retry_times` and `retry_timeout_seconds`, honouring `Retry-After`. Redirects are followed only to trusted URLs."""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import socket
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from mlsearch.errors import StatusError
from mlsearch.ml.connectors.model import ClientConfig

log = logging.getLogger(__name__)

RETRYABLE = frozenset({429, 500, 502, 503, 504})
_CANCELLED = "Error from remote service: the call was cancelled (model undeployed or node shutting down)"
_MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes
    headers: dict[str, str]


class _AbortableStream(httpcore.NetworkStream):
    """A connection's stream that its backend can cut: a thread blocked reading it wakes up with an error."""

    def __init__(self, inner: httpcore.NetworkStream, backend: _AbortableBackend) -> None:
        self._inner = inner
        self._backend = backend
        backend.track(self)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> Any:
        return _AbortableStream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._backend)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)

    def abort(self) -> None:
        sock = self._inner.get_extra_info("socket")
        # shutdown, not close: close() leaves a thread blocked in recv() waiting until the read timeout
        with contextlib.suppress(OSError, AttributeError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)


class _AbortableBackend(httpcore.SyncBackend):
    """httpcore's socket backend, remembering its open streams so that `abort` can cut in-flight calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: weakref.WeakSet[_AbortableStream] = weakref.WeakSet()

    def track(self, stream: _AbortableStream) -> None:
        with self._lock:
            self._streams.add(stream)

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _AbortableStream(super().connect_tcp(*args, **kwargs), self)

    def abort(self) -> None:
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.abort()


def _transport(config: ClientConfig, backend: _AbortableBackend) -> httpx.HTTPTransport:
    limits = httpx.Limits(max_connections=config.max_connection, max_keepalive_connections=config.max_connection)
    transport = httpx.HTTPTransport(limits=limits, verify=not config.skip_ssl_verification)
    # httpx takes no network backend; its pool (httpcore.ConnectionPool) keeps the one it uses here.
    pool = getattr(transport, "_pool", None)
    if hasattr(pool, "_network_backend"):
        pool._network_backend = backend  # type: ignore[union-attr]
    else:
        log.warning("httpx's transport changed: in-flight connector calls cannot be cancelled at shutdown")
    return transport


class HttpExecutor:
    """Sends connector requests; thread-safe (one client, one pool, shared by every caller of the connector).

    `close` cancels the calls in flight (their sockets are shut down, so blocked reads fail at once) and refuses
    new ones: an undeployed model or a stopping node is not held up by a provider that does not answer."""

    def __init__(self, config: ClientConfig, check_url: Callable[[str], None]) -> None:
        self._config = config
        self._check_url = check_url
        self._closed = False
        self._backend = _AbortableBackend()
        timeout = httpx.Timeout(connect=config.connection_timeout, read=config.read_timeout, write=30.0, pool=None)
        self._client = httpx.Client(
            transport=_transport(config, self._backend), timeout=timeout, follow_redirects=False
        )

    def close(self) -> None:
        self._closed = True
        self._backend.abort()
        self._client.close()

    def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> HttpResponse:
        """The provider's final answer, after retries; transport failures that outlast them become a 5xx/504."""
        cfg = self._config
        deadline = time.monotonic() + cfg.retry_timeout_seconds
        attempt = 0
        while True:
            if self._closed:
                raise StatusError(_CANCELLED, status=503)
            try:
                response = self._send_following(method, url, headers, body)
                if response.status not in RETRYABLE:
                    return response
                failure: HttpResponse | Exception = response
            except (httpx.TransportError, RuntimeError) as exc:  # RuntimeError: the client was closed meanwhile
                if self._closed:
                    raise StatusError(_CANCELLED, status=503) from exc
                if isinstance(exc, RuntimeError):
                    raise
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
