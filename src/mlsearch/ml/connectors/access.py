"""Connector access-control fields as ML Commons records them: `backend_roles`, `add_all_backend_roles` and
`access_mode` on create and update, stored as `backend_roles` and `access` (public / private / restricted).

With `plugins.ml_commons.connector_access_control_enabled` false the fields are refused, with ML Commons' message.
With it true they are validated as ML Commons validates them for a caller who is not an admin, and recorded. There is
no authentication yet, so the caller has no backend roles of their own: `add_all_backend_roles` is refused ("You must
have at least one backend role…"), while explicit `backend_roles` are accepted as given (ML Commons would also check
that the caller holds them). Nothing is enforced on get / search / predict until users exist."""

from __future__ import annotations

from typing import Any

from mlsearch.errors import IllegalArgumentError

DISABLED = (
    "You cannot specify connector access control parameters because the Security plugin or connector access "
    "control is disabled on your cluster."
)
MODES = ("public", "private", "restricted")


def given(fields: dict[str, Any]) -> bool:
    """Whether a body names access control (ML Commons: an empty `backend_roles` list does not count)."""
    return (
        fields.get("access_mode") is not None
        or fields.get("add_all_backend_roles") is not None
        or bool(fields.get("backend_roles"))
    )


def on_create(fields: dict[str, Any], *, enabled: bool) -> dict[str, Any]:
    """The `access` / `backend_roles` a new connector records (nothing when access control is off)."""
    if not enabled:
        if given(fields):
            raise IllegalArgumentError(DISABLED)
        return {}
    roles, add_all, mode = _read(fields)
    if mode is None:
        mode = "restricted" if roles or add_all else "private"
    _check(roles, add_all, mode)
    return {"access": mode, **({"backend_roles": roles} if roles else {})}


def on_update(stored: dict[str, Any], fields: dict[str, Any], *, enabled: bool) -> dict[str, Any]:
    """The access fields an update changes: given ones replace the stored ones (as ML Commons' update does)."""
    if not enabled:
        if given(fields):
            raise IllegalArgumentError(DISABLED)
        return {}
    roles, add_all, mode = _read(fields)
    if roles is None and not add_all and mode is None:
        return {}
    effective_roles = roles if roles is not None else list(stored.get("backend_roles") or [])
    effective_mode = mode or ("restricted" if roles or add_all else str(stored.get("access") or "private"))
    if effective_mode != "restricted" and roles is None and not add_all:
        effective_roles = []  # leaving the restricted mode drops the roles it needed
    _check(effective_roles, add_all, effective_mode)
    out: dict[str, Any] = {"access": effective_mode, "backend_roles": effective_roles}
    return out


def _read(fields: dict[str, Any]) -> tuple[list[str] | None, bool, str | None]:
    mode = fields.get("access_mode")
    if mode is not None:
        mode = str(mode).lower()
        if mode not in MODES:
            raise IllegalArgumentError("Wrong access value")
    roles = fields.get("backend_roles")
    return (list(roles) if roles is not None else None), bool(fields.get("add_all_backend_roles")), mode


def _check(roles: list[str] | None, add_all: bool, mode: str) -> None:
    """ML Commons' checks, in its order, for a caller with no backend roles of their own."""
    if mode in ("public", "private") and (roles or add_all):
        raise IllegalArgumentError(
            "You can specify backend roles only for a connector with the restricted access mode."
        )
    if mode != "restricted":
        return
    if add_all:
        if roles:
            raise IllegalArgumentError(
                "You can't specify backend roles and add all backend roles to true at same time."
            )
        raise IllegalArgumentError("You must have at least one backend role to create a connector.")
    if not roles:
        raise IllegalArgumentError(
            "You must specify at least one backend role or make the connector public/private for registering it."
        )
