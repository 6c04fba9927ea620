"""Recurring commits and credits: one commit (or credit) per period, its amount prorated where a
period is cut short.

A recurring commit grants `amount` for each period of its cadence from `starting_at` to its end
(its own `ending_before`, else the contract's), or on and on when it has neither. The cadence is its `recurrence_frequency`,
aligned with its own `starting_at`, or, when none is given, the contract's usage statement
periods. A period cut by the start or the end is prorated when `proration` says so: the amount
is multiplied by the share of the whole period's time that the cut period keeps, then rounded
(`Rounding`, HALF_UP to hundredths of the pricing unit unless the request says otherwise).
Each generated commit is accessible from its period's start for `duration_periods` periods,
never past the end. A recurring commit with an `invoice_amount` bills each period's commit on the
period's start, that amount prorated by the same share (rounded by its own invoice rounding).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal, localcontext
from typing import TYPE_CHECKING, Protocol

from meterline.domain.billing_periods import Frequency, Schedule
from meterline.domain.periods import Period
from meterline.domain.timeutil import US_PER_DAY

if TYPE_CHECKING:  # commit_rules imports domain.contracts, which holds recurring commits
    from meterline.domain.commit_rules import Specifier

DAILY = "DAILY"
FIRST = "FIRST"
LAST = "LAST"
FIRST_AND_LAST = "FIRST_AND_LAST"
NONE = "NONE"
POOLED = "POOLED"  # subscription_config.allocation: one balance for all seats
INDIVIDUAL = "INDIVIDUAL"  # a balance per seat (`domain.individual_allocation`)
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
    ending_before_us: int | None  # the recurring commit's own end, else its contract's; None: none
    duration_periods: int = 1
    proration: str = FIRST_AND_LAST
    rounding: Rounding = DEFAULT_ROUNDING
    invoice_amount: Decimal | None = None  # billed for each whole period; None: not invoiced
    invoice_rounding: Rounding = DEFAULT_ROUNDING


@dataclass(frozen=True, slots=True)
class RecurringGrant:
    """One generated commit: `amount` accessible over [starting_at, ending_before), billed
    `invoice_amount` at its start (None: not invoiced)."""

    amount: Decimal
    starting_at_us: int
    ending_before_us: int
    invoice_amount: Decimal | None = None


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
    amount: Decimal,
    kept: Period,
    whole: Period,
    *,
    first: bool,
    last: bool,
    terms: RecurringTerms,
    rounding: Rounding | None = None,
) -> Decimal:
    """The amount of one period: whole unless a cut this proration covers shortened it, then
    rounded by `rounding` (the access rounding unless given)."""
    cut_us = 0
    if first and terms.proration in (FIRST, FIRST_AND_LAST):
        cut_us += kept.start_us - whole.start_us
    if last and terms.proration in (LAST, FIRST_AND_LAST):
        cut_us += whole.end_us - kept.end_us
    if cut_us == 0:
        return amount
    length_us = whole.end_us - whole.start_us
    with localcontext(_EXACT):
        share = amount * Decimal(length_us - cut_us) / Decimal(length_us)
        return (rounding or terms.rounding).apply(share)


@dataclass(frozen=True, slots=True)
class PeriodSpan:
    """One period of a recurring commit: the part kept, the whole period, whether it is the first
    or the last (where a cut is prorated), and when the commit it creates stops being accessible."""

    kept: Period
    whole: Period
    first: bool
    last: bool
    access_end_us: int


def spans(terms: RecurringTerms, cadence: Cadence, started_by_us: int | None = None) -> list[PeriodSpan]:
    """The periods a recurring commit creates a commit for, in order: every one when it has an end
    (at most MAX_PERIODS + 1: the caller refuses more than MAX_PERIODS), else those starting by
    `started_by_us` (an open-ended one never has a last period to prorate)."""
    end = terms.ending_before_us
    if end is not None:
        found = periods(cadence, terms.starting_at_us, end)
        count = len(found)
    else:
        assert started_by_us is not None
        found, count = _open_periods(cadence, terms.starting_at_us, started_by_us, terms.duration_periods)
    result: list[PeriodSpan] = []
    for index in range(count):
        kept, whole = found[index]
        through = found[min(index + terms.duration_periods, len(found)) - 1][0]
        last = end is not None and index == len(found) - 1
        result.append(PeriodSpan(kept, whole, index == 0, last, through.end_us))
    return result


def rest_of_period(
    amount: Decimal, at_us: int, span: PeriodSpan, terms: RecurringTerms, rounding: Rounding | None = None
) -> Decimal:
    """`amount` for the share of the period left from `at_us`: to the period's end, or to where
    the recurring commit ends when its proration cuts the last period short; rounded by
    `rounding` (the access rounding unless given)."""
    cut_last = span.last and terms.proration in (LAST, FIRST_AND_LAST)
    end_us = span.kept.end_us if cut_last else span.whole.end_us
    length_us = span.whole.end_us - span.whole.start_us
    with localcontext(_EXACT):
        return (rounding or terms.rounding).apply(amount * Decimal(end_us - at_us) / Decimal(length_us))


def grants(terms: RecurringTerms, cadence: Cadence, started_by_us: int | None = None) -> list[RecurringGrant]:
    """The commits a recurring commit creates (`spans`), each of `amount` and billed its
    `invoice_amount` (when it has one), both prorated where cut."""
    return [_grant(terms, s) for s in spans(terms, cadence, started_by_us)]


def _grant(terms: RecurringTerms, span: PeriodSpan) -> RecurringGrant:
    first, last = span.first, span.last
    amount = prorated(terms.amount, span.kept, span.whole, first=first, last=last, terms=terms)
    invoiced = terms.invoice_amount
    if invoiced is not None:
        rounding = terms.invoice_rounding
        invoiced = prorated(
            invoiced, span.kept, span.whole, first=first, last=last, terms=terms, rounding=rounding
        )
    return RecurringGrant(amount, span.kept.start_us, span.access_end_us, invoiced)


def _open_periods(
    cadence: Cadence, start_us: int, started_by_us: int, duration_periods: int
) -> tuple[list[tuple[Period, Period]], int]:
    """Periods from `start_us` on: those starting by `started_by_us` (their count), then as many
    more as the last of them needs for its access to last `duration_periods` periods."""
    found: list[tuple[Period, Period]] = []
    cursor = start_us
    count = 0
    while cursor <= started_by_us or len(found) < count + duration_periods - 1:
        whole = cadence.unclipped_period(cursor)
        found.append((Period(cursor, whole.end_us), whole))
        if cursor <= started_by_us:
            count += 1
        cursor = whole.end_us
    return found, count


def next_start(terms: RecurringTerms, cadence: Cadence, after_us: int) -> int | None:
    """When the first period starting after `after_us` starts (None: the recurring commit has ended)."""
    if after_us < terms.starting_at_us:
        start = terms.starting_at_us
    else:
        start = cadence.unclipped_period(after_us).end_us
    if terms.ending_before_us is not None and start >= terms.ending_before_us:
        return None
    return start


@dataclass(frozen=True, slots=True)
class SubscriptionLink:
    """`subscription_config`: each period grants `unit_price` per unit of the subscription's
    quantity, pooled in one balance (`domain.seat_allocation`), or per seat (INDIVIDUAL)."""

    subscription_id: str  # as given: the subscription's temporary_id until the contract is stored
    prorate_increases: bool  # apply_seat_increase_config.is_prorated
    allocation: str = POOLED


@dataclass(frozen=True, slots=True)
class InvoiceAmount:
    """What a recurring commit bills for each whole period (`unit_price` x `quantity`, or x the
    subscription's quantity: `domain.seat_allocation.invoice_items`)."""

    credit_type_id: str
    unit_price: Decimal
    quantity: Decimal | None  # None: tied to a subscription, whose quantity it is

    @property
    def amount(self) -> Decimal:
        """A whole period's amount (tied to a subscription: per unit of its quantity)."""
        return self.unit_price if self.quantity is None else self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class RecurringSpec:
    """A recurring commit (kind PREPAID) or recurring credit (kind CREDIT)."""

    kind: str
    product_id: str
    priority: Decimal
    starting_at_us: int
    unit_price: Decimal
    quantity: Decimal | None  # None: the subscription's (`subscription`)
    credit_type_id: str
    duration_periods: int = 1
    ending_before_us: int | None = None
    recurrence_frequency: str | None = None  # None: the contract's usage statement periods
    proration: str = "FIRST_AND_LAST"
    rounding: Rounding | None = None  # as given; None: DEFAULT_ROUNDING
    name: str | None = None
    description: str | None = None
    applicable_product_ids: tuple[str, ...] | None = None
    applicable_product_tags: tuple[str, ...] | None = None
    specifiers: tuple[Specifier, ...] | None = None
    subscription: SubscriptionLink | None = None  # set: `quantity` is the subscription's
    invoice: InvoiceAmount | None = None  # recurring commits only; None: not invoiced
    invoice_rounding: Rounding | None = None  # as given; None: DEFAULT_ROUNDING
    rollover_fraction: Decimal | None = None  # passed down to each period's commit
    id: str = ""  # given when the contract is stored

    @property
    def amount(self) -> Decimal:
        """Granted for a whole period; with a subscription, per unit of its quantity."""
        return self.unit_price if self.quantity is None else self.unit_price * self.quantity

    @property
    def rounding_in_force(self) -> Rounding:
        return self.rounding or DEFAULT_ROUNDING


def terms_of(spec: RecurringSpec, contract_end_us: int | None) -> RecurringTerms:
    """The terms a recurring commit grants by: it ends at its own end or its contract's, the
    earlier (None: it has neither, and never ends)."""
    ends = [e for e in (spec.ending_before_us, contract_end_us) if e is not None]
    return RecurringTerms(
        amount=spec.amount,
        starting_at_us=spec.starting_at_us,
        ending_before_us=min(ends, default=None),
        duration_periods=spec.duration_periods,
        proration=spec.proration,
        rounding=spec.rounding_in_force,
        invoice_amount=None if spec.invoice is None else spec.invoice.amount,
        invoice_rounding=spec.invoice_rounding or DEFAULT_ROUNDING,
    )
