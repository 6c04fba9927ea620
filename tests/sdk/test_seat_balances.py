"""Credits allocated per seat (`subscription_config.allocation` INDIVIDUAL) and the seat balance
alert (`low_remaining_seat_balance_reached`), through the Metronome SDK against a real server of
this module's own, delivering webhooks to a real receiver.

One day's credit of 500 cents per seat (DAILY, from three hours ago): ann and bob from its start,
cid from an hour ago (taking the unassigned seat, prorated: 500 x 22/24 = 458.33), bob removed
then. Usage is priced 1 cent a unit, grouped by `user_id`; each seat's usage draws its own
balance only, and usage of a seat that is not one (dan), or of a seat after its removal, draws
nothing from them. Every amount is worked out by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from metronome import Metronome

from tests.delivery.receiver import Receiver
from tests.sdk.alert_helpers import create_alert, customer_alert, wait_status
from tests.sdk.billing_helpers import (
    applied_by_commit,
    balances,
    contract,
    exact,
    fixed_product,
    flat,
    ledger,
    rate_card,
    usage_product,
    wait_invoice,
)
from tests.sdk.contract_helpers import USD_CENTS, error_of
from tests.sdk.helpers import current_hour, event, new_customer, rfc3339, settle
from tests.sdk.test_subscriptions import seat_based, seat_rate, seats, subscription_product
from tests.spend.helpers import received, wait_received
from tests.support.server import RunningServer

D = Decimal
Json = dict[str, Any]
SEAT_ALERT = "alerts.low_remaining_seat_balance_reached"
CID_GRANT = D("458.33")  # 500 x 22/24, HALF_UP to hundredths


@pytest.fixture(scope="module")
def receiver(server: RunningServer) -> Iterator[Receiver]:
    found = Receiver().up()
    with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=10) as http:
        answer = http.post("/v1/webhooks/endpoints/create", json={"url": found.url, "types": [SEAT_ALERT]})
        assert answer.status_code == 200, answer.text
        yield found
        found.down()
        # The server is shared with the session's other tests: none of them is sent to this one.
        http.post("/v1/webhooks/endpoints/remove", json={"id": answer.json()["data"]["id"]})


@pytest.fixture(scope="module")
def catalog(server: RunningServer) -> Json:
    """Seats at 0 (only the credits matter here), usage at 1 cent a unit shown per user_id."""
    client = Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)
    seat_product = subscription_product(client)
    used, event_type = usage_product(
        client, aggregation="SUM", key="qty", group_keys=[["user_id"]], presentation_group_key=["user_id"]
    )
    return {
        "seats": seat_product,
        "usage": used,
        "event_type": event_type,
        "card": rate_card(client, seat_rate(seat_product, 0), flat(used, 1)),
        "fixed": fixed_product(client),
    }


def seat_credit(catalog: Json, starting_at: datetime, unit_price: int, **config: Any) -> Json:
    return {
        "product_id": catalog["fixed"],
        "priority": 1,
        "starting_at": starting_at,
        "recurrence_frequency": "DAILY",
        "access_amount": {"unit_price": unit_price, "credit_type_id": USD_CENTS},
        "commit_duration": {"value": 1, "unit": "PERIODS"},
        "subscription_config": {
            "subscription_id": "team",
            "allocation": "INDIVIDUAL",
            "apply_seat_increase_config": {"is_prorated": True},
            **config,
        },
    }


def use(client: Metronome, catalog: Json, customer_id: str, at: datetime, **qty_by_user: int) -> None:
    client.v1.usage.ingest(
        usage=[
            event(customer_id, catalog["event_type"], at, qty=qty, user_id=user)  # type: ignore[misc]
            for user, qty in qty_by_user.items()
        ]
    )


def edit_seats(
    client: Metronome, customer_id: str, contract_id: str, at: datetime, **updates: list[str]
) -> None:
    terms = exact(
        client.v1.contracts.with_raw_response.retrieve(customer_id=customer_id, contract_id=contract_id)
    )
    [subscription] = terms["data"]["subscriptions"]
    client.v2.contracts.edit(
        customer_id=customer_id,
        contract_id=contract_id,
        update_subscriptions=[
            {
                "subscription_id": subscription["id"],
                "seat_updates": {
                    name: [{"seat_ids": ids, "starting_at": at}] for name, ids in updates.items()
                },
            }
        ],
    )


def seat_day(client: Metronome, catalog: Json) -> tuple[str, str, datetime, datetime]:
    """A customer with the day's seat credit, cid added and bob removed an hour ago:
    (customer, contract, the day's start, the change)."""
    now = current_hour()
    start, changed = now - timedelta(hours=3), now - timedelta(hours=1)
    customer_id = new_customer(client)
    contract_id = contract(
        client,
        customer_id,
        catalog["card"],
        start,
        ending_before=start + timedelta(days=1),
        subscriptions=[seat_based(catalog["seats"], ["ann", "bob"], unassigned=1)],
        recurring_credits=[seat_credit(catalog, start, 500)],
    )
    edit_seats(client, customer_id, contract_id, changed, add_seat_ids=["cid"], remove_seat_ids=["bob"])
    return customer_id, contract_id, start, changed


def the_credit(client: Metronome, customer_id: str) -> Json:
    [credit] = [entry for entry in balances(client, customer_id).values() if entry["type"] == "CREDIT"]
    return credit


def test_each_seat_draws_its_own_balance_only(client: Metronome, catalog: Json) -> None:
    customer_id, contract_id, start, changed = seat_day(client, catalog)
    end = start + timedelta(days=1)
    terms = exact(
        client.v1.contracts.with_raw_response.retrieve(customer_id=customer_id, contract_id=contract_id)
    )
    [recurring] = terms["data"]["current"]["recurring_credits"]
    assert recurring["subscription_config"]["allocation"] == "INDIVIDUAL"
    # One credit for the day: a balance per seat, cid's from its arrival, bob's until his removal;
    # the unassigned seat holds none.
    credit = the_credit(client, customer_id)
    assert credit["recurring_credit_id"] == recurring["id"]
    # The generated credit shows the subscription it follows, wherever it is shown.
    [subscription] = terms["data"]["subscriptions"]
    config = {
        "subscription_id": subscription["id"],
        "allocation": "INDIVIDUAL",
        "apply_seat_increase_config": {"is_prorated": True},
    }
    assert recurring["subscription_config"] == config and credit["subscription_config"] == config
    [on_contract] = terms["data"]["current"]["credits"]
    assert on_contract["subscription_config"] == config
    typed = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.current.credits
        or []
    )
    assert [c.subscription_config and c.subscription_config.allocation for c in typed] == ["INDIVIDUAL"]
    assert [
        (i["amount"], i["starting_at"], i["ending_before"])
        for i in credit["access_schedule"]["schedule_items"]
    ] == [
        (D(500), rfc3339(start), rfc3339(end)),  # ann
        (D(500), rfc3339(start), rfc3339(changed)),  # bob
        (CID_GRANT, rfc3339(changed), rfc3339(end)),  # cid
    ]

    now = current_hour()
    use(client, catalog, customer_id, start, ann=200, bob=100)
    use(client, catalog, customer_id, now, ann=100, bob=50, cid=600, dan=70)
    # Usage 300 + 150 + 600 + 70 = 1120; drawn: ann 300 of 500, bob 100 (his 50 after removal is
    # billed), cid all 458.33 of 600, dan nothing (no such seat).
    drawn = D(300) + D(100) + CID_GRANT
    invoice = wait_invoice(client, customer_id, start, subtotal=D(1120), total=D(1120) - drawn)
    assert applied_by_commit(invoice) == {credit["id"]: drawn}

    credit = the_credit(client, customer_id)
    assert credit["balance"] == D(200)  # ann's 200 left; bob's 400 expired at his removal; cid's 0
    assert sorted(ledger(credit)) == sorted(
        [
            ("CREDIT_SEGMENT_START", D(500)),
            ("CREDIT_SEGMENT_START", D(500)),
            ("CREDIT_SEAT_BASED_ADJUSTMENT", CID_GRANT),
            ("CREDIT_AUTOMATED_INVOICE_DEDUCTION", D(-300)),
            ("CREDIT_AUTOMATED_INVOICE_DEDUCTION", D(-100)),
            ("CREDIT_AUTOMATED_INVOICE_DEDUCTION", -CID_GRANT),
            ("CREDIT_EXPIRATION", D(-400)),
        ]
    )
    check_seat_balances(client, customer_id, contract_id, credit["id"], changed)


