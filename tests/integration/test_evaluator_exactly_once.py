"""The evaluator counts every distinct event exactly once, however appends and batches interleave.

In-process, on a real database: events go through `event_log.append` (deduplicated on
transaction_id) in their own transactions, interleaved with `Evaluator.run_once()` calls of small
batches; the usage read back from the store must equal the naive model over distinct events.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from meterline.domain.events import UsageEvent
from meterline.domain.timeutil import month_bounds, now_us
from meterline.domain.usage_fold import CountableEvent, fold
from meterline.engine.evaluator import BatchResult, Evaluator
from meterline.engine.membership import process_member_id
from meterline.store import billable_metrics, customers, event_log, partitions, unmatched, usage
from meterline.store.cursors import CursorMoved
from meterline.store.db import Database
from meterline.store.partitions import Holding
from meterline.store.tables import usage_hourly
from tests.support.databases import fresh_database, migrated
from tests.support.usage_model import (
    BASE_US,
    Expected,
    Roles,
    Sent,
    accept_in_batches,
    oracle,
    sent_events,
)
from tests.support.waiting import wait_for

# The two billing periods the model's events fall in, and the end of the second.
FIRST_MONTH, SECOND_MONTH = month_bounds(BASE_US)
AFTER_SECOND_MONTH = month_bounds(SECOND_MONTH)[1]
# Placeholders the strategies use for customer references, resolved per world.
BY_ALIAS, BY_ID, UNKNOWN = "by-alias", "by-id", "unknown"


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with fresh_database("sqlite", tmp_path_factory.mktemp("evaluator")) as url, migrated(url) as database:
        yield database


@pytest.fixture(scope="module")
def postgres_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with fresh_database("postgres", tmp_path_factory.mktemp("evaluator")) as url, migrated(url) as database:
        yield database


@pytest.fixture
def db(backend: str, request: pytest.FixtureRequest) -> Database:
    database: Database = request.getfixturevalue(f"{backend}_db")
    return database


# -- a customer and its metrics, fresh for each example -----------------------------------------
@dataclass
class World:
    db: Database
    prefix: str
    customer_id: str
    alias: str
    roles: Roles

    def ref(self, placeholder: str) -> str:
        return {BY_ALIAS: self.alias, BY_ID: self.customer_id}.get(placeholder, f"nobody-{self.prefix}")

    def resolves(self, placeholder: str) -> bool:
        return placeholder in (BY_ALIAS, BY_ID)

    def event(self, sent: Sent) -> UsageEvent:
        return UsageEvent(
            f"{self.prefix}-{sent.transaction_id}",
            self.ref(sent.customer_ref),
            sent.event_type,
            sent.timestamp_us,
            sent.properties,
        )

    def append(self, batch: Sequence[Sent]) -> int:
        with self.db.log_write() as conn:
            return event_log.append(conn, [self.event(s) for s in batch], now_us())


def new_world(db: Database) -> World:
    prefix = uuid.uuid4().hex[:10]
    with db.write() as conn:
        customer = customers.insert_customer(conn, f"customer {prefix}", [f"alias-{prefix}"], {})

        def metric(kind: str, key: str | None = None, group_keys: list[list[str]] | None = None) -> str:
            return billable_metrics.create_metric(
                conn,
                name=f"{kind} {key} {prefix}",
                aggregation_type=kind,
                aggregation_key=key,
                event_type_filter=None,
                property_filters=[],
                group_keys=group_keys or [],
                custom_fields={},
            )

        roles = Roles(
            count=metric("COUNT"),
            count_by_g=metric("COUNT", group_keys=[["g"]]),
            sum=metric("SUM", "v"),
            max=metric("MAX", "v"),
            latest=metric("LATEST", "v"),
            unique=metric("UNIQUE", "u"),
        )
    return World(db, prefix, customer.id, f"alias-{prefix}", roles)


def retire(world: World) -> None:
    """Archive the example's metrics, so later examples' evaluators do not keep applying them."""
    with world.db.write() as conn:
        for metric_id in world.roles.kinds():
            billable_metrics.archive_metric(conn, metric_id)


def evaluator(db: Database, batch_events: int) -> Evaluator:
    return Evaluator(db, batch_events=batch_events, poll_interval_s=1.0)


# -- comparing the store with the model ---------------------------------------------------------
def expected_usage(
    world: World, batches: Sequence[Sequence[Sent]]
) -> dict[tuple[str, str, int, str], Expected]:
    kept = accept_in_batches(batches)
    counted = (
        (event.seq, world.customer_id, event.sent)
        for batch in kept
        for event in batch
        if world.resolves(event.sent.customer_ref)
    )
    return oracle(counted, world.roles)


def numbers(e: Expected, kind: str) -> tuple[Any, ...]:
    if kind == "UNIQUE":
        return (e.count, len(e.distinct))
    if kind == "COUNT":
        return (e.count,)
    return (e.count, e.total, e.maximum, e.latest)


def stored_numbers(row: usage.UsageRow, kind: str, distinct: int) -> tuple[Any, ...]:
    agg = row.aggregate
    if kind == "UNIQUE":
        return (agg.count, distinct)
    if kind == "COUNT":
        return (agg.count,)
    fraction = [None if v is None else Fraction(v) for v in (agg.maximum, agg.latest)]
    return (agg.count, Fraction(agg.total), *fraction)


def assert_usage_matches(world: World, batches: Sequence[Sequence[Sent]]) -> None:
    expected = expected_usage(world, batches)
    kinds = world.roles.kinds()
    metric_ids = list(kinds)
    with world.db.read() as conn:
        hourly = list(
            usage.hourly_rows(conn, [world.customer_id], metric_ids, FIRST_MONTH, AFTER_SECOND_MONTH)
        )
        unique_rows = list(
            usage.unique_value_rows(conn, [world.customer_id], metric_ids, FIRST_MONTH, AFTER_SECOND_MONTH)
        )
        periods = usage.monthly_rows(conn, world.customer_id, FIRST_MONTH) + usage.monthly_rows(
            conn, world.customer_id, SECOND_MONTH
        )
    unique_by_bucket: dict[tuple[str, int, str], set[str]] = {}
    for _c, metric_id, hour, group, value in unique_rows:
        unique_by_bucket.setdefault((metric_id, hour, group), set()).add(value)

    # Hour buckets.
    got = {
        (r.customer_id, r.metric_id, r.bucket_us, r.group_values): stored_numbers(
            r, kinds[r.metric_id], len(unique_by_bucket.get((r.metric_id, r.bucket_us, r.group_values), ()))
        )
        for r in hourly
        if r.metric_id in kinds
    }
    want = {key: numbers(e, kinds[key[1]]) for key, e in expected.items()}
    assert got == want
    assert {(m, h, g) for (m, h, g) in unique_by_bucket} == {
        (m, h, g) for (_c, m, h, g), e in expected.items() if kinds[m] == "UNIQUE"
    }

    # Billing periods (calendar months): the hour buckets of each month merged.
    by_period: dict[tuple[str, int, str], Expected] = {}
    for (_c, metric_id, hour, group), e in expected.items():
        start = FIRST_MONTH if hour < SECOND_MONTH else SECOND_MONTH
        by_period.setdefault((metric_id, start, group), Expected()).merge(e)
    got_periods = {}
    for r in periods:
        if r.metric_id not in kinds:
            continue
        distinct = {
            v
            for (m, h, g), values in unique_by_bucket.items()
            for v in values
            if m == r.metric_id
            and g == r.group_values
            and (FIRST_MONTH if h < SECOND_MONTH else SECOND_MONTH) == r.bucket_us
        }
        got_periods[(r.metric_id, r.bucket_us, r.group_values)] = stored_numbers(
            r, kinds[r.metric_id], len(distinct)
        )
    assert got_periods == {key: numbers(e, kinds[key[0]]) for key, e in by_period.items()}


def assert_log_kept_first_payloads(world: World, batches: Sequence[Sequence[Sent]]) -> None:
    kept = [event for batch in accept_in_batches(batches) for event in batch]
    with world.db.log_read() as conn:
        logged = event_log.find_by_transaction_ids(conn, [world.event(e.sent).transaction_id for e in kept])
    with world.db.read() as conn:
        outcomes = unmatched.find(conn, [e.seq for e in logged])
    assert [e.transaction_id for e in logged] == [world.event(e.sent).transaction_id for e in kept]
    for stored, model in zip(logged, kept, strict=True):
        assert (stored.event_type, stored.timestamp_us, stored.properties) == (
            model.sent.event_type,
            model.sent.timestamp_us,
            model.sent.properties,
        )
        # COUNT counts every event of a known customer; the others are reported, not lost.
        outcome = outcomes.get(stored.seq)
        if world.resolves(model.sent.customer_ref):
            assert outcome is None
        else:
            assert outcome is not None and outcome.reason == unmatched.UNKNOWN_CUSTOMER


# -- interleavings --------------------------------------------------------------------------------
events_strategy = sent_events(hours=60, transaction_ids=12, customer_refs=(BY_ALIAS, BY_ID, UNKNOWN))
operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.lists(events_strategy, min_size=1, max_size=6)),
        st.tuples(st.just("resend"), st.integers(0, 30), st.booleans()),
        st.tuples(st.just("run"), st.integers(1, 4)),
    ),
    max_size=12,
)


def run_interleaving(db: Database, ops: list[tuple[Any, ...]], final_batch_events: int) -> None:
    world = new_world(db)
    try:
        batches: list[list[Sent]] = []
        for op in ops:
            if op[0] == "run":
                evaluator(db, op[1]).run_once()
                continue
            if op[0] == "append":
                batch = list(op[1])
            elif batches:  # re-send an earlier batch, possibly in another order
                earlier = batches[op[1] % len(batches)]
                batch = earlier[::-1] if op[2] else list(earlier)
            else:
                continue
            batches.append(batch)
            world.append(batch)
        evaluator(db, final_batch_events).drain()
        assert_log_kept_first_payloads(world, batches)
        assert_usage_matches(world, batches)
        # Nothing left to apply, and applying again changes nothing.
        assert evaluator(db, 100).drain() == 0
        assert_usage_matches(world, batches)
    finally:
        retire(world)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, final_batch_events=st.integers(1, 5))
def test_interleaved_appends_and_batches_count_each_event_once_sqlite(
    sqlite_db: Database, ops: list[tuple[Any, ...]], final_batch_events: int
) -> None:
    run_interleaving(sqlite_db, ops, final_batch_events)


@pytest.mark.postgres
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, final_batch_events=st.integers(1, 5))
def test_interleaved_appends_and_batches_count_each_event_once_postgres(
    postgres_db: Database, ops: list[tuple[Any, ...]], final_batch_events: int
) -> None:
    run_interleaving(postgres_db, ops, final_batch_events)


# -- replays and races ----------------------------------------------------------------------------
def some_batches(count: int, size: int) -> list[list[Sent]]:
    """Distinct events, each batch re-sending a few of the previous one's."""
    batches: list[list[Sent]] = []
    for b in range(count):
        batch = [
            Sent(
                f"e{b}-{i}",
                BY_ALIAS if i % 3 else BY_ID,
                "call",
                BASE_US + (i % 5) * 3_600_000_000,
                {"v": str(i * b), "u": f"user-{i % 7}", "g": ["eu", "us"][i % 2]},
                Fraction(i * b),
            )
            for i in range(size)
        ]
        batches.append(batch + (batches[-1][:3] if batches else []))
    return batches


