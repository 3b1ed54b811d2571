"""Connector records in `.plugins-ml-connector`: create, get, search, update, delete. Credentials are encrypted before
they are written and never leave through get or search."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlsearch.engine.index import OpResult
from mlsearch.errors import StatusError
from mlsearch.ml.connectors import access, templates, trust
from mlsearch.ml.connectors.model import (
    ACCESS_FIELDS,
    Connector,
    check,
    parse_connector,
    parse_partial,
    public_form,
    stored_form,
)
from mlsearch.ml.ids import new_id
from mlsearch.ml.system_indices import CONNECTOR_INDEX, SystemIndices
from mlsearch.ml.tasks import now_millis
from mlsearch.security.secrets import SecretBox

Setting = Callable[[str], Any]
_P = "plugins.ml_commons."
REMOTE_DISABLED = (
    'Remote Inference is currently disabled. To enable it, update the setting "plugins.ml_commons.remote_inference_enabled" '
    "to true."
)


def check_enabled(setting: Setting) -> None:
    if not setting(_P + "remote_inference.enabled"):
        raise StatusError(REMOTE_DISABLED, status=400)


def check_urls(connector: Connector, setting: Setting) -> None:
    """Every action URL, with the connector's own parameters filled in, must be trusted (others are checked per call)."""
    params = templates.defaults(connector.parameters)
    for action in connector.actions or []:
        url = templates.substitute(str(action.url), params)
        if not templates.missing_placeholders(url):
            trust.check_pattern(url, setting)


class ConnectorStore:
    def __init__(self, records: SystemIndices, secrets: SecretBox, setting: Setting) -> None:
        self._records = records
        self.secrets = secrets
        self._setting = setting

    def validated(self, body: Any) -> Connector:
        """A connector body (standalone or inline), checked: fields, protocol, credential, trusted URLs."""
        check_enabled(self._setting)
        connector = parse_connector(body)
        check_urls(connector, self._setting)
        return connector

    def stored(self, connector: Connector) -> dict[str, Any]:
        return stored_form(connector, self.secrets.encrypt_map(connector.credential or {}))

    def _access_control(self) -> bool:
        return bool(self._setting(_P + "connector_access_control_enabled"))

    def create(self, body: Any) -> dict[str, Any]:
        connector = self.validated(body)
        granted = access.on_create(connector.model_dump(include=set(ACCESS_FIELDS)), enabled=self._access_control())
        doc = {**self.stored(connector), **granted}
        stamp = now_millis()
        doc.update({"created_time": stamp, "last_updated_time": stamp})
        connector_id = new_id()
        self._records.create(CONNECTOR_INDEX, connector_id, doc)
        return {"connector_id": connector_id}

    def find_stored(self, connector_id: str) -> dict[str, Any] | None:
        if not self._records.exists(CONNECTOR_INDEX):
            return None
        return self._records.get(CONNECTOR_INDEX, connector_id)

    def get_stored(self, connector_id: str) -> dict[str, Any]:
        doc = self.find_stored(connector_id)
        if doc is None:
            raise StatusError(f"Failed to find connector with the provided connector id: {connector_id}", status=404)
        return doc

    def get(self, connector_id: str) -> dict[str, Any]:
        return public_form(self.get_stored(connector_id))

    def search(self, body: Any) -> dict[str, Any]:
        response = self._records.search(CONNECTOR_INDEX, body)
        for hit in response.get("hits", {}).get("hits", []):
            if isinstance(hit.get("_source"), dict):
                hit["_source"] = public_form(hit["_source"])
        return response

    def merged(self, stored: dict[str, Any], body: Any) -> dict[str, Any]:
        """A stored connector (encrypted credential) with a partial update applied and re-validated."""
        partial = parse_partial(body)
        requested = {k: partial.pop(k) for k in ACCESS_FIELDS if k in partial}
        granted = access.on_update(stored, requested, enabled=self._access_control())
        credential = dict(stored.get("credential") or {})
        if partial.get("credential"):
            credential.update(self.secrets.encrypt_map(partial.pop("credential")))
        partial.pop("credential", None)
        if "parameters" in partial:
            partial["parameters"] = {**stored.get("parameters", {}), **partial["parameters"]}
        merged = {**stored, **{k: v for k, v in partial.items() if v is not None}, "credential": credential}
        view = Connector.model_validate(merged)
        check(view)  # credential presence is what matters here: the encrypted values stand in
        check_urls(view, self._setting)
        doc = stored_form(view, credential)
        for key in ("created_time", "access", "backend_roles", "owner"):
            if key in stored:
                doc[key] = stored[key]
        doc.update(granted)
        if not doc.get("backend_roles"):
            doc.pop("backend_roles", None)
        return doc

    def update(self, connector_id: str, body: Any) -> OpResult:
        check_enabled(self._setting)
        stored = self.get_stored(connector_id)
        doc = self.merged(stored, body)
        doc["last_updated_time"] = now_millis()
        return self._records.put(CONNECTOR_INDEX, connector_id, doc)

    def delete(self, connector_id: str, users: list[str]) -> OpResult:
        if users:
            raise StatusError(
                f"{len(users)} models are still using this connector, please delete or update the models first: "
                f"[{', '.join(users)}]",
                status=409,
            )
        return self._records.delete(CONNECTOR_INDEX, connector_id)

    def count(self) -> int:
        return self._records.count(CONNECTOR_INDEX)
