"""v2 contracts/edit beyond subscriptions, through the Metronome SDK against a real server: commits,
credits, scheduled charges, recurring commits and credits added to a contract after it was made
(drawn down, billed and measured at once), its end, name and payment terms changed, v2
contracts/get showing the contract as edited, and edits that break a rule (or ask for what is not
built) refused whole, naming the field.

Amounts: usage is priced at 1 cent per unit (`alert_helpers`), so a unit drawn is a cent of balance.
Every date is counted from the current hour or month, so nothing depends on today's date.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from metronome import Metronome

from meterline.domain.timeutil import from_us
from meterline.store.commits import commits_of_recurring
from meterline.store.db import Database
from tests.sdk import alert_helpers as alerts
from tests.sdk.billing_helpers import (
    Json,
    applied_by_commit,
    balances,
    contract,
    exact,
    fixed_product,
    invoices,
    month_start,
    next_month,
    rate_card,
    wait_invoice,
    wait_status,
)
from tests.sdk.contract_helpers import FAR, USD_CENTS, access, error_of, new_card
from tests.sdk.helpers import current_hour, new_customer, rfc3339
from tests.sdk.test_subscriptions import seat_rate, seats, subscription_product
from tests.support.waiting import wait_for

D = Decimal


def v2_contract(client: Metronome, customer_id: str, contract_id: str, **params: Any) -> Json:
    """v2 contracts/get, exact, once the SDK's own ContractV2 model has read it."""
    raw = client.v2.contracts.with_raw_response.retrieve(
        customer_id=customer_id, contract_id=contract_id, **params
    )
    assert raw.parse().data.id == contract_id
    found: Json = exact(raw)["data"]
    return found


def edit(client: Metronome, customer_id: str, contract_id: str, **fields: Any) -> None:
    done = client.v2.contracts.edit(customer_id=customer_id, contract_id=contract_id, **fields)
    assert done.data.id == contract_id


def refused(client: Metronome, customer_id: str, contract_id: str, **fields: Any) -> str:
    return error_of(
        lambda: client.v2.contracts.edit(customer_id=customer_id, contract_id=contract_id, **fields), 400
    )


def prepaid(product: str, amount: int, starting_at: datetime, **fields: Any) -> Json:
    return {
        "type": "PREPAID",
        "product_id": product,
        "access_schedule": access(amount, starting_at, FAR),
        **fields,
    }


def credit(product: str, amount: int, starting_at: datetime, **fields: Any) -> Json:
    return {"product_id": product, "access_schedule": access(amount, starting_at, FAR), **fields}


def invoice_at(timestamp: datetime, amount: int) -> Json:
    return {"schedule_items": [{"timestamp": timestamp, "amount": amount}]}


def months_ahead(count: int) -> datetime:
    moment = month_start(current_hour())
    for _ in range(count):
        moment = next_month(moment)
    return moment


def test_added_commit_and_credit_draw_down_usage_and_move_balance_alerts(client: Metronome) -> None:
    customer_id, usage, _card, contract_id = alerts.billed_contract(client, 1)
    alert_id = alerts.create_alert(
        client, alert_type="low_remaining_commit_balance_reached", threshold=500, customer_id=customer_id
    )
    alerts.use(client, customer_id, usage, 300)
    period = month_start(current_hour())
    wait_invoice(client, customer_id, period, subtotal=D(300), total=D(300))
    alerts.wait_status(client, alert_id, customer_id, ("in_alarm", "alert_created"))  # no commit: 0 left

    product = fixed_product(client)
    start = period - timedelta(days=40)
    edit(
        client,
        customer_id,
        contract_id,
        add_commits=[prepaid(product, 1000, start, priority=2, name="added commit")],
        add_credits=[credit(product, 100, start, priority=1, custom_fields={"source": "edit"})],
    )
    shown = v2_contract(client, customer_id, contract_id, include_balance=True)
    [commit], [given] = shown["commits"], shown["credits"]
    assert (commit["type"], commit["name"], commit["priority"]) == ("PREPAID", "added commit", 2)
    assert commit["contract"] == {"id": contract_id}
    assert (given["type"], given["custom_fields"]) == ("CREDIT", {"source": "edit"})
    # 300 units x 1 cent: the credit (priority 1) covers 100, the commit the other 200.
    inv = wait_invoice(client, customer_id, period, subtotal=D(300), total=D(0))
    assert applied_by_commit(inv) == {given["id"]: D(100), commit["id"]: D(200)}
    found = balances(client, customer_id)
    assert (found[commit["id"]]["balance"], found[given["id"]]["balance"]) == (D(800), D(0))
    # 800 left on commits, above 500: the alert is back to ok; 400 units more leave 400, in alarm.
    alerts.wait_status(client, alert_id, customer_id, ("ok", "reevaluation"))
    alerts.use(client, customer_id, usage, 400)
    wait_invoice(client, customer_id, period, subtotal=D(700), total=D(0))
    assert balances(client, customer_id)[commit["id"]]["balance"] == D(400)
    assert alerts.settled_status(client, alert_id, customer_id)[0] == "in_alarm"
    # v1 contracts/get shows them as well, in its terms.
    current = client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.current
    assert [c.id for c in current.commits] == [commit["id"]]
    assert [c.id for c in current.credits or []] == [given["id"]]


