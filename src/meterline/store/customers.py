"""Customers and their ingest aliases."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Select, delete, select, true, update
from sqlalchemy.exc import IntegrityError

from meterline.domain.errors import Conflict, NotFound
from meterline.domain.ids import new_id
from meterline.domain.partitions import home_partition
from meterline.domain.timeutil import now_us
from meterline.store.sql import IN_CHUNK, among, among_bound, bound_list, chunks
from meterline.store.tables import customer_aliases, customers

NAME_MAX_CHARS = 160


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    id: str
    name: str
    custom_fields: dict[str, str]
    ingest_aliases: list[str]
    created_at_us: int
    updated_at_us: int
    archived_at_us: int | None


def insert_customer(
    conn: Connection,
    name: str,
    aliases: Sequence[str],
    custom_fields: dict[str, str],
    billing_config: dict[str, Any] | None = None,
) -> CustomerRecord:
    """Store a customer `services.customers` has checked; 409 if another request took an alias."""
    customer_id = new_id()
    now = now_us()
    conn.execute(
        customers.insert().values(
            id=customer_id,
            partition=home_partition(customer_id, aliases),
            name=name[:NAME_MAX_CHARS],
            custom_fields=custom_fields,
            billing_config=billing_config,
            created_at_us=now,
            updated_at_us=now,
        )
    )
    _insert_aliases(conn, customer_id, aliases)
    return get_customer(conn, customer_id)


def get_customer(conn: Connection, customer_id: str) -> CustomerRecord:
    found = _load(conn, [customer_id])
    if not found:
        raise NotFound(f"customer_id: no customer with id {customer_id}")
    return found[0]


def lock(conn: Connection, customer_id: str) -> None:
    """Hold the customer's row until the caller's transaction ends, so that two requests changing
    what belongs to it one at a time (its spend limits) never interleave. On SQLite writers are
    serialized already (each write transaction begins IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(customers.c.id).where(customers.c.id == customer_id).with_for_update())


def lock_many(conn: Connection, customer_ids: Iterable[str]) -> dict[str, int | None]:
    """Each of these customers that exists, with when it was archived (None: active), its row held
    until the caller's transaction ends on PostgreSQL (as `lock`). Rows are locked in id order,
    so two transactions locking overlapping sets never wait for each other in a cycle."""
    found: dict[str, int | None] = {}
    query = _lock_many(conn.dialect.name)
    for chunk in chunks(sorted(set(customer_ids)), IN_CHUNK):
        found.update((row[0], row[1]) for row in conn.execute(query, {"ids": bound_list(conn, chunk)}))
    return found


@lru_cache(maxsize=2)
def _lock_many(dialect: str) -> Select[Any]:
    # Built once: it runs in every reservation batch.
    query = select(customers.c.id, customers.c.archived_at_us).where(
        among_bound(dialect, customers.c.id, "ids")
    )
    return query.order_by(customers.c.id).with_for_update() if dialect == "postgresql" else query


def names_of(conn: Connection, customer_ids: Iterable[str]) -> dict[str, str]:
    """Each customer's name, in one statement per chunk (event search shows a hundred at a time)."""
    names: dict[str, str] = {}
    for chunk in chunks(sorted(set(customer_ids)), IN_CHUNK):
        names.update(
            {
                cid: name
                for cid, name in conn.execute(
                    select(customers.c.id, customers.c.name).where(customers.c.id.in_(chunk))
                )
            }
        )
    return names


def list_customers(
    conn: Connection,
    *,
    after_id: str | None,
    limit: int,
    customer_ids: Sequence[str] | None = None,
    ingest_alias: str | None = None,
    only_archived: bool = False,
) -> list[CustomerRecord]:
    query = select(customers.c.id).order_by(customers.c.id).limit(limit)
    query = query.where(
        customers.c.archived_at_us.is_not(None) if only_archived else customers.c.archived_at_us.is_(None)
    )
    if after_id is not None:
        query = query.where(customers.c.id > after_id)
    if customer_ids is not None:
        query = query.where(customers.c.id.in_(list(customer_ids)))
    if ingest_alias is not None:
        holders = select(customer_aliases.c.customer_id).where(customer_aliases.c.alias == ingest_alias)
        query = query.where(customers.c.id.in_(holders))
    ids = list(conn.execute(query).scalars())
    return _load(conn, ids)


def mark_archived(conn: Connection, customer_id: str) -> None:
    now = now_us()
    conn.execute(
        update(customers).where(customers.c.id == customer_id).values(archived_at_us=now, updated_at_us=now)
    )
    # Release the aliases so another customer may use them; they stay on this customer's record.
    conn.execute(
        update(customer_aliases).where(customer_aliases.c.customer_id == customer_id).values(active=False)
    )


def replace_aliases(conn: Connection, customer_id: str, aliases: Sequence[str], *, active: bool) -> None:
    conn.execute(delete(customer_aliases).where(customer_aliases.c.customer_id == customer_id))
    _insert_aliases(conn, customer_id, aliases, active=active)
    conn.execute(update(customers).where(customers.c.id == customer_id).values(updated_at_us=now_us()))


def set_name(conn: Connection, customer_id: str, name: str) -> CustomerRecord:
    conn.execute(
        update(customers)
        .where(customers.c.id == customer_id)
        .values(name=name[:NAME_MAX_CHARS], updated_at_us=now_us())
    )
    return get_customer(conn, customer_id)


