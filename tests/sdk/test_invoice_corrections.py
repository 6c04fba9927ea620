"""Voiding and regenerating finalized invoices through the Metronome SDK.

Each test starts from `alert_helpers.finalized_week`: a first week finalized as soon as the
contract exists, with 40 units sent before it at 1 cent each, drawn from a prepaid commit.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import metronome
from metronome import Metronome

from tests.sdk import alert_helpers as alerts
from tests.sdk.billing_helpers import (
    applied_by_commit,
    balances,
    check_totals,
    exact,
    invoices,
    ledger,
    wait_status,
)
from tests.sdk.contract_helpers import MISSING_ID, error_of
from tests.sdk.helpers import event, settle

D = Decimal
WEEKLY = {"frequency": "WEEKLY", "day": "CONTRACT_START"}


def _invoice(client: Metronome, customer_id: str, invoice_id: str) -> dict[str, Any]:
    found: dict[str, Any] = exact(
        client.v1.customers.invoices.with_raw_response.retrieve(
            customer_id=customer_id, invoice_id=invoice_id
        )
    )["data"]
    return found


def _ingest(client: Metronome, customer_id: str, usage: alerts.Usage, at: datetime, qty: int) -> None:
    client.v1.usage.ingest(usage=[event(customer_id, usage.event_type, at, qty=qty)])  # type: ignore[list-item]


def test_void_gives_the_drawdown_back_and_regenerate_bills_the_period_afresh(client: Metronome) -> None:
    week = alerts.finalized_week(client, commit=100)
    customer_id, usage, card, commit_id, start = (
        week.customer_id,
        week.usage,
        week.rate_card_id,
        week.commit_id,
        week.start,
    )
    # 40 units x 1 cent, drawn from the 100 commit: total 0, 60 left.
    first = wait_status(client, customer_id, start, "FINALIZED")
    assert (first["subtotal"], first["total"]) == (40, 0)
    assert applied_by_commit(first) == {commit_id: 40}
    assert balances(client, customer_id)[commit_id]["balance"] == 60
    alert_id = alerts.create_alert(
        client, alert_type="low_remaining_commit_balance_reached", threshold=70, customer_id=customer_id
    )
    alerts.wait_status(client, alert_id, customer_id, ("in_alarm", "alert_created"))

    assert client.v1.invoices.void(id=first["id"]).data.id == first["id"]  # type: ignore[union-attr]
    voided = _invoice(client, customer_id, first["id"])
    assert voided["status"] == "VOID"
    assert voided["line_items"] == first["line_items"]  # kept as it was, for the record
    entry = balances(client, customer_id)[commit_id]
    assert entry["balance"] == 100  # the 40 drawn is given back
    assert [kind for kind, _amount in ledger(entry)] == ["PREPAID_COMMIT_SEGMENT_START"]
    alerts.wait_status(client, alert_id, customer_id, ("ok", "reevaluation"))

    # The voided week takes usage again, and the price has risen to 3 cents since.
    _ingest(client, customer_id, usage, start + timedelta(hours=2), 10)
    client.v1.contracts.rate_cards.rates.add(
        rate_card_id=card,
        product_id=usage.product_id,
        entitled=True,
        rate_type="FLAT",
        price=3,
        starting_at=start,
    )
    settle(client)
    new_id = client.v1.invoices.regenerate(id=first["id"]).data.id  # type: ignore[union-attr]
    assert new_id != first["id"]
    fresh = _invoice(client, customer_id, new_id)
    # 50 units x 3 cents = 150; the commit's 100 covers what it can: total 50.
    assert (fresh["status"], fresh["subtotal"], fresh["total"]) == ("FINALIZED", 150, 50)
    assert fresh["regenerated_from_invoice_id"] == first["id"]
    assert (fresh["start_timestamp"], fresh["end_timestamp"]) == (
        first["start_timestamp"],
        first["end_timestamp"],
    )
    assert fresh["issued_at"] is not None
    assert applied_by_commit(fresh) == {commit_id: 100}
    check_totals(fresh)
    assert _invoice(client, customer_id, first["id"])["status"] == "VOID"
    assert {i["id"]: i["status"] for i in invoices(client, customer_id, status="VOID")} == {
        first["id"]: "VOID"
    }
    assert balances(client, customer_id)[commit_id]["balance"] == 0
    alerts.wait_status(client, alert_id, customer_id, ("in_alarm", "reevaluation"))

    # The regenerated invoice closes the week again.
    message = error_of(lambda: _ingest(client, customer_id, usage, start + timedelta(hours=3), 1), 400)
    assert "finalized" in message
    message = error_of(lambda: client.v1.invoices.regenerate(id=first["id"]), 409)
    assert message == f"id: invoice {first['id']} was regenerated already, as {new_id}"


def test_regenerating_a_finalized_invoice_voids_it_first(client: Metronome) -> None:
    week = alerts.finalized_week(client, commit=30)
    customer_id, commit_id, start = week.customer_id, week.commit_id, week.start
    # 40 units, 30 of them covered: total 10.
    first = wait_status(client, customer_id, start, "FINALIZED")
    assert (first["subtotal"], first["total"]) == (40, 10)
    new_id = client.v1.invoices.regenerate(id=first["id"]).data.id  # type: ignore[union-attr]
    assert _invoice(client, customer_id, first["id"])["status"] == "VOID"
    fresh = _invoice(client, customer_id, new_id)
    # The same usage and price, and the 30 given back by the void drawn again: the same amounts.
    assert (fresh["subtotal"], fresh["total"], applied_by_commit(fresh)) == (40, 10, {commit_id: 30})
    assert balances(client, customer_id)[commit_id]["balance"] == 0


def test_corrections_refuse_what_they_cannot_do(client: Metronome) -> None:
    week = alerts.finalized_week(client, commit=100)
    customer_id, start = week.customer_id, week.start
    first = wait_status(client, customer_id, start, "FINALIZED")
    draft = next(i for i in invoices(client, customer_id) if i["status"] == "DRAFT")
    message = error_of(lambda: client.v1.invoices.void(id=draft["id"]), 400)
    assert message == f"id: invoice {draft['id']} is DRAFT; only a FINALIZED invoice can be voided"
    assert "DRAFT" in error_of(lambda: client.v1.invoices.regenerate(id=draft["id"]), 400)
    assert (
        error_of(lambda: client.v1.invoices.void(id=MISSING_ID), 404)
        == f"id: no invoice with id {MISSING_ID}"
    )
    assert error_of(lambda: client.v1.invoices.regenerate(id=MISSING_ID), 404).startswith("id:")
    client.v1.invoices.void(id=first["id"])
    assert "VOID" in error_of(lambda: client.v1.invoices.void(id=first["id"]), 400)


def test_archiving_a_contract_with_void_invoices_voids_its_finalized_ones(client: Metronome) -> None:
    week = alerts.finalized_week(client, commit=100)
    customer_id = week.customer_id
    first = wait_status(client, customer_id, week.start, "FINALIZED")
    client.v1.contracts.archive(customer_id=customer_id, contract_id=week.contract_id, void_invoices=True)
    assert _invoice(client, customer_id, first["id"])["status"] == "VOID"
    message = error_of(lambda: client.v1.invoices.regenerate(id=first["id"]), 400)
    assert "archived" in message  # nothing bills the usage of an archived contract


def test_concurrent_regenerations_make_one_invoice(client: Metronome) -> None:
    week = alerts.finalized_week(client, commit=100)
    first = wait_status(client, week.customer_id, week.start, "FINALIZED")
    client.v1.invoices.void(id=first["id"])

    def regenerate(_: int) -> int:
        try:
            client.v1.invoices.regenerate(id=first["id"])
        except metronome.APIStatusError as refused:
            return refused.status_code
        return 200

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(regenerate, range(8)))
    assert statuses == [200] + [409] * 7
    regenerated = [
        i for i in invoices(client, week.customer_id) if i.get("regenerated_from_invoice_id") == first["id"]
    ]
    assert len(regenerated) == 1
    assert applied_by_commit(regenerated[0]) == {week.commit_id: 40}  # drawn once
