"""Partition leases and each partition's log position.

An engine process is a member while its heartbeat is fresh; each member holds at most its fair
share of the partitions, renews their leases with its heartbeat, gives up what it holds beyond
its share (so a member that joins gets partitions at once) and takes partitions that are free or
whose lease has run out (a member that died). A member that leaves gives everything up.

A partition's position is the last event log `seq` whose effects for that partition are
committed. It moves only inside the batch transaction that wrote those effects, after `lock_held`
has checked, with the rows locked, that this member still holds every partition at the positions
it read them at. A member whose lease ran out mid-batch therefore fails to commit, and its
successor, which took the partition over at the committed position, replays from there: each
event's effects are committed once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, and_, delete, func, or_, select, update

from meterline.domain.partitions import PARTITION_COUNT, fair_share
from meterline.store.cursors import CursorMoved
from meterline.store.sql import upsert
from meterline.store.tables import customers, engine_members, engine_partitions


class LeaseLost(CursorMoved):
    """This member no longer holds a partition it read, or another batch moved its position."""


@dataclass(frozen=True, slots=True)
class Holding:
    """The partitions a member holds, each with its committed log position."""

    positions: Mapping[int, int]

    @property
    def partitions(self) -> frozenset[int]:
        return frozenset(self.positions)

    @property
    def holds_all(self) -> bool:
        return len(self.positions) == PARTITION_COUNT

    def start(self) -> int:
        """Where reading must resume: the earliest position held (0 if none)."""
        return min(self.positions.values(), default=0)


def ensure_partitions(conn: Connection) -> None:
    """The partition rows exist (a database created by `metadata.create_all` in tests, say)."""
    present = set(conn.execute(select(engine_partitions.c.partition)).scalars())
    missing = [
        {"partition": p, "owner": None, "lease_until_us": 0, "position": 0}
        for p in range(PARTITION_COUNT)
        if p not in present
    ]
    if missing:
        conn.execute(engine_partitions.insert(), missing)


def refresh(
    conn: Connection,
    member_id: str,
    now_us: int,
    lease_us: int,
    *,
    take_from: Iterable[str] = (),
) -> Holding:
    """Renew this member's heartbeat and leases, rebalance, and return what it holds.

    `take_from` names members known to be dead (a predecessor process its supervisor reaped, or
    any holder on an SQLite file whose engine lock this member holds): their partitions are taken
    at once instead of after their leases run out.
    """
    until = now_us + lease_us
    upsert(conn, engine_members, [{"member_id": member_id, "alive_until_us": until}], ["member_id"])
    conn.execute(delete(engine_members).where(engine_members.c.alive_until_us < now_us))
    dead = [m for m in take_from if m != member_id]
    if dead:
        conn.execute(delete(engine_members).where(engine_members.c.member_id.in_(dead)))
        _lock_in_order(conn, engine_partitions.c.owner.in_(dead))
        conn.execute(
            update(engine_partitions)
            .where(engine_partitions.c.owner.in_(dead))
            .values(owner=None, lease_until_us=0)
        )
    members = int(conn.execute(select(func.count()).select_from(engine_members)).scalar_one())
    share = fair_share(members)
    _lock_in_order(conn, engine_partitions.c.owner == member_id)
    conn.execute(
        update(engine_partitions).where(engine_partitions.c.owner == member_id).values(lease_until_us=until)
    )
    held = _held(conn, member_id)
    if len(held) > share:
        _release(conn, member_id, sorted(held)[share:])
    elif len(held) < share:
        _take(conn, member_id, share - len(held), now_us, until)
    return Holding(_held(conn, member_id))


def leave(conn: Connection, member_id: str) -> None:
    """Give up every partition and membership (a clean shutdown)."""
    _lock_in_order(conn, engine_partitions.c.owner == member_id)
    _release(conn, member_id, None)
    conn.execute(delete(engine_members).where(engine_members.c.member_id == member_id))


def lock_held(conn: Connection, member_id: str, holding: Holding) -> None:
    """Inside a batch transaction: lock the held partitions' rows and check they are unchanged.

    Selected by owner, not by a list of partition numbers: one bound value instead of up to 256,
    on every batch. Only this member's own `refresh` gives it partitions, so the rows it owns are
    exactly those it holds unless something changed, and then it has lost its holding."""
    query = select(engine_partitions.c.partition, engine_partitions.c.position).where(
        engine_partitions.c.owner == member_id
    )
    if conn.dialect.name == "postgresql":
        query = query.order_by(engine_partitions.c.partition).with_for_update()
    rows = {int(p): int(position) for p, position in conn.execute(query)}
    if rows != holding.positions:
        lost = sorted(p for p, position in holding.positions.items() if rows.get(p) != position)
        raise LeaseLost(f"partitions {lost or sorted(rows)} are no longer held at the positions read")


def lock_home_partition(conn: Connection, customer_id: str) -> None:
    """Wait for the batch holding the customer's home partition to commit, and hold it off until
    this transaction does (PostgreSQL; SQLite has one writer): for the API's rare writes that the
    engine's batch must not race (a voided, regenerated or historical invoice, an end date checked
    against finalized invoices)."""
    if conn.dialect.name == "postgresql":
        home = select(customers.c.partition).where(customers.c.id == customer_id).scalar_subquery()
        conn.execute(
            select(engine_partitions.c.partition)
            .where(engine_partitions.c.partition == home)
            .with_for_update()
        )


def advance(conn: Connection, member_id: str, holding: Holding, read_through: int) -> Holding:
    """Move every held partition's position to `read_through` (never backwards); in the batch
    transaction, after `lock_held` (which checked that this member owns exactly those rows).
    Returns the holding as committed with it."""
    if not holding.positions:
        return holding
    conn.execute(
        update(engine_partitions)
        .where(engine_partitions.c.owner == member_id, engine_partitions.c.position < read_through)
        .values(position=read_through)
    )
    return Holding({p: max(pos, read_through) for p, pos in holding.positions.items()})


def holders(conn: Connection) -> dict[str | None, int]:
    """How many partitions each member holds (None: free), for readers: tools, tests, the bench."""
    rows = conn.execute(select(engine_partitions.c.owner, func.count()).group_by(engine_partitions.c.owner))
    return {owner: int(n) for owner, n in rows}


def positions(conn: Connection) -> dict[int, int]:
    """Every partition's committed position (for readers: health, tests, tools)."""
    rows = conn.execute(select(engine_partitions.c.partition, engine_partitions.c.position))
    return {int(p): int(pos) for p, pos in rows}


