"""Time to a spend limit at the current pace.

The pace is the spend of the usage in the pace window (from the start of the hour PACE_HOURS
before now, or from the period's start if that is later) divided by the window's length. At that
pace, a limit not yet reached is reached after (limit - spend) / pace; that moment is shown only if
it falls inside the current billing period, since spend starts again from zero with the next one.
Spend that did not move over the window (flat, or lowered by a correction) has no pace: the limit
is "not reached at this pace".
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from meterline.domain.timeutil import US_PER_HOUR, hour_floor

PACE_HOURS = 24


class Outlook(Enum):
    REACHED = "reached"
    AT = "at"  # reached `after_us` from now, within this period
    NOT_THIS_PERIOD = "not_this_period"  # at this pace, only after the period ends
    NOT_AT_THIS_PACE = "not_at_this_pace"  # spend is flat


@dataclass(frozen=True, slots=True)
class Pace:
    """Spend now and at the window's start (usage before it only), and the window's bounds."""

    spend_now: Decimal
    spend_before: Decimal
    since_us: int
    now_us: int
    period_end_us: int

    @property
    def per_hour(self) -> Decimal:
        moved = self.spend_now - self.spend_before
        if moved <= 0 or self.now_us <= self.since_us:
            return Decimal(0)
        return moved * US_PER_HOUR / (self.now_us - self.since_us)


@dataclass(frozen=True, slots=True)
class TimeToLimit:
    outlook: Outlook
    after_us: int | None = None  # for Outlook.AT


def pace_window_start(now_us: int, period_start_us: int) -> int:
    return max(period_start_us, hour_floor(now_us) - PACE_HOURS * US_PER_HOUR)


def time_to_limit(limit: Decimal, pace: Pace) -> TimeToLimit:
    left = limit - pace.spend_now
    if left <= 0:
        return TimeToLimit(Outlook.REACHED)
    per_hour = pace.per_hour
    if per_hour == 0:
        return TimeToLimit(Outlook.NOT_AT_THIS_PACE)
    after_us = int(left * US_PER_HOUR / per_hour)
    if pace.now_us + after_us >= pace.period_end_us:
        return TimeToLimit(Outlook.NOT_THIS_PERIOD)
    return TimeToLimit(Outlook.AT, after_us)


def in_words(after_us: int) -> str:
    """ "about 3 hours", "about 2 days": a forecast, so rounded to the unit that matters."""
    minutes = after_us // (60 * 1_000_000)
    if minutes < 60:
        return f"about {max(1, minutes)} minute{'s' if max(1, minutes) != 1 else ''}"
    hours = (after_us + US_PER_HOUR // 2) // US_PER_HOUR  # halves up
    if hours < 48:
        return f"about {hours} hour{'s' if hours != 1 else ''}"
    days = (after_us + 12 * US_PER_HOUR) // (24 * US_PER_HOUR)
    return f"about {days} days"
