"""Custom fields: the keys added per entity type, and the values each entity keeps in its own
`custom_fields` column (where its reads, and the engine's alert filters, find them).

`services.custom_fields` checks entities and the uniqueness rule; this module only reads and
writes. Entities are named as Metronome names them (`domain.custom_fields.SUPPORTED`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, Table, delete, func, select, update

from meterline.domain.contracts import CREDIT, POSTPAID, PREPAID
from meterline.domain.errors import NotFound
from meterline.domain.timeutil import now_us
from meterline.store.sql import upsert
from meterline.store.tables import (
    alerts,
    billable_metrics,
    commits,
    contracts,
    custom_field_keys,
    customers,
    products,
    rate_cards,
)


@dataclass(frozen=True, slots=True)
class _Home:
    """Where an entity type's values live: its table, narrowed to the rows of that type."""

    table: Table
    noun: str  # as errors name one
    only: ColumnElement[bool] | None = None
    # Its values scope alert measures (custom_field_filters), so its customer is re-measured.
    billed: bool = False


_HOMES = {
    "alert": _Home(alerts, "alert"),
    "billable_metric": _Home(billable_metrics, "billable metric"),
    "commit": _Home(commits, "commit", commits.c.kind.in_([PREPAID, POSTPAID]), billed=True),
    "contract": _Home(contracts, "contract", billed=True),
    "contract_credit": _Home(commits, "credit", commits.c.kind == CREDIT, billed=True),
    "contract_product": _Home(products, "product"),
    "customer": _Home(customers, "customer"),
    "rate_card": _Home(rate_cards, "rate card"),
}


@dataclass(frozen=True, slots=True)
class CustomFieldKey:
    entity: str
    key: str
    enforce_uniqueness: bool


@dataclass(frozen=True, slots=True)
class EntityFields:
    """One entity's custom fields, and the customer it bills (None for catalog entities)."""

    values: dict[str, str]
    customer_id: str | None
    archived: bool


def add_key(conn: Connection, entity: str, key: str, enforce_uniqueness: bool) -> None:
    """Add the key, or change whether it enforces uniqueness if it is there already."""
    upsert(
        conn,
        custom_field_keys,
        [{"entity": entity, "key": key, "enforce_uniqueness": enforce_uniqueness, "created_at_us": now_us()}],
        ["entity", "key"],
    )


def remove_key(conn: Connection, entity: str, key: str) -> bool:
    """Whether there was such a key to remove."""
    table = custom_field_keys
    return bool(conn.execute(delete(table).where(table.c.entity == entity, table.c.key == key)).rowcount)


def list_keys(
    conn: Connection, entities: Sequence[str] | None, after: tuple[str, str] | None, limit: int
) -> list[CustomFieldKey]:
    table = custom_field_keys
    query = select(table.c.entity, table.c.key, table.c.enforce_uniqueness).order_by(
        table.c.entity, table.c.key
    )
    if entities is not None:
        query = query.where(table.c.entity.in_(list(entities)))
    if after is not None:
        query = query.where(
            (table.c.entity > after[0]) | ((table.c.entity == after[0]) & (table.c.key > after[1]))
        )
    return [CustomFieldKey(*row) for row in conn.execute(query.limit(limit))]


def unique_keys(conn: Connection, entity: str) -> set[str]:
    """The entity type's keys that enforce uniqueness."""
    table = custom_field_keys
    rows = conn.execute(select(table.c.key).where(table.c.entity == entity, table.c.enforce_uniqueness))
    return set(rows.scalars())


def fields_of(conn: Connection, entity: str, entity_id: str) -> EntityFields:
    """The entity's custom fields, its row locked until the caller's transaction ends (a
    read-modify-write of the values)."""
    home = _HOMES[entity]
    table = home.table
    owner = table.c.customer_id if home.billed else table.c.id
    query = select(table.c.custom_fields, table.c.archived_at_us, owner).where(
        *_narrowed(home, table.c.id == entity_id)
    )
    row = conn.execute(query.with_for_update()).first()
    if row is None:
        raise NotFound(f"entity_id: no {home.noun} with id {entity_id}")
    return EntityFields(dict(row[0] or {}), row[2] if home.billed else None, row[1] is not None)


def replace_values(conn: Connection, entity: str, entity_id: str, values: dict[str, str]) -> None:
    home = _HOMES[entity]
    condition = _narrowed(home, home.table.c.id == entity_id)
    conn.execute(update(home.table).where(*condition).values(custom_fields=values))


def holder_of(conn: Connection, entity: str, key: str, value: str, other_than: str | None) -> str | None:
    """The id of an active entity of this type (other than `other_than`) holding `value` for `key`."""
    home = _HOMES[entity]
    table = home.table
    held, query = _values_of_key(conn, home, key, select(table.c.id))
    if other_than is not None:
        query = query.where(table.c.id != other_than)
    found = conn.execute(query.where(held == value).limit(1)).first()
    return None if found is None else str(found[0])


def shared_value(conn: Connection, entity: str, key: str) -> str | None:
    """A value of `key` that two or more active entities of this type hold, if any."""
    home = _HOMES[entity]
    held, query = _values_of_key(conn, home, key, None)
    query = query.where(held.is_not(None)).group_by(held).having(func.count() > 1).limit(1)
    found = conn.execute(query).first()
    return None if found is None else str(found[0])


def _values_of_key(
    conn: Connection, home: _Home, key: str, query: Select[Any] | None
) -> tuple[ColumnElement[Any], Select[Any]]:
    """The value `key` holds on each active row of the entity type, and a select over those rows
    (`query`, or one of the values themselves)."""
    table = home.table
    if conn.dialect.name == "sqlite":
        # json_each reads any key, whatever characters it holds (a JSON path would need quoting).
        each = func.json_each(table.c.custom_fields).table_valued("key", "value").alias("cf")
        held: ColumnElement[Any] = each.c.value
        source: Any = table.join(each, each.c.key == key)
    else:
        held = table.c.custom_fields[key].as_string()
        source = table
    selected = query if query is not None else select(held)
    condition = _narrowed(home, table.c.archived_at_us.is_(None))
    return held, selected.select_from(source).where(*condition)


def _narrowed(home: _Home, *conditions: ColumnElement[bool]) -> list[ColumnElement[bool]]:
    return [*conditions, *([home.only] if home.only is not None else [])]
