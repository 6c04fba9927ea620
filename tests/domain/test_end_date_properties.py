"""Properties of moving a commit's end (`domain.end_dates`), over any access schedule and new end."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.contracts import AccessSegment
from meterline.domain.end_dates import access_ending, invoices_ending
from meterline.domain.errors import InvalidInput

HOUR = 3_600_000_000


@st.composite
def schedules(draw: st.DrawFn) -> list[AccessSegment]:
    """Segments in time order, each an hour-aligned span, possibly with gaps between them."""
    count = draw(st.integers(1, 5))
    cursor = draw(st.integers(0, 10)) * HOUR
    segments = []
    for index in range(count):
        start = cursor + draw(st.integers(0, 3)) * HOUR
        end = start + draw(st.integers(1, 48)) * HOUR
        amount = Decimal(draw(st.integers(0, 10_000))) / 100
        segments.append(AccessSegment(f"s{index}", amount, start, end))
        cursor = end
    return segments


@given(schedules(), st.integers(0, 300))
def test_access_ends_exactly_at_the_new_end(segments: list[AccessSegment], hours: int) -> None:
    end = hours * HOUR
    if end <= segments[0].starting_at_us:
        with pytest.raises(InvalidInput, match="access_ending_before"):
            access_ending(segments, end, drawn_until_us=None)
        return
    moved = access_ending(segments, end, drawn_until_us=None)
    # Nothing is accessible at or after the new end; a later end than today's is reached exactly.
    last_end = max(s.ending_before_us for s in segments)
    assert all(s.ending_before_us <= end for s in moved)
    if end >= last_end:
        assert max(s.ending_before_us for s in moved) == end
    # Before the new end, access is what it was, except a later end only stretches the last segment
    # (an earlier end that falls between segments stretches none).
    by_id = {s.id: s for s in segments}
    for at in range(segments[0].starting_at_us, end, HOUR):
        was = any(s.accessible_at(at) for s in segments)
        now = any(s.accessible_at(at) for s in moved)
        assert now == (was or (at >= last_end and moved[-1].starting_at_us <= at))
    # Segments keep their ids, amounts and starts; none is added.
    for s in moved:
        assert (by_id[s.id].amount, by_id[s.id].starting_at_us) == (s.amount, s.starting_at_us)
    assert [s.id for s in moved] == [s.id for s in segments if s.starting_at_us < end]


@given(schedules(), st.integers(0, 300), st.integers(0, 300))
def test_an_end_before_a_finalized_drawdown_is_refused(
    segments: list[AccessSegment], hours: int, drawn: int
) -> None:
    end, drawn_until = hours * HOUR, drawn * HOUR
    if end <= segments[0].starting_at_us:
        return
    if end < drawn_until:
        with pytest.raises(InvalidInput, match="finalized invoice"):
            access_ending(segments, end, drawn_until_us=drawn_until)
    else:
        assert access_ending(segments, end, drawn_until_us=drawn_until) == access_ending(
            segments, end, drawn_until_us=None
        )


@given(st.lists(st.integers(0, 100), max_size=8), st.integers(0, 100), st.integers(0, 100) | st.none())
def test_invoice_items_before_the_end_are_kept_and_billed_ones_never_dropped(
    timestamps: list[int], end: int, billed_until: int | None
) -> None:
    dropped = [t for t in timestamps if t >= end]
    if billed_until is not None and any(t <= billed_until for t in dropped):
        with pytest.raises(InvalidInput, match="invoices_ending_before"):
            invoices_ending(timestamps, end, billed_until_us=billed_until)
        return
    assert invoices_ending(timestamps, end, billed_until_us=billed_until) == [t < end for t in timestamps]
