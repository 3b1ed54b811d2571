"""Built-in analyzers, as tantivy text analyzers registered under OpenSearch's names."""

from __future__ import annotations

from collections.abc import Callable

import tantivy

from mlsearch.errors import MapperParsingError

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


def check_analyzer(name: str, field: str) -> None:
    """Raise the error OpenSearch gives for an analyzer it does not know."""
    if name not in ANALYZERS:
        raise MapperParsingError(f"analyzer [{name}] has not been configured in mappings")


class Analyzers:
    """Per-index cache of analyzer instances, also used to analyze query text."""

    def __init__(self) -> None:
        self._cache: dict[str, tantivy.TextAnalyzer] = {}

    def get(self, name: str) -> tantivy.TextAnalyzer:
        analyzer = self._cache.get(name)
        if analyzer is None:
            if name not in ANALYZERS:
                from mlsearch.errors import IllegalArgumentError

                raise IllegalArgumentError(f"failed to find analyzer [{name}]")
            analyzer = self._cache[name] = ANALYZERS[name]()
        return analyzer

    def analyze(self, name: str, text: str) -> list[str]:
        return list(self.get(name).analyze(text))

    def register_all(self, index: tantivy.Index) -> None:
        for name in ANALYZERS:
            index.register_tokenizer(tantivy_name(name), self.get(name))


def tantivy_name(analyzer: str) -> str:
    """Analyzer names are prefixed so they never collide with tantivy's own tokenizers."""
    return f"os_{analyzer}"
