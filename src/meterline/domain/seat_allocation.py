"""Recurring commits and credits tied to a subscription (`subscription_config`, POOLED): what each
period grants follows the subscription's quantity (INDIVIDUAL: `domain.individual_allocation`).

Each period's commit grants the amount per unit times the quantity at the period's start (that
amount prorated where the period is cut, as any recurring commit's). A later increase within the
period, above the highest quantity granted in it so far, adds the amount per unit for each unit
added, accessible from the increase on, as Metronome's SEAT_BASED_ADJUSTMENT does: in full, or,
with `apply_seat_increase_config.is_prorated`, for the share of the period left (rounded like a
prorated period). A decrease takes effect with the next period: nothing granted is taken back.
The quantity is 0 before the subscription starts and from its end on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from meterline.domain.billing_periods import Schedule
from meterline.domain.commit_rules import AccessItem
from meterline.domain.individual_allocation import individual_items, seat_timeline
from meterline.domain.recurring import (
    INDIVIDUAL,
    Cadence,
    PeriodSpan,
    RecurringSpec,
    RecurringTerms,
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
        _period_items(terms, span, schedule, prorate_increases)
        for span in spans(terms, cadence, started_by_us)
    ]


def _period_items(
    terms: RecurringTerms, span: PeriodSpan, schedule: QuantitySchedule, prorate_increases: bool
) -> tuple[AccessItem, ...]:
    start, end = span.kept.start_us, span.kept.end_us
    highest = quantity_at(schedule, start)
    base = prorated(
        terms.amount * highest, span.kept, span.whole, first=span.first, last=span.last, terms=terms
    )
    items = [AccessItem(base, start, span.access_end_us)]
    for at_us, quantity in schedule:
        if start < at_us < end and quantity > highest:
            added = terms.amount * (quantity - highest)
            if prorate_increases:
                added = rest_of_period(added, at_us, span, terms)
            items.append(AccessItem(added, at_us, span.access_end_us))
            highest = quantity
    return tuple(items)


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
    grants or the balances per seat (`domain.individual_allocation`; never invoiced: the API
    refuses `invoice_amount` with `subscription_config`)."""
    terms = terms_of(spec, contract_end_us)
    periods = cadence(spec.recurrence_frequency, spec.starting_at_us, statement)
    link = spec.subscription
    if link is None:
        return [
            PeriodGrant((AccessItem(g.amount, g.starting_at_us, g.ending_before_us),), g.invoice_amount)
            for g in grants(terms, periods, started_by_us)
        ]
    subscription = subscriptions[link.subscription_id]
    if link.allocation == INDIVIDUAL:
        timeline = seat_timeline(subscription)
        return [
            PeriodGrant(individual_items(terms, span, timeline, link.prorate_increases))
            for span in spans(terms, periods, started_by_us)
        ]
    schedule = subscription_quantities(subscription)
    pooled = pooled_grants(
        terms, periods, schedule, prorate_increases=link.prorate_increases, started_by_us=started_by_us
    )
    return [PeriodGrant(access) for access in pooled]
