"""Recurring commits that invoice, on the clock: each period's commit is billed by a SCHEDULED
invoice of its `invoice_amount` on its period's start, finalized then, exactly once whatever
restarts: periods stored with the contract (a recurring commit with an end) and periods the
engine creates (one without) alike, with no event and no alert to wake the customer.

In-process (tests/support/inprocess.py): the SDK against the app, an `Evaluator` on an injected
clock run at the instants the test chooses. Dates are counted from the current month.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from meterline.domain.timeutil import US_PER_DAY, US_PER_HOUR, format_rfc3339, from_us, month_bounds
from tests.integration.test_scheduled_invoice_time import invoices_of, item_bills
from tests.integration.test_seat_linked_time import edit
from tests.sdk import billing_helpers
from tests.sdk.alert_helpers import customer, fixed_product, rate_card
from tests.sdk.contract_helpers import USD_CENTS
from tests.sdk.test_recurring_commits import shown_terms
from tests.sdk.test_subscriptions import seat_rate, seats, subscription_product
from tests.support.inprocess import InProcess

D = Decimal


def invoicing(product_id: str, starting_at: int, **fields: Any) -> dict[str, Any]:
    """A monthly recurring commit granting 1000 and billing 4 x 62.5 = 250 for each month."""
    return {
        "product_id": product_id,
        "priority": 1,
        "starting_at": from_us(starting_at),
        "access_amount": {"unit_price": 1000, "quantity": 1, "credit_type_id": USD_CENTS},
        "invoice_amount": {"unit_price": 62.5, "quantity": 4, "credit_type_id": USD_CENTS},
        "commit_duration": {"value": 1, "unit": "PERIODS"},
        **fields,
    }


def per_seat(product_id: str, starting_at: int) -> dict[str, Any]:
    """A monthly recurring commit tied to the subscription "team" of the same request: 1000 a unit
    of its quantity, billing 500 a unit, increases prorated."""
    return invoicing(
        product_id,
        starting_at,
        access_amount={"unit_price": 1000, "credit_type_id": USD_CENTS},
        invoice_amount={"unit_price": 500, "credit_type_id": USD_CENTS},
        subscription_config={"subscription_id": "team", "apply_seat_increase_config": {"is_prorated": True}},
    )


def only_subscription(app: InProcess, customer_id: str, contract_id: str) -> str:
    contract = app.client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data
    [subscription] = contract.subscriptions or []
    return subscription.id


def billed(app: InProcess, customer_id: str) -> list[tuple[str, Decimal, str]]:
    """(date, total, status) of the customer's SCHEDULED invoices, each one commit_purchase line."""
    found = invoices_of(app, customer_id, type="SCHEDULED").values()
    for invoice in found:
        (line,) = invoice["line_items"]
        assert line["type"] == "commit_purchase" and line["total"] == invoice["total"] == invoice["subtotal"]
    return sorted((i["start_timestamp"], i["total"], i["status"]) for i in found)


def test_each_period_s_commit_is_invoiced_on_its_start_once_across_restarts(app: InProcess) -> None:
    client = app.client
    this_month, first = month_bounds(app.now)
    second = month_bounds(first)[1]
    third = month_bounds(second)[1]
    bounded, open_ended = customer(client), customer(client)
    for customer_id, fields in ((bounded, {"ending_before": from_us(third)}), (open_ended, {})):
        client.v1.contracts.create(
            customer_id=customer_id,
            rate_card_id=rate_card(client),
            starting_at=from_us(this_month),
            recurring_commits=[invoicing(fixed_product(client), this_month, **fields)],
        )
    app.run(app.now)
    app.run(app.now + 1)  # the draft marked open, then finalized: its date has come
    this_one = [(format_rfc3339(this_month), D(250), "FINALIZED")]
    assert billed(app, bounded) == billed(app, open_ended) == this_one  # none before its period

    app.run(first - 1)
    assert billed(app, bounded) == billed(app, open_ended) == this_one
    app.run(first)  # the clock alone wakes both customers
    app.restart()
    app.run(first + US_PER_HOUR)
    two = [*this_one, (format_rfc3339(first), D(250), "FINALIZED")]
    assert billed(app, bounded) == billed(app, open_ended) == two

    app.restart()
    app.run(second)
    app.run(second + 1)
    app.restart()
    app.run(third + US_PER_HOUR)
    app.run(third + 2 * US_PER_HOUR)
    months = [format_rfc3339(m) for m in (this_month, first, second, third)]
    assert [date for date, _total, _status in billed(app, bounded)] == months[:3]  # ends before third
    assert [date for date, _total, _status in billed(app, open_ended)] == months
    for customer_id, periods in ((bounded, 3), (open_ended, 4)):
        assert {status for _date, _total, status in billed(app, customer_id)} == {"FINALIZED"}
        items = item_bills(app, customer_id)
        assert len(items) == len(set(items)) == periods  # each period billed, none twice
        # Each invoice bills the commit of its own period (one commit per period).
        found = invoices_of(app, customer_id, type="SCHEDULED").values()
        assert len({i["line_items"][0]["commit_id"] for i in found}) == periods
        assert {(i["line_items"][0]["quantity"], i["line_items"][0]["unit_price"]) for i in found} == {
            (D(4), D("62.5"))
        }


