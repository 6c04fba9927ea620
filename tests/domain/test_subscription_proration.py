"""What a billing period owes for a subscription: proration by time, quantity changes, ADVANCE and
ARREARS (domain/subscriptions.py), checked by hand and as properties over any quantity history."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.billing_periods import AnchorDay, Frequency, schedule_for
from meterline.domain.errors import InvalidInput
from meterline.domain.subscriptions import (
    ADVANCE,
    ARREARS,
    BILL_IMMEDIATELY,
    PeriodCharge,
    ProrationRounding,
    QuantityChange,
    SeatChange,
    SubscriptionTerms,
    immediate_charges,
    invoice_charges,
    period_charges,
    quantity_schedule,
    seat_schedule,
)
from meterline.domain.timeutil import US_PER_DAY, month_bounds, now_us

D = Decimal
PERIOD = 30 * US_PER_DAY  # a 30-day billing period starting at 0
PRICE = D(3000)  # per unit and full period


def subscription(
    schedule: str,
    changes: list[QuantityChange],
    *,
    prorated: bool = True,
    start: int = 0,
    end: int | None = None,
) -> SubscriptionTerms:
    return SubscriptionTerms(
        id="sub",
        product_id="product",
        billing_frequency="MONTHLY",
        collection_schedule=schedule,
        is_prorated=prorated,
        starting_at_us=start,
        ending_before_us=end,
        changes=tuple(changes),
    )


def billed(sub: SubscriptionTerms, start: int = 0, end: int = PERIOD) -> Decimal:
    return sum((c.amount(c.quantity * PRICE, None) for c in period_charges(sub, start, end, PERIOD)), D(0))


def day(n: int) -> int:
    return n * US_PER_DAY


def test_arrears_prorates_each_stretch_of_constant_quantity() -> None:
    # 2 seats for 10 days, 5 for 20: 2 x 3000 x 1/3 + 5 x 3000 x 2/3 = 2000 + 10000.
    sub = subscription(ARREARS, [QuantityChange(0, D(2)), QuantityChange(day(10), D(5))])
    charges = period_charges(sub, 0, PERIOD, PERIOD)
    assert [(c.start_us, c.end_us, c.quantity, c.fraction) for c in charges] == [
        (0, day(10), D(2), Fraction(1, 3)),
        (day(10), PERIOD, D(5), Fraction(2, 3)),
    ]
    assert billed(sub) == D(12000)


def test_arrears_not_prorated_bills_the_whole_period_at_the_highest_quantity() -> None:
    sub = subscription(ARREARS, [QuantityChange(0, D(2)), QuantityChange(day(10), D(5))], prorated=False)
    assert billed(sub) == D(15000)


def test_advance_bills_the_start_quantity_then_increases_for_the_rest_of_the_period() -> None:
    # 4 seats from the start (12000), +2 on day 15 for half the period (3000), then down to 3 on
    # day 20 (nothing back), then up to 7 on day 24: 1 above the 6 billed, for 6 days of 30 (600).
    sub = subscription(
        ADVANCE,
        [
            QuantityChange(0, D(4)),
            QuantityChange(day(15), delta=D(2)),
            QuantityChange(day(20), D(3)),
            QuantityChange(day(24), D(7)),
        ],
    )
    charges = period_charges(sub, 0, PERIOD, PERIOD)
    assert [(c.start_us, c.quantity, c.fraction) for c in charges] == [
        (0, D(4), Fraction(1)),
        (day(15), D(2), Fraction(1, 2)),
        (day(24), D(1), Fraction(1, 5)),
    ]
    assert billed(sub) == D(15600)


def test_a_subscription_starting_mid_period_is_prorated_against_the_full_period() -> None:
    # The contract's first period is clipped to [day 10, 30), but a full period is 30 days.
    sub = subscription(ADVANCE, [QuantityChange(day(10), D(3))], start=day(10))
    assert billed(sub, day(10), PERIOD) == D(6000)
    assert billed(subscription(ADVANCE, [QuantityChange(day(10), D(3))], start=day(10), prorated=False)) == D(
        9000
    )


def test_a_subscription_ending_mid_period_bills_until_its_end() -> None:
    sub = subscription(ARREARS, [QuantityChange(0, D(1))], end=day(6))
    assert billed(sub) == D(600)
    assert period_charges(sub, PERIOD, 2 * PERIOD, PERIOD) == []


def test_changes_at_one_instant_apply_in_the_order_they_were_made() -> None:
    changes = [QuantityChange(0, D(1)), QuantityChange(day(5), D(12)), QuantityChange(day(5), delta=D(-1))]
    assert quantity_schedule(changes) == [(0, D(1)), (day(5), D(11))]
    # A delta made later at an earlier instant does not undo a quantity set after it.
    later = [*changes, QuantityChange(day(2), delta=D(3))]
    assert quantity_schedule(later) == [(0, D(1)), (day(2), D(4)), (day(5), D(11))]


def test_a_change_leaving_a_negative_quantity_is_refused() -> None:
    with pytest.raises(InvalidInput, match="must not be negative"):
        quantity_schedule([QuantityChange(0, D(1)), QuantityChange(day(3), delta=D(-2))])


def test_rounding_applies_to_prorated_charges_only() -> None:
    third = PeriodCharge("sub", 0, day(10), D(1), Fraction(1, 3), 0)
    assert third.amount(D(1000), ProrationRounding(0, "HALF_UP")) == D(333)
    assert third.amount(D(1000), ProrationRounding(0, "CEILING")) == D(334)
    assert third.amount(D(1000), ProrationRounding(-2, "FLOOR")) == D("3E+2")
    assert third.amount(D(1000), None) == D("333.333333333333")
    whole = PeriodCharge("sub", 0, PERIOD, D(1), Fraction(1), 0)
    assert whole.amount(D("1000.555"), ProrationRounding(0, "HALF_UP")) == D("1000.555")


# Properties over any quantity history.

quantities = st.integers(min_value=0, max_value=50).map(D)
offsets = st.integers(min_value=0, max_value=PERIOD - 1)
histories = st.lists(st.tuples(offsets, quantities), max_size=6)


def changes_of(initial: Decimal, history: list[tuple[int, Decimal]]) -> list[QuantityChange]:
    return [QuantityChange(0, initial), *(QuantityChange(at, q) for at, q in history)]


def quantity_time(sub: SubscriptionTerms) -> Fraction:
    """The integral of the quantity over the period, in full periods (what ARREARS bills per unit)."""
    schedule = sub.quantity_schedule()
    bounds = [at for at, _q in schedule] + [PERIOD]
    return sum(
        (Fraction(int(q)) * Fraction(bounds[i + 1] - at, PERIOD) for i, (at, q) in enumerate(schedule)),
        Fraction(0),
    )


@given(quantities, histories)
def test_arrears_prorated_bills_quantity_times_time_exactly(
    initial: Decimal, history: list[tuple[int, Decimal]]
) -> None:
    sub = subscription(ARREARS, changes_of(initial, history))
    charges = period_charges(sub, 0, PERIOD, PERIOD)
    assert sum((c.fraction * Fraction(c.quantity) for c in charges), Fraction(0)) == quantity_time(sub)
    # Lines are consecutive, within the period, never of zero quantity.
    assert all(0 <= c.start_us < c.end_us <= PERIOD and c.quantity > 0 for c in charges)
    assert all(a.end_us <= b.start_us for a, b in pairwise(charges))


@given(quantities, histories)
def test_advance_bills_at_least_arrears_and_at_most_the_highest_quantity(
    initial: Decimal, history: list[tuple[int, Decimal]]
) -> None:
    changes = changes_of(initial, history)
    advance = billed(subscription(ADVANCE, changes))
    arrears = billed(subscription(ARREARS, changes))
    highest = max(q for _at, q in quantity_schedule(changes))
    start_quantity = quantity_schedule(changes)[0][1]
    # Advance never gives back what was paid at the start, nor bills a unit twice.
    assert advance >= start_quantity * PRICE
    assert arrears - D("1E-9") <= advance <= highest * PRICE


@given(quantities, histories, st.integers(min_value=1, max_value=PERIOD - 1))
def test_splitting_a_period_does_not_change_arrears(
    initial: Decimal, history: list[tuple[int, Decimal]], cut: int
) -> None:
    """A period billed in two parts (a contract starting or ending inside it) bills the same in
    total as the whole, exactly, before rounding."""
    sub = subscription(ARREARS, changes_of(initial, history))

    def exact(start: int, end: int) -> Fraction:
        return sum(
            (c.fraction * Fraction(c.quantity) for c in period_charges(sub, start, end, PERIOD)), Fraction(0)
        )

    assert exact(0, cut) + exact(cut, PERIOD) == exact(0, PERIOD)


@given(quantities, histories)
def test_not_prorated_bills_a_whole_number_of_periods(
    initial: Decimal, history: list[tuple[int, Decimal]]
) -> None:
    changes = changes_of(initial, history)
    for schedule in (ADVANCE, ARREARS):
        charges = period_charges(subscription(schedule, changes, prorated=False), 0, PERIOD, PERIOD)
        assert all(c.fraction == 1 and not c.is_prorated for c in charges)


# A subscription billed on the invoices of another frequency.


def year_of_months() -> list[tuple[int, int]]:
    """Monthly invoices over twelve months from the start of the current month."""
    start, _end = month_bounds(now_us())
    months = schedule_for(Frequency.MONTHLY, AnchorDay.CONTRACT_START, start, None)
    return [(p.start_us, p.end_us) for p in months.periods_between(start, start + 365 * US_PER_DAY)][:12]


def test_a_quarterly_subscription_is_billed_on_the_first_month_in_advance_and_the_third_in_arrears() -> None:
    invoices = year_of_months()
    start = invoices[0][0]
    quarters = schedule_for(Frequency.QUARTERLY, AnchorDay.CONTRACT_START, start, None)
    for schedule, billed_on in ((ADVANCE, 0), (ARREARS, 2)):
        sub = subscription(schedule, [QuantityChange(start, D(2))], start=start)
        found = [len(invoice_charges(sub, quarters, s, e)) for s, e in invoices[:3]]
        assert found == [1 if i == billed_on else 0 for i in range(3)], schedule
        [charge] = invoice_charges(sub, quarters, *invoices[billed_on])
        assert (charge.start_us, charge.end_us, charge.quantity, charge.fraction) == (
            start,
            invoices[2][1],
            D(2),
            Fraction(1),
        )


@given(
    st.sampled_from([ADVANCE, ARREARS]),
    st.sampled_from([Frequency.QUARTERLY, Frequency.ANNUAL, Frequency.MONTHLY, Frequency.WEEKLY]),
    quantities,
    st.lists(st.tuples(st.integers(min_value=0, max_value=364 * US_PER_DAY), quantities), max_size=5),
)
def test_every_charge_is_billed_on_exactly_one_invoice(
    schedule: str, frequency: Frequency, initial: Decimal, history: list[tuple[int, Decimal]]
) -> None:
    """Whatever the subscription's frequency, the monthly invoices of a year bill each of its
    periods' charges once: none twice, none missed."""
    invoices = year_of_months()
    start, end = invoices[0][0], invoices[-1][1]
    own = schedule_for(frequency, AnchorDay.CONTRACT_START, start, end)
    sub = subscription(
        schedule,
        [QuantityChange(start, initial), *(QuantityChange(start + at, q) for at, q in history)],
        start=start,
    )
    on_invoices = [c for s, e in invoices for c in invoice_charges(sub, own, s, e)]
    expected = []
    for period in own.periods_between(start, end):
        full = own.unclipped_period(period.start_us)
        expected += period_charges(sub, period.start_us, period.end_us, full.end_us - full.start_us)
    assert sorted(on_invoices, key=repr) == sorted(expected, key=repr)