def test_added_invoice_schedules_and_scheduled_charges_bill_on_scheduled_invoices(client: Metronome) -> None:
    customer_id, product, support = new_customer(client), fixed_product(client), fixed_product(client)
    contract_id = contract(client, customer_id, new_card(client), month_start(current_hour()))
    first, second = months_ahead(1), months_ahead(2)
    edit(
        client,
        customer_id,
        contract_id,
        add_commits=[
            prepaid(
                product,
                30000,
                month_start(current_hour()),
                invoice_schedule={
                    "schedule_items": [{"timestamp": first, "unit_price": 2500.5, "quantity": 4}]
                },
            )
        ],
        add_scheduled_charges=[
            {
                "product_id": support,
                "name": "Support",
                "schedule": {
                    "recurring_schedule": {
                        "amount_distribution": "DIVIDED",
                        "frequency": "MONTHLY",
                        "starting_at": first,
                        "ending_before": months_ahead(3),
                        "amount": 900,
                    }
                },
            }
        ],
    )
    found = {i["id"]: i for i in invoices(client, customer_id, type="SCHEDULED")}
    # The commit's item, 4 x 2500.5; the charge's 900 divided over two months, 450 each.
    by_line = sorted(
        (i["start_timestamp"], item["type"], item["total"])
        for i in found.values()
        for item in i["line_items"]
    )
    assert by_line == [
        (rfc3339(first), "commit_purchase", D("10002")),
        (rfc3339(first), "scheduled", D(450)),
        (rfc3339(second), "scheduled", D(450)),
    ]
    assert {i["status"] for i in found.values()} == {"DRAFT"}
    shown = v2_contract(client, customer_id, contract_id)
    [charge] = shown["scheduled_charges"]
    assert (charge["name"], charge["product"]["id"]) == ("Support", support)
    items = charge["schedule"]["schedule_items"]
    assert [(i["timestamp"], i["amount"]) for i in items] == [(rfc3339(first), 450), (rfc3339(second), 450)]
    assert all(i["invoice_id"] in found for i in items)
    [commit] = shown["commits"]
    [item] = commit["invoice_schedule"]["schedule_items"]
    assert item["invoice_id"] in found


def test_added_recurring_commits_and_credits_grant_their_periods(client: Metronome) -> None:
    customer_id, product = new_customer(client), fixed_product(client)
    period = month_start(current_hour())
    contract_id = contract(client, customer_id, new_card(client), period, ending_before=months_ahead(3))
    recurring = {
        "product_id": product,
        "priority": 1,
        "starting_at": period,
        "commit_duration": {"value": 1, "unit": "PERIODS"},
    }
    edit(
        client,
        customer_id,
        contract_id,
        add_recurring_commits=[
            {**recurring, "access_amount": {"unit_price": 1000, "quantity": 2, "credit_type_id": USD_CENTS}}
        ],
        add_recurring_credits=[
            {**recurring, "access_amount": {"unit_price": 300, "credit_type_id": USD_CENTS, "quantity": 1}}
        ],
    )
    shown = v2_contract(client, customer_id, contract_id, include_balance=True)
    [recurring_commit], [recurring_credit] = shown["recurring_commits"], shown["recurring_credits"]
    assert recurring_commit["access_amount"]["unit_price"] == 1000
    # Three monthly periods are stored; this month's commit and credit show, as Metronome creates
    # each when its period starts.
    [commit], [given] = shown["commits"], shown["credits"]
    assert (commit["recurring_commit_id"], given["recurring_credit_id"]) == (
        recurring_commit["id"],
        recurring_credit["id"],
    )
    assert [(i["amount"], i["starting_at"]) for i in commit["access_schedule"]["schedule_items"]] == [
        (D(2000), rfc3339(period))
    ]
    assert (commit["balance"], given["balance"]) == (D(2000), D(300))


