"""Threshold billing in the engine (in-process, an `Evaluator` at instants the test chooses): a
prepaid balance falling to its threshold buys a recharge, unpaid spend reaching its threshold
buys a commit that pays it, each once, with its `payment_gate.threshold_reached` notification.

Usage is a SUM of `qty` priced 1 cent a unit, so every amount below is the quantities' sum.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from meterline.domain.billing_periods import add_months
from meterline.domain.timeutil import format_rfc3339, from_us, hour_floor, to_us
from tests.sdk.alert_helpers import contract, customer, fixed_product, rate_card, usage_product, use
from tests.sdk.billing_helpers import exact, net_balance
from tests.sdk.test_threshold_billing import prepaid, spend, starting_balance
from tests.support.inprocess import InProcess
from tests.support.outbox import notifications_for

D = Decimal
STEP = 1_000_000  # a second: the steps stay in the billing period the test starts in
REACHED = "payment_gate.threshold_reached"


def terms(app: InProcess, customer_id: str, contract_id: str) -> Any:
    raw = app.client.v1.contracts.with_raw_response.retrieve(customer_id=customer_id, contract_id=contract_id)
    return exact(raw)["data"]["current"]


def bought(app: InProcess, customer_id: str, contract_id: str, product_id: str) -> list[tuple[Any, ...]]:
    """(amount, access start, access end, invoice item amount, invoice item time) of each commit bought."""
    return [
        (
            c["access_schedule"]["schedule_items"][0]["amount"],
            c["access_schedule"]["schedule_items"][0]["starting_at"],
            c["access_schedule"]["schedule_items"][0]["ending_before"],
            c["invoice_schedule"]["schedule_items"][0]["amount"],
            c["invoice_schedule"]["schedule_items"][0]["timestamp"],
        )
        for c in terms(app, customer_id, contract_id)["commits"]
        if c["product"]["id"] == product_id
    ]


def reached(app: InProcess, customer_id: str) -> list[tuple[Any, ...]]:
    return [
        (
            p["properties"]["threshold_type"],
            p["properties"]["measured_amount"],
            p["properties"]["amount"],
            p["properties"]["timestamp"],
        )
        for p in notifications_for(app.url, customer_id)
        if p["type"] == REACHED
    ]


def test_a_prepaid_balance_falling_to_its_threshold_is_recharged_once(app: InProcess) -> None:
    client, start = app.client, app.now
    usage, recharge = usage_product(client), fixed_product(client)
    customer_id = customer(client)
    contract_id = contract(
        client,
        customer_id,
        rate_card(client, (usage.product_id, 1)),
        commits=[starting_balance(client, 1000)],
        prepaid_balance_threshold_configuration=prepaid(
            recharge,
            commit={"product_id": recharge, "name": "top-up", "duration": {"unit": "MONTHS", "value": 3}},
        ),
    )
    shown = terms(app, customer_id, contract_id)["prepaid_balance_threshold_configuration"]
    assert (shown["threshold_amount"], shown["recharge_to_amount"], shown["commit"]["name"]) == (
        200,
        1000,
        "top-up",
    )
    app.run(start)
    assert bought(app, customer_id, contract_id, recharge) == []  # 1000 is above 200

    use(client, customer_id, usage, 850)  # 1000 - 850 = 150, at or below 200
    t1 = start + STEP
    app.run(t1)
    hour = hour_floor(t1)
    three_months = _months_later(hour, 3)
    # 1000 - 150 = 850 bought, billed by one invoice item dated when it was bought.
    assert bought(app, customer_id, contract_id, recharge) == [
        (850, format_rfc3339(hour), format_rfc3339(three_months), 850, format_rfc3339(t1))
    ]
    assert net_balance(client, customer_id) == 1000  # 150 + 850
    assert _scheduled(app, customer_id) == [("FINALIZED", 850, [("commit_purchase", 850)])]
    app.run(t1 + STEP)  # nothing new: bought once
    assert reached(app, customer_id) == [("PREPAID_BALANCE", 150, 850, format_rfc3339(t1))]

    use(client, customer_id, usage, 830)  # 1000 - 830 = 170
    t2 = t1 + 2 * STEP
    app.run(t2)
    assert net_balance(client, customer_id) == 1000  # 170 + 830
    assert [b[0] for b in bought(app, customer_id, contract_id, recharge)] == [850, 830]
    assert reached(app, customer_id)[1:] == [("PREPAID_BALANCE", 170, 830, format_rfc3339(t2))]


def test_unpaid_spend_reaching_its_threshold_buys_a_commit_that_pays_it(app: InProcess) -> None:
    client, start = app.client, app.now
    usage, threshold_product = usage_product(client), fixed_product(client)
    customer_id = customer(client)
    contract_id = contract(
        client,
        customer_id,
        rate_card(client, (usage.product_id, 1)),
        spend_threshold_configuration=spend(
            threshold_product, commit={"product_id": threshold_product}, threshold_amount=500
        ),
    )
    use(client, customer_id, usage, 400)
    t1 = start + STEP
    app.run(t1)
    assert bought(app, customer_id, contract_id, threshold_product) == []  # 400 owed, under 500

    use(client, customer_id, usage, 200)
    t2 = t1 + STEP
    app.run(t2)
    [(amount, starting_at, ending_before, invoiced, _at)] = bought(
        app, customer_id, contract_id, threshold_product
    )
    assert (amount, invoiced) == (600, 600)  # 400 + 200 owed, paid by a commit of 600
    [draft] = [i for i in _invoices(app, customer_id) if i["status"] == "DRAFT"]
    assert (starting_at, ending_before) == (draft["start_timestamp"], draft["end_timestamp"])  # its period
    assert (draft["subtotal"], draft["total"]) == (600, 0)
    # The commit bought is billed: a SCHEDULED invoice for its purchase, dated when it was bought.
    assert _scheduled(app, customer_id) == [("FINALIZED", 600, [("commit_purchase", 600)])]

    use(client, customer_id, usage, 300)  # 300 owed: under 500, nothing bought
    t3 = t2 + STEP
    app.run(t3)
    use(client, customer_id, usage, 250)  # 550 owed
    t4 = t3 + STEP
    app.run(t4)
    assert [b[0] for b in bought(app, customer_id, contract_id, threshold_product)] == [600, 550]
    [draft] = [i for i in _invoices(app, customer_id) if i["status"] == "DRAFT"]
    assert (draft["subtotal"], draft["total"]) == (1150, 0)  # 600 + 300 + 250, all paid
    assert reached(app, customer_id) == [
        ("SPEND", 600, 600, format_rfc3339(t2)),
        ("SPEND", 550, 550, format_rfc3339(t4)),
    ]


def _scheduled(app: InProcess, customer_id: str) -> list[tuple[str, Any, list[tuple[str, Any]]]]:
    return [
        (i["status"], i["total"], [(line["type"], line["total"]) for line in i["line_items"]])
        for i in _invoices(app, customer_id)
        if i["type"] == "SCHEDULED"
    ]


def _invoices(app: InProcess, customer_id: str) -> list[Any]:
    raw = app.client.v1.customers.invoices.with_raw_response.list(customer_id=customer_id)
    found: list[Any] = exact(raw)["data"]
    return found


def _months_later(us: int, months: int) -> int:
    return to_us(add_months(from_us(us), months))
