"""What the engine writes of a folded batch (`store.usage.add_folded`) reads back as the fold's own
aggregates, field by field, to the digits: a bucket of one event binds its value once for its
total, maximum and latest, and a month of one hour shares its hour's values, and neither may
change what is stored (a zero's sign, an exponent)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from meterline.domain.aggregation import Aggregate
from meterline.domain.metrics import AggregationType, MetricRules
from meterline.domain.timeutil import US_PER_HOUR
from meterline.domain.usage_fold import CountableEvent, fold
from meterline.store import usage
from meterline.store.db import Database
from meterline.store.tables import usage_hourly, usage_monthly
from tests.support.usage_model import aggregate_fields

METRIC = MetricRules("metric", AggregationType.SUM, aggregation_key="v")
START_US = 1_000 * US_PER_HOUR
values = st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**9), max_value=10**9) | (
    st.sampled_from([Decimal("-0"), Decimal("0.00"), Decimal("1E+2"), Decimal("-5E+3"), Decimal("7")])
)
events = st.lists(
    st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.integers(0, 3), values), min_size=1, max_size=12
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=events)
def test_a_folded_batch_reads_back_as_folded(db: Database, batch: list[tuple[str, int, Decimal]]) -> None:
    countable = [
        CountableEvent(seq, customer, "call", START_US + hour * US_PER_HOUR + seq, {"v": str(value)})
        for seq, (customer, hour, value) in enumerate(batch, start=1)
    ]
    deltas = fold(countable, [METRIC])
    with db.write() as conn:
        conn.execute(delete(usage_hourly))
        conn.execute(delete(usage_monthly))
        usage.add_folded(conn, deltas)
        hourly = usage.hourly_rows(conn, ["c1", "c2", "c3"], [METRIC.id], 0, START_US * 2)
        stored = {(r.customer_id, r.metric_id, r.bucket_us, r.group_values): r.aggregate for r in hourly}
        monthly = {
            (r.customer_id, r.metric_id, r.bucket_us, r.group_values): r.aggregate
            for rows in usage.monthly_rows_for(
                conn, ["c1", "c2", "c3"], next(iter(deltas.month_ends))
            ).values()
            for r in rows
        }
    for written, read in ((deltas.hourly, stored), (deltas.monthly, monthly)):
        assert set(read) == set(written)
        for key, aggregate in written.items():
            assert aggregate_fields(read[key]) == aggregate_fields(aggregate)
            if db.engine.dialect.name == "sqlite":  # stored as text, every digit and sign kept
                assert [str(v) for v in aggregate_fields(read[key])[1:4]] == [
                    str(v if v is None else format(v, "f")) for v in aggregate_fields(aggregate)[1:4]
                ]


stored_rows = st.dictionaries(
    st.tuples(
        st.sampled_from(["c1", "c2", "c3"]),
        st.sampled_from(["m1", "m2"]),
        st.integers(0, 60),
        st.sampled_from(["", '{"region":"eu"}']),
    ),
    st.integers(1, 9),
    min_size=0,
    max_size=25,
)
# A window's ends anywhere, on an hour's start or inside one, before, among or after the rows.
window_ends = st.integers(-3 * US_PER_HOUR, 64 * US_PER_HOUR)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=stored_rows,
    customers=st.lists(st.sampled_from(["c1", "c2", "c3", "c4"]), min_size=1, unique=True),
    metrics=st.lists(st.sampled_from(["m1", "m2", "m3"]), min_size=1, unique=True),
    ends=st.tuples(window_ends, window_ends),
)
def test_hour_rows_read_are_exactly_the_customers_rows_in_the_window(
    db: Database,
    rows: dict[tuple[str, str, int, str], int],
    customers: list[str],
    metrics: list[str],
    ends: tuple[int, int],
) -> None:
    """What a reader of hour rows gets (`usage.hourly_rows`: the usage list, pricing over a period
    that is not a calendar month) is every row of its customers and metrics whose hour starts in
    its window, and nothing else, wherever the window's ends fall (a layout of these rows keyed by
    hour first was measured, "Engine v2, sixth step" in BENCHMARKS.md: its readers named each hour)."""
    start_us, end_us = START_US + min(ends), START_US + max(ends)
    stored = {
        (customer, metric, START_US + hour * US_PER_HOUR, group): Aggregate(
            count=n, total=Decimal(n), maximum=Decimal(n), latest=Decimal(n), latest_ts_us=n, latest_seq=n
        )
        for (customer, metric, hour, group), n in rows.items()
    }
    with db.write() as conn:
        conn.execute(delete(usage_hourly))
        usage.add_hourly(conn, stored)
        read = list(usage.hourly_rows(conn, customers, metrics, start_us, end_us))
    expected = {
        key: aggregate.count
        for key, aggregate in stored.items()
        if key[0] in customers and key[1] in metrics and start_us <= key[2] < end_us
    }
    assert len(read) == len(expected)
    assert {
        (r.customer_id, r.metric_id, r.bucket_us, r.group_values): r.aggregate.count for r in read
    } == expected
