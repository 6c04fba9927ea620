"""The instant each customer's alert measures next move with the clock alone, and who is due."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, select

from meterline.store.sql import IN_CHUNK, among, chunks, upsert
from meterline.store.tables import alert_wakeups, customers


def wakeups_of(conn: Connection, customer_ids: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunks(customer_ids, IN_CHUNK):
        query = select(alert_wakeups.c.customer_id, alert_wakeups.c.due_us).where(
            among(conn, alert_wakeups.c.customer_id, chunk)
        )
        found.update((c, int(due)) for c, due in conn.execute(query))
    return found


def set_wakeup(conn: Connection, customer_id: str, due_us: int | None) -> None:
    """Schedule the customer's next time-driven evaluation; None: nothing moves with the clock."""
    if due_us is None:
        conn.execute(delete(alert_wakeups).where(alert_wakeups.c.customer_id == customer_id))
    else:
        upsert(conn, alert_wakeups, [{"customer_id": customer_id, "due_us": due_us}], ["customer_id"])


def due(conn: Connection, now_us: int, limit: int, partitions: frozenset[int] | None = None) -> list[str]:
    """Customers (of these home partitions; None: all) whose instant has come, earliest first,
    at most `limit`."""
    query = (
        select(alert_wakeups.c.customer_id)
        .where(alert_wakeups.c.due_us <= now_us)
        .order_by(alert_wakeups.c.due_us, alert_wakeups.c.customer_id)
        .limit(limit)
    )
    if partitions is not None:
        query = query.join(customers, customers.c.id == alert_wakeups.c.customer_id).where(
            customers.c.partition.in_(sorted(partitions))
        )
    return list(conn.execute(query).scalars())
