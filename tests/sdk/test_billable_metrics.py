"""Billable metrics through the Metronome SDK: create and round-trip, list, archive, rename, errors."""

from __future__ import annotations

from collections import Counter
from typing import Any

import metronome
import pytest
from metronome import Metronome

from tests.sdk.helpers import new_customer, new_metric, uid

MISSING_ID = "00000000-0000-4000-8000-0000000000bb"


@pytest.mark.parametrize(
    ("aggregation_type", "aggregation_key"),
    [("COUNT", None), ("SUM", "tokens"), ("MAX", "latency_ms"), ("UNIQUE", "user_id"), ("LATEST", "seats")],
)
def test_retrieve_round_trips_every_field(
    client: Metronome, aggregation_type: Any, aggregation_key: str | None
) -> None:
    run = uid()
    fields: dict[str, Any] = {
        "name": f"{aggregation_type} metric {run}",
        "aggregation_type": aggregation_type,
        "event_type_filter": {"in_values": [f"api_call_{run}", f"batch_call_{run}"]},
        "property_filters": [
            {"name": "region", "exists": True, "in_values": ["us", "eu"]},
            {"name": "env", "not_in_values": ["test"]},
        ],
        "group_keys": [["region"], ["model", "region"]],
        "custom_fields": {"owner": "billing"},
    }
    if aggregation_key is not None:
        fields["aggregation_key"] = aggregation_key
    metric_id = client.v1.billable_metrics.create(**fields).data.id

    got = client.v1.billable_metrics.retrieve(billable_metric_id=metric_id).data
    assert got.id == metric_id
    assert got.name == fields["name"]
    assert got.aggregation_type == aggregation_type
    assert got.aggregation_key == aggregation_key
    assert got.event_type_filter is not None
    assert got.event_type_filter.in_values == [f"api_call_{run}", f"batch_call_{run}"]
    assert got.event_type_filter.not_in_values is None
    assert got.property_filters is not None
    assert [f.to_dict() for f in got.property_filters] == [
        {"name": "region", "exists": True, "in_values": ["us", "eu"]},
        {"name": "env", "not_in_values": ["test"]},
    ]
    assert got.group_keys == [["region"], ["model", "region"]]
    assert got.custom_fields == {"owner": "billing"}
    assert got.archived_at is None
    assert got.sql is None


def test_event_type_filter_not_in_values_round_trips(client: Metronome) -> None:
    run = uid()
    metric_id = client.v1.billable_metrics.create(
        name=f"excluding {run}",
        aggregation_type="COUNT",
        event_type_filter={"not_in_values": [f"heartbeat_{run}"]},
        property_filters=[{"name": f"run_{run}", "exists": True}],
    ).data.id

    got = client.v1.billable_metrics.retrieve(billable_metric_id=metric_id).data
    assert got.event_type_filter is not None
    assert got.event_type_filter.not_in_values == [f"heartbeat_{run}"]
    assert got.event_type_filter.in_values is None
    assert got.group_keys == []


def test_list_pages_through_metrics_and_hides_archived_ones(client: Metronome) -> None:
    run = uid()
    kept = [new_metric(client, "COUNT", f"listed_{run}_{i}") for i in range(3)]
    archived = new_metric(client, "COUNT", f"archived_{run}")
    client.v1.billable_metrics.archive(id=archived)

    active = Counter(m.id for m in client.v1.billable_metrics.list(limit=2))
    assert all(active[i] == 1 for i in kept)
    assert archived not in active

    first = client.v1.billable_metrics.list(limit=2)
    assert len(first.data) == 2
    assert first.next_page

    everything = {m.id: m for m in client.v1.billable_metrics.list(include_archived=True, limit=2)}
    assert set(kept) | {archived} <= set(everything)
    assert everything[archived].archived_at is not None
    assert all(everything[i].archived_at is None for i in kept)


def test_archive_marks_the_metric_archived(client: Metronome) -> None:
    metric_id = new_metric(client, "COUNT", f"to_archive_{uid()}")

    assert client.v1.billable_metrics.archive(id=metric_id).data.id == metric_id

    got = client.v1.billable_metrics.retrieve(billable_metric_id=metric_id).data
    assert got.archived_at is not None


def test_update_renames_the_metric(client: Metronome) -> None:
    run = uid()
    metric_id = new_metric(client, "SUM", f"renamed_{run}", aggregation_key="bytes")

    assert client.v1.billable_metrics.update(billable_metric_id=metric_id, name=f"Renamed {run}").data.id == (
        metric_id
    )

    got = client.v1.billable_metrics.retrieve(billable_metric_id=metric_id).data
    assert got.name == f"Renamed {run}"
    assert got.aggregation_type == "SUM"
    assert got.aggregation_key == "bytes"


def test_customer_billable_metrics_lists_the_active_metrics(client: Metronome) -> None:
    run = uid()
    customer_id = new_customer(client)
    active = new_metric(client, "COUNT", f"for_customer_{run}")
    archived = new_metric(client, "COUNT", f"archived_for_customer_{run}")
    client.v1.billable_metrics.archive(id=archived)

    listed = {m.id: m for m in client.v1.customers.list_billable_metrics(customer_id=customer_id)}

    assert active in listed
    assert listed[active].aggregation_type == "COUNT"
    assert listed[active].name == f"count for_customer_{run}"
    assert archived not in listed


def test_customer_billable_metrics_of_an_unknown_customer_is_not_found(client: Metronome) -> None:
    with pytest.raises(metronome.NotFoundError):
        list(client.v1.customers.list_billable_metrics(customer_id=MISSING_ID))


def test_sum_without_aggregation_key_is_refused(client: Metronome) -> None:
    with pytest.raises(metronome.BadRequestError) as raised:
        client.v1.billable_metrics.create(name=f"bad {uid()}", aggregation_type="SUM")
    assert raised.value.status_code == 400
    assert "aggregation_key" in raised.value.body["message"]  # type: ignore[index]


def test_sql_metrics_are_refused(client: Metronome) -> None:
    with pytest.raises(metronome.BadRequestError) as raised:
        client.v1.billable_metrics.create(name=f"sql {uid()}", sql="SELECT count(*) FROM events")
    assert "sql" in raised.value.body["message"]  # type: ignore[index]


def test_an_unknown_metric_is_not_found(client: Metronome) -> None:
    with pytest.raises(metronome.NotFoundError) as raised:
        client.v1.billable_metrics.retrieve(billable_metric_id=MISSING_ID)
    assert raised.value.status_code == 404
    assert MISSING_ID in raised.value.body["message"]  # type: ignore[index]
    with pytest.raises(metronome.NotFoundError):
        client.v1.billable_metrics.archive(id=MISSING_ID)
    with pytest.raises(metronome.NotFoundError):
        client.v1.billable_metrics.update(billable_metric_id=MISSING_ID, name="x")
