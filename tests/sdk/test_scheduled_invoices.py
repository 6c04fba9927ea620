"""Invoices from schedules, through the SDK against the shared server: a prepaid commit's invoice
schedule and a contract's scheduled charges (explicit items and recurring schedules) produce
SCHEDULED invoices, drafts at once, with `commit_purchase` and `scheduled` lines; the contract
shows each schedule item with the invoice billing it. Amounts are worked out by hand here.

Every date is counted from the current month, so nothing depends on today's date. Finalization
by the clock is in tests/integration/test_scheduled_invoice_time.py.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from metronome import Metronome

from tests.sdk.billing_helpers import Json, exact, invoices, lines, month_start, next_month
from tests.sdk.contract_helpers import FAR, access, new_card, new_fixed_product
from tests.sdk.helpers import current_hour, new_customer, rfc3339, settle
from tests.support.waiting import wait_for

D = Decimal


def months_ahead(count: int) -> datetime:
    moment = month_start(current_hour())
    for _ in range(count):
        moment = next_month(moment)
    return moment


def scheduled(client: Metronome, customer_id: str) -> dict[str, Json]:
    """The customer's SCHEDULED invoices, by id, each checked: its lines add up to its totals."""
    found = {i["id"]: i for i in invoices(client, customer_id, type="SCHEDULED")}
    for inv in found.values():
        assert inv["type"] == "SCHEDULED"
        assert inv["start_timestamp"] == inv["end_timestamp"]
        assert sum((item["total"] for item in inv["line_items"]), D(0)) == inv["subtotal"] == inv["total"]
    return found


def contract_view(client: Metronome, customer_id: str, contract_id: str) -> Json:
    raw = client.v1.contracts.with_raw_response.retrieve(customer_id=customer_id, contract_id=contract_id)
    view: Json = exact(raw)["data"]
    # And the SDK's own model reads it.
    assert (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.id == contract_id
    )
    return view


def new_contract(client: Metronome, customer_id: str, starting_at: datetime, **fields: Any) -> str:
    return client.v1.contracts.create(
        customer_id=customer_id, rate_card_id=new_card(client), starting_at=starting_at, **fields
    ).data.id


def test_a_prepaid_commit_is_billed_on_its_invoice_schedule(client: Metronome) -> None:
    customer_id, product = new_customer(client), new_fixed_product(client)
    first, second = months_ahead(1), months_ahead(2)
    contract_id = new_contract(
        client,
        customer_id,
        month_start(current_hour()),
        commits=[
            {
                "type": "PREPAID",
                "name": "Annual prepay",
                "product_id": product,
                "access_schedule": access(30000, month_start(current_hour()), FAR),
                "invoice_schedule": {
                    "schedule_items": [
                        {"timestamp": first, "amount": 10000},
                        {"timestamp": second, "unit_price": 2500.5, "quantity": 8},
                    ]
                },
            }
        ],
    )
    found = scheduled(client, customer_id)
    by_date = {i["start_timestamp"]: i for i in found.values()}
    assert sorted(by_date) == [rfc3339(first), rfc3339(second)]
    assert {i["status"] for i in found.values()} == {"DRAFT"}  # drafts at once, before their dates
    view = contract_view(client, customer_id, contract_id)
    commit = view["current"]["commits"][0]
    (purchase,) = by_date[rfc3339(second)]["line_items"]
    assert purchase["type"] == "commit_purchase"
    assert purchase["commit_id"] == commit["id"]
    assert purchase["name"] == "Annual prepay"
    assert purchase["product_id"] == product
    assert (purchase["quantity"], purchase["unit_price"], purchase["total"]) == (D(8), D("2500.5"), D(20004))
    assert by_date[rfc3339(first)]["total"] == D(10000)
    # The commit's schedule items name the invoices that bill them.
    items = commit["invoice_schedule"]["schedule_items"]
    assert [(i["timestamp"], i["invoice_id"]) for i in items] == [
        (rfc3339(first), by_date[rfc3339(first)]["id"]),
        (rfc3339(second), by_date[rfc3339(second)]["id"]),
    ]