def replay_at(db: Database, stale: Holding) -> None:
    """Apply the batch after `stale` once more, as an evaluator holding stale positions would:
    the same store writes as the evaluator's, under its check of the positions it read."""
    with db.log_read() as log:
        batch = event_log.read_after(log, stale.start(), 1000)
    with db.write() as conn:
        partitions.lock_held(conn, process_member_id(), stale)
        resolved = customers.resolve_customer_refs(conn, {e.customer_ref for e in batch})
        deltas = fold(
            [
                CountableEvent(e.seq, resolved[e.customer_ref], e.event_type, e.timestamp_us, e.properties)
                for e in batch
                if e.customer_ref in resolved
            ],
            billable_metrics.active_metric_rules(conn),
        )
        usage.add_hourly(conn, deltas.hourly)
        usage.add_monthly(conn, deltas.monthly, deltas.month_ends)
        usage.add_unique_values(conn, deltas.unique_values)
        partitions.advance(conn, process_member_id(), stale, batch[-1].seq)


def test_replaying_a_committed_batch_is_refused(db: Database) -> None:
    """A batch applied twice from the same position (two evaluators racing, or one resuming from
    a position it read before another committed) is refused by its check of the positions."""
    world = new_world(db)
    try:
        evaluator(db, 1).run_once()  # this process holds the partitions
        with db.read() as conn:
            stale = Holding(partitions.positions(conn))
        batches = some_batches(4, 10)
        for batch in batches:
            world.append(batch)
        assert evaluator(db, 1000).drain() > 0
        assert_usage_matches(world, batches)
        with pytest.raises(CursorMoved):
            replay_at(db, stale)
        assert_usage_matches(world, batches)  # the replay's writes were rolled back with it
    finally:
        retire(world)


