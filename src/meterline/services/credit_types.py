"""Pricing units: USD (cents) is always there and cannot be archived."""

from __future__ import annotations

from sqlalchemy import Connection

from meterline.domain.errors import InvalidInput
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID
from meterline.store import credit_types as store


def archive_credit_type(conn: Connection, credit_type_id: str) -> None:
    record = store.get_credit_type(conn, credit_type_id)
    if record.id == USD_CENTS_CREDIT_TYPE_ID:
        raise InvalidInput("id: the USD (cents) pricing unit cannot be archived")
    store.mark_archived(conn, credit_type_id)
