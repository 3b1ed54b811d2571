"""Search-hit highlighting, as OpenSearch's default `unified` highlighter does it (`plain` and `fvh` are served the
same way): the field's text from `_source` is re-analyzed with offsets, the tokens the query matches are marked,
and the text is cut into passages at sentence boundaries within `fragment_size`, scored with the unified
highlighter's BM25-like passage scorer; the best `number_of_fragments` come back in text order (or by score)."""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from mlsearch.engine._highlight_terms import Matcher, auto_edits, matchers
from mlsearch.engine.analysis import Analyzers
from mlsearch.engine.hit_fields import _at_path
from mlsearch.engine.mapping import Field, Mappings
from mlsearch.engine.query import dsl
from mlsearch.errors import IllegalArgumentError, ParsingError

_TYPES = frozenset({"unified", "plain", "fvh"})
_STYLED = tuple(f'<em class="hlt{i}">' for i in range(1, 11))
_MAX_ANALYZED_OFFSET = 1_000_000
# Options OpenSearch accepts that change nothing here (offset sources, fvh/plain tuning).
_IGNORED = frozenset(
    {
        "force_source",
        "boundary_chars",
        "boundary_max_scan",
        "boundary_scanner",
        "boundary_scanner_locale",
        "fragmenter",
        "fragment_offset",
        "phrase_limit",
        "matched_fields",
        "highlight_filter",
        "max_analyzer_offset",
        "options",
    }
)
_OPTIONS = frozenset(
    {
        "type",
        "pre_tags",
        "post_tags",
        "tags_schema",
        "fragment_size",
        "number_of_fragments",
        "require_field_match",
        "highlight_query",
        "no_match_size",
        "order",
        "encoder",
    }
)


@dataclass(frozen=True, slots=True)
class FieldOptions:
    """Highlighting options of one field pattern (the global ones, overridden by the field's)."""

    pre_tag: str = "<em>"
    post_tag: str = "</em>"
    fragment_size: int = 100
    number_of_fragments: int = 5
    require_field_match: bool = True
    no_match_size: int = 0
    by_score: bool = False
    html: bool = False
    query: dsl.Query | None = None  # highlight_query
    own_query: bool = False  # whether `query` replaces the search query


@dataclass(frozen=True, slots=True)
class Highlight:
    """A parsed `highlight` section."""

    fields: tuple[tuple[str, FieldOptions], ...]


def parse_highlight(body: Any) -> Highlight | None:
    if body is None:
        return None
    if not isinstance(body, dict):
        raise ParsingError("[highlight] failed to parse object: expected an object")
    base = _options(FieldOptions(), body, "highlight", top=True)
    specs = body.get("fields", {})
    if isinstance(specs, list):  # the ordered form: [{"a": {}}, {"b": {}}]
        pairs = [(k, v) for item in specs if isinstance(item, dict) for k, v in item.items()]
    elif isinstance(specs, dict):
        pairs = list(specs.items())
    else:
        raise ParsingError("[highlight] fields must be an object or an array of objects")
    fields = []
    for name, spec in pairs:
        if not isinstance(spec, dict):
            raise ParsingError(f"[highlight_field] field [{name}] must be an object")
        fields.append((name, _options(base, spec, "highlight_field", name=name)))
    return Highlight(tuple(fields))


def _options(
    base: FieldOptions, spec: dict[str, Any], where: str, *, top: bool = False, name: str = ""
) -> FieldOptions:
    for key in spec:
        if key not in _OPTIONS and key not in _IGNORED and not (top and key == "fields"):
            raise ParsingError(f"[{where}] unknown field [{key}]")
    kind = spec.get("type")
    if kind is not None and kind not in _TYPES:
        reason = f"unknown highlighter type [{kind}]" + (f" for the field [{name}]" if name else "")
        raise IllegalArgumentError(reason)
    out = base
    if spec.get("tags_schema") == "styled":
        out = replace(out, pre_tag=_STYLED[0], post_tag="</em>")
    if "pre_tags" in spec:
        out = replace(out, pre_tag=_first_tag(spec["pre_tags"], "pre_tags"))
    if "post_tags" in spec:
        out = replace(out, post_tag=_first_tag(spec["post_tags"], "post_tags"))
    for key in ("fragment_size", "number_of_fragments", "no_match_size"):
        if key in spec:
            out = replace(out, **{key: _int(spec[key], key)})
    if "require_field_match" in spec:
        out = replace(out, require_field_match=str(spec["require_field_match"]).lower() == "true")
    if "order" in spec:
        out = replace(out, by_score=spec["order"] == "score")
    if "encoder" in spec:
        out = replace(out, html=spec["encoder"] == "html")
    if spec.get("highlight_query") is not None:
        out = replace(out, query=dsl.parse_query(spec["highlight_query"]), own_query=True)
    return out


