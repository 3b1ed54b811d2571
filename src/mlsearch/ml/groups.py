"""Model groups: records in `.plugins-ml-model-group`, unique names, access modes and per-group version numbers."""

from __future__ import annotations

import threading
from typing import Any

from mlsearch.engine.index import OpResult
from mlsearch.errors import IllegalArgumentError, StatusError
from mlsearch.ml.ids import new_id
from mlsearch.ml.schemas import AccessFields, ModelGroupBody
from mlsearch.ml.system_indices import MODEL_GROUP_INDEX, MODEL_INDEX, SystemIndices
from mlsearch.ml.tasks import now_millis

_ACCESS_DISABLED = (
    "You cannot specify model access control parameters because the Security plugin or model access "
    "control is disabled on your cluster."
)


class ModelGroups:
    """Register, update, read and delete groups; hand out version numbers to the models registered into them."""

    def __init__(self, records: SystemIndices) -> None:
        self._records = records
        # Name uniqueness and version numbers are read-then-write: one lock keeps them consistent.
        self.lock = threading.RLock()

    def register(self, body: ModelGroupBody, *, access_control: bool) -> str:
        if not body.name or not body.name.strip():
            raise IllegalArgumentError("model group name is required")
        access = resolve_access(body, access_control=access_control)
        with self.lock:
            self._check_unique(body.name)
            group_id = new_id()
            stamp = now_millis()
            doc: dict[str, Any] = {"name": body.name, "latest_version": 0}
            if body.description is not None:
                doc["description"] = body.description
            doc.update(access)
            doc.update({"created_time": stamp, "last_updated_time": stamp})
            self._records.create(MODEL_GROUP_INDEX, group_id, doc)
        return group_id

    def _check_unique(self, name: str, *, but: str | None = None) -> None:
        for group_id, _ in self._records.find_all(MODEL_GROUP_INDEX, {"term": {"name.keyword": name}}):
            if group_id != but:
                raise IllegalArgumentError(
                    f"The name you provided is already being used by a model group with ID: {group_id}."
                )

    def find_by_name(self, name: str) -> str | None:
        found = self._records.find_all(MODEL_GROUP_INDEX, {"term": {"name.keyword": name}}, size=1)
        return found[0][0] if found else None

    def get(self, group_id: str) -> dict[str, Any]:
        doc = self._records.get(MODEL_GROUP_INDEX, group_id)
        if doc is None:
            raise StatusError(f"Failed to find model group with the provided model group id: {group_id}", status=404)
        return doc

    def update(self, group_id: str, body: ModelGroupBody, *, access_control: bool) -> None:
        with self.lock:
            if self._records.get(MODEL_GROUP_INDEX, group_id) is None:
                raise StatusError("Failed to find model group", status=404)
            partial: dict[str, Any] = {}
            if body.name is not None:
                if not body.name.strip():
                    raise IllegalArgumentError("model group name is required")
                self._check_unique(body.name, but=group_id)
                partial["name"] = body.name
            if body.description is not None:
                partial["description"] = body.description
            if body.access_given():
                partial.update(resolve_access(body, access_control=access_control, updating=True))
            partial["last_updated_time"] = now_millis()
            self._records.update(MODEL_GROUP_INDEX, group_id, partial)

    def delete(self, group_id: str) -> OpResult:
        with self.lock:
            if self._records.get(MODEL_GROUP_INDEX, group_id) is not None and self.model_count(group_id):
                raise StatusError("Cannot delete the model group when it has associated model versions", status=409)
            return self._records.delete(MODEL_GROUP_INDEX, group_id)

    def model_count(self, group_id: str) -> int:
        query = {
            "bool": {
                "filter": [{"term": {"model_group_id": group_id}}],
                "must_not": [{"exists": {"field": "chunk_number"}}],
            }
        }
        return len(self._records.find_all(MODEL_INDEX, query))

    def next_version(self, group_id: str) -> str:
        """The group's `latest_version + 1`, recorded; the model's `model_version` as a string."""
        with self.lock:
            doc = self.get(group_id)
            version = int(doc.get("latest_version", 0)) + 1
            self._records.update(
                MODEL_GROUP_INDEX, group_id, {"latest_version": version, "last_updated_time": now_millis()}
            )
            return str(version)

    def group_for_model(self, model_name: str, access: AccessFields, *, access_control: bool) -> str:
        """A registration without `model_group_id`: the group named after the model, created when missing."""
        with self.lock:
            existing = self.find_by_name(model_name)
            if existing is not None:
                return existing
            body = ModelGroupBody(
                name=model_name,
                access_mode=access.access_mode,
                backend_roles=access.backend_roles,
                add_all_backend_roles=access.add_all_backend_roles,
            )
            return self.register(body, access_control=access_control)

    def search(self, body: Any) -> dict[str, Any]:
        return self._records.search(MODEL_GROUP_INDEX, body)


def resolve_access(body: AccessFields, *, access_control: bool, updating: bool = False) -> dict[str, Any]:
    """The `access` (and `backend_roles`) a group gets, validated as ML Commons does.

    Without access control (no security plugin, `model_access_control_enabled` false) groups are public and the
    access fields are refused. With it, they are validated and recorded; enforcement waits for authentication."""
    if not access_control:
        if body.access_given():
            raise IllegalArgumentError(_ACCESS_DISABLED)
        return {"access": "public"}
    roles, add_all, mode = body.backend_roles, bool(body.add_all_backend_roles), body.access_mode
    if roles and add_all:
        raise IllegalArgumentError("You cannot specify backend roles and add all backend roles at the same time.")
    if mode is None:
        mode = "restricted" if roles or add_all else ("private" if not updating else None)
    if mode != "restricted" and (roles or add_all):
        raise IllegalArgumentError(
            "You can specify backend roles only for a model group with the restricted access mode."
        )
    if mode == "restricted" and not roles:
        if not add_all:
            raise IllegalArgumentError(
                "You must specify one or more backend roles or add all backend roles to "
                "register a restricted model group."
            )
        # All of the caller's roles: without authentication the caller has none.
        raise IllegalArgumentError("You must have at least one backend role to register a restricted model group.")
    out: dict[str, Any] = {}
    if mode is not None:
        out["access"] = mode
    if roles:
        out["backend_roles"] = list(roles)
    return out
