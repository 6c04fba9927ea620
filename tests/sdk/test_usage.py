"""Ingest and usage queries end to end through the Metronome SDK, with values computed by hand."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

import metronome
import pytest
from metronome import Metronome

from tests.sdk.helpers import (
    current_hour,
    event,
    hours_ago,
    ingest,
    new_customer,
    new_metric,
    rfc3339,
    settle,
    uid,
    usage_value,
)
from tests.support.waiting import wait_for


class Window:
    """An hour-aligned range in the recent past, around the events of one test."""

    def __init__(self) -> None:
        self.base = hours_ago(3)
        self.start = self.base - timedelta(hours=1)
        self.end = current_hour() + timedelta(hours=1)


def _wait_value(client: Metronome, customer_id: str, metric_id: str, w: Window, expected: float) -> None:
    wait_for(lambda: usage_value(client, customer_id, metric_id, w.start, w.end), lambda v: v == expected)


def test_count_counts_matching_events(client: Metronome) -> None:
    etype, w = f"call_{uid()}", Window()
    customer = new_customer(client)
    metric = new_metric(client, "COUNT", etype)
    ingest(client, [event(customer, etype, w.base + timedelta(minutes=m)) for m in (1, 2, 3)])
    ingest(client, [event(customer, f"other_{etype}", w.base)])

    _wait_value(client, customer, metric, w, 3)
    settle(client)
    assert usage_value(client, customer, metric, w.start, w.end) == 3


def test_sum_adds_numbers_and_numeric_strings_exactly(client: Metronome) -> None:
    etype, w = f"tokens_{uid()}", Window()
    customer = new_customer(client)
    metric = new_metric(client, "SUM", etype, aggregation_key="tokens")
    values: list[Any] = [1.25, "2.5", 3, "0.1", 0.2, "not a number"]
    ingest(client, [event(customer, etype, w.base, tokens=v) for v in values])
    ingest(client, [event(customer, etype, w.base)])  # no tokens: not counted

    _wait_value(client, customer, metric, w, 7.05)
    settle(client)
    raw = client.v1.usage.with_raw_response.list(
        starting_on=w.start,
        ending_before=w.end,
        window_size="NONE",
        customer_ids=[customer],
        billable_metrics=[{"id": metric}],
    )
    [row] = json.loads(raw.text(), parse_float=Decimal)["data"]
    assert Decimal(row["value"]) == Decimal("7.05")  # exact, not 7.050000000000001


def test_max_takes_the_largest_value(client: Metronome) -> None:
    etype, w = f"latency_{uid()}", Window()
    customer = new_customer(client)
    metric = new_metric(client, "MAX", etype, aggregation_key="latency_ms")
    ingest(client, [event(customer, etype, w.base, latency_ms=v) for v in (3, "10.5", 7, -20)])

    _wait_value(client, customer, metric, w, 10.5)
    ingest(client, [event(customer, etype, w.base + timedelta(hours=1), latency_ms=9)])
    settle(client)
    assert usage_value(client, customer, metric, w.start, w.end) == 10.5


def test_max_of_no_events_is_null(client: Metronome) -> None:
    w = Window()
    customer = new_customer(client)
    metric = new_metric(client, "MAX", f"never_{uid()}", aggregation_key="x")
    assert usage_value(client, customer, metric, w.start, w.end) is None


def test_unique_counts_distinct_values_across_hours(client: Metronome) -> None:
    etype, w = f"active_user_{uid()}", Window()
    customer = new_customer(client)
    metric = new_metric(client, "UNIQUE", etype, aggregation_key="user_id")
    first_hour = [event(customer, etype, w.base, user_id=u) for u in ("a", "b", "a")]
    second_hour = [event(customer, etype, w.base + timedelta(hours=1), user_id=u) for u in ("a", "c")]
    ingest(client, first_hour + second_hour)

    # a, b, c: "a" in both hours is one user, not two.
    _wait_value(client, customer, metric, w, 3)
    settle(client)
    assert usage_value(client, customer, metric, w.start, w.end) == 3
    hourly = list(
        client.v1.usage.list(
            starting_on=w.base,
            ending_before=w.base + timedelta(hours=2),
            window_size="HOUR",
            customer_ids=[customer],
            billable_metrics=[{"id": metric}],
        )
    )
    assert [r.value for r in hourly] == [2, 2]


def test_latest_takes_the_event_with_the_latest_timestamp(client: Metronome) -> None:
    etype, w = f"seats_{uid()}", Window()
    customer = new_customer(client)
    metric = new_metric(client, "LATEST", etype, aggregation_key="seats")
    # The newest event is sent first; older ones sent after it, in its batch or a later one, must not win.
    ingest(
        client,
        [
            event(customer, etype, w.base + timedelta(minutes=50), seats=42),
            event(customer, etype, w.base + timedelta(minutes=10), seats=7),
        ],
    )
    ingest(client, [event(customer, etype, w.base + timedelta(minutes=30), seats="99")])

    settle(client)
    assert usage_value(client, customer, metric, w.start, w.end) == 42

    ingest(client, [event(customer, etype, w.base + timedelta(hours=1), seats="12.5")])
    _wait_value(client, customer, metric, w, 12.5)


def test_a_transaction_id_counts_once(client: Metronome) -> None:
    etype, w = f"dedup_{uid()}", Window()
    customer = new_customer(client)
    metric = new_metric(client, "SUM", etype, aggregation_key="n")
    tx = [f"tx-{uid()}" for _ in range(3)]
    ingest(
        client,
        [
            event(customer, etype, w.base, transaction_id=tx[0], n=1),
            event(customer, etype, w.base, transaction_id=tx[1], n=10),
            event(customer, etype, w.base, transaction_id=tx[0], n=1000),  # same batch
        ],
    )
    ingest(
        client,
        [
            event(customer, etype, w.base, transaction_id=tx[1], n=10000),  # a later batch
            event(customer, etype, w.base, transaction_id=tx[2], n=100),
        ],
    )

    settle(client)
    assert usage_value(client, customer, metric, w.start, w.end) == 111
    assert len(client.v1.usage.search(transaction_ids=tx)) == 3


def test_an_ingest_alias_names_the_customer(client: Metronome) -> None:
    etype, w = f"aliased_{uid()}", Window()
    alias = f"alias-{uid()}"
    customer = new_customer(client, alias)
    metric = new_metric(client, "COUNT", etype)
    ingest(client, [event(alias, etype, w.base), event(customer, etype, w.base)])

    _wait_value(client, customer, metric, w, 2)


def test_a_reused_alias_counts_for_its_new_customer(client: Metronome) -> None:
    etype, w = f"moved_{uid()}", Window()
    alias = f"moved-{uid()}"
    old = new_customer(client, alias)
    metric = new_metric(client, "COUNT", etype)
    ingest(client, [event(alias, etype, w.base)])
    settle(client)
    client.v1.customers.archive(id=old)
    new = new_customer(client, alias)

    ingest(client, [event(alias, etype, w.base), event(alias, etype, w.base)])

    _wait_value(client, new, metric, w, 2)
    settle(client)
    assert usage_value(client, new, metric, w.start, w.end) == 2


def test_filters_decide_what_counts(client: Metronome) -> None:
    run, w = uid(), Window()
    a, b, c = f"a_{run}", f"b_{run}", f"c_{run}"
    customer = new_customer(client)
    filtered = client.v1.billable_metrics.create(
        name=f"filtered {run}",
        aggregation_type="COUNT",
        event_type_filter={"in_values": [a, b]},
        property_filters=[
            {"name": "region", "exists": True},
            {"name": "tier", "in_values": ["gold", "silver"]},
            {"name": "env", "not_in_values": ["test"]},
        ],
    ).data.id
    excluding = client.v1.billable_metrics.create(
        name=f"excluding {run}",
        aggregation_type="COUNT",
        event_type_filter={"not_in_values": [c]},
        property_filters=[{"name": "run", "in_values": [run]}],
    ).data.id
    cases = [
        (a, {"region": "us", "tier": "gold", "env": "prod"}, True),
        (b, {"region": "eu", "tier": "silver"}, True),  # env absent passes not_in_values
        (c, {"region": "us", "tier": "gold"}, False),  # event type not in the list
        (a, {"tier": "gold"}, False),  # region must exist
        (a, {"region": None, "tier": "gold"}, False),  # null is not "exists"
        (a, {"region": "us", "tier": "bronze"}, False),  # tier not in in_values
        (a, {"region": "us"}, False),  # in_values needs the property
        (a, {"region": "us", "tier": "gold", "env": "test"}, False),  # env in not_in_values
    ]
    ingest(client, [event(customer, etype, w.base, run=run, **props) for etype, props, _ in cases])

    settle(client)
    assert usage_value(client, customer, filtered, w.start, w.end) == sum(1 for *_, ok in cases if ok)
    assert usage_value(client, customer, excluding, w.start, w.end) == sum(1 for e, *_ in cases if e != c)


def test_hour_windows_put_events_in_their_hour(client: Metronome) -> None:
    etype = f"hourly_{uid()}"
    base = hours_ago(3)
    customer = new_customer(client)
    metric = new_metric(client, "SUM", etype, aggregation_key="n")
    ingest(
        client,
        [
            event(customer, etype, base, n=1),  # first instant of the hour
            event(customer, etype, base + timedelta(minutes=59, seconds=59), n=2),
            event(customer, etype, base + timedelta(hours=1), n=4),  # first instant of the next
            event(customer, etype, base + timedelta(hours=2, minutes=30), n=8),
        ],
    )

    settle(client)
    rows = list(
        client.v1.usage.list(
            starting_on=base - timedelta(hours=1),
            ending_before=base + timedelta(hours=3),
            window_size="HOUR",
            customer_ids=[customer],
            billable_metrics=[{"id": metric}],
        )
    )
    assert [(r.start_timestamp, r.end_timestamp, r.value) for r in rows] == [
        (base + timedelta(hours=h - 1), base + timedelta(hours=h), v) for h, v in enumerate([0, 3, 4, 8])
    ]
    assert all(r.customer_id == customer and r.billable_metric_id == metric for r in rows)
    assert all(r.billable_metric_name == f"sum {etype}" for r in rows)


def test_day_windows_split_at_midnight_utc(client: Metronome) -> None:
    etype = f"daily_{uid()}"
    today = current_hour().replace(hour=0)
    customer = new_customer(client)
    metric = new_metric(client, "COUNT", etype)
    ingest(
        client,
        [
            event(customer, etype, today - timedelta(hours=12)),
            event(customer, etype, today - timedelta(seconds=1)),
            event(customer, etype, today),
        ],
    )

    settle(client)
    rows = list(
        client.v1.usage.list(
            starting_on=today - timedelta(days=2),
            ending_before=today + timedelta(days=1),
            window_size="DAY",
            customer_ids=[customer],
            billable_metrics=[{"id": metric}],
        )
    )
    assert [(r.start_timestamp, r.value) for r in rows] == [
        (today - timedelta(days=2), 0),
        (today - timedelta(days=1), 2),
        (today, 1),
    ]
    assert rows[-1].end_timestamp == today + timedelta(days=1)


def test_group_by_breaks_usage_down_by_a_property(client: Metronome) -> None:
    etype, w = f"grouped_{uid()}", Window()
    customer = new_customer(client)
    metric = new_metric(client, "SUM", etype, aggregation_key="n", group_keys=[["region"]])
    ingest(
        client,
        [
            event(customer, etype, w.base, n=1, region="us"),
            event(customer, etype, w.base, n=2, region="us"),
            event(customer, etype, w.base, n=5, region="eu"),
            event(customer, etype, w.base, n=7),  # no region: in the total, in no group
        ],
    )

    settle(client)

    def rows(group_by: Any) -> list[Any]:
        return list(
            client.v1.usage.list(
                starting_on=w.start,
                ending_before=w.end,
                window_size="NONE",
                customer_ids=[customer],
                billable_metrics=[{"id": metric, "group_by": group_by}],
            )
        )

    [every] = rows({"key": "region"})
    assert every.value == 15
    assert every.groups == {"us": 3, "eu": 5}
    [chosen] = rows({"key": "region", "values": ["us", "ap"]})
    assert chosen.value == 15
    assert chosen.groups == {"us": 3, "ap": None}  # null: no usage matched "ap"


def test_group_by_a_key_the_metric_does_not_group_by_is_refused(client: Metronome) -> None:
    w = Window()
    customer = new_customer(client)
    metric = new_metric(client, "COUNT", f"ungrouped_{uid()}")
    with pytest.raises(metronome.BadRequestError) as raised:
        list(
            client.v1.usage.list(
                starting_on=w.start,
                ending_before=w.end,
                window_size="NONE",
                customer_ids=[customer],
                billable_metrics=[{"id": metric, "group_by": {"key": "region"}}],
            )
        )
    assert "region" in raised.value.body["message"]  # type: ignore[index]


def test_usage_pages_by_customer_and_yields_each_row_once(client: Metronome) -> None:
    run = uid()
    today = current_hour().replace(hour=0)
    customers = [new_customer(client) for _ in range(3)]
    metrics = [new_metric(client, "COUNT", f"paged_{run}_{i}") for i in range(4)]
    ingest(client, [event(customers[2], f"paged_{run}_3", today - timedelta(hours=5))])
    settle(client)
    # 4 metrics x 100 days = 400 rows per customer: more than fits one page with all three.
    query: dict[str, Any] = {
        "starting_on": today - timedelta(days=99),
        "ending_before": today + timedelta(days=1),
        "window_size": "DAY",
        "customer_ids": customers,
        "billable_metrics": [{"id": m} for m in metrics],
    }

    pages = [client.v1.usage.list(**query)]
    while pages[-1].next_page:
        pages.append(client.v1.usage.list(**query, next_page=pages[-1].next_page))
    assert len(pages) > 1
    walked = Counter((r.customer_id, r.billable_metric_id, r.start_timestamp) for p in pages for r in p.data)
    expected = {(c, m, today - timedelta(days=d)) for c in customers for m in metrics for d in range(100)}
    assert set(walked) == expected
    assert set(walked.values()) == {1}

    auto = Counter(
        (r.customer_id, r.billable_metric_id, r.start_timestamp) for r in client.v1.usage.list(**query)
    )
    assert auto == walked

    counted = [r for p in pages for r in p.data if r.value]
    assert [(r.customer_id, r.billable_metric_id, r.start_timestamp, r.value) for r in counted] == [
        (customers[2], metrics[3], today - timedelta(days=1), 1)
    ]


def test_list_with_groups_pages_one_group_at_a_time(client: Metronome) -> None:
    etype, w = f"by_region_{uid()}", Window()
    customer = new_customer(client)
    metric = new_metric(client, "SUM", etype, aggregation_key="n", group_keys=[["region"]])
    ingest(
        client,
        [
            event(customer, etype, w.base, n=1, region="us"),
            event(customer, etype, w.base + timedelta(hours=1), n=2, region="us"),
            event(customer, etype, w.base, n=5, region="eu"),
            event(customer, etype, w.base, n=4, region="ap"),
        ],
    )
    settle(client)
    query: dict[str, Any] = {
        "customer_id": customer,
        "billable_metric_id": metric,
        "window_size": "NONE",
        "starting_on": w.start,
        "ending_before": w.end,
        "group_by": {"key": "region"},
        "limit": 1,
    }

    pages = [client.v1.usage.list_with_groups(**query)]
    while pages[-1].next_page:
        pages.append(client.v1.usage.list_with_groups(**query, next_page=pages[-1].next_page))
    assert [len(p.data) for p in pages] == [1, 1, 1]
    rows = [p.data[0] for p in pages]
    assert sorted((r.group_key, r.group_value, r.value) for r in rows) == [
        ("region", "ap", 4),
        ("region", "eu", 5),
        ("region", "us", 3),
    ]
    assert all(r.group == {"region": r.group_value} for r in rows)
    assert all((r.starting_on, r.ending_before) == (w.start, w.end) for r in rows)

    auto = [(r.group_value, r.value) for r in client.v1.usage.list_with_groups(**query)]
    assert auto == [(r.group_value, r.value) for r in rows]


def test_usage_ranges_must_fall_on_hours(client: Metronome) -> None:
    w = Window()
    with pytest.raises(metronome.BadRequestError) as raised:
        list(
            client.v1.usage.list(
                starting_on=w.start + timedelta(minutes=30), ending_before=w.end, window_size="NONE"
            )
        )
    assert "starting_on" in raised.value.body["message"]  # type: ignore[index]


def test_list_with_groups_by_a_compound_key_with_filters(client: Metronome) -> None:
    etype, w = f"compound_{uid()}", Window()
    customer = new_customer(client)
    metric = new_metric(client, "COUNT", etype, group_keys=[["model", "region"]])
    pairs = [("big", "us"), ("big", "us"), ("small", "us"), ("big", "eu"), ("small", "ap")]
    ingest(client, [event(customer, etype, w.base, model=m, region=r) for m, r in pairs])
    settle(client)

    rows = list(
        client.v1.usage.list_with_groups(
            customer_id=customer,
            billable_metric_id=metric,
            window_size="NONE",
            starting_on=w.start,
            ending_before=w.end,
            group_key=["model", "region"],
            group_filters={"region": ["us", "eu"]},
        )
    )

    assert sorted((r.group["model"], r.group["region"], r.value) for r in rows if r.group) == [
        ("big", "eu", 1),
        ("big", "us", 2),
        ("small", "us", 1),
    ]
    assert len(rows) == 3


def test_a_batch_with_an_invalid_event_is_refused_whole(client: Metronome) -> None:
    customer = new_customer(client)
    good = event(customer, f"valid_{uid()}", hours_ago(1))
    too_old = event(customer, f"valid_{uid()}", hours_ago(24 * 40))
    no_zone = {**event(customer, f"valid_{uid()}", hours_ago(1)), "timestamp": rfc3339(hours_ago(1))[:-1]}

    with pytest.raises(metronome.BadRequestError) as raised:
        ingest(client, [good, too_old, no_zone])

    message = raised.value.body["message"]  # type: ignore[index]
    assert "events[1].timestamp" in message
    assert "events[2].timestamp" in message
    assert "events[0]" not in message
    settle(client)
    assert client.v1.usage.search(transaction_ids=[good["transaction_id"]]) == []


def test_usage_of_an_unknown_metric_is_not_found(client: Metronome) -> None:
    w = Window()
    customer = new_customer(client)
    with pytest.raises(metronome.NotFoundError):
        list(
            client.v1.usage.list(
                starting_on=w.start,
                ending_before=w.end,
                window_size="NONE",
                customer_ids=[customer],
                billable_metrics=[{"id": "00000000-0000-4000-8000-0000000000cc"}],
            )
        )
