"""POST /v1/access/check through a real server: decisions with their reasons for ids and aliases,
alerts marked blocking through the official SDK, and `as_of`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import metronome
import pytest
from metronome import Metronome

from meterline.domain.timeutil import parse_rfc3339
from tests.sdk.alert_helpers import add_commit, billed_customer, customer, use
from tests.sdk.helpers import uid
from tests.spend.helpers import Extensions
from tests.support.databases import fresh_database
from tests.support.server import ENGINE_IN_THREADS, RunningServer, start_server
from tests.support.waiting import wait_for


def _as_of(decision: dict[str, object]) -> datetime:
    return parse_rfc3339(str(decision["as_of"]))


def test_unknown_archived_and_aliased_customers(client: Metronome, api: Extensions) -> None:
    alias = f"acme-{uid()}"
    active = client.v1.customers.create(name="Acme", ingest_aliases=[alias]).data.id
    closed_alias = f"gone-{uid()}"
    closed = client.v1.customers.create(name="Gone", ingest_aliases=[closed_alias]).data.id
    client.v1.customers.archive(id=closed)

    found = api.check(active, alias, "nobody", closed, closed_alias, active)
    assert [d["customer_id"] for d in found] == [active, alias, "nobody", closed, closed_alias, active]
    assert [(d["has_access"], [r["code"] for r in d["reasons"]]) for d in found] == [
        (True, []),
        (True, []),
        (False, ["unknown_customer"]),
        (False, ["customer_archived"]),
        (False, ["customer_archived"]),  # archiving released the alias; it still names the customer
        (True, []),
    ]
    assert found[2]["reasons"] == [
        {"code": "unknown_customer", "alert_id": None, "threshold": None, "value": None}
    ]

    # The released alias, taken by a new customer, names the new one.
    successor = client.v1.customers.create(name="Successor", ingest_aliases=[closed_alias]).data.id
    assert successor and api.check(closed_alias)[0]["has_access"] is True


def test_the_request_is_bounded(api: Extensions) -> None:
    assert api.refused("/v1/access/check", {"customer_ids": []}).startswith("customer_ids: ")
    too_many = [f"c{i}" for i in range(101)]
    assert api.refused("/v1/access/check", {"customer_ids": too_many}).startswith("customer_ids: ")
    assert api.refused("/v1/access/check", {"customer_ids": ["x" * 257]}).startswith("customer_ids.0: ")
    assert api.refused("/v1/access/check", {}) == "customer_ids: is required"
    assert len(api.check(*[f"c{i}" for i in range(100)])) == 100
    answer = api.post("/v1/access/check", {"customer_ids": ["c"]})
    assert answer.headers["server-timing"].startswith("app;dur=")


def test_any_alert_marked_blocking_denies_access_while_in_alarm(client: Metronome, api: Extensions) -> None:
    customer_id, usage = billed_customer(client, price=1)
    usage_cap = client.v1.alerts.create(
        alert_type="usage_threshold_reached",
        name="usage cap",
        threshold=50,
        customer_id=customer_id,
        billable_metric_id=usage.metric_id,
        extra_body={"blocking": True},
    ).data.id
    notice = client.v1.alerts.create(
        alert_type="usage_threshold_reached",
        name="usage notice",
        threshold=10,
        customer_id=customer_id,
        billable_metric_id=usage.metric_id,
    ).data.id
    retrieved = client.v1.customers.alerts.retrieve(alert_id=usage_cap, customer_id=customer_id).data
    assert retrieved.alert.to_dict()["blocking"] is True

    use(client, customer_id, usage, 20)  # the notice fires; it does not block
    api.wait_access(customer_id, True)
    use(client, customer_id, usage, 40)
    blocked = api.wait_access(customer_id, False)
    assert blocked["reasons"] == [
        {"code": "blocking_alert", "alert_id": usage_cap, "threshold": 50, "value": 60}
    ]
    assert notice not in [r["alert_id"] for r in blocked["reasons"]]

    # Archiving it lifts the block (the engine resolves its state).
    client.v1.alerts.archive(id=usage_cap)
    api.wait_access(customer_id, True)


def test_blocking_is_refused_where_it_makes_no_sense(client: Metronome) -> None:
    customer_id = customer(client)

    def refused(**fields: object) -> str:
        with pytest.raises(metronome.BadRequestError) as raised:
            client.v1.alerts.create(
                name="x",
                customer_id=customer_id,
                extra_body={"blocking": True},
                **fields,  # type: ignore[arg-type]
            )
        message: str = raised.value.response.json()["message"]
        return message

    assert refused(alert_type="low_remaining_days_in_plan_reached", threshold=3) == (
        "blocking: low_remaining_days_in_plan_reached alerts warn ahead of time and cannot block access"
    )
    assert refused(alert_type="low_remaining_days_for_commit_segment_reached", threshold=3).startswith(
        "blocking: low_remaining_days_for_commit_segment_reached alerts warn ahead of time"
    )
    assert refused(alert_type="spend_threshold_reached", threshold=3, evaluate_on_create=False).startswith(
        "blocking: a blocking alert is evaluated on creation (evaluate_on_create must not be false)"
    )
    with pytest.raises(metronome.BadRequestError) as raised:
        client.v1.alerts.create(
            alert_type="spend_threshold_reached",
            name="x",
            threshold=3,
            customer_id=customer_id,
            extra_body={"blocking": "sometimes"},
        )
    assert raised.value.response.json()["message"].startswith("blocking: ")
    assert client.v1.customers.alerts.list(customer_id=customer_id).data == []  # nothing was created


def test_a_prepaid_balance_running_out_can_block(client: Metronome, api: Extensions) -> None:
    """Blocking is not only for spend: a balance alert at 0 cuts access when the commit is used up."""
    customer_id, usage = billed_customer(client, price=100)
    add_commit(client, customer_id, 1000)
    client.v1.alerts.create(
        alert_type="low_remaining_commit_balance_reached",
        name="prepaid used up",
        threshold=0,
        customer_id=customer_id,
        extra_body={"blocking": True},
    )
    use(client, customer_id, usage, 5)
    api.wait_access(customer_id, True)
    use(client, customer_id, usage, 5)  # 1000 cents: the commit is used up
    assert [r["code"] for r in api.wait_access(customer_id, False)["reasons"]] == ["blocking_alert"]


def test_an_idle_engine_is_up_to_date(client: Metronome, api: Extensions) -> None:
    """With nothing waiting, `as_of` is the instant of the check, and moves with it."""
    customer_id = customer(client)
    created = datetime.now(UTC)
    # Once the engine has applied the new customer's first recompute, nothing waits any more.
    first = _as_of(wait_for(lambda: api.check(customer_id)[0], lambda d: _as_of(d) >= created))
    time.sleep(1.1)
    before = datetime.now(UTC)
    second = _as_of(api.check(customer_id)[0])
    assert first < second and abs((second - before).total_seconds()) < 1


@pytest.fixture(scope="module")
def stalled(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose evaluator does not run: what is acknowledged is never evaluated. (Webhook
    delivery, all that is left of its engine, runs as a thread: its layout is not under test.)"""
    with fresh_database(backend, tmp_path_factory.mktemp("stalled-db")) as url:
        running = start_server(
            url,
            tmp_path_factory.mktemp("stalled"),
            **ENGINE_IN_THREADS,
            METERLINE_EVALUATOR_ENABLED="false",
        )
        yield running
        running.stop()


