"""v2 contracts/list and v2 contracts/getEditHistory through the Metronome SDK against a real server,
and a contract's end moving before its subscriptions' ends.

The list shows each contract as v2 contracts/get does, with v1's filters and pages. The edit
history shows each request that changed a contract (v2 contracts/edit, the v1 end-date updates, a
contract taking over from it) as what it added, updated, archived and removed, in the SDK's model
with no field it does not declare; a refused edit leaves no trace.

Every date is counted from the current hour or month, so nothing depends on today's date.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pydantic
from metronome import Metronome

from tests.sdk.billing_helpers import Json, contract, exact, fixed_product, month_start, next_month, rate_card
from tests.sdk.contract_helpers import FAR, MISSING_ID, USD_CENTS, error_of, new_card
from tests.sdk.helpers import current_hour, new_customer, rfc3339
from tests.sdk.test_contract_edits import credit, edit, prepaid, refused, v2_contract
from tests.sdk.test_subscriptions import seat_rate, seats, subscription_product


def months_ahead(count: int) -> datetime:
    moment = month_start(current_hour())
    for _ in range(count):
        moment = next_month(moment)
    return moment


def history(client: Metronome, customer_id: str, contract_id: str) -> list[Json]:
    """getEditHistory, exact, once the SDK's model has read it with nothing it does not declare."""
    raw = client.v2.contracts.with_raw_response.get_edit_history(
        customer_id=customer_id, contract_id=contract_id
    )
    assert undeclared(raw.parse()) == []
    found: list[Json] = exact(raw)["data"]
    return found


def undeclared(model: pydantic.BaseModel, path: str = "") -> list[str]:
    """Fields of a response that its SDK model does not declare (the SDK keeps them as extras)."""
    found = [f"{path}.{key}" for key in model.model_extra or {}]
    for name in type(model).model_fields:
        value = getattr(model, name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, pydantic.BaseModel):
                found += undeclared(item, f"{path}.{name}")
    return found


def listed(client: Metronome, customer_id: str, **params: Any) -> list[str]:
    return [c.id for c in client.v2.contracts.list(customer_id=customer_id, **params)]


def test_v2_list_shows_each_contract_as_v2_get_does_with_every_filter(client: Metronome) -> None:
    customer_id, card, product = new_customer(client), new_card(client), fixed_product(client)
    this_month = month_start(current_hour())
    last_month = month_start(this_month - timedelta(days=1))
    past = contract(client, customer_id, card, last_month, ending_before=this_month, name="past")
    current = contract(
        client, customer_id, card, this_month, name="current", commits=[prepaid(product, 1000, this_month)]
    )
    coming = contract(client, customer_id, card, months_ahead(1))
    archived = contract(client, customer_id, card, this_month)
    client.v1.contracts.archive(customer_id=customer_id, contract_id=archived, void_invoices=False)

    assert listed(client, customer_id) == [past, current, coming]
    assert listed(client, customer_id, include_archived=True) == [past, *sorted([current, archived]), coming]
    assert listed(client, customer_id, covering_date=this_month) == [current]  # `past` ends there
    assert listed(client, customer_id, starting_at=this_month) == [current, coming]
    first = client.v2.contracts.list(customer_id=customer_id, limit=2)
    assert ([c.id for c in first.data], bool(first.cursor)) == ([past, current], True)
    second = client.v2.contracts.list(customer_id=customer_id, limit=2, cursor=first.cursor)
    assert ([c.id for c in second.data], second.cursor) == ([coming], None)

    raw = client.v2.contracts.with_raw_response.list(customer_id=customer_id, include_balance=True)
    assert [c.id for c in raw.parse().data] == [past, current, coming]
    for shown in exact(raw)["data"]:
        assert shown == v2_contract(client, customer_id, shown["id"], include_balance=True)
    [commit] = exact(raw)["data"][1]["commits"]
    assert (commit["balance"], commit["product"]["id"]) == (1000, product)

    assert error_of(
        lambda: client.v2.contracts.list(
            customer_id=customer_id, starting_at=last_month, covering_date=last_month
        ),
        400,
    ) == ("starting_at: cannot be given together with covering_date")
    assert error_of(lambda: client.v2.contracts.list(customer_id=customer_id, limit=21), 400).startswith(
        "limit:"
    )
    assert error_of(lambda: client.v2.contracts.list(customer_id=MISSING_ID), 404).startswith("customer_id")


