"""Recurring commits and credits through the Metronome SDK against a real server: one commit or
credit per period, created as its period starts, prorated where the start or end cuts a period,
drawn down like any other; and what meterline refuses about them, naming the field.

Every amount is worked out by hand next to it, from the hours each period keeps.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from metronome import Metronome

from tests.sdk.billing_helpers import (
    balances,
    contract,
    exact,
    fixed_product,
    flat,
    month_start,
    next_month,
    rate_card,
    this_hour_and_period,
    usage_product,
    wait_invoice,
)
from tests.sdk.contract_helpers import USD_CENTS, error_of
from tests.sdk.helpers import event, ingest, new_customer, rfc3339
from tests.sdk.test_scheduled_invoices import scheduled

D = Decimal
HUNDREDTHS = D("0.01")


def months_before(moment: datetime, count: int) -> datetime:
    for _ in range(count):
        moment = month_start(moment - timedelta(days=1))
    return moment


def hours(start: datetime, end: datetime) -> Decimal:
    return D(int((end - start).total_seconds()) // 3600)


def recurring(product_id: str, starting_at: datetime, amount: int, **fields: Any) -> dict[str, Any]:
    return {
        "product_id": product_id,
        "priority": 1,
        "starting_at": starting_at,
        "access_amount": {"unit_price": amount, "quantity": 1, "credit_type_id": USD_CENTS},
        "commit_duration": {"value": 1, "unit": "PERIODS"},
        **fields,
    }


def shown_terms(client: Metronome, customer_id: str, contract_id: str) -> Any:
    raw = client.v1.contracts.with_raw_response.retrieve(customer_id=customer_id, contract_id=contract_id)
    raw.parse()  # the SDK's own model accepts the response
    return exact(raw)["data"]["current"]


def grants(items: list[dict[str, Any]]) -> list[tuple[Decimal, str, str]]:
    return [
        (item["amount"], item["starting_at"], item["ending_before"])
        for entry in items
        for item in entry["access_schedule"]["schedule_items"]
    ]


def test_a_recurring_credit_gives_a_credit_per_statement_period_created_as_each_starts(
    client: Metronome,
) -> None:
    now, period, period_end = this_hour_and_period()
    calls, event_type = usage_product(client)
    card = rate_card(client, flat(calls, 10))
    fixed, customer_id = fixed_product(client), new_customer(client)
    three_ago = months_before(period, 3)
    two_ago, one_ago = months_before(period, 2), months_before(period, 1)
    start = three_ago + timedelta(days=10)  # ten days into its month
    end = next_month(period_end)  # the contract ends after next month
    contract_id = contract(
        client,
        customer_id,
        card,
        three_ago,
        ending_before=end,
        recurring_credits=[recurring(fixed, start, 1000, name="monthly allowance")],
    )
    terms = shown_terms(client, customer_id, contract_id)
    [shown] = terms["recurring_credits"]
    assert shown["access_amount"] == {
        "credit_type_id": USD_CENTS,
        "unit_price": 1000,
        "quantity": 1,
        "access_type": "SPEND",
    }
    assert (shown["proration"], shown["commit_duration"]) == (
        "FIRST_AND_LAST",
        {"value": 1, "unit": "PERIODS"},
    )
    assert shown["product"]["id"] == fixed and shown["contract"] == {"id": contract_id}
    assert "recurring_commits" in terms and terms["recurring_commits"] == []

    # The first period keeps the hours from the 10th of its month: 1000 x kept / whole, to cents.
    first = (D(1000) * hours(start, two_ago) / hours(three_ago, two_ago)).quantize(HUNDREDTHS, ROUND_HALF_UP)
    # Four periods have started (three months ago to this one); next month's credit comes later.
    expected = [
        (first, start, two_ago),
        (D(1000), two_ago, one_ago),
        (D(1000), one_ago, period),
        (D(1000), period, period_end),
    ]
    credits = terms["credits"]
    assert grants(credits) == [(a, rfc3339(s), rfc3339(e)) for a, s, e in expected]
    assert {c["recurring_credit_id"] for c in credits} == {shown["id"]}
    assert all(c["name"] == "monthly allowance" and c["type"] == "CREDIT" for c in credits)

    # 30 calls x 10 = 300 this period, drawn from this period's credit: 1000 - 300 = 700 left.
    ingest(client, [event(customer_id, event_type, now) for _ in range(30)])
    wait_invoice(client, customer_id, period, subtotal=D(300), total=D(0))
    found = balances(client, customer_id)
    assert {grants([entry])[0][1]: entry["balance"] for entry in found.values()} == {
        rfc3339(start): 0,  # expired
        rfc3339(two_ago): 0,
        rfc3339(one_ago): 0,
        rfc3339(period): 700,
    }


def test_a_recurring_commit_on_its_own_frequency_prorates_the_last_period_with_its_rounding(
    client: Metronome,
) -> None:
    _now, period, _period_end = this_hour_and_period()
    card = rate_card(client)
    fixed, customer_id = fixed_product(client), new_customer(client)
    start = months_before(period, 1) + timedelta(days=2)  # weekly from the 3rd of last month
    end = start + timedelta(days=20, hours=5)  # two whole weeks, then 6 days 5 hours
    contract_id = contract(
        client,
        customer_id,
        card,
        months_before(period, 1),
        recurring_commits=[
            recurring(
                fixed,
                start,
                700,
                ending_before=end,
                recurrence_frequency="WEEKLY",
                proration="LAST",
                proration_rounding={"access": {"decimal_places": -1, "rounding_method": "FLOOR"}},
            )
        ],
    )
    terms = shown_terms(client, customer_id, contract_id)
    [shown] = terms["recurring_commits"]
    assert shown["anchor_date"] == rfc3339(start) and shown["recurrence_frequency"] == "WEEKLY"
    assert shown["proration_rounding"] == {"access": {"decimal_places": -1, "rounding_method": "FLOOR"}}
    week2, week3 = start + timedelta(days=7), start + timedelta(days=14)
    # The last week keeps 6 days 5 hours = 149 of 168 hours: 700 x 149 / 168 = 620.83..., down to tens: 620
    last = (D(700) * D(149) / D(168)).quantize(D("1E1"), ROUND_FLOOR)
    assert last == 620
    assert grants(terms["commits"]) == [
        (D(700), rfc3339(start), rfc3339(week2)),
        (D(700), rfc3339(week2), rfc3339(week3)),
        (last, rfc3339(week3), rfc3339(end)),
    ]
    assert {c["type"] for c in terms["commits"]} == {"PREPAID"}
    assert {c["recurring_commit_id"] for c in terms["commits"]} == {shown["id"]}


def test_a_recurring_commit_with_an_invoice_amount_bills_each_period_s_commit_on_its_start(
    client: Metronome,
) -> None:
    _now, period, period_end = this_hour_and_period()
    card = rate_card(client)
    fixed, customer_id = fixed_product(client), new_customer(client)
    last_month = months_before(period, 1)
    start = last_month + timedelta(days=10)  # ten days into last month
    contract_id = contract(
        client,
        customer_id,
        card,
        last_month,
        recurring_commits=[
            recurring(
                fixed,
                start,
                1000,
                ending_before=period_end,
                name="Monthly prepay",
                invoice_amount={"unit_price": 62.5, "quantity": 4, "credit_type_id": USD_CENTS},
                proration_rounding={"invoice": {"decimal_places": 0, "rounding_method": "FLOOR"}},
            )
        ],
    )
    terms = shown_terms(client, customer_id, contract_id)
    [shown] = terms["recurring_commits"]
    assert shown["invoice_amount"] == {"unit_price": D("62.5"), "quantity": D(4), "credit_type_id": USD_CENTS}
    assert shown["proration_rounding"] == {"invoice": {"decimal_places": 0, "rounding_method": "FLOOR"}}
    # Last month keeps its hours from the 11th on: access 1000 x kept / all, to hundredths
    # (HALF_UP); the invoice 250 x kept / all, down to units (FLOOR). This month is whole.
    share = hours(start, period) / hours(last_month, period)
    first_access = (D(1000) * share).quantize(HUNDREDTHS, ROUND_HALF_UP)
    first_invoice = (D(250) * share).quantize(D(1), ROUND_FLOOR)
    assert grants(terms["commits"]) == [
        (first_access, rfc3339(start), rfc3339(period)),
        (D(1000), rfc3339(period), rfc3339(period_end)),
    ]
    found = scheduled(client, customer_id)
    by_date = {i["start_timestamp"]: i for i in found.values()}
    assert sorted(by_date) == [rfc3339(start), rfc3339(period)]  # each on its period's start
    bought = {}
    for date, (quantity, unit_price, total) in {
        rfc3339(start): (D(1), first_invoice, first_invoice),
        rfc3339(period): (D(4), D("62.5"), D(250)),
    }.items():
        (line,) = by_date[date]["line_items"]
        assert line["type"] == "commit_purchase" and line["name"] == "Monthly prepay"
        assert (line["quantity"], line["unit_price"], line["total"]) == (quantity, unit_price, total)
        bought[line["commit_id"]] = by_date[date]["id"]
    # Each period's commit shows the schedule item that bills it, naming its invoice.
    shown_items = {
        c["id"]: [(i["timestamp"], i["invoice_id"]) for i in c["invoice_schedule"]["schedule_items"]]
        for c in terms["commits"]
    }
    assert shown_items == {
        commit_id: [(by_date_item["start_timestamp"], invoice_id)]
        for commit_id, invoice_id in bought.items()
        for by_date_item in [found[invoice_id]]
    }


def test_what_meterline_does_not_build_about_recurring_commits_is_refused_naming_the_field(
    client: Metronome,
) -> None:
    _now, period, period_end = this_hour_and_period()
    card = rate_card(client)
    fixed, customer_id = fixed_product(client), new_customer(client)

    def refused(**fields: Any) -> str:
        return error_of(lambda: contract(client, customer_id, card, period, **fields), 400)

    base = recurring(fixed, period, 100, ending_before=period_end)
    invoice_amount = {"credit_type_id": USD_CENTS, "quantity": 1, "unit_price": 100}
    assert "recurring_credits.0.invoice_amount" in refused(
        recurring_credits=[{**base, "invoice_amount": invoice_amount}]  # credits are never billed
    )
    assert "recurring_commits.0.invoice_amount.quantity" in refused(
        recurring_commits=[{**base, "invoice_amount": {"credit_type_id": USD_CENTS, "unit_price": 100}}]
    )
    assert "recurring_credits.0.rollover_fraction" in refused(
        recurring_credits=[{**base, "rollover_fraction": -0.5}]
    )
    early = recurring(fixed, months_before(period, 1), 100, ending_before=period_end)
    assert "recurring_credits.0.starting_at" in refused(recurring_credits=[early])
    daily = recurring(
        fixed, period, 100, recurrence_frequency="DAILY", ending_before=period + timedelta(days=1001)
    )
    assert "recurring_commits.0.ending_before" in refused(recurring_commits=[daily])
    assert "recurring_credits.1.product_id" in refused(
        recurring_credits=[base, {**base, "product_id": "00000000-0000-4000-8000-0000000000dd"}]
    )
    assert client.v1.contracts.list(customer_id=customer_id).data == []  # nothing was written


def test_the_end_of_a_contract_with_recurring_commits_is_not_moved(client: Metronome) -> None:
    _now, period, period_end = this_hour_and_period()
    fixed, customer_id = fixed_product(client), new_customer(client)
    contract_id = contract(
        client,
        customer_id,
        rate_card(client),
        period,
        ending_before=next_month(period_end),
        recurring_credits=[recurring(fixed, period, 100)],
    )
    message = error_of(
        lambda: client.v1.contracts.update_end_date(
            customer_id=customer_id, contract_id=contract_id, ending_before=period_end
        ),
        400,
    )
    assert message.startswith("ending_before: meterline does not move the end of a contract with recurring")
    terms = shown_terms(client, customer_id, contract_id)
    assert terms["ending_before"] == rfc3339(next_month(period_end))
