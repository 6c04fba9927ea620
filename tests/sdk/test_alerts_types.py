"""Every supported alert type, driven through the Metronome SDK from ok to in_alarm and, where the
measure can come back, back to ok; the customer status, what triggered it, and the exact outbox rows.

Amounts are in USD cents; usage is priced per unit (see alert_helpers). Each transition writes one
notification carrying the measure, computed here by hand; a measure staying past its threshold as
more usage arrives writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from metronome import Metronome

from meterline.domain.alerts import KINDS
from meterline.domain.timeutil import format_rfc3339, month_bounds, now_us, parse_rfc3339
from tests.sdk.alert_helpers import (
    D,
    add_commit,
    add_credit,
    billed_customer,
    check_days,
    contract,
    create_alert,
    customer,
    customer_alert,
    fixed_product,
    hour_in,
    outbox,
    rate_card,
    rows,
    segment,
    settled_outbox,
    settled_status,
    status,
    timestamp_of,
    usage_product,
    use,
    wait_outbox,
    wait_status,
)
from tests.sdk.contract_helpers import JAN, USD_CENTS
from tests.sdk.helpers import hours_ago, settle, uid
from tests.support.inprocess import InProcess
from tests.support.outbox import notifications_for
from tests.support.server import RunningServer

SPEND = "alerts.spend_threshold_reached"

# Every alert type has a scenario below (the seat type is refused: see test_alerts_api).
COVERED = {
    "spend_threshold_reached",
    "invoice_total_reached",
    "monthly_invoice_total_spend_threshold_reached",
    "usage_threshold_reached",
    "low_credit_balance_reached",
    "low_remaining_credit_percentage_reached",
    "low_remaining_commit_balance_reached",
    "low_remaining_commit_percentage_reached",
    "low_remaining_contract_credit_balance_reached",
    "low_remaining_contract_credit_percentage_reached",
    "low_remaining_contract_credit_and_commit_balance_reached",
    "low_remaining_contract_credit_and_commit_percentage_reached",
    "low_remaining_days_in_plan_reached",
    "low_remaining_days_for_commit_segment_reached",
    "low_remaining_days_for_contract_credit_segment_reached",
    "spend_forecast_reached",  # meterline's own; on the clock: tests/integration/test_forecast_alerts.py
    "low_remaining_seat_balance_reached",  # per seat, with its webhook: tests/sdk/test_seat_balances.py
}


def test_every_supported_type_has_a_scenario() -> None:
    assert {t.value for t in KINDS} == COVERED


def test_spend_forecast_reached(client: Metronome, server: RunningServer) -> None:
    """meterline's forecast: spend projected to the period's end at the last day's pace. Usage
    sent now has a pace, so 3,000 cents project past 3,001 (but in a month's last half minute)."""
    customer_id, usage = billed_customer(client, price=100)
    alert_id = create_alert(
        client, alert_type="spend_forecast_reached", name="On course", threshold=3001, customer_id=customer_id
    )
    wait_status(client, alert_id, customer_id, ("ok", "alert_created"))
    use(client, customer_id, usage, 30)  # 3000 cents
    wait_status(client, alert_id, customer_id, ("in_alarm", "usage"))
    [fired] = outbox(server, customer_id)
    properties = fired["properties"]
    assert fired["type"] == "alerts.spend_forecast_reached"
    assert {k: properties[k] for k in ("alert_type", "threshold", "credit_type_id", "current_spend")} == {
        "alert_type": "spend_forecast_reached",
        "threshold": 3001,
        "credit_type_id": USD_CENTS,
        "current_spend": 3000,
    }
    assert properties["projected_spend"] >= 3001 and properties["forecast_window_hours"] == 24
    _month_start, month_end = month_bounds(now_us())
    assert properties["period_ends_at"] == format_rfc3339(month_end)
    assert (
        timestamp_of(fired)
        <= parse_rfc3339(properties["threshold_reached_at"])
        <= parse_rfc3339(properties["period_ends_at"])
    )


# Spend


def test_spend_threshold_reached(client: Metronome, server: RunningServer) -> None:
    customer_id, usage = billed_customer(client, price=100)
    use(client, customer_id, usage, 30)  # 3000 cents
    settle(client)
    alert_id = create_alert(
        client,
        alert_type="spend_threshold_reached",
        name="Soft limit",
        threshold=5000,
        customer_id=customer_id,
    )
    wait_status(client, alert_id, customer_id, ("ok", "alert_created"))

    before = datetime.now(UTC).replace(microsecond=0)
    use(client, customer_id, usage, 30)  # 6000 cents
    wait_status(client, alert_id, customer_id, ("in_alarm", "usage"))
    after = datetime.now(UTC)
    [fired] = outbox(server, customer_id)
    properties = fired["properties"]
    assert fired == {
        "id": fired["id"],
        "type": SPEND,
        "properties": {
            "customer_id": customer_id,
            "alert_id": alert_id,
            "alert_name": "Soft limit",
            "alert_type": "spend_threshold_reached",
            "threshold": 5000,
            "credit_type_id": USD_CENTS,
            "timestamp": properties["timestamp"],
            "triggered_by": "usage",
            "current_spend": 6000,
            # meterline's extension beside Metronome's properties: 6000 of 5000, nothing left.
            "percent_used": 120,
            "remaining": 0,
        },
    }
    assert before <= timestamp_of(fired) <= after  # when it was evaluated, to the millisecond

    # Hovering past the threshold writes nothing more.
    use(client, customer_id, usage, 10)
    use(client, customer_id, usage, 10)  # 8000 cents
    assert settled_status(client, alert_id, customer_id) == ("in_alarm", "usage")
    assert len(settled_outbox(client, server, customer_id)) == 1

    # The user raises the limit: the old alert resolves, the new one is ok at once.
    client.v1.alerts.archive(id=alert_id)
    raised = create_alert(
        client, alert_type="spend_threshold_reached", threshold=10000, customer_id=customer_id
    )
    wait_status(client, raised, customer_id, ("ok", "alert_created"))
    notified = settled_outbox(client, server, customer_id)
    assert rows(notified, "current_spend") == [
        (SPEND, "usage", 6000),
        (SPEND + "_resolved", "alert_archived", 8000),
    ]
    assert status(client, alert_id, customer_id) == (None, "alert_archived")
    # The resolution measures spend as it is now, against the archived alert's threshold.
    assert [(n["properties"]["percent_used"], n["properties"]["remaining"]) for n in notified] == [
        (120, 0),
        (160, 0),
    ]


def test_spend_counts_usage_before_drawdown_in_the_alerts_credit_type(
    client: Metronome, server: RunningServer
) -> None:
    customer_id, usage = billed_customer(client, price=10)
    add_credit(client, customer_id, 100_000)  # covers every charge
    alert_id = create_alert(
        client, alert_type="spend_threshold_reached", threshold=500, customer_id=customer_id
    )
    other_unit = client.v1.pricing_units.create(name=f"credits {uid()}").data.id
    in_unit = create_alert(
        client,
        alert_type="spend_threshold_reached",
        threshold=1,
        customer_id=customer_id,
        credit_type_id=other_unit,
    )
    wait_status(client, alert_id, customer_id, ("ok", "alert_created"))
    wait_status(client, in_unit, customer_id, ("ok", "alert_created"))

    use(client, customer_id, usage, 50)  # 500 cents charged, all covered by the credit
    wait_status(client, alert_id, customer_id, ("in_alarm", "usage"))
    assert rows(settled_outbox(client, server, customer_id), "current_spend") == [(SPEND, "usage", 500)]
    assert status(client, in_unit, customer_id) == ("ok", "alert_created")  # nothing priced in that unit


def test_spend_scoped_to_a_group_value(client: Metronome, server: RunningServer) -> None:
    customer_id = customer(client)
    usage = usage_product(client, group_key="region")
    contract(client, customer_id, rate_card(client, (usage.product_id, 10)))
    alert_id = create_alert(
        client,
        alert_type="spend_threshold_reached",
        threshold=500,
        customer_id=customer_id,
        group_values=[{"key": "region", "value": "eu"}],
    )
    wait_status(client, alert_id, customer_id, ("ok", "alert_created"))

    use(client, customer_id, usage, 100, region="us")  # 1000 cents, not in eu
    use(client, customer_id, usage, 40, region="eu")  # 400 cents in eu
    assert settled_status(client, alert_id, customer_id) == ("ok", "alert_created")
    use(client, customer_id, usage, 10, region="eu")  # 500 cents in eu
    wait_status(client, alert_id, customer_id, ("in_alarm", "usage"))
    [fired] = settled_outbox(client, server, customer_id)
    assert fired["type"] == SPEND
    assert fired["properties"]["current_spend"] == 500
    assert fired["properties"]["group_values"] == [{"key": "region", "value": "eu"}]


def test_spend_on_an_open_group_key_keeps_a_state_per_value(client: Metronome, server: RunningServer) -> None:
    customer_id = customer(client)
    usage = usage_product(client, group_key="region")
    contract(client, customer_id, rate_card(client, (usage.product_id, 10)))
    alert_id = create_alert(
        client,
        alert_type="spend_threshold_reached",
        threshold=500,
        customer_id=customer_id,
        group_values=[{"key": "region"}],
    )
    # Measured, with nothing in any group yet: ok.
    wait_status(client, alert_id, customer_id, ("ok", "alert_created"))

    use(client, customer_id, usage, 30, region="us")  # 300 cents
    use(client, customer_id, usage, 60, region="eu")  # 600 cents
    wait_status(client, alert_id, customer_id, ("in_alarm", "usage"))
    eu, us = [{"key": "region", "value": "eu"}], [{"key": "region", "value": "us"}]
    assert status(client, alert_id, customer_id, group_values=eu) == ("in_alarm", "usage")
    assert status(client, alert_id, customer_id, group_values=us)[0] == "ok"
    assert status(client, alert_id, customer_id, group_values=[{"key": "region", "value": "apac"}])[0] == "ok"
    [fired] = settled_outbox(client, server, customer_id)
    assert (fired["properties"]["current_spend"], fired["properties"]["group_values"]) == (600, eu)

    use(client, customer_id, usage, 20, region="us")  # us: 500 cents, its own transition
    wait_status(client, alert_id, customer_id, ("in_alarm", "usage"), group_values=us)
    use(client, customer_id, usage, 5, region="eu")  # eu stays in alarm
    found = settled_outbox(client, server, customer_id)
    assert [(p["properties"]["group_values"], p["properties"]["current_spend"]) for p in found] == [
        (eu, 600),
        (us, 500),
    ]

    # Archiving resolves each value's state, naming the value.
    client.v1.alerts.archive(id=alert_id)
    resolved = settled_outbox(client, server, customer_id)[2:]
    assert sorted(
        (p["type"], p["properties"]["triggered_by"], p["properties"]["current_spend"]) for p in resolved
    ) == [(SPEND + "_resolved", "alert_archived", 500), (SPEND + "_resolved", "alert_archived", 650)]
    assert sorted(p["properties"]["group_values"][0]["value"] for p in resolved) == ["eu", "us"]


def test_spend_group_values_that_are_long_or_hold_separators(
    client: Metronome, server: RunningServer
) -> None:
    """Group values are user data: any value a metric keeps must be evaluated, never break a batch."""
    customer_id = customer(client)
    usage = usage_product(client, group_key="region")
    contract(client, customer_id, rate_card(client, (usage.product_id, 10)))
    alert_id = create_alert(
        client,
        alert_type="spend_threshold_reached",
        threshold=100,
        customer_id=customer_id,
        group_values=[{"key": "region"}],
    )
    wait_status(client, alert_id, customer_id, ("ok", "alert_created"))
    long_value, tricky = "r" * 300, "a=b,c"
    use(client, customer_id, usage, 10, region=long_value)
    use(client, customer_id, usage, 20, region=tricky)
    found = wait_outbox(server, customer_id, 2)
    assert sorted(
        (p["properties"]["group_values"][0]["value"], p["properties"]["current_spend"]) for p in found
    ) == [
        (tricky, 200),
        (long_value, 100),
    ]
    for value in (long_value, tricky):
        got = status(client, alert_id, customer_id, group_values=[{"key": "region", "value": value}])
        assert got == ("in_alarm", "usage")


# Invoice totals


def current_invoice_ids(client: Metronome, customer_id: str) -> list[str]:
    """The customer's invoices for the current billing period (the calendar month)."""
    month = hours_ago(0).replace(day=1, hour=0)
    return [
        i.id for i in client.v1.customers.invoices.list(customer_id=customer_id) if i.start_timestamp == month
    ]


def test_invoice_total_reached_is_after_commit_drawdown(client: Metronome, server: RunningServer) -> None:
    customer_id, usage = billed_customer(client, price=10)
    add_commit(client, customer_id, 2000)
    alert_id = create_alert(
        client, alert_type="invoice_total_reached", threshold=2500, customer_id=customer_id
    )
    scheduled_only = create_alert(
        client,
        alert_type="invoice_total_reached",
        threshold=1,
        customer_id=customer_id,
        invoice_types_filter=["SCHEDULED"],
    )
    wait_status(client, alert_id, customer_id, ("ok", "alert_created"))

    use(client, customer_id, usage, 400)  # 4000 charged, 2000 covered: total 2000
    assert settled_status(client, alert_id, customer_id) == ("ok", "alert_created")
    use(client, customer_id, usage, 100)  # 5000 charged: total 3000
    wait_status(client, alert_id, customer_id, ("in_alarm", "usage"))
    [fired] = outbox(server, customer_id)
    [invoice_id] = current_invoice_ids(client, customer_id)
    assert fired["type"] == "alerts.invoice_total_reached"
    assert (fired["properties"]["invoice_total"], fired["properties"]["invoice_id"]) == (3000, invoice_id)

    # A new commit covers more of the invoice: the total comes back under the threshold.
    add_commit(client, customer_id, 1000)
    wait_status(client, alert_id, customer_id, ("ok", "reevaluation"))
    assert rows(settled_outbox(client, server, customer_id), "invoice_total") == [
        ("alerts.invoice_total_reached", "usage", 3000),
        ("alerts.invoice_total_reached_resolved", "reevaluation", 2000),
    ]
    assert status(client, scheduled_only, customer_id)[0] == "ok"  # only usage invoices exist


def test_invoice_total_is_the_largest_invoice_and_monthly_total_their_sum(
    client: Metronome, server: RunningServer
) -> None:
    customer_id = customer(client)
    usage = usage_product(client)
    contract(client, customer_id, rate_card(client, (usage.product_id, 10)))
    contract(client, customer_id, rate_card(client, (usage.product_id, 20)))
    largest = create_alert(
        client, alert_type="invoice_total_reached", threshold=2500, customer_id=customer_id
    )
    monthly = create_alert(
        client,
        alert_type="monthly_invoice_total_spend_threshold_reached",
        threshold=2500,
        customer_id=customer_id,
    )
    wait_status(client, monthly, customer_id, ("ok", "alert_created"))

    use(client, customer_id, usage, 100)  # invoices of 1000 and 2000 cents
    wait_status(client, monthly, customer_id, ("in_alarm", "usage"))
    assert status(client, largest, customer_id) == ("ok", "alert_created")
    [fired] = settled_outbox(client, server, customer_id)
    assert fired["type"] == "alerts.monthly_invoice_total_spend_threshold_reached"
    assert fired["properties"]["invoice_total"] == 3000

    use(client, customer_id, usage, 30)  # 1300 and 2600
    wait_status(client, largest, customer_id, ("in_alarm", "usage"))
    assert rows(settled_outbox(client, server, customer_id), "invoice_total") == [
        ("alerts.monthly_invoice_total_spend_threshold_reached", "usage", 3000),
        ("alerts.invoice_total_reached", "usage", 2600),
    ]

    # Raising the monthly threshold: archive and create again.
    client.v1.alerts.archive(id=monthly)
    raised = create_alert(
        client,
        alert_type="monthly_invoice_total_spend_threshold_reached",
        threshold=4000,
        customer_id=customer_id,
    )
    wait_status(client, raised, customer_id, ("ok", "alert_created"))
    assert rows(settled_outbox(client, server, customer_id)[2:], "invoice_total") == [
        ("alerts.monthly_invoice_total_spend_threshold_reached_resolved", "alert_archived", 3900)
    ]


# Usage


def test_usage_threshold_reached(client: Metronome, server: RunningServer) -> None:
    customer_id = customer(client)  # no contract: the period is the calendar month
    usage = usage_product(client)
    other = usage_product(client)
    alert_id = create_alert(
        client,
        alert_type="usage_threshold_reached",
        threshold=100,
        customer_id=customer_id,
        billable_metric_id=usage.metric_id,
    )
    wait_status(client, alert_id, customer_id, ("ok", "alert_created"))
    use(client, customer_id, usage, 60)
    use(client, customer_id, other, 500)  # another metric
    assert settled_status(client, alert_id, customer_id) == ("ok", "alert_created")
    use(client, customer_id, usage, 40.5)
    wait_status(client, alert_id, customer_id, ("in_alarm", "usage"))
    use(client, customer_id, usage, 1)
    [fired] = settled_outbox(client, server, customer_id)
    assert fired["type"] == "alerts.usage_threshold_reached"
    assert fired["properties"]["current_usage"] == D("100.5")
    assert fired["properties"]["billable_metric_id"] == usage.metric_id

    client.v1.alerts.archive(id=alert_id)
    raised = create_alert(
        client,
        alert_type="usage_threshold_reached",
        threshold=200,
        customer_id=customer_id,
        billable_metric_id=usage.metric_id,
    )
    wait_status(client, raised, customer_id, ("ok", "alert_created"))
    assert rows(settled_outbox(client, server, customer_id), "current_usage") == [
        ("alerts.usage_threshold_reached", "usage", D("100.5")),
        ("alerts.usage_threshold_reached_resolved", "alert_archived", D("101.5")),
    ]


# Balances and percentages: usage draws the balance down, a top-up brings it back.


Holding = tuple[str, str, float]  # (on the "contract" or the "customer", "commit" or "credit", amount)


def hold(client: Metronome, customer_id: str, kind: str, amount: float, priority: int) -> None:
    """A customer-level commit or credit; credits carry the custom field pool=eng."""
    if kind == "credit":
        add_credit(client, customer_id, amount, priority=priority, custom_fields={"pool": "eng"})
    else:
        add_commit(client, customer_id, amount, priority=priority)


def balance_scenario(
    client: Metronome,
    server: RunningServer,
    *,
    alert_type: str,
    threshold: float,
    measure: str,
    webhook: str,
    holdings: list[Holding],
    spend: float,
    alarm_value: Decimal,
    top_up: tuple[str, float],
    resolved_value: Decimal,
    **alert_fields: Any,
) -> None:
    """A customer with `holdings` at priorities 1, 2, ... (so drawn down in that order) and usage
    at 1 cent per unit: `spend` units take the measure past the threshold, one more unit moves it
    further (nothing new), then a customer-level `top_up` brings it back."""
    customer_id = customer(client)
    usage = usage_product(client)
    on_contract: dict[str, list[dict[str, Any]]] = {"commits": [], "credits": []}
    for priority, (where, kind, amount) in enumerate(holdings, start=1):
        if where == "contract":
            body = {
                "product_id": fixed_product(client),
                "access_schedule": segment(amount),
                "priority": priority,
            }
            on_contract[f"{kind}s"].append({**body, "type": "PREPAID"} if kind == "commit" else body)
    contract(client, customer_id, rate_card(client, (usage.product_id, 1)), **on_contract)
    for priority, (where, kind, amount) in enumerate(holdings, start=1):
        if where == "customer":
            hold(client, customer_id, kind, amount, priority)
    alert_id = create_alert(
        client, alert_type=alert_type, threshold=threshold, customer_id=customer_id, **alert_fields
    )
    wait_status(client, alert_id, customer_id, ("ok", "alert_created"))

    use(client, customer_id, usage, spend)
    wait_status(client, alert_id, customer_id, ("in_alarm", "usage"))
    use(client, customer_id, usage, 1)  # further down: nothing new
    assert rows(settled_outbox(client, server, customer_id), measure) == [(webhook, "usage", alarm_value)]

    hold(client, customer_id, *top_up, priority=len(holdings) + 1)
    wait_status(client, alert_id, customer_id, ("ok", "reevaluation"))
    assert rows(settled_outbox(client, server, customer_id), measure) == [
        (webhook, "usage", alarm_value),
        (webhook + "_resolved", "reevaluation", resolved_value),
    ]
    assert customer_alert(client, alert_id, customer_id).alert.type == alert_type


def test_low_credit_balance_reached(client: Metronome, server: RunningServer) -> None:
    # The credit is drawn first; the commit is not a credit and is not counted.
    balance_scenario(
        client,
        server,
        alert_type="low_credit_balance_reached",
        threshold=400,
        measure="remaining_balance",
        webhook="alerts.low_remaining_credit_balance_reached",
        holdings=[("customer", "credit", 1000), ("customer", "commit", 5000)],
        spend=699,
        alarm_value=D(301),
        top_up=("credit", 500),
        resolved_value=D(800),  # 300 + 500
    )


def test_low_remaining_credit_percentage_reached(client: Metronome, server: RunningServer) -> None:
    balance_scenario(
        client,
        server,
        alert_type="low_remaining_credit_percentage_reached",
        threshold=25,
        measure="remaining_percentage",
        webhook="alerts.low_remaining_credit_percentage_reached",
        holdings=[("customer", "credit", 1000), ("contract", "commit", 5000)],
        spend=750,  # 25% left: at the threshold fires
        alarm_value=D(25),
        top_up=("credit", 1000),
        resolved_value=D("62.45"),  # (249 + 1000) / 2000
    )


def test_low_remaining_commit_balance_reached(client: Metronome, server: RunningServer) -> None:
    balance_scenario(
        client,
        server,
        alert_type="low_remaining_commit_balance_reached",
        threshold=400,
        measure="remaining_balance",
        webhook="alerts.low_remaining_commit_balance_reached",
        holdings=[("contract", "commit", 1000), ("contract", "credit", 5000)],
        spend=700,
        alarm_value=D(300),
        top_up=("commit", 500),
        resolved_value=D(799),  # 299 + 500
    )


def test_low_remaining_commit_percentage_reached(client: Metronome, server: RunningServer) -> None:
    balance_scenario(
        client,
        server,
        alert_type="low_remaining_commit_percentage_reached",
        threshold=10,
        measure="remaining_percentage",
        webhook="alerts.low_remaining_commit_percentage_reached",
        holdings=[("customer", "commit", 2000), ("customer", "credit", 5000)],
        spend=1900,  # 5% left
        alarm_value=D(5),
        top_up=("commit", 2000),
        resolved_value=D("52.475"),  # (99 + 2000) / 4000
    )


def test_low_remaining_contract_credit_balance_reached_with_custom_field_filter(
    client: Metronome, server: RunningServer
) -> None:
    # Only credits with the custom field pool=eng count: not the contract's own credit.
    balance_scenario(
        client,
        server,
        alert_type="low_remaining_contract_credit_balance_reached",
        threshold=500,
        measure="remaining_balance",
        webhook="alerts.low_remaining_contract_credit_balance_reached",
        holdings=[("customer", "credit", 1000), ("contract", "credit", 5000)],
        spend=500,
        alarm_value=D(500),
        top_up=("credit", 100),
        resolved_value=D(599),  # 499 + 100
        custom_field_filters=[{"entity": "ContractCredit", "key": "pool", "value": "eng"}],
    )


def test_low_remaining_contract_credit_percentage_reached(client: Metronome, server: RunningServer) -> None:
    balance_scenario(
        client,
        server,
        alert_type="low_remaining_contract_credit_percentage_reached",
        threshold=20,
        measure="remaining_percentage",
        webhook="alerts.low_remaining_contract_credit_percentage_reached",
        holdings=[("contract", "credit", 1000), ("contract", "commit", 1000)],
        spend=800,
        alarm_value=D(20),
        top_up=("credit", 3000),
        resolved_value=D("79.975"),  # (199 + 3000) / 4000
    )


def test_low_remaining_contract_credit_and_commit_balance_reached(
    client: Metronome, server: RunningServer
) -> None:
    balance_scenario(
        client,
        server,
        alert_type="low_remaining_contract_credit_and_commit_balance_reached",
        threshold=400,
        measure="remaining_balance",
        webhook="alerts.low_remaining_contract_credit_and_commit_balance_reached",
        holdings=[("contract", "commit", 1000), ("contract", "credit", 500)],
        spend=1200,
        alarm_value=D(300),
        top_up=("commit", 1000),
        resolved_value=D(1299),
    )


def test_low_remaining_contract_credit_and_commit_percentage_reached(
    client: Metronome, server: RunningServer
) -> None:
    balance_scenario(
        client,
        server,
        alert_type="low_remaining_contract_credit_and_commit_percentage_reached",
        threshold=20,
        measure="remaining_percentage",
        webhook="alerts.low_remaining_contract_credit_and_commit_percentage_reached",
        holdings=[("contract", "credit", 1000), ("customer", "commit", 1000)],
        spend=1700,  # 15% left
        alarm_value=D(15),
        top_up=("commit", 2000),
        resolved_value=D("57.475"),  # (299 + 2000) / 4000
    )


# Days remaining: in alarm at creation when something ends within the threshold.


def test_low_remaining_days_in_plan_reached(client: Metronome, server: RunningServer) -> None:
    customer_id = customer(client)
    card = rate_card(client)
    soon, later = hour_in(5), hour_in(60)
    ending_soon = contract(client, customer_id, card, ending_before=soon)
    contract(client, customer_id, card, ending_before=later)
    alert_id = create_alert(
        client, alert_type="low_remaining_days_in_plan_reached", threshold=10, customer_id=customer_id
    )
    wait_status(client, alert_id, customer_id, ("in_alarm", "alert_created"))
    [fired] = outbox(server, customer_id)
    assert fired["type"] == "alerts.low_remaining_days_in_plan_reached"
    check_days(fired, soon)

    # The contract ending soon is archived: the plan now runs for about 60 days.
    client.v1.contracts.archive(customer_id=customer_id, contract_id=ending_soon, void_invoices=False)
    wait_status(client, alert_id, customer_id, ("ok", "reevaluation"))
    found = settled_outbox(client, server, customer_id)
    assert [(p["type"], p["properties"]["triggered_by"]) for p in found] == [
        ("alerts.low_remaining_days_in_plan_reached", "alert_created"),
        ("alerts.low_remaining_days_in_plan_reached_resolved", "reevaluation"),
    ]
    check_days(found[1], later)


def segment_ids(client: Metronome, customer_id: str, commit_id: str, credit: bool) -> list[str]:
    lister = client.v1.customers.credits if credit else client.v1.customers.commits
    [found] = lister.list(
        customer_id=customer_id, **({"credit_id": commit_id} if credit else {"commit_id": commit_id})
    )  # type: ignore[attr-defined]
    assert found.access_schedule is not None
    return [item.id for item in found.access_schedule.schedule_items]


@pytest.mark.parametrize(
    ("alert_type", "credit"),
    [
        ("low_remaining_days_for_commit_segment_reached", False),
        ("low_remaining_days_for_contract_credit_segment_reached", True),
    ],
)
def test_low_remaining_days_per_segment(
    client: Metronome, server: RunningServer, alert_type: str, credit: bool
) -> None:
    customer_id, _usage = billed_customer(client)
    soon, later = hour_in(3), hour_in(30)
    schedule = {
        "schedule_items": [
            {"amount": 100, "starting_at": JAN, "ending_before": soon},
            {"amount": 100, "starting_at": JAN, "ending_before": later},
        ]
    }
    add, other = (add_credit, add_commit) if credit else (add_commit, add_credit)
    early = create_alert(client, alert_type=alert_type, threshold=7, customer_id=customer_id)
    wait_status(client, early, customer_id, ("ok", "alert_created"))  # no segment at all: ok
    commit_id = add(client, customer_id, 0, access_schedule=schedule)
    other(client, customer_id, 0, access_schedule=segment(100, JAN, hour_in(1)))  # not in the pool
    wait_status(client, early, customer_id, ("in_alarm", "reevaluation"))
    alert_id = create_alert(client, alert_type=alert_type, threshold=7, customer_id=customer_id)
    wait_status(client, alert_id, customer_id, ("in_alarm", "alert_created"))
    soon_id, _later_id = segment_ids(client, customer_id, commit_id, credit)
    found = settled_outbox(client, server, customer_id)
    assert [(p["type"], p["properties"]["alert_id"], p["properties"]["triggered_by"]) for p in found] == [
        (f"alerts.{alert_type}", early, "reevaluation"),
        (f"alerts.{alert_type}", alert_id, "alert_created"),
    ]
    for fired in found:
        assert (fired["properties"]["commit_id"], fired["properties"]["segment_id"]) == (commit_id, soon_id)
        check_days(fired, soon)

    # Lowering the threshold below what is left: archive (resolving the segment) and create again.
    client.v1.alerts.archive(id=alert_id)
    lowered = create_alert(client, alert_type=alert_type, threshold=1, customer_id=customer_id)
    wait_status(client, lowered, customer_id, ("ok", "alert_created"))
    [resolved] = settled_outbox(client, server, customer_id)[2:]
    assert (resolved["type"], resolved["properties"]["triggered_by"]) == (
        f"alerts.{alert_type}_resolved",
        "alert_archived",
    )
    assert (resolved["properties"]["commit_id"], resolved["properties"]["segment_id"]) == (commit_id, soon_id)
    check_days(resolved, soon)


# An alert for every customer, present and future: it sees every customer, so not on the shared
# server; in-process, evaluated when the test says.


def test_all_customers_alert_applies_to_existing_and_later_customers(app: InProcess) -> None:
    client = app.client
    existing, usage = billed_customer(client, price=10)
    quiet, _quiet_usage = billed_customer(client, price=10)
    use(client, existing, usage, 150)  # 1500 cents
    app.run(now_us())
    alert_id = create_alert(client, alert_type="spend_threshold_reached", threshold=1000)
    app.run(now_us())
    assert status(client, alert_id, existing) == ("in_alarm", "alert_created")
    assert status(client, alert_id, quiet) == ("ok", "alert_created")

    later = customer(client)
    contract(client, later, rate_card(client, (usage.product_id, 20)))
    app.run(now_us())
    assert status(client, alert_id, later) == ("ok", "reevaluation")
    use(client, later, usage, 50)  # 1000 cents
    app.run(now_us())
    assert status(client, alert_id, later) == ("in_alarm", "usage")

    for customer_id, expected in (
        (existing, [(SPEND, "alert_created", 1500)]),
        (later, [(SPEND, "usage", 1000)]),
        (quiet, []),
    ):
        assert rows(notifications_for(app.url, customer_id), "current_spend") == expected
        listed = client.v1.customers.alerts.list(customer_id=customer_id)
        assert [a.alert.id for a in listed] == [alert_id]
