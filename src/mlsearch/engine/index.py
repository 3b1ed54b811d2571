"""One index: its store, its lexical projection, its mapping and settings, and the write path."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from mlsearch.engine import semantic
from mlsearch.engine.analysis import Analyzers
from mlsearch.engine.lexical import LexicalIndex
from mlsearch.engine.mapping import Mappings, check_knn_mapping, parse_document
from mlsearch.engine.settings import seconds
from mlsearch.engine.sparse import SparseIndex
from mlsearch.engine.store import Store, StoredDoc, Write
from mlsearch.engine.update_script import UpdateScript, parse_script, run_update, run_upsert
from mlsearch.engine.vectors import VectorIndex
from mlsearch.engine.vectors.node import KnnNode
from mlsearch.errors import (
    ActionRequestValidationError,
    DocumentMissingError,
    IllegalArgumentError,
    MLSearchError,
    VersionConflictError,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DocOp:
    """One write as a client asked for it (from `_doc`, `_create`, `_update`, `_delete` or a `_bulk` line)."""

    action: str  # index | create | update | delete | noop (a by-query script's ctx.op noop: counted, not written)
    id: str
    source: Any = None  # the document (index/create) or the update body
    if_seq_no: int | None = None
    if_primary_term: int | None = None
    version: int | None = None
    version_type: str = "internal"


@dataclass(slots=True)
class OpResult:
    """What one operation did: a write result, a noop, or an error to report for that item."""

    action: str
    id: str
    result: str = ""
    version: int = 0
    seq_no: int = 0
    primary_term: int = 1
    error: MLSearchError | None = None
    source: dict[str, Any] | None = None  # the updated document, for `_update?_source=true`

    @property
    def status(self) -> int:
        if self.error is not None:
            return self.error.status
        if self.result == "created":
            return 201
        if self.result == "not_found":
            return 404
        return 200


@dataclass(slots=True)
class _Pending:
    """The state of a document as the operations so far in this request leave it."""

    doc: StoredDoc | None
    source: dict[str, Any] | None = None
    seq_no: int = -1
    version: int = 0
    live: bool = False


@dataclass
class IndexMeta:
    name: str
    uuid: str
    creation_date: int
    settings: dict[str, Any]
    mappings: Mappings
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)
    state: str = "open"


class Index:
    """An open index. Writes are serialised by a lock; searches read the last refreshed snapshot."""

    def __init__(self, path: Path, meta: IndexMeta, store: Store, knn: KnnNode | None = None) -> None:
        self.path = path
        self.meta = meta
        self.store = store
        self.analyzers = Analyzers()
        self.lock = threading.RLock()
        self.lexical = LexicalIndex(path / "lexical", meta.mappings, self.analyzers)
        self.vectors = VectorIndex(
            path / "vectors",
            meta.mappings,
            lambda: self.meta.settings,
            lambda: self.lexical.searcher(),
            knn or KnnNode(),
        )
        self.sparse = SparseIndex(path / "sparse", meta.mappings)
        self._last_refresh = time.monotonic()
        self._refreshed = threading.Condition(self.lock)
        self._recover()

    def _recover(self) -> None:
        self.vectors.recover(self.store)
        self.sparse.recover(self.store)
        if self.lexical.checkpoint < 0 and self.store.max_seq_no >= 0:
            log.info("rebuilding lexical index of [%s] from its store", self.name)
            self.lexical.rebuild(self.meta.mappings, self.store)
            return
        touched = self.lexical.catch_up(self.store)
        if touched:
            log.info("lexical index of [%s] caught up %d documents from the store", self.name, touched)
        self.lexical.commit(self.store.max_seq_no)

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def mappings(self) -> Mappings:
        return self.meta.mappings

    def setting(self, name: str, default: Any = None) -> Any:
        return self.meta.settings.get(name, default)

    @property
    def legacy_bm25(self) -> bool:
        return str(self.setting("index.similarity.default.type", "BM25")).lower() == "legacybm25"

    def close(self) -> None:
        with self.lock:
            self.vectors.close()
            if self.vectors.pending:
                self.vectors.refresh(self.store.max_seq_no)
            if self.sparse.pending:
                self.sparse.refresh(self.store.max_seq_no)
            if self.lexical.pending:
                self.lexical.commit(self.store.max_seq_no)
            self.lexical.close()
            self.store.close()

    # ---- mapping ----------------------------------------------------------------------------------------

    def put_mapping(self, addition: Mappings) -> None:
        with self.lock:
            check_knn_mapping(addition, self.meta.settings)
            merged = self.meta.mappings.merge(addition)
            self.store.put_meta({"mappings": merged.to_json()})
            self._set_mappings(merged)

    def _set_mappings(self, mappings: Mappings) -> None:
        self.meta.mappings = mappings
        self.vectors.set_mappings(mappings, self.store)
        self.sparse.set_mappings(mappings, self.store)
        if self.lexical.needs_rebuild(mappings):
            self.lexical.rebuild(mappings, self.store)
        else:
            self.lexical.mappings = mappings

    def update_settings(self, values: Mapping[str, Any]) -> None:
        with self.lock:
            settings = dict(self.meta.settings)
            for name, value in values.items():
                if value is None:
                    settings.pop(name, None)
                else:
                    settings[name] = value
            self.store.put_meta({"settings": settings})
            self.meta.settings = settings
            if "index.translog.durability" in values:
                self.store.set_durable(settings.get("index.translog.durability", "request") == "request")

    # ---- reads ------------------------------------------------------------------------------------------

    def get(self, doc_id: str) -> StoredDoc | None:
        doc = self.store.get(doc_id)
        return doc if doc is not None and doc.live else None

    def count(self) -> int:
        return self.store.count()

    # ---- writes -----------------------------------------------------------------------------------------

    def write(self, ops: Sequence[DocOp], *, refresh: bool = False) -> list[OpResult]:
        """Apply operations in order, in one store transaction; a failing item fails alone (as in `_bulk`)."""
        with self.lock:
            results, writes, values, mappings = self._plan(ops)
            if writes:
                grown = mappings if mappings is not self.meta.mappings else None
                vectors_rebuilt = grown is not None and self.vectors.needs_rebuild(grown)
                sparse_rebuilt = grown is not None and self.sparse.needs_rebuild(grown)
                meta = {"mappings": grown.to_json()} if grown is not None else None
                applied = self.store.apply([w for w, _ in writes], meta=meta)
                for (_, result), stored in zip(writes, applied, strict=True):
                    result.seq_no, result.primary_term = stored.seq_no, stored.primary_term
                if grown is not None and self.lexical.needs_rebuild(grown):
                    self._set_mappings(grown)  # the rebuild reads these writes back from the store
                else:
                    if grown is not None:
                        self._set_mappings(grown)
                    for (write, result), stored in zip(writes, applied, strict=True):
                        self._project(stored.key, write, values.get(id(result)))
                if not vectors_rebuilt:
                    for (_, result), stored in zip(writes, applied, strict=True):
                        self.vectors.project(stored.key, result.source, stored.id)
                if not sparse_rebuilt:
                    for (_, result), stored in zip(writes, applied, strict=True):
                        self.sparse.project(stored.key, result.source)
            if refresh:
                self.refresh()
            return results

    def _project(self, key: int, write: Write, values: dict[str, list[Any]] | None) -> None:
        if write.source is None:
            self.lexical.delete(write.id)
        else:
            assert values is not None
            self.lexical.upsert(key, write.id, values)

    def _plan(self, ops: Sequence[DocOp]) -> tuple[list[OpResult], list[tuple[Write, OpResult]], dict, Mappings]:
        existing = self.store.get_many(list({op.id for op in ops if op.id}))
        pending: dict[str, _Pending] = {}
        results: list[OpResult] = []
        writes: list[tuple[Write, OpResult]] = []
        values: dict[int, dict[str, list[Any]]] = {}
        mappings = self.meta.mappings
        semantic_paths: list[str] | None = None
        next_seq = self.store.max_seq_no + 1
        for op in ops:
            state = pending.get(op.id) or _state_of(existing.get(op.id))
            result = OpResult(op.action, op.id, primary_term=self.store.primary_term)
            results.append(result)
            try:
                source, version, outcome = _decide(op, state, self.name)
                if op.action == "update" and source is not None:
                    if semantic_paths is None:  # once per batch, and only when it holds an update
                        semantic_paths = [p for p, _ in semantic.semantic_fields(mappings.tree.get("properties", {}))]
                    _check_semantic_unchanged(semantic_paths, state.source if state.live else None, source)
                if outcome == "noop":
                    result.result, result.version, result.seq_no = "noop", state.version, state.seq_no
                    result.source = state.source
                    continue
                parsed_values = None
                if source is not None:
                    parsed = parse_document(mappings, source, op.id)
                    if parsed.mappings is not None:
                        mappings = parsed.mappings
                    parsed_values = parsed.values
            except MLSearchError as exc:
                if isinstance(exc, VersionConflictError | DocumentMissingError):
                    # engine exceptions name the shard they happened on, as OpenSearch's do
                    exc.extra.update({"index_uuid": self.meta.uuid, "shard": "0", "index": self.name})
                result.error = exc
                continue
            result.result, result.version, result.seq_no = outcome, version, next_seq
            result.source = source
            encoded = None if source is None else orjson.dumps(source)
            writes.append((Write(op.id, encoded, version), result))
            if parsed_values is not None:
                values[id(result)] = parsed_values
            pending[op.id] = _Pending(state.doc, source, next_seq, version, source is not None)
            next_seq += 1
        return results, writes, values, mappings

    # ---- refresh ----------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Make every write so far searchable (tantivy commit + new searcher)."""
        with self.lock:
            if self.lexical.pending or self.lexical.checkpoint < self.store.max_seq_no:
                self.lexical.commit(self.store.max_seq_no)
            if self.vectors.pending or self.vectors.checkpoint < self.store.max_seq_no:
                self.vectors.refresh(self.store.max_seq_no)
            if self.sparse.pending or self.sparse.checkpoint < self.store.max_seq_no:
                self.sparse.refresh(self.store.max_seq_no)
            self._last_refresh = time.monotonic()

    def refresh_due(self, now: float) -> bool:
        if not self.lexical.pending:
            return False
        interval = str(self.setting("index.refresh_interval", "1s"))
        if interval == "-1":
            return False
        return now - self._last_refresh >= seconds(interval)

    def flush(self) -> None:
        self.refresh()


