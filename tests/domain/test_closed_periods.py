"""The closed-period rule ingest and the evaluator share: which events may fall in a finalized
billing period, and which one each falls in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.closed_periods import closed_period_of, may_be_closed, oldest_late_event

HOUR_US = 3_600_000_000
NOW_US = 1_000 * HOUR_US
GRACE_US = 24 * HOUR_US

customers = st.sampled_from(["a", "b", "c"])
timestamps = st.integers(min_value=NOW_US - 60 * 24 * HOUR_US, max_value=NOW_US + HOUR_US)


@given(st.lists(st.tuples(customers, timestamps), max_size=30))
def test_only_events_older_than_the_grace_period_are_looked_up_from_the_oldest(
    events: list[tuple[str, int]],
) -> None:
    late = oldest_late_event(events, NOW_US, GRACE_US)
    for customer in {c for c, _ts in events}:
        old = [ts for c, ts in events if c == customer and ts < NOW_US - GRACE_US]
        assert late.get(customer) == (min(old) if old else None)
    assert all(may_be_closed(ts, NOW_US, GRACE_US) == (ts < NOW_US - GRACE_US) for _c, ts in events)


spans = st.tuples(st.integers(0, 100), st.integers(1, 50)).map(lambda s: (s[0], s[0] + s[1]))


@given(st.lists(spans, max_size=5), st.integers(-10, 200))
def test_an_event_falls_in_the_finalized_period_that_holds_its_timestamp(
    finalized: list[tuple[int, int]], timestamp: int
) -> None:
    found = closed_period_of(timestamp, finalized)
    holding = [(start, end) for start, end in finalized if start <= timestamp < end]
    assert found == (holding[0] if holding else None)


def test_an_event_at_a_periods_end_is_in_the_next_one() -> None:
    assert closed_period_of(10, [(0, 10)]) is None
    assert closed_period_of(9, [(0, 10)]) == (0, 10)
