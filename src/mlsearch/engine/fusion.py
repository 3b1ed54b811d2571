"""Score fusion for the hybrid query: per-sub-query normalisation and combination, as neural-search computes them.

Pure functions over each sub-query's result list (document -> raw score); the search pipeline's phase-results processor
builds a `Fusion` and the engine applies it. Formulas: spec §6.11, pinned by the tutorial numbers of §8.3."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

from mlsearch.errors import IllegalArgumentError

# A normalised score of exactly 0 becomes this floor (min_max without bounds, z_score): such a document still counts.
MIN_SCORE = 0.001
# All of a sub-query's results share one score: each normalises to this.
SINGLE_RESULT_SCORE = 1.0
NORMALIZATIONS = ("min_max", "l2", "z_score")
COMBINATIONS = ("arithmetic_mean", "geometric_mean", "harmonic_mean")
DEFAULT_RANK_CONSTANT = 60

SubResults = dict[Hashable, float]  # one sub-query's hits: document -> raw score


@dataclass(frozen=True, slots=True)
class LowerBound:
    mode: Literal["apply", "clip", "ignore"] = "apply"
    min_score: float = 0.0


@dataclass(frozen=True, slots=True)
class Fusion:
    """How sub-query scores become one score: normalise then combine, or rank fusion (`rrf`)."""

    normalization: str = "min_max"
    combination: str = "arithmetic_mean"
    weights: tuple[float, ...] = ()
    lower_bounds: tuple[LowerBound, ...] = ()
    rank_constant: int = DEFAULT_RANK_CONSTANT

    def describe(self) -> tuple[str, str]:
        """(normalisation, combination) descriptions for `explain`."""
        weights = f", weights [{', '.join(str(w) for w in self.weights)}]" if self.weights else ""
        if self.combination == "rrf":  # neural-search: the rank constant belongs to rrf's normalisation step
            return f"rrf, rank_constant [{self.rank_constant}]", f"rrf{weights}"
        return self.normalization, f"{self.combination}{weights}"


@dataclass(frozen=True, slots=True)
class Fused:
    doc: Hashable
    score: float
    sub_scores: tuple[float | None, ...]  # normalised score per sub-query (None: not in that sub-query's results)


def fuse(fusion: Fusion, subs: Sequence[SubResults]) -> list[Fused]:
    """Every document of any sub-query with its combined score, best first (ties keep first-seen order)."""
    weights = _weights(fusion, len(subs))
    if fusion.combination == "rrf":
        normalized = [rrf_scores(sub, fusion.rank_constant) for sub in subs]
    else:
        normalized = [normalize(fusion, i, sub) for i, sub in enumerate(subs)]
    docs: dict[Hashable, None] = {}
    for sub in subs:
        docs.update(dict.fromkeys(sub))
    out = []
    for doc in docs:
        per_sub = tuple(n.get(doc) for n in normalized)
        values = [0.0 if s is None else s for s in per_sub]
        if fusion.combination == "rrf":
            score = sum(w * s for w, s in zip(weights, values, strict=True))
        else:
            score = combine(fusion.combination, values, weights)
        out.append(Fused(doc, score, per_sub))
    out.sort(key=lambda f: -f.score)
    return out


def _weights(fusion: Fusion, count: int) -> tuple[float, ...]:
    if not fusion.weights:
        return (1.0,) * count
    if len(fusion.weights) != count:
        raise IllegalArgumentError(
            f"number of weights [{len(fusion.weights)}] must match number of sub-queries [{count}] in hybrid query"
        )
    return fusion.weights


# ---- normalisation ----------------------------------------------------------------------------------------


def normalize(fusion: Fusion, position: int, sub: SubResults) -> SubResults:
    if not sub:
        return {}
    if fusion.normalization == "l2":
        return l2(sub)
    if fusion.normalization == "z_score":
        return z_score(sub)
    bound = None
    if fusion.lower_bounds:
        if len(fusion.lower_bounds) <= position:
            raise IllegalArgumentError(
                "expected lower bounds array to contain elements matching the number of sub-queries"
            )
        bound = fusion.lower_bounds[position]
    return min_max(sub, bound)


def min_max(sub: SubResults, bound: LowerBound | None = None) -> SubResults:
    low, high = min(sub.values()), max(sub.values())
    return {doc: _min_max_one(s, low, high, bound) for doc, s in sub.items()}


def _min_max_one(score: float, low: float, high: float, bound: LowerBound | None) -> float:
    if high == low:
        return SINGLE_RESULT_SCORE
    if bound is None or bound.mode == "ignore":
        value = (score - low) / (high - low)
        return MIN_SCORE if value == 0.0 else value
    floor = bound.min_score
    if bound.mode == "clip" and score < low:
        return 0.0
    if high < floor or (bound.mode == "apply" and score < floor):
        return (score - low) / (high - low)
    return (score - floor) / (high - floor)


def l2(sub: SubResults) -> SubResults:
    norm = math.sqrt(sum(s * s for s in sub.values()))
    return {doc: (s / norm if norm else 0.0) for doc, s in sub.items()}


def z_score(sub: SubResults) -> SubResults:
    values = list(sub.values())
    mean = sum(values) / len(values)
    std = math.sqrt(sum((s - mean) ** 2 for s in values) / len(values))
    return {doc: _z_one(s, mean, std) for doc, s in sub.items()}


def _z_one(score: float, mean: float, std: float) -> float:
    if score == mean:
        return SINGLE_RESULT_SCORE
    if std == 0.0:
        return MIN_SCORE
    value = (score - mean) / std
    return MIN_SCORE if value <= 0.0 else value


def rrf_scores(sub: SubResults, rank_constant: int) -> SubResults:
    """1 / (rank_constant + rank), rank 1-based by descending raw score (ties: first seen first)."""
    ranked = sorted(sub.items(), key=lambda item: -item[1])
    return {doc: 1.0 / (rank_constant + rank) for rank, (doc, _) in enumerate(ranked, start=1)}


# ---- combination ------------------------------------------------------------------------------------------


def combine(technique: str, scores: Sequence[float], weights: Sequence[float]) -> float:
    """One document's combined score; a sub-query that missed it contributes 0 (its weight stays counted)."""
    if technique == "arithmetic_mean":
        pairs = [(w, s) for w, s in zip(weights, scores, strict=True) if s >= 0.0]
        total = sum(w for w, _ in pairs)
        return sum(w * s for w, s in pairs) / total if total else 0.0
    pairs = [(w, s) for w, s in zip(weights, scores, strict=True) if s > 0.0]
    total = sum(w for w, _ in pairs)
    if not pairs or not total:
        return 0.0
    if technique == "geometric_mean":
        return math.exp(sum(w * math.log(s) for w, s in pairs) / total)
    if technique == "harmonic_mean":
        return total / sum(w / s for w, s in pairs)
    raise IllegalArgumentError(f"provided combination technique is not supported [{technique}]")
