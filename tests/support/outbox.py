"""Reading the notification outbox the way a webhook sender will: straight from the server's database.

There is no HTTP API for notifications yet, so tests read the `notifications` table. Payloads are
decoded with every fractional number a Decimal, so measures compare exactly.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.pool import NullPool

from meterline.store.db import normalize_url
from meterline.store.tables import notifications

Payload = dict[str, Any]


@cache
def _engine(database_url: str) -> Engine:
    # NullPool: no connection outlives a read, so the database can be dropped at the session's end.
    return create_engine(normalize_url(database_url), poolclass=NullPool)


def decode(payload: str) -> Payload:
    decoded: Payload = json.loads(payload, parse_float=Decimal)
    return decoded


def notifications_for(database_url: str, customer_id: str) -> list[Payload]:
    """The decoded payloads ({"id", "type", "properties"}) written for the customer, in outbox order."""
    with _engine(database_url).connect() as conn:
        rows = conn.execute(
            select(notifications.c.payload)
            .where(notifications.c.customer_id == customer_id)
            .order_by(notifications.c.seq)
        )
        return [decode(row[0]) for row in rows]