def test_recurring_credits_follow_a_subscription_of_the_contract_or_of_the_edit(client: Metronome) -> None:
    seat_product, product = subscription_product(client), fixed_product(client)
    card = rate_card(client, seat_rate(seat_product, 1000))
    customer_id = new_customer(client)
    period = month_start(current_hour())
    contract_id = contract(client, customer_id, card, period, subscriptions=[seats(seat_product, 3)])
    [existing] = v2_contract(client, customer_id, contract_id)["subscriptions"]

    def per_seat(subscription_id: str, unit_price: int) -> Json:
        return {
            "product_id": product,
            "priority": 1,
            "starting_at": period,
            "access_amount": {"unit_price": unit_price, "credit_type_id": USD_CENTS},
            "commit_duration": {"value": 1, "unit": "PERIODS"},
            "subscription_config": {
                "subscription_id": subscription_id,
                "apply_seat_increase_config": {"is_prorated": False},
            },
        }

    edit(
        client,
        customer_id,
        contract_id,
        add_subscriptions=[seats(seat_product, 5, starting_at=period, temporary_id="new team")],
        add_recurring_credits=[per_seat(existing["id"], 100), per_seat("new team", 10)],
    )
    shown = v2_contract(client, customer_id, contract_id)
    added = [s for s in shown["subscriptions"] if s["id"] != existing["id"]]
    assert len(added) == 1
    by_recurring = {c["recurring_credit_id"]: c for c in shown["credits"]}
    first, second = shown["recurring_credits"]
    assert first["subscription_config"]["subscription_id"] == existing["id"]
    assert second["subscription_config"]["subscription_id"] == added[0]["id"]
    # 3 seats x 100, and 5 seats x 10.
    amounts = {
        key: [i["amount"] for i in by_recurring[r["id"]]["access_schedule"]["schedule_items"]]
        for key, r in (("existing", first), ("added", second))
    }
    assert amounts == {"existing": [D(300)], "added": [D(50)]}
    assert refused(
        client, customer_id, contract_id, add_recurring_credits=[per_seat("no such team", 10)]
    ) == (
        "add_recurring_credits.0.subscription_config.subscription_id: no subscription of this "
        "contract has id or temporary_id no such team"
    )


def test_end_name_and_payment_terms(client: Metronome) -> None:
    customer_id = new_customer(client)
    start = month_start(current_hour())
    contract_id = contract(client, customer_id, new_card(client), start, name="first name")
    end = months_ahead(2)
    edit(
        client,
        customer_id,
        contract_id,
        update_contract_end_date=end,
        update_contract_name="second name",
        update_net_payment_terms_days=30,
    )
    shown = v2_contract(client, customer_id, contract_id)
    assert (shown["ending_before"], shown["name"], shown["net_payment_terms_days"]) == (
        rfc3339(end),
        "second name",
        30,
    )
    terms = client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.current
    assert (terms.name, terms.net_payment_terms_days) == ("second name", 30)
    # Null clears each: open-ended, no name, no terms.
    edit(
        client,
        customer_id,
        contract_id,
        update_contract_end_date=None,
        update_contract_name=None,
        update_net_payment_terms_days=None,
    )
    shown = v2_contract(client, customer_id, contract_id)
    assert [k for k in ("ending_before", "name", "net_payment_terms_days") if k in shown] == []
    assert refused(client, customer_id, contract_id, update_contract_end_date=start - timedelta(days=1)) == (
        "update_contract_end_date: must be after starting_at"
    )


def test_an_edit_breaking_one_rule_changes_nothing(client: Metronome) -> None:
    customer_id, product = new_customer(client), fixed_product(client)
    start = month_start(current_hour())
    contract_id = contract(client, customer_id, new_card(client), start, name="kept")
    good = {
        "add_commits": [prepaid(product, 1000, start)],
        "add_scheduled_charges": [
            {
                "product_id": product,
                "schedule": {"schedule_items": [{"timestamp": months_ahead(1), "amount": 5}]},
            }
        ],
        "update_contract_name": "changed",
        "update_contract_end_date": months_ahead(4),
    }
    usage = alerts.usage_product(client).product_id
    assert (
        refused(client, customer_id, contract_id, **good, add_credits=[credit(usage, 10, start)])
        == f"add_credits.0.product_id: must be a FIXED product; {usage} is USAGE"
    )
    assert refused(client, customer_id, contract_id, **good, add_discounts=[{"product_id": product}]) == (
        "add_discounts: meterline does not support this field yet"
    )
    payment_gate = prepaid(product, 10, start, payment_gate_config={"payment_gate_type": "NONE"})
    assert refused(client, customer_id, contract_id, add_commits=[payment_gate]) == (
        "add_commits.0.payment_gate_config: meterline does not support this field yet"
    )
    recurring = {
        "product_id": product,
        "priority": 1,
        "starting_at": start - timedelta(days=1),
        "access_amount": {"unit_price": 10, "quantity": 1, "credit_type_id": USD_CENTS},
        "commit_duration": {"value": 1},
    }
    assert refused(client, customer_id, contract_id, **good, add_recurring_commits=[recurring]) == (
        "add_recurring_commits.0.starting_at: must not be before the contract's starting_at"
    )
    shown = v2_contract(client, customer_id, contract_id)
    assert (shown["commits"], shown["scheduled_charges"], shown["name"]) == ([], [], "kept")
    assert "ending_before" not in shown and "recurring_commits" not in shown
    assert invoices(client, customer_id, type="SCHEDULED") == []
    # A contract with recurring commits keeps its end (their periods were made for its span).
    edit(client, customer_id, contract_id, add_recurring_commits=[{**recurring, "starting_at": start}])
    assert refused(client, customer_id, contract_id, update_contract_end_date=months_ahead(4)).startswith(
        "update_contract_end_date: meterline does not move the end of a contract with recurring"
    )
    assert (
        error_of(
            lambda: client.v2.contracts.retrieve(
                customer_id=customer_id, contract_id=contract_id, as_of_date=start
            ),
            400,
        )
        == "as_of_date: meterline does not support this field yet"
    )


