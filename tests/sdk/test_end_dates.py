"""End-date updates through the Metronome SDK: a commit's or credit's access and invoicing ended
early (and moved back), with drawdown, balances and balance alerts following, a contract's end
moved, and what would change a finalized invoice refused.

Amounts: usage is priced at 1 cent per unit (`alert_helpers`), so a unit drawn is a cent of balance.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from metronome import Metronome

from meterline.domain.timeutil import to_us
from tests.sdk import alert_helpers as alerts
from tests.sdk.billing_helpers import (
    applied_by_commit,
    balances,
    exact,
    invoice_of,
    invoices,
    month_start,
    settled_invoice,
    wait_invoice,
    wait_status,
)
from tests.sdk.contract_helpers import FAR, MISSING_ID, error_of, invoice
from tests.sdk.helpers import current_hour, rfc3339, settle
from tests.support.inprocess import InProcess

D = Decimal
WEEKLY = {"frequency": "WEEKLY", "day": "CONTRACT_START"}


def _access_end(client: Metronome, customer_id: str, commit_id: str) -> str:
    [entry] = [e for e in balances(client, customer_id).values() if e["id"] == commit_id]
    ends: list[str] = [item["ending_before"] for item in entry["access_schedule"]["schedule_items"]]
    return max(ends)


def _balance(client: Metronome, customer_id: str, commit_id: str) -> Decimal:
    found: Decimal = balances(client, customer_id)[commit_id]["balance"]
    return found


def test_ending_a_commit_early_stops_its_drawdown_and_moves_its_alert(client: Metronome) -> None:
    customer_id, usage = alerts.billed_customer(client, price=1)
    commit_id = alerts.add_commit(client, customer_id, 1000)
    alert_id = alerts.create_alert(
        client, alert_type="low_remaining_commit_balance_reached", threshold=400, customer_id=customer_id
    )
    alerts.wait_status(client, alert_id, customer_id, ("ok", "alert_created"))
    alerts.use(client, customer_id, usage, 300)
    period = month_start(current_hour())
    # 300 units x 1 cent, all drawn from the 1,000 commit: total 0, 700 left.
    wait_invoice(client, customer_id, period, subtotal=D(300), total=D(0))
    assert _balance(client, customer_id, commit_id) == 700

    ends = current_hour()  # the usage's hour is no longer covered
    done = client.v1.customers.commits.update_end_date(
        customer_id=customer_id, commit_id=commit_id, access_ending_before=ends
    )
    assert done.data.id == commit_id
    # Nothing drawn now: the invoice is the usage, 300; the commit's access is over, its balance 0.
    inv = wait_invoice(client, customer_id, period, subtotal=D(300), total=D(300))
    assert applied_by_commit(inv) == {}
    assert _access_end(client, customer_id, commit_id) == rfc3339(ends)
    assert _balance(client, customer_id, commit_id) == 0
    alerts.wait_status(client, alert_id, customer_id, ("in_alarm", "reevaluation"))

    # Moved back out: the last segment reaches the new end, and the drawdown returns.
    client.v1.customers.commits.update_end_date(
        customer_id=customer_id, commit_id=commit_id, access_ending_before=FAR
    )
    inv = wait_invoice(client, customer_id, period, subtotal=D(300), total=D(0))
    assert applied_by_commit(inv) == {commit_id: 300}
    assert _balance(client, customer_id, commit_id) == 700
    alerts.wait_status(client, alert_id, customer_id, ("ok", "reevaluation"))


def test_ending_a_credit_early_and_a_contract_commits_segments(client: Metronome) -> None:
    now = current_hour()
    # Two segments on a contract commit: the second is dropped by an end before it starts.
    customer_id, usage, _card, contract_id = alerts.billed_contract(
        client,
        1,
        commits=[
            {
                "type": "PREPAID",
                "product_id": alerts.fixed_product(client),
                "priority": 2,
                "access_schedule": {
                    "schedule_items": [
                        {
                            "amount": 100,
                            "starting_at": now - timedelta(days=40),
                            "ending_before": now + timedelta(days=5),
                        },
                        {"amount": 900, "starting_at": now + timedelta(days=5), "ending_before": FAR},
                    ]
                },
            }
        ],
    )
    credit_id = alerts.add_credit(client, customer_id, 500)  # priority 1: drawn first
    [commit] = client.v1.contracts.retrieve(
        customer_id=customer_id, contract_id=contract_id
    ).data.current.commits
    client.v1.customers.commits.update_end_date(
        customer_id=customer_id, commit_id=commit.id, access_ending_before=now + timedelta(days=2)
    )
    [commit] = client.v1.contracts.retrieve(
        customer_id=customer_id, contract_id=contract_id
    ).data.current.commits
    assert [(i.amount, i.ending_before) for i in commit.access_schedule.schedule_items] == [
        (100, now + timedelta(days=2))
    ]

    alerts.use(client, customer_id, usage, 200)
    period = month_start(now)
    # 200 cents, all from the credit: 300 left on it.
    inv = wait_invoice(client, customer_id, period, subtotal=D(200), total=D(0))
    assert applied_by_commit(inv) == {credit_id: 200}
    assert _balance(client, customer_id, credit_id) == 300
    client.v1.customers.credits.update_end_date(
        customer_id=customer_id, credit_id=credit_id, access_ending_before=now
    )
    # The credit no longer covers the usage's hour: the commit's 100 does, 100 is left to pay.
    inv = wait_invoice(client, customer_id, period, subtotal=D(200), total=D(100))
    assert applied_by_commit(inv) == {commit.id: 100}
    assert _access_end(client, customer_id, credit_id) == rfc3339(now)
    assert _balance(client, customer_id, credit_id) == 0


def test_invoices_ending_before_drops_later_schedule_items(client: Metronome) -> None:
    now = current_hour()
    customer_id = alerts.customer(client)
    schedule = {
        "do_not_invoice": True,
        "schedule_items": [
            {"amount": 100, "timestamp": now - timedelta(days=1)},
            {"amount": 200, "timestamp": now + timedelta(days=30)},
            {"amount": 300, "timestamp": now + timedelta(days=60)},
        ],
    }
    commit_id = alerts.add_commit(client, customer_id, 600, invoice_schedule=schedule)
    client.v1.customers.commits.update_end_date(
        customer_id=customer_id, commit_id=commit_id, invoices_ending_before=now + timedelta(days=30)
    )
    items = balances(client, customer_id)[commit_id]["invoice_schedule"]["schedule_items"]
    assert [(i["amount"], i["timestamp"]) for i in items] == [(D(100), rfc3339(now - timedelta(days=1)))]
    assert _access_end(client, customer_id, commit_id) == rfc3339(FAR)  # access untouched


def test_end_date_errors_name_the_field(client: Metronome) -> None:
    now = current_hour()
    customer_id = alerts.customer(client)
    commit_id = alerts.add_commit(client, customer_id, 100, access_schedule=alerts.segment(100, now))
    credit_id = alerts.add_credit(client, customer_id, 100)
    postpaid = alerts.add_commit(
        client,
        customer_id,
        100,
        type="POSTPAID",
        access_schedule=alerts.segment(100, now),
        invoice_schedule={**invoice(100, now), "do_not_invoice": True},
    )
    update = client.v1.customers.commits.update_end_date

    def refused(status: int = 400, **fields: Any) -> str:
        return error_of(
            lambda: update(**{"customer_id": customer_id, "commit_id": commit_id, **fields}), status
        )

    assert "access_ending_before" in refused()
    assert "access_ending_before" in refused(access_ending_before=now)  # no access left at all
    assert "access_ending_before" in refused(access_ending_before=now + timedelta(minutes=30))
    assert "invoices_ending_before" in refused(invoices_ending_before=now)  # no invoice schedule
    assert "commit_id" in refused(404, commit_id=MISSING_ID, access_ending_before=FAR)
    message = refused(commit_id=postpaid, access_ending_before=FAR)
    assert "commit_id" in message and "PREPAID" in message
    assert "commit_id" in refused(commit_id=credit_id, access_ending_before=FAR)
    assert "credit_id" in error_of(
        lambda: client.v1.customers.credits.update_end_date(
            customer_id=customer_id, credit_id=commit_id, access_ending_before=FAR
        ),
        400,
    )
    # Nothing was changed by the refusals.
    assert _access_end(client, customer_id, commit_id) == rfc3339(FAR)


def test_a_contracts_end_moves_its_billing(client: Metronome) -> None:
    now = current_hour()
    period = month_start(now)
    customer_id, usage, _card, contract_id = alerts.billed_contract(
        client, 1, starting_at=month_start(period - timedelta(days=1))
    )
    alerts.use(client, customer_id, usage, 5)
    wait_invoice(client, customer_id, period, subtotal=D(5), total=D(5))

    client.v1.contracts.update_end_date(customer_id=customer_id, contract_id=contract_id, ending_before=now)
    # The current period now ends where the contract does, before the usage: nothing to bill.
    contract = client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data
    assert contract.current.ending_before == now
    if now > period:
        inv = wait_invoice(client, customer_id, period, subtotal=D(0), total=D(0))
        assert inv["end_timestamp"] == rfc3339(now)
    else:
        settle(client)
        assert invoice_of(client, customer_id, period) is None

    client.v1.contracts.update_end_date(customer_id=customer_id, contract_id=contract_id)  # open-ended again
    inv = wait_invoice(client, customer_id, period, subtotal=D(5), total=D(5))
    assert inv["end_timestamp"] == rfc3339(month_start(period + timedelta(days=32)))
    raw = exact(
        client.v1.contracts.with_raw_response.retrieve(customer_id=customer_id, contract_id=contract_id)
    )
    assert "ending_before" not in raw["data"]["current"]

    assert "ending_before" in error_of(
        lambda: client.v1.contracts.update_end_date(
            customer_id=customer_id, contract_id=contract_id, ending_before=period - timedelta(days=40)
        ),
        400,
    )
    assert "contract_id" in error_of(
        lambda: client.v1.contracts.update_end_date(customer_id=customer_id, contract_id=MISSING_ID), 404
    )


def test_what_would_change_a_finalized_invoice_is_refused(client: Metronome) -> None:
    week = alerts.finalized_week(client, commit=100)
    customer_id, contract_id, start = week.customer_id, week.contract_id, week.start
    first_end = start + timedelta(days=7)
    finalized = wait_status(client, customer_id, start, "FINALIZED")
    assert (finalized["subtotal"], finalized["total"]) == (40, 0)  # 40 units at 1 cent, all drawn

    message = error_of(
        lambda: client.v1.customers.commits.update_end_date(
            customer_id=customer_id, commit_id=week.commit_id, access_ending_before=start + timedelta(days=2)
        ),
        400,
    )
    assert message.startswith(
        "access_ending_before: a finalized invoice drew from it until " + rfc3339(first_end)
    )
    # Up to the end of that invoice is fine: it drew from usage before then. 100 - 40 = 60 left,
    # but access is over now.
    client.v1.customers.commits.update_end_date(
        customer_id=customer_id, commit_id=week.commit_id, access_ending_before=first_end
    )
    assert _balance(client, customer_id, week.commit_id) == 0

    message = error_of(
        lambda: client.v1.contracts.update_end_date(
            customer_id=customer_id,
            contract_id=contract_id,
            ending_before=start + timedelta(days=1),
            allow_ending_before_finalized_invoice=False,
        ),
        400,
    )
    assert message.startswith(
        "ending_before: the contract has a finalized invoice until " + rfc3339(first_end)
    )
    # Allowed (Metronome's default): the finalized invoice stays exactly as it was.
    client.v1.contracts.update_end_date(
        customer_id=customer_id, contract_id=contract_id, ending_before=start + timedelta(days=1)
    )
    assert settled_invoice(client, customer_id, start) == finalized
    assert invoice_of(client, customer_id, first_end) is None  # the current week is past the end


def test_finalization_follows_a_moved_end(app: InProcess) -> None:
    """The engine, driven at chosen instants: a period cut short by the contract's end finalizes a
    grace period after the new end; lengthened again, it waits for its own end."""
    client = app.client
    now = current_hour()
    start = now - timedelta(days=2)
    customer_id, _usage, _card, contract_id = alerts.billed_contract(
        client, 1, starting_at=start, ending_before=now + timedelta(hours=1), usage_statement_schedule=WEEKLY
    )
    app.run(to_us(now))
    client.v1.contracts.update_end_date(customer_id=customer_id, contract_id=contract_id)  # a full week again
    app.run(to_us(now) + 1)
    app.run(to_us(now + timedelta(hours=26)))  # past the old end and its 24 h grace
    [draft] = invoices(client, customer_id)
    assert (draft["status"], draft["end_timestamp"]) == ("DRAFT", rfc3339(start + timedelta(days=7)))

    client.v1.contracts.update_end_date(customer_id=customer_id, contract_id=contract_id, ending_before=now)
    app.run(to_us(now + timedelta(hours=26)))  # re-marks the draft with its new end...
    app.run(to_us(now + timedelta(hours=26)) + 1)  # ...which the next batch finds due
    [final] = invoices(client, customer_id)
    assert (final["status"], final["end_timestamp"]) == ("FINALIZED", rfc3339(now))
