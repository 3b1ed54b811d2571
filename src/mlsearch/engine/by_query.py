"""Writes driven by a query: delete by query, update by query (re-index in place) and reindex.

Each runs the query on the last refreshed snapshot of an index (as OpenSearch's scroll does), reads the matching
documents from the store by their `_key`, and writes them back through `Index.write` in batches. A document that
changed between the read and its write is a version conflict, counted (`conflicts=proceed`) or fatal."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from mlsearch.engine.index import DocOp, Index, OpResult
from mlsearch.engine.lexical import KEY_FIELD
from mlsearch.engine.query import dsl
from mlsearch.engine.query.compile import compile_query
from mlsearch.engine.search import context_for
from mlsearch.engine.source_filter import SourceFilter
from mlsearch.engine.store import StoredDoc
from mlsearch.engine.update_script import UpdateScript, run_by_query
from mlsearch.errors import VersionConflictError

DEFAULT_BATCH_SIZE = 1000


@dataclass(frozen=True, slots=True)
class ByQueryOptions:
    """How to run one by-query job: which documents, how many, in what batches, and what a conflict does."""

    query: dsl.Query = field(default_factory=dsl.MatchAll)
    max_docs: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    proceed_on_conflicts: bool = False
    refresh: bool = False


@dataclass(slots=True)
class ByQueryStats:
    """The counters of OpenSearch's BulkByScrollResponse."""

    total: int = 0
    updated: int = 0
    created: int = 0
    deleted: int = 0
    batches: int = 0
    version_conflicts: int = 0
    noops: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    took_ms: int = 0

    @property
    def status(self) -> int:
        """The HTTP status: the worst failure's, or 200."""
        return max((f["status"] for f in self.failures), default=200)

    def count(self, index_name: str, result: OpResult, proceed: bool) -> None:
        if result.error is not None:
            if isinstance(result.error, VersionConflictError):
                self.version_conflicts += 1
                if proceed:
                    return
            self.failures.append(
                {"index": index_name, "id": result.id, "cause": result.error.body(), "status": result.error.status}
            )
            return
        if result.result == "deleted":
            self.deleted += 1
        elif result.result == "updated":
            self.updated += 1
        elif result.result == "created":
            self.created += 1
        elif result.result == "noop":
            self.noops += 1


# A job turns one batch of (index, live documents) into operations on a target index.
Planner = Callable[[Index, list[StoredDoc]], tuple[Index, list[DocOp]]]


def matching_keys(index: Index, query: dsl.Query) -> list[int]:
    """The `_key` of every document the query matches in the index's last refreshed snapshot, in key order."""
    compiled = compile_query(query, context_for(index))
    searcher = index.lexical.searcher()
    count = searcher.search(compiled, limit=1, count=True).count
    if count == 0:
        return []
    hits = searcher.search(compiled, limit=count, count=False).hits
    return sorted(searcher.fast_field_values(KEY_FIELD, [addr for _, addr in hits]))


def _batches(index: Index, keys: list[int], size: int) -> Iterator[list[StoredDoc]]:
    for start in range(0, len(keys), size):
        chunk = keys[start : start + size]
        found = index.store.by_keys(chunk)
        # A document deleted since the snapshot comes back as a tombstone; it is still "seen" by the job.
        yield [found[k] for k in chunk if k in found]


def run(indices: Sequence[Index], options: ByQueryOptions, plan: Planner) -> ByQueryStats:
    """Run a by-query job over `indices`; stops after the first batch that had a (non-ignored) failure."""
    started = time.perf_counter()
    stats = ByQueryStats()
    remaining = options.max_docs
    touched: dict[str, Index] = {}
    work = []
    for index in indices:
        keys = matching_keys(index, options.query)
        if remaining is not None:
            keys = keys[: max(remaining, 0)]
            remaining -= len(keys)
        stats.total += len(keys)
        work.append((index, keys))
    for index, keys in work:
        for docs in _batches(index, keys, options.batch_size):
            stats.batches += 1
            _write_batch(index, docs, plan, stats, options, touched)
            if stats.failures:
                break
        if stats.failures:
            break
    if options.refresh:
        # like OpenSearch, `refresh` refreshes every index the job read or wrote, even when nothing changed
        for target in {**{i.name: i for i in indices}, **touched}.values():
            target.refresh()
    stats.took_ms = int((time.perf_counter() - started) * 1000)
    return stats


