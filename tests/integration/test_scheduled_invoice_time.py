"""SCHEDULED invoices and the clock: each finalizes on its date (no grace period: its amount waits
for no usage), exactly once whatever restarts; a charge consolidated onto a usage invoice finalizes
with it, after the grace period; an `invoice_total_reached` alert filtered to SCHEDULED sees them.

In-process (tests/support/inprocess.py): the SDK against the app, an `Evaluator` on an injected
clock run at the instants the test chooses. Dates are counted from the current month.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from meterline.domain.timeutil import US_PER_HOUR, format_rfc3339, from_us, month_bounds
from meterline.store.tables import invoices as invoice_rows
from tests.sdk.alert_helpers import create_alert, customer, fixed_product, rate_card, status
from tests.sdk.billing_helpers import Json, exact
from tests.support.inprocess import InProcess
from tests.support.outbox import notifications_for

D = Decimal
GRACE_US = 24 * US_PER_HOUR  # the engine's default grace period


def invoices_of(app: InProcess, customer_id: str, **params: Any) -> dict[str, Json]:
    raw = app.client.v1.customers.invoices.with_raw_response.list(customer_id=customer_id, **params)
    return {i["id"]: i for i in exact(raw)["data"]}


def item_bills(app: InProcess, customer_id: str) -> list[str]:
    """Every schedule item id each stored invoice bills, repeated as often as billed."""
    with app.db.read() as conn:
        rows = conn.execute(
            select(invoice_rows.c.schedule_item_ids).where(
                invoice_rows.c.customer_id == customer_id, invoice_rows.c.status == "FINALIZED"
            )
        )
        return [item for (ids,) in rows for item in ids or ()]


def months(app: InProcess) -> tuple[int, int, int]:
    """This month's start, next month's and the one after's."""
    this_month, first = month_bounds(app.now)
    return this_month, first, month_bounds(first)[1]


def test_scheduled_invoices_finalize_on_their_dates_once_across_restarts(app: InProcess) -> None:
    client = app.client
    this_month, first, second = months(app)
    customer_id, product = customer(client), fixed_product(client)
    contract = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=rate_card(client),
        starting_at=from_us(this_month),
        scheduled_charges=[
            {
                "product_id": product,
                "schedule": {
                    "schedule_items": [
                        {"timestamp": from_us(first), "amount": 300},
                        {"timestamp": from_us(second), "amount": 500},
                    ]
                },
            }
        ],
        commits=[
            {
                "type": "PREPAID",
                "product_id": product,
                "access_schedule": {
                    "schedule_items": [
                        {"amount": 1000, "starting_at": from_us(first), "ending_before": from_us(second)}
                    ]
                },
                "invoice_schedule": {"schedule_items": [{"timestamp": from_us(first), "amount": 1000}]},
            }
        ],
    ).data.id
    app.run(app.now)
    drafts = invoices_of(app, customer_id, type="SCHEDULED")
    assert sorted((i["start_timestamp"], i["total"], i["status"]) for i in drafts.values()) == [
        (format_rfc3339(first), D(300), "DRAFT"),
        (format_rfc3339(first), D(1000), "DRAFT"),
        (format_rfc3339(second), D(500), "DRAFT"),
    ]
    app.run(first - 1)
    assert {i["status"] for i in invoices_of(app, customer_id, type="SCHEDULED").values()} == {"DRAFT"}

    app.run(first)  # on the date itself: no grace period for a SCHEDULED invoice
    found = invoices_of(app, customer_id, type="SCHEDULED")
    assert sorted((i["start_timestamp"], i["status"]) for i in found.values()) == [
        (format_rfc3339(first), "FINALIZED"),
        (format_rfc3339(first), "FINALIZED"),
        (format_rfc3339(second), "DRAFT"),
    ]
    assert {i["issued_at"] for i in found.values() if i["status"] == "FINALIZED"} == {format_rfc3339(first)}

    app.restart()
    app.run(first + US_PER_HOUR)
    app.restart()
    app.run(second + US_PER_HOUR)
    final = invoices_of(app, customer_id, type="SCHEDULED")
    assert set(final) == set(found)  # the same three invoices, no new one
    assert {i["status"] for i in final.values()} == {"FINALIZED"}
    assert {
        i["id"]: i["issued_at"] for i in final.values() if i["start_timestamp"] == format_rfc3339(first)
    } == {i["id"]: i["issued_at"] for i in found.values() if i["start_timestamp"] == format_rfc3339(first)}
    billed = item_bills(app, customer_id)
    assert len(billed) == len(set(billed)) == 3  # every item billed, none twice
    view = client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract).data
    items = view.current.scheduled_charges[0].schedule.schedule_items or []
    assert {i.invoice_id for i in items} <= set(final)


