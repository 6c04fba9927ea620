"""Billing periods of a contract's usage statement schedule.

Periods are [start, end) in UTC microseconds. The anchor decides where periods begin:
FIRST_OF_MONTH (the default) starts periods on the first of the month at 00:00 UTC, so the
first period runs from the contract's start to the next first of the month; CONTRACT_START
starts them at the contract's start; CUSTOM_DATE at `billing_anchor_date`. Every period is
the anchor plus a whole number of steps (months, quarters, years or weeks), computed from the
anchor each time so that a 31st anchor gives the 28th/29th in February and the 31st again in
March. Periods are clipped to the contract's start and end.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache

from meterline.domain.periods import Period
from meterline.domain.timeutil import US_PER_DAY, from_us, to_us

WEEK_US = 7 * US_PER_DAY


class Frequency(StrEnum):
    MONTHLY = "MONTHLY"
    QUARTERLY = "QUARTERLY"
    ANNUAL = "ANNUAL"
    WEEKLY = "WEEKLY"


class AnchorDay(StrEnum):
    FIRST_OF_MONTH = "FIRST_OF_MONTH"
    CONTRACT_START = "CONTRACT_START"
    CUSTOM_DATE = "CUSTOM_DATE"


_MONTHS = {Frequency.MONTHLY: 1, Frequency.QUARTERLY: 3, Frequency.ANNUAL: 12}


# The last raw period computed per (frequency, anchor); a plain dict: its reads and writes are
# atomic, and a stale entry is only a miss.
_LAST_PERIOD: dict[tuple[Frequency, int], tuple[int, int]] = {}
_LAST_PERIOD_KEPT = 100_000


@dataclass(frozen=True, slots=True)
class Schedule:
    frequency: Frequency
    anchor_us: int  # any instant at which a period begins
    contract_start_us: int
    contract_end_us: int | None

    def period_containing(self, us: int) -> Period | None:
        """The (clipped) billing period holding `us`, or None outside the contract."""
        if us < self.contract_start_us or (self.contract_end_us is not None and us >= self.contract_end_us):
            return None
        start, end = self._raw_period(us)
        clipped_end = end if self.contract_end_us is None else min(end, self.contract_end_us)
        return Period(max(start, self.contract_start_us), clipped_end)

    def next_bound(self, us: int) -> int | None:
        """The first instant after `us` at which a period of the contract starts or ends (None:
        the contract has ended by then)."""
        if us < self.contract_start_us:
            return self.contract_start_us
        current = self.period_containing(us)
        return None if current is None else current.end_us

    def unclipped_period(self, us: int) -> Period:
        """The whole period of the cadence holding `us`, as if the contract had no start or end."""
        return Period(*self._raw_period(us))

    def periods_between(self, start_us: int, end_us: int) -> list[Period]:
        """Every period overlapping [start_us, end_us), in order."""
        result: list[Period] = []
        cursor = max(start_us, self.contract_start_us)
        while cursor < end_us:
            period = self.period_containing(cursor)
            if period is None:
                break
            result.append(period)
            cursor = period.end_us
        return result

    def _raw_period(self, us: int) -> tuple[int, int]:
        # Most calls ask for the period they asked for last time (every customer on the same
        # schedule, a batch at a time): calendar arithmetic only when `us` leaves that period.
        key = (self.frequency, self.anchor_us)
        last = _LAST_PERIOD.get(key)
        if last is not None and last[0] <= us < last[1]:
            return last
        if len(_LAST_PERIOD) >= _LAST_PERIOD_KEPT:
            _LAST_PERIOD.clear()
        period = _LAST_PERIOD[key] = self._compute_raw_period(us)
        return period

    def _compute_raw_period(self, us: int) -> tuple[int, int]:
        if self.frequency is Frequency.WEEKLY:
            index = (us - self.anchor_us) // WEEK_US
            start = self.anchor_us + index * WEEK_US
            return start, start + WEEK_US
        months = _MONTHS[self.frequency]
        anchor = from_us(self.anchor_us)
        moment = from_us(us)
        index = ((moment.year - anchor.year) * 12 + moment.month - anchor.month) // months
        start = to_us(add_months(anchor, index * months))
        if start > us:
            index -= 1
        elif to_us(add_months(anchor, (index + 1) * months)) <= us:
            index += 1
        return to_us(add_months(anchor, index * months)), to_us(add_months(anchor, (index + 1) * months))


# A contract's schedule is asked for on every measurement of its customer; schedules are
# immutable values of these arguments, so one per distinct contract shape is kept.
@lru_cache(maxsize=65_536)
def schedule_for(
    frequency: Frequency,
    day: AnchorDay,
    contract_start_us: int,
    contract_end_us: int | None,
    billing_anchor_us: int | None = None,
) -> Schedule:
    if day is AnchorDay.CUSTOM_DATE:
        if billing_anchor_us is None:
            raise ValueError("billing_anchor_date is required when day is CUSTOM_DATE")
        anchor = billing_anchor_us
    elif day is AnchorDay.CONTRACT_START or frequency is Frequency.WEEKLY:
        anchor = contract_start_us
    else:
        start = from_us(contract_start_us)
        anchor = to_us(datetime(start.year, start.month, 1, tzinfo=UTC))
    return Schedule(frequency, anchor, contract_start_us, contract_end_us)


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus whole months, the day clipped to the month's last (Jan 31 + 1 month: Feb 28)."""
    total = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(total, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)