def _write_batch(
    index: Index,
    docs: list[StoredDoc],
    plan: Planner,
    stats: ByQueryStats,
    options: ByQueryOptions,
    touched: dict[str, Index],
) -> None:
    gone = [d for d in docs if not d.live]
    for doc in gone:
        stats.count(index.name, _gone(doc), options.proceed_on_conflicts)
    target, ops = plan(index, [d for d in docs if d.live])
    if not ops:
        return
    touched[target.name] = target
    for result in target.write(ops):
        stats.count(target.name, result, options.proceed_on_conflicts)


def _gone(doc: StoredDoc) -> OpResult:
    error = VersionConflictError(
        f"[{doc.id}]: version conflict, required seqNo [{doc.seq_no}], primary term [{doc.primary_term}]. "
        f"but no document was found"
    )
    return OpResult("delete", doc.id, error=error)


# ---- the three jobs ------------------------------------------------------------------------------------------


def delete_planner(index: Index, docs: list[StoredDoc]) -> tuple[Index, list[DocOp]]:
    """Delete each document, only if it is still the version the query saw."""
    ops = [DocOp("delete", d.id, if_seq_no=d.seq_no, if_primary_term=d.primary_term) for d in docs]
    return index, ops


def update_planner(index: Index, docs: list[StoredDoc]) -> tuple[Index, list[DocOp]]:
    """Re-index each document as it is (no script): it picks up the current mapping, and its version moves on."""
    ops = [
        DocOp("index", d.id, source=orjson.loads(d.source or b"{}"), if_seq_no=d.seq_no, if_primary_term=d.primary_term)
        for d in docs
    ]
    return index, ops


@dataclass(frozen=True, slots=True)
class ScriptedUpdate:
    """Update by query with a script: each document goes through the script, which may change its source, or set
    ctx.op to noop (counted in `noops`) or delete. A script error stops the job; earlier batches stay written."""

    script: UpdateScript

    def __call__(self, index: Index, docs: list[StoredDoc]) -> tuple[Index, list[DocOp]]:
        ops = []
        for doc in docs:
            source = orjson.loads(doc.source or b"{}")
            outcome = run_by_query(self.script, source, index=index.name, doc_id=doc.id, version=doc.version)
            action = {"none": "noop", "delete": "delete"}.get(outcome.op, "index")
            body = outcome.source if action == "index" else None
            ops.append(DocOp(action, doc.id, source=body, if_seq_no=doc.seq_no, if_primary_term=doc.primary_term))
        return index, ops


@dataclass(frozen=True, slots=True)
class ReindexTarget:
    """Where reindex writes: the destination index, its op_type and version_type, and a `_source` filter."""

    dest: Index
    op_type: str = "index"  # index | create
    version_type: str = "internal"  # internal | external | external_gte
    source_filter: SourceFilter = field(default_factory=SourceFilter)
    script: UpdateScript | None = None  # may change ctx._source / ctx._id, or set ctx.op noop / delete

    def __call__(self, index: Index, docs: list[StoredDoc]) -> tuple[Index, list[DocOp]]:
        ops = []
        external = self.version_type in ("external", "external_gte")
        for doc in docs:
            source = self.source_filter.apply(orjson.loads(doc.source or b"{}")) or {}
            action, doc_id = self.op_type, doc.id
            if self.script is not None:
                outcome = run_by_query(
                    self.script, source, index=index.name, doc_id=doc.id, version=doc.version, id_may_change=True
                )
                action = {"none": "noop", "delete": "delete"}.get(outcome.op, self.op_type)
                source, doc_id = outcome.source, outcome.id or doc.id
            ops.append(
                DocOp(
                    action,
                    doc_id,
                    source=source if action in ("index", "create") else None,
                    version=doc.version if external and action != "noop" else None,
                    version_type=self.version_type if external else "internal",
                )
            )
        return self.dest, ops
