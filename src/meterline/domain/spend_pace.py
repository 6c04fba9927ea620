"""Time to a spend limit at the current pace, and spend projected to the period's end.

The pace is the spend of the usage in the pace window (from the start of the hour PACE_HOURS
before now, or from the period's start if that is later; a forecast alert chooses its own number
of hours) divided by the window's length. At that pace, a limit not yet reached is reached after
(limit - spend) / pace; that moment is shown only if it falls inside the current billing period,
since spend starts again from zero with the next one. Spend that did not move over the window
(flat, or lowered by a correction) has no pace: the limit is "not reached at this pace".

Projected spend (what `spend_forecast_reached` alerts measure) is spend now plus the pace times
what is left of the period. It moves with the clock alone: within an hour the window's start
stays, so with no usage the projection only falls (the same spend over a longer window, for a
shorter time left), reaching a threshold from above at an instant known in advance
(`falls_below_at`); at each hour the window's start moves on, which may raise it or lower it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal, localcontext
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


def pace_window_start(now_us: int, period_start_us: int, hours: int = PACE_HOURS) -> int:
    return max(period_start_us, hour_floor(now_us) - hours * US_PER_HOUR)


def next_window_move(now_us: int, period_start_us: int, hours: int) -> int | None:
    """The next instant the pace window's start moves (the next hour, once the window no longer
    starts at the period's start), or None while it stays at the period's start past that hour."""
    next_hour = hour_floor(now_us) + US_PER_HOUR
    return next_hour if next_hour - hours * US_PER_HOUR > period_start_us else None


PROJECTION_PLACES = Decimal("0.000001")  # a forecast: millionths of the credit type are plenty


def projected_spend(pace: Pace) -> Decimal:
    """Spend at the period's end if it goes on at this pace (spend now, without a pace), rounded
    down to millionths."""
    moved = pace.spend_now - pace.spend_before
    if moved <= 0 or pace.now_us <= pace.since_us or pace.period_end_us <= pace.now_us:
        return pace.spend_now
    with localcontext() as exact:
        exact.prec = 100  # amounts have at most 40 digits each side of the point
        ahead = moved * (pace.period_end_us - pace.now_us) / (pace.now_us - pace.since_us)
        return (pace.spend_now + ahead).quantize(PROJECTION_PLACES, ROUND_DOWN)


def projection_per_spend(pace: Pace) -> Decimal:
    """How far the projection can move for one unit of spend moved now: the spend itself, and as
    much again for each window's length left in the period (Infinity for a window of no length)."""
    if pace.now_us <= pace.since_us:
        return Decimal("Infinity")
    with localcontext() as exact:
        exact.prec = 100
        return 1 + Decimal(max(pace.period_end_us - pace.now_us, 0)) / (pace.now_us - pace.since_us)


def threshold_reached_at(threshold: Decimal, pace: Pace) -> int | None:
    """When spend reaches `threshold` at this pace: now if it has, else the first microsecond at
    which it would; None if it would not within the period."""
    left = threshold - pace.spend_now
    if left <= 0:
        return pace.now_us
    moved = pace.spend_now - pace.spend_before
    if moved <= 0 or pace.now_us <= pace.since_us:
        return None
    with localcontext() as exact:
        exact.prec = 100
        after = (left * (pace.now_us - pace.since_us) / moved).to_integral_value(ROUND_CEILING)
    at = pace.now_us + int(after)
    return at if at <= pace.period_end_us else None


def falls_below_at(threshold: Decimal, pace: Pace) -> int | None:
    """With no more usage and the window's start where it is, the first microsecond at which the
    projection is below `threshold`; None if it is below now, or never is within the period
    (spend has reached it, or has no pace to fall from)."""
    moved = pace.spend_now - pace.spend_before
    left = threshold - pace.spend_now
    if left <= 0 or moved <= 0 or projected_spend(pace) < threshold:
        return None
    # spend + moved * (end - t) / (t - since) = threshold  <=>  t = (moved * end + left * since) / (moved + left)
    with localcontext() as exact:
        exact.prec = 100
        crossing = (moved * pace.period_end_us + left * pace.since_us) / (moved + left)
    at = int(crossing) + 1  # the first microsecond past it (the projection is then below)
    return at if at < pace.period_end_us else None


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