def test_a_consolidated_charge_finalizes_with_its_usage_invoice(app: InProcess) -> None:
    client = app.client
    this_month, first, _second = months(app)
    customer_id, product = customer(client), fixed_product(client)
    client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=rate_card(client),
        starting_at=from_us(this_month),
        scheduled_charges_on_usage_invoices="ALL",
        scheduled_charges=[
            {
                "product_id": product,
                "schedule": {"schedule_items": [{"timestamp": from_us(first), "amount": 2500}]},
            }
        ],
    )
    app.run(app.now)

    def usage_invoice() -> Json:
        (found,) = [
            i
            for i in invoices_of(app, customer_id).values()
            if i["start_timestamp"] == format_rfc3339(this_month)
        ]
        return found

    assert (usage_invoice()["type"], usage_invoice()["total"], usage_invoice()["status"]) == (
        "USAGE",
        D(2500),
        "DRAFT",
    )
    app.run(first)
    assert usage_invoice()["status"] == "DRAFT"  # a usage invoice waits for the grace period
    app.run(first + GRACE_US)
    finalized = usage_invoice()
    assert finalized["status"] == "FINALIZED" and finalized["total"] == finalized["subtotal"] == D(2500)
    assert [line["type"] for line in finalized["line_items"]] == ["scheduled"]
    app.restart()
    app.run(first + 2 * GRACE_US)
    assert invoices_of(app, customer_id, type="SCHEDULED") == {}  # never billed on an invoice of its own
    assert len(item_bills(app, customer_id)) == 1


def test_invoice_total_alerts_filtered_to_scheduled_see_scheduled_invoices(app: InProcess) -> None:
    client = app.client
    this_month, first, _second = months(app)
    customer_id, product = customer(client), fixed_product(client)
    scheduled_alert = create_alert(
        client,
        alert_type="invoice_total_reached",
        threshold=1000,
        customer_id=customer_id,
        invoice_types_filter=["SCHEDULED"],
    )
    usage_alert = create_alert(
        client,
        alert_type="invoice_total_reached",
        threshold=1000,
        customer_id=customer_id,
        invoice_types_filter=["USAGE"],
    )
    app.run(app.now)
    client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=rate_card(client),
        starting_at=from_us(this_month),
        scheduled_charges=[
            {
                "product_id": product,
                "schedule": {"schedule_items": [{"timestamp": from_us(first), "amount": 1500}]},
            }
        ],
    )
    app.run(app.now + 1)
    assert status(client, scheduled_alert, customer_id)[0] == "in_alarm"
    assert status(client, usage_alert, customer_id)[0] == "ok"
    (draft,) = invoices_of(app, customer_id, type="SCHEDULED").values()
    (sent,) = [
        p for p in notifications_for(app.url, customer_id) if p["properties"]["alert_id"] == scheduled_alert
    ]
    assert sent["type"] == "alerts.invoice_total_reached"
    assert sent["properties"]["invoice_id"] == draft["id"]
    assert sent["properties"]["invoice_total"] == D(1500)
