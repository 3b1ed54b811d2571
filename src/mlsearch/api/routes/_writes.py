"""What document writes share: finding (or auto-creating) the target index and reading write parameters."""

from __future__ import annotations

import base64
import os
import time

from starlette.requests import Request

from mlsearch.api._request import param_int
from mlsearch.api.routes._common import blocking, node_of
from mlsearch.engine.index import DocOp, Index
from mlsearch.errors import IllegalArgumentError, IndexNotFoundError


async def target_index(request: Request, name: str) -> Index:
    """The index a write goes to; a missing one is created when action.auto_create_index allows it."""
    node = node_of(request)
    index = node.indices.write_target(name)
    if index is not None:
        return index
    auto = str(node.cluster_settings.get("action.auto_create_index")).lower()
    if auto == "false":
        raise IndexNotFoundError(name)
    from mlsearch.errors import ResourceAlreadyExistsError

    try:
        return await blocking(node.indices.create, name, {})
    except ResourceAlreadyExistsError:
        return node.indices.get(name)  # created by a concurrent request


def forced_refresh(request: Request) -> bool:
    """Whether a write response says `forced_refresh`: only for `refresh=true`; `wait_for` waits, it does not force."""
    return request.query_params.get("refresh") in ("", "true")


_last_stamp = 0


def auto_id() -> str:
    """A 20-character URL-safe id, time-ordered like OpenSearch's."""
    global _last_stamp
    stamp = max(int(time.time() * 1000), _last_stamp + 1)
    _last_stamp = stamp
    raw = stamp.to_bytes(6, "big") + os.urandom(9)
    return base64.urlsafe_b64encode(raw).decode()[:20]


def concurrency(request: Request, action: str, doc_id: str, source: object) -> DocOp:
    """A DocOp with if_seq_no / if_primary_term / version / version_type from the query string."""
    version_type = request.query_params.get("version_type", "internal")
    if version_type not in ("internal", "external", "external_gte"):
        raise IllegalArgumentError(f"No version type match [{version_type}]")
    op = DocOp(
        action=action,
        id=doc_id,
        source=source,
        if_seq_no=param_int(request, "if_seq_no"),
        if_primary_term=param_int(request, "if_primary_term"),
        version=param_int(request, "version"),
        version_type=version_type,
    )
    validate_op(op)
    return op


def validate_op(op: DocOp) -> None:
    if (op.if_seq_no is None) != (op.if_primary_term is None):
        missing = "if_primary_term" if op.if_primary_term is None else "if_seq_no"
        raise IllegalArgumentError(f"Validation Failed: 1: {missing} must be set together with its counterpart;")
    if op.version is not None and op.version_type == "internal":
        raise IllegalArgumentError(
            "Validation Failed: 1: internal versioning can not be used for optimistic concurrency control. "
            "Please use `if_seq_no` and `if_primary_term` instead;"
        )
    if op.version is not None and op.if_seq_no is not None:
        raise IllegalArgumentError("Validation Failed: 1: compare and write operations can not use versioning;")
    if len(op.id.encode()) > 512:
        raise IllegalArgumentError(
            f"Validation Failed: 1: id [{op.id}] is too long, must be no longer than 512 bytes but was: "
            f"{len(op.id.encode())};"
        )
