"""Update scripts: Painless run over a document's ``ctx`` for `_update`, `_bulk` update, `_update_by_query` and
`_reindex`, with the ``ctx`` each API gives its scripts and the way each reads ``ctx.op`` back (OpenSearch's
UpdateHelper for `_update`, its bulk-by-scroll script applier for the by-query jobs)."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from mlsearch.errors import IllegalArgumentError, MLSearchError, ScriptError
from mlsearch.painless import run_script, validate_script
from mlsearch.painless.java import to_json

log = logging.getLogger(__name__)

_SCRIPT_KEYS = {"source", "inline", "id", "lang", "params", "options"}
# `_update` reads ctx.op leniently (an unknown word is a noop, with a warning); the by-query jobs do not.
_UPDATE_OPS = {"index": "index", "create": "create", "delete": "delete", "none": "none", "noop": "none"}
_BY_QUERY_OPS = ("noop", "index", "delete")


@dataclass(frozen=True, slots=True)
class UpdateScript:
    """An inline Painless script and its params, validated when the request is read."""

    source: str
    params: dict[str, Any] = field(default_factory=dict)

    def execute(self, ctx: dict[str, Any]) -> None:
        """Run the script over ``ctx`` (changed in place); a failure is a ``script_exception`` naming the script."""
        try:
            validate_script(self.source)
        except MLSearchError as exc:
            raise _script_error(self.source, "compile error", exc) from None
        try:
            run_script(self.source, self.params, bindings={"ctx": ctx})
        except MLSearchError as exc:
            raise _script_error(self.source, "runtime error", exc) from None


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """What a script decided for one document: the operation and the new source (and id, for reindex)."""

    op: str  # index | create | delete | none
    source: dict[str, Any]
    id: str | None = None


def parse_script(value: Any) -> UpdateScript:
    """The ``script`` of a request: a string (its source) or {source, params, lang}; stored scripts are refused."""
    if isinstance(value, str):
        return UpdateScript(value)
    if not isinstance(value, dict):
        raise IllegalArgumentError(f"[script] must be a string or an object, got [{type(value).__name__}]")
    for key in value:
        if key not in _SCRIPT_KEYS:
            raise IllegalArgumentError(f"[script] unknown field [{key}]")
    if "id" in value:
        raise IllegalArgumentError(
            f"stored scripts are not supported: script [{value['id']}] cannot be run; send it inline as [source]"
        )
    source = value.get("source", value.get("inline"))
    if not isinstance(source, str) or not source:
        raise IllegalArgumentError("must specify either [source] for an inline script or [id] for a stored script")
    lang = value.get("lang", "painless")
    if lang != "painless":
        raise IllegalArgumentError(f"script_lang not supported [{lang}]")
    params = value.get("params") or {}
    if not isinstance(params, dict):
        raise IllegalArgumentError("[params] must be an object")
    return UpdateScript(source, params)


def _now_millis() -> int:
    return int(time.time() * 1000)


def _copy(source: dict[str, Any] | None) -> dict[str, Any]:
    # The script changes its `_source` in place; the caller's copy may be shared with earlier results.
    return orjson.loads(orjson.dumps(source or {}))


def _new_source(ctx: dict[str, Any]) -> dict[str, Any]:
    source = ctx.get("_source")
    if not isinstance(source, dict):
        raise IllegalArgumentError("Script cleared source" if source is None else "[_source] must be a map")
    return to_json(source)


# ---- `_update` and `_bulk` update ------------------------------------------------------------------------------


def _document_ctx(source: dict[str, Any] | None, *, index: str, doc_id: str, version: int) -> dict[str, Any]:
    """The `ctx` a script sees for an existing document: its metadata and a copy of its source to change."""
    return {
        "op": "index",
        "_id": doc_id,
        "_index": index,
        "_version": version,
        "_routing": None,
        "_source": _copy(source),
    }


def run_update(
    script: UpdateScript, source: dict[str, Any] | None, *, index: str, doc_id: str, version: int
) -> ScriptResult:
    """Run an update script on an existing document; op is index (default), delete or none (a noop)."""
    ctx = _document_ctx(source, index=index, doc_id=doc_id, version=version)
    ctx["_now"] = _now_millis()  # the update API's ctx has it; by-query scripts' does not
    _execute_for_update(script, ctx)
    op = _update_op(ctx, script)
    # "create" on an existing document is not an update: UpdateHelper treats it as a noop.
    return ScriptResult(op if op in ("index", "delete") else "none", _new_source(ctx) if op == "index" else {})


def run_upsert(script: UpdateScript, upsert: dict[str, Any]) -> ScriptResult:
    """``scripted_upsert``: the script runs on the upsert document with op "create"; "none" abandons the upsert."""
    ctx: dict[str, Any] = {"op": "create", "_source": _copy(upsert), "_now": _now_millis()}
    _execute_for_update(script, ctx)
    op = _update_op(ctx, script)
    if op != "create":
        if op != "none":
            log.warning("invalid upsert operation [%s] for script [%s], doing nothing", op, script.source)
        return ScriptResult("none", {})
    return ScriptResult("create", _new_source(ctx))


def _execute_for_update(script: UpdateScript, ctx: dict[str, Any]) -> None:
    try:
        script.execute(ctx)
    except ScriptError as exc:
        # UpdateHelper wraps whatever the script throws, compile errors included.
        raise IllegalArgumentError("failed to execute script", caused_by=exc.body()) from None


def _update_op(ctx: dict[str, Any], script: UpdateScript) -> str:
    word = ctx.get("op")
    op = _UPDATE_OPS.get(word) if isinstance(word, str) else None
    if op is None:
        log.warning("used update operation [%s] for script [%s], doing nothing", word, script.source)
        return "none"
    return op


# ---- `_update_by_query` and `_reindex` -------------------------------------------------------------------------


def run_by_query(
    script: UpdateScript,
    source: dict[str, Any] | None,
    *,
    index: str,
    doc_id: str,
    version: int,
    id_may_change: bool = False,
) -> ScriptResult:
    """Run a by-query script on one document; op is index (default), noop or delete, strictly.

    Changing ``_index``, ``_version`` or ``_routing`` is refused; ``_id`` may change only in a reindex."""
    ctx = _document_ctx(source, index=index, doc_id=doc_id, version=version)
    script.execute(ctx)
    word = ctx.pop("op", None)
    if word is None:
        raise IllegalArgumentError("Script cleared operation type")
    new_source = _new_source(ctx)
    ctx.pop("_source")
    new_id = ctx.pop("_id", None)
    if new_id != doc_id and not id_may_change:
        raise IllegalArgumentError("Modifying [_id] not allowed")
    for name, old in (("_index", index), ("_version", version), ("_routing", None)):
        if ctx.pop(name, None) != old:
            raise IllegalArgumentError(f"Modifying [{name}] not allowed")
    if ctx:
        raise IllegalArgumentError(f"Invalid fields added to context [{','.join(map(str, ctx))}]")
    op = str(word).lower()
    if op not in _BY_QUERY_OPS:
        raise IllegalArgumentError(f"Operation type [{op}] not allowed, only [noop, index, delete] are allowed")
    return ScriptResult("none" if op == "noop" else op, new_source, None if new_id is None else str(new_id))


# ---- errors ----------------------------------------------------------------------------------------------------

_LINE = re.compile(r" at line (\d+)$")
# Our interpreter reports problems as messages; the Java exception Painless would have thrown, by its wording.
_CAUSES = (
    ("null value", "null_pointer_exception"),
    ("[null]", "null_pointer_exception"),
    ("out of bounds", "index_out_of_bounds_exception"),
    ("Cannot cast", "class_cast_exception"),
    ("/ by zero", "arithmetic_exception"),
)


def _script_error(source: str, reason: str, exc: MLSearchError) -> ScriptError:
    message = exc.reason
    cause_type = "illegal_argument_exception"
    if reason == "runtime error":
        cause_type = next((t for needle, t in _CAUSES if needle in message), cause_type)
    return ScriptError(
        reason,
        script_stack=[_stack_line(source, message)],
        script=source,
        lang="painless",
        caused_by={"type": cause_type, "reason": message},
    )


def _stack_line(source: str, message: str) -> str:
    """The script line the error names (Painless shows the failing snippet), or the whole script."""
    found = _LINE.search(message)
    lines = source.splitlines()
    if found and 1 <= int(found.group(1)) <= len(lines):
        return lines[int(found.group(1)) - 1].strip()
    return source
