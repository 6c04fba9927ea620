"""Recurring commits and credits: one commit (or credit) per period, its amount prorated where a
period is cut short.

A recurring commit grants `amount` for each period of its cadence from `starting_at` to its end
(its own `ending_before`, else the contract's). The cadence is its `recurrence_frequency`,
aligned with its own `starting_at`, or, when none is given, the contract's usage statement
periods. A period cut by the start or the end is prorated when `proration` says so: the amount
is multiplied by the share of the whole period's time that the cut period keeps, then rounded
(`Rounding`, HALF_UP to hundredths of the pricing unit unless the request says otherwise).
Each generated commit is accessible from its period's start for `duration_periods` periods,
never past the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Protocol

from meterline.domain.billing_periods import Frequency, Schedule
from meterline.domain.periods import Period
from meterline.domain.timeutil import US_PER_DAY

DAILY = "DAILY"
FIRST = "FIRST"
LAST = "LAST"
FIRST_AND_LAST = "FIRST_AND_LAST"
NONE = "NONE"
MAX_PERIODS = 1000  # commits one recurring commit may create
_ROUNDING_METHODS = {"HALF_UP": ROUND_HALF_UP, "FLOOR": ROUND_FLOOR, "CEILING": ROUND_CEILING}
_EXACT = Context(prec=100)


@dataclass(frozen=True, slots=True)
class Rounding:
    decimal_places: int  # negative: to tens, hundreds, ...
    method: str = "HALF_UP"  # HALF_UP, FLOOR or CEILING

    def apply(self, amount: Decimal) -> Decimal:
        with localcontext(_EXACT):
            return amount.quantize(Decimal(1).scaleb(-self.decimal_places), _ROUNDING_METHODS[self.method])


DEFAULT_ROUNDING = Rounding(2)


class Cadence(Protocol):
    def unclipped_period(self, us: int) -> Period: ...


@dataclass(frozen=True, slots=True)
class _Daily:
    anchor_us: int

    def unclipped_period(self, us: int) -> Period:
        start = self.anchor_us + (us - self.anchor_us) // US_PER_DAY * US_PER_DAY
        return Period(start, start + US_PER_DAY)


def cadence(frequency: str | None, starting_at_us: int, statement: Schedule) -> Cadence:
    """Periods aligned with the recurring commit's start, or the contract's statement periods."""
    if frequency is None:
        return statement
    if frequency == DAILY:
        return _Daily(starting_at_us)
    return Schedule(Frequency(frequency), starting_at_us, starting_at_us, None)


@dataclass(frozen=True, slots=True)
class RecurringTerms:
    amount: Decimal  # granted for each whole period
    starting_at_us: int
    ending_before_us: int  # the recurring commit's own end, else its contract's
    duration_periods: int = 1
    proration: str = FIRST_AND_LAST
    rounding: Rounding = DEFAULT_ROUNDING


@dataclass(frozen=True, slots=True)
class RecurringGrant:
    """One generated commit: `amount` accessible over [starting_at, ending_before)."""

    amount: Decimal
    starting_at_us: int
    ending_before_us: int


def periods(cadence: Cadence, start_us: int, end_us: int) -> list[tuple[Period, Period]]:
    """Each period of the cadence over [start_us, end_us): (the part kept, the whole period)."""
    found: list[tuple[Period, Period]] = []
    cursor = start_us
    while cursor < end_us and len(found) <= MAX_PERIODS:
        whole = cadence.unclipped_period(cursor)
        found.append((Period(cursor, min(whole.end_us, end_us)), whole))
        cursor = whole.end_us
    return found


def prorated(
    amount: Decimal, kept: Period, whole: Period, *, first: bool, last: bool, terms: RecurringTerms
) -> Decimal:
    """The amount of one period: whole unless a cut this proration covers shortened it."""
    cut_us = 0
    if first and terms.proration in (FIRST, FIRST_AND_LAST):
        cut_us += kept.start_us - whole.start_us
    if last and terms.proration in (LAST, FIRST_AND_LAST):
        cut_us += whole.end_us - kept.end_us
    if cut_us == 0:
        return amount
    length_us = whole.end_us - whole.start_us
    with localcontext(_EXACT):
        return terms.rounding.apply(amount * Decimal(length_us - cut_us) / Decimal(length_us))


def grants(terms: RecurringTerms, cadence: Cadence) -> list[RecurringGrant]:
    """The commits a recurring commit creates, in order (at most MAX_PERIODS + 1: the caller
    refuses more than MAX_PERIODS)."""
    found = periods(cadence, terms.starting_at_us, terms.ending_before_us)
    result: list[RecurringGrant] = []
    for index, (kept, whole) in enumerate(found):
        amount = prorated(
            terms.amount, kept, whole, first=index == 0, last=index == len(found) - 1, terms=terms
        )
        through = found[min(index + terms.duration_periods, len(found)) - 1][0]
        result.append(RecurringGrant(amount, kept.start_us, through.end_us))
    return result
