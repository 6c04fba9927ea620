"""Ingest's one rule that needs the database: no event lands in a finalized billing period.

Everything else about a batch (shape, sizes, timestamps within max_backdate_days and
max_future_hours) is checked while parsing it (`api.ingest_parsing`, `domain.events`).
"""

from __future__ import annotations

from sqlalchemy import Connection

from meterline.domain.closed_periods import closed_period_of
from meterline.domain.errors import InvalidInput
from meterline.domain.events import UsageEvent
from meterline.domain.timeutil import format_rfc3339
from meterline.store import customers, invoices


def refuse_closed_periods(conn: Connection, batch: list[UsageEvent], received_us: int, grace_us: int) -> None:
    """Refuse events that fall in a finalized billing period (`domain.closed_periods`).

    Only backdated events pay for this look-up; a recent event cannot reach a finalized period.
    """
    resolved = customers.resolve_customer_refs(conn, {e.customer_ref for e in batch})
    customer_of = [resolved.get(e.customer_ref) for e in batch]
    closed = invoices.finalized_periods_reached(
        conn,
        ((c, e.timestamp_us) for c, e in zip(customer_of, batch, strict=True) if c is not None),
        received_us,
        grace_us,
    )
    problems = [
        f"events[{i}].timestamp: falls in the billing period {format_rfc3339(span[0])} to "
        f"{format_rfc3339(span[1])}, whose invoice is finalized"
        for i, (customer_id, e) in enumerate(zip(customer_of, batch, strict=True))
        if customer_id in closed and (span := closed_period_of(e.timestamp_us, closed[customer_id]))
    ]
    if problems:
        raise InvalidInput("; ".join(problems))
