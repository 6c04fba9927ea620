"""Properties of the pooled allocation (`domain.seat_allocation`): what each period of a recurring
commit tied to a subscription grants, over any cadence, span, proration and quantity history."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from meterline.domain.recurring import Cadence, RecurringTerms, grants, spans
from meterline.domain.seat_allocation import (
    invoice_items,
    pooled_grants,
    quantity_at,
    subscription_quantities,
)
from meterline.domain.subscriptions import QuantityChange, SubscriptionTerms
from meterline.domain.timeutil import US_PER_HOUR
from tests.domain.test_recurring_properties import EPOCH_2030, recurring

Schedule = list[tuple[int, Decimal]]


@st.composite
def seated(draw: st.DrawFn) -> tuple[RecurringTerms, Cadence, Schedule]:
    """A recurring commit (amount per seat) and seat counts changing on hours over its span."""
    terms, cad = draw(recurring())
    assert terms.ending_before_us is not None
    hours = (terms.ending_before_us - terms.starting_at_us) // US_PER_HOUR
    offsets = draw(st.lists(st.integers(-24, hours), max_size=8, unique=True))
    schedule = [
        (terms.starting_at_us + o * US_PER_HOUR, Decimal(draw(st.integers(0, 50)))) for o in sorted(offsets)
    ]
    return terms, cad, schedule


@settings(deadline=None)  # rules, not timings: a loaded machine must not fail them
@given(seated(), st.booleans())
def test_each_period_starts_with_the_seats_it_starts_with_then_adds_only_rises(
    case: tuple[RecurringTerms, Cadence, Schedule], prorate_increases: bool
) -> None:
    terms, cad, schedule = case
    made = pooled_grants(terms, cad, schedule, prorate_increases=prorate_increases)
    periods = spans(terms, cad)
    assert len(made) == len(periods)
    for items, span in zip(made, periods, strict=True):
        seats = quantity_at(schedule, span.kept.start_us)
        # The first item is what a recurring commit of that many seats would grant for the period.
        [alike] = [
            g
            for g in grants(replace(terms, amount=terms.amount * seats), cad)
            if g.starting_at_us == span.kept.start_us
        ]
        assert (items[0].amount, items[0].starting_at_us, items[0].ending_before_us) == (
            alike.amount,
            alike.starting_at_us,
            alike.ending_before_us,
        )
        # Each later item is a rise above every count the period had before, within the period.
        highest = seats
        for item in items[1:]:
            assert span.kept.start_us < item.starting_at_us < span.kept.end_us
            assert item.ending_before_us == span.access_end_us
            now = quantity_at(schedule, item.starting_at_us)
            assert now > highest and item.amount >= 0
            if not prorate_increases:
                assert item.amount == terms.amount * (now - highest)
            else:
                assert item.amount <= terms.rounding.apply(terms.amount * (now - highest))
            highest = now


@settings(deadline=None)  # rules, not timings: a loaded machine must not fail them
@given(seated())
def test_without_proration_a_period_grants_for_the_most_seats_it_had(
    case: tuple[RecurringTerms, Cadence, Schedule],
) -> None:
    terms, cad, schedule = case
    terms = replace(terms, proration="NONE")
    for items, span in zip(
        pooled_grants(terms, cad, schedule, prorate_increases=False), spans(terms, cad), strict=True
    ):
        counts = [quantity_at(schedule, span.kept.start_us)]
        counts += [q for at, q in schedule if span.kept.start_us < at < span.kept.end_us]
        assert sum(i.amount for i in items) == terms.amount * max(counts)


def test_the_quantity_is_zero_from_the_subscription_s_end() -> None:
    start = EPOCH_2030
    ended = SubscriptionTerms(
        id="s",
        product_id="p",
        billing_frequency="MONTHLY",
        collection_schedule="ARREARS",
        is_prorated=True,
        starting_at_us=start,
        ending_before_us=start + 10 * US_PER_HOUR,
        changes=(
            QuantityChange(start, quantity=Decimal(3)),
            QuantityChange(start + 5 * US_PER_HOUR, quantity=Decimal(4)),
            QuantityChange(start + 20 * US_PER_HOUR, quantity=Decimal(9)),  # after its end: none
        ),
    )
    assert subscription_quantities(ended) == [
        (start, Decimal(3)),
        (start + 5 * US_PER_HOUR, Decimal(4)),
        (start + 10 * US_PER_HOUR, Decimal(0)),
    ]


@settings(deadline=None)
@given(seated(), st.booleans(), st.integers(1, 100_000))
def test_the_invoice_follows_the_quantity_as_the_access_does(
    case: tuple[RecurringTerms, Cadence, Schedule], prorate_increases: bool, cents: int
) -> None:
    """With an invoice unit price, each period bills what the access grants at that unit price and
    the invoice rounding: the same instants (those billing something), whole items as unit price x
    units, prorated ones as one unit of their amount."""
    terms, cad, schedule = case
    unit = Decimal(cents) / 100
    billed_terms = replace(terms, amount=unit, rounding=terms.invoice_rounding)
    access = pooled_grants(billed_terms, cad, schedule, prorate_increases=prorate_increases)
    for items, span in zip(access, spans(terms, cad), strict=True):
        billed = invoice_items(unit, terms, span, schedule, prorate_increases)
        assert [(i.timestamp_us, i.amount) for i in billed] == [
            (a.starting_at_us, a.amount) for a in items if a.amount > 0
        ]
        for item in billed:
            assert item.amount == item.unit_price * item.quantity
            assert item.quantity == 1 or item.unit_price == unit
