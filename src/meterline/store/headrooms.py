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

from sqlalchemy import Connection, delete, func, select

from meterline.store.sql import IN_CHUNK, among, chunks, upsert
from meterline.store.tables import customer_headrooms, usage_monthly


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
    folded = (
        select(func.max(usage_monthly.c.folded_seq))
        .where(usage_monthly.c.customer_id == table.c.customer_id)
        .scalar_subquery()
    )
    found: dict[str, str] = {}
    for chunk in chunks(customer_ids, IN_CHUNK):
        query = select(table.c.customer_id, table.c.body).where(
            among(conn, table.c.customer_id, chunk),
            table.c.catalog_version == catalog_version,
            func.coalesce(folded, -1) <= table.c.as_of_seq,
        )
        found.update((row[0], row[1]) for row in conn.execute(query))
    return found
