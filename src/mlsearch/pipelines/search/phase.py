"""Phase-results processors: `normalization-processor` and `score-ranker-processor` configure hybrid score fusion."""

from __future__ import annotations

from typing import Any

from mlsearch.engine.fusion import COMBINATIONS, DEFAULT_RANK_CONSTANT, NORMALIZATIONS, Fusion, LowerBound
from mlsearch.errors import IllegalArgumentError
from mlsearch.pipelines.search._registry import processor
from mlsearch.pipelines.search.base import Processor, check_keys

_BOUND_LIMIT = 10000.0
_MAX_SUB_QUERIES = 5


class FusionProcessor(Processor):
    kind = "phase_results_processors"

    def __init__(self, config: dict[str, Any], type_name: str, fusion: Fusion) -> None:
        super().__init__(config)
        self.type_name = type_name
        self._fusion = fusion

    def fusion(self) -> Fusion | None:
        return self._fusion


@processor("phase_results_processors", "normalization-processor")
def normalization_processor(config: dict[str, Any]) -> Processor:
    check_keys("normalization-processor", config, {"normalization", "combination"})
    normalization = _object(config.get("normalization"), "normalization")
    combination = _object(config.get("combination"), "combination")
    technique = str(normalization.get("technique", "min_max"))
    if technique not in NORMALIZATIONS:
        raise IllegalArgumentError(f"provided normalization technique is not supported [{technique}]")
    combine = str(combination.get("technique", "arithmetic_mean"))
    if combine not in COMBINATIONS:
        raise IllegalArgumentError(f"provided combination technique is not supported [{combine}]")
    if technique == "z_score" and combine != "arithmetic_mean":
        raise IllegalArgumentError("Z Score supports only arithmetic_mean combination technique")
    params = _object(normalization.get("parameters"), "parameters")
    bounds = _lower_bounds(params.get("lower_bounds"), technique)
    weights = _weights(_object(combination.get("parameters"), "parameters").get("weights"))
    fusion = Fusion(normalization=technique, combination=combine, weights=weights, lower_bounds=bounds)
    return FusionProcessor(config, "normalization-processor", fusion)


@processor("phase_results_processors", "score-ranker-processor")
def score_ranker_processor(config: dict[str, Any]) -> Processor:
    check_keys("score-ranker-processor", config, {"combination"})
    combination = _object(config.get("combination"), "combination")
    technique = str(combination.get("technique", "rrf"))
    if technique != "rrf":
        raise IllegalArgumentError(f"provided combination technique is not supported [{technique}]")
    rank_constant = combination.get("rank_constant", DEFAULT_RANK_CONSTANT)
    if isinstance(rank_constant, bool) or not isinstance(rank_constant, int) or not 1 <= rank_constant <= 10000:
        raise IllegalArgumentError(
            f"rank constant must be in the interval between 1 and 10000, submitted rank constant: {rank_constant}"
        )
    weights = _weights(_object(combination.get("parameters"), "parameters").get("weights"))
    fusion = Fusion(normalization="rrf", combination="rrf", weights=weights, rank_constant=rank_constant)
    return FusionProcessor(config, "score-ranker-processor", fusion)


def _object(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise IllegalArgumentError(f"[{name}] must be an object")
    return value


def _weights(value: Any) -> tuple[float, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(w, int | float) and not isinstance(w, bool) for w in value):
        raise IllegalArgumentError("parameter [weights] must be a list of numbers")
    weights = tuple(float(w) for w in value)
    shown = "[" + ", ".join(str(w) for w in weights) + "]"
    if any(not 0.0 <= w <= 1.0 for w in weights):
        raise IllegalArgumentError(f"all weights must be in range [0.0 ... 1.0], submitted weights: {shown}")
    if abs(sum(weights) - 1.0) > 0.01:
        raise IllegalArgumentError(f"sum of weights for combination must be equal to 1.0, submitted weights: {shown}")
    return weights


def _lower_bounds(value: Any, technique: str) -> tuple[LowerBound, ...]:
    if value is None:
        return ()
    if technique != "min_max":
        raise IllegalArgumentError("unrecognized parameters in normalization technique: [lower_bounds]")
    if not isinstance(value, list):
        raise IllegalArgumentError("lower_bounds must be a List")
    if len(value) > _MAX_SUB_QUERIES:
        raise IllegalArgumentError(f"lower_bounds size {len(value)} should be less than or equal to {_MAX_SUB_QUERIES}")
    return tuple(_lower_bound(item) for item in value)


def _lower_bound(item: Any) -> LowerBound:
    if not isinstance(item, dict):
        raise IllegalArgumentError("each lower bound must be a map")
    mode = str(item.get("mode") or "apply").lower()
    if mode not in ("apply", "clip", "ignore"):
        raise IllegalArgumentError(f"invalid mode: {mode}, valid values are: apply, clip, ignore")
    try:
        min_score = float(item.get("min_score", 0.0))
    except (TypeError, ValueError):
        raise IllegalArgumentError("invalid format for min_score: must be a valid float value") from None
    if not -_BOUND_LIMIT <= min_score <= _BOUND_LIMIT:
        raise IllegalArgumentError("min_score must be a valid finite number between -10000.000000 and 10000.000000")
    return LowerBound(mode, min_score)  # type: ignore[arg-type]
