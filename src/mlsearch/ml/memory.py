"""Conversational memory (ML Commons' "conversations"): memories in `.plugins-ml-memory-meta`, their messages and
traces in `.plugins-ml-memory-message`. Used by the memory REST API, the RAG search processor and agents."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from mlsearch.engine.index import DocOp, OpResult
from mlsearch.errors import ActionRequestValidationError, IllegalArgumentError, MLSearchError, ResourceNotFoundError
from mlsearch.ml.ids import new_id
from mlsearch.ml.system_indices import MEMORY_MESSAGE_INDEX, MEMORY_META_INDEX, SystemIndices

FEATURE_SETTING = "plugins.ml_commons.memory_feature_enabled"
FEATURE_DISABLED = (
    "The Conversation Memory feature is not enabled. To enable, please update the setting " + FEATURE_SETTING
)
MESSAGE_FIELDS = ("input", "prompt_template", "response", "origin", "additional_info")
_ALL = 10000  # the most messages or memories one listing reads


class MemoryFeatureDisabledError(MLSearchError):
    """ML Commons raises a bare OpenSearchException here: type `exception`, status 500."""

    status = 500
    error_type = "exception"

    def __init__(self) -> None:
        super().__init__(FEATURE_DISABLED)


def check_enabled(setting: Callable[[str], Any]) -> None:
    if not setting(FEATURE_SETTING):
        raise MemoryFeatureDisabledError()


class _Clock:
    """ISO-8601 instants (microseconds, `Z`) that strictly increase, so that sorting by time keeps insertion order
    even for messages written within the same microsecond."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = datetime.min.replace(tzinfo=UTC)

    def now(self) -> str:
        with self._lock:
            stamp = max(datetime.now(UTC), self._last + timedelta(microseconds=1))
            self._last = stamp
        return instant_text(stamp)


def instant_text(stamp: datetime) -> str:
    """As Java's `Instant.toString()`: the fraction in groups of three digits, trailing zero groups dropped."""
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    micros = stamp.microsecond
    if micros % 1000:
        return f"{text}.{micros:06d}Z"
    return f"{text}.{micros // 1000:03d}Z" if micros else f"{text}Z"


def _instant(text: Any) -> datetime:
    """A stored instant, for ordering (its text's length varies with the fraction, so strings do not sort)."""
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


