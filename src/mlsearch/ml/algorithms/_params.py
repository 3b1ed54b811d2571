"""Reading OpenSearch's algorithm `parameters`: typed values with defaults; a wrong type names the key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlsearch.errors import IllegalArgumentError


class Params:
    """Typed access to a `parameters` object. Unknown keys are ignored, as ML Commons' parsers skip them."""

    def __init__(self, raw: Mapping[str, Any] | None) -> None:
        if raw is not None and not isinstance(raw, Mapping):
            raise IllegalArgumentError("parameters must be an object")
        self.raw = dict(raw or {})

    def int(self, key: str, default: int | None, *, minimum: int | None = None) -> int | None:
        value = self.raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise IllegalArgumentError(f"parameter [{key}] must be an integer, got [{value}]")
        try:
            number = int(value) if not isinstance(value, float) or value.is_integer() else None
        except ValueError:
            number = None
        if number is None:
            raise IllegalArgumentError(f"parameter [{key}] must be an integer, got [{value}]")
        if minimum is not None and number < minimum:
            raise IllegalArgumentError(f"parameter [{key}] must be at least {minimum}, got [{number}]")
        return number

    def float(self, key: str, default: float | None, *, positive: bool = False) -> float | None:
        value = self.raw.get(key, default)
        if value is None:
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise IllegalArgumentError(f"parameter [{key}] must be a number, got [{value}]") from None
        if positive and number <= 0:
            raise IllegalArgumentError(f"parameter [{key}] must be positive, got [{value}]")
        return number

    def choice(self, key: str, default: str, allowed: Sequence[str]) -> str:
        value = str(self.raw.get(key, default)).upper()
        if value not in allowed:
            raise IllegalArgumentError(
                f"Wrong value [{self.raw.get(key)}] for parameter [{key}]; expected one of {list(allowed)}"
            )
        return value

    def str(self, key: str, default: str | None) -> str | None:
        value = self.raw.get(key, default)
        return None if value is None else str(value)

    def echo(self) -> dict[str, Any]:
        """The parameters as given, for the model record."""
        return dict(self.raw)
