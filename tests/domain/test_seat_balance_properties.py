"""Balances allocated per seat (INDIVIDUAL), for any seats, balances and usage: each seat's usage
draws its own balance only, no seat's balance goes below zero, what is drawn is for each seat the
lesser of its usage and its balance, and usage of a user that is no seat (or of no user) draws
nothing from them. And the grants: each seat gets one balance per period, from its start or its
first assignment, until its removal.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from meterline.domain.individual_allocation import SeatTimeline, individual_items
from meterline.domain.invoicing import CommitSegment, UsageLine, compute_invoice
from meterline.domain.periods import Period
from meterline.domain.products import ProductState
from meterline.domain.recurring import PeriodSpan, RecurringTerms
from meterline.domain.seats import SeatScope

D = Decimal
USD = "usd"
KEY = "user_id"
SEATS = ["ann", "bob", "cid"]
USERS = [*SEATS, "dan", None]  # dan is no seat; None: usage without the key
amounts = st.decimals(min_value=0, max_value=10**4, places=2, allow_nan=False, allow_infinity=False)


def usage(user: str | None, total: Decimal, grouped_by: str) -> UsageLine:
    """A line of the usage of `user`, the key a pricing or a presentation group key."""
    product = ProductState(
        id="p",
        type="USAGE",
        name="p",
        billable_metric_id="m",
        pricing_group_key=(KEY,) if grouped_by == "pricing" else (),
        presentation_group_key=(KEY,) if grouped_by == "presentation" else (),
    )
    values = {} if user is None else {KEY: user}
    pricing = values if grouped_by == "pricing" else {}
    presentation = values if grouped_by == "presentation" else {}
    return UsageLine(product, USD, total, D(1), total, 0, 10, pricing, presentation)


def seat_balance(seat_id: str, index: int, available: Decimal) -> CommitSegment:
    return CommitSegment(
        commit_id="c",
        segment_id=f"s{index}",
        kind="CREDIT",
        name="c",
        product_id="fixed",
        credit_type_id=USD,
        available=available,
        priority=D(1),
        is_free=True,
        starts_us=0,
        ends_us=10,
        seat=SeatScope(KEY, seat_id),
    )


@settings(deadline=None)  # rules, not timings: a loaded machine must not fail them
@given(
    balances=st.dictionaries(st.sampled_from(SEATS), amounts, max_size=3),
    used=st.lists(st.tuples(st.sampled_from(USERS), amounts), max_size=8),
    grouped_by=st.sampled_from(["pricing", "presentation"]),
)
def test_each_seat_draws_its_own_balance_and_no_more(
    balances: dict[str, Decimal], used: list[tuple[str | None, Decimal]], grouped_by: str
) -> None:
    lines = [usage(user, total, grouped_by) for user, total in used]
    segments = [seat_balance(seat, i, available) for i, (seat, available) in enumerate(balances.items())]
    result = compute_invoice(lines, segments, USD, {})
    drawn = {seat: D(0) for seat in balances}
    for applied in result.applied:
        assert applied.segment.seat is not None and applied.segment.seat.seat_id is not None
        drawn[applied.segment.seat.seat_id] += applied.amount
    for seat, available in balances.items():
        cost = sum((total for user, total in used if user == seat), D(0))
        assert D(0) <= drawn[seat] <= available  # never below zero
        assert drawn[seat] == min(cost, available)
    # What no seat used is billed whole: dan's usage and usage without the key draw nothing.
    strangers = sum((total for user, total in used if user not in balances), D(0))
    assert result.total == sum((total for _u, total in used), D(0)) - sum(drawn.values(), D(0))
    assert result.total >= strangers


HOUR = 3_600_000_000
DAY = 24 * HOUR
# The seats assigned from each of a few hours of the day on (one step per instant, as the seat
# schedule merges the changes made at one instant).
changes = st.dictionaries(st.integers(1, 40), st.frozensets(st.sampled_from(SEATS)), max_size=5).map(
    lambda steps: sorted(steps.items())
)


@settings(deadline=None)  # rules, not timings: a loaded machine must not fail them
@given(initial=st.frozensets(st.sampled_from(SEATS)), later=changes, prorate=st.booleans())
def test_each_seat_gets_one_balance_a_period_from_its_first_assignment_until_its_removal(
    initial: frozenset[str], later: list[tuple[int, frozenset[str]]], prorate: bool
) -> None:
    steps = ((0, initial), *((hours * HOUR, seats) for hours, seats in later))
    timeline = SeatTimeline(KEY, tuple(steps))
    day = Period(0, DAY)
    terms = RecurringTerms(amount=D(240), starting_at_us=0, ending_before_us=None)
    items = individual_items(terms, PeriodSpan(day, day, True, False, DAY), timeline, prorate)
    granted = [i for i in items if i.seat is not None and i.seat.seat_id is not None]
    ever = {seat for at_us, seats in steps if at_us < DAY for seat in seats}
    assert sorted(i.seat.seat_id for i in granted if i.seat is not None) == sorted(ever)  # once each
    assert items[0].starting_at_us == 0  # the period's commit starts with the period
    for item in granted:
        assert item.seat is not None and item.seat.seat_id in timeline.assigned_at(item.starting_at_us)
        assert item.starting_at_us < item.ending_before_us <= DAY
        left = item.ending_before_us  # removed then (or the period ends)
        assert left == DAY or item.seat.seat_id not in timeline.assigned_at(left)
        if item.starting_at_us == 0:
            assert item.amount == D(240)
        else:  # added within the day: in full, or for the hours left (10 cents an hour)
            hours_left = (DAY - item.starting_at_us) // HOUR
            assert item.amount == (D(10) * hours_left if prorate else D(240))
    if not initial:
        assert (items[0].amount, items[0].seat) == (D(0), SeatScope(KEY, None))  # the anchor draws nothing
