"""How far a customer's usage has been folded into its aggregates: a cheap "has it moved?" probe."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from meterline.store import usage_journal
from meterline.store.tables import usage_monthly


def customer_fold_position(conn: Connection, customer_id: str) -> int:
    """The highest event-log position folded into the customer's monthly usage, the journal's
    included (-1: none yet)."""
    found = conn.execute(
        select(func.max(usage_monthly.c.folded_seq)).where(usage_monthly.c.customer_id == customer_id)
    ).scalar_one()
    pending = usage_journal.folded_through(conn, [customer_id]).get(customer_id, -1)
    return max(-1 if found is None else int(found), pending)
