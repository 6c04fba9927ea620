"""Events the evaluator accepted but could not count, with the reason, so they can be found."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from meterline.store.sql import insert_ignoring_duplicates
from meterline.store.tables import unmatched_events

UNKNOWN_CUSTOMER = "unknown_customer"
NO_MATCHING_METRIC = "no_matching_metric"
PERIOD_CLOSED = "period_closed"  # its billing period was finalized before the event was evaluated


@dataclass(frozen=True, slots=True)
class Unmatched:
    event_seq: int
    reason: str
    customer_id: str | None


def record(conn: Connection, items: Sequence[Unmatched]) -> None:
    insert_ignoring_duplicates(
        conn,
        unmatched_events,
        [{"event_seq": u.event_seq, "reason": u.reason, "customer_id": u.customer_id} for u in items],
    )


def find(conn: Connection, seqs: Sequence[int]) -> dict[int, Unmatched]:
    rows = conn.execute(select(unmatched_events).where(unmatched_events.c.event_seq.in_(list(seqs))))
    return {r.event_seq: Unmatched(r.event_seq, r.reason, r.customer_id) for r in rows}