def _first_tag(value: Any, key: str) -> str:
    # The unified highlighter uses the first tag only.
    tags = value if isinstance(value, list) else [value]
    if not tags:
        raise IllegalArgumentError(f"[{key}] must not be empty")
    return str(tags[0])


def _int(value: Any, key: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ParsingError(f"[highlight] failed to parse field [{key}]") from None


# ---- per hit -----------------------------------------------------------------------------------------------


class Highlighter:
    """Highlights the hits of one search: `highlight(mappings, analyzers, source)` gives a hit's `highlight`."""

    def __init__(self, spec: Highlight, query: dsl.Query) -> None:
        self.spec = spec
        self.query_matchers = matchers(query)
        self._own: dict[int, list[Matcher]] = {}
        self._where = ("", "")

    def highlight(
        self,
        mappings: Mappings,
        analyzers: Analyzers,
        source: Any,
        max_offset: int = _MAX_ANALYZED_OFFSET,
        where: tuple[str, str] = ("", ""),
    ) -> dict[str, list[str]]:
        """The hit's `highlight` object; `where` (index name, `_id`) names the document in errors."""
        self._where = where
        out: dict[str, list[str]] = {}
        for pattern, options in self.spec.fields:
            for leaf in _fields(mappings, pattern):
                if leaf.path in out:
                    continue
                values = [_as_text(v) for v in _at_path(source, leaf.source_path.split(".")) if v is not None]
                fragments = self._field(leaf, options, analyzers, values, max_offset)
                if fragments:
                    out[leaf.path] = fragments
        return out

    def _matchers(self, options: FieldOptions, leaf: Field) -> list[Matcher]:
        found = self.query_matchers
        if options.own_query:
            found = self._own.setdefault(id(options.query), matchers(options.query))
        if options.require_field_match:
            found = [m for m in found if m.targets(leaf.path)]
        return found

    def _field(
        self, leaf: Field, options: FieldOptions, analyzers: Analyzers, values: list[str], max_offset: int
    ) -> list[str]:
        marks = self._matchers(options, leaf)
        passages: list[_Passage] = []
        if marks:
            for number, text in enumerate(values):
                if len(text) > max_offset:
                    index, doc_id = self._where
                    raise IllegalArgumentError(
                        f"The length of [{leaf.path}] field of [{doc_id}] doc of [{index}] index has exceeded "
                        f"[{max_offset}] - maximum allowed to be "
                        f"analyzed for highlighting. This maximum can be set by changing the "
                        f"[index.highlight.max_analyzed_offset] index level setting. For large texts, indexing with "
                        f"offsets or term vectors is recommended!"
                    )
                spans = _spans(leaf, marks, analyzers, text)
                if spans:
                    passages += _passages(text, spans, options, number)
        if not passages:
            return _no_match(values, options)
        if options.number_of_fragments > 0:
            passages = sorted(passages, key=lambda p: (-p.score, p.value, p.start))[: options.number_of_fragments]
        order = (lambda p: (-p.score, p.value, p.start)) if options.by_score else (lambda p: (p.value, p.start))
        return [p.render(values[p.value], options) for p in sorted(passages, key=order)]


def _fields(mappings: Mappings, pattern: str) -> list[Field]:
    """Highlightable fields a name or pattern names: text and keyword fields (others have nothing to mark)."""
    return [f for f in mappings.fields_matching(pattern) if f.base_type in ("text", "keyword")]


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


# ---- which tokens match ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int
    term: str


def _spans(leaf: Field, marks: list[Matcher], analyzers: Analyzers, text: str) -> list[_Span]:
    tokens = analyzers.tokens(leaf.analyzer, text)
    hits: dict[int, str] = {}  # token index -> the term it counts for
    for mark in marks:
        for i in _matched(mark, leaf, analyzers, tokens):
            hits.setdefault(i, tokens[i].token)
    return [_Span(tokens[i].start_offset, tokens[i].end_offset, term) for i, term in sorted(hits.items())]


def _matched(mark: Matcher, leaf: Field, analyzers: Analyzers, tokens: list[Any]) -> list[int]:
    if mark.kind == "exact":
        value = mark.text.lower() if mark.case_insensitive else mark.text
        return [i for i, t in enumerate(tokens) if (t.token.lower() if mark.case_insensitive else t.token) == value]
    if mark.kind == "pattern":
        regex = re.compile(mark.text, re.IGNORECASE if mark.case_insensitive else 0)
        return [i for i, t in enumerate(tokens) if regex.fullmatch(t.token)]
    if mark.kind == "fuzzy":
        return [i for i, t in enumerate(tokens) if _within(t.token, mark.text, mark.distance)]
    analyzer = mark.analyzer or leaf.search_analyzer
    query = [(t.token, t.position) for t in analyzers.tokens(analyzer, mark.text)]
    if mark.kind == "phrase" and len(query) > 1:
        return _phrase(tokens, query, mark.slop, mark.prefix)
    terms = {term for term, _ in query}
    if mark.kind == "phrase" and mark.prefix and query:
        return [i for i, t in enumerate(tokens) if t.token.startswith(query[0][0])]
    if mark.distance:
        return [i for i, t in enumerate(tokens) if any(_fuzzy_term(t.token, q, mark.distance) for q in terms)]
    return [i for i, t in enumerate(tokens) if t.token in terms]


def _fuzzy_term(token: str, term: str, distance: int) -> bool:
    return _within(token, term, auto_edits(term) if distance < 0 else distance)


def _phrase(tokens: list[Any], query: list[tuple[str, int]], slop: int, prefix: bool) -> list[int]:
    """Token indexes of every occurrence of the phrase (each later term within `slop` extra positions)."""
    at: dict[int, list[int]] = {}
    for i, t in enumerate(tokens):
        at.setdefault(t.position, []).append(i)
    first = query[0][0]
    found: list[int] = []
    for i, t in enumerate(tokens):
        if t.token != first:
            continue
        chain = [i]
        pos = t.position
        for n, (term, qpos) in enumerate(query[1:], 1):
            last = prefix and n == len(query) - 1
            step = qpos - query[n - 1][1]
            nxt = _next(tokens, at, pos + step, pos + step + slop, term, last)
            if nxt is None:
                break
            chain.append(nxt)
            pos = tokens[nxt].position
        else:
            found += chain
    return sorted(set(found))


def _next(tokens: list[Any], at: dict[int, list[int]], low: int, high: int, term: str, prefix: bool) -> int | None:
    for pos in range(low, high + 1):
        for i in at.get(pos, ()):
            token = tokens[i].token
            if token == term or (prefix and token.startswith(term)):
                return i
    return None


def _within(a: str, b: str, distance: int) -> bool:
    """Whether two terms are at most `distance` edits apart (Levenshtein, with a length cut-off)."""
    if abs(len(a) - len(b)) > distance:
        return False
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > distance:
            return False
        previous = current
    return previous[-1] <= distance


# ---- passages ----------------------------------------------------------------------------------------------

# Sentence ends, as Java's sentence BreakIterator finds them: terminal punctuation (and closing quotes or brackets)
# then whitespace, or a line break; the whitespace belongs to the sentence before.
_SENTENCE_END = re.compile(r"[.!?]+['\"\u2019\u201d)\]]*\s+|[\r\n\u2029]+")
# Passage scoring of Lucene's unified highlighter (PassageScorer defaults).
_K1, _B, _PIVOT = 1.2, 0.75, 87.0


@dataclass(slots=True)
class _Passage:
    value: int  # which value of the field
    start: int
    end: int
    spans: list[_Span]
    score: float = 0.0

    def render(self, text: str, options: FieldOptions) -> str:
        out, pos = [], self.start
        for span in self.spans:
            if span.start > pos:
                out.append(_encode(text[pos : span.start], options))
            if span.end > pos:
                piece = text[max(pos, span.start) : span.end]
                out.append(options.pre_tag + _encode(piece, options) + options.post_tag)
                pos = span.end
        if self.end > pos:
            out.append(_encode(text[pos : self.end], options))
        return "".join(out)


def _encode(text: str, options: FieldOptions) -> str:
    if not options.html:
        return text
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
        .replace("/", "&#x2F;")
    )


