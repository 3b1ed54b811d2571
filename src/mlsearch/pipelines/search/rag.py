"""The `retrieval_augmented_generation` response processor (ML Commons' generative QA): the top hits become the
context of a prompt, with the conversation's recent messages; an LLM (a remote model) answers; the answer goes into
`ext.retrieval_augmented_generation` and, with a `memory_id`, the exchange into the conversation memory."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from dataclasses import dataclass
from typing import Any

import orjson

from mlsearch.errors import IllegalArgumentError, MLSearchError, ParseError, StatusError
from mlsearch.pipelines.search._registry import processor
from mlsearch.pipelines.search.base import Processor, SearchContext, check_keys, string
from mlsearch.pipelines.search.response import hits_of

log = logging.getLogger(__name__)
TYPE = "retrieval_augmented_generation"
FEATURE_SETTING = "plugins.ml_commons.rag_pipeline_feature_enabled"
DEFAULT_SYSTEM_PROMPT = (
    "Generate a concise and informative answer in less than 100 words for the given question, taking into context: "
    "- An enumerated list of search results"
    "- A rephrase of the question that was used to generate the search results"
    "- The conversation history"
    "Cite search results using [${number}] notation."
    "Do not repeat yourself, and NEVER repeat anything in the chat history."
    "If there are any necessary steps or procedures in your answer, enumerate them."
)
NO_PARAMS = (
    "generative_qa_parameters not found. Please provide ext.generative_qa_parameters to proceed. For more info, "
    "refer: https://opensearch.org/docs/latest/search-plugins/conversational-search/#step-6-use-the-pipeline-for-rag"
)
_DEFAULT_HISTORY = 10
_DEFAULT_TIMEOUT = 30
_PARAM_KEYS = {
    "llm_question",
    "llm_model",
    "memory_id",
    "context_size",
    "message_size",
    "timeout",
    "system_prompt",
    "user_instructions",
    "llm_response_field",
    "llm_messages",
}
OPENAI, BEDROCK, COHERE, CONVERSE = "openai", "bedrock", "cohere", "bedrock-converse"


class MLFeatureDisabledError(MLSearchError):
    """ML Commons' MLException (rendered `m_l_exception`, 500)."""

    status = 500
    error_type = "m_l_exception"


@dataclass(frozen=True, slots=True)
class QAParameters:
    """`ext.generative_qa_parameters` of one search request."""

    question: str | None
    llm_model: str | None
    memory_id: str | None
    context_size: int | None
    message_size: int
    timeout: float
    system_prompt: str | None
    user_instructions: str | None
    response_field: str | None
    llm_messages: list[dict[str, Any]]


def parse_parameters(request: dict[str, Any]) -> QAParameters:
    raw = (request.get("ext") or {}).get("generative_qa_parameters")
    if raw is None:
        raise IllegalArgumentError(NO_PARAMS)
    if not isinstance(raw, dict):
        raise ParseError("[generative_qa_parameters] must be an object")
    unknown = sorted(k for k in raw if k not in _PARAM_KEYS)
    if unknown:
        raise ParseError(f"[generative_qa_parameters] unknown field [{unknown[0]}]")
    text = {k: string(TYPE, raw, k) for k in _PARAM_KEYS if k not in ("context_size", "message_size", "timeout")}
    sizes = {k: _positive_int(raw, k) for k in ("context_size", "message_size", "timeout")}
    messages = raw.get("llm_messages") or []
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise ParseError("[llm_messages] must be an array of message objects")
    if not text["llm_question"] and not messages:
        raise IllegalArgumentError("At least one of llm_question or llm_messages must be provided.")
    memory_id = raw.get("memory_id")
    if memory_id is not None and not str(memory_id).strip():
        raise IllegalArgumentError("Empty conversation_id is not allowed.")
    return QAParameters(
        question=text["llm_question"],
        llm_model=text["llm_model"],
        memory_id=memory_id,
        context_size=sizes["context_size"],
        message_size=sizes["message_size"] or _DEFAULT_HISTORY,
        timeout=float(sizes["timeout"] or _DEFAULT_TIMEOUT),
        system_prompt=text["system_prompt"],
        user_instructions=text["user_instructions"],
        response_field=text["llm_response_field"],
        llm_messages=messages,
    )


def _positive_int(raw: dict[str, Any], key: str) -> int | None:
    value = raw.get(key)
    if value is None or value == -1:  # ML Commons' "unset"
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise IllegalArgumentError(f"[{key}] must be a non-negative integer, got [{value}]")
    return value


def provider_of(llm_model: str | None, response_field: str | None) -> str | None:
    """The request style by `llm_model` prefix; None when `llm_response_field` forces the single-prompt style."""
    if response_field is not None:
        return None
    model = llm_model or ""
    for prefix, provider in (("bedrock-converse/", CONVERSE), ("bedrock/", BEDROCK), ("cohere/", COHERE)):
        if model.startswith(prefix):
            return provider
    return OPENAI