def _state_of(doc: StoredDoc | None) -> _Pending:
    if doc is None:
        return _Pending(None)
    source = orjson.loads(doc.source) if doc.source is not None else None
    return _Pending(doc, source, doc.seq_no, doc.version, doc.live)


def _check_semantic_unchanged(paths: list[str], before: Any, after: dict[str, Any]) -> None:
    """An update may not change a semantic field's text: its embedding is computed in the API layer from whole
    documents on their way in, which partial updates and scripts bypass, so the stored embedding would go stale."""
    for path in paths:
        if _value_at(before, path) != _value_at(after, path):
            raise IllegalArgumentError(
                f"updating the semantic field [{path}] with _update or a script is not supported: its embedding "
                f"would not follow; index the whole document instead"
            )


def _value_at(source: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(source, dict):
            return None
        source = source.get(part)
    return source


def _decide(op: DocOp, state: _Pending, index_name: str) -> tuple[dict[str, Any] | None, int, str]:
    """The new source, version and result word of one operation, or a conflict / missing-document error."""
    _check_concurrency(op, state)
    if op.action == "create" and state.live:
        raise VersionConflictError(
            f"[{op.id}]: version conflict, document already exists (current version [{state.version}])"
        )
    if op.action in ("index", "create"):
        if not isinstance(op.source, dict):
            from mlsearch.errors import MapperParsingError

            raise MapperParsingError("failed to parse, document is empty")
        return op.source, _next_version(op, state), "updated" if state.live else "created"
    if op.action == "delete":
        return None, _next_version(op, state), "deleted" if state.live else "not_found"
    if op.action == "update":
        return _update(op, state, index_name)
    if op.action == "noop":
        return state.source, state.version, "noop"
    raise IllegalArgumentError(f"unknown action [{op.action}]")


def _next_version(op: DocOp, state: _Pending) -> int:
    if op.version_type in ("external", "external_gte") and op.version is not None:
        return op.version
    return state.version + 1 if state.doc is not None or state.seq_no >= 0 else 1


def _check_concurrency(op: DocOp, state: _Pending) -> None:
    if op.if_seq_no is not None or op.if_primary_term is not None:
        wanted = f"required seqNo [{op.if_seq_no}], primary term [{op.if_primary_term}]"
        if not state.live:
            raise VersionConflictError(f"[{op.id}]: version conflict, {wanted}. but no document was found")
        current_term = state.doc.primary_term if state.doc is not None else 1
        if state.seq_no != op.if_seq_no or current_term != op.if_primary_term:
            raise VersionConflictError(
                f"[{op.id}]: version conflict, {wanted}. current document has seqNo [{state.seq_no}] and "
                f"primary term [{current_term}]"
            )
    if op.version is None:
        return
    if op.version_type == "internal":
        if state.version != op.version or not state.live:
            current = state.version if state.live else -1
            raise VersionConflictError(
                f"[{op.id}]: version conflict, current version [{current}] is different than the one provided "
                f"[{op.version}]"
            )
    elif op.version_type in ("external", "external_gte") and state.doc is not None:
        higher = state.version >= op.version if op.version_type == "external" else state.version > op.version
        if higher:
            word = "higher or equal to" if op.version_type == "external" else "higher than"
            raise VersionConflictError(
                f"[{op.id}]: version conflict, current version [{state.version}] is {word} the one provided "
                f"[{op.version}]"
            )


def _update(op: DocOp, state: _Pending, index_name: str) -> tuple[dict[str, Any] | None, int, str]:
    body = op.source if isinstance(op.source, dict) else {}
    partial = body.get("doc")
    if partial is not None and not isinstance(partial, dict):
        raise IllegalArgumentError("[doc] must be an object")
    if partial is not None and "script" in body:  # a _bulk update line; the _update route refuses this itself
        raise ActionRequestValidationError("Validation Failed: 1: can't provide both script and doc;")
    if not state.live:
        return _upsert(op, state, body, partial)
    if "script" in body:
        return _scripted_update(op, state, body["script"], index_name)
    if partial is None:
        raise IllegalArgumentError("Validation Failed: 1: script or doc is missing;")
    merged = _merge(state.source or {}, partial)
    if body.get("detect_noop", True) and merged == state.source:
        return merged, state.version, "noop"
    return merged, state.version + 1, "updated"


def _upsert(
    op: DocOp, state: _Pending, body: dict[str, Any], partial: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, int, str]:
    """A missing document: index the upsert document as is, or (``scripted_upsert``) what the script makes of it."""
    upsert = body.get("upsert")
    if body.get("doc_as_upsert") and partial is not None:
        upsert = partial
    if upsert is None:
        raise DocumentMissingError(f"[{op.id}]: document missing")
    if not isinstance(upsert, dict):
        raise IllegalArgumentError("[upsert] must be an object")
    if "script" in body and body.get("scripted_upsert"):
        outcome = run_upsert(_script(body["script"]), upsert)
        if outcome.op == "none":
            return state.source, state.version, "noop"
        upsert = outcome.source
    return upsert, _next_version(op, state), "created"


def _scripted_update(
    op: DocOp, state: _Pending, script: Any, index_name: str
) -> tuple[dict[str, Any] | None, int, str]:
    """Run the script on the document. Unlike a `doc` update, an unchanged source is still written (as OpenSearch
    does); only ctx.op none / noop makes a noop, and ctx.op delete deletes the document."""
    outcome = run_update(_script(script), state.source, index=index_name, doc_id=op.id, version=state.version)
    if outcome.op == "none":
        return state.source, state.version, "noop"
    if outcome.op == "delete":
        return None, _next_version(op, state), "deleted"
    return outcome.source, _next_version(op, state), "updated"


def _script(value: Any) -> UpdateScript:
    try:
        return parse_script(value)
    except IllegalArgumentError as exc:
        # OpenSearch compiles the script when it runs it, inside the same "failed to execute script" wrapper.
        raise IllegalArgumentError("failed to execute script", caused_by=exc.body()) from None


def _merge(base: dict[str, Any], partial: Mapping[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; any other value replaces the old one (OpenSearch's partial update)."""
    merged = dict(base)
    for key, value in partial.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
