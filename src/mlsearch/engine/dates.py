"""Date values as epoch milliseconds: ISO 8601 (strict_date_optional_time), epoch_millis, epoch_second, and
the common Java-style patterns."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from mlsearch.errors import MapperParsingError

DEFAULT_FORMAT = "strict_date_optional_time||epoch_millis"
_ISO = re.compile(r"^[+-]?\d{4,}-\d{2}(-\d{2}([T ]\d{2}(:\d{2}(:\d{2}([.,]\d{1,9})?)?)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_NAMED = {
    "strict_date_optional_time",
    "date_optional_time",
    "strict_date_time",
    "date_time",
    "epoch_millis",
    "epoch_second",
    "strict_date",
    "date",
    "basic_date",
    "strict_date_hour_minute_second",
    "date_hour_minute_second",
    "strict_year_month_day",
    "year_month_day",
    "year",
    "strict_year",
}
_JAVA = [
    ("yyyy", "%Y"),
    ("uuuu", "%Y"),
    ("MM", "%m"),
    ("dd", "%d"),
    ("HH", "%H"),
    ("mm", "%M"),
    ("ss", "%S"),
    ("SSS", "%f"),
    ("Z", "%z"),
    ("XXX", "%z"),
    ("'T'", "T"),
]


def check_format(fmt: str, path: str) -> None:
    for part in fmt.split("||"):
        if part not in _NAMED and not any(token in part for token, _ in _JAVA):
            raise MapperParsingError(f"Invalid format: [{fmt}]: Unknown pattern letter: {part[:1]}")


def looks_like_date(text: str) -> bool:
    return bool(_ISO.match(text)) and _try_iso(text) is not None


def parse(value: Any, fmt: str | None) -> int:
    """Epoch milliseconds of a date value, trying each `||` alternative of the field's format."""
    fmt = fmt or DEFAULT_FORMAT
    for part in fmt.split("||"):
        millis = _parse_one(value, part)
        if millis is not None:
            return millis
    raise ValueError(f"failed to parse date field [{value}] with format [{fmt}]")


def _parse_one(value: Any, fmt: str) -> int | None:
    if isinstance(value, bool):
        return None
    if fmt in ("epoch_millis", "epoch_second"):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return int(number * 1000) if fmt == "epoch_second" else int(number)
    if not isinstance(value, str):
        # OpenSearch reads a number given for a date field as epoch millis whatever the format.
        return int(value) if isinstance(value, int | float) else None
    if fmt in _NAMED:
        return _try_iso(value) if _ISO.match(value) else None
    pattern = fmt
    for token, directive in _JAVA:
        pattern = pattern.replace(token, directive)
    try:
        parsed = datetime.strptime(value, pattern)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _try_iso(text: str) -> int | None:
    normalized = text.replace(" ", "T").replace(",", ".")
    if normalized.endswith("Z"):
        normalized = normalized[:-1] + "+00:00"
    if len(normalized) == 7:
        normalized += "-01"
    fraction = re.search(r"\.(\d+)", normalized)
    if fraction and len(fraction.group(1)) > 6:
        normalized = normalized.replace(fraction.group(0), "." + fraction.group(1)[:6])
    try:
        parsed = datetime.fromisoformat(normalized)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def format_millis(millis: int | float) -> str:
    """How OpenSearch prints a date by default (strict_date_optional_time, UTC, milliseconds)."""
    moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(millis) % 1000:03d}Z"
