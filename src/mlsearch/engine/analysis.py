"""Built-in analyzers, as tantivy text analyzers registered under OpenSearch's names, plus the DL model analyzers
(`bert-uncased`, `mbert-uncased`) that run a model's tokenizer in Python (engine/bert_analyzer.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tantivy

from mlsearch.engine.bert_analyzer import (
    DL_ANALYZERS,
    TOKEN_TYPE,
    DlModelAnalyzer,
    get_dl_analyzer,
    is_dl_analyzer,
    tantivy_stand_in,
)
from mlsearch.errors import IllegalArgumentError, MapperParsingError

# Lucene's standard analyzer drops tokens longer than 255 characters.
_MAX_TOKEN = 255


def _standard() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(_MAX_TOKEN))
        .filter(tantivy.Filter.lowercase())
        .build()
    )


def _simple() -> tantivy.TextAnalyzer:
    # Lucene's simple analyzer splits on non-letters.
    return tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(r"[^\W\d_]+")).filter(tantivy.Filter.lowercase()).build()


def _whitespace() -> tantivy.TextAnalyzer:
    return tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()


def _keyword() -> tantivy.TextAnalyzer:
    return tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw()).build()


def _stop() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(r"[^\W\d_]+"))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.stopword("english"))
        .build()
    )


def _english() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(_MAX_TOKEN))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.stopword("english"))
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


ANALYZERS: dict[str, Callable[[], tantivy.TextAnalyzer]] = {
    "standard": _standard,
    "default": _standard,
    "simple": _simple,
    "whitespace": _whitespace,
    "keyword": _keyword,
    "stop": _stop,
    "english": _english,
}

# The analyzer used for `keyword` fields and `normalizer`-less exact values.
KEYWORD = "keyword"


# Token types as Lucene's tokenizers report them in `_analyze`: the standard tokenizer classifies, others say `word`.
_STANDARD_TYPED = frozenset({"standard", "default", "english"})

Analyzer = tantivy.TextAnalyzer | DlModelAnalyzer


@dataclass(frozen=True, slots=True)
class AnalyzedToken:
    """One token as `_analyze` reports it."""

    token: str
    start_offset: int
    end_offset: int
    type: str
    position: int


def known_analyzer(name: str) -> bool:
    return name in ANALYZERS or is_dl_analyzer(name)


def check_analyzer(name: str, field: str) -> None:
    """Raise the error OpenSearch gives for an analyzer it does not know.

    A DL model analyzer is loaded here, when the mapping is stored: documents are tokenized by the lexical projection
    after they are acknowledged, so an analyzer whose vocabulary is missing must be refused now, not then."""
    if is_dl_analyzer(name):
        try:
            get_dl_analyzer(name)
        except IllegalArgumentError as exc:
            raise MapperParsingError(f"Failed to parse mapping: {exc.reason} (field [{field}])") from exc
        return
    if name not in ANALYZERS:
        raise MapperParsingError(f"analyzer [{name}] has not been configured in mappings")


class Analyzers:
    """Per-index cache of analyzer instances, also used to analyze query text."""

    def __init__(self) -> None:
        self._cache: dict[str, tantivy.TextAnalyzer] = {}

    def get(self, name: str) -> Analyzer:
        if is_dl_analyzer(name):
            return get_dl_analyzer(name)  # cached per process by bert_analyzer
        analyzer = self._cache.get(name)
        if analyzer is None:
            if name not in ANALYZERS:
                raise IllegalArgumentError(f"failed to find analyzer [{name}]")
            analyzer = self._cache[name] = ANALYZERS[name]()
        return analyzer

    def analyze(self, name: str, text: str) -> list[str]:
        return list(self.get(name).analyze(text))

    def tokens(self, name: str, text: str) -> list[AnalyzedToken]:
        """Tokens with offsets, types and positions, as `_analyze` returns them."""
        analyzer = self.get(name)
        if isinstance(analyzer, DlModelAnalyzer):
            return [AnalyzedToken(t.text, t.start, t.end, TOKEN_TYPE, t.position) for t in analyzer.tokens(text)]
        typed = name in _STANDARD_TYPED
        return [
            AnalyzedToken(
                t.text,
                t.char_offset_from,
                t.char_offset_to,
                _standard_type(t.text) if typed else TOKEN_TYPE,
                t.position,
            )
            for t in analyzer.pre_tokenize(text).tokens
        ]

    def register_all(self, index: tantivy.Index) -> None:
        for name in ANALYZERS:
            index.register_tokenizer(tantivy_name(name), self._tantivy(name))
        for name in DL_ANALYZERS:
            index.register_tokenizer(tantivy_name(name), tantivy_stand_in())

    def _tantivy(self, name: str) -> tantivy.TextAnalyzer:
        analyzer = self.get(name)
        assert isinstance(analyzer, tantivy.TextAnalyzer)  # only called with names of ANALYZERS
        return analyzer


def _standard_type(token: str) -> str:
    return "<NUM>" if token.replace(".", "").replace(",", "").isdigit() else "<ALPHANUM>"


def tantivy_name(analyzer: str) -> str:
    """Analyzer names are prefixed so they never collide with tantivy's own tokenizers."""
    return f"os_{analyzer}"
