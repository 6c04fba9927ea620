"""Customers' headrooms as of their last full measurement (`engine.headroom`).

A row is written when the engine measures a customer in full, and deleted when something it
depends on changes; nothing is written when usage is absorbed. So a row holds only while no usage
was folded for its customer since: a row is returned only if every period usage row of the
customer has `folded_seq` at most the row's `as_of_seq`, and if it was computed under the
current catalog. Whatever else (an engine stopped mid-way, a hand-over) leaves a row behind,
the customer is then simply measured in full again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, select

from meterline.store.sql import IN_CHUNK, among, chunks, upsert
from meterline.store.tables import customer_headrooms, customers
from meterline.store.usage_position import last_folded_of


def save(conn: Connection, bodies: Iterable[tuple[str, str]], as_of_seq: int, catalog_version: int) -> None:
    """Store these (customer id, encoded headroom), computed with every event up to `as_of_seq`."""
    rows = [
        {"customer_id": c, "as_of_seq": as_of_seq, "catalog_version": catalog_version, "body": body}
        for c, body in sorted(bodies)
    ]
    for chunk in chunks(rows, 2000):
        upsert(conn, customer_headrooms, chunk, ["customer_id"])


def delete_for(conn: Connection, customer_ids: Iterable[str]) -> None:
    for chunk in chunks(sorted(set(customer_ids)), IN_CHUNK):
        conn.execute(delete(customer_headrooms).where(customer_headrooms.c.customer_id.in_(chunk)))


def still_holding(conn: Connection, customer_ids: Sequence[str], catalog_version: int) -> dict[str, str]:
    """The encoded headrooms of these customers that still hold (see above), by customer."""
    table = customer_headrooms
    folded = _last_folded()
    found: dict[str, str] = {}
    for chunk in chunks(customer_ids, IN_CHUNK):
        query = select(table.c.customer_id, table.c.body).where(
            among(conn, table.c.customer_id, chunk),
            table.c.catalog_version == catalog_version,
            func.coalesce(folded, -1) <= table.c.as_of_seq,
        )
        found.update((row[0], row[1]) for row in conn.execute(query))
    return found


def holding_after(
    conn: Connection, after: str, limit: int, catalog_version: int, partitions: frozenset[int] | None
) -> tuple[dict[str, str], str | None]:
    """The next `limit` stored headrooms in customer id order after `after` (of customers whose
    home is one of `partitions`, or of every customer), those that still hold among them by
    customer, and the last customer id read: None once there are no more. For an engine loading
    its customers' headrooms at take-over, a slice at a time."""
    table = customer_headrooms
    query = select(
        table.c.customer_id, table.c.body, table.c.catalog_version, table.c.as_of_seq, _last_folded()
    )
    if partitions is not None:
        query = query.join(customers, customers.c.id == table.c.customer_id).where(
            customers.c.partition.in_(sorted(partitions))
        )
    rows = conn.execute(
        query.where(table.c.customer_id > after).order_by(table.c.customer_id).limit(limit)
    ).all()
    holding = {
        customer_id: body
        for customer_id, body, version, as_of_seq, folded in rows
        if version == catalog_version and (folded is None or folded <= as_of_seq)
    }
    return holding, (rows[-1][0] if len(rows) == limit else None)


def _last_folded() -> Any:
    """The highest log position folded into any stored usage of the headroom's customer."""
    return last_folded_of(customer_headrooms.c.customer_id)