def _lock_in_order(conn: Connection, which: ColumnElement[bool]) -> None:
    """On PostgreSQL, lock these partition rows in partition order before updating them: every
    statement that locks several takes them in that order, so two cannot deadlock (an UPDATE
    alone locks in whatever order it finds the rows)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            select(engine_partitions.c.partition)
            .where(which)
            .order_by(engine_partitions.c.partition)
            .with_for_update()
        )


def _held(conn: Connection, member_id: str) -> dict[int, int]:
    rows = conn.execute(
        select(engine_partitions.c.partition, engine_partitions.c.position).where(
            engine_partitions.c.owner == member_id
        )
    )
    return {int(p): int(pos) for p, pos in rows}


def _release(conn: Connection, member_id: str, partitions: list[int] | None) -> None:
    query = update(engine_partitions).where(engine_partitions.c.owner == member_id)
    if partitions is not None:
        query = query.where(engine_partitions.c.partition.in_(partitions))
    conn.execute(query.values(owner=None, lease_until_us=0))


def _take(conn: Connection, member_id: str, wanted: int, now_us: int, until_us: int) -> None:
    available = or_(engine_partitions.c.owner.is_(None), engine_partitions.c.lease_until_us < now_us)
    query = (
        select(engine_partitions.c.partition)
        .where(available)
        .order_by(engine_partitions.c.partition)
        .limit(wanted)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    free = list(conn.execute(query).scalars())
    if free:
        conn.execute(
            update(engine_partitions)
            .where(and_(engine_partitions.c.partition.in_(free), available))
            .values(owner=member_id, lease_until_us=until_us)
        )
