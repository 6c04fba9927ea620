"""Recurring commits that invoice, on the clock: each period's commit is billed by a SCHEDULED
invoice of its `invoice_amount` on its period's start, finalized then, exactly once whatever
restarts: periods stored with the contract (a recurring commit with an end) and periods the
engine creates (one without) alike, with no event and no alert to wake the customer.

In-process (tests/support/inprocess.py): the SDK against the app, an `Evaluator` on an injected
clock run at the instants the test chooses. Dates are counted from the current month.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from meterline.domain.timeutil import US_PER_HOUR, format_rfc3339, from_us, month_bounds
from tests.integration.test_scheduled_invoice_time import invoices_of, item_bills
from tests.sdk.alert_helpers import customer, fixed_product, rate_card
from tests.sdk.contract_helpers import USD_CENTS
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