def test_a_commit_tied_to_a_subscription_bills_per_unit_of_its_quantity(app: InProcess) -> None:
    """POOLED, without an end: each month's commit bills 500 per unit of the quantity at the month's
    start, and an increase within the month 500 per unit added, for the rest of the month."""
    client = app.client
    this_month, first = month_bounds(app.now)
    second = month_bounds(first)[1]
    team = subscription_product(client)
    card = billing_helpers.rate_card(client, seat_rate(team, 0))
    customer_id = customer(client)
    contract_id = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=from_us(this_month),
        subscriptions=[seats(team, 2, temporary_id="team")],  # type: ignore[list-item]
        recurring_commits=[  # type: ignore[list-item]
            per_seat(fixed_product(client), this_month)
        ],
    ).data.id
    [recurring] = shown_terms(client, customer_id, contract_id)["recurring_commits"]
    assert recurring["invoice_amount"] == {"unit_price": D(500), "credit_type_id": USD_CENTS}
    subscription_id = only_subscription(app, customer_id, contract_id)
    day10 = first + 10 * US_PER_DAY
    edit(app, customer_id, contract_id, subscription_id, first, 4)
    edit(app, customer_id, contract_id, subscription_id, day10, 6)
    app.run(app.now)
    app.run(app.now + 1)
    assert billed(app, customer_id) == [(format_rfc3339(this_month), D(1000), "FINALIZED")]  # 2 x 500
    app.run(first)
    app.restart()
    app.run(first + 1)
    # Next month: 4 x 500 on its start; the 2 added on day 10 are billed then, for the rest of the
    # month (to cents, the invoice's default rounding).
    added = (D(2 * 500 * (second - day10)) / D(second - first)).quantize(D("0.01"), ROUND_HALF_UP)
    app.run(day10 - US_PER_HOUR)
    assert billed(app, customer_id) == [
        (format_rfc3339(this_month), D(1000), "FINALIZED"),
        (format_rfc3339(first), D(2000), "FINALIZED"),
    ]
    app.run(day10)
    app.run(day10 + 1)
    found = invoices_of(app, customer_id, type="SCHEDULED")
    lines = sorted(
        (i["start_timestamp"], i["status"], i["line_items"][0]["quantity"], i["line_items"][0]["unit_price"])
        for i in found.values()
    )
    assert lines == [
        (format_rfc3339(this_month), "FINALIZED", D(2), D(500)),
        (format_rfc3339(first), "FINALIZED", D(4), D(500)),
        (format_rfc3339(day10), "FINALIZED", D(1), added),  # prorated: one unit of the amount
    ]
    # One commit per month; the increase bills the month's own commit.
    assert len({i["line_items"][0]["commit_id"] for i in found.values()}) == 2
    assert len(item_bills(app, customer_id)) == 3


def test_a_period_tied_to_a_subscription_with_no_quantity_yet_bills_a_later_increase(app: InProcess) -> None:
    """With an end, every period's commit is stored with the contract: this month's, for a quantity
    of 0, bills nothing until the quantity rises within it."""
    client = app.client
    this_month, first = month_bounds(app.now)
    second = month_bounds(first)[1]
    team = subscription_product(client)
    customer_id = customer(client)
    contract_id = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=billing_helpers.rate_card(client, seat_rate(team, 0)),
        starting_at=from_us(this_month),
        ending_before=from_us(second),
        subscriptions=[seats(team, 0, temporary_id="team")],  # type: ignore[list-item]
        recurring_commits=[  # type: ignore[list-item]
            per_seat(fixed_product(client), this_month)
        ],
    ).data.id
    subscription_id = only_subscription(app, customer_id, contract_id)
    day10 = this_month + 10 * US_PER_DAY
    edit(app, customer_id, contract_id, subscription_id, day10, 3)
    for at in (max(app.now, day10), first):
        app.run(at)
        app.run(at + 1)
    added = (D(3 * 500 * (first - day10)) / D(first - this_month)).quantize(D("0.01"), ROUND_HALF_UP)
    assert billed(app, customer_id) == [
        (format_rfc3339(day10), added, "FINALIZED"),
        (format_rfc3339(first), D(1500), "FINALIZED"),
    ]