class _Bounds:
    """Sentence and word boundaries of one text (sorted offsets, 0 and len(text) included)."""

    def __init__(self, text: str) -> None:
        n = len(text)
        self.size = n
        ends = {m.end() for m in _SENTENCE_END.finditer(text) if m.end() < n and not text[m.end()].islower()}
        self.sentences = sorted({0, n, *ends})
        word = [c.isalnum() or c == "_" for c in text]
        self.words = [0] + [i for i in range(1, n) if not (word[i - 1] and word[i])] + [n]

    @staticmethod
    def preceding(bounds: list[int], offset: int) -> int:
        """The last boundary before `offset` (0 when none)."""
        i = bisect.bisect_left(bounds, offset)
        return bounds[i - 1] if i > 0 else 0

    @staticmethod
    def following(bounds: list[int], offset: int) -> int:
        """The first boundary after `offset` (the text's end when none)."""
        i = bisect.bisect_right(bounds, offset)
        return bounds[i] if i < len(bounds) else bounds[-1]


def _passages(text: str, spans: list[_Span], options: FieldOptions, value: int) -> list[_Passage]:
    totals: dict[str, int] = {}
    for span in spans:
        totals[span.term] = totals.get(span.term, 0) + 1
    if options.number_of_fragments == 0:  # the whole value is one passage
        return [_scored(_Passage(value, 0, len(text), spans), text, totals)]
    bounds = _Bounds(text)
    out: list[_Passage] = []
    current: _Passage | None = None
    for span in spans:
        if current is None or span.start >= current.end:
            start, end = _window(bounds, span.start + 1, options.fragment_size)
            current = _Passage(value, start, max(end, span.end), [])
            out.append(current)
        current.spans.append(span)
        current.end = max(current.end, span.end)
    return [_scored(p, text, totals) for p in out]