def test_archived_commits_credits_and_charges_stop_billing_and_drawing(client: Metronome) -> None:
    customer_id, usage, _card, contract_id = alerts.billed_contract(client, 1)
    product, period = fixed_product(client), month_start(current_hour())
    first = months_ahead(1)
    edit(
        client,
        customer_id,
        contract_id,
        add_commits=[prepaid(product, 1000, period, priority=2, invoice_schedule=invoice_at(first, 500))],
        add_credits=[credit(product, 100, period, priority=1)],
        add_scheduled_charges=[{"product_id": product, "schedule": invoice_at(first, 5)}],
    )
    alerts.use(client, customer_id, usage, 300)
    inv = wait_invoice(client, customer_id, period, subtotal=D(300), total=D(0))
    shown = v2_contract(client, customer_id, contract_id)
    [commit], [given], [charge] = shown["commits"], shown["credits"], shown["scheduled_charges"]
    assert applied_by_commit(inv) == {given["id"]: D(100), commit["id"]: D(200)}
    assert sorted(i["total"] for i in invoices(client, customer_id, type="SCHEDULED")) == [D(5), D(500)]

    edit(
        client,
        customer_id,
        contract_id,
        archive_commits=[{"id": commit["id"]}],
        archive_scheduled_charges=[{"id": charge["id"]}],
    )
    # Only the credit draws now (100 of 300), and neither schedule bills any more.
    inv = wait_invoice(client, customer_id, period, subtotal=D(300), total=D(200))
    assert applied_by_commit(inv) == {given["id"]: D(100)}
    assert invoices(client, customer_id, type="SCHEDULED") == []
    shown = v2_contract(client, customer_id, contract_id, include_balance=True)
    [commit], [charge] = shown["commits"], shown["scheduled_charges"]
    assert "archived_at" in commit and "balance" not in commit
    assert "archived_at" in charge and "archived_at" not in shown["credits"][0]
    assert commit["id"] not in balances(client, customer_id)

    # Archived twice: nothing changes; then the credit.
    archived_at = commit["archived_at"]
    edit(client, customer_id, contract_id, archive_commits=[{"id": commit["id"]}])
    assert v2_contract(client, customer_id, contract_id)["commits"][0]["archived_at"] == archived_at
    edit(client, customer_id, contract_id, archive_credits=[{"id": given["id"]}])
    wait_invoice(client, customer_id, period, subtotal=D(300), total=D(300))
    assert refused(client, customer_id, contract_id, archive_commits=[{"id": given["id"]}]) == (
        f"archive_commits.0.id: the contract has no commit {given['id']}"
    )
    assert refused(client, customer_id, contract_id, archive_scheduled_charges=[{"id": given["id"]}]) == (
        f"archive_scheduled_charges.0.id: contract {contract_id} has no scheduled charge {given['id']}"
    )


