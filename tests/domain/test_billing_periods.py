"""Billing periods of usage statement schedules: examples by hand, invariants by hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.billing_periods import AnchorDay, Frequency, schedule_for
from meterline.domain.timeutil import US_PER_HOUR, to_us


def us(*parts: int) -> int:
    return to_us(datetime(*parts, tzinfo=UTC))  # type: ignore[misc]


def test_monthly_first_of_month_starts_with_a_partial_period() -> None:
    schedule = schedule_for(Frequency.MONTHLY, AnchorDay.FIRST_OF_MONTH, us(2026, 1, 15), None)
    first = schedule.period_containing(us(2026, 1, 20))
    second = schedule.period_containing(us(2026, 2, 3))
    assert first is not None and (first.start_us, first.end_us) == (us(2026, 1, 15), us(2026, 2, 1))
    assert second is not None and (second.start_us, second.end_us) == (us(2026, 2, 1), us(2026, 3, 1))


def test_contract_start_anchor_on_the_31st_clamps_to_short_months() -> None:
    schedule = schedule_for(Frequency.MONTHLY, AnchorDay.CONTRACT_START, us(2026, 1, 31), None)
    feb = schedule.period_containing(us(2026, 2, 15))
    mar = schedule.period_containing(us(2026, 3, 30))
    assert feb is not None and (feb.start_us, feb.end_us) == (us(2026, 1, 31), us(2026, 2, 28))
    assert mar is not None and (mar.start_us, mar.end_us) == (us(2026, 2, 28), us(2026, 3, 31))


def test_quarterly_annual_weekly_and_custom_anchor() -> None:
    quarterly = schedule_for(Frequency.QUARTERLY, AnchorDay.FIRST_OF_MONTH, us(2026, 1, 1), None)
    q = quarterly.period_containing(us(2026, 5, 5))
    assert q is not None and (q.start_us, q.end_us) == (us(2026, 4, 1), us(2026, 7, 1))
    annual = schedule_for(Frequency.ANNUAL, AnchorDay.CONTRACT_START, us(2026, 3, 1), None)
    a = annual.period_containing(us(2027, 2, 28))
    assert a is not None and (a.start_us, a.end_us) == (us(2026, 3, 1), us(2027, 3, 1))
    weekly = schedule_for(Frequency.WEEKLY, AnchorDay.FIRST_OF_MONTH, us(2026, 1, 7), None)
    w = weekly.period_containing(us(2026, 1, 20))
    assert w is not None and (w.start_us, w.end_us) == (us(2026, 1, 14), us(2026, 1, 21))
    custom = schedule_for(Frequency.MONTHLY, AnchorDay.CUSTOM_DATE, us(2026, 1, 1), None, us(2025, 6, 10))
    c = custom.period_containing(us(2026, 1, 5))
    assert c is not None and (c.start_us, c.end_us) == (us(2026, 1, 1), us(2026, 1, 10))


def test_periods_are_clipped_to_the_contract_end_and_nothing_lies_outside() -> None:
    schedule = schedule_for(Frequency.MONTHLY, AnchorDay.FIRST_OF_MONTH, us(2026, 1, 1), us(2026, 2, 15))
    last = schedule.period_containing(us(2026, 2, 10))
    assert last is not None and last.end_us == us(2026, 2, 15)
    assert schedule.period_containing(us(2026, 2, 15)) is None
    assert schedule.period_containing(us(2025, 12, 31)) is None


hours = st.integers(min_value=0, max_value=24 * 365 * 3)


@given(
    st.sampled_from(list(Frequency)),
    st.sampled_from([AnchorDay.FIRST_OF_MONTH, AnchorDay.CONTRACT_START]),
    hours,
    hours,
    st.integers(min_value=1, max_value=24 * 400),
)
def test_periods_tile_the_contract_without_gaps_or_overlaps(
    frequency: Frequency, day: AnchorDay, start_h: int, probe_h: int, span_h: int
) -> None:
    start = us(2024, 1, 1) + start_h * US_PER_HOUR
    schedule = schedule_for(frequency, day, start, None)
    probe = start + probe_h * US_PER_HOUR
    period = schedule.period_containing(probe)
    assert period is not None and period.start_us <= probe < period.end_us
    periods = schedule.periods_between(probe, probe + span_h * US_PER_HOUR)
    assert periods[0] == period
    for earlier, later in pairwise(periods):
        assert earlier.end_us == later.start_us
    assert periods[-1].end_us >= probe + span_h * US_PER_HOUR


@given(
    st.sampled_from(list(Frequency)),
    st.sampled_from([AnchorDay.FIRST_OF_MONTH, AnchorDay.CONTRACT_START]),
    hours,
    st.integers(min_value=-24 * 60, max_value=24 * 365 * 3),
    st.one_of(st.none(), st.integers(min_value=1, max_value=24 * 400)),
)
def test_the_next_bound_is_the_first_period_start_or_end_after_the_instant(
    frequency: Frequency, day: AnchorDay, start_h: int, probe_h: int, length_h: int | None
) -> None:
    start = us(2024, 1, 1) + start_h * US_PER_HOUR
    end = None if length_h is None else start + length_h * US_PER_HOUR
    schedule = schedule_for(frequency, day, start, end)
    probe = start + probe_h * US_PER_HOUR
    bound = schedule.next_bound(probe)
    if probe < start:
        assert bound == start
    elif end is not None and probe >= end:
        assert bound is None
    else:
        # The period holding the instant lasts until the bound, which starts the next one or
        # ends the contract.
        assert bound is not None and bound > probe
        assert schedule.period_containing(bound - 1) == schedule.period_containing(probe)
        following = schedule.period_containing(bound)
        assert bound == end if following is None else following.start_us == bound
