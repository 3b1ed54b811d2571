"""Remote inference through a connector: build the request (spec §3.4), send it through the connector's executor,
turn the answer into tensors; `RemotePredictor` puts that behind the Predictor protocol, with the model's rate limiter."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from mlsearch.errors import IllegalArgumentError, MLSearchError, StatusError
from mlsearch.ml.connectors import functions, templates, trust
from mlsearch.ml.connectors.executor import HttpExecutor, HttpResponse
from mlsearch.ml.connectors.model import Action, Connector
from mlsearch.ml.predictor import PredictInput, Tensor
from mlsearch.painless import run_script

Setting = Callable[[str], Any]
Decrypt = Callable[[dict[str, str]], dict[str, str]]

THROTTLED = "Request is throttled at model level."
_UNITS = {
    "NANOSECONDS": 1e-9,
    "MICROSECONDS": 1e-6,
    "MILLISECONDS": 1e-3,
    "SECONDS": 1.0,
    "MINUTES": 60.0,
    "HOURS": 3600.0,
    "DAYS": 86400.0,
}


@dataclass(frozen=True, slots=True)
class RemoteResult:
    """One remote call: its tensors and the provider's HTTP status."""

    tensors: list[Tensor]
    status: int


class RemoteConnector:
    """A connector ready to call: its definition, encrypted credential, model-level parameters and executor."""

    def __init__(
        self,
        connector: Connector,
        credential: dict[str, str],
        decrypt: Decrypt,
        setting: Setting,
        model_parameters: dict[str, Any] | None = None,
    ) -> None:
        self.connector = connector
        self._credential = credential  # encrypted; decrypted per request
        self._decrypt = decrypt
        self._setting = setting
        self._model_parameters = model_parameters or {}
        self._executor = HttpExecutor(connector.config(), lambda url: trust.check_call(url, setting))

    def close(self) -> None:
        self._executor.close()

    def call(self, inputs: PredictInput, action_type: str = "PREDICT") -> RemoteResult:
        action = self.connector.action(action_type)
        if action is None:
            raise IllegalArgumentError(f"no {action_type} action found")
        return self.run(action, inputs)

    def run(self, action: Action, inputs: PredictInput) -> RemoteResult:
        """One call of `action` (the connector's own, or a derived one such as a default batch status action)."""
        params = self._parameters(inputs, action)
        url = templates.substitute(str(action.url), params)
        trust.check_call(url, self._setting)
        payload = templates.build_payload(action.request_body, params)
        body = payload.encode() if payload is not None else None
        headers = self._headers(action, params)
        if self.connector.protocol == "aws_sigv4":
            headers.update(self._sign(str(action.method).upper(), url, headers, body or b"", params))
        response = self._executor.send(str(action.method).upper(), url, headers, body)
        return RemoteResult(self._output(action, response, params), response.status)

    # ---- request ----------------------------------------------------------------------------------------

    def _parameters(self, inputs: PredictInput, action: Action) -> dict[str, str]:
        """connector defaults ← model parameters ← request ← pre-process output ← request again (spec §3.4.1)."""
        params = templates.defaults(self.connector.parameters)
        params.update(templates.defaults(self._model_parameters))
        no_escape = templates.no_escape_keys(params) + templates.no_escape_keys(inputs.parameters)
        request = templates.normalise(inputs.parameters, no_escape)
        params.update(request)
        if inputs.text_docs or inputs.query_text is not None:
            params.update(templates.normalise(self._pre_process(inputs, action), no_escape))
            params.update(request)
        return params

    def _pre_process(self, inputs: PredictInput, action: Action) -> dict[str, Any]:
        name = action.pre_process_function
        if name is None:
            if not inputs.text_docs:
                raise IllegalArgumentError("pre_process_function not defined in connector")
            name = functions.DEFAULT_PRE
        if name in functions.PRE:
            return functions.PRE[name](inputs)
        result = _run_script(name, {"text_docs": list(inputs.text_docs), "query_text": inputs.query_text})
        parsed = _lenient_json(result) if isinstance(result, str | bytes) else result
        if not isinstance(parsed, dict) or not isinstance(parsed.get("parameters"), dict):
            raise IllegalArgumentError('pre_process_function should return {"parameters": {...}}')
        return parsed["parameters"]

    def _headers(self, action: Action, params: dict[str, str]) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        credential = self._decrypt(self._credential) if action.headers else {}
        for key, value in (action.headers or {}).items():
            headers[key.lower()] = templates.substitute_credentials(templates.substitute(value, params), credential)
        return headers

    def _sign(
        self, method: str, url: str, headers: dict[str, str], body: bytes, params: dict[str, str]
    ) -> dict[str, str]:
        try:
            from mlsearch.ml.connectors.sigv4 import sign
        except ImportError:
            raise IllegalArgumentError(
                "aws_sigv4 connectors are not supported yet: the SigV4 signer is missing"
            ) from None
        cred = self._decrypt(self._credential)
        return sign(
            method,
            url,
            headers,
            body,
            access_key=cred["access_key"],
            secret_key=cred["secret_key"],
            session_token=cred.get("session_token"),
            region=params.get("region") or cred.get("region", ""),
            service=params.get("service_name") or cred.get("service_name", ""),
        )

    # ---- response ---------------------------------------------------------------------------------------

    def _output(self, action: Action, response: HttpResponse, params: dict[str, str]) -> list[Tensor]:
        if not 200 <= response.status < 300:
            raise StatusError(
                f"Error from remote service: {response.body.decode(errors='replace')}", status=response.status
            )
        try:
            data = orjson.loads(response.body) if response.body else None
        except orjson.JSONDecodeError:
            data = response.body.decode(errors="replace")
        response_filter = params.get("response_filter")
        if action.response_mapping:
            return functions.mapped_output(data, action.response_mapping)
        name = action.post_process_function
        if name is None:
            return functions.raw_output(data, response_filter)
        if name in functions.POST:
            return functions.run_post(name, data, response_filter)
        script_params = data if isinstance(data, dict) else {"response": data}
        return functions.script_output(_run_script(name, script_params))


