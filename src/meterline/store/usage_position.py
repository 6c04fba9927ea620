"""How far a customer's usage has been folded into its aggregates: a cheap "has it moved?" probe."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from meterline.store import usage_journal
from meterline.store.sql import greatest
from meterline.store.tables import usage_hourly_open, usage_monthly


def customer_fold_position(conn: Connection, customer_id: str) -> int:
    """The highest event-log position folded into the customer's usage (its month rows, its open
    hours' rows, the journal's), -1: none yet."""
    found = conn.execute(select(last_folded_of(customer_id))).scalar_one()
    pending = usage_journal.folded_through(conn, [customer_id]).get(customer_id, -1)
    return max(int(found), pending)


def last_folded_of(customer_id: Any) -> Any:
    """SQL: the highest log position folded into the stored usage of `customer_id` (a value or a
    column to correlate with), -1: none. An open hour's usage is in no month's row until sealed
    (`store.usage.seal_open_hours`), so both are asked."""
    in_months = func.coalesce(
        select(func.max(usage_monthly.c.folded_seq))
        .where(usage_monthly.c.customer_id == customer_id)
        .scalar_subquery(),
        -1,
    )
    in_open_hours = func.coalesce(
        select(func.max(usage_hourly_open.c.folded_seq))
        .where(usage_hourly_open.c.customer_id == customer_id)
        .scalar_subquery(),
        -1,
    )
    return greatest(in_months, in_open_hours)
