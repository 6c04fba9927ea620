"""The alerts and customer-alerts API through the Metronome SDK: create with every field and read it
back, every validation rule (a 4xx naming the field, never a 500), fields and types meterline does
not support, uniqueness keys and their release, listing by status, the customer status from
`evaluating` to `ok` to null once archived, and reset.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from metronome import Metronome

from meterline.domain.timeutil import to_us
from tests.sdk.alert_helpers import (
    billed_customer,
    create_alert,
    customer,
    customer_alert,
    outbox,
    rows,
    settled_outbox,
    status,
    usage_product,
    use,
    wait_status,
)
from tests.sdk.contract_helpers import MISSING_ID, USD_CENTS, error_of, post
from tests.sdk.helpers import settle, uid
from tests.support.inprocess import in_process
from tests.support.server import RunningServer

Body = dict[str, Any]
SPEND = "alerts.spend_threshold_reached"


@pytest.fixture(scope="module")
def refs(server: RunningServer) -> dict[str, str]:
    """What the refused requests refer to: a customer, a usage metric, a pricing unit."""
    client = Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)
    archived_unit = client.v1.pricing_units.create(name=f"old {uid()}").data.id
    client.post("/v1/credit-types/archive", body={"id": archived_unit}, cast_to=object)
    archived_metric = usage_product(client).metric_id
    client.v1.billable_metrics.archive(id=archived_metric)
    archived_customer = customer(client)
    client.v1.customers.archive(id=archived_customer)
    return {
        "customer_id": customer(client),
        "metric_id": usage_product(client).metric_id,
        "archived_unit": archived_unit,
        "archived_metric": archived_metric,
        "archived_customer": archived_customer,
    }


# Create and read back


def test_create_with_every_field_and_read_it_back(client: Metronome, server: RunningServer) -> None:
    customer_id = customer(client)
    unit_name = f"tokens {uid()}"
    unit = client.v1.pricing_units.create(name=unit_name).data.id
    key = f"alert-{uid()}"
    before = datetime.now().astimezone()
    alert_id = create_alert(
        client,
        alert_type="low_remaining_contract_credit_balance_reached",
        name="Credits running low",
        threshold=250.5,
        customer_id=customer_id,
        credit_type_id=unit,
        evaluate_on_create=False,
        uniqueness_key=key,
        custom_field_filters=[{"entity": "ContractCredit", "key": "pool", "value": "eng"}],
        access_type="SPEND",
    )
    # No credit in that unit: a balance of 0 is at or below the threshold, in alarm at once, but
    # silently (evaluate_on_create false).
    wait_status(client, alert_id, customer_id, ("in_alarm", "alert_created"))
    got = customer_alert(client, alert_id, customer_id)
    assert got.alert.updated_at >= before.replace(microsecond=0)
    assert got.alert.to_dict() == {
        "id": alert_id,
        "name": "Credits running low",
        "type": "low_remaining_contract_credit_balance_reached",
        "status": "enabled",
        "threshold": 250.5,
        "updated_at": got.alert.to_dict()["updated_at"],
        "credit_type": {"id": unit, "name": unit_name},
        "custom_field_filters": [{"entity": "ContractCredit", "key": "pool", "value": "eng"}],
        "group_values": None,
        "invoice_types_filter": None,
        "credit_grant_type_filters": None,
        "uniqueness_key": key,
    }
    assert outbox(server, customer_id) == []


def test_each_type_reads_back_its_own_fields(client: Metronome) -> None:
    customer_id = customer(client)
    metric_id = usage_product(client).metric_id
    spend = create_alert(
        client,
        alert_type="spend_threshold_reached",
        threshold=100,
        customer_id=customer_id,
        group_values=[{"key": "region", "value": "eu"}, {"key": "tier"}],
    )
    invoice = create_alert(
        client,
        alert_type="invoice_total_reached",
        threshold=100,
        customer_id=customer_id,
        invoice_types_filter=["USAGE", "SCHEDULED"],
    )
    usage = create_alert(
        client,
        alert_type="usage_threshold_reached",
        threshold=7,
        customer_id=customer_id,
        billable_metric_id=metric_id,
    )
    views = {a.alert.id: a.alert for a in client.v1.customers.alerts.list(customer_id=customer_id)}
    assert set(views) == {spend, invoice, usage}
    assert [g.to_dict() for g in views[spend].group_values or []] == [
        {"key": "region", "value": "eu"},
        {"key": "tier", "value": None},
    ]
    assert views[spend].credit_type is not None and views[spend].credit_type.to_dict() == {
        "id": USD_CENTS,
        "name": "USD (cents)",
    }
    assert views[invoice].invoice_types_filter == ["USAGE", "SCHEDULED"]
    assert (views[usage].type, views[usage].threshold, views[usage].credit_type) == (
        "usage_threshold_reached",
        7,
        None,  # a quantity, in no credit type
    )


# Refused requests: 4xx naming the field, never a 500.


def spend_body(refs: dict[str, str]) -> Body:
    return {
        "alert_type": "spend_threshold_reached",
        "name": f"refused {uid()}",
        "threshold": 100,
        "customer_id": refs["customer_id"],
    }


Change = Callable[[Body, dict[str, str]], None]
REFUSED: list[tuple[str, Change, int, str]] = [
    (
        "billable metric on a spend alert",
        lambda b, r: b.update(billable_metric_id=r["metric_id"]),
        400,
        "billable_metric_id: only usage_threshold_reached alerts take one",
    ),
    (
        "usage alert without a metric",
        lambda b, r: b.update(alert_type="usage_threshold_reached"),
        400,
        "billable_metric_id: is required for usage_threshold_reached alerts",
    ),
    (
        "unknown billable metric",
        lambda b, r: b.update(alert_type="usage_threshold_reached", billable_metric_id=MISSING_ID),
        400,
        "billable_metric_id: no billable metric with id",
    ),
    (
        "archived billable metric",
        lambda b, r: b.update(alert_type="usage_threshold_reached", billable_metric_id=r["archived_metric"]),
        400,
        "billable_metric_id: billable metric",
    ),
    (
        "unknown customer",
        lambda b, r: b.update(customer_id=MISSING_ID),
        404,
        "customer_id: no customer with id",
    ),
    (
        "archived customer",
        lambda b, r: b.update(customer_id=r["archived_customer"]),
        400,
        "customer_id: customer",
    ),
    (
        "unknown credit type",
        lambda b, r: b.update(credit_type_id=MISSING_ID),
        400,
        "credit_type_id: no pricing unit",
    ),
    (
        "archived credit type",
        lambda b, r: b.update(credit_type_id=r["archived_unit"]),
        400,
        "credit_type_id: pricing unit",
    ),
    (
        "invoice types on a spend alert",
        lambda b, r: b.update(invoice_types_filter=["USAGE"]),
        400,
        "invoice_types_filter: only invoice total alerts take one",
    ),
    (
        "unknown invoice type",
        lambda b, r: b.update(alert_type="invoice_total_reached", invoice_types_filter=["USAGE", "BOGUS"]),
        400,
        "invoice_types_filter: unknown invoice type 'BOGUS'",
    ),
    (
        "group values on a balance alert",
        lambda b, r: b.update(alert_type="low_credit_balance_reached", group_values=[{"key": "region"}]),
        400,
        "group_values: only spend_threshold_reached alerts take them",
    ),
    (
        "a group key twice",
        lambda b, r: b.update(group_values=[{"key": "region", "value": "eu"}, {"key": "region"}]),
        400,
        "group_values: each key may appear once",
    ),
    (
        "custom field filters on a spend alert",
        lambda b, r: b.update(custom_field_filters=[{"entity": "Contract", "key": "k", "value": "v"}]),
        400,
        "custom_field_filters: spend_threshold_reached alerts do not look at commits or credits",
    ),
    (
        "percentage above 100",
        lambda b, r: b.update(alert_type="low_remaining_commit_percentage_reached", threshold=100.5),
        400,
        "threshold: a percentage must be between 0 and 100",
    ),
    ("negative threshold", lambda b, r: b.update(threshold=-1), 400, "threshold:"),
    ("no name", lambda b, r: b.pop("name"), 400, "name: is required"),
    ("no threshold", lambda b, r: b.pop("threshold"), 400, "threshold: is required"),
    ("unknown alert type", lambda b, r: b.update(alert_type="bogus_reached"), 400, "alert_type:"),
    ("unknown field", lambda b, r: b.update(colour="red"), 400, "colour: unknown field"),
    (
        "quantity balances",
        lambda b, r: b.update(alert_type="low_remaining_commit_balance_reached", access_type="QUANTITY"),
        400,
        "access_type: QUANTITY balances are not supported",
    ),
    (
        "a seat alert without its seat",
        lambda b, r: b.update(alert_type="low_remaining_seat_balance_reached"),
        400,
        "seat_filter: is required for low_remaining_seat_balance_reached alerts",
    ),
    (
        "a seat filter on a spend alert",
        lambda b, r: b.update(seat_filter={"seat_group_key": "seat_id"}),
        400,
        "seat_filter: only low_remaining_seat_balance_reached alerts take one",
    ),
    (
        "a blocking seat alert",
        lambda b, r: b.update(
            alert_type="low_remaining_seat_balance_reached",
            seat_filter={"seat_group_key": "user_id"},
            blocking=True,
        ),
        400,
        "blocking: low_remaining_seat_balance_reached alerts concern one seat each",
    ),
    (
        "a seat filter without its key",
        lambda b, r: b.update(
            alert_type="low_remaining_seat_balance_reached", seat_filter={"seat_group_value": "ann"}
        ),
        400,
        "seat_filter.seat_group_key: is required",
    ),
    ("plan", lambda b, r: b.update(plan_id=MISSING_ID), 400, "plan_id: legacy plans are not supported"),
    (
        "credit grant types",
        lambda b, r: b.update(alert_type="low_credit_balance_reached", credit_grant_type_filters=["trial"]),
        400,
        "credit_grant_type_filters: meterline has no legacy credit grants",
    ),
    (
        "alert specifiers",
        lambda b, r: b.update(
            alert_type="low_remaining_contract_credit_and_commit_balance_reached",
            alert_specifiers=[{"custom_field_filters": [{"entity": "Commit", "key": "k", "value": "v"}]}],
        ),
        400,
        "alert_specifiers: alert specifiers are not supported",
    ),
]


@pytest.mark.parametrize(
    ("change", "status_code", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_create_refuses(
    client: Metronome, refs: dict[str, str], change: Change, status_code: int, message: str
) -> None:
    body = spend_body(refs)
    change(body, refs)
    got = error_of(lambda: post(client, "/v1/alerts/create", body), status_code)
    assert got.startswith(message), got


def test_refused_requests_create_nothing(client: Metronome, refs: dict[str, str]) -> None:
    before = {a.alert.id for a in client.v1.customers.alerts.list(customer_id=refs["customer_id"])}
    body = spend_body(refs)
    body["billable_metric_id"] = refs["metric_id"]
    error_of(lambda: post(client, "/v1/alerts/create", body), 400)
    assert {a.alert.id for a in client.v1.customers.alerts.list(customer_id=refs["customer_id"])} == before


# Uniqueness keys


def test_uniqueness_key_conflicts_until_released_on_archive(client: Metronome) -> None:
    customer_id = customer(client)
    key = f"limit-{uid()}"
    first = create_alert(
        client, alert_type="spend_threshold_reached", threshold=1, customer_id=customer_id, uniqueness_key=key
    )

    def again() -> str:
        return create_alert(
            client,
            alert_type="spend_threshold_reached",
            threshold=2,
            customer_id=customer_id,
            uniqueness_key=key,
        )

    assert error_of(again, 409) == "This uniqueness key has already been used."
    client.v1.alerts.archive(id=first)
    assert error_of(again, 409) == "This uniqueness key has already been used."  # archiving keeps the key
    client.v1.alerts.archive(id=first, release_uniqueness_key=True)  # may come after the archive
    second = again()
    assert second != first
    assert customer_alert(client, first, customer_id).alert.uniqueness_key is None
    assert customer_alert(client, second, customer_id).alert.uniqueness_key == key


def test_archive_unknown_alert_is_404(client: Metronome) -> None:
    assert error_of(lambda: client.v1.alerts.archive(id=MISSING_ID), 404).startswith("alert_id: no alert")


# Customer alerts: get, list and statuses


def test_list_by_status_and_get(client: Metronome) -> None:
    customer_id, other = customer(client), customer(client)
    enabled = create_alert(
        client, alert_type="spend_threshold_reached", threshold=10, customer_id=customer_id
    )
    archived = create_alert(
        client, alert_type="spend_threshold_reached", threshold=20, customer_id=customer_id
    )
    others = create_alert(client, alert_type="spend_threshold_reached", threshold=30, customer_id=other)
    wait_status(client, archived, customer_id, ("ok", "alert_created"))
    client.v1.alerts.archive(id=archived)

    def listed(*statuses: Any) -> list[tuple[str, str | None, str]]:
        params = {"alert_statuses": list(statuses)} if statuses else {}
        found = client.v1.customers.alerts.list(customer_id=customer_id, **params)
        return [(a.alert.id, a.customer_status, a.alert.status) for a in found]

    wait_status(client, enabled, customer_id, ("ok", "alert_created"))
    assert listed() == [(enabled, "ok", "enabled")]  # ENABLED by default
    assert listed("ENABLED") == [(enabled, "ok", "enabled")]
    assert listed("ARCHIVED") == [(archived, None, "archived")]
    both = sorted([(enabled, "ok", "enabled"), (archived, None, "archived")])
    assert listed("ENABLED", "ARCHIVED") == both
    assert listed("DISABLED") == []

    assert status(client, archived, customer_id) == (None, "alert_created")  # null once archived
    assert customer_alert(client, archived, customer_id).alert.status == "archived"
    message = error_of(lambda: customer_alert(client, others, customer_id), 404)
    assert message.startswith(f"alert_id: alert {others} does not apply to customer")
    message = error_of(lambda: client.v1.customers.alerts.list(customer_id=MISSING_ID), 404)
    assert message.startswith("customer_id: no customer")
    assert error_of(lambda: customer_alert(client, MISSING_ID, customer_id), 404).startswith(
        "alert_id: no alert"
    )


def test_customer_status_is_evaluating_until_the_evaluator_measures(tmp_path: Path) -> None:
    """With the evaluator held back (in-process), a new alert reads `evaluating`; one evaluation
    later, `ok`."""
    with in_process(f"sqlite:///{tmp_path / 'api.db'}") as app:
        client = app.client
        customer_id, usage = billed_customer(client, price=100)
        alert_id = create_alert(
            client, alert_type="spend_threshold_reached", threshold=500, customer_id=customer_id
        )
        assert status(client, alert_id, customer_id) == ("evaluating", None)
        app.run(to_us(datetime.now().astimezone()))
        assert status(client, alert_id, customer_id) == ("ok", "alert_created")
        use(client, customer_id, usage, 5)
        assert status(client, alert_id, customer_id) == ("ok", "alert_created")  # not yet evaluated
        app.run(app.now + 1)
        assert status(client, alert_id, customer_id) == ("in_alarm", "usage")


# Reset


def test_reset_resolves_then_measures_again(client: Metronome, server: RunningServer) -> None:
    customer_id, usage = billed_customer(client, price=100)
    alert_id = create_alert(
        client, alert_type="spend_threshold_reached", threshold=500, customer_id=customer_id
    )
    quiet = create_alert(
        client, alert_type="spend_threshold_reached", threshold=10**6, customer_id=customer_id
    )
    wait_status(client, alert_id, customer_id, ("ok", "alert_created"))
    use(client, customer_id, usage, 6)  # 600 cents
    wait_status(client, alert_id, customer_id, ("in_alarm", "usage"))

    client.v1.customers.alerts.reset(alert_id=alert_id, customer_id=customer_id)
    # Still past the threshold: resolved by the reset, in alarm again on the next evaluation.
    wait_status(client, alert_id, customer_id, ("in_alarm", "reevaluation"))
    assert rows(settled_outbox(client, server, customer_id), "current_spend") == [
        (SPEND, "usage", 600),
        (SPEND + "_resolved", "reset", 600),
        (SPEND, "reevaluation", 600),
    ]

    # Resetting an alert in ok writes nothing and measures it again.
    client.v1.customers.alerts.reset(alert_id=quiet, customer_id=customer_id)
    wait_status(client, quiet, customer_id, ("ok", "reevaluation"))
    assert len(settled_outbox(client, server, customer_id)) == 3

    other = customer(client)
    message = error_of(lambda: client.v1.customers.alerts.reset(alert_id=alert_id, customer_id=other), 404)
    assert message.startswith(f"alert_id: alert {alert_id} does not apply to customer")


def test_archiving_twice_resolves_once(client: Metronome, server: RunningServer) -> None:
    customer_id, usage = billed_customer(client, price=100)
    alert_id = create_alert(
        client, alert_type="spend_threshold_reached", threshold=100, customer_id=customer_id
    )
    wait_status(client, alert_id, customer_id, ("ok", "alert_created"))
    use(client, customer_id, usage, 2)
    wait_status(client, alert_id, customer_id, ("in_alarm", "usage"))
    client.v1.alerts.archive(id=alert_id)
    client.v1.alerts.archive(id=alert_id)
    settle(client)
    assert rows(outbox(server, customer_id), "current_spend") == [
        (SPEND, "usage", 200),
        (SPEND + "_resolved", "alert_archived", 200),
    ]
    # An archived alert is no longer evaluated.
    use(client, customer_id, usage, 5)
    assert len(settled_outbox(client, server, customer_id)) == 2