def test_what_a_finalized_invoice_drew_from_or_billed_is_not_archived(client: Metronome) -> None:
    week = alerts.finalized_week(client, commit=100)
    customer_id, contract_id = week.customer_id, week.contract_id
    finalized = wait_status(client, customer_id, week.start, "FINALIZED")
    assert (finalized["subtotal"], finalized["total"]) == (40, 0)  # 40 units at 1 cent, all drawn
    assert refused(client, customer_id, contract_id, archive_commits=[{"id": week.commit_id}]) == (
        f"archive_commits.0.id: a finalized invoice drew from commit {week.commit_id}; void that "
        "invoice before archiving the commit"
    )
    # A charge whose one item is past is billed by a finalized SCHEDULED invoice.
    product = fixed_product(client)
    edit(
        client,
        customer_id,
        contract_id,
        add_scheduled_charges=[{"product_id": product, "schedule": invoice_at(week.start, 7)}],
    )
    [charge] = v2_contract(client, customer_id, contract_id)["scheduled_charges"]
    [billed] = wait_for(
        lambda: [i for i in invoices(client, customer_id, type="SCHEDULED") if i["status"] == "FINALIZED"],
        lambda found: len(found) == 1,
    )
    assert refused(
        client,
        customer_id,
        contract_id,
        archive_scheduled_charges=[{"id": charge["id"]}],
        update_contract_name="not kept",
    ) == (
        f"archive_scheduled_charges.0.id: finalized invoice {billed['id']} bills scheduled charge "
        f"{charge['id']}; void it before archiving"
    )
    assert "name" not in v2_contract(client, customer_id, contract_id)
    [item] = charge["schedule"]["schedule_items"]
    change = {"update_schedule_items": [{"id": item["id"], "amount": 8}]}
    assert refused(
        client,
        customer_id,
        contract_id,
        update_scheduled_charges=[{"scheduled_charge_id": charge["id"], "invoice_schedule": change}],
    ) == (
        f"update_scheduled_charges.0.invoice_schedule.update_schedule_items.0: invoice {billed['id']} "
        f"billed item {item['id']}; it may not change"
    )


def test_updated_commit_schedules_and_products_move_drafts_and_balances(client: Metronome) -> None:
    customer_id, usage, _card, contract_id = alerts.billed_contract(client, 1)
    product, period = fixed_product(client), month_start(current_hour())
    edit(
        client,
        customer_id,
        contract_id,
        add_commits=[
            prepaid(product, 1000, period, priority=2, invoice_schedule=invoice_at(months_ahead(1), 500))
        ],
        add_credits=[credit(product, 100, period, priority=1, name="goodwill")],
    )
    alerts.use(client, customer_id, usage, 300)
    wait_invoice(client, customer_id, period, subtotal=D(300), total=D(0))
    shown = v2_contract(client, customer_id, contract_id)
    [commit], [given] = shown["commits"], shown["credits"]
    [segment] = commit["access_schedule"]["schedule_items"]
    [item] = commit["invoice_schedule"]["schedule_items"]
    [credit_segment] = given["access_schedule"]["schedule_items"]

    edit(
        client,
        customer_id,
        contract_id,
        update_commits=[
            {
                "commit_id": commit["id"],
                "access_schedule": {
                    "update_schedule_items": [{"id": segment["id"], "amount": 2000}],
                    "add_schedule_items": [{"amount": 50, "starting_at": period, "ending_before": FAR}],
                },
                "invoice_schedule": {
                    "update_schedule_items": [{"id": item["id"], "unit_price": 350, "quantity": 2}],
                    "add_schedule_items": [{"timestamp": months_ahead(2), "amount": 100}],
                },
                "name": "bigger",
                "priority": 0,
            }
        ],
        update_credits=[
            {
                "credit_id": given["id"],
                "access_schedule": {"update_schedule_items": [{"id": credit_segment["id"], "amount": 40}]},
            }
        ],
    )
    shown = v2_contract(client, customer_id, contract_id, include_balance=True)
    [commit], [given] = shown["commits"], shown["credits"]
    assert (commit["name"], commit["priority"]) == ("bigger", 0)
    assert [(i["id"] == segment["id"], i["amount"]) for i in commit["access_schedule"]["schedule_items"]] == [
        (True, D(2000)),
        (False, D(50)),
    ]
    invoiced = [(i["id"] == item["id"], i["amount"]) for i in commit["invoice_schedule"]["schedule_items"]]
    assert invoiced == [(True, D(700)), (False, D(100))]
    assert sorted(i["total"] for i in invoices(client, customer_id, type="SCHEDULED")) == [D(100), D(700)]
    # The commit (priority 0 now) is drawn first: 300 of its 2,050; the credit, 40, is left whole.
    inv = wait_invoice(client, customer_id, period, subtotal=D(300), total=D(0))
    assert applied_by_commit(inv) == {commit["id"]: D(300)}
    assert (commit["balance"], given["balance"]) == (D(1750), D(40))

    # Applied to another product only, the commit no longer covers this usage: the credit takes 40.
    other = alerts.usage_product(client).product_id
    edit(
        client,
        customer_id,
        contract_id,
        update_commits=[{"commit_id": commit["id"], "applicable_product_ids": [other]}],
    )
    inv = wait_invoice(client, customer_id, period, subtotal=D(300), total=D(260))
    assert applied_by_commit(inv) == {given["id"]: D(40)}
    assert v2_contract(client, customer_id, contract_id)["commits"][0]["applicable_product_ids"] == [other]
    edit(
        client,
        customer_id,
        contract_id,
        update_commits=[{"commit_id": commit["id"], "applicable_product_ids": None}],
    )
    wait_invoice(client, customer_id, period, subtotal=D(300), total=D(0))

    def update(**fields: Any) -> str:
        return refused(
            client, customer_id, contract_id, update_commits=[{"commit_id": commit["id"], **fields}]
        )

    only = {"remove_schedule_items": [{"id": i["id"]} for i in commit["access_schedule"]["schedule_items"]]}
    assert update(access_schedule=only) == (
        "update_commits.0.access_schedule.schedule_items: must hold at least one schedule item"
    )
    assert update(access_schedule={"update_schedule_items": [{"id": item["id"], "amount": 1}]}) == (
        f"update_commits.0.access_schedule.update_schedule_items.0.id: the access schedule has no item {item['id']}"
    )
    assert (
        update(product_id=product) == "update_commits.0.product_id: meterline does not support this field yet"
    )
    assert update(applicable_product_ids=[segment["id"]]) == (
        f"update_commits.0.applicable_product_ids.0: no product with id {segment['id']}"
    )
    assert refused(
        client, customer_id, contract_id, update_credits=[{"credit_id": commit["id"], "name": "x"}]
    ) == (f"update_credits.0.credit_id: the contract has no credit {commit['id']}")