def test_scheduled_charges_bill_recurring_and_explicit_items(client: Metronome) -> None:
    customer_id, support, setup = new_customer(client), new_fixed_product(client), new_fixed_product(client)
    start = months_ahead(1)
    contract_id = new_contract(
        client,
        customer_id,
        month_start(current_hour()),
        scheduled_charges=[
            {
                "product_id": support,
                "name": "Support",
                "custom_fields": {},
                "schedule": {
                    "recurring_schedule": {
                        "amount_distribution": "DIVIDED_ROUNDED",
                        "frequency": "MONTHLY",
                        "starting_at": start,
                        "ending_before": months_ahead(4),
                        "amount": 1000,
                    }
                },
            },
            {
                "product_id": setup,
                "schedule": {
                    "recurring_schedule": {
                        "amount_distribution": "EACH",
                        "frequency": "QUARTERLY",
                        "starting_at": start,
                        "ending_before": months_ahead(7),
                        "unit_price": 125,
                        "quantity": 3,
                    }
                },
            },
        ],
    )
    view = contract_view(client, customer_id, contract_id)
    support_charge, setup_charge = view["current"]["scheduled_charges"]
    # 1000 in three whole-cent shares: 333, 333 and the rest, 334.
    support_items = support_charge["schedule"]["schedule_items"]
    assert [(i["timestamp"], i["amount"]) for i in support_items] == [
        (rfc3339(months_ahead(1)), D(333)),
        (rfc3339(months_ahead(2)), D(333)),
        (rfc3339(months_ahead(3)), D(334)),
    ]
    # EACH: every quarter bills 125 x 3 = 375, at months 1 and 4 (month 7 is the end, excluded).
    setup_items = setup_charge["schedule"]["schedule_items"]
    assert [(i["timestamp"], i["quantity"], i["unit_price"], i["amount"]) for i in setup_items] == [
        (rfc3339(months_ahead(1)), D(3), D(125), D(375)),
        (rfc3339(months_ahead(4)), D(3), D(125), D(375)),
    ]
    assert support_charge["name"] == "Support" and support_charge["product"]["id"] == support
    assert view["initial"]["scheduled_charges"] == view["current"]["scheduled_charges"]
    found = scheduled(client, customer_id)
    assert len(found) == 5  # one invoice per schedule item
    for charge, items in ((support_charge, support_items), (setup_charge, setup_items)):
        for item in items:
            billed = found[item["invoice_id"]]
            (line,) = billed["line_items"]
            assert line["type"] == "scheduled" and line["scheduled_charge_id"] == charge["id"]
            assert (billed["start_timestamp"], billed["total"]) == (item["timestamp"], item["amount"])
    setup_line = found[setup_items[0]["invoice_id"]]["line_items"][0]
    assert setup_line["name"] == view["current"]["scheduled_charges"][1]["product"]["name"]
    assert sum((i["total"] for i in found.values()), D(0)) == D(1000) + 2 * D(375)
    # Costs are usage costs per billing period: SCHEDULED invoices are not among them.
    raw = client.v1.customers.with_raw_response.list_costs(
        customer_id=customer_id, starting_on=month_start(current_hour()), ending_before=months_ahead(6)
    )
    usage = [i for i in invoices(client, customer_id) if i["type"] == "USAGE"]
    assert [c["start_timestamp"] for c in exact(raw)["data"]] == [i["start_timestamp"] for i in usage]


def test_scheduled_charges_dated_at_a_period_end_go_on_its_usage_invoice(client: Metronome) -> None:
    customer_id, product = new_customer(client), new_fixed_product(client)
    this_month, period_end = month_start(current_hour()), months_ahead(1)
    mid_month = months_ahead(1).replace(day=15)
    contract_id = new_contract(
        client,
        customer_id,
        this_month,
        scheduled_charges_on_usage_invoices="ALL",
        scheduled_charges=[
            {
                "product_id": product,
                "schedule": {
                    "schedule_items": [
                        {"timestamp": period_end, "amount": 4200},  # consolidated
                        {"timestamp": mid_month, "amount": 700},  # no period ends then: its own
                    ]
                },
            }
        ],
    )
    view = contract_view(client, customer_id, contract_id)
    assert view["current"]["scheduled_charges_on_usage_invoices"] == "ALL"
    usage = next(
        i
        for i in invoices(client, customer_id)
        if i["type"] == "USAGE" and i["start_timestamp"] == rfc3339(this_month)
    )
    (line,) = lines(usage, "scheduled")
    assert line["total"] == D(4200) and usage["subtotal"] == usage["total"] == D(4200)
    found = scheduled(client, customer_id)
    assert [i["total"] for i in found.values()] == [D(700)]
    items = view["current"]["scheduled_charges"][0]["schedule"]["schedule_items"]
    assert [i["invoice_id"] for i in items] == [usage["id"], next(iter(found))]


def test_an_item_whose_date_has_come_is_finalized_by_the_engine(client: Metronome) -> None:
    customer_id, product = new_customer(client), new_fixed_product(client)
    due, later = month_start(current_hour()), months_ahead(1)
    new_contract(
        client,
        customer_id,
        due,
        scheduled_charges=[
            {
                "product_id": product,
                "schedule": {
                    "schedule_items": [{"timestamp": due, "amount": 99}, {"timestamp": later, "amount": 101}]
                },
            }
        ],
    )

    def by_date() -> dict[str, Json]:
        settle(client)
        return {i["start_timestamp"]: i for i in scheduled(client, customer_id).values()}

    found = wait_for(by_date, lambda got: got[rfc3339(due)]["status"] == "FINALIZED")
    assert found[rfc3339(due)]["issued_at"] is not None and found[rfc3339(due)]["total"] == D(99)
    assert found[rfc3339(later)]["status"] == "DRAFT"
    assert len(found) == 2


def test_a_customer_commit_is_billed_on_the_contract_its_invoices_go_on(client: Metronome) -> None:
    customer_id, product = new_customer(client), new_fixed_product(client)
    contract_id = new_contract(client, customer_id, month_start(current_hour()))
    commit = client.v1.customers.commits.create(
        customer_id=customer_id,
        product_id=product,
        type="PREPAID",
        priority=1,
        access_schedule=access(900, months_ahead(1), months_ahead(4)),
        invoice_contract_id=contract_id,
        invoice_schedule={
            "recurring_schedule": {
                "amount_distribution": "DIVIDED",
                "frequency": "MONTHLY",
                "starting_at": months_ahead(1),
                "ending_before": months_ahead(4),
                "amount": 900,
            }
        },
    ).data.id
    found = scheduled(client, customer_id)
    assert sorted((i["start_timestamp"], i["total"], i["contract_id"]) for i in found.values()) == [
        (rfc3339(months_ahead(n)), D(300), contract_id) for n in (1, 2, 3)
    ]
    assert {i["line_items"][0]["commit_id"] for i in found.values()} == {commit}
    raw = client.v1.customers.commits.with_raw_response.list(customer_id=customer_id)
    (listed,) = exact(raw)["data"]
    assert {i["invoice_id"] for i in listed["invoice_schedule"]["schedule_items"]} == set(found)
