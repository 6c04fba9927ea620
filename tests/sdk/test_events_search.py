"""Event search through the Metronome SDK: what became of each event, by transaction id."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from metronome import Metronome

from tests.sdk.helpers import event, hours_ago, ingest, new_metric, uid
from tests.support.waiting import wait_for


def _search_processed(client: Metronome, transaction_ids: list[str]) -> dict[str, Any]:
    found = wait_for(
        lambda: client.v1.usage.search(transaction_ids=transaction_ids),
        lambda items: len(items) == len(transaction_ids) and all(i.processed_at for i in items),
    )
    return {item.transaction_id: item for item in found}


def test_search_shows_the_event_its_customer_and_its_metrics(client: Metronome) -> None:
    etype = f"searched_{uid()}"
    name = f"searched customer {uid()}"
    alias = f"search-alias-{uid()}"
    customer = client.v1.customers.create(name=name, ingest_aliases=[alias]).data.id
    metric = new_metric(client, "SUM", etype, aggregation_key="n")
    when = hours_ago(1) + timedelta(minutes=7, seconds=3)
    sent = event(alias, etype, when, n=3, region="us", nested={"a": [1, 2]})
    ingest(client, [sent])

    found = _search_processed(client, [sent["transaction_id"]])[sent["transaction_id"]]

    assert found.id
    assert found.customer_id == alias
    assert found.event_type == etype
    assert found.timestamp == when
    assert found.properties == {"n": 3, "region": "us", "nested": {"a": [1, 2]}}
    assert found.matched_customer is not None
    assert found.matched_customer.id == customer
    assert found.matched_customer.name == name
    assert [m.id for m in found.matched_billable_metrics or []] == [metric]
    assert found.matched_billable_metrics is not None
    assert found.matched_billable_metrics[0].aggregation_type == "SUM"
    assert found.matched_billable_metrics[0].aggregation_key == "n"


def test_an_event_for_an_unknown_customer_is_accepted_and_matches_no_customer(client: Metronome) -> None:
    etype = f"orphan_{uid()}"
    new_metric(client, "COUNT", etype)
    sent = event(f"nobody-{uid()}", etype, hours_ago(1))
    ingest(client, [sent])  # no error: unknown customers are reported by search, not by ingest

    found = _search_processed(client, [sent["transaction_id"]])[sent["transaction_id"]]

    assert found.matched_customer is None
    assert found.matched_billable_metrics == []


def test_an_event_matching_no_metric_has_no_matched_metrics(client: Metronome) -> None:
    customer = client.v1.customers.create(name=f"unmetered {uid()}").data.id
    sent = event(customer, f"unmetered_{uid()}", hours_ago(1), anything="x")
    ingest(client, [sent])

    found = _search_processed(client, [sent["transaction_id"]])[sent["transaction_id"]]

    assert found.matched_customer is not None
    assert found.matched_customer.id == customer
    assert found.matched_billable_metrics == []


def test_search_returns_only_known_transaction_ids(client: Metronome) -> None:
    customer = client.v1.customers.create(name=f"several {uid()}").data.id
    sent = [event(customer, f"several_{uid()}", hours_ago(1)) for _ in range(3)]
    ingest(client, sent)
    ids = [e["transaction_id"] for e in sent]

    found = _search_processed(client, ids)

    assert set(found) == set(ids)
    assert client.v1.usage.search(transaction_ids=[f"never-sent-{uid()}"]) == []
    mixed = client.v1.usage.search(transaction_ids=[ids[0], f"never-sent-{uid()}"])
    assert [e.transaction_id for e in mixed] == [ids[0]]


def test_a_duplicate_is_found_once_with_its_first_contents(client: Metronome) -> None:
    customer = client.v1.customers.create(name=f"dup {uid()}").data.id
    tx = f"tx-{uid()}"
    ingest(client, [event(customer, f"dup_{uid()}", hours_ago(1), transaction_id=tx, n=1)])
    ingest(client, [event(customer, f"dup_{uid()}", hours_ago(2), transaction_id=tx, n=2)])

    found = _search_processed(client, [tx])[tx]

    assert found.properties == {"n": 1}
    assert len(client.v1.usage.search(transaction_ids=[tx])) == 1
