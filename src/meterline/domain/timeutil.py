"""Time as meterline stores it: integer microseconds since the Unix epoch, always UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

US_PER_SECOND = 1_000_000
US_PER_HOUR = 3600 * US_PER_SECOND
US_PER_DAY = 24 * US_PER_HOUR
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# RFC 3339 date-time (section 5.6), read as the typed ingest decoder (msgspec) reads it: a space
# may stand for the T, the offset may omit its colon, and fractions round to the microsecond.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?", re.ASCII)


_ONE_US = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    """Exact conversion (integer timedelta division, no float) of an aware datetime to epoch microseconds."""
    return (moment - _EPOCH) // _ONE_US


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def now_us() -> int:
    return to_us(datetime.now(UTC))


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp with a 4-digit year and an explicit offset (or Z).

    Raises ValueError with a reason a user can act on.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError("must be an RFC 3339 timestamp such as 2026-01-01T00:00:00Z")
    fraction = match.group(1) or ""
    round_up = len(fraction) > 7 and fraction[7] >= "5"
    if len(fraction) > 7:
        text = text[: match.start(1)] + fraction[:7] + text[match.end(1) :]
    try:
        moment = datetime.fromisoformat(text.upper())
    except ValueError:
        raise ValueError("must be an RFC 3339 timestamp such as 2026-01-01T00:00:00Z") from None
    if moment.tzinfo is None:
        raise ValueError("must include a UTC offset or Z")
    return moment.astimezone(UTC) + (_ONE_US if round_up else timedelta(0))


@lru_cache(maxsize=65_536)
def format_rfc3339(us: int) -> str:
    """Format as Metronome does: UTC with a Z suffix, milliseconds only when present.

    Cached: the evaluator formats the same period and segment bounds for every customer."""
    moment = from_us(us)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def hour_floor(us: int) -> int:
    return us - us % US_PER_HOUR


def day_floor(us: int) -> int:
    return us - us % US_PER_DAY


def month_bounds(us: int) -> tuple[int, int]:
    """The calendar month (UTC) holding `us`, as [start, end)."""
    moment = from_us(us)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    end = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
    return to_us(start), to_us(end)
