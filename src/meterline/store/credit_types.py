"""Pricing units (Metronome's "credit types"): USD cents, and custom units a user creates."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from meterline.domain.errors import NotFound
from meterline.domain.ids import new_id
from meterline.domain.timeutil import now_us
from meterline.store.tables import credit_types


@dataclass(frozen=True, slots=True)
class CreditTypeRecord:
    id: str
    name: str
    is_currency: bool
    archived_at_us: int | None


def create_credit_type(conn: Connection, name: str) -> str:
    credit_type_id = new_id()
    conn.execute(
        credit_types.insert().values(id=credit_type_id, name=name, is_currency=False, created_at_us=now_us())
    )
    return credit_type_id


def list_credit_types(conn: Connection, *, after_id: str | None, limit: int) -> list[CreditTypeRecord]:
    query = (
        select(
            credit_types.c.id, credit_types.c.name, credit_types.c.is_currency, credit_types.c.archived_at_us
        )
        .where(credit_types.c.archived_at_us.is_(None))
        .order_by(credit_types.c.id)
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(credit_types.c.id > after_id)
    return [CreditTypeRecord(*row) for row in conn.execute(query)]


def get_credit_type(conn: Connection, credit_type_id: str) -> CreditTypeRecord:
    row = conn.execute(
        select(
            credit_types.c.id, credit_types.c.name, credit_types.c.is_currency, credit_types.c.archived_at_us
        ).where(credit_types.c.id == credit_type_id)
    ).first()
    if row is None:
        raise NotFound(f"credit_type_id: no pricing unit with id {credit_type_id}")
    return CreditTypeRecord(*row)


def mark_archived(conn: Connection, credit_type_id: str) -> None:
    conn.execute(
        update(credit_types)
        .where(credit_types.c.id == credit_type_id, credit_types.c.archived_at_us.is_(None))
        .values(archived_at_us=now_us())
    )


def names_by_id(conn: Connection) -> dict[str, str]:
    """Every pricing unit's name, archived ones included (old invoices still name them)."""
    return {row.id: row.name for row in conn.execute(select(credit_types.c.id, credit_types.c.name))}
