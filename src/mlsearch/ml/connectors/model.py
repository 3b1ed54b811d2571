"""The connector object (spec §3.2-3.3), validated with ML Commons' messages, and its stored form."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlsearch.errors import IllegalArgumentError, ParsingError

PROTOCOLS = ("http", "aws_sigv4")
ACTION_TYPES = ("PREDICT", "EXECUTE", "BATCH_PREDICT", "BATCH_PREDICT_STATUS", "CANCEL_BATCH_PREDICT")
ACCESS_FIELDS = ("backend_roles", "add_all_backend_roles", "access_mode")
BACKOFF_POLICIES = ("constant", "exponential_equal_jitter", "exponential_full_jitter")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, protected_namespaces=())


class ClientConfig(_Strict):
    max_connection: int = 30
    connection_timeout: float = 30  # seconds
    read_timeout: float = 30
    retry_backoff_policy: str = "constant"
    # ML Commons defaults to 0. Unset, we retry throttling and connection errors within retry_timeout_seconds
    # (a throttled provider slows an ingest down rather than failing it); an explicit 0 turns retries off.
    max_retry_times: int | None = None
    retry_backoff_millis: int = 200
    retry_timeout_seconds: float = 30
    skip_ssl_verification: bool = False


class Action(_Strict):
    action_type: str | None = None
    method: str | None = None
    url: str | None = None
    headers: dict[str, str] | None = None
    request_body: str | None = None
    pre_process_function: str | None = None
    post_process_function: str | None = None
    name: str | None = None
    # Extension: {tensor name: JSONPath}, a declarative post-process that needs no script.
    response_mapping: dict[str, str] | None = None


class Connector(_Strict):
    name: str | None = None
    description: str | None = None
    version: str | None = None
    protocol: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    credential: dict[str, str] | None = None
    actions: list[Action] | None = None
    client_config: ClientConfig | None = None
    backend_roles: list[str] | None = None
    add_all_backend_roles: bool | None = None
    access_mode: str | None = None
    provisioned_by: str | None = None

    def action(self, action_type: str = "PREDICT") -> Action | None:
        return next((a for a in self.actions or [] if (a.action_type or "").upper() == action_type), None)

    def config(self) -> ClientConfig:
        return self.client_config or ClientConfig()


def parse_connector(body: Any) -> Connector:
    """A connector from a request body (create or inline), checked as ML Commons checks it on create."""
    connector = _model(Connector, body)
    if not connector.name:
        raise IllegalArgumentError("Connector name is null")
    if connector.version is None:
        raise IllegalArgumentError("Connector version is null")
    check(connector)
    return connector


def parse_partial(body: Any) -> dict[str, Any]:
    """An update body: the given fields only, each validated."""
    connector = _model(Connector, body)
    return connector.model_dump(exclude_unset=True)


def check(connector: Connector) -> None:
    """Protocol, credential and actions of a full connector (after create, or after an update is merged)."""
    if not connector.protocol:
        raise IllegalArgumentError("Connector protocol is null")
    if connector.protocol not in PROTOCOLS:
        raise IllegalArgumentError(f"Unsupported connector protocol. Please use one of {list(PROTOCOLS)}")
    if not connector.credential:
        raise IllegalArgumentError("Connector credential is null or empty list")
    for action in connector.actions or []:
        _check_action(action)
    if connector.protocol == "aws_sigv4":
        _check_sigv4(connector)
    policy = connector.config().retry_backoff_policy
    if policy not in BACKOFF_POLICIES:
        raise IllegalArgumentError(f"Unsupported retry backoff policy: {policy}")


def _check_action(action: Action) -> None:
    if not action.action_type:
        raise IllegalArgumentError("action type can't be null")
    upper = action.action_type.upper()
    if upper not in ACTION_TYPES:
        raise IllegalArgumentError(f"Wrong Action Type of {action.action_type}")
    action.action_type = upper
    if not action.url:
        raise IllegalArgumentError("url can't be null")
    if not action.method:
        raise IllegalArgumentError("method can't be null")


def _check_sigv4(connector: Connector) -> None:
    cred = connector.credential or {}
    if not cred.get("access_key") or not cred.get("secret_key"):
        raise IllegalArgumentError("Missing credential")
    params = connector.parameters
    if not (params.get("region") or cred.get("region")):
        raise IllegalArgumentError("Missing region")
    if not (params.get("service_name") or cred.get("service_name")):
        raise IllegalArgumentError("Missing service name")


def stored_form(connector: Connector, encrypted_credential: dict[str, str]) -> dict[str, Any]:
    """The record in `.plugins-ml-connector` (or inside a model): credential already encrypted, unset fields left out."""
    # Access fields are resolved by `access` (validated, `access_mode` recorded as `access`), not copied from the body.
    doc = connector.model_dump(exclude_none=True, exclude={"credential", *ACCESS_FIELDS})
    doc["credential"] = encrypted_credential
    for action in doc.get("actions", []):
        action["action_type"] = action["action_type"].upper()
    if connector.client_config is not None:
        doc["client_config"] = connector.client_config.model_dump(exclude_unset=True)
    return doc


def public_form(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored connector as GET / search return it: never the credential."""
    return {k: v for k, v in doc.items() if k != "credential"}


def _model(cls: type[Connector], body: Any) -> Connector:
    if not isinstance(body, dict):
        raise ParsingError("request body must be an object")
    try:
        return cls.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise IllegalArgumentError(f"[{where}] {first['msg']}") from None