@given(
    st.sampled_from([Frequency.QUARTERLY, Frequency.MONTHLY, Frequency.WEEKLY]),
    quantities,
    st.lists(st.tuples(st.integers(min_value=0, max_value=364 * US_PER_DAY), quantities), max_size=5),
)
def test_bill_immediately_moves_increases_to_invoices_of_their_own_and_changes_no_amount(
    frequency: Frequency, initial: Decimal, history: list[tuple[int, Decimal]]
) -> None:
    """BILL_IMMEDIATELY bills the same charges as BILL_ON_NEXT_COLLECTION_DATE, each once: the
    increases at their own instant, on no usage invoice; the rest on the usage invoices."""
    invoices = year_of_months()
    start, end = invoices[0][0], invoices[-1][1]
    own = schedule_for(frequency, AnchorDay.CONTRACT_START, start, end)
    later = subscription(
        ADVANCE,
        [QuantityChange(start, initial), *(QuantityChange(start + at, q) for at, q in history)],
        start=start,
    )
    at_once = replace(later, invoice_behavior=BILL_IMMEDIATELY)
    assert immediate_charges(later, own) == []
    immediate = immediate_charges(at_once, own)
    assert all(c.billed_at_us == c.start_us and c.own_invoice for c in immediate)
    assert len({c.start_us for c in immediate}) == len(immediate)  # one invoice per increase
    on_invoices = [c for s, e in invoices for c in invoice_charges(at_once, own, s, e)]
    assert not any(c.own_invoice for c in on_invoices)
    billed_later = [c for s, e in invoices for c in invoice_charges(later, own, s, e)]

    def amounts(charges: list[PeriodCharge]) -> list[tuple[int, int, Decimal, Fraction]]:
        return sorted((c.start_us, c.end_us, c.quantity, c.fraction) for c in charges)

    assert amounts(immediate + on_invoices) == amounts(billed_later)