def seat_list(client: Metronome, customer_id: str, contract_id: str, **params: Any) -> Json:
    raw = client.v1.contracts.with_raw_response.list_seat_balances(
        customer_id=customer_id, contract_id=contract_id, **params
    )
    raw.parse()  # the SDK's own model accepts the response
    found: Json = exact(raw)
    return found


def check_seat_balances(
    client: Metronome, customer_id: str, contract_id: str, credit_id: str, changed: datetime
) -> None:
    """contracts/seatBalances/list: each seat ever assigned, with what its own balance holds."""
    shown = seat_list(
        client, customer_id, contract_id, include_credits_and_commits=True, include_ledgers=True
    )
    assert shown["pagination"] == {"next_page": None, "seats_included": 3, "seats_available_for_next_page": 0}
    by_seat = {seat["seat_id"]: seat for seat in shown["data"]}
    assert {
        s: [(b["balance"], b["starting_balance"]) for b in seat["balances"]] for s, seat in by_seat.items()
    } == {
        "ann": [(D(200), D(500))],
        "bob": [(D(0), D(500))],  # removed: what he had left expired with him
        "cid": [(D(0), CID_GRANT)],
    }
    [cid_credit] = by_seat["cid"]["credits"]
    assert (cid_credit["id"], cid_credit["balance"], by_seat["cid"]["commits"]) == (credit_id, D(0), [])
    assert [(e["type"], e["amount"]) for e in cid_credit["ledger_entries"]] == [
        ("CREDIT_SEAT_BASED_ADJUSTMENT", CID_GRANT),  # granted when cid was assigned
        ("CREDIT_AUTOMATED_INVOICE_DEDUCTION", -CID_GRANT),
    ]
    assert cid_credit["ledger_entries"][0]["timestamp"] == rfc3339(changed)
    first = seat_list(client, customer_id, contract_id, limit=2)
    assert [seat["seat_id"] for seat in first["data"]] == ["ann", "bob"] and "credits" not in first["data"][0]
    rest = seat_list(client, customer_id, contract_id, limit=2, cursor=first["pagination"]["next_page"])
    assert [seat["seat_id"] for seat in rest["data"]] == ["cid"] and rest["pagination"]["next_page"] is None
    assert "seat_ids" in error_of(
        lambda: seat_list(client, customer_id, contract_id, seat_ids=["ann", "zed"]), 400
    )
    picked = seat_list(client, customer_id, contract_id, seat_ids=["zed", "ann"], skip_missing_seat_ids=True)
    assert [seat["seat_id"] for seat in picked["data"]] == ["ann"]