def test_what_finalized_invoices_drew_or_billed_stays(client: Metronome) -> None:
    week = alerts.finalized_week(client, commit=100)
    customer_id, contract_id = week.customer_id, week.contract_id
    wait_status(client, customer_id, week.start, "FINALIZED")  # 40 drawn from the commit's one item
    [commit] = v2_contract(client, customer_id, contract_id)["commits"]
    [segment] = commit["access_schedule"]["schedule_items"]

    def update(**access: Any) -> str:
        return refused(
            client,
            customer_id,
            contract_id,
            update_commits=[{"commit_id": week.commit_id, "access_schedule": access}],
        )

    at = "update_commits.0.access_schedule.update_schedule_items.0"
    assert update(update_schedule_items=[{"id": segment["id"], "amount": 39}]) == (
        f"{at}.amount: finalized invoices drew 40 from item {segment['id']}; it may not grant less"
    )
    later = week.start + timedelta(hours=1)
    assert update(update_schedule_items=[{"id": segment["id"], "starting_at": later}]) == (
        f"{at}.starting_at: a finalized invoice drew from item {segment['id']}; its start may not move"
    )
    assert update(
        remove_schedule_items=[{"id": segment["id"]}],
        add_schedule_items=[{"amount": 100, "starting_at": week.start, "ending_before": FAR}],
    ) == (
        "update_commits.0.access_schedule.remove_schedule_items.0.id: finalized invoices drew 40 "
        f"from item {segment['id']}; it may not be removed"
    )
    edit(
        client,
        customer_id,
        contract_id,
        update_commits=[
            {
                "commit_id": week.commit_id,
                "access_schedule": {"update_schedule_items": [{"id": segment["id"], "amount": 500}]},
            }
        ],
    )
    assert balances(client, customer_id)[week.commit_id]["balance"] == D(460)

    # An invoice schedule item already invoiced (here, dated at the contract's start) stays.
    product = fixed_product(client)
    edit(
        client,
        customer_id,
        contract_id,
        add_commits=[prepaid(product, 10, week.start, invoice_schedule=invoice_at(week.start, 10))],
    )
    [billed] = wait_for(
        lambda: [i for i in invoices(client, customer_id, type="SCHEDULED") if i["status"] == "FINALIZED"],
        lambda found: len(found) == 1,
    )
    added = next(
        c for c in v2_contract(client, customer_id, contract_id)["commits"] if c["id"] != week.commit_id
    )
    [item] = added["invoice_schedule"]["schedule_items"]
    change = {"update_schedule_items": [{"id": item["id"], "amount": 11}]}
    assert refused(
        client,
        customer_id,
        contract_id,
        update_commits=[{"commit_id": added["id"], "invoice_schedule": change}],
    ) == (
        f"update_commits.0.invoice_schedule.update_schedule_items.0: invoice {billed['id']} billed item "
        f"{item['id']}; it may not change"
    )


