"""Asking the evaluator to recompute a customer's billing although no event arrived for it.

Contract and commit changes write a request in their own transaction; the evaluator, the only
writer of invoices and balances, takes the requests at the start of its next batch. So a change
is reflected at once (in-process writers wake the evaluator) without two writers racing on the
same invoice.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, select

from meterline.domain.timeutil import now_us
from meterline.store.sql import upsert
from meterline.store.tables import billing_requests


def request_recompute(conn: Connection, customer_id: str) -> None:
    upsert(
        conn, billing_requests, [{"customer_id": customer_id, "requested_at_us": now_us()}], ["customer_id"]
    )


def take_requests(conn: Connection, limit: int = 1000) -> list[str]:
    """Pending customers, removed from the queue in the caller's transaction."""
    customer_ids = list(
        conn.execute(
            select(billing_requests.c.customer_id).order_by(billing_requests.c.requested_at_us).limit(limit)
        ).scalars()
    )
    if customer_ids:
        conn.execute(delete(billing_requests).where(billing_requests.c.customer_id.in_(customer_ids)))
    return customer_ids
