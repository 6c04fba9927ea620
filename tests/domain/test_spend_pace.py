"""Time to a spend limit at the current pace (`domain.spend_pace`): reached, at a moment this
period, not this period, or not at this pace when spend is flat; times derived from now."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.spend_pace import (
    PACE_HOURS,
    Outlook,
    Pace,
    in_words,
    pace_window_start,
    time_to_limit,
)
from meterline.domain.timeutil import US_PER_DAY, US_PER_HOUR, hour_floor, now_us

NOW = now_us()
amounts = st.decimals(min_value=0, max_value=10**9, places=2)


def pace(spend_now: Decimal, spend_before: Decimal, hours: int = PACE_HOURS, days_left: int = 20) -> Pace:
    return Pace(spend_now, spend_before, NOW - hours * US_PER_HOUR, NOW, NOW + days_left * US_PER_DAY)


def test_the_window_is_the_last_day_from_an_hour_boundary_never_before_the_period() -> None:
    long_ago = NOW - 40 * US_PER_DAY
    assert pace_window_start(NOW, long_ago) == hour_floor(NOW) - PACE_HOURS * US_PER_HOUR
    started = hour_floor(NOW) - 3 * US_PER_HOUR  # a period three hours old: its whole length
    assert pace_window_start(NOW, started) == started


def test_a_limit_is_reached_after_what_is_left_over_the_pace() -> None:
    # 240 cents over the last 24 hours: 10 an hour; 1000 - 400 left: 60 hours.
    found = time_to_limit(Decimal(1000), pace(Decimal(400), Decimal(160)))
    assert found.outlook is Outlook.AT and found.after_us == 60 * US_PER_HOUR
    assert in_words(found.after_us) == "about 3 days"
    assert in_words(5 * US_PER_HOUR) == "about 5 hours" and in_words(90_000_000) == "about 1 minute"


def test_flat_spend_has_no_pace_and_a_reached_limit_says_so() -> None:
    assert time_to_limit(Decimal(1000), pace(Decimal(400), Decimal(400))).outlook is Outlook.NOT_AT_THIS_PACE
    assert time_to_limit(Decimal(1000), pace(Decimal(400), Decimal(500))).outlook is Outlook.NOT_AT_THIS_PACE
    assert time_to_limit(Decimal(400), pace(Decimal(400), Decimal(0))).outlook is Outlook.REACHED


def test_a_limit_only_reached_after_the_period_ends_is_not_this_period() -> None:
    # 10 an hour, 600 left: 60 hours, but the period ends in 2 days (spend starts again then).
    found = time_to_limit(Decimal(1000), pace(Decimal(400), Decimal(160), days_left=2))
    assert found.outlook is Outlook.NOT_THIS_PERIOD


@given(limit=amounts, spend_now=amounts, spend_before=amounts, hours=st.integers(1, PACE_HOURS + 1))
def test_the_outlook_follows_spend_and_pace(
    limit: Decimal, spend_now: Decimal, spend_before: Decimal, hours: int
) -> None:
    current = pace(spend_now, spend_before, hours, days_left=10_000)
    found = time_to_limit(limit, current)
    if spend_now >= limit:
        assert found.outlook is Outlook.REACHED
    elif spend_now <= spend_before:
        assert found.outlook is Outlook.NOT_AT_THIS_PACE
    else:
        assert found.outlook in (Outlook.AT, Outlook.NOT_THIS_PERIOD)
        if found.outlook is Outlook.AT:
            assert found.after_us is not None
            # At the pace, the spend after that time is the limit (to the microsecond rounded down).
            reached = spend_now + current.per_hour * found.after_us / US_PER_HOUR
            assert limit - current.per_hour / US_PER_HOUR <= reached <= limit