class _Unrefreshed:
    """Records written since their index's last refresh, by group (a memory id, or one group for all memories).

    A search does not see them yet; the store, read by id, does. Entries leave once the index's searcher covers their
    `_seq_no`, so the set holds about one refresh interval of writes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[str, dict[str, int]] = {}  # group -> {doc id: seq_no}

    def add(self, group: str, doc_id: str, seq_no: int) -> None:
        with self._lock:
            self._groups.setdefault(group, {})[doc_id] = seq_no

    def since(self, group: str, visible_seq_no: int) -> list[str]:
        """The ids of `group` a searcher that covers `visible_seq_no` misses; forgets those it covers."""
        with self._lock:
            for name in list(self._groups):
                kept = {i: s for i, s in self._groups[name].items() if s > visible_seq_no}
                if kept:
                    self._groups[name] = kept
                else:
                    del self._groups[name]
            return list(self._groups.get(group, ()))

    def drop(self, group: str) -> None:
        with self._lock:
            self._groups.pop(group, None)


_ALL_MEMORIES = ""


class ConversationMemory:
    """Memories and messages in the system indices .plugins-ml-memory-meta / .plugins-ml-memory-message.

    Writes do not refresh the indices (a tantivy commit costs ~100 ms here, and a RAG turn or an agent step should
    not pay one). They are durable in the store when they return; listings merge what the last refresh missed,
    read by id from the store, so every acknowledged write is seen without a refresh per read. After a restart the
    projection catches up from the store before it serves, so nothing is pending then."""

    def __init__(self, records: SystemIndices) -> None:
        self._records = records
        self._clock = _Clock()
        self._new_memories = _Unrefreshed()
        self._new_messages = _Unrefreshed()  # grouped by memory id

    # ---- memories ---------------------------------------------------------------------------------------

    def create_memory(
        self, name: str | None = None, *, application_type: str | None = None, additional_info: dict | None = None
    ) -> str:
        memory_id = new_id()
        stamp = self._clock.now()
        doc: dict[str, Any] = {"name": name or "", "create_time": stamp, "updated_time": stamp}
        if application_type is not None:
            doc["application_type"] = application_type
        if additional_info is not None:
            doc["additional_info"] = additional_info
        result = self._write(MEMORY_META_INDEX, DocOp("create", memory_id, doc))
        self._new_memories.add(_ALL_MEMORIES, memory_id, result.seq_no)
        return memory_id

    def get_memory(self, memory_id: str) -> dict[str, Any]:
        doc = self._records.get(MEMORY_META_INDEX, memory_id)
        if doc is None:
            raise ResourceNotFoundError(f"Memory [{memory_id}] not found")
        return _memory_view(memory_id, doc)

    def update_memory(self, memory_id: str, changes: dict[str, Any]) -> OpResult:
        self.get_memory(memory_id)
        partial = {**changes, "updated_time": self._clock.now()}
        return self._write(MEMORY_META_INDEX, DocOp("update", memory_id, {"doc": partial}))

    def memories(self, max_results: int = 10, next_token: int = 0) -> tuple[list[dict[str, Any]], int | None]:
        """A page of memories, most recently updated first, and the next page's token (None on the last page)."""
        if max_results <= 0:
            raise ActionRequestValidationError("Validation Failed: 1: Can't list 0 or negative conversations;")
        found = list(self._find(MEMORY_META_INDEX, {"match_all": {}}, self._new_memories, _ALL_MEMORIES).items())
        found.sort(key=lambda item: (_instant(item[1].get("updated_time")), item[0]), reverse=True)
        page = [_memory_view(memory_id, doc) for memory_id, doc in found[next_token : next_token + max_results]]
        # As ML Commons: a full page carries the next token (even when nothing follows it).
        return page, (next_token + max_results if len(page) == max_results else None)

    def delete_memory(self, memory_id: str) -> None:
        """The memory and all its messages (and their traces)."""
        self.get_memory(memory_id)
        message_ids = [mid for mid, _ in self._all_messages(memory_id, traces=True)]
        if message_ids:
            ops = [DocOp("delete", mid) for mid in message_ids]
            self._records.index(MEMORY_MESSAGE_INDEX).write(ops)
        self._new_messages.drop(memory_id)
        self._write(MEMORY_META_INDEX, DocOp("delete", memory_id))

    # ---- messages ---------------------------------------------------------------------------------------

    def add_message(
        self,
        memory_id: str,
        *,
        input: str | None = None,
        prompt_template: str | None = None,
        response: str | None = None,
        origin: str | None = None,
        additional_info: dict | None = None,
        parent_message_id: str | None = None,
        trace_number: int | None = None,
    ) -> str:
        fields = {
            "input": input,
            "prompt_template": prompt_template,
            "response": response,
            "origin": origin,
            "additional_info": additional_info,
        }
        if all(_empty(v) for v in fields.values()):
            raise IllegalArgumentError(
                "At least one of the following parameters must be non-empty: "
                "input, prompt_template, response, origin, additional_info"
            )
        self.get_memory(memory_id)
        stamp = self._clock.now()
        doc: dict[str, Any] = {"memory_id": memory_id, "create_time": stamp, "updated_time": stamp}
        doc.update({k: v for k, v in fields.items() if v is not None})
        if parent_message_id is not None:
            doc["parent_message_id"] = parent_message_id
        if trace_number is not None:
            doc["trace_number"] = trace_number
        message_id = new_id()
        result = self._write(MEMORY_MESSAGE_INDEX, DocOp("create", message_id, doc))
        self._new_messages.add(memory_id, message_id, result.seq_no)
        self._write(MEMORY_META_INDEX, DocOp("update", memory_id, {"doc": {"updated_time": stamp}}))
        return message_id

    def update_message(
        self, message_id: str, *, response: str | None = None, additional_info: dict | None = None
    ) -> OpResult:
        """`additional_info` keys are merged into the stored map; `response` replaces the stored one."""
        doc = self._message_doc(message_id)
        changes: dict[str, Any] = {"updated_time": self._clock.now()}
        if response is not None:
            changes["response"] = response
        if additional_info is not None:
            changes["additional_info"] = {**(doc.get("additional_info") or {}), **additional_info}
        return self._write(MEMORY_MESSAGE_INDEX, DocOp("update", message_id, {"doc": changes}))

    def get_message(self, message_id: str) -> dict[str, Any]:
        return _message_view(message_id, self._message_doc(message_id))

    def messages(self, memory_id: str, max_results: int = 10, next_token: int = 0) -> list[dict[str, Any]]:
        """A page of a memory's messages, oldest first (traces excluded)."""
        check_page(max_results, next_token, "interactions")
        found = self._all_messages(memory_id)
        return [_message_view(mid, doc) for mid, doc in found[next_token : next_token + max_results]]

    def message_count(self, memory_id: str) -> int:
        return len(self._all_messages(memory_id))

    def recent_messages(self, memory_id: str, n: int) -> list[dict[str, Any]]:
        """The last n (non-trace) messages, oldest first."""
        if n <= 0:
            return []
        return [_message_view(mid, doc) for mid, doc in self._all_messages(memory_id)[-n:]]

    def traces(self, message_id: str) -> list[dict[str, Any]]:
        """The traces of a message, by trace_number ascending."""
        parent = self._message_doc(message_id)
        query = {"term": {"parent_message_id": message_id}}
        found = [
            (mid, doc)
            for mid, doc in self._find(
                MEMORY_MESSAGE_INDEX, query, self._new_messages, str(parent.get("memory_id"))
            ).items()
            if doc.get("parent_message_id") == message_id
        ]
        found.sort(key=lambda item: (int(item[1].get("trace_number") or 0), _instant(item[1].get("create_time"))))
        return [_message_view(mid, doc) for mid, doc in found]

    def search(self, name: str, body: Any) -> dict[str, Any]:
        """A `_search` over one of the memory indices, seeing every write made so far."""
        self._records.index(name).refresh()
        return self._records.search(name, body)

    def _write(self, name: str, op: DocOp) -> OpResult:
        [result] = self._records.index(name).write([op])
        if result.error is not None:
            raise result.error
        return result

    def _find(self, name: str, query: dict[str, Any], pending: _Unrefreshed, group: str) -> dict[str, dict[str, Any]]:
        """Records matching `query` (id -> source), plus the group's records written since the last refresh; the
        caller filters those by the query's own condition."""
        if not self._records.exists(name):
            return {}
        index = self._records.index(name)
        with index.lock:  # the searcher and the `_seq_no` it covers, read together (refreshes take this lock)
            visible = index.lexical.checkpoint
            found = dict(self._records.find_all(name, query, size=_ALL))
        for doc_id in pending.since(group, visible):
            if doc_id not in found:
                doc = self._records.get(name, doc_id)
                if doc is not None:  # deleted since
                    found[doc_id] = doc
        return found

    def _message_doc(self, message_id: str) -> dict[str, Any]:
        doc = self._records.get(MEMORY_MESSAGE_INDEX, message_id)
        if doc is None:
            raise ResourceNotFoundError(f"Message [{message_id}] not found")
        return doc

    def _all_messages(self, memory_id: str, *, traces: bool = False) -> list[tuple[str, dict[str, Any]]]:
        query: dict[str, Any] = {"bool": {"filter": [{"term": {"memory_id": memory_id}}]}}
        if not traces:
            query["bool"]["must_not"] = [{"exists": {"field": "trace_number"}}]
        found = [
            (mid, doc)
            for mid, doc in self._find(MEMORY_MESSAGE_INDEX, query, self._new_messages, memory_id).items()
            if doc.get("memory_id") == memory_id and (traces or doc.get("trace_number") is None)
        ]
        found.sort(key=lambda item: _instant(item[1].get("create_time")))
        return found