def test_added_and_removed_overrides_reprice_the_draft(client: Metronome) -> None:
    customer_id, usage, _card, contract_id = alerts.billed_contract(client, 1)
    period = month_start(current_hour())
    alerts.use(client, customer_id, usage, 300)
    wait_invoice(client, customer_id, period, subtotal=D(300), total=D(300))
    double = {"type": "MULTIPLIER", "multiplier": 2, "product_id": usage.product_id, "starting_at": period}
    edit(client, customer_id, contract_id, add_overrides=[double])
    wait_invoice(client, customer_id, period, subtotal=D(600), total=D(600))  # 300 units x 2 cents
    [shown] = v2_contract(client, customer_id, contract_id)["overrides"]
    assert (shown["type"], shown["multiplier"], shown["product"]["id"]) == ("MULTIPLIER", 2, usage.product_id)

    # One edit takes the multiplier away and puts a price of 5 cents in its place.
    flat = {
        "type": "OVERWRITE",
        "product_id": usage.product_id,
        "starting_at": period,
        "overwrite_rate": {"rate_type": "FLAT", "price": 5},
    }
    edit(client, customer_id, contract_id, remove_overrides=[{"id": shown["id"]}], add_overrides=[flat])
    wait_invoice(client, customer_id, period, subtotal=D(1500), total=D(1500))
    [shown] = v2_contract(client, customer_id, contract_id)["overrides"]
    assert (shown["type"], shown["overwrite_rate"]["price"]) == ("OVERWRITE", 5)

    assert refused(client, customer_id, contract_id, remove_overrides=[{"id": usage.product_id}]) == (
        f"remove_overrides.0.id: contract {contract_id} has no override {usage.product_id}"
    )
    unknown = {**double, "product_id": contract_id}
    assert refused(
        client, customer_id, contract_id, remove_overrides=[{"id": shown["id"]}], add_overrides=[unknown]
    ) == (f"add_overrides.0.product_id: no product with id {contract_id}")
    assert [o["id"] for o in v2_contract(client, customer_id, contract_id)["overrides"]] == [shown["id"]]


def test_updated_scheduled_charge_items_bill_as_edited(client: Metronome) -> None:
    customer_id, product = new_customer(client), fixed_product(client)
    contract_id = contract(client, customer_id, new_card(client), month_start(current_hour()))
    schedule = {
        "schedule_items": [
            {"timestamp": months_ahead(1), "amount": 5},
            {"timestamp": months_ahead(2), "unit_price": 2, "quantity": 3},
        ]
    }
    edit(
        client,
        customer_id,
        contract_id,
        add_scheduled_charges=[{"product_id": product, "schedule": schedule}],
    )
    [charge] = v2_contract(client, customer_id, contract_id)["scheduled_charges"]
    first, second = charge["schedule"]["schedule_items"]
    assert sorted(i["total"] for i in invoices(client, customer_id, type="SCHEDULED")) == [D(5), D(6)]

    change = {
        "update_schedule_items": [{"id": first["id"], "quantity": 4}],  # 5 x 4
        "remove_schedule_items": [{"id": second["id"]}],
        "add_schedule_items": [{"timestamp": months_ahead(3), "amount": 9}],
    }
    edit(
        client,
        customer_id,
        contract_id,
        update_scheduled_charges=[{"scheduled_charge_id": charge["id"], "invoice_schedule": change}],
    )
    [charge] = v2_contract(client, customer_id, contract_id)["scheduled_charges"]
    items = charge["schedule"]["schedule_items"]
    assert [(i["timestamp"], i["amount"], i["quantity"]) for i in items] == [
        (rfc3339(months_ahead(1)), 20, 4),
        (rfc3339(months_ahead(3)), 9, 1),
    ]
    assert items[0]["id"] == first["id"]
    by_date = {i["start_timestamp"]: i["total"] for i in invoices(client, customer_id, type="SCHEDULED")}
    assert by_date == {rfc3339(months_ahead(1)): D(20), rfc3339(months_ahead(3)): D(9)}
    everything = {"remove_schedule_items": [{"id": i["id"]} for i in items]}
    assert refused(
        client,
        customer_id,
        contract_id,
        update_scheduled_charges=[{"scheduled_charge_id": charge["id"], "invoice_schedule": everything}],
    ) == (
        "update_scheduled_charges.0.invoice_schedule: would leave the charge no schedule item; archive "
        "it instead (archive_scheduled_charges)"
    )


