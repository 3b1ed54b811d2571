"""Conversational memory: the ConversationMemory service (in process) and the `/_plugins/_ml/memory` REST API."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from mlsearch.engine.indices import Indices
from mlsearch.errors import IllegalArgumentError, ResourceNotFoundError
from mlsearch.ml.memory import ConversationMemory
from mlsearch.ml.system_indices import MEMORY_MESSAGE_INDEX, MEMORY_META_INDEX, SystemIndices
from tests.conftest import RawHttp, assert_error

MEM = "/_plugins/_ml/memory"
# Java's Instant.toString(): the fraction in groups of three digits, none when zero.
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6})?Z$")


# ---- the service -------------------------------------------------------------------------------------------


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[ConversationMemory]:
    indices = Indices(tmp_path)
    yield ConversationMemory(SystemIndices(indices))
    indices.close()


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_messages_are_listed_oldest_first_and_recent_gives_the_tail(memory: ConversationMemory) -> None:
    memory_id = memory.create_memory("chat")
    ids = [memory.add_message(memory_id, input=f"q{i}", response=f"a{i}") for i in range(5)]
    assert [m["message_id"] for m in memory.messages(memory_id)] == ids
    assert [m["input"] for m in memory.messages(memory_id, max_results=2, next_token=1)] == ["q1", "q2"]
    assert [m["input"] for m in memory.recent_messages(memory_id, 2)] == ["q3", "q4"]
    assert memory.recent_messages(memory_id, 0) == []


def test_adding_a_message_bumps_the_memory_updated_time(memory: ConversationMemory) -> None:
    memory_id = memory.create_memory("chat", application_type="rag")
    before = memory.get_memory(memory_id)
    assert _ISO.match(before["create_time"]) and before["create_time"] == before["updated_time"]
    memory.add_message(memory_id, input="hello")
    after = memory.get_memory(memory_id)
    assert _instant(after["updated_time"]) > _instant(before["updated_time"])
    assert after["create_time"] == before["create_time"]
    assert "application_type" not in after  # ML Commons' GET memory leaves it out


def test_traces_are_excluded_from_messages_and_sorted_by_number(memory: ConversationMemory) -> None:
    memory_id = memory.create_memory()
    parent = memory.add_message(memory_id, input="question")
    memory.add_message(memory_id, input="step 2", parent_message_id=parent, trace_number=2)
    memory.add_message(memory_id, input="step 1", parent_message_id=parent, trace_number=1)
    assert [m["message_id"] for m in memory.messages(memory_id)] == [parent]
    traces = memory.traces(parent)
    assert [(t["trace_number"], t["input"]) for t in traces] == [(1, "step 1"), (2, "step 2")]
    assert all(t["parent_message_id"] == parent for t in traces)


def test_update_message_merges_additional_info_and_sets_response(memory: ConversationMemory) -> None:
    memory_id = memory.create_memory()
    message_id = memory.add_message(memory_id, input="q", additional_info={"a": "1"})
    memory.update_message(message_id, response="answer", additional_info={"b": "2"})
    message = memory.get_message(message_id)
    assert message["response"] == "answer"
    assert message["additional_info"] == {"a": "1", "b": "2"}


def test_unknown_ids_and_empty_messages_are_rejected(memory: ConversationMemory) -> None:
    with pytest.raises(ResourceNotFoundError, match=r"Memory \[nope\] not found"):
        memory.get_memory("nope")
    with pytest.raises(ResourceNotFoundError, match=r"Memory \[nope\] not found"):
        memory.add_message("nope", input="q")
    with pytest.raises(ResourceNotFoundError, match=r"Message \[nope\] not found"):
        memory.get_message("nope")
    memory_id = memory.create_memory()
    with pytest.raises(IllegalArgumentError, match="At least one of the following parameters must be non-empty"):
        memory.add_message(memory_id, input="  ")


def test_delete_memory_removes_its_messages(memory: ConversationMemory) -> None:
    memory_id = memory.create_memory()
    other = memory.create_memory()
    message_id = memory.add_message(memory_id, input="q")
    kept = memory.add_message(other, input="q")
    memory.delete_memory(memory_id)
    with pytest.raises(ResourceNotFoundError):
        memory.get_memory(memory_id)
    with pytest.raises(ResourceNotFoundError):
        memory.get_message(message_id)
    assert memory.get_message(kept)["memory_id"] == other


def _checkpoints(memory: ConversationMemory) -> tuple[int, int]:
    records = memory._records
    return tuple(records.index(name).lexical.checkpoint for name in (MEMORY_META_INDEX, MEMORY_MESSAGE_INDEX))


def test_listings_see_unrefreshed_writes_without_refreshing(memory: ConversationMemory) -> None:
    first = memory.create_memory("first")
    memory.add_message(first, input="q0", response="a0")
    memory.search(MEMORY_MESSAGE_INDEX, {})  # the REST `_search` refreshes: q0 is searchable, what follows is not
    before = _checkpoints(memory)
    second = memory.create_memory("second")
    ids = [memory.add_message(first, input=f"q{i}", response=f"a{i}") for i in range(1, 4)]
    trace = memory.add_message(first, input="step", parent_message_id=ids[-1], trace_number=1)
    assert [m["input"] for m in memory.messages(first)] == ["q0", "q1", "q2", "q3"]
    assert [m["message_id"] for m in memory.recent_messages(first, 2)] == ids[1:]
    assert [t["message_id"] for t in memory.traces(ids[-1])] == [trace]
    assert memory.message_count(first) == 4 and memory.messages(second) == []
    page, _ = memory.memories(max_results=10)
    assert [m["memory_id"] for m in page] == [first, second]  # first was updated last
    assert _checkpoints(memory) == before  # no read paid a refresh


def test_unrefreshed_deletes_and_later_refreshes_keep_listings_exact(memory: ConversationMemory) -> None:
    gone = memory.create_memory("gone")
    memory.add_message(gone, input="q")
    kept = memory.create_memory("kept")
    memory.delete_memory(gone)
    assert [m["memory_id"] for m in memory.memories()[0]] == [kept]
    memory.add_message(kept, input="before refresh")
    memory._records.index(MEMORY_MESSAGE_INDEX).refresh()
    memory.add_message(kept, input="after refresh")
    assert [m["input"] for m in memory.messages(kept)] == ["before refresh", "after refresh"]  # no duplicates


def test_concurrent_turns_each_see_their_own_and_all_earlier_messages(memory: ConversationMemory) -> None:
    memory_id = memory.create_memory("busy")
    index = memory._records.index(MEMORY_MESSAGE_INDEX)
    stop = threading.Event()
    refresher = threading.Thread(target=lambda: [index.refresh() for _ in iter(stop.is_set, True)])
    refresher.start()
    failures: list[str] = []

    def turn(n: int) -> None:
        for i in range(10):
            mine = memory.add_message(memory_id, input=f"t{n}-{i}", response="ok")
            seen = [m["message_id"] for m in memory.recent_messages(memory_id, 1000)]
            if mine not in seen or len(seen) != len(set(seen)):
                failures.append(f"turn {n}.{i}: own message missing or duplicated")

    try:
        threads = [threading.Thread(target=turn, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        stop.set()
        refresher.join()
    assert failures == []
    # Instant-style stamps drop trailing zero digits ("...473Z" is before "...473179Z"): compare as times.
    stamps = [datetime.fromisoformat(m["create_time"]) for m in memory.messages(memory_id, max_results=100)]
    assert len(stamps) == 40 and stamps == sorted(stamps)


def test_a_reopened_node_lists_everything_written_before(tmp_path: Path) -> None:
    indices = Indices(tmp_path)
    memory = ConversationMemory(SystemIndices(indices))
    memory_id = memory.create_memory("durable")
    ids = [memory.add_message(memory_id, input=f"q{i}") for i in range(3)]
    indices.close()
    reopened = Indices(tmp_path)
    try:
        again = ConversationMemory(SystemIndices(reopened))
        reopened.open_all()
        assert [m["message_id"] for m in again.messages(memory_id)] == ids
        assert [m["memory_id"] for m in again.memories()[0]] == [memory_id]
    finally:
        reopened.close()


# ---- the REST API ------------------------------------------------------------------------------------------


def _new_memory(http: RawHttp, name: str = "Conversation for a RAG pipeline") -> str:
    status, body = http.request("POST", MEM, {"name": name})
    assert status == 200, body
    assert isinstance(body, dict) and set(body) == {"memory_id"}
    return body["memory_id"]


def test_create_get_update_and_delete_a_memory(http: RawHttp) -> None:
    memory_id = _new_memory(http)
    status, got = http.request("GET", f"{MEM}/{memory_id}")
    assert status == 200
    assert got["memory_id"] == memory_id and got["name"] == "Conversation for a RAG pipeline"
    assert _ISO.match(got["create_time"]) and _ISO.match(got["updated_time"])
    assert "user" not in got  # only with the security plugin

    status, updated = http.request("PUT", f"{MEM}/{memory_id}", {"name": "renamed", "ignored": 1})
    assert status == 200, updated
    assert updated["_index"] == ".plugins-ml-memory-meta" and updated["_id"] == memory_id
    assert updated["result"] == "updated"
    status, got = http.request("GET", f"{MEM}/{memory_id}")
    assert got["name"] == "renamed" and got["updated_time"] > got["create_time"]

    status, deleted = http.request("DELETE", f"{MEM}/{memory_id}")
    assert (status, deleted) == (200, {"success": True})
    status, missing = http.request("GET", f"{MEM}/{memory_id}")
    assert_error(missing, 404, "resource_not_found_exception", f"Memory [{memory_id}] not found")
    status, missing = http.request("DELETE", f"{MEM}/{memory_id}")
    assert_error(missing, 404, "resource_not_found_exception", f"Memory [{memory_id}] not found")


def test_create_without_a_body_and_with_a_trailing_slash(http: RawHttp) -> None:
    status, body = http.request("POST", MEM + "/")
    assert status == 200 and isinstance(body, dict) and body["memory_id"]
    _, got = http.request("GET", f"{MEM}/{body['memory_id']}")
    assert got["name"] == ""


def test_messages_round_trip_pagination_and_traces(http: RawHttp) -> None:
    memory_id = _new_memory(http)
    ids = []
    for i in range(3):
        status, body = http.request(
            "POST",
            f"{MEM}/{memory_id}/messages",
            {
                "input": f"question {i}",
                "prompt_template": "Hello OpenAI",
                "response": f"answer {i}",
                "origin": "MyFirstOpenAIWrapper",
                "additional_info": {"suggestion": "api.openai.com"},
            },
        )
        assert status == 200, body
        ids.append(body["message_id"])

    status, message = http.request("GET", f"{MEM}/message/{ids[0]}")
    assert status == 200
    assert message["memory_id"] == memory_id and message["message_id"] == ids[0]
    assert message["input"] == "question 0" and message["origin"] == "MyFirstOpenAIWrapper"
    assert message["additional_info"] == {"suggestion": "api.openai.com"}

    status, page = http.request("GET", f"{MEM}/{memory_id}/messages?max_results=2")
    assert [m["message_id"] for m in page["messages"]] == ids[:2] and page["next_token"] == 2
    status, page = http.request("GET", f"{MEM}/{memory_id}/messages?max_results=2&next_token=2")
    assert [m["message_id"] for m in page["messages"]] == ids[2:] and "next_token" not in page

    status, body = http.request(
        "POST", f"{MEM}/{memory_id}/messages", {"input": "tool call", "parent_message_id": ids[0], "trace_number": 1}
    )
    assert status == 200
    status, traces = http.request("GET", f"{MEM}/message/{ids[0]}/traces")
    assert [t["message_id"] for t in traces["traces"]] == [body["message_id"]]
    assert traces["traces"][0]["trace_number"] == 1
    status, page = http.request("GET", f"{MEM}/{memory_id}/messages")
    assert len(page["messages"]) == 3  # traces are not messages


def test_update_message_merges_additional_info(http: RawHttp) -> None:
    memory_id = _new_memory(http)
    _, body = http.request("POST", f"{MEM}/{memory_id}/messages", {"input": "q", "additional_info": {"a": "1"}})
    message_id = body["message_id"]
    status, result = http.request("PUT", f"{MEM}/message/{message_id}", {"additional_info": {"feedback": "thumbs up"}})
    assert status == 200, result
    assert result["_index"] == ".plugins-ml-memory-message" and result["forced_refresh"] is True
    _, message = http.request("GET", f"{MEM}/message/{message_id}")
    assert message["additional_info"] == {"a": "1", "feedback": "thumbs up"}


def test_message_errors(http: RawHttp) -> None:
    memory_id = _new_memory(http)
    _, body = http.request("POST", f"{MEM}/{memory_id}/messages", {"input": ""})
    assert_error(body, 400, "illegal_argument_exception", "At least one of the following parameters must be non-empty")
    _, body = http.request("POST", f"{MEM}/nope/messages", {"input": "q"})
    assert_error(body, 404, "resource_not_found_exception", "Memory [nope] not found")
    _, body = http.request("GET", f"{MEM}/message/nope")
    assert_error(body, 404, "resource_not_found_exception", "Message [nope] not found")
    _, body = http.request("GET", f"{MEM}/{memory_id}/messages?max_results=0")
    assert_error(body, 400, "action_request_validation_exception", "must be positive")


def test_list_memories_most_recently_updated_first(http: RawHttp) -> None:
    first, second = _new_memory(http, "first"), _new_memory(http, "second")
    http.request("POST", f"{MEM}/{first}/messages", {"input": "bump"})
    status, page = http.request("GET", f"{MEM}?max_results=2")
    assert status == 200
    assert [m["memory_id"] for m in page["memories"]] == [first, second]
    assert page["next_token"] == 2 or len(page["memories"]) < 2


def test_search_memories_and_messages(http: RawHttp) -> None:
    memory_id = _new_memory(http, "searchable unicorn memory")
    other = _new_memory(http, "other")
    http.request("POST", f"{MEM}/{memory_id}/messages", {"input": "rainbow question", "response": "r"})
    http.request("POST", f"{MEM}/{other}/messages", {"input": "rainbow question", "response": "r"})
    status, found = http.request("POST", f"{MEM}/_search", {"query": {"match": {"name": "unicorn"}}})
    assert status == 200, found
    hits = found["hits"]["hits"]
    assert [h["_id"] for h in hits] == [memory_id]
    assert "memory_id" not in hits[0]["_source"] and hits[0]["_source"]["name"] == "searchable unicorn memory"
    status, found = http.request("GET", f"{MEM}/{memory_id}/_search", {"query": {"match": {"input": "rainbow"}}})
    assert status == 200, found
    assert [h["_source"]["memory_id"] for h in found["hits"]["hits"]] == [memory_id]


def test_memory_feature_setting_gates_the_api(http: RawHttp) -> None:
    key = "plugins.ml_commons.memory_feature_enabled"
    status, _ = http.request("PUT", "/_cluster/settings", {"persistent": {key: False}})
    assert status == 200
    try:
        status, body = http.request("POST", MEM, {"name": "x"})
        assert_error(body, 500, "exception", "The Conversation Memory feature is not enabled")
    finally:
        http.request("PUT", "/_cluster/settings", {"persistent": {key: None}})
    status, body = http.request("POST", MEM, {"name": "x"})
    assert status == 200, body
