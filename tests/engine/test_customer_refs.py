"""The engine keeps what each event reference (a customer id or an ingest alias) resolved to
across batches (`engine.customer_refs`), and never counts an event for a customer that the
reference no longer names: an alias moved to another customer, a customer archived."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, event, text

from meterline.domain.events import UsageEvent
from meterline.domain.partitions import partition_of
from meterline.domain.timeutil import US_PER_SECOND, month_bounds
from meterline.engine.customer_refs import ResolvedReferences
from meterline.store import event_log, usage
from tests.support.inprocess import InProcess

EVENT_TYPE = "call"


def send(app: InProcess, reference: str) -> None:
    app.now += US_PER_SECOND
    event = UsageEvent(f"tx-{uuid.uuid4()}", reference, EVENT_TYPE, app.now, {})
    with app.db.log_write() as conn:
        event_log.append(conn, [event], app.now)
    app.run(app.now)


def counted(app: InProcess, customer_id: str) -> int:
    """The customer's events this month, as readers see them (an open hour's are in no month's row
    until the hour is sealed: `store.usage`)."""
    with app.db.read() as conn:
        rows = usage.monthly_rows_for(conn, [customer_id], month_bounds(app.now)[0])[customer_id]
    return sum(row.aggregate.count for row in rows)


def unknown_customer_events(app: InProcess) -> int:
    with app.db.read() as conn:
        query = text("SELECT count(*) FROM unmatched_events WHERE reason = 'unknown_customer'")
        return int(conn.execute(query).scalar_one())


def test_an_alias_moved_to_another_customer_counts_for_the_new_one_from_the_next_batch(
    app: InProcess,
) -> None:
    app.client.v1.billable_metrics.create(
        name="calls", aggregation_type="COUNT", event_type_filter={"in_values": [EVENT_TYPE]}
    )
    first = app.client.v1.customers.create(name="first", ingest_aliases=["acct-7"]).data.id
    second = app.client.v1.customers.create(name="second").data.id
    send(app, "acct-7")
    send(app, "acct-7")  # resolved from what the engine kept
    app.client.v1.customers.set_ingest_aliases(customer_id=first, ingest_aliases=[])
    app.client.v1.customers.set_ingest_aliases(customer_id=second, ingest_aliases=["acct-7"])
    send(app, "acct-7")
    assert (counted(app, first), counted(app, second)) == (2, 1)


def test_an_archived_customer_is_no_longer_counted_by_its_id_or_alias(app: InProcess) -> None:
    app.client.v1.billable_metrics.create(
        name="calls", aggregation_type="COUNT", event_type_filter={"in_values": [EVENT_TYPE]}
    )
    customer = app.client.v1.customers.create(name="leaving", ingest_aliases=["acct-9"]).data.id
    send(app, customer)
    send(app, "acct-9")
    app.client.v1.customers.archive(id=customer)
    send(app, customer)
    send(app, "acct-9")
    assert counted(app, customer) == 2
    assert unknown_customer_events(app) == 2


def test_one_batch_resolves_ids_aliases_and_aliases_shaped_like_ids(app: InProcess) -> None:
    app.client.v1.billable_metrics.create(
        name="calls", aggregation_type="COUNT", event_type_filter={"in_values": [EVENT_TYPE]}
    )
    uuid_alias = str(uuid.uuid4())  # an alias may look like a customer id without being one
    by_id = app.client.v1.customers.create(name="by id").data.id
    by_alias = app.client.v1.customers.create(name="by alias", ingest_aliases=["acct-1"]).data.id
    by_uuid_alias = app.client.v1.customers.create(name="uuid alias", ingest_aliases=[uuid_alias]).data.id
    references = [by_id, "acct-1", uuid_alias, by_id.upper(), "acct-unknown"]
    app.now += US_PER_SECOND
    events = [UsageEvent(f"tx-{uuid.uuid4()}", ref, EVENT_TYPE, app.now, {}) for ref in references]
    with app.db.log_write() as conn:
        event_log.append(conn, events, app.now)
    app.run(app.now)
    assert [counted(app, c) for c in (by_id, by_alias, by_uuid_alias)] == [1, 1, 1]
    assert unknown_customer_events(app) == 2  # ids are matched exactly, not in another case


def alias_statements_of(app: InProcess, references: list[str]) -> int:
    """The statements reading customer aliases while the engine counts one event per reference."""
    read: list[str] = []

    def note(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if "customer_aliases" in sql:
            read.append(sql)

    app.now += US_PER_SECOND
    events = [UsageEvent(f"tx-{uuid.uuid4()}", ref, EVENT_TYPE, app.now, {}) for ref in references]
    with app.db.log_write() as conn:
        event_log.append(conn, events, app.now)
    event.listen(app.db.engine, "before_cursor_execute", note)
    try:
        app.run(app.now)
    finally:
        event.remove(app.db.engine, "before_cursor_execute", note)
    return len(read)


def test_an_engine_started_again_resolves_its_aliases_without_reading_them(app: InProcess) -> None:
    app.client.v1.billable_metrics.create(
        name="calls", aggregation_type="COUNT", event_type_filter={"in_values": [EVENT_TYPE]}
    )
    aliases = [f"acct-{n}" for n in range(5)]
    ids = [app.client.v1.customers.create(name=a, ingest_aliases=[a]).data.id for a in aliases]
    app.restart()
    app.run(app.now)  # the new engine loads the active aliases of the partitions it holds
    assert len(app.evaluator().references) == len(aliases)
    assert alias_statements_of(app, aliases) == 0
    assert [counted(app, c) for c in ids] == [1] * len(aliases)


def test_an_alias_moved_after_the_engine_loaded_it_counts_for_its_new_customer(app: InProcess) -> None:
    app.client.v1.billable_metrics.create(
        name="calls", aggregation_type="COUNT", event_type_filter={"in_values": [EVENT_TYPE]}
    )
    first = app.client.v1.customers.create(name="first", ingest_aliases=["acct-3"]).data.id
    second = app.client.v1.customers.create(name="second").data.id
    app.restart()
    app.run(app.now)  # loaded
    app.client.v1.customers.set_ingest_aliases(customer_id=first, ingest_aliases=[])
    app.client.v1.customers.set_ingest_aliases(customer_id=second, ingest_aliases=["acct-3"])
    send(app, "acct-3")
    assert (counted(app, first), counted(app, second)) == (0, 1)


def test_the_engine_keeps_at_most_its_capacity_of_references_the_least_recently_used_dropped(
    app: InProcess,
) -> None:
    aliases = [f"acct-{n}" for n in range(4)]
    ids = [app.client.v1.customers.create(name=a, ingest_aliases=[a]).data.id for a in aliases]
    kept = ResolvedReferences(capacity=2)
    with app.db.write() as conn:
        kept.begin(conn)
        while kept.warm(conn):
            pass
        assert len(kept) == 2  # full: the rest are resolved on their first use
        assert kept.resolve(conn, aliases[:3]) == dict(zip(aliases[:3], ids[:3], strict=True))
        assert len(kept) == 2
        assert kept.resolve(conn, [aliases[3]]) == {aliases[3]: ids[3]}
        assert len(kept) == 2


def test_an_engine_holding_some_partitions_loads_the_aliases_whose_events_they_receive(
    app: InProcess,
) -> None:
    aliases = [f"acct-{n}" for n in range(12)]
    for alias in aliases:
        app.client.v1.customers.create(name=alias, ingest_aliases=[alias])
    held = frozenset({partition_of(aliases[0]), partition_of(aliases[1])})
    kept = ResolvedReferences()
    with app.db.write() as conn:
        kept.begin(conn, held)
        while kept.warm(conn):
            pass
    loaded = {a for a in aliases if partition_of(a) in held}
    assert len(kept) == len(loaded)
    with app.db.write() as conn:
        # Kept ones resolve without a statement; the others are looked up, and kept too.
        assert alias_statements_of_resolving(app, conn, kept, sorted(loaded)) == 0
        assert alias_statements_of_resolving(app, conn, kept, aliases) == 1


def alias_statements_of_resolving(
    app: InProcess, conn: Connection, kept: ResolvedReferences, references: list[str]
) -> int:
    read: list[str] = []

    def note(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if "customer_aliases" in sql:
            read.append(sql)

    event.listen(app.db.engine, "before_cursor_execute", note)
    try:
        assert set(kept.resolve(conn, references)) == set(references)
    finally:
        event.remove(app.db.engine, "before_cursor_execute", note)
    return len(read)
