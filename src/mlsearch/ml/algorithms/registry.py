"""Algorithms by ML Commons function name (case-insensitive): name -> spec with a factory and the APIs it serves."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlsearch.errors import IllegalArgumentError

TRAIN, PREDICT, TRAIN_PREDICT, EXECUTE = "train", "predict", "train_predict", "execute"


@dataclass(frozen=True, slots=True)
class AlgorithmSpec:
    """One registered algorithm. `factory(parameters)` validates the parameters and returns an unfitted instance."""

    name: str  # the FunctionName, upper case: KMEANS, BATCH_RCF, ...
    factory: Callable[[Mapping[str, Any] | None], Any]
    apis: frozenset[str]


class AlgorithmRegistry:
    """Name -> AlgorithmSpec. Built-ins register through `register`, exactly as a plug-in would."""

    def __init__(self) -> None:
        self._specs: dict[str, AlgorithmSpec] = {}

    def register(self, name: str, apis: set[str]) -> Callable[[Any], Any]:
        def decorate(factory: Any) -> Any:
            key = name.upper()
            if key in self._specs:
                raise ValueError(f"algorithm [{key}] registered twice")
            self._specs[key] = AlgorithmSpec(key, factory, frozenset(apis))
            return factory

        return decorate

    def get(self, name: str) -> AlgorithmSpec:
        """The spec for a name in any case; unknown -> ML Commons' "Wrong function name"."""
        spec = self._specs.get(name.upper())
        if spec is None:
            raise IllegalArgumentError("Wrong function name")
        return spec

    def for_api(self, name: str, api: str) -> AlgorithmSpec:
        spec = self.get(name)
        if api not in spec.apis:
            raise IllegalArgumentError(
                f"Algorithm [{spec.name}] does not support the [{api}] API; it supports {sorted(spec.apis)}"
            )
        return spec

    def names(self) -> list[str]:
        return sorted(self._specs)


algorithms = AlgorithmRegistry()
