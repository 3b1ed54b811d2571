"""Keys as OpenSearch prints them (Java doubles, formatted dates) and date_histogram intervals and calendars."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mlsearch.engine import dates
from mlsearch.engine.date_math import resolve_now
from mlsearch.errors import IllegalArgumentError

DAY = 86_400_000
_FIXED_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY}
_CALENDAR = {
    "minute": "minute",
    "1m": "minute",
    "hour": "hour",
    "1h": "hour",
    "day": "day",
    "1d": "day",
    "week": "week",
    "1w": "week",
    "month": "month",
    "1M": "month",
    "quarter": "quarter",
    "1q": "quarter",
    "year": "year",
    "1y": "year",
}
_UNIT_MILLIS = {"minute": 60_000, "hour": 3_600_000, "day": DAY, "week": 7 * DAY}
_JAVA = [
    ("yyyy", "%Y"),
    ("uuuu", "%Y"),
    ("MM", "%m"),
    ("dd", "%d"),
    ("HH", "%H"),
    ("mm", "%M"),
    ("ss", "%S"),
    ("'T'", "T"),
]


def java_double(value: float) -> str:
    """Java's Double.toString, which OpenSearch uses in range keys: 100.0, 0.5, 1.0E7."""
    value = float(value)
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(value)
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    power = len(digits) + int(exponent) - 1
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{power}"


def date_formatter(fmt: str | None) -> Callable[[int | float], str]:
    """How a date value prints under a `format` (the first `||` alternative), UTC."""
    first = (fmt or dates.DEFAULT_FORMAT).split("||")[0]
    if first == "epoch_millis":
        return lambda millis: str(int(millis))
    if first == "epoch_second":
        return lambda millis: str(int(millis) // 1000)
    if not any(token in first for token, _ in _JAVA) or first.startswith("strict_") or first.startswith("date"):
        return dates.format_millis
    pattern = first.replace("SSS", "\0")
    for token, directive in _JAVA:
        pattern = pattern.replace(token, directive)

    def render(millis: int | float) -> str:
        moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
        return moment.strftime(pattern).replace("\0", f"{int(millis) % 1000:03d}")

    return render


def date_value(value: object, fmt: str | None = None) -> int:
    """Epoch millis of a bound given as a date string, date math on `now`, or a number."""
    if isinstance(value, str) and value.startswith("now"):
        return resolve_now(value, int(datetime.now(tz=UTC).timestamp() * 1000))
    try:
        return dates.parse(value, fmt)
    except ValueError as exc:
        raise IllegalArgumentError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Interval:
    """A fixed step in millis (`every`), or a calendar unit walked in the time zone."""

    every: int | None
    unit: str | None
    zone: tzinfo

    @property
    def native(self) -> bool:
        """Whether equal-width UTC histogram buckets serve it (tantivy's histogram)."""
        return self.zone is UTC and self.every is not None

    @property
    def offset(self) -> int:
        # Calendar weeks start on Monday; the epoch was a Thursday.
        return 4 * DAY if self.unit == "week" else 0


def parse_interval(params: dict[str, object], name: str) -> Interval:
    zone = _zone(params.get("time_zone"))
    fixed, calendar = params.get("fixed_interval"), params.get("calendar_interval")
    legacy = params.get("interval")
    if calendar is None and fixed is None and legacy is not None:
        calendar = legacy if str(legacy) in _CALENDAR else None
        fixed = None if calendar is not None else legacy
    if calendar is not None:
        unit = _CALENDAR.get(str(calendar))
        if unit is None:
            raise IllegalArgumentError(
                f"The supplied interval [{calendar}] could not be parsed as a calendar interval."
            )
        every = _UNIT_MILLIS.get(unit)
        return Interval(every, unit, zone)
    if fixed is None:
        raise IllegalArgumentError(f"Invalid interval specified, must be non-null and non-empty for [{name}]")
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", str(fixed))
    if match is None or int(match.group(1)) == 0:
        raise IllegalArgumentError(
            f"failed to parse setting [date_histogram.fixedInterval] with value [{fixed}] as "
            f"a time value: unit is missing or unrecognized"
        )
    return Interval(int(match.group(1)) * _FIXED_UNITS[match.group(2)], None, zone)


def _zone(value: object) -> tzinfo:
    if value is None or str(value) in ("UTC", "Z", "+00:00", "Etc/UTC", "GMT"):
        return UTC
    text = str(value)
    match = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", text)
    if match:
        from datetime import timezone

        minutes = int(match.group(2)) * 60 + int(match.group(3))
        return timezone(timedelta(minutes=minutes if match.group(1) == "+" else -minutes))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise IllegalArgumentError(f"Unknown time-zone ID: {text}") from None


def calendar_edges(interval: Interval, low: int, high: int, limit: int) -> list[int]:
    """Bucket edges (epoch millis): the start of the bucket holding `low` through the end of the one holding
    `high`; stops after `limit` + 2 edges so that a caller can tell there are too many."""
    moment = _floor(datetime.fromtimestamp(low / 1000, tz=interval.zone), interval)
    edges: list[int] = []
    while len(edges) < limit + 2:
        millis = int(moment.timestamp() * 1000)
        edges.append(millis)
        if millis > high:
            break
        moment = _step(moment, interval)
    return edges


def _floor(moment: datetime, interval: Interval) -> datetime:
    if interval.unit is None:
        assert interval.every is not None
        millis = int(moment.timestamp() * 1000)
        local = millis + int(moment.utcoffset().total_seconds() * 1000)  # type: ignore[union-attr]
        return datetime.fromtimestamp((millis - local % interval.every) / 1000, tz=interval.zone)
    naive = moment.replace(tzinfo=None)
    unit = interval.unit
    if unit == "minute":
        naive = naive.replace(second=0, microsecond=0)
    elif unit == "hour":
        naive = naive.replace(minute=0, second=0, microsecond=0)
    else:
        naive = naive.replace(hour=0, minute=0, second=0, microsecond=0)
        if unit == "week":
            naive -= timedelta(days=naive.weekday())
        elif unit == "month":
            naive = naive.replace(day=1)
        elif unit == "quarter":
            naive = naive.replace(day=1, month=(naive.month - 1) // 3 * 3 + 1)
        elif unit == "year":
            naive = naive.replace(day=1, month=1)
    return naive.replace(tzinfo=interval.zone)


def _step(moment: datetime, interval: Interval) -> datetime:
    naive = moment.replace(tzinfo=None)
    if interval.unit in ("month", "quarter", "year"):
        months = {"month": 1, "quarter": 3, "year": 12}[interval.unit]
        index = naive.year * 12 + naive.month - 1 + months
        return naive.replace(year=index // 12, month=index % 12 + 1).replace(tzinfo=interval.zone)
    assert interval.every is not None
    if interval.unit in ("day", "week"):
        return (naive + timedelta(milliseconds=interval.every)).replace(tzinfo=interval.zone)
    return datetime.fromtimestamp(moment.timestamp() + interval.every / 1000, tz=interval.zone)
