"""Closed billing periods: a billing period whose invoice is finalized takes no more usage.

An invoice is finalized the grace period after its billing period ends, so only an event older
than the grace period can fall in a closed one. Ingest refuses such an event with a 400; the
evaluator, which may apply an accepted event after its period was finalized meanwhile, records
it as not counted (PERIOD_CLOSED). Both look for the finalized periods that end after the oldest
such event: that horizon is the events' own timestamps, exact for the batch at hand, and ingest
already keeps them within `max_backdate_days`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Span = tuple[int, int]  # [start_us, end_us) of a finalized billing period


def may_be_closed(timestamp_us: int, now_us: int, grace_us: int) -> bool:
    """Whether an event this old can fall in a finalized period (most events cannot)."""
    return timestamp_us < now_us - grace_us


def oldest_late_event(events: Iterable[tuple[str, int]], now_us: int, grace_us: int) -> dict[str, int]:
    """Customers of the (customer id, timestamp) events that may fall in a finalized period, each
    with its oldest such timestamp: where to look for finalized periods, and since when."""
    oldest: dict[str, int] = {}
    late_before_us = now_us - grace_us  # may_be_closed, inline: this runs for every evaluated event
    for customer_id, timestamp_us in events:
        if timestamp_us < late_before_us:
            oldest[customer_id] = min(timestamp_us, oldest.get(customer_id, timestamp_us))
    return oldest


def closed_period_of(timestamp_us: int, finalized: Sequence[Span]) -> Span | None:
    """The finalized period an event's timestamp falls in, if any."""
    return next(((start, end) for start, end in finalized if start <= timestamp_us < end), None)