@pytest.mark.postgres
def test_two_evaluators_racing_for_one_batch_count_it_once(postgres_db: Database) -> None:
    """Two evaluators read the same positions and apply the same batch concurrently: one
    commits, the other finds the positions moved when it locks them, and applies nothing."""
    db = postgres_db
    world = new_world(db)
    try:
        evaluator(db, 1000).run_once()  # the cursor row exists before the race
        batches = some_batches(3, 10)
        for batch in batches:
            world.append(batch)
        outcomes: list[BatchResult | BaseException] = []

        def run() -> None:
            try:
                outcomes.append(evaluator(db, 1000).run_once())
            except CursorMoved as moved:
                outcomes.append(moved)

        with db.engine.connect() as blocker:
            # Hold a usage row both evaluators will write, so both read the cursor and then wait.
            blocker.execute(
                usage_hourly.insert().values(
                    customer_id=world.customer_id,
                    metric_id=world.roles.count,
                    hour_us=BASE_US,
                    group_values="{}",
                    event_count=0,
                    total=0,
                    latest_ts_us=-1,
                    latest_seq=-1,
                )
            )
            racers = [threading.Thread(target=run) for _ in range(2)]
            for racer in racers:
                racer.start()
            wait_for(lambda: waiting_on_locks(db), lambda waiting: waiting >= 2, timeout_s=10)
            blocker.rollback()
        for racer in racers:
            racer.join(30)
        assert not any(racer.is_alive() for racer in racers)
        applied = sorted(o.events for o in outcomes if isinstance(o, BatchResult))
        assert applied == [0, sum(len(b) for b in batches) - 6], outcomes  # 6 re-sent duplicates
        assert_usage_matches(world, batches)
    finally:
        retire(world)


