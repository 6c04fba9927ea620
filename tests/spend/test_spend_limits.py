"""Spend limits through a real server: one call sets a customer's soft and hard limits, as ordinary
spend alerts the official SDK reads back; notices reach a real webhook receiver with the spend's
progress; a change is atomic and leaves the unchanged limit alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from metronome import Metronome

from tests.delivery.receiver import Receiver
from tests.sdk.alert_helpers import billed_customer, customer, use
from tests.sdk.contract_helpers import USD_CENTS
from tests.sdk.helpers import settle, uid
from tests.spend.helpers import Extensions, received, wait_received
from tests.support.waiting import wait_for

SPEND = "alerts.spend_threshold_reached"
RESOLVED = "alerts.spend_threshold_reached_resolved"


@pytest.fixture
def receiver(api: Extensions) -> Iterator[Receiver]:
    """A webhook receiver for spend notices and their resolutions, removed after the test."""
    found = api.webhook_receiver(SPEND, RESOLVED)
    yield found
    found.down()
    for endpoint in api.ok("/v1/webhooks/endpoints/list", {})["data"]:
        if endpoint["url"] == found.url:
            api.ok("/v1/webhooks/endpoints/remove", {"id": endpoint["id"]})


def test_limits_are_spend_alerts_the_sdk_reads_back(client: Metronome, api: Extensions) -> None:
    customer_id, _usage = billed_customer(client, price=100)
    view = api.set_limits(customer_id, soft_limit=5000, hard_limit=10000)
    assert view == {
        "customer_id": customer_id,
        "credit_type_id": USD_CENTS,
        "soft_limit": 5000,
        "hard_limit": 10000,
        "current_spend": 0,
        "status": "ok",
        "soft_limit_alert_id": view["soft_limit_alert_id"],
        "hard_limit_alert_id": view["hard_limit_alert_id"],
    }
    listed = {a.alert.id: a for a in client.v1.customers.alerts.list(customer_id=customer_id)}
    soft, hard = listed[view["soft_limit_alert_id"]], listed[view["hard_limit_alert_id"]]
    assert (soft.alert.type, soft.alert.name, soft.alert.threshold) == (
        "spend_threshold_reached",
        "Soft spend limit",
        5000,
    )
    assert (hard.alert.type, hard.alert.name, hard.alert.threshold) == (
        "spend_threshold_reached",
        "Hard spend limit",
        10000,
    )
    # The hard limit blocks access (meterline's marking, shown only on the alerts that have it).
    assert hard.alert.to_dict()["blocking"] is True and "blocking" not in soft.alert.to_dict()
    assert api.limits(customer_id) == view


def test_soft_notice_hard_block_and_a_raise_that_restores_access(
    client: Metronome, api: Extensions, receiver: Receiver
) -> None:
    customer_id, usage = billed_customer(client, price=100)
    first = api.set_limits(customer_id, soft_limit=5000, hard_limit=10000)

    use(client, customer_id, usage, 60)  # 6000 cents: past the soft limit
    [soft_notice] = wait_received(receiver, customer_id, 1)
    assert soft_notice["type"] == SPEND
    assert soft_notice["properties"]["alert_id"] == first["soft_limit_alert_id"]
    assert (
        soft_notice["properties"]["current_spend"],
        soft_notice["properties"]["percent_used"],
        soft_notice["properties"]["remaining"],
    ) == (6000, 120, 0)
    assert api.wait_status(customer_id, "soft_limit_reached")["current_spend"] == 6000
    assert api.has_access(customer_id)  # a soft limit is a notice, not a block

    use(client, customer_id, usage, 40)  # 10000 cents: the hard limit
    blocked = api.wait_access(customer_id, False)
    assert blocked["reasons"] == [
        {
            "code": "hard_limit_reached",
            "alert_id": first["hard_limit_alert_id"],
            "threshold": 10000,
            "value": 10000,
        }
    ]
    assert api.limits(customer_id)["status"] == "hard_limit_reached"
    hard_notice = wait_received(receiver, customer_id, 2)[1]
    assert (hard_notice["properties"]["percent_used"], hard_notice["properties"]["remaining"]) == (100, 0)

    raised = api.set_limits(customer_id, hard_limit=20000)  # the soft limit is not named: unchanged
    assert raised["soft_limit_alert_id"] == first["soft_limit_alert_id"]
    assert raised["hard_limit_alert_id"] != first["hard_limit_alert_id"]
    assert (raised["soft_limit"], raised["hard_limit"], raised["status"]) == (
        5000,
        20000,
        "soft_limit_reached",
    )
    assert api.wait_access(customer_id, True)["reasons"] == []
    resolved = wait_received(receiver, customer_id, 3)[2]
    assert (resolved["type"], resolved["properties"]["alert_id"]) == (RESOLVED, first["hard_limit_alert_id"])
    assert resolved["properties"]["triggered_by"] == "alert_archived"
    settle(client)
    # No second soft notice: the soft limit kept its alert.
    assert [n["type"] for n in received(receiver, customer_id)] == [SPEND, SPEND, RESOLVED]
    archived = client.v1.customers.alerts.retrieve(
        alert_id=first["hard_limit_alert_id"], customer_id=customer_id
    ).data
    assert (archived.alert.status, archived.customer_status) == ("archived", None)


def test_a_change_never_leaves_a_moment_without_a_limit(client: Metronome, api: Extensions) -> None:
    """Lowering a hard limit that is still exceeded replaces its alert: checks polled throughout
    the replacement never see access."""
    customer_id, usage = billed_customer(client, price=100)
    api.set_limits(customer_id, hard_limit=5000)
    use(client, customer_id, usage, 80)
    api.wait_access(customer_id, False)

    seen: list[bool] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            seen.append(api.has_access(customer_id))

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        for hard in (6000, 7000, 4000):
            api.set_limits(customer_id, hard_limit=hard)
        # Until the last new limit is measured: its decision then names it.
        wait_for(
            lambda: api.check(customer_id)[0]["reasons"],
            lambda reasons: [r["threshold"] for r in reasons] == [4000],
        )
    finally:
        done.set()
        poller.join()
    assert seen and not any(seen)


def test_null_removes_a_limit_and_an_empty_change_changes_nothing(client: Metronome, api: Extensions) -> None:
    customer_id, usage = billed_customer(client, price=100)
    api.set_limits(customer_id, soft_limit=1000, hard_limit=2000)
    use(client, customer_id, usage, 25)
    api.wait_access(customer_id, False)

    unchanged = api.set_limits(customer_id)
    assert (unchanged["soft_limit"], unchanged["hard_limit"]) == (1000, 2000)
    removed = api.set_limits(customer_id, hard_limit=None)
    assert (removed["soft_limit"], removed["hard_limit"], removed["hard_limit_alert_id"]) == (
        1000,
        None,
        None,
    )
    assert api.wait_access(customer_id, True)["reasons"] == []
    both = api.set_limits(customer_id, soft_limit=None, hard_limit=None)
    assert both["status"] == "ok" and both["current_spend"] == 2500
    assert [a.alert.name for a in client.v1.customers.alerts.list(customer_id=customer_id)] == []


def test_bad_changes_are_refused_naming_the_field_and_nothing_changes(
    client: Metronome, api: Extensions
) -> None:
    customer_id = customer(client)
    before = api.set_limits(customer_id, soft_limit=100, hard_limit=200)

    assert api.refused("/v1/spend-limits/set", {"customer_id": customer_id, "soft_limit": 300}) == (
        "soft_limit: must be at most hard_limit (200), not 300"
    )
    assert api.refused("/v1/spend-limits/set", {"customer_id": customer_id, "hard_limit": -1}).startswith(
        "hard_limit: "
    )
    assert api.refused("/v1/spend-limits/set", {"customer_id": customer_id, "hard_limit": "lots"}).startswith(
        "hard_limit: "
    )
    assert (
        api.refused("/v1/spend-limits/set", {"customer_id": customer_id, "hard": 5}) == "hard: unknown field"
    )
    assert api.refused(
        "/v1/spend-limits/set", {"customer_id": customer_id, "credit_type_id": "nope", "hard_limit": 5}
    ) == ("credit_type_id: no pricing unit with id nope")
    assert api.refused("/v1/spend-limits/set", {"customer_id": "nobody", "hard_limit": 5}, 404) == (
        "customer_id: no customer with id nobody"
    )
    assert api.limits(customer_id) == before

    client.v1.customers.archive(id=customer_id)
    assert api.refused("/v1/spend-limits/set", {"customer_id": customer_id, "hard_limit": 5}) == (
        f"customer_id: customer {customer_id} is archived"
    )


def test_limits_in_a_custom_credit_type_and_the_list(client: Metronome, api: Extensions) -> None:
    unit = client.v1.pricing_units.create(name=f"credits {uid()}").data.id
    customers = sorted(customer(client) for _ in range(3))
    for index, customer_id in enumerate(customers):
        api.set_limits(customer_id, credit_type_id=unit, hard_limit=str(Decimal("10.5") + index))
    api.set_limits(customers[0], soft_limit=7)  # USD cents: a limit of its own

    in_unit = api.ok("/v1/spend-limits/list", {"credit_type_id": unit}, limit=2)
    assert [(v["customer_id"], v["hard_limit"]) for v in in_unit["data"]] == [
        (customers[0], Decimal("10.5")),
        (customers[1], Decimal("11.5")),
    ]
    rest = api.ok("/v1/spend-limits/list", {"credit_type_id": unit}, next_page=in_unit["next_page"])
    assert [v["customer_id"] for v in rest["data"]] == [customers[2]] and rest["next_page"] is None
    assert api.limits(customers[0]) == {
        "customer_id": customers[0],
        "credit_type_id": USD_CENTS,
        "soft_limit": 7,
        "hard_limit": None,
        "current_spend": 0,
        "status": "ok",
        "soft_limit_alert_id": api.limits(customers[0])["soft_limit_alert_id"],
        "hard_limit_alert_id": None,
    }
    everything = api.ok("/v1/spend-limits/list", {}, limit=100)["data"]
    mine = [(v["customer_id"], v["credit_type_id"]) for v in everything if v["customer_id"] in customers]
    assert mine == sorted([*((c, unit) for c in customers), (customers[0], USD_CENTS)])
    assert api.post("/v1/spend-limits/list", {}, next_page="forged").json() == {
        "message": "next_page: invalid cursor"
    }


def test_concurrent_changes_leave_exactly_one_limit_of_each_kind(client: Metronome, api: Extensions) -> None:
    customer_id = customer(client)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda hard: api.set_limits(customer_id, hard_limit=hard), range(100, 116)))
    hard_alerts = [
        a.alert
        for a in client.v1.customers.alerts.list(customer_id=customer_id)
        if a.alert.name == "Hard spend limit"
    ]
    assert len(hard_alerts) == 1
    assert api.limits(customer_id)["hard_limit_alert_id"] == hard_alerts[0].id
