"""Recurring commits and credits tied to a subscription (`subscription_config`, POOLED): what each
period grants follows the subscription's quantity (INDIVIDUAL: `domain.individual_allocation`),
and so does what a recurring commit's `invoice_amount` bills for it, POOLED or INDIVIDUAL.

Each period's commit grants the amount per unit times the quantity at the period's start (that
amount prorated where the period is cut, as any recurring commit's). A later increase within the
period, above the highest quantity granted in it so far, adds the amount per unit for each unit
added, accessible from the increase on, as Metronome's SEAT_BASED_ADJUSTMENT does: in full, or,
with `apply_seat_increase_config.is_prorated`, for the share of the period left (rounded like a
prorated period). A decrease takes effect with the next period: nothing granted is taken back.
The quantity is 0 before the subscription starts and from its end on.

Its invoice follows the same quantities: `invoice_amount.unit_price` per unit at the period's start
(prorated where the period is cut, rounded by the invoice rounding), one item billed then, and one
item per increase, billed at the increase, for the units added (prorated like the access when
`is_prorated`). Whole amounts are billed as unit price x quantity, prorated ones as one unit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from meterline.domain.billing_periods import Schedule
from meterline.domain.commit_rules import AccessItem, InvoiceItem
from meterline.domain.individual_allocation import individual_items, seat_timeline
from meterline.domain.recurring import (
    INDIVIDUAL,
    Cadence,
    PeriodSpan,
    RecurringSpec,
    RecurringTerms,
    Rounding,
    cadence,
    grants,
    prorated,
    rest_of_period,
    spans,
    terms_of,
)
from meterline.domain.subscriptions import SubscriptionTerms

ZERO = Decimal(0)
QuantitySchedule = Sequence[tuple[int, Decimal]]  # (from, quantity), in time order


@dataclass(frozen=True, slots=True)
class PeriodGrant:
    """One period's commit: its access items (the period's start first, then one per increase)
    and what it bills at the period's start (None: not invoiced)."""

    access: tuple[AccessItem, ...]
    invoice_amount: Decimal | None = None
    invoice_items: tuple[InvoiceItem, ...] = ()  # tied to a subscription: its invoice, item by item

    @property
    def starting_at_us(self) -> int:
        return self.access[0].starting_at_us


def quantity_at(schedule: QuantitySchedule, at_us: int) -> Decimal:
    current = ZERO
    for starting_at_us, quantity in schedule:
        if starting_at_us > at_us:
            break
        current = quantity
    return current


def pooled_grants(
    terms: RecurringTerms,
    cadence: Cadence,
    schedule: QuantitySchedule,
    *,
    prorate_increases: bool,
    started_by_us: int | None = None,
) -> list[tuple[AccessItem, ...]]:
    """Each period's commit (`spans`) as its access items: the period's start first, then one per
    increase. `terms.amount` is the amount per unit of quantity."""
    return [
        tuple(
            AccessItem(step.amount, step.at_us, span.access_end_us)
            for step in _steps(terms.amount, terms, span, schedule, prorate_increases, terms.rounding)
        )
        for span in spans(terms, cadence, started_by_us)
    ]


@dataclass(frozen=True, slots=True)
class _Step:
    """What one period grants or bills at `at_us` for `units` of quantity (`whole`: not prorated)."""

    at_us: int
    amount: Decimal
    units: Decimal
    whole: bool


def _steps(
    unit_amount: Decimal,
    terms: RecurringTerms,
    span: PeriodSpan,
    schedule: QuantitySchedule,
    prorate_increases: bool,
    rounding: Rounding,
) -> list[_Step]:
    """The period's start (the quantity then), then each increase above the highest so far."""
    start, end = span.kept.start_us, span.kept.end_us
    highest = quantity_at(schedule, start)
    base = prorated(
        unit_amount * highest,
        span.kept,
        span.whole,
        first=span.first,
        last=span.last,
        terms=terms,
        rounding=rounding,
    )
    steps = [_Step(start, base, highest, base == unit_amount * highest)]
    for at_us, quantity in schedule:
        if start < at_us < end and quantity > highest:
            units = quantity - highest
            added = unit_amount * units
            if prorate_increases:
                added = rest_of_period(added, at_us, span, terms, rounding)
            steps.append(_Step(at_us, added, units, not prorate_increases))
            highest = quantity
    return steps


def invoice_items(
    unit_price: Decimal,
    terms: RecurringTerms,
    span: PeriodSpan,
    schedule: QuantitySchedule,
    prorate_increases: bool,
) -> tuple[InvoiceItem, ...]:
    """What the period's commit bills, following the quantity (items of nothing left out)."""
    return tuple(
        InvoiceItem(step.at_us, step.amount, unit_price, step.units)
        if step.whole
        else InvoiceItem(step.at_us, step.amount, step.amount, Decimal(1))
        for step in _steps(unit_price, terms, span, schedule, prorate_increases, terms.invoice_rounding)
        if step.amount > 0
    )


def subscription_quantities(subscription: SubscriptionTerms) -> list[tuple[int, Decimal]]:
    """The subscription's quantity schedule, 0 from its end on."""
    schedule = subscription.quantity_schedule()
    end = subscription.ending_before_us
    if end is None:
        return schedule
    return [*(entry for entry in schedule if entry[0] < end), (end, ZERO)]


def period_access(
    spec: RecurringSpec,
    contract_end_us: int | None,
    statement: Schedule,
    subscriptions: Mapping[str, SubscriptionTerms],
    started_by_us: int | None = None,
) -> list[PeriodGrant]:
    """Each commit the recurring commit creates (`spans`): one access item of its amount, billed
    its invoice amount, or, tied to a subscription (one of `subscriptions`, by id), the pooled
    grants or the balances per seat (`domain.individual_allocation`), billed by the quantity
    (`invoice_items`) when it has an invoice amount."""
    terms = terms_of(spec, contract_end_us)
    periods = cadence(spec.recurrence_frequency, spec.starting_at_us, statement)
    link = spec.subscription
    if link is None:
        return [
            PeriodGrant((AccessItem(g.amount, g.starting_at_us, g.ending_before_us),), g.invoice_amount)
            for g in grants(terms, periods, started_by_us)
        ]
    subscription = subscriptions[link.subscription_id]
    schedule = subscription_quantities(subscription)
    found = spans(terms, periods, started_by_us)
    if link.allocation == INDIVIDUAL:
        timeline = seat_timeline(subscription)
        access = [individual_items(terms, span, timeline, link.prorate_increases) for span in found]
    else:
        access = pooled_grants(
            terms, periods, schedule, prorate_increases=link.prorate_increases, started_by_us=started_by_us
        )
    if spec.invoice is None:
        return [PeriodGrant(items) for items in access]
    unit_price = spec.invoice.unit_price
    return [
        PeriodGrant(
            items, invoice_items=invoice_items(unit_price, terms, span, schedule, link.prorate_increases)
        )
        for items, span in zip(access, found, strict=True)
    ]