def waiting_on_locks(db: Database) -> int:
    with db.read() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def test_racing_evaluators_count_each_event_once(db: Database) -> None:
    world = new_world(db)
    try:
        evaluator(db, 1000).run_once()
        batches = some_batches(12, 15)
        for batch in batches:
            world.append(batch)
        refused: list[BaseException] = []
        lock = threading.Lock()

        def drain(batch_events: int) -> None:
            worker = evaluator(db, batch_events)
            while True:
                try:
                    if worker.run_once().events == 0:
                        return
                except (CursorMoved, DBAPIError) as error:  # lost the race (or, wrongly, deadlocked)
                    with lock:
                        refused.append(error)

        threads = [threading.Thread(target=drain, args=(n,)) for n in (3, 5, 7, 11)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
        # Losing the compare-and-set is the only way to lose: writers take row locks in one order.
        assert all(isinstance(e, CursorMoved) for e in refused), [str(e)[:300] for e in refused]
        assert_usage_matches(world, batches)
    finally:
        retire(world)


# -- values that cannot be counted must not stop counting -----------------------------------------
def test_unusable_property_values_are_not_counted_and_never_stop_the_evaluator(db: Database) -> None:
    world = new_world(db)
    try:
        ts = BASE_US
        poison: list[dict[str, Any]] = [
            {"v": "1e999999999"},
            {"v": "1e200000"},
            {"v": "0E-100000"},
            {"v": "-1e-999999"},
            {"g": "z" * 5000},
            {"u": "long " * 1000},
            {"u": "nul\x00"},
            {"u": "sha256:" + "0" * 64},
        ]
        batch = [Sent(f"p{i}", BY_ALIAS, "call", ts, props, None) for i, props in enumerate(poison)]
        batch.append(
            Sent("ok", BY_ALIAS, "call", ts, {"v": "2.5", "u": "nul\x00", "g": "eu"}, Fraction(5, 2))
        )
        world.append(batch)
        assert evaluator(db, 3).drain() >= len(batch)
        assert_usage_matches(world, [batch])
        with db.read() as conn:
            rows = {
                r.metric_id: r.aggregate
                for r in usage.hourly_rows(conn, [world.customer_id], list(world.roles.kinds()), ts, ts + 1)
                if r.metric_id != world.roles.count_by_g
            }
            values = list(
                usage.unique_value_rows(conn, [world.customer_id], [world.roles.unique], ts, ts + 1)
            )
        assert rows[world.roles.count].count == len(batch)
        assert rows[world.roles.sum].count == 1 and rows[world.roles.sum].total == Fraction(5, 2)
        assert rows[world.roles.unique].count == 4
        assert len(values) == 3  # "long ...", "nul\x00" (twice), and the literal "sha256:..." value
    finally:
        retire(world)
