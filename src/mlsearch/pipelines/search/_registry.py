"""Search processor factories by (kind, type name); built-ins register with `@processor`."""

from __future__ import annotations

from collections.abc import Callable

from mlsearch.pipelines.search.base import Factory, Kind

FACTORIES: dict[tuple[Kind, str], Factory] = {}


def processor(kind: Kind, type_name: str) -> Callable[[Factory], Factory]:
    def register(factory: Factory) -> Factory:
        FACTORIES[(kind, type_name)] = factory
        return factory

    return register
