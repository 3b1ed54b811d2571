"""`neural_sparse_two_phase_processor`: neural_sparse queries score with their high-weight tokens first, and only the
best size x expansion_rate documents are rescored with the low-weight tokens (neural-search 2.15+).

neural-search adds a Lucene rescorer over the whole query; here each accelerated `neural_sparse` query carries its
split and window to the engine, which rescores its own best documents. For a neural_sparse query alone the two are
the same; inside `bool.should` the window is chosen per clause rather than over the bool's combined score. As in
neural-search, only a top-level neural_sparse and the `should` clauses of (nested) bool queries are accelerated."""

from __future__ import annotations

import copy
from typing import Any

from mlsearch.engine.query.neural_sparse import PRUNE_TYPES, TWO_PHASE_KEY
from mlsearch.errors import IllegalArgumentError, ParseError
from mlsearch.pipelines.search._registry import processor
from mlsearch.pipelines.search.base import Processor, SearchContext, check_keys

TYPE = "neural_sparse_two_phase_processor"
DEFAULT_RATIO = 0.4
DEFAULT_EXPANSION = 5.0
DEFAULT_MAX_WINDOW = 10000
DEFAULT_SIZE = 10
MIN_MAX_WINDOW = 50
_RATIO_RULES = {
    "top_k": "prune_ratio should be positive integer.",
    "max_ratio": "prune_ratio should be in the range [0, 1).",
    "alpha_mass": "prune_ratio should be in the range [0, 1).",
    "abs_value": "prune_ratio should be non-negative.",
}


class NeuralSparseTwoPhase(Processor):
    kind = "request_processors"
    type_name = TYPE

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.enabled = _boolean(config.get("enabled", True), "enabled")
        params = config.get("two_phase_parameter")
        if params is not None and not isinstance(params, dict):
            raise ParseError(
                f"[two_phase_parameter] property isn't a map, but of type [{type(params).__name__}]",
                processor_type=TYPE,
                property_name="two_phase_parameter",
            )
        params = params or {}
        self.prune_type = str(params.get("prune_type", "max_ratio")).lower()
        if self.prune_type not in PRUNE_TYPES:
            raise IllegalArgumentError(f"Unknown prune type: {params.get('prune_type')}")
        self.prune_ratio = _number(params, "prune_ratio", DEFAULT_RATIO)
        self.expansion = _number(params, "expansion_rate", DEFAULT_EXPANSION)
        self.max_window = int(_number(params, "max_window_size", DEFAULT_MAX_WINDOW))
        _validate(self.prune_type, self.prune_ratio, self.expansion, self.max_window)

    def process_request(self, body: dict[str, Any], ctx: SearchContext) -> dict[str, Any]:
        if not self.enabled or self.prune_ratio == 0.0 or not isinstance(body.get("query"), dict):
            return body
        body = copy.deepcopy(body)
        specs = list(_accelerated(body["query"]))
        if not specs:
            return body
        window = self._window(body.get("size"))
        marker = {"prune_type": self.prune_type, "prune_ratio": self.prune_ratio, "window_size": window}
        for spec in specs:
            spec[TWO_PHASE_KEY] = dict(marker)
        return body

    def _window(self, size: Any) -> int:
        try:
            base = DEFAULT_SIZE if size is None or int(size) == -1 else int(size)
        except (TypeError, ValueError):
            base = DEFAULT_SIZE  # parse_request reports the malformed size
        window = int(base * self.expansion)
        if window > self.max_window or window < 0:
            raise IllegalArgumentError(
                f"The two-phase window size of neural_sparse_two_phase_processor should be [0,{self.max_window}], "
                f"but get the value of {window}"
            )
        return window


def _accelerated(query: dict[str, Any]) -> list[dict[str, Any]]:
    """The field specs of the neural_sparse queries neural-search accelerates: top level, or in bool.should."""
    if len(query) != 1:
        return []
    ((name, body),) = query.items()
    if name == "neural_sparse" and isinstance(body, dict):
        return [spec for spec in body.values() if isinstance(spec, dict)]
    if name != "bool" or not isinstance(body, dict):
        return []
    should = body.get("should") or []
    clauses = should if isinstance(should, list) else [should]
    return [spec for clause in clauses if isinstance(clause, dict) for spec in _accelerated(clause)]


def _validate(prune_type: str, ratio: float, expansion: float, max_window: int) -> None:
    valid = {
        "top_k": ratio > 0 and ratio == int(ratio),
        "max_ratio": 0 <= ratio < 1,
        "alpha_mass": 0 <= ratio < 1,
        "abs_value": ratio >= 0,
    }.get(prune_type, True)
    if not valid:
        raise IllegalArgumentError(
            f"Illegal prune_ratio {ratio:f} for prune_type: {prune_type}. {_RATIO_RULES.get(prune_type, '')}"
        )
    if expansion < 1.0:
        raise IllegalArgumentError(f"The two_phase_parameter.expansion_rate must >= 1.0. Received: {expansion:f}")
    if max_window < MIN_MAX_WINDOW:
        # neural-search's format string ends in %n (a line break) where it meant %d
        raise IllegalArgumentError(f"The two_phase_parameter.max_window_size must >= 50. Received: \n{max_window}")


def _number(params: dict[str, Any], key: str, default: float) -> float:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IllegalArgumentError(f"[two_phase_parameter.{key}] must be a number, found [{value}]")
    return float(value)


def _boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ParseError(
            f"[{key}] property isn't a boolean, but of type [{type(value).__name__}]",
            processor_type=TYPE,
            property_name=key,
        )
    return value


@processor("request_processors", TYPE)
def neural_sparse_two_phase(config: dict[str, Any]) -> Processor:
    check_keys(TYPE, config, {"enabled", "two_phase_parameter"})
    return NeuralSparseTwoPhase(config)
