"""Asking the evaluator to recompute a customer's billing although no event arrived for it.

Contract and commit changes write a request in their own transaction; the evaluator, the only
writer of invoices and balances, takes the requests at the start of its next batch. So a change
is reflected at once (in-process writers wake the evaluator) without two writers racing on the
same invoice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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


def defer(conn: Connection, since_us: Mapping[str, int]) -> None:
    """Ask the engine to measure these customers in a later batch: a batch folded their usage (or
    took their request) but did not measure them (the evaluator caps the customers a batch
    measures). Each request keeps the earliest of its instants (when the first event not measured
    arrived), which is what access decisions' `as_of` stays before."""
    earliest = "min" if conn.dialect.name == "sqlite" else "least"
    upsert(
        conn,
        billing_requests,
        [{"customer_id": c, "requested_at_us": at} for c, at in sorted(since_us.items())],
        ["customer_id"],
        merges=(
            ("requested_at_us", f"{earliest}(billing_requests.requested_at_us, excluded.requested_at_us)"),
        ),
    )


def take_requests(
    conn: Connection, limit: int = 1000, partitions: frozenset[int] | None = None
) -> dict[str, int]:
    """Pending customers of these home partitions (None: all), the oldest requests first, each
    with when it was asked; removed from the queue in the caller's transaction."""
    query = (
        select(billing_requests.c.customer_id, billing_requests.c.requested_at_us)
        .order_by(billing_requests.c.requested_at_us, billing_requests.c.customer_id)
        .limit(limit)
    )
    if partitions is not None:
        query = query.join(customers, customers.c.id == billing_requests.c.customer_id).where(
            customers.c.partition.in_(sorted(partitions))
        )
    found = {customer_id: at_us for customer_id, at_us in conn.execute(query)}
    if found:
        conn.execute(delete(billing_requests).where(billing_requests.c.customer_id.in_(list(found))))
    return found
