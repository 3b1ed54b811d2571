"""`text_chunking`: split text fields into passages (fixed_token_length, fixed_char_length, delimiter).

Offsets follow neural-search's chunkers: a token chunk runs from its first token's start offset (0 for the first
chunk) to the start offset of the first token after it (the end of the text for the last chunk), so punctuation and
spacing stay with the chunk before them. `max_chunk_limit` counts the chunks of the whole document; when reached, the
rest of the text becomes the last chunk."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlsearch.errors import IllegalArgumentError
from mlsearch.pipelines.base import Config, SimpleProcessor, registry
from mlsearch.pipelines.document import IngestDocument

# An approximation of Lucene's standard tokenizer (UAX#29 words): letters/digits joined by in-word punctuation.
_WORD = re.compile(r"\w+(?:(?:[.'\u2019:]|(?<=\d)[,;](?=\d))\w+)*")
_TOKENIZERS = {
    "standard": _WORD,
    "letter": re.compile(r"[^\W\d_]+"),
    "whitespace": re.compile(r"\S+"),
    "lowercase": re.compile(r"[^\W\d_]+"),
    "classic": _WORD,
}
Chunker = Callable[[str, int], list[str]]  # (text, chunks still allowed or -1) -> chunks


def token_offsets(text: str, tokenizer: str = "standard") -> list[int]:
    return [m.start() for m in _TOKENIZERS[tokenizer].finditer(text)]


def fixed_token_length(token_limit: int, overlap_rate: float, tokenizer: str) -> Chunker:
    step = token_limit - math.floor(token_limit * overlap_rate)

    def chunk(text: str, limit: int) -> list[str]:
        starts = token_offsets(text, tokenizer)
        out: list[str] = []
        for first in range(0, len(starts), step):
            begin = 0 if first == 0 else starts[first]
            if _limit_reached(len(out), limit) or first + token_limit >= len(starts):
                out.append(text[begin:])
                break
            out.append(text[begin : starts[first + token_limit]])
        return out

    return chunk


def fixed_char_length(char_limit: int, overlap_rate: float) -> Chunker:
    step = char_limit - math.floor(char_limit * overlap_rate)

    def chunk(text: str, limit: int) -> list[str]:
        out: list[str] = []
        for begin in range(0, len(text), step):
            if _limit_reached(len(out), limit) or begin + char_limit >= len(text):
                out.append(text[begin:])
                break
            out.append(text[begin : begin + char_limit])
        return out

    return chunk


def delimiter(separator: str) -> Chunker:
    def chunk(text: str, limit: int) -> list[str]:
        out: list[str] = []
        start = 0
        while (end := text.find(separator, start)) != -1:
            if _limit_reached(len(out), limit):
                break
            out.append(text[start : end + len(separator)])
            start = end + len(separator)
        if start < len(text):
            out.append(text[start:])
        return out

    return chunk


def _limit_reached(produced: int, limit: int) -> bool:
    """True when the next chunk must be the last one (it takes the rest of the text)."""
    return limit != -1 and produced + 1 >= limit


@dataclass
class TextChunkingProcessor(SimpleProcessor):
    field_map: dict[str, Any]
    chunker: Chunker
    max_chunk_limit: int
    ignore_missing: bool
    type = "text_chunking"

    def execute(self, doc: IngestDocument) -> IngestDocument:
        budget = [self.max_chunk_limit]  # chunks the rest of this document may still produce
        self._walk(doc.source, self.field_map, "", budget)
        return doc

    def _walk(self, node: dict[str, Any], field_map: dict[str, Any], prefix: str, budget: list[int]) -> None:
        for key, target in field_map.items():
            value = node.get(key)
            if isinstance(target, dict):
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, dict):
                        self._walk(item, target, f"{prefix}{key}.", budget)
                continue
            if value is None and self.ignore_missing:
                continue
            node[target] = self._chunks(value, f"{prefix}{key}", budget)

    def _chunks(self, value: Any, path: str, budget: list[int]) -> list[str]:
        texts = [] if value is None else value if isinstance(value, list) else [value]
        out: list[str] = []
        for text in texts:
            if not isinstance(text, str):
                raise IllegalArgumentError(f"field [{path}] is neither string nor nested type, cannot process it")
            if not text:
                continue
            chunks = self.chunker(text, budget[0])
            if budget[0] != -1:
                budget[0] = max(budget[0] - len(chunks), 1)
            out.extend(chunks)
        return out


@registry.register("text_chunking")
def _factory(config: Config) -> TextChunkingProcessor:
    field_map = config.mapping("field_map")
    if not field_map:
        raise config.error("field_map", "Unable to create the processor as field_map has invalid key or value")
    algorithm = config.mapping("algorithm", {"fixed_token_length": {}})
    if len(algorithm) != 1:
        raise IllegalArgumentError(
            f"Unable to create the processor as [algorithm] must contain and only contain 1 algorithm, "
            f"but found {len(algorithm)} algorithms"
        )
    [(name, params)] = algorithm.items()
    if not isinstance(params, dict):
        raise IllegalArgumentError(f"Unable to create the processor as [{name}] parameters cannot be cast to [Map]")
    sub = Config(config.type, dict(params), config.tag, config.services)
    chunker, max_chunks = _algorithm(name, sub)
    sub.finish()
    return TextChunkingProcessor(field_map, chunker, max_chunks, config.boolean("ignore_missing", False))


def build_chunker(name: str, params: dict[str, Any]) -> tuple[Chunker, int]:
    """A chunker and its max_chunk_limit from an algorithm's name and parameters (the semantic field's `chunking`)."""
    sub = Config("text_chunking", dict(params))
    chunker = _algorithm(name, sub)
    sub.finish()
    return chunker


def _algorithm(name: str, sub: Config) -> tuple[Chunker, int]:
    max_chunks = sub.integer("max_chunk_limit", 100)
    if max_chunks != -1 and max_chunks < 1:
        raise IllegalArgumentError(f"Parameter [max_chunk_limit] must be positive or -1, but was {max_chunks}")
    if name == "delimiter":
        sep = sub.string("delimiter", "\n\n")
        if not sep:
            raise IllegalArgumentError("Parameter [delimiter] should not be empty.")
        return delimiter(sep), max_chunks
    if name not in ("fixed_token_length", "fixed_char_length"):
        raise IllegalArgumentError(
            f"Unable to create the processor as chunker algorithm [{name}] is not supported. "
            f"Supported chunker algorithms are [fixed_token_length, delimiter, fixed_char_length]"
        )
    overlap = sub.number("overlap_rate", 0.0)
    if not 0 <= overlap <= 0.5:
        raise IllegalArgumentError(f"Parameter [overlap_rate] must be between 0 and 0.5, but was {overlap}")
    if name == "fixed_char_length":
        limit = sub.integer("char_limit", 2048)
        if limit < 1:
            raise IllegalArgumentError(f"Parameter [char_limit] must be positive, but was {limit}")
        return fixed_char_length(limit, overlap), max_chunks
    limit = sub.integer("token_limit", 384)
    if limit < 1:
        raise IllegalArgumentError(f"Parameter [token_limit] must be positive, but was {limit}")
    tokenizer = sub.string("tokenizer", "standard")
    if tokenizer not in _TOKENIZERS:
        raise IllegalArgumentError(f"Tokenizer [{tokenizer}] is not supported for [fixed_token_length] algorithm.")
    return fixed_token_length(limit, overlap, tokenizer), max_chunks
