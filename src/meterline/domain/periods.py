"""Billing periods: which period an event's timestamp falls into.

Until a customer has a contract with its own usage statement schedule, a billing period is the
calendar month in UTC, which is Metronome's default (MONTHLY, FIRST_OF_MONTH).
"""

from __future__ import annotations

from dataclasses import dataclass

from meterline.domain.timeutil import month_bounds


@dataclass(frozen=True, slots=True)
class Period:
    start_us: int
    end_us: int

    def contains(self, us: int) -> bool:
        return self.start_us <= us < self.end_us


def default_period(us: int) -> Period:
    start, end = month_bounds(us)
    return Period(start, end)