# ---- prompts ------------------------------------------------------------------------------------------------


class _Messages:
    """A chat message array in OpenAI's or Bedrock Converse's content-block shape."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.items: list[dict[str, Any]] = []

    def start(self, role: str, text: str | None = None) -> None:
        self.items.append({"role": role, "content": []})
        if text is not None:
            self.add(text)

    def add(self, text: str) -> None:
        block = {"type": "text", "text": text} if self.provider == OPENAI else {"text": text}
        self.items[-1]["content"].append(block)

    def add_block(self, block: dict[str, Any]) -> None:
        kind = block.get("type")
        if kind == "text" or (kind is None and "text" in block):
            self.add(str(block.get("text", "")))
        elif kind == "image" and self.provider == OPENAI:
            url = block.get("url") or f"data:image/{block.get('format')};base64,{block.get('data')}"
            self.items[-1]["content"].append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "image" and block.get("data"):
            source = {"bytes": block["data"]}
            self.items[-1]["content"].append({"image": {"format": block.get("format"), "source": source}})


def chat_messages(
    provider: str,
    p: QAParameters,
    system_prompt: str | None,
    instructions: str | None,
    contexts: list[str],
    history: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """ML Commons' message array: system, then one user turn with the instructions and the search results, the
    history as user / assistant turns (oldest first), then the question (or `llm_messages`) and `ANSWER:`."""
    if not system_prompt and not instructions:
        instructions = DEFAULT_SYSTEM_PROMPT
    out = _Messages(provider)
    if system_prompt and provider == OPENAI:  # Converse takes the system prompt as a separate parameter
        out.start("system", system_prompt)
    out.start("user")
    if instructions:
        out.add(instructions)
    for i, context in enumerate(contexts, 1):
        out.add(f"SEARCH RESULT {i}: {context}")
    for turn, message in enumerate(history):
        if turn:
            out.start("user")
        out.add(message.get("input") or "")
        out.start("assistant", message.get("response") or "")
    after_assistant = bool(history)
    if p.llm_messages:
        if after_assistant:
            out.start("user")
        for message in p.llm_messages:
            for block in message.get("content") or []:
                if isinstance(block, dict):
                    out.add_block(block)
    else:
        if after_assistant:
            out.start("user")
        out.add(f"QUESTION: {p.question}\n")
        out.add("ANSWER:")
    return out.items


def single_prompt(
    system_prompt: str | None,
    instructions: str | None,
    question: str | None,
    contexts: list[str],
    history: list[dict[str, Any]],
) -> str:
    """The one-string prompt of the `inputs` style (Bedrock, Cohere, `llm_response_field`)."""
    if not system_prompt and not instructions:
        system_prompt = DEFAULT_SYSTEM_PROMPT
    lines = [text for text in (system_prompt, instructions) if text]
    lines += [f"SEARCH RESULT {i}: {context}" for i, context in enumerate(contexts, 1)]
    for message in history:
        lines += [f"user: {message.get('input') or ''}", f"assistant: {message.get('response') or ''}"]
    lines.append(f"QUESTION: {question}")
    return "\n".join(lines) + "\n"


def prompt_template(system_prompt: str | None, instructions: str | None) -> str:
    """What the memory keeps as `prompt_template`: the system / user instructions as a JSON chat array."""
    items = [{"role": "system", "content": system_prompt}] if system_prompt else []
    if instructions:
        items.append({"role": "user", "content": instructions})
    return orjson.dumps(items).decode()


# ---- answers ------------------------------------------------------------------------------------------------


def read_answer(
    provider: str | None, data: dict[str, Any], response_field: str | None
) -> tuple[str | None, str | None]:
    """(answer, error) from the LLM's dataAsMap, as ML Commons reads each provider's shape."""
    try:
        if provider == OPENAI:
            choices = data.get("choices")
            if choices is None:
                return None, _error_message(data.get("error"))
            return str(choices[0]["message"]["content"]), None
        if provider == CONVERSE:
            output = data.get("output") or {}
            message = output.get("message")
            if message is None:
                return None, _error_message(output.get("error") or data.get("error"))
            return str(message["content"][0]["text"]), None
        field = response_field or ("completion" if provider == BEDROCK else "text")
        if data.get(field) is not None:
            return str(data[field]), None
        return None, _error_message(data.get("error"))
    except (KeyError, IndexError, TypeError) as exc:
        raise StatusError(f"Unexpected output from the LLM: {orjson.dumps(data).decode()[:500]}", status=500) from exc


def _error_message(error: Any) -> str:
    if isinstance(error, dict) and error.get("message") is not None:
        return str(error["message"])
    return "Unknown error or response."


# ---- the processor ------------------------------------------------------------------------------------------


class RetrievalAugmentedGeneration(Processor):
    kind = "response_processors"
    type_name = TYPE

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.model_id = str(config["model_id"])
        self.context_fields: list[str] = list(config["context_field_list"])
        self.system_prompt = string(TYPE, config, "system_prompt")
        self.user_instructions = string(TYPE, config, "user_instructions")
        self.llm_model = string(TYPE, config, "llm_model")
        # LLM calls run here so that `timeout` bounds the wait; a call that overruns finishes in the background.
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def process_response(self, response: dict[str, Any], ctx: SearchContext) -> dict[str, Any]:
        if ctx.setting is not None and not ctx.setting(FEATURE_SETTING):
            raise MLFeatureDisabledError(f"{FEATURE_SETTING} is not enabled.")
        if ctx.generate is None:
            raise IllegalArgumentError("retrieval_augmented_generation needs a model service")
        p = parse_parameters(ctx.request)
        llm_model = p.llm_model or self.llm_model
        if llm_model is None and p.response_field is None:
            raise IllegalArgumentError("llm_model cannot be null.")
        system_prompt = p.system_prompt if p.system_prompt is not None else self.system_prompt
        instructions = p.user_instructions if p.user_instructions is not None else self.user_instructions
        contexts = self.contexts(response, p.context_size)
        history = self._history(ctx, p)
        provider = provider_of(llm_model, p.response_field)
        parameters = self.parameters(provider, llm_model, p, system_prompt, instructions, contexts, history)
        answer, error = read_answer(provider, self._call(ctx, parameters, p.timeout), p.response_field)
        result: dict[str, Any] = {"error": error} if answer is None else {"answer": answer}
        if answer is not None and p.memory_id is not None and ctx.memory is not None:
            # An LLM error is not recorded: a message without a response would break the next turn's history.
            result["message_id"] = ctx.memory.add_message(
                p.memory_id,
                input=p.question,
                prompt_template=prompt_template(system_prompt, instructions),
                response=answer,
                origin=TYPE,
                additional_info={"metadata": orjson.dumps(contexts).decode()},
            )
        response.setdefault("ext", {})[TYPE] = result
        return response

    def contexts(self, response: dict[str, Any], context_size: int | None) -> list[str]:
        hits = hits_of(response)
        out = []
        for hit in hits if context_size is None else hits[:context_size]:
            source = hit.get("_source") or {}
            for name in self.context_fields:
                value = source.get(name)
                if value is None:
                    raise IllegalArgumentError(f"Context {name} not found in search hit {hit.get('_id')}")
                out.append(value if isinstance(value, str) else orjson.dumps(value).decode())
        return out

    def _history(self, ctx: SearchContext, p: QAParameters) -> list[dict[str, Any]]:
        if p.memory_id is None or ctx.memory is None:
            return []
        return ctx.memory.recent_messages(p.memory_id, p.message_size)

    def parameters(
        self,
        provider: str | None,
        llm_model: str | None,
        p: QAParameters,
        system_prompt: str | None,
        instructions: str | None,
        contexts: list[str],
        history: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """The connector parameters of each request style (ML Commons' DefaultLlmImpl)."""
        if provider == OPENAI:
            messages = chat_messages(provider, p, system_prompt, instructions, contexts, history)
            return {"model": llm_model, "messages": orjson.dumps(messages).decode()}
        if provider == CONVERSE:
            messages = chat_messages(provider, p, None, instructions, contexts, history)
            params: dict[str, Any] = {"messages": orjson.dumps(messages).decode()}
            if system_prompt:
                params["system_prompt"] = system_prompt
            return params
        return {"inputs": single_prompt(system_prompt, instructions, p.question, contexts, history)}

    def _call(self, ctx: SearchContext, parameters: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert ctx.generate is not None
        future = self._executor().submit(ctx.generate, self.model_id, parameters)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            raise StatusError(
                f"Timed out after [{timeout:g}s] waiting for the answer of model [{self.model_id}]", status=504
            ) from None

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="rag-llm")
            return self._pool


@processor("response_processors", TYPE)
def retrieval_augmented_generation(config: dict[str, Any]) -> Processor:
    check_keys(TYPE, config, {"model_id", "context_field_list", "system_prompt", "user_instructions", "llm_model"})
    model_id = config.get("model_id")
    if not isinstance(model_id, str) or not model_id:
        raise ParseError("[model_id] required property is missing", processor_type=TYPE, property_name="model_id")
    fields = config.get("context_field_list")
    if fields is None:
        raise ParseError(
            "[context_field_list] required property is missing", processor_type=TYPE, property_name="context_field_list"
        )
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise ParseError(
            "[context_field_list] property isn't a list of strings",
            processor_type=TYPE,
            property_name="context_field_list",
        )
    if not fields:
        raise ParseError(
            "[context_field_list] required property can't be empty.",
            processor_type=TYPE,
            property_name="context_field_list",
        )
    for key in ("system_prompt", "user_instructions", "llm_model"):
        string(TYPE, config, key)
    return RetrievalAugmentedGeneration(config)
