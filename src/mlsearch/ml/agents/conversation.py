"""An agent run's conversation: the memory it writes to (a new one, or the caller's `memory_id`), its parent
message (question, then answer), its traces, and the chat history the LLM sees. Without a memory service the run
keeps nothing (flow agents need none)."""

from __future__ import annotations

from typing import Any, Protocol

HISTORY_PREFIX = "Below is Chat History between Human and AI which sorted by time with asc order:\n"
# The conversational (ReAct) agent's default `prompt.chat_history_prefix` (ML Commons' PromptTemplate).
REACT_HISTORY_PREFIX = "Human:CONVERSATION HISTORY WITH AI ASSISTANT\n----------------------------\n" + HISTORY_PREFIX


class Memory(Protocol):
    """The part of `ml.memory.ConversationMemory` agents use."""

    def create_memory(self, name: str | None = None, *, application_type: str | None = None) -> str: ...

    def get_memory(self, memory_id: str) -> dict[str, Any]: ...

    def add_message(self, memory_id: str, **fields: Any) -> str: ...

    def update_message(self, message_id: str, **fields: Any) -> None: ...

    def recent_messages(self, memory_id: str, n: int) -> list[dict[str, Any]]: ...


class Conversation:
    """One execution's place in a memory: opened with the question, closed with the answer (or the error)."""

    def __init__(self, memory: Memory, memory_id: str, history: list[dict[str, Any]]) -> None:
        self.memory = memory
        self.memory_id = memory_id
        self.history = history  # earlier (question, answer) messages, oldest first
        self.message_id = ""
        self._traces = 0

    @classmethod
    def open(
        cls, memory: Memory, memory_id: str | None, question: str, app_type: str | None, limit: int
    ) -> Conversation:
        if memory_id:
            memory.get_memory(memory_id)  # 404 when unknown, before anything is written
            history = memory.recent_messages(memory_id, limit) if limit > 0 else []
        else:
            memory_id = memory.create_memory(question[:256] or "agent", application_type=app_type)
            history = []
        conversation = cls(memory, memory_id, history)
        conversation.message_id = memory.add_message(
            memory_id, input=question, prompt_template="", response="", origin=None, additional_info={}
        )
        return conversation

    def trace(self, origin: str, input_text: str, response: str) -> None:
        self._traces += 1
        self.memory.add_message(
            self.memory_id,
            input=input_text,
            prompt_template=None,
            response=response,
            origin=origin,
            additional_info={},
            parent_message_id=self.message_id,
            trace_number=self._traces,
        )

    def answer(self, response: str, additional_info: dict[str, Any] | None = None) -> None:
        self.memory.update_message(self.message_id, response=response, additional_info=additional_info or {})

    def failed(self, reason: str) -> None:
        """The turn stays in memory, marked with what went wrong, so a retry sees what happened."""
        self.memory.update_message(self.message_id, additional_info={"error": reason})

    def pairs(self) -> list[tuple[str, str]]:
        return [(m.get("input") or "", m.get("response") or "") for m in self.history if m.get("response")]

    def history_text(self, prefix: str = HISTORY_PREFIX) -> str:
        """The earlier turns as ML Commons' ConversationIndexMessage.toString() writes each, one a line."""
        pairs = self.pairs()
        if not pairs:
            return ""
        return prefix + "".join(f"Human:{q}\nAssistant:{a}\n" for q, a in pairs)

    def output(self) -> list[dict[str, Any]]:
        return [
            {"name": "memory_id", "result": self.memory_id},
            {"name": "parent_interaction_id", "result": self.message_id},
        ]