def _lenient_json(text: str | bytes) -> Any:
    """A script's JSON text, read as Gson reads it in ML Commons: raw control characters inside strings are accepted.
    ML Commons' `escape` keeps a real TAB as is, so a document holding a tab must not fail the pre-process."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            return json.loads(text, strict=False)
        except json.JSONDecodeError as exc:
            raise IllegalArgumentError(f"pre_process_function returned invalid JSON: {exc}") from None


def _run_script(source: str, params: dict[str, Any]) -> Any:
    return run_script(source, params)


class RateLimiter:
    """Token bucket of a model's `rate_limiter` {limit, unit}: `limit` requests per unit, bursts up to `limit`."""

    def __init__(self, limit: float, unit: str) -> None:
        seconds = _UNITS.get(unit.upper())
        if seconds is None or limit <= 0:
            raise IllegalArgumentError(f"Invalid rate limiter: limit {limit}, unit {unit}")
        self._capacity = limit
        self._rate = limit / seconds
        self._tokens = limit
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            if self._tokens < 1:
                raise StatusError(THROTTLED, status=429)
            self._tokens -= 1

    @classmethod
    def of(cls, config: dict[str, Any] | None) -> RateLimiter | None:
        if not config or config.get("limit") is None or not config.get("unit"):
            return None
        return cls(float(config["limit"]), str(config["unit"]))


class RemotePredictor:
    """A deployed remote model. `predict` gives per-document tensors where the call returns one per document."""

    function_name = "REMOTE"

    def __init__(self, remote: RemoteConnector, limiter: RateLimiter | None) -> None:
        self.remote = remote
        self.limiter = limiter

    def call(self, inputs: PredictInput) -> RemoteResult:
        if self.limiter is not None:
            self.limiter.acquire()
        try:
            return self.remote.call(inputs)
        except MLSearchError:
            raise
        except Exception as exc:  # a provider answer we could not use: say so, with a status, never a bare 500
            raise StatusError(f"Error from remote service: {exc}", status=502) from exc

    def predict(self, inputs: PredictInput) -> list[list[Tensor]]:
        tensors = self.call(inputs).tensors
        if inputs.text_docs and len(tensors) == len(inputs.text_docs):
            return [[t] for t in tensors]
        return [tensors]

    def close(self) -> None:
        self.remote.close()
