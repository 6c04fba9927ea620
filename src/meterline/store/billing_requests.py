"""Asking the evaluator to recompute a customer's billing although no event arrived for it.

Contract and commit changes write a request in their own transaction; the evaluator, the only
writer of invoices and balances, takes the requests at the start of its next batch. So a change
is reflected at once (in-process writers wake the evaluator) without two writers racing on the
same invoice.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, delete, select

from meterline.domain.timeutil import now_us
from meterline.store.sql import upsert
from meterline.store.tables import billing_requests, customers


def request_recompute(conn: Connection, customer_id: str) -> None:
    request_recompute_of(conn, [customer_id])


def request_recompute_of(conn: Connection, customer_ids: Iterable[str]) -> None:
    """Ask the engine holding each customer's home partition to recompute its billing."""
    at = now_us()
    upsert(
        conn,
        billing_requests,
        [{"customer_id": c, "requested_at_us": at} for c in sorted(set(customer_ids))],
        ["customer_id"],
    )


def take_requests(conn: Connection, limit: int = 1000, partitions: frozenset[int] | None = None) -> list[str]:
    """Pending customers of these home partitions (None: all), removed from the queue in the
    caller's transaction."""
    query = select(billing_requests.c.customer_id).order_by(billing_requests.c.requested_at_us).limit(limit)
    if partitions is not None:
        query = query.join(customers, customers.c.id == billing_requests.c.customer_id).where(
            customers.c.partition.in_(sorted(partitions))
        )
    customer_ids = list(conn.execute(query).scalars())
    if customer_ids:
        conn.execute(delete(billing_requests).where(billing_requests.c.customer_id.in_(customer_ids)))
    return customer_ids
