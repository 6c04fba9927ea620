"""Reservations against hard spend limits (`services.reservations`) and their settlements.

The API writes `reservations` (a grant, its release, and closing what no longer holds); the
engine writes `reservation_settlements` in the batch that folds the settling event's usage, so a
reservation is settled exactly when that usage is in the spend the engine has committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Select, select, update
from sqlalchemy.dialects import postgresql, sqlite

from meterline.store.sql import IN_CHUNK, among, among_bound, bound_list, chunks, insert_ignoring_duplicates
from meterline.store.tables import reservation_settlements, reservations

RELEASED, SETTLED, EXPIRED = "released", "settled", "expired"


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str
    customer_id: str
    credit_type_id: str
    amount: Decimal
    created_at_us: int
    expires_at_us: int
    closed_as: str | None  # None: not closed yet (it may still have been settled or have expired)
    closed_at_us: int | None
    settled: bool  # the engine has evaluated an event that settles it

    def state_at(self, now_us: int) -> str | None:
        """How it ended by `now_us` (released, settled, expired), or None while it holds."""
        if self.closed_as is not None:
            return self.closed_as
        if self.settled:
            return SETTLED
        return EXPIRED if now_us >= self.expires_at_us else None


_COLUMNS = (*reservations.c, reservation_settlements.c.reservation_id.is_not(None).label("settled"))
_WITH_SETTLEMENT = reservations.outerjoin(
    reservation_settlements, reservation_settlements.c.reservation_id == reservations.c.id
)


def get_many(conn: Connection, reservation_ids: Sequence[str]) -> dict[str, Reservation]:
    """The reservations these ids name, by id (ids never used are absent)."""
    found: dict[str, Reservation] = {}
    query = _named(conn.dialect.name)
    for chunk in chunks(sorted(set(reservation_ids)), IN_CHUNK):
        found.update((row[0], _record(row)) for row in conn.execute(query, {"ids": bound_list(conn, chunk)}))
    return found


# The statements every reservation batch runs, built once per dialect (`among_bound`).
@lru_cache(maxsize=2)
def _named(dialect: str) -> Select[Any]:
    return (
        select(*_COLUMNS).select_from(_WITH_SETTLEMENT).where(among_bound(dialect, reservations.c.id, "ids"))
    )


@lru_cache(maxsize=2)
def _not_closed(dialect: str) -> Select[Any]:
    columns = (
        reservations.c.id,
        reservations.c.customer_id,
        reservations.c.credit_type_id,
        reservations.c.amount,
        reservations.c.expires_at_us,
        reservation_settlements.c.reservation_id,
    )
    return (
        select(*columns)
        .select_from(_WITH_SETTLEMENT)
        .where(among_bound(dialect, reservations.c.customer_id, "ids"), reservations.c.closed_at_us.is_(None))
    )


@lru_cache(maxsize=2)
def _add(dialect: str) -> Any:
    insert = postgresql.insert(reservations) if dialect == "postgresql" else sqlite.insert(reservations)
    return insert.on_conflict_do_nothing().returning(reservations.c.id)


@dataclass(frozen=True, slots=True)
class Held:
    """A reservation still holding: what a decision sums."""

    id: str
    customer_id: str
    credit_type_id: str
    amount: Decimal
    expires_at_us: int


def not_closed_of(
    conn: Connection, customer_ids: Sequence[str], now_us: int
) -> tuple[list[Held], dict[str, list[str]]]:
    """These customers' reservations not closed yet, in every credit type (by the partial index of
    open ones): those still holding at `now_us`, and the ids of those settled or expired since
    they were last looked at, by how they ended. Only the columns a decision needs, as plain
    rows: a batch reads every open reservation of its customers."""
    holding: list[Held] = []
    ended: dict[str, list[str]] = {}
    query = _not_closed(conn.dialect.name)
    for chunk in chunks(sorted(set(customer_ids)), IN_CHUNK):
        for rid, customer_id, credit_type_id, amount, expires_at_us, settled in conn.execute(
            query, {"ids": bound_list(conn, chunk)}
        ):
            if settled is not None:
                ended.setdefault(SETTLED, []).append(rid)
            elif now_us >= expires_at_us:
                ended.setdefault(EXPIRED, []).append(rid)
            else:
                holding.append(Held(rid, customer_id, credit_type_id, amount, expires_at_us))
    return holding, ended


def add_many(conn: Connection, new: Sequence[Reservation]) -> set[str]:
    """Store new reservations in one statement; returns the ids stored (an id taken already, by a
    reservation another process stored meanwhile, stores nothing)."""
    if not new:
        return set()
    rows = [
        {
            "id": r.id,
            "customer_id": r.customer_id,
            "credit_type_id": r.credit_type_id,
            "amount": r.amount,
            "created_at_us": r.created_at_us,
            "expires_at_us": r.expires_at_us,
        }
        for r in new
    ]
    # One executemany: SQLAlchemy sends it as multi-row VALUES with RETURNING, the statement
    # cached whatever the number of rows.
    stored = conn.execute(_add(conn.dialect.name), rows)
    return {row[0] for row in stored}


def close(conn: Connection, reservation_ids: Sequence[str], closed_as: str, at_us: int) -> None:
    """Mark these reservations as no longer holding (those closed already stay as they were)."""
    for chunk in chunks(sorted(reservation_ids), IN_CHUNK):
        conn.execute(
            update(reservations)
            .where(among(conn, reservations.c.id, chunk), reservations.c.closed_at_us.is_(None))
            .values(closed_as=closed_as, closed_at_us=at_us)
        )


def settle(conn: Connection, claims: Iterable[tuple[str, str, int]], at_us: int) -> None:
    """Record the settlements these (reservation id, customer id, event seq) make: a claim settles
    a reservation of the same customer, once (the first event to claim it)."""
    first: dict[tuple[str, str], int] = {}
    for reservation_id, customer_id, seq in claims:
        first.setdefault((reservation_id, customer_id), seq)
    if not first:
        return
    ids = sorted({reservation_id for reservation_id, _c in first})
    owners: dict[str, str] = {}
    for chunk in chunks(ids, IN_CHUNK):
        query = select(reservations.c.id, reservations.c.customer_id).where(
            among(conn, reservations.c.id, chunk)
        )
        owners.update((row[0], row[1]) for row in conn.execute(query))
    rows: list[dict[str, Any]] = [
        {"reservation_id": r, "customer_id": c, "seq": seq, "settled_at_us": at_us}
        for (r, c), seq in sorted(first.items())
        if owners.get(r) == c
    ]
    insert_ignoring_duplicates(conn, reservation_settlements, rows)


def _record(row: Any) -> Reservation:
    return Reservation(
        id=row.id,
        customer_id=row.customer_id,
        credit_type_id=row.credit_type_id,
        amount=row.amount,
        created_at_us=row.created_at_us,
        expires_at_us=row.expires_at_us,
        closed_as=row.closed_as,
        closed_at_us=row.closed_at_us,
        settled=bool(row.settled),
    )
