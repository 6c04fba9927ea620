"""A `recurring_schedule` (of a commit's invoice schedule or a scheduled charge) expanded into
schedule items, as Metronome shows it once created: one item per step, with ids.

Amount distribution: EACH bills the whole amount (unit_price x quantity) on every item; DIVIDED
splits it evenly over the items (exact when the division ends; otherwise to 10 decimal places,
the last item taking the rest, so the items always add up to the amount); DIVIDED_ROUNDED splits
it in whole units (cents of USD), the last item taking the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, Inexact, localcontext
from enum import StrEnum

from meterline.domain.billing_periods import add_months
from meterline.domain.commit_rules import InvoiceItem
from meterline.domain.errors import InvalidInput
from meterline.domain.timeutil import from_us, to_us

MAX_RECURRING_ITEMS = 1000  # the same bound as explicit schedule items
_EXACT = Context(prec=100)
_DIVIDED_STEP = Decimal("1e-10")
_WHOLE = Decimal(1)


class Distribution(StrEnum):
    DIVIDED = "DIVIDED"  # the amount split evenly over the items
    DIVIDED_ROUNDED = "DIVIDED_ROUNDED"  # split, each share a whole unit (cents), the last takes the rest
    EACH = "EACH"  # every item bills the whole amount


RECURRING_MONTHS = {"MONTHLY": 1, "QUARTERLY": 3, "SEMI_ANNUAL": 6, "ANNUAL": 12}


@dataclass(frozen=True, slots=True)
class RecurringSchedule:
    distribution: Distribution
    frequency: str  # a key of RECURRING_MONTHS
    starting_at_us: int
    ending_before_us: int
    unit_price: Decimal
    quantity: Decimal


def recurring_items(schedule: RecurringSchedule, where: str) -> tuple[InvoiceItem, ...]:
    """The items of a recurring schedule: one per step from starting_at (each counted from it, so
    a 31st start bills on the 28th/29th in February and the 31st again in March), before
    ending_before, with amounts as its distribution says."""
    if schedule.ending_before_us <= schedule.starting_at_us:
        raise InvalidInput(f"{where}.ending_before: must be after starting_at")
    dates = _dates(schedule, where)
    with localcontext(_EXACT):
        total = schedule.unit_price * schedule.quantity
    if schedule.distribution is Distribution.EACH:
        return tuple(InvoiceItem(d, total, schedule.unit_price, schedule.quantity) for d in dates)
    shares = split(total, len(dates), rounded=schedule.distribution is Distribution.DIVIDED_ROUNDED)
    return tuple(InvoiceItem(d, share, share, Decimal(1)) for d, share in zip(dates, shares, strict=True))


def split(total: Decimal, count: int, *, rounded: bool) -> list[Decimal]:
    """`total` in `count` shares that add up to it exactly: equal ones (whole units if `rounded`),
    the last taking what rounding left over."""
    with localcontext(_EXACT) as context:
        context.clear_flags()
        share = total / count
        if rounded:
            share = share.quantize(_WHOLE, rounding=ROUND_HALF_UP)
        elif context.flags[Inexact]:  # the division does not end
            share = share.quantize(_DIVIDED_STEP, rounding=ROUND_HALF_EVEN)
        return [share] * (count - 1) + [total - share * (count - 1)]


def _dates(schedule: RecurringSchedule, where: str) -> list[int]:
    start: datetime = from_us(schedule.starting_at_us)
    months = RECURRING_MONTHS[schedule.frequency]
    dates: list[int] = []
    while (moment := to_us(add_months(start, len(dates) * months))) < schedule.ending_before_us:
        if len(dates) == MAX_RECURRING_ITEMS:
            raise InvalidInput(f"{where}: would make more than {MAX_RECURRING_ITEMS} schedule items")
        dates.append(moment)
    return dates