def test_the_edit_history_shows_each_edit_as_applied(client: Metronome) -> None:
    customer_id, card, product = new_customer(client), new_card(client), fixed_product(client)
    start = month_start(current_hour())
    contract_id = contract(client, customer_id, card, start, commits=[prepaid(product, 1000, start)])
    assert history(client, customer_id, contract_id) == []  # creating it is no edit
    [commit] = v2_contract(client, customer_id, contract_id)["commits"]
    [segment] = commit["access_schedule"]["schedule_items"]

    end, charged_at = months_ahead(3), months_ahead(1)
    edit(
        client,
        customer_id,
        contract_id,
        update_contract_name="renamed",
        update_contract_end_date=end,
        add_credits=[credit(product, 100, start, name="goodwill")],
        add_scheduled_charges=[
            {
                "product_id": product,
                "schedule": {"schedule_items": [{"timestamp": charged_at, "amount": 500}]},
            }
        ],
    )
    shown = v2_contract(client, customer_id, contract_id)
    [added_credit], [charge] = shown["credits"], shown["scheduled_charges"]
    [first] = history(client, customer_id, contract_id)
    assert first == {
        "id": first["id"],
        "timestamp": first["timestamp"],
        "update_contract_name": "renamed",
        "update_contract_end_date": rfc3339(end),
        "add_credits": [
            {
                "id": added_credit["id"],
                "product": {"id": product, "name": added_credit["product"]["name"]},
                "type": "CREDIT",
                "access_schedule": added_credit["access_schedule"],
                "name": "goodwill",
                "rate_type": "LIST_RATE",
            }
        ],
        "add_scheduled_charges": [
            {"id": charge["id"], "product": charge["product"], "schedule": charge["schedule"]}
        ],
    }

    edit(
        client,
        customer_id,
        contract_id,
        update_commits=[
            {
                "commit_id": commit["id"],
                "access_schedule": {"update_schedule_items": [{"id": segment["id"], "amount": 1500}]},
                "name": "bigger",
            }
        ],
        archive_credits=[{"id": added_credit["id"]}],
    )
    # A refused edit (an end before the start) is not in the history, nor is any part of it.
    assert refused(
        client,
        customer_id,
        contract_id,
        update_contract_name="never",
        update_contract_end_date=start - timedelta(days=1),
    ) == ("update_contract_end_date: must be after starting_at")
    client.v1.contracts.update_end_date(customer_id=customer_id, contract_id=contract_id)  # open-ended
    cut = months_ahead(2)
    client.v1.customers.commits.update_end_date(
        customer_id=customer_id, commit_id=commit["id"], access_ending_before=cut
    )

    found = history(client, customer_id, contract_id)
    assert [sorted(e) for e in found[1:]] == [
        ["archive_credits", "id", "timestamp", "update_commits"],
        ["id", "timestamp", "update_contract_end_date"],
        ["id", "timestamp", "update_commits"],
    ]
    second, third, fourth = found[1:]
    assert second["update_commits"] == [
        {
            "id": commit["id"],
            "access_schedule": {"update_schedule_items": [{"id": segment["id"], "amount": 1500}]},
            "name": "bigger",
        }
    ]
    assert second["archive_credits"] == [{"id": added_credit["id"]}]
    assert third["update_contract_end_date"] is None  # open-ended again
    assert fourth["update_commits"] == [
        {
            "id": commit["id"],
            "access_schedule": {
                "update_schedule_items": [{"id": segment["id"], "ending_before": rfc3339(cut)}]
            },
        }
    ]
    assert len({e["id"] for e in found}) == 4
    assert [e["timestamp"] for e in found] == sorted(e["timestamp"] for e in found)
    # The SDK's model reads the amounts and dates.
    parsed = client.v2.contracts.get_edit_history(customer_id=customer_id, contract_id=contract_id).data
    assert parsed[0].update_contract_end_date == end
    assert parsed[1].update_commits is not None
    access = parsed[1].update_commits[0].access_schedule
    assert access is not None and access.update_schedule_items is not None
    assert access.update_schedule_items[0].amount == 1500

    other = new_customer(client)
    assert error_of(
        lambda: client.v2.contracts.get_edit_history(customer_id=other, contract_id=contract_id), 404
    ).startswith("contract_id:")


def test_a_contract_ending_early_ends_its_subscriptions_there(client: Metronome) -> None:
    product = subscription_product(client)
    card = rate_card(client, seat_rate(product, 1000))
    customer_id, start = new_customer(client), month_start(current_hour())
    contract_id = contract(
        client,
        customer_id,
        card,
        start,
        ending_before=months_ahead(6),
        subscriptions=[seats(product, 2, ending_before=months_ahead(4)), seats(product, 1)],
    )
    own_end, following = v2_contract(client, customer_id, contract_id)["subscriptions"]

    new_end = months_ahead(2)
    client.v1.contracts.update_end_date(
        customer_id=customer_id, contract_id=contract_id, ending_before=new_end
    )
    # As Metronome documents ("ending a contract early will ... truncate any terms"): the one with
    # an end of its own past the new end ends there, the other follows the contract's end.
    shown = v2_contract(client, customer_id, contract_id)["subscriptions"]
    assert [s["ending_before"] for s in shown] == [rfc3339(new_end)] * 2
    latest = history(client, customer_id, contract_id)[-1]
    assert latest["update_contract_end_date"] == rfc3339(new_end)
    assert latest["update_subscriptions"] == [
        {"id": own_end["id"], "ending_before": rfc3339(new_end)},
        {"id": following["id"], "ending_before": rfc3339(new_end)},
    ]
    # Moved later again, the cut one keeps its new end (Metronome does not extend terms).
    client.v1.contracts.update_end_date(
        customer_id=customer_id, contract_id=contract_id, ending_before=months_ahead(5)
    )
    shown = v2_contract(client, customer_id, contract_id)["subscriptions"]
    assert [s["ending_before"] for s in shown] == [rfc3339(new_end), rfc3339(months_ahead(5))]

    # A subscription that would not have started by the new end is refused, naming the field.
    later = months_ahead(3)
    edit(client, customer_id, contract_id, add_subscriptions=[seats(product, 1, starting_at=later)])
    [added] = [
        s
        for s in v2_contract(client, customer_id, contract_id)["subscriptions"]
        if s["starting_at"] == rfc3339(later)
    ]
    expected = (
        f"subscription {added['id']} of contract {contract_id} starts at {rfc3339(later)}; a contract "
        "may not end before one of its subscriptions starts"
    )
    assert error_of(
        lambda: client.v1.contracts.update_end_date(
            customer_id=customer_id, contract_id=contract_id, ending_before=new_end
        ),
        400,
    ) == (f"ending_before: {expected}")
    assert refused(client, customer_id, contract_id, update_contract_end_date=new_end) == (
        f"update_contract_end_date: {expected}"
    )
    assert v2_contract(client, customer_id, contract_id)["ending_before"] == rfc3339(months_ahead(5))


