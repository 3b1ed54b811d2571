"""Date math on `now`: now, now-1d, now+2h/d (rounded down to the unit)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from mlsearch.errors import IllegalArgumentError

_STEP = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")
_FIXED = {"w": 7 * 86400, "d": 86400, "h": 3600, "H": 3600, "m": 60, "s": 1}


def resolve_now(expression: str, now_millis: int) -> int:
    rest = expression[3:]
    moment = datetime.fromtimestamp(now_millis / 1000, tz=UTC)
    pos = 0
    while pos < len(rest):
        match = _STEP.match(rest, pos)
        if match is None:
            raise IllegalArgumentError(f"failed to parse date field [{expression}]: unsupported date math")
        if match.group(4):
            moment = _round_down(moment, match.group(4))
        else:
            sign = 1 if match.group(1) == "+" else -1
            moment = _add(moment, sign * int(match.group(2)), match.group(3))
        pos = match.end()
    return int(moment.timestamp() * 1000)


def _add(moment: datetime, amount: int, unit: str) -> datetime:
    if unit == "y":
        return moment.replace(year=moment.year + amount)
    if unit == "M":
        months = moment.year * 12 + moment.month - 1 + amount
        return moment.replace(year=months // 12, month=months % 12 + 1)
    return moment + timedelta(seconds=amount * _FIXED[unit])


def _round_down(moment: datetime, unit: str) -> datetime:
    if unit == "y":
        return moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        start = moment - timedelta(days=moment.weekday())
        return start.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "d":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in ("h", "H"):
        return moment.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return moment.replace(second=0, microsecond=0)
    return moment.replace(microsecond=0)