def test_the_seat_alert_per_seat_its_webhook_and_the_contract_alerts_leave_seats_out(
    client: Metronome, catalog: Json, receiver: Receiver
) -> None:
    customer_id, _contract_id, _start, _changed = seat_day(client, catalog)
    every_seat = create_alert(
        client,
        alert_type="low_remaining_seat_balance_reached",
        threshold=150,
        customer_id=customer_id,
        seat_filter={"seat_group_key": "user_id"},
    )
    only_ann = create_alert(
        client,
        alert_type="low_remaining_seat_balance_reached",
        threshold=150,
        customer_id=customer_id,
        seat_filter={"seat_group_key": "user_id", "seat_group_value": "ann"},
    )
    # Seat credits are not the contract's: its credit balance alert sees none of the 958.33.
    contract_credits = create_alert(
        client,
        alert_type="low_remaining_contract_credit_balance_reached",
        threshold=100,
        customer_id=customer_id,
    )
    wait_status(client, contract_credits, customer_id, ("in_alarm", "alert_created"))
    wait_status(client, every_seat, customer_id, ("ok", "alert_created"))  # ann 500, cid 458.33

    use(client, catalog, customer_id, current_hour(), ann=300, cid=600)  # ann 200 left, cid 0
    [cid_notice] = wait_received(receiver, customer_id, 1)
    assert cid_notice["type"] == SEAT_ALERT
    properties = cid_notice["properties"]
    assert {
        k: properties[k] for k in ("alert_id", "remaining_balance", "seat_group_key", "seat_group_value")
    } == {
        "alert_id": every_seat,
        "remaining_balance": D(0),
        "seat_group_key": "user_id",
        "seat_group_value": "cid",
    }
    assert properties["threshold"] == D(150) and properties["credit_type_id"] == USD_CENTS
    per_seat = {"seat_group_key": "user_id", "seat_group_value": "ann"}
    assert customer_alert(client, every_seat, customer_id, seat_filter=per_seat).customer_status == "ok"
    cid = {**per_seat, "seat_group_value": "cid"}
    assert customer_alert(client, every_seat, customer_id, seat_filter=cid).customer_status == "in_alarm"
    assert customer_alert(client, every_seat, customer_id).customer_status == "in_alarm"  # some seat is
    assert customer_alert(client, only_ann, customer_id).customer_status == "ok"  # cid is not its seat

    use(client, catalog, customer_id, current_hour(), ann=60, dan=1000)  # ann 140; dan is no seat
    notices = wait_received(receiver, customer_id, 3)
    settle(client)
    notices = received(receiver, customer_id)
    assert sorted(
        (n["properties"]["alert_id"], n["properties"]["seat_group_value"]) for n in notices
    ) == sorted([(every_seat, "cid"), (every_seat, "ann"), (only_ann, "ann")])
    assert {n["properties"]["remaining_balance"] for n in notices[1:]} == {D(140)}
    assert customer_alert(client, only_ann, customer_id).customer_status == "in_alarm"
    shown = customer_alert(client, only_ann, customer_id).alert
    assert shown.seat_filter is not None and shown.seat_filter.seat_group_value == "ann"
    # The others' balances, and the contract credit alert, are not moved by dan's usage.
    assert customer_alert(client, contract_credits, customer_id).customer_status == "in_alarm"
    assert the_credit(client, customer_id)["balance"] == D(140)


def test_what_a_seat_credit_and_alert_need_is_refused_naming_the_field(
    client: Metronome, catalog: Json
) -> None:
    now = current_hour()
    customer_id = new_customer(client)
    quantity_only = seats(catalog["seats"], 3, temporary_id="team")
    message = error_of(
        lambda: contract(
            client,
            customer_id,
            catalog["card"],
            now,
            ending_before=now + timedelta(days=1),
            subscriptions=[quantity_only],
            recurring_credits=[seat_credit(catalog, now, 500)],
        ),
        400,
    )
    assert "recurring_credits.0.subscription_config.allocation" in message and "SEAT_BASED" in message
    assert client.v1.contracts.list(customer_id=customer_id).data == []  # nothing was written
    spend = create_alert(client, alert_type="spend_threshold_reached", threshold=1, customer_id=customer_id)
    wrong = {"seat_group_key": "user_id", "seat_group_value": "ann"}
    assert "seat_filter" in error_of(
        lambda: customer_alert(client, spend, customer_id, seat_filter=wrong), 400
    )
