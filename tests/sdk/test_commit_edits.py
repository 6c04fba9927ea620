"""v2 contracts/commits/edit and v2 contracts/credits/edit through the Metronome SDK against a real
server: one commit or credit, of a contract or of the customer, edited alone (its access end and
amount, invoice schedule, products, specifiers, priority, name), with drafts, balances, ledgers and
scheduled invoices following at once and a contract's edit history recording it; and what v2
contracts/edit refuses, refused the same way, naming the field.

Amounts: usage is priced at 1 cent per unit (`alert_helpers`), so a unit drawn is a cent of balance.
Every date is counted from the current hour or month, so nothing depends on today's date.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from metronome import Metronome

from tests.sdk import alert_helpers as alerts
from tests.sdk.billing_helpers import (
    Json,
    applied_by_commit,
    balances,
    contract,
    fixed_product,
    invoices,
    ledger,
    month_start,
    wait_invoice,
    wait_status,
)
from tests.sdk.contract_helpers import FAR, MISSING_ID, error_of, new_card
from tests.sdk.helpers import current_hour, new_customer, rfc3339
from tests.sdk.test_contract_edits import edit, invoice_at, months_ahead, v2_contract
from tests.sdk.test_contract_history import history
from tests.support.waiting import wait_for

D = Decimal


def one_item(amount: int, starting_at: datetime, ending_before: datetime = FAR) -> Json:
    return {
        "schedule_items": [{"amount": amount, "starting_at": starting_at, "ending_before": ending_before}]
    }


def edit_commit(client: Metronome, customer_id: str, commit_id: str, **fields: Any) -> None:
    done = client.v2.contracts.edit_commit(customer_id=customer_id, commit_id=commit_id, **fields)
    assert done.data.id == commit_id


def edit_credit(client: Metronome, customer_id: str, credit_id: str, **fields: Any) -> None:
    done = client.v2.contracts.edit_credit(customer_id=customer_id, credit_id=credit_id, **fields)
    assert done.data.id == credit_id


def scheduled_totals(client: Metronome, customer_id: str) -> list[Decimal]:
    return sorted(i["total"] for i in invoices(client, customer_id, type="SCHEDULED"))


def test_a_contract_commit_edited_alone_moves_drafts_balances_and_history(client: Metronome) -> None:
    customer_id, usage, _card, contract_id = alerts.billed_contract(client, 1)
    period, now = month_start(current_hour()), current_hour()
    # Access ends with the hour before this one: the usage sent now is not covered.
    lapsed = one_item(100, now - timedelta(days=1), now)
    commit = {
        "type": "PREPAID",
        "product_id": fixed_product(client),
        "access_schedule": lapsed,
        "invoice_schedule": invoice_at(months_ahead(1), 500),
        "priority": 1,
    }
    edit(client, customer_id, contract_id, add_commits=[commit])
    alerts.use(client, customer_id, usage, 300)
    wait_invoice(client, customer_id, period, subtotal=D(300), total=D(300))
    [shown] = v2_contract(client, customer_id, contract_id)["commits"]
    [segment] = shown["access_schedule"]["schedule_items"]
    assert scheduled_totals(client, customer_id) == [D(500)]

    edit_commit(
        client,
        customer_id,
        shown["id"],
        access_schedule={
            "update_schedule_items": [{"id": segment["id"], "ending_before": FAR, "amount": 200}]
        },
        invoice_schedule={"add_schedule_items": [{"timestamp": months_ahead(2), "amount": 100}]},
        applicable_product_ids=[usage.product_id],
        name="extended",
    )
    # Its access now reaches the usage: 200 of the 300 drawn from it, 100 left to pay.
    inv = wait_invoice(client, customer_id, period, subtotal=D(300), total=D(100))
    assert applied_by_commit(inv) == {shown["id"]: D(200)}
    entry = balances(client, customer_id)[shown["id"]]
    assert entry["balance"] == D(0)
    assert ledger(entry) == [
        ("PREPAID_COMMIT_SEGMENT_START", D(200)),
        ("PREPAID_COMMIT_AUTOMATED_INVOICE_DEDUCTION", D(-200)),
    ]
    assert scheduled_totals(client, customer_id) == [D(100), D(500)]
    [edited] = v2_contract(client, customer_id, contract_id)["commits"]
    assert (edited["name"], edited["applicable_product_ids"]) == ("extended", [usage.product_id])
    [item] = edited["access_schedule"]["schedule_items"]
    assert (item["id"], item["amount"], item["ending_before"]) == (segment["id"], D(200), rfc3339(FAR))

    # The contract's edit history holds it, as v2 contracts/edit's update_commits would.
    last = history(client, customer_id, contract_id)[-1]
    added = {"timestamp": rfc3339(months_ahead(2)), "amount": D(100), "unit_price": D(100), "quantity": D(1)}
    assert last["update_commits"] == [
        {
            "id": shown["id"],
            "access_schedule": {
                "update_schedule_items": [
                    {"id": segment["id"], "amount": D(200), "ending_before": rfc3339(FAR)}
                ]
            },
            "invoice_schedule": {"add_schedule_items": [added]},
            "applicable_product_ids": [usage.product_id],
            "name": "extended",
        }
    ]

    # Applied to another product only, it no longer covers this usage.
    other = alerts.usage_product(client).product_id
    edit_commit(client, customer_id, shown["id"], applicable_product_ids=[other])
    inv = wait_invoice(client, customer_id, period, subtotal=D(300), total=D(300))
    assert applied_by_commit(inv) == {}

    # A contract's credit the same way: its access reaches the usage again, scoped to it.
    credit = {"product_id": fixed_product(client), "access_schedule": lapsed}
    edit(client, customer_id, contract_id, add_credits=[credit])
    [given] = v2_contract(client, customer_id, contract_id)["credits"]
    [credit_segment] = given["access_schedule"]["schedule_items"]
    edit_credit(
        client,
        customer_id,
        given["id"],
        access_schedule={"update_schedule_items": [{"id": credit_segment["id"], "ending_before": FAR}]},
        specifiers=[{"product_id": usage.product_id}],
        description="goodwill",
    )
    inv = wait_invoice(client, customer_id, period, subtotal=D(300), total=D(200))
    assert applied_by_commit(inv) == {given["id"]: D(100)}
    [edited_credit] = v2_contract(client, customer_id, contract_id)["credits"]
    assert edited_credit["specifiers"] == [{"product_id": usage.product_id}]
    # The history holds it as update_credits; the SDK's model has no specifiers for a credit's update.
    assert history(client, customer_id, contract_id)[-1]["update_credits"] == [
        {
            "id": given["id"],
            "access_schedule": {
                "update_schedule_items": [{"id": credit_segment["id"], "ending_before": rfc3339(FAR)}]
            },
            "description": "goodwill",
        }
    ]
    # A commit's new specifiers it holds.
    edit_commit(
        client, customer_id, shown["id"], applicable_product_ids=None, specifiers=[{"product_id": other}]
    )
    assert history(client, customer_id, contract_id)[-1]["update_commits"] == [
        {"id": shown["id"], "applicable_product_ids": None, "specifiers": [{"product_id": other}]}
    ]


def test_a_customer_commit_and_credit_edited_alone_move_the_draft(client: Metronome) -> None:
    customer_id, usage = alerts.billed_customer(client, 1)
    period = month_start(current_hour())
    credit_id = alerts.add_credit(client, customer_id, 100, access_schedule=one_item(100, period))
    commit_id = alerts.add_commit(
        client, customer_id, 1000, access_schedule=one_item(1000, period), priority=2
    )
    alert_id = alerts.create_alert(
        client, alert_type="low_remaining_commit_balance_reached", threshold=100, customer_id=customer_id
    )
    alerts.use(client, customer_id, usage, 300)
    inv = wait_invoice(client, customer_id, period, subtotal=D(300), total=D(0))
    assert applied_by_commit(inv) == {credit_id: D(100), commit_id: D(200)}
    alerts.wait_status(client, alert_id, customer_id, ("ok", "alert_created"))

    # The credit narrowed to another product's usage: the commit covers all 300.
    other = alerts.usage_product(client).product_id
    edit_credit(client, customer_id, credit_id, specifiers=[{"product_id": other}], name="narrowed")
    inv = wait_invoice(client, customer_id, period, subtotal=D(300), total=D(0))
    assert applied_by_commit(inv) == {commit_id: D(300)}
    credit = balances(client, customer_id)[credit_id]
    assert (credit["name"], credit["specifiers"], credit["balance"]) == (
        "narrowed",
        [{"product_id": other}],
        D(100),
    )

    # The commit shrunk to 250 and drawn first; the credit back on this usage covers the rest.
    [segment] = balances(client, customer_id)[commit_id]["access_schedule"]["schedule_items"]
    edit_commit(
        client,
        customer_id,
        commit_id,
        access_schedule={"update_schedule_items": [{"id": segment["id"], "amount": 250}]},
        priority=0,
    )
    inv = wait_invoice(client, customer_id, period, subtotal=D(300), total=D(50))
    assert applied_by_commit(inv) == {commit_id: D(250)}
    alerts.wait_status(client, alert_id, customer_id, ("in_alarm", "reevaluation"))  # nothing left of it
    edit_credit(client, customer_id, credit_id, specifiers=[{"product_id": usage.product_id}])
    inv = wait_invoice(client, customer_id, period, subtotal=D(300), total=D(0))
    assert applied_by_commit(inv) == {commit_id: D(250), credit_id: D(50)}
    found = balances(client, customer_id)
    assert (found[commit_id]["balance"], found[commit_id]["priority"]) == (D(0), D(0))
    assert found[credit_id]["balance"] == D(50)


def test_what_v2_contracts_edit_refuses_is_refused_here_naming_the_field(client: Metronome) -> None:
    week = alerts.finalized_week(client, commit=100)
    customer_id, contract_id, commit_id = week.customer_id, week.contract_id, week.commit_id
    wait_status(client, customer_id, week.start, "FINALIZED")  # 40 drawn from the commit's one item
    [shown] = v2_contract(client, customer_id, contract_id)["commits"]
    [segment] = shown["access_schedule"]["schedule_items"]
    credit_id = alerts.add_credit(client, customer_id, 10, access_schedule=one_item(10, week.start))

    def refused(status: int = 400, **fields: Any) -> str:
        fields.setdefault("commit_id", commit_id)
        return error_of(lambda: client.v2.contracts.edit_commit(customer_id=customer_id, **fields), status)

    assert refused(access_schedule={"update_schedule_items": [{"id": segment["id"], "amount": 39}]}) == (
        "access_schedule.update_schedule_items.0.amount: finalized invoices drew 40 from item "
        f"{segment['id']}; it may not grant less"
    )
    assert refused(access_schedule={"remove_schedule_items": [{"id": segment["id"]}]}) == (
        f"access_schedule.remove_schedule_items.0.id: finalized invoices drew 40 from item {segment['id']}; "
        "it may not be removed"
    )
    assert (
        refused(product_id=fixed_product(client)) == "product_id: meterline does not support this field yet"
    )
    assert refused(hierarchy_configuration={"child_access": {"type": "ALL"}}) == (
        "hierarchy_configuration: meterline does not support this field yet"
    )
    assert refused(rate_type="COMMIT_RATE").startswith(
        "rate_type: meterline does not support COMMIT_RATE yet"
    )
    assert refused(applicable_contract_ids=[contract_id]) == (
        "applicable_contract_ids: meterline does not support this field yet"
    )
    assert refused(invoice_contract_id=contract_id) == (
        f"invoice_contract_id: applies to a customer's commit only; commit {commit_id} is on contract "
        f"{contract_id} and is invoiced there"
    )
    assert refused(
        applicable_product_ids=[week.usage.product_id], specifiers=[{"product_id": week.usage.product_id}]
    ).startswith("specifiers: cannot be used together with")
    assert refused(applicable_product_ids=[segment["id"]]) == (
        f"applicable_product_ids.0: no product with id {segment['id']}"
    )
    # A refused edit writes nothing of itself: the name given beside the broken rule is not kept.
    refused(name="renamed", applicable_product_ids=[segment["id"]])
    assert v2_contract(client, customer_id, contract_id)["commits"][0].get("name") == shown.get("name")

    # An id the customer has no commit (or credit) by is a 404 naming it.
    assert refused(404, commit_id=MISSING_ID) == (
        f"commit_id: customer {customer_id} has no commit with id {MISSING_ID}"
    )
    assert refused(404, commit_id=credit_id) == (
        f"commit_id: customer {customer_id} has no commit with id {credit_id}"
    )
    assert (
        error_of(
            lambda: client.v2.contracts.edit_credit(customer_id=customer_id, credit_id=commit_id, name="x"),
            404,
        )
        == f"credit_id: customer {customer_id} has no credit with id {commit_id}"
    )

    # An archived commit is not edited.
    product = fixed_product(client)
    spare = {"type": "PREPAID", "product_id": product, "access_schedule": one_item(5, week.start)}
    edit(client, customer_id, contract_id, add_commits=[spare])
    [archived] = [
        c["id"] for c in v2_contract(client, customer_id, contract_id)["commits"] if c["id"] != commit_id
    ]
    edit(client, customer_id, contract_id, archive_commits=[{"id": archived}])
    assert refused(commit_id=archived, name="x") == f"commit_id: commit {archived} is archived"


def test_a_customer_commit_moved_to_another_contract_is_invoiced_there(client: Metronome) -> None:
    customer_id, card, start = new_customer(client), new_card(client), month_start(current_hour())
    first, second = contract(client, customer_id, card, start), contract(client, customer_id, card, start)
    commit_id = alerts.add_commit(
        client,
        customer_id,
        1000,
        access_schedule=one_item(1000, start),
        invoice_schedule=invoice_at(months_ahead(1), 500),
        invoice_contract_id=first,
    )

    def billed_on() -> list[tuple[str, Decimal]]:
        return [(i["contract_id"], i["total"]) for i in invoices(client, customer_id, type="SCHEDULED")]

    wait_for(billed_on, lambda found: found == [(first, D(500))])
    edit_commit(client, customer_id, commit_id, invoice_contract_id=second)
    wait_for(billed_on, lambda found: found == [(second, D(500))])
    assert balances(client, customer_id)[commit_id]["invoice_contract"] == {"id": second}

    assert (
        error_of(
            lambda: client.v2.contracts.edit_commit(
                customer_id=customer_id, commit_id=commit_id, invoice_contract_id=MISSING_ID
            ),
            400,
        )
        == f"invoice_contract_id: the customer has no contract with id {MISSING_ID}"
    )
    free = alerts.add_commit(client, customer_id, 10, access_schedule=one_item(10, start))
    assert (
        error_of(
            lambda: client.v2.contracts.edit_commit(
                customer_id=customer_id, commit_id=free, invoice_contract_id=first
            ),
            400,
        )
        == f"invoice_contract_id: commit {free} has no invoice schedule to invoice"
    )
