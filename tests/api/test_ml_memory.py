"""Conversational memory: the ConversationMemory service (in process) and the `/_plugins/_ml/memory` REST API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlsearch.engine.indices import Indices
from mlsearch.errors import IllegalArgumentError, ResourceNotFoundError
from mlsearch.ml.memory import ConversationMemory
from mlsearch.ml.system_indices import SystemIndices

MEM = "/_plugins/_ml/memory"
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


# ---- the service -------------------------------------------------------------------------------------------


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[ConversationMemory]:
    indices = Indices(tmp_path)
    yield ConversationMemory(SystemIndices(indices))
    indices.close()


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
    assert after["updated_time"] > before["updated_time"]
    assert after["create_time"] == before["create_time"]
    assert after["application_type"] == "rag"


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