def test_added_threshold_billing_recharges_at_once(client: Metronome) -> None:
    customer_id, usage, _card, contract_id = alerts.billed_contract(client, 1)
    recharge, period = fixed_product(client), month_start(current_hour())
    edit(
        client,
        customer_id,
        contract_id,
        add_commits=[prepaid(fixed_product(client), 1000, period, priority=1)],
    )
    alerts.use(client, customer_id, usage, 900)
    wait_invoice(client, customer_id, period, subtotal=D(900), total=D(0))  # 100 left
    config = {
        "commit": {"product_id": recharge},
        "is_enabled": True,
        "payment_gate_config": {"payment_gate_type": "NONE"},
        "threshold_amount": 200,
        "recharge_to_amount": 1000,
    }
    edit(client, customer_id, contract_id, add_prepaid_balance_threshold_configuration=config)

    def bought() -> list[Json]:
        return [
            c
            for c in v2_contract(client, customer_id, contract_id)["commits"]
            if c["product"]["id"] == recharge
        ]

    # 100 left is at most 200: a commit of 1000 - 100 = 900 is bought at once, billed 900.
    [commit] = wait_for(bought, lambda found: len(found) > 0)
    assert commit["access_schedule"]["schedule_items"][0]["amount"] == 900
    assert commit["invoice_schedule"]["schedule_items"][0]["amount"] == 900
    shown = v2_contract(client, customer_id, contract_id)["prepaid_balance_threshold_configuration"]
    assert (shown["commit"]["product_id"], shown["recharge_to_amount"]) == (recharge, 1000)
    assert refused(client, customer_id, contract_id, add_prepaid_balance_threshold_configuration=config) == (
        "add_prepaid_balance_threshold_configuration: the contract has one already; meterline does not "
        "replace or update it yet"
    )
    spend = {k: v for k, v in config.items() if k != "recharge_to_amount"}
    spend["commit"] = {"product_id": usage.product_id}
    assert refused(client, customer_id, contract_id, add_spend_threshold_configuration=spend) == (
        f"add_spend_threshold_configuration.commit.product_id: must be a FIXED product; {usage.product_id} is USAGE"
    )


def test_updated_recurring_commits_remake_only_the_periods_to_come(client: Metronome, db: Database) -> None:
    customer_id, product = new_customer(client), fixed_product(client)
    period = month_start(current_hour())
    recurring_commit = {
        "product_id": product,
        "priority": 1,
        "starting_at": period,
        "commit_duration": {"value": 1, "unit": "PERIODS"},
        "access_amount": {"unit_price": 1000, "quantity": 1, "credit_type_id": USD_CENTS},
        "invoice_amount": {"unit_price": 500, "quantity": 1, "credit_type_id": USD_CENTS},
    }
    contract_id = contract(
        client,
        customer_id,
        new_card(client),
        period,
        ending_before=months_ahead(4),
        recurring_commits=[recurring_commit],
    )
    [shown] = v2_contract(client, customer_id, contract_id)["recurring_commits"]

    def periods() -> list[tuple[str, Decimal, Decimal | None]]:
        """Every period's commit (those to come too): start, access amount, invoiced amount."""
        with db.read() as conn:
            made = commits_of_recurring(conn, shown["id"])
        return sorted(
            (
                rfc3339(from_us(c.segments[0].starting_at_us)),
                c.segments[0].amount,
                None if c.invoice_schedule is None else c.invoice_schedule.items[0].amount,
            )
            for c in made
        )

    assert periods() == [(rfc3339(months_ahead(n)), D(1000), D(500)) for n in range(4)]
    [current] = v2_contract(client, customer_id, contract_id)["commits"]
    edit(
        client,
        customer_id,
        contract_id,
        update_recurring_commits=[
            {
                "recurring_commit_id": shown["id"],
                "access_amount": {"unit_price": 2000},
                "invoice_amount": {"unit_price": 800},
                "ending_before": months_ahead(3),
            }
        ],
    )
    # This month's commit stays as it was; the two months to come grant 2000 and bill 800.
    assert periods() == [
        (rfc3339(period), D(1000), D(500)),
        (rfc3339(months_ahead(1)), D(2000), D(800)),
        (rfc3339(months_ahead(2)), D(2000), D(800)),
    ]
    got = v2_contract(client, customer_id, contract_id, include_balance=True)
    [updated] = got["recurring_commits"]
    assert (updated["access_amount"]["unit_price"], updated["invoice_amount"]["unit_price"]) == (2000, 800)
    assert updated["ending_before"] == rfc3339(months_ahead(3))
    [still] = got["commits"]
    assert (still["id"], still["balance"]) == (current["id"], D(1000))

    def update(**fields: Any) -> str:
        return refused(
            client,
            customer_id,
            contract_id,
            update_recurring_commits=[{"recurring_commit_id": shown["id"], **fields}],
        )

    assert update(ending_before=period) == (
        "update_recurring_commits.0.ending_before: the recurring commit must start before it ends"
    )
    assert refused(
        client, customer_id, contract_id, update_recurring_credits=[{"recurring_credit_id": shown["id"]}]
    ) == (
        f"update_recurring_credits.0.recurring_credit_id: contract {contract_id} has no recurring credit {shown['id']}"
    )
    assert len(periods()) == 3  # nothing changed
