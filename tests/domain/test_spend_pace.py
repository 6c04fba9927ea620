"""Time to a spend limit at the current pace (`domain.spend_pace`): reached, at a moment this
period, not this period, or not at this pace when spend is flat; and spend projected to the
period's end (forecast alerts): its rule, when it reaches a threshold and when, with no usage, it
falls below one. Times derived from now."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.spend_pace import (
    PACE_HOURS,
    PROJECTION_PLACES,
    Outlook,
    Pace,
    falls_below_at,
    in_words,
    next_window_move,
    pace_window_start,
    projected_spend,
    projection_per_spend,
    threshold_reached_at,
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


# -- projection to the period's end (spend_forecast_reached) -----------------------------------

paces = st.builds(
    lambda spend_before, moved, window_us, left_us: Pace(
        spend_before + moved, spend_before, NOW - window_us, NOW, NOW + left_us
    ),
    amounts,
    st.decimals(min_value=0, max_value=10**6, places=2),
    st.integers(min_value=1, max_value=31 * US_PER_DAY),
    st.integers(min_value=1, max_value=31 * US_PER_DAY),
)


def at(current: Pace, now: int) -> Pace:
    """The same spends and window, measured at another instant (no usage in between)."""
    return Pace(current.spend_now, current.spend_before, current.since_us, now, current.period_end_us)


def exact_projection(current: Pace) -> Decimal:
    moved = current.spend_now - current.spend_before
    ahead = Decimal(current.period_end_us - current.now_us) / (current.now_us - current.since_us)
    return current.spend_now + (moved * ahead if moved > 0 else 0)


@given(current=paces)
def test_the_projection_is_spend_plus_the_pace_over_what_is_left(current: Pace) -> None:
    found = projected_spend(current)
    assert current.spend_now <= found <= exact_projection(current) + PROJECTION_PLACES
    assert exact_projection(current) - PROJECTION_PLACES <= found  # rounded down to millionths
    assert found == found.quantize(PROJECTION_PLACES) or found == current.spend_now


@given(current=paces, threshold=amounts)
def test_the_threshold_is_reached_at_the_pace_by_the_instant_given(current: Pace, threshold: Decimal) -> None:
    found = threshold_reached_at(threshold, current)
    if current.spend_now >= threshold:
        assert found == current.now_us
        return
    if found is None:  # not within the period: the projection falls short of it
        assert exact_projection(current) < threshold
        return
    assert current.now_us < found <= current.period_end_us
    per_us = (current.spend_now - current.spend_before) / (current.now_us - current.since_us)
    assert current.spend_now + per_us * (found - current.now_us) >= threshold
    assert current.spend_now + per_us * (found - 1 - current.now_us) < threshold


@given(current=paces, threshold=amounts, later=st.integers(min_value=1, max_value=31 * US_PER_DAY))
def test_with_no_usage_the_projection_only_falls_and_crosses_the_threshold_when_said(
    current: Pace, threshold: Decimal, later: int
) -> None:
    moment = min(current.now_us + later, current.period_end_us - 1)
    assert projected_spend(at(current, moment)) <= projected_spend(current)
    falls = falls_below_at(threshold, current)
    in_alarm = projected_spend(current) >= threshold
    if falls is None:
        # Below already, or never below within the period (spend has reached the threshold).
        assert not in_alarm or current.spend_now >= threshold or falls_never_within(current, threshold)
        return
    assert in_alarm and current.now_us < falls < current.period_end_us
    assert projected_spend(at(current, falls)) < threshold
    assert exact_projection(at(current, falls - 1)) >= threshold


def falls_never_within(current: Pace, threshold: Decimal) -> bool:
    return exact_projection(at(current, current.period_end_us - 1)) >= threshold


@given(current=paces)
def test_one_unit_of_spend_moves_the_projection_by_at_most_the_factor(current: Pace) -> None:
    factor = projection_per_spend(current)
    more = Pace(
        current.spend_now + 1, current.spend_before, current.since_us, current.now_us, current.period_end_us
    )
    assert projected_spend(more) - projected_spend(current) <= factor + PROJECTION_PLACES


def test_the_window_moves_on_every_hour_once_it_no_longer_starts_at_the_period_start() -> None:
    period_start = hour_floor(NOW) - 3 * US_PER_HOUR
    assert next_window_move(NOW, period_start, hours=2) == hour_floor(NOW) + US_PER_HOUR
    assert next_window_move(NOW, period_start, hours=4) is None  # still the period's start then
    assert pace_window_start(NOW, period_start, hours=2) == hour_floor(NOW) - 2 * US_PER_HOUR