def test_a_contract_taking_over_is_an_edit_of_the_old_one(client: Metronome) -> None:
    product = subscription_product(client)
    card = rate_card(client, seat_rate(product, 1000))
    customer_id, start = new_customer(client), month_start(current_hour())
    old = contract(
        client, customer_id, card, start, subscriptions=[seats(product, 1, ending_before=months_ahead(4))]
    )
    [subscription] = v2_contract(client, customer_id, old)["subscriptions"]
    renewal_at = months_ahead(1)
    contract(
        client,
        customer_id,
        card,
        renewal_at,
        ending_before=FAR,
        transition={"from_contract_id": old, "type": "RENEWAL"},
    )
    [taken_over] = history(client, customer_id, old)
    assert taken_over["update_contract_end_date"] == rfc3339(renewal_at)
    assert taken_over["update_subscriptions"] == [
        {"id": subscription["id"], "ending_before": rfc3339(renewal_at)}
    ]


def test_every_kind_of_part_an_edit_adds_updates_and_removes(client: Metronome) -> None:
    seat_product, fixed = subscription_product(client), fixed_product(client)
    card = rate_card(client, seat_rate(seat_product, 1000))
    customer_id, start = new_customer(client), month_start(current_hour())
    contract_id = contract(client, customer_id, card, start, ending_before=months_ahead(4))
    recurring = {
        "product_id": fixed,
        "priority": 1,
        "starting_at": start,
        "commit_duration": {"value": 1, "unit": "PERIODS"},
        "access_amount": {"unit_price": 300, "quantity": 1, "credit_type_id": USD_CENTS},
    }
    spend = {
        "commit": {"product_id": fixed},
        "is_enabled": True,
        "payment_gate_config": {"payment_gate_type": "NONE"},
        "threshold_amount": 5000,
    }
    double = {"type": "MULTIPLIER", "multiplier": 2, "product_id": fixed, "starting_at": start}
    edit(
        client,
        customer_id,
        contract_id,
        add_subscriptions=[seats(seat_product, 2)],
        add_recurring_credits=[recurring],
        add_spend_threshold_configuration=spend,
        add_overrides=[double],
    )
    shown = v2_contract(client, customer_id, contract_id)
    [subscription], [override] = shown["subscriptions"], shown["overrides"]
    [recurring_credit] = shown["recurring_credits"]
    [added] = history(client, customer_id, contract_id)
    assert sorted(added) == [
        "add_overrides",
        "add_recurring_credits",
        "add_spend_threshold_configuration",
        "add_subscriptions",
        "id",
        "timestamp",
    ]
    assert added["add_spend_threshold_configuration"] == {**spend, "commit": {"product_id": fixed}}
    assert added["add_overrides"] == [override]
    assert added["add_recurring_credits"] == [recurring_credit]
    [shown_subscription] = added["add_subscriptions"]
    assert (shown_subscription["id"], shown_subscription["quantity_schedule"]) == (
        subscription["id"],
        subscription["quantity_schedule"],
    )

    grown_at = months_ahead(1)
    edit(
        client,
        customer_id,
        contract_id,
        update_subscriptions=[
            {
                "subscription_id": subscription["id"],
                "quantity_updates": [{"starting_at": grown_at, "quantity_delta": 3}],
            }
        ],
        update_recurring_credits=[
            {"recurring_credit_id": recurring_credit["id"], "access_amount": {"unit_price": 400}}
        ],
        remove_overrides=[{"id": override["id"]}],
    )
    updated = history(client, customer_id, contract_id)[1]
    assert {k: v for k, v in updated.items() if k not in ("id", "timestamp")} == {
        "update_subscriptions": [
            {
                "id": subscription["id"],
                "quantity_updates": [{"starting_at": rfc3339(grown_at), "quantity_delta": 3}],
            }
        ],
        "update_recurring_credits": [
            {"id": recurring_credit["id"], "access_amount": {"quantity": 1, "unit_price": 400}}
        ],
        "remove_overrides": [{"id": override["id"]}],
    }