def test_as_of_stays_before_what_the_engine_has_not_evaluated(stalled: RunningServer) -> None:
    client = Metronome(bearer_token=stalled.token, base_url=stalled.base_url, max_retries=0)
    with httpx.Client(base_url=stalled.base_url, headers=stalled.headers(), timeout=10) as http:
        api = Extensions(http)
        customer_id = client.v1.customers.create(name="Waiting", ingest_aliases=[f"w-{uid()}"]).data.id
        # The new customer's first recompute is still to come: its decision predates its creation.
        created = datetime.now(UTC)
        assert _as_of(api.check(customer_id)[0]) < created
        nobody = api.check("nobody")[0]
        assert abs((_as_of(nobody) - datetime.now(UTC)).total_seconds()) < 1  # nothing waits yet

        before_ingest = datetime.now(UTC)
        client.v1.usage.ingest(
            usage=[
                {
                    "transaction_id": uuid.uuid4().hex,
                    "customer_id": "nobody-either",
                    "event_type": "call",
                    "timestamp": before_ingest.strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            ]
        )
        time.sleep(1.1)
        waiting = _as_of(api.check("nobody")[0])
        assert waiting <= datetime.now(UTC) and (datetime.now(UTC) - waiting).total_seconds() >= 1
        assert waiting >= before_ingest.replace(microsecond=0)
