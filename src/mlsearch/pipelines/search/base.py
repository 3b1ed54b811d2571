"""Search pipelines: request processors rewrite the search body, a phase-results processor says how hybrid scores fuse,
response processors rewrite the rendered response. Factories validate configurations when a pipeline is stored."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from mlsearch.engine.fusion import Fusion
from mlsearch.errors import IllegalArgumentError, MLSearchError, ParseError

log = logging.getLogger(__name__)
Kind = Literal["request_processors", "response_processors", "phase_results_processors"]
KINDS: tuple[Kind, ...] = ("request_processors", "response_processors", "phase_results_processors")
COMMON_KEYS = frozenset(("tag", "description", "ignore_failure"))


class Similarity(Protocol):
    """How a rerank processor reaches a cross-encoder: one score per text, against the query text."""

    def __call__(self, model_id: str, query_text: str, texts: Sequence[str]) -> list[float]: ...


class Generate(Protocol):
    """How a RAG processor reaches an LLM (a remote model): connector parameters in, the first output's dataAsMap out."""

    def __call__(self, model_id: str, parameters: dict[str, Any]) -> dict[str, Any]: ...


class Conversations(Protocol):
    """The conversation memory a RAG processor reads history from and records its exchange in."""

    def recent_messages(self, memory_id: str, n: int) -> list[dict[str, Any]]: ...

    def add_message(self, memory_id: str, **fields: Any) -> str: ...


@dataclass(slots=True)
class SearchContext:
    """What response processors may look at: the (rewritten) request body, the model scorer, the LLM and memory."""

    request: dict[str, Any]
    similarity: Similarity | None = None
    generate: Generate | None = None
    memory: Conversations | None = None
    setting: Callable[[str], Any] | None = None
    state: dict[str, Any] = field(default_factory=dict)  # request processors leave notes (oversample) here


class Processor:
    """Base of every search processor; `ignore_failure` swallows its errors (a failing step is skipped)."""

    kind: Kind
    type_name: str = ""

    def __init__(self, config: dict[str, Any]) -> None:
        self.tag = config.get("tag")
        self.description = config.get("description")
        self.ignore_failure = bool(config.get("ignore_failure", False))

    def process_request(self, body: dict[str, Any], ctx: SearchContext) -> dict[str, Any]:
        return body

    def process_response(self, response: dict[str, Any], ctx: SearchContext) -> dict[str, Any]:
        return response

    def fusion(self) -> Fusion | None:
        return None


Factory = Callable[[dict[str, Any]], Processor]


@dataclass(frozen=True, slots=True)
class SearchPipeline:
    id: str
    request: tuple[Processor, ...] = ()
    phase: tuple[Processor, ...] = ()
    response: tuple[Processor, ...] = ()

    def fusion(self) -> Fusion | None:
        for processor in self.phase:
            found = processor.fusion()
            if found is not None:
                return found
        return None

    def transform_request(self, body: dict[str, Any], ctx: SearchContext) -> dict[str, Any]:
        for processor in self.request:
            body = _guarded(processor, processor.process_request, body, ctx)
        ctx.request = body
        return body

    def transform_response(self, response: dict[str, Any], ctx: SearchContext) -> dict[str, Any]:
        for processor in self.response:
            response = _guarded(processor, processor.process_response, response, ctx)
        return response


def _guarded(
    processor: Processor,
    step: Callable[[dict[str, Any], SearchContext], dict[str, Any]],
    value: dict[str, Any],
    ctx: SearchContext,
) -> dict[str, Any]:
    try:
        return step(value, ctx)
    except MLSearchError:
        if not processor.ignore_failure:
            raise
        log.info("search processor [%s] failed, ignored", processor.type_name, exc_info=True)
        return value


# ---- configuration helpers --------------------------------------------------------------------------------


def check_keys(type_name: str, config: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(k for k in config if k not in allowed and k not in COMMON_KEYS)
    if unknown:
        raise IllegalArgumentError(
            f"processor [{type_name}] doesn't support one or more provided configuration parameters {unknown}"
        )


def required(type_name: str, config: dict[str, Any], key: str) -> Any:
    value = config.get(key)
    if value is None:
        raise ParseError(f"[{key}] required property is missing", processor_type=type_name, property_name=key)
    return value


def string(type_name: str, config: dict[str, Any], key: str, default: str | None = None) -> str | None:
    value = config.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ParseError(
            f"[{key}] property isn't a string, but of type [{type(value).__name__}]",
            processor_type=type_name,
            property_name=key,
        )
    return value