def check_page(max_results: int, next_token: int, what: str) -> None:
    if max_results <= 0:
        raise ActionRequestValidationError(f"Validation Failed: 1: The number of {what} to retrieve must be positive;")
    if next_token < 0:
        raise ActionRequestValidationError("Validation Failed: 1: The starting position must be nonnegative;")


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == {}


def _memory_view(memory_id: str, doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "memory_id": memory_id,
        "create_time": doc.get("create_time"),
        "updated_time": doc.get("updated_time"),
        "name": doc.get("name"),
    }
    # ML Commons' ConversationMeta renders no application_type (it stays in _source, for _search).
    for key in ("user", "additional_info"):
        if doc.get(key) is not None:
            out[key] = doc[key]
    return out


def _message_view(message_id: str, doc: dict[str, Any]) -> dict[str, Any]:
    """As ML Commons' Interaction renders: blank text fields are left out."""
    out: dict[str, Any] = {
        "memory_id": doc.get("memory_id"),
        "message_id": message_id,
        "create_time": doc.get("create_time"),
    }
    if doc.get("updated_time") is not None:
        out["updated_time"] = doc["updated_time"]
    for key in ("input", "prompt_template", "response", "origin"):
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            out[key] = value
    for key in ("additional_info", "parent_message_id", "trace_number"):
        if doc.get(key) is not None:
            out[key] = doc[key]
    return out