def resolve_customer_refs(conn: Connection, refs: Iterable[str]) -> dict[str, str]:
    """Map each reference (a meterline customer id or an active ingest alias) to an active customer."""
    # In order: over a million aliases, probes in key order find their pages where the last left
    # off (about half the cost of probes in random order, on SQLite).
    wanted = sorted(set(refs))
    resolved: dict[str, str] = {}
    for chunk in chunks(wanted, IN_CHUNK):
        by_alias = select(customer_aliases.c.alias, customer_aliases.c.customer_id).where(
            among(conn, customer_aliases.c.alias, chunk),
            # `= true`, not the bare column: SQLite then reads the index on (alias, active,
            # customer_id) alone, where the partial unique index on alias needs the row besides.
            customer_aliases.c.active == true(),
        )
        resolved.update(conn.execute(by_alias).all())  # (alias, customer id) pairs
    # Only what could be a customer id is looked up as one (ids are `new_id`'s): spread over
    # many customers, events name them by alias, and that look-up was half of resolving them.
    maybe_ids = [r for r in wanted if _ID_SHAPE.fullmatch(r)]
    for chunk in chunks(maybe_ids, IN_CHUNK):
        by_id = select(customers.c.id).where(
            among(conn, customers.c.id, chunk), customers.c.archived_at_us.is_(None)
        )
        resolved.update({cid: cid for cid in conn.execute(by_id).scalars()})
    return resolved


def active_aliases_after(conn: Connection, after: str, limit: int) -> list[tuple[str, str]]:
    """The next `limit` active aliases in key order after `after`, each with its customer: for an
    engine loading what its references resolve to at a start or take-over, a slice at a time (read
    from the index on (alias, active, customer_id) alone)."""
    query = (
        select(customer_aliases.c.alias, customer_aliases.c.customer_id)
        .where(customer_aliases.c.alias > after, customer_aliases.c.active == true())
        .order_by(customer_aliases.c.alias)
        .limit(limit)
    )
    return [(alias, customer_id) for alias, customer_id in conn.execute(query)]


# Every customer id has this shape (`domain.ids.new_id`: a UUID as `str(uuid)` writes it).
_ID_SHAPE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def home_partitions(conn: Connection, customer_ids: Iterable[str]) -> dict[str, int]:
    """Each customer's home partition (whose engine owns its billing)."""
    found: dict[str, int] = {}
    for chunk in chunks(sorted(set(customer_ids)), IN_CHUNK):
        query = select(customers.c.id, customers.c.partition).where(among(conn, customers.c.id, chunk))
        found.update((cid, int(p)) for cid, p in conn.execute(query))
    return found


def alias_held_elsewhere(conn: Connection, aliases: Sequence[str], customer_id: str | None) -> str | None:
    """One of `aliases` an active customer other than `customer_id` holds, if any."""
    if not aliases:
        return None
    query = select(customer_aliases.c.alias).where(
        customer_aliases.c.alias.in_(aliases), customer_aliases.c.active
    )
    if customer_id is not None:
        query = query.where(customer_aliases.c.customer_id != customer_id)
    taken: str | None = conn.execute(query).scalars().first()
    return taken


def _insert_aliases(conn: Connection, customer_id: str, aliases: Sequence[str], active: bool = True) -> None:
    if not aliases:
        return
    rows = [
        {"customer_id": customer_id, "alias": alias, "position": i, "active": active}
        for i, alias in enumerate(aliases)
    ]
    try:
        with conn.begin_nested():
            conn.execute(customer_aliases.insert(), rows)
    except IntegrityError:
        # Another request took the alias between our check and our insert.
        raise Conflict("ingest_aliases: an alias is already used by another customer") from None


def _load(conn: Connection, ids: Sequence[str]) -> list[CustomerRecord]:
    if not ids:
        return []
    aliases: dict[str, list[str]] = defaultdict(list)
    alias_rows = conn.execute(
        select(customer_aliases.c.customer_id, customer_aliases.c.alias)
        .where(customer_aliases.c.customer_id.in_(ids))
        .order_by(customer_aliases.c.customer_id, customer_aliases.c.position)
    )
    for cid, alias in alias_rows:
        aliases[cid].append(alias)
    rows = conn.execute(select(customers).where(customers.c.id.in_(ids))).mappings()
    by_id = {
        row["id"]: CustomerRecord(
            id=row["id"],
            name=row["name"],
            custom_fields=dict(row["custom_fields"] or {}),
            ingest_aliases=aliases.get(row["id"], []),
            created_at_us=row["created_at_us"],
            updated_at_us=row["updated_at_us"],
            archived_at_us=row["archived_at_us"],
        )
        for row in rows
    }
    return [by_id[i] for i in ids if i in by_id]


def active_customer_ids_after(
    conn: Connection, partition: int, after_id: str | None, limit: int
) -> list[str]:
    """A bounded chunk of a home partition's active customer ids in id order (for sweeps)."""
    query = (
        select(customers.c.id)
        .where(customers.c.partition == partition, customers.c.archived_at_us.is_(None))
        .order_by(customers.c.id)
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(customers.c.id > after_id)
    return list(conn.execute(query).scalars())


def active_customer_page(
    conn: Connection, after_id: str | None, limit: int, customer_ids: Sequence[str] | None = None
) -> list[str]:
    """Up to `limit` active customer ids after `after_id` in id order, among `customer_ids` if
    given (a page of /v1/usage: keyset, never every id)."""
    query = select(customers.c.id).where(customers.c.archived_at_us.is_(None)).order_by(customers.c.id)
    if after_id is not None:
        query = query.where(customers.c.id > after_id)
    if customer_ids is not None:
        query = query.where(customers.c.id.in_(list(customer_ids)))
    return list(conn.execute(query.limit(limit)).scalars())