# SEAT_BASED: the quantity is the seats.


def test_new_seat_ids_fill_unassigned_seats_before_adding_seats() -> None:
    changes = [
        SeatChange(0, add_seat_ids=("ann",), add_unassigned=2),
        SeatChange(day(3), add_seat_ids=("bob", "cid", "dee")),  # two fill the unassigned, one is new
        SeatChange(day(5), remove_seat_ids=("ann", "zed")),  # zed was never assigned: nothing
        SeatChange(day(7), add_unassigned=1),
        SeatChange(day(7), remove_unassigned=4),  # only the one there is
    ]
    assert [
        (s.starting_at_us, sorted(s.assigned), s.unassigned, s.quantity) for s in seat_schedule(changes)
    ] == [
        (0, ["ann"], 2, 3),
        (day(3), ["ann", "bob", "cid", "dee"], 0, 4),
        (day(5), ["bob", "cid", "dee"], 0, 3),
        (day(7), ["bob", "cid", "dee"], 0, 3),
    ]
    sub = replace(subscription(ARREARS, []), seat_changes=tuple(changes))
    assert sub.quantity_schedule() == [(0, D(3)), (day(3), D(4)), (day(5), D(3))]


seat_ids = st.sampled_from(["a", "b", "c", "d"])
seat_changes = st.lists(
    st.builds(
        SeatChange,
        offsets,
        st.lists(seat_ids, max_size=3).map(tuple),
        st.lists(seat_ids, max_size=3).map(tuple),
        st.integers(min_value=0, max_value=3),
        st.integers(min_value=0, max_value=3),
    ),
    max_size=8,
)


@given(seat_changes)
def test_seats_never_go_negative_and_a_seat_is_assigned_once(changes: list[SeatChange]) -> None:
    for seats in seat_schedule(changes):
        assert seats.unassigned >= 0
        assert seats.quantity == len(seats.assigned) + seats.unassigned