def _window(bounds: _Bounds, offset: int, max_len: int) -> tuple[int, int]:
    """The passage around a match at `offset`: whole sentences while they fit in `max_len` characters; a sentence
    longer than that is cut at word boundaries around the match (OpenSearch's bounded sentence scanner)."""
    start = bounds.preceding(bounds.sentences, offset)
    end = bounds.following(bounds.sentences, offset - 1)
    if max_len <= 0:
        return start, end
    while end - start < max_len and end < bounds.size:
        after = bounds.following(bounds.sentences, end)
        if after - start > max_len:
            break
        end = after
    if end - start > max_len:
        if offset - max_len > start:
            start = max(start, bounds.preceding(bounds.words, offset - max_len))
        remaining = max(0, max_len - (offset - start))
        if offset + remaining < end:
            end = bounds.following(bounds.words, offset + remaining)
    return start, end


def _scored(passage: _Passage, text: str, totals: Mapping[str, int]) -> _Passage:
    """Lucene's passage score: per term, BM25-like idf over pseudo-documents times a saturated term frequency,
    favouring passages near the start of the text."""
    content_docs = 1.0 + len(text) / _PIVOT
    freqs: dict[str, int] = {}
    for span in passage.spans:
        freqs[span.term] = freqs.get(span.term, 0) + 1
    norm = _K1 * ((1 - _B) + _B * ((passage.end - passage.start) / _PIVOT))
    score = 0.0
    for term, freq in freqs.items():
        weight = (_K1 + 1) * math.log(1 + (content_docs + 0.5) / (totals[term] + 0.5))
        score += weight * freq / (freq + norm)
    passage.score = score * (1 + 1 / math.log(_PIVOT + passage.start))
    return passage


def _no_match(values: list[str], options: FieldOptions) -> list[str]:
    """`no_match_size`: the start of the first value, up to a word boundary, when nothing matched."""
    if options.no_match_size <= 0 or not values:
        return []
    text = values[0]
    if options.no_match_size >= len(text):
        return [_encode(text, options)]
    bounds = _Bounds(text)
    return [_encode(text[: bounds.following(bounds.words, options.no_match_size)], options)]


def highlight_options(body: Mapping[str, Any]) -> Highlight | None:
    """The parsed `highlight` of a search body, or None."""
    return parse_highlight(body.get("highlight"))
