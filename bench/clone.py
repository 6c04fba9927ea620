"""Copy one template customer's rows N-1 times, straight into the database, whatever the schema.

Which rows are the customer's, found from `meterline.store.tables.metadata` rather than a list, so
that tables added later are cloned too:

- every row of a table with a `customer_id` column equal to the template's id, and every row of
  any table with a string column holding the id of a row already found (the customer itself by
  its `id`; a child table keyed by `contract_id`, `commit_id`, `invoice_id`...), to a fixed point;
- except the tables in `SKIPPED_TABLES`: the event log and its dedup keys, usage aggregates and
  unmatched events (state derived from events: a deployment seeded before a run has none), the
  notification outbox and webhook deliveries (history, not state), the alert sweep queue and
  billing requests (work queues, empty once the evaluator has settled), the evaluator cursor and
  API tokens (global). Customers, aliases, contracts, commits, alerts, alert states, alert
  wakeups, draft invoices and commit deductions are cloned: what a real deployment of N
  customers would hold before the run.

Each clone gets fresh ids: every UUID found in the template's rows (a row's string primary key,
or an id inside a JSON or text column, such as a commit segment id) that is not the primary key
of a shared row (products, rate cards, credit types, metrics) is replaced, by string
replacement in every string and JSON column, with a new random UUID; the template's ingest alias
with the clone's. An id that is not a random (version 4) UUID is derived from other columns:
`DERIVED_IDS` says how to recompute it for the clone (a draft invoice's id comes from its contract
and period); a table whose derived ids cannot be recomputed is left out, with a warning, and the
evaluator rebuilds it when the customer's first event arrives.

Rows are copied by `INSERT ... SELECT` joining a temporary snapshot of the template's rows with a
temporary table holding, per clone, its new values: the database does the copying, chunk by chunk.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    type_coerce,
    update,
)

from bench.ids import random_uuid
from meterline.domain.partitions import home_partition
from meterline.store import invoices as invoice_store
from meterline.store.tables import customers, metadata

SKIPPED_TABLES = frozenset(
    {
        "alembic_version",
        "api_tokens",
        "events",
        "event_dedup",
        "unmatched_events",
        "usage_hourly",
        "usage_monthly",
        "usage_unique_values",
        "log_cursors",
        "server_keys",
        "billing_requests",
        "alert_sweeps",
        "notifications",
        "webhook_endpoints",
        "webhook_deliveries",
        "webhook_attempts",
    }
)
UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

Remap = Callable[[str], str]
# How a table's non-random primary key is computed from the row's other (remapped) columns.
DERIVED_IDS: dict[str, Callable[[Mapping[str, Any], Remap], str]] = {
    "invoices": lambda row, remap: invoice_store.invoice_id(remap(row["contract_id"]), row["start_us"]),
}


@dataclass(frozen=True)
class TemplateTable:
    table: Table
    where: ColumnElement[bool]
    rows: list[dict[str, Any]]


@dataclass
class Template:
    """The template customer's rows and the values each clone replaces."""

    customer_id: str
    alias: str
    tables: list[TemplateTable]
    fresh_ids: list[str]
    derived_ids: dict[str, Callable[[Remap], str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def replaced(self) -> list[str]:
        """Every old value a clone replaces, in the order of the map table's columns."""
        return [*self.fresh_ids, *self.derived_ids, self.alias]

    def rows_per_customer(self) -> dict[str, int]:
        return {t.table.name: len(t.rows) for t in self.tables}


def _string_columns(table: Table) -> list[Column[Any]]:
    return [c for c in table.columns if isinstance(c.type, String)]


def _textual(column: Column[Any]) -> bool:
    return isinstance(column.type, String | JSON)


def _single_string_key(table: Table) -> Column[Any] | None:
    keys = list(table.primary_key.columns)
    return keys[0] if len(keys) == 1 and isinstance(keys[0].type, String) else None


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _is_random_uuid(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4
    except ValueError:
        return False


def read_template(conn: Connection, customer_id: str, alias: str) -> Template:
    """Find the template's rows (see the module docstring) and decide what each clone replaces."""
    candidates = [t for t in metadata.sorted_tables if t.name not in SKIPPED_TABLES]
    owned = {customer_id}
    found: dict[str, TemplateTable] = {}
    while True:
        before = (len(owned), sum(len(t.rows) for t in found.values()))
        for table in candidates:
            columns = _string_columns(table)
            if not columns:
                continue
            where = or_(*(c.in_(sorted(owned)) for c in columns))
            rows = [dict(r) for r in conn.execute(select(table).where(where)).mappings()]
            if not rows:
                continue
            found[table.name] = TemplateTable(table, where, rows)
            key = _single_string_key(table)
            if key is not None:
                owned.update(str(r[key.name]) for r in rows)
        if (len(owned), sum(len(t.rows) for t in found.values())) == before:
            break
    tables = [found[t.name] for t in candidates if t.name in found]
    template = Template(customer_id, alias, tables, [])
    others = [t for t in metadata.sorted_tables if t.name not in found]
    _choose_replacements(conn, template, owned, others)
    return template


def _choose_replacements(conn: Connection, template: Template, owned: set[str], others: list[Table]) -> None:
    embedded = {
        match
        for t in template.tables
        for row in t.rows
        for column in t.table.columns
        if _textual(column) and row[column.name] is not None
        for match in UUID_PATTERN.findall(_text_of(row[column.name]))
    }
    ids = owned | embedded
    for table in others:
        # An id that is the key of a row not cloned is shared (a product, a rate card...).
        key = _single_string_key(table)
        if key is not None and (lookup := sorted(ids - owned)):
            ids -= set(conn.execute(select(key).where(key.in_(lookup))).scalars())
    left_out: set[str] = set()
    for t in template.tables:
        key = _single_string_key(t.table)
        if key is None:
            continue
        for row in t.rows:
            old = str(row[key.name])
            if _is_random_uuid(old) or old == template.customer_id:
                continue
            ids.discard(old)
            derive = DERIVED_IDS.get(t.table.name)
            if derive is not None and derive(row, _unchanged) == old:
                template.derived_ids[old] = _bound(derive, row)
            else:
                left_out.add(t.table.name)
                template.warnings.append(
                    f"{t.table.name}: id {old} is not random and the seeder does not know how it is "
                    "derived; not cloned (the evaluator rebuilds it on the customer's first event)"
                )
    _leave_out(template, left_out)
    template.fresh_ids = sorted(ids)


def _unchanged(value: str) -> str:
    return value


def _bound(
    derive: Callable[[Mapping[str, Any], Remap], str], row: Mapping[str, Any]
) -> Callable[[Remap], str]:
    return lambda remap: derive(row, remap)


def _leave_out(template: Template, tables: set[str]) -> None:
    """Drop the tables, and the rows of other tables that refer to their ids."""
    if not tables:
        return
    dropped_ids = {
        str(row[key.name])
        for t in template.tables
        if t.table.name in tables and (key := _single_string_key(t.table)) is not None
        for row in t.rows
    }
    template.derived_ids = {k: v for k, v in template.derived_ids.items() if k not in dropped_ids}
    kept = []
    for t in template.tables:
        refers = any(
            old in _text_of(row[c.name])
            for row in t.rows
            for c in t.table.columns
            if _textual(c) and row[c.name] is not None
            for old in dropped_ids
        )
        if t.table.name not in tables and not refers:
            kept.append(t)
    template.tables = kept


class Cloner:
    """Inserts clones of a template, `clone(first, count)` per chunk; the caller commits."""

    def __init__(
        self,
        template: Template,
        alias_for: Callable[[int], str],
        *,
        watch: Sequence[int] = (),
        seed: int | None = None,
    ):
        self.template = template
        self.alias_for = alias_for
        self.rng = random.Random(seed)
        # The customer id given to each watched clone, to find it through the API afterwards.
        self.watch = set(watch)
        self.watched: dict[int, str] = {}
        self._snapshots: dict[str, Table] = {}
        self._homes: list[dict[str, Any]] = []  # each clone's id and home partition, per chunk
        replaced = template.replaced
        self.map_table = Table(
            "bench_clone_map",
            MetaData(),
            Column("n", BigInteger, primary_key=True),
            *(Column(f"v{i}", String) for i in range(len(replaced))),
            prefixes=["TEMPORARY"],
        )

    def prepare(self, conn: Connection) -> None:
        """Temporary tables: the map, and a snapshot of the template's rows of each table, so that
        every chunk reads a handful of rows instead of filtering tables that keep growing."""
        self.map_table.create(conn)
        for t in self.template.tables:
            snapshot = self._snapshot(t)
            snapshot.create(conn)
            conn.execute(
                insert(snapshot).from_select(
                    [c.name for c in t.table.columns], select(t.table).where(t.where)
                )
            )

    def clone(self, conn: Connection, first: int, count: int) -> None:
        conn.execute(self.map_table.delete())
        self._homes = []
        conn.execute(insert(self.map_table), list(self._map_rows(first, count)))
        for t in self.template.tables:
            conn.execute(self._copy(t, conn.dialect.name))
        # A copied row keeps the template's home partition: each clone's follows its own alias.
        conn.execute(
            update(customers)
            .where(customers.c.id == bindparam("clone_id"))
            .values(partition=bindparam("home")),
            self._homes,
        )

    def _map_rows(self, first: int, count: int) -> Iterator[dict[str, Any]]:
        template = self.template
        for n in range(first, first + count):
            new = {old: random_uuid(self.rng) for old in template.fresh_ids}
            new[template.alias] = self.alias_for(n)

            def remap(value: str, new: dict[str, str] = new) -> str:
                return new.get(value, value)

            for old, derive in template.derived_ids.items():
                new[old] = derive(remap)
            if n in self.watch:
                self.watched[n] = new[template.customer_id]
            clone_id = new[template.customer_id]
            self._homes.append(
                {"clone_id": clone_id, "home": home_partition(clone_id, [new[template.alias]])}
            )
            yield {"n": n, **{f"v{i}": new[old] for i, old in enumerate(template.replaced)}}

    def _snapshot(self, t: TemplateTable) -> Table:
        if t.table.name not in self._snapshots:
            self._snapshots[t.table.name] = Table(
                f"bench_template_{t.table.name}",
                MetaData(),
                *(Column(c.name, c.type) for c in t.table.columns),
                prefixes=["TEMPORARY"],
            )
        return self._snapshots[t.table.name]

    def _copy(self, t: TemplateTable, dialect: str) -> Any:
        source = self._snapshot(t)
        skip = t.table.autoincrement_column
        names = [c.name for c in t.table.columns if c is not skip]
        exprs = [self._remapped(t, source.c[name], dialect) for name in names]
        query = select(*exprs).select_from(source.join(self.map_table, true()))
        return insert(t.table).from_select(names, query)

    def _remapped(self, t: TemplateTable, column: Column[Any], dialect: str) -> ColumnElement[Any]:
        if not _textual(column):
            return column
        texts = [_text_of(row[column.name]) for row in t.rows if row[column.name] is not None]
        olds = [(i, old) for i, old in enumerate(self.template.replaced) if any(old in s for s in texts)]
        if not olds:
            return column
        is_json = isinstance(column.type, JSON)
        expr: ColumnElement[Any] = (
            cast(column, Text) if is_json and dialect == "postgresql" else type_coerce(column, Text)
        )
        for i, old in olds:
            expr = func.replace(expr, literal(old), self.map_table.c[f"v{i}"])
        if is_json and dialect == "postgresql":
            return cast(expr, column.type)
        return expr


def chunks(first: int, last: int, size: int) -> Sequence[tuple[int, int]]:
    """(first index, count) pairs covering first..last inclusive."""
    return [(start, min(size, last - start + 1)) for start in range(first, last + 1, size)]
