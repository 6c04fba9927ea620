"""Recurring schedules expanded into items: examples by hand, invariants by hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.errors import InvalidInput
from meterline.domain.recurring_schedules import (
    RECURRING_MONTHS,
    Distribution,
    RecurringSchedule,
    recurring_items,
    split,
)
from meterline.domain.timeutil import US_PER_DAY, to_us

D = Decimal
THIS_YEAR = datetime.now(UTC).year


def schedule(
    distribution: str, start: datetime, end: datetime, price: str, quantity: str = "1"
) -> RecurringSchedule:
    return RecurringSchedule(
        Distribution(distribution), "MONTHLY", to_us(start), to_us(end), D(price), D(quantity)
    )


def test_divided_rounded_gives_whole_cents_and_the_rest_to_the_last() -> None:
    items = recurring_items(
        schedule(
            "DIVIDED_ROUNDED",
            datetime(THIS_YEAR, 1, 1, tzinfo=UTC),
            datetime(THIS_YEAR, 4, 1, tzinfo=UTC),
            "200",
        ),
        "x",
    )
    assert [i.amount for i in items] == [D(67), D(67), D(66)]
    assert all(i.quantity == 1 and i.unit_price == i.amount for i in items)


def test_each_bills_the_whole_amount_every_step_from_the_start() -> None:
    start = datetime(THIS_YEAR, 1, 31, tzinfo=UTC)
    items = recurring_items(schedule("EACH", start, datetime(THIS_YEAR, 4, 1, tzinfo=UTC), "12.5", "4"), "x")
    february_end = 29 if THIS_YEAR % 4 == 0 and (THIS_YEAR % 100 != 0 or THIS_YEAR % 400 == 0) else 28
    assert [i.timestamp_us for i in items] == [
        to_us(start),
        to_us(datetime(THIS_YEAR, 2, february_end, tzinfo=UTC)),
        to_us(datetime(THIS_YEAR, 3, 31, tzinfo=UTC)),  # counted from the start: the 31st again
    ]
    assert {(i.unit_price, i.quantity, i.amount) for i in items} == {(D("12.5"), D(4), D(50))}


def test_divided_is_exact_when_the_division_ends() -> None:
    items = recurring_items(
        schedule(
            "DIVIDED", datetime(THIS_YEAR, 1, 1, tzinfo=UTC), datetime(THIS_YEAR, 5, 1, tzinfo=UTC), "10"
        ),
        "x",
    )
    assert [i.amount for i in items] == [D("2.5")] * 4


def test_a_schedule_ending_before_it_starts_is_refused() -> None:
    start = datetime(THIS_YEAR, 3, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput, match=r"^x\.ending_before: must be after starting_at$"):
        recurring_items(schedule("EACH", start, start, "1"), "x")


@given(
    total=st.decimals(min_value=D("0.01"), max_value=D(10) ** 9, places=4),
    count=st.integers(min_value=1, max_value=400),
    rounded=st.booleans(),
)
def test_shares_add_up_to_the_total_exactly(total: Decimal, count: int, rounded: bool) -> None:
    shares = split(total, count, rounded=rounded)
    assert len(shares) == count
    assert sum(shares, D(0)) == total
    assert len(set(shares[:-1])) <= 1
    if rounded:
        assert all(s == s.to_integral_value() for s in shares[:-1])


@given(
    start_day=st.integers(min_value=0, max_value=3000),
    span_days=st.integers(min_value=1, max_value=2000),
    frequency=st.sampled_from(sorted(RECURRING_MONTHS)),
    distribution=st.sampled_from(list(Distribution)),
    price=st.decimals(min_value=D("0.01"), max_value=D(10) ** 6, places=2),
)
def test_items_lie_in_the_span_and_bill_what_the_distribution_says(
    start_day: int, span_days: int, frequency: str, distribution: Distribution, price: Decimal
) -> None:
    start = to_us(datetime(THIS_YEAR, 1, 1, tzinfo=UTC)) + start_day * US_PER_DAY
    end = start + span_days * US_PER_DAY
    items = recurring_items(RecurringSchedule(distribution, frequency, start, end, price, D(1)), "x")
    dates = [i.timestamp_us for i in items]
    assert dates[0] == start and dates[-1] < end
    assert all(a < b for a, b in pairwise(dates))
    # Steps of a month are 28 to 31 days: no step skipped, none past the end.
    months = RECURRING_MONTHS[frequency]
    assert all(28 * months * US_PER_DAY <= b - a <= 31 * months * US_PER_DAY for a, b in pairwise(dates))
    assert dates[-1] + 31 * months * US_PER_DAY >= end  # the step after the last would be past it
    expected = price * len(items) if distribution is Distribution.EACH else price
    assert sum((i.amount for i in items), D(0)) == expected
