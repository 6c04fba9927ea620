"""Usage journaled and merged many batches at once (`engine.usage_deferral`, `store.usage_journal`),
its open hours' rows kept apart and sealed once their hour has passed (`store.usage`), reads as
if every batch had written its rows at once: for any interleaving of batches, merges, the clock
moving (hours ending, sealed a few rows at a time), batches rolled back, restarts (the engine's
memory of the journal dropped) and reads, every read of usage (hour rows, month rows, distinct
values, a customer's fold position) equals the from-scratch fold of the batches committed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from meterline.domain.metrics import AggregationType, MetricRules
from meterline.domain.timeutil import US_PER_HOUR, month_bounds, now_us
from meterline.domain.usage_fold import CountableEvent, fold
from meterline.engine.usage_deferral import DeferralSettings, UsageDeferral
from meterline.store import tables, usage, usage_journal
from meterline.store.db import Database
from meterline.store.tables import usage_hourly, usage_hourly_open, usage_monthly, usage_unique_values
from meterline.store.usage_position import customer_fold_position
from tests.support.usage_model import aggregate_fields

SUM = MetricRules("sum", AggregationType.SUM, aggregation_key="v")
UNIQUE = MetricRules("unique", AggregationType.UNIQUE, aggregation_key="u")
CUSTOMERS = ["c1", "c2", "c3", "c4", "c5"]
# Two hours before this month began, so that batches span two calendar months.
START_US = month_bounds(now_us())[0] - 2 * US_PER_HOUR


class Crash(Exception):
    """A batch that fails after writing its usage: its transaction rolls back."""


event = st.tuples(
    st.sampled_from(CUSTOMERS),
    st.integers(0, 3),  # hour
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-1000, max_value=1000),
    st.sampled_from(["a", "b", "c"]),
)
step = st.one_of(
    st.tuples(st.just("batch"), st.lists(event, min_size=1, max_size=8)),
    # A batch that may not journal (as an engine holding some partitions): its rows written at once.
    st.tuples(st.just("write"), st.lists(event, min_size=1, max_size=8)),
    st.tuples(st.just("crash"), st.lists(event, min_size=1, max_size=8)),
    st.tuples(st.just("merge"), st.none()),
    # The engine's clock set to this hour's start (batches span hours 0 to 3): the hours before
    # it are no longer open, and the batches that follow seal their rows.
    st.tuples(st.just("clock"), st.integers(0, 5)),
    st.tuples(st.just("idle"), st.none()),  # a batch without events: what is due, merged and sealed
    st.tuples(st.just("restart"), st.none()),
    st.tuples(st.just("read"), st.none()),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(
    # A row sealed onto one a batch wrote at once for the same hour: the two added.
    steps=[
        ("batch", [("c1", 0, Decimal(1), "a")]),
        ("merge", None),
        ("write", [("c1", 0, Decimal(2), "a")]),
        ("clock", 2),
        ("idle", None),
    ],
    max_deltas=40,
    hot_events_per_row=100,
    seal_rows=1,
)
@given(
    steps=st.lists(step, min_size=1, max_size=14),
    max_deltas=st.integers(2, 40),
    hot_events_per_row=st.sampled_from([2, 100]),
    seal_rows=st.integers(1, 4),
)
def test_every_read_equals_the_fold_of_the_batches_committed(
    db: Database, steps: list[tuple[str, Any]], max_deltas: int, hot_events_per_row: int, seal_rows: int
) -> None:
    with db.write() as conn:
        for table in (
            usage_hourly,
            usage_hourly_open,
            usage_monthly,
            usage_unique_values,
            tables.usage_journal,
        ):
            conn.execute(delete(table))
    deferral_settings = DeferralSettings(
        max_deltas=max_deltas,
        max_age_s=3600 * 24,
        hot_events_per_row=hot_events_per_row,
        min_rows=1,
        open_grace_s=0,
        seal_rows=seal_rows,
    )
    deferral = UsageDeferral(deferral_settings)
    committed: list[CountableEvent] = []
    seq = 0
    clock_us = START_US
    for kind, events in [*steps, ("read", None)]:
        if kind in ("batch", "write", "crash"):
            batch = []
            for customer, hour, value, unique in events:
                seq += 1
                at = START_US + hour * US_PER_HOUR + seq
                batch.append(CountableEvent(seq, customer, "call", at, {"v": str(value), "u": unique}))
            try:
                with db.write() as conn:
                    deferral.begin(conn)
                    deferral.add(
                        conn, fold(batch, [SUM, UNIQUE]), len(batch), seq, clock_us, may_defer=kind != "write"
                    )
                    deferral.merge_if_due(conn, clock_us)
                    if kind == "crash":
                        raise Crash
                committed.extend(batch)
            except Crash:
                deferral.reset()
        elif kind == "merge":
            with db.write() as conn:
                deferral.begin(conn)
                deferral.merge(conn, clock_us)
        elif kind == "idle":
            with db.write() as conn:
                deferral.begin(conn)
                deferral.merge_if_due(conn, clock_us)
        elif kind == "clock":
            clock_us = START_US + events * US_PER_HOUR
        elif kind == "restart":
            deferral = UsageDeferral(deferral_settings)
        else:
            assert_reads_equal_the_fold(db, committed)


def assert_reads_equal_the_fold(db: Database, committed: list[CountableEvent]) -> None:
    expected = fold(committed, [SUM, UNIQUE])
    metrics = [SUM.id, UNIQUE.id]
    window = (START_US - US_PER_HOUR, START_US + 5 * US_PER_HOUR)
    with db.read() as conn:
        hourly = {
            (r.customer_id, r.metric_id, r.bucket_us, r.group_values): r.aggregate
            for r in usage.hourly_rows(conn, CUSTOMERS, metrics, *window)
        }
        monthly = {
            (r.customer_id, r.metric_id, r.bucket_us, r.group_values): r.aggregate
            for start in expected.month_ends
            for rows in usage.monthly_rows_for(conn, CUSTOMERS, start).values()
            for r in rows
        }
        distinct = set(usage.unique_value_rows(conn, CUSTOMERS, metrics, *window))
        positions = {c: customer_fold_position(conn, c) for c in CUSTOMERS}
    assert {k: aggregate_fields(a) for k, a in hourly.items()} == {
        k: aggregate_fields(a) for k, a in expected.hourly.items()
    }
    assert {k: aggregate_fields(a) for k, a in monthly.items()} == {
        k: aggregate_fields(a) for k, a in expected.monthly.items()
    }
    assert {k: a.folded_seq for k, a in monthly.items()} == {
        k: a.folded_seq for k, a in expected.monthly.items()
    }
    assert distinct == expected.unique_values
    assert positions == {
        c: max((e.seq for e in committed if e.customer_id == c), default=-1) for c in CUSTOMERS
    }


def test_a_spread_batch_is_journaled_and_a_hot_one_merges_the_journal(db: Database) -> None:
    """One row per shard for a spread batch, nothing in the usage tables yet; a batch of few rows
    for its events merges the journal with its own rows, and the journal is empty after."""
    deferral = UsageDeferral(DeferralSettings(max_age_s=3600, min_rows=1))
    spread = [CountableEvent(i, f"c{i}", "call", START_US + i, {"v": "1"}) for i in range(1, 41)]
    hot = [CountableEvent(100 + i, "c1", "call", START_US + 100 + i, {"v": "2"}) for i in range(10)]
    with db.write() as conn:
        deferral.begin(conn)
        deferral.add(conn, fold(spread, [SUM]), len(spread), 40, now_us(), may_defer=True)
        journaled = usage_journal.size(conn)[0]
        stored = conn.execute(usage_monthly.select()).all()
    if db.engine.dialect.name == "sqlite":
        assert (journaled, stored) == (40, [])
    else:  # PostgreSQL merges every batch (`engine.usage_deferral`)
        assert (journaled, len(stored)) == (0, 40)
    with db.write() as conn:
        deferral.begin(conn)
        deferral.add(conn, fold(hot, [SUM]), len(hot), 110, now_us(), may_defer=True)
        assert usage_journal.size(conn) == (0, None)
        rows = {
            r.customer_id: r.aggregate.total
            for r in usage.monthly_rows_for(conn, ["c1", "c2"], month_of(START_US))["c1"]
        }
    assert rows == {"c1": Decimal(21)}


def month_of(at_us: int) -> int:
    return month_bounds(at_us)[0]


def test_an_open_hour_is_kept_apart_until_it_passes_then_sealed_a_few_rows_a_batch(db: Database) -> None:
    """On SQLite a merge writes an open hour's rows to the open hours' table, not among every
    hour's rows; once the hour has passed, each batch seals `seal_rows` of them into the stored
    hour rows, added to any row a late event wrote there, and reads stay the same throughout."""
    if db.engine.dialect.name != "sqlite":
        return  # PostgreSQL writes every batch's rows at once: no open hours (`usage_deferral`)
    with db.write() as conn:
        for table in (usage_hourly, usage_hourly_open, usage_monthly, tables.usage_journal):
            conn.execute(delete(table))
    deferral = UsageDeferral(DeferralSettings(max_age_s=3600, min_rows=1, open_grace_s=0, seal_rows=2))
    spread = [CountableEvent(i, f"c{i}", "call", START_US + i, {"v": "1"}) for i in range(1, 6)]
    late = [CountableEvent(10, "c1", "call", START_US + 10, {"v": "4"})]  # after hour 0 has passed
    with db.write() as conn:
        deferral.begin(conn)
        deferral.add(conn, fold(spread, [SUM]), len(spread), 5, START_US, may_defer=True)
        deferral.merge(conn, START_US)
        counts = [row_count(conn, usage_hourly_open), row_count(conn, usage_hourly)]
    assert counts == [5, 0]
    an_hour_later = START_US + US_PER_HOUR
    with db.write() as conn:
        deferral.begin(conn)
        deferral.add(conn, fold(late, [SUM]), len(late), 10, an_hour_later, may_defer=False)
        deferral.merge_if_due(conn, an_hour_later)
        counts = [row_count(conn, usage_hourly_open), row_count(conn, usage_hourly)]
    assert counts == [3, 2]  # the late event's row (c1), then c1 and c2 sealed, c1's added to it
    for _ in range(2):
        with db.write() as conn:
            deferral.begin(conn)
            deferral.merge_if_due(conn, an_hour_later)
    with db.read() as conn:
        counts = [row_count(conn, usage_hourly_open), row_count(conn, usage_hourly)]
        totals = {
            r.customer_id: r.aggregate.total
            for r in usage.hourly_rows(
                conn, [f"c{i}" for i in range(1, 6)], [SUM.id], START_US, an_hour_later
            )
        }
    assert counts == [0, 5]
    assert totals == {
        "c1": Decimal(5),
        "c2": Decimal(1),
        "c3": Decimal(1),
        "c4": Decimal(1),
        "c5": Decimal(1),
    }


def row_count(conn: Any, table: Any) -> int:
    return len(conn.execute(table.select()).all())
