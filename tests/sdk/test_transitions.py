"""Contract transitions (contracts/create `transition`) and commit rollover, through the Metronome SDK
against a real server: the old contract ends where the new one starts, each commit or credit with a
`rollover_fraction` hands that share of what it left unused to a rollover commit on the new
contract, ledgers show it leave and arrive, usage after the transition draws the rollover commit
first, and bad transitions are refused naming the field, with nothing written.

Every expected amount is worked out by hand in a comment next to it. Times derive from now.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from metronome import Metronome

from tests.sdk.billing_helpers import (
    applied_by_commit,
    balances,
    check_totals,
    contract,
    exact,
    fixed_product,
    flat,
    rate_card,
    segment,
    usage_product,
    wait_invoice,
)
from tests.sdk.contract_helpers import MISSING_ID, error_of
from tests.sdk.helpers import current_hour, event, ingest, new_customer, rfc3339
from tests.support.waiting import wait_for

D = Decimal
Json = dict[str, Any]


def shown(client: Metronome, customer_id: str, contract_id: str) -> Json:
    """The contract as contracts/get answers it, numbers exact."""
    raw = client.v1.contracts.with_raw_response.retrieve(customer_id=customer_id, contract_id=contract_id)
    found: Json = exact(raw)["data"]
    return found


def rolled_over(client: Metronome, customer_id: str, contract_id: str, count: int) -> list[Json]:
    """The rollover commits and credits of the contract, once the engine has made `count` of them."""

    def found() -> list[Json]:
        terms = shown(client, customer_id, contract_id)["current"]
        return [c for c in terms["commits"] + terms.get("credits", []) if "rolled_over_from" in c]

    return wait_for(found, lambda made: len(made) == count, timeout_s=30)


def ledger_of(entry: Json) -> list[tuple[str, Decimal]]:
    return [(item["type"], item["amount"]) for item in entry["ledger"]]


def test_a_renewal_rolls_over_the_unused_share_and_usage_after_it_draws_the_rollover_first(
    client: Metronome,
) -> None:
    transition_at = current_hour()  # the new contract starts at the start of this hour (already past)
    old_start = transition_at - timedelta(hours=48)
    calls, event_type = usage_product(client, aggregation="SUM", key="calls")
    card = rate_card(client, flat(calls, 1, starting_at=old_start))  # 1 cent a call
    fixed, customer_id = fixed_product(client), new_customer(client)
    old = contract(
        client,
        customer_id,
        card,
        old_start,
        commits=[
            {
                "type": "PREPAID",
                "product_id": fixed,
                "priority": 1,
                "access_schedule": segment(1000, old_start),
                "rollover_fraction": 0.5,
            },
            {
                "type": "PREPAID",
                "product_id": fixed,
                "priority": 3,
                "access_schedule": segment(200, old_start),
            },
        ],
        credits=[
            {
                "product_id": fixed,
                "priority": 2,
                "access_schedule": segment(400, old_start),
                "rollover_fraction": 0.25,
            }
        ],
    )
    old_terms = shown(client, customer_id, old)["current"]
    commit, kept = (c["id"] for c in old_terms["commits"])
    [credit] = (c["id"] for c in old_terms["credits"])
    ingest(client, [event(customer_id, event_type, transition_at - timedelta(hours=2), calls=300)])
    # 300 calls x 1 = 300, all from the commit (priority 1): 1000 - 300 = 700 left
    wait_for(lambda: balances(client, customer_id)[commit]["balance"], lambda b: b == 700)

    renewal_end = transition_at + timedelta(days=365)
    new = contract(
        client,
        customer_id,
        card,
        transition_at,
        ending_before=renewal_end,
        transition={"from_contract_id": old, "type": "RENEWAL"},
        commits=[
            {
                "type": "PREPAID",
                "product_id": fixed,
                "priority": 0,  # before every other by priority, yet the rollover commit comes first
                "access_schedule": segment(5000, transition_at),
            }
        ],
    )
    made = rolled_over(client, customer_id, new, 2)
    by_source = {c["rolled_over_from"]["commit_id"]: c for c in made}
    assert set(by_source) == {commit, credit}  # the third commit has no rollover_fraction
    rollover_commit, rollover_credit = by_source[commit], by_source[credit]
    # the commit: 700 unused x 0.5 = 350; the credit: 400 unused x 0.25 = 100
    assert rollover_commit["type"] == "PREPAID"
    assert rollover_commit["rolled_over_from"] == {"commit_id": commit, "contract_id": old}
    assert rollover_commit["access_schedule"]["schedule_items"][0]["amount"] == 350
    assert rollover_commit["access_schedule"]["schedule_items"][0]["starting_at"] == rfc3339(transition_at)
    assert rollover_commit["access_schedule"]["schedule_items"][0]["ending_before"] == rfc3339(renewal_end)
    assert rollover_commit["rollover_fraction"] == D("0.5") and "created_by" not in rollover_commit
    assert rollover_credit["access_schedule"]["schedule_items"][0]["amount"] == 100

    # The old contract ends where the new one starts; both show the transition.
    old_shown, new_shown = shown(client, customer_id, old), shown(client, customer_id, new)
    assert old_shown["current"]["ending_before"] == rfc3339(transition_at)
    transition = {"from_contract_id": old, "to_contract_id": new, "type": "RENEWAL"}
    assert old_shown["current"]["transitions"] == new_shown["current"]["transitions"] == [transition]

    found = balances(client, customer_id)
    # 1000 - 300 drawn - 350 rolled over = 350, expiring at the transition
    assert ledger_of(found[commit]) == [
        ("PREPAID_COMMIT_SEGMENT_START", D(1000)),
        ("PREPAID_COMMIT_AUTOMATED_INVOICE_DEDUCTION", D(-300)),
        ("PREPAID_COMMIT_ROLLOVER", D(-350)),
        ("PREPAID_COMMIT_EXPIRATION", D(-350)),
    ]
    rollover_entry = found[commit]["ledger"][2]
    assert rollover_entry["new_contract_id"] == new and rollover_entry["timestamp"] == rfc3339(transition_at)
    # 400 - 100 rolled over = 300 expiring
    assert ledger_of(found[credit]) == [
        ("CREDIT_SEGMENT_START", D(400)),
        ("CREDIT_ROLLOVER", D(-100)),
        ("CREDIT_EXPIRATION", D(-300)),
    ]
    assert ledger_of(found[kept]) == [
        ("PREPAID_COMMIT_SEGMENT_START", D(200)),
        ("PREPAID_COMMIT_EXPIRATION", D(-200)),
    ]
    assert ledger_of(found[rollover_commit["id"]]) == [("PREPAID_COMMIT_SEGMENT_START", D(350))]
    assert found[commit]["balance"] == found[credit]["balance"] == 0  # nothing of the old is left

    # Usage after the transition: 120 calls x 1 = 120, from the rollover commit first (before the
    # new contract's own commit of priority 0): 350 - 120 = 230 left.
    ingest(client, [event(customer_id, event_type, transition_at, calls=120)])
    inv = wait_invoice(client, customer_id, transition_at, subtotal=D(120), total=D(0))
    check_totals(inv)
    assert inv["contract_id"] == new
    assert applied_by_commit(inv) == {rollover_commit["id"]: 120}
    found = balances(client, customer_id)
    assert found[rollover_commit["id"]]["balance"] == 230
    assert found[rollover_credit["id"]]["balance"] == 100


def test_a_superseded_open_ended_contract_gets_an_end_and_rolls_nothing_without_a_fraction(
    client: Metronome,
) -> None:
    start = current_hour() - timedelta(hours=24)
    supersede_at = current_hour()
    calls, _event_type = usage_product(client)
    card = rate_card(client, flat(calls, 1, starting_at=start))
    fixed, customer_id = fixed_product(client), new_customer(client)
    old = contract(
        client,
        customer_id,
        card,
        start,
        commits=[
            {"type": "PREPAID", "product_id": fixed, "priority": 1, "access_schedule": segment(500, start)}
        ],
    )
    new = contract(
        client, customer_id, card, supersede_at, transition={"from_contract_id": old, "type": "SUPERSEDE"}
    )
    old_terms = shown(client, customer_id, old)["current"]
    assert old_terms["ending_before"] == rfc3339(supersede_at)
    # Its commit's access is cut where the contract now ends.
    [item] = old_terms["commits"][0]["access_schedule"]["schedule_items"]
    assert (item["starting_at"], item["ending_before"]) == (rfc3339(start), rfc3339(supersede_at))
    assert shown(client, customer_id, new)["current"]["transitions"] == [
        {"from_contract_id": old, "to_contract_id": new, "type": "SUPERSEDE"}
    ]
    # Without a rollover_fraction, what it left unused expires where the contract ends.
    [(_commit_id, found)] = balances(client, customer_id).items()
    assert ledger_of(found) == [
        ("PREPAID_COMMIT_SEGMENT_START", D(500)),
        ("PREPAID_COMMIT_EXPIRATION", D(-500)),
    ]
    assert found["ledger"][1]["timestamp"] == rfc3339(supersede_at)
    assert shown(client, customer_id, new)["current"]["commits"] == []


def test_bad_transitions_are_refused_naming_the_field_and_write_nothing(client: Metronome) -> None:
    start = current_hour() - timedelta(hours=48)
    end = current_hour() + timedelta(hours=24)
    calls, _event_type = usage_product(client)
    card = rate_card(client, flat(calls, 1, starting_at=start))
    fixed, customer_id, other = fixed_product(client), new_customer(client), new_customer(client)
    old = contract(client, customer_id, card, start, ending_before=end)
    theirs = contract(client, other, card, start)

    def refused(starting_at: datetime, transition: Json, **fields: Any) -> str:
        return error_of(
            lambda: contract(client, customer_id, card, starting_at, transition=transition, **fields), 400
        )

    at = current_hour()
    assert refused(at, {"from_contract_id": MISSING_ID, "type": "RENEWAL"}) == (
        f"transition.from_contract_id: customer {customer_id} has no contract with id {MISSING_ID}"
    )
    assert refused(at, {"from_contract_id": theirs, "type": "RENEWAL"}) == (
        f"transition.from_contract_id: customer {customer_id} has no contract with id {theirs}"
    )
    assert refused(at, {"from_contract_id": old, "type": "MERGER"}).startswith("transition.type:")
    assert refused(
        at, {"from_contract_id": old, "type": "RENEWAL", "future_invoice_behavior": {"trueup": "LATER"}}
    ).startswith("transition.future_invoice_behavior.trueup:")
    assert refused(start, {"from_contract_id": old, "type": "RENEWAL"}).startswith(
        f"starting_at: must be after the start of contract {old} (transition.from_contract_id)"
    )
    assert refused(end + timedelta(hours=1), {"from_contract_id": old, "type": "RENEWAL"}).startswith(
        f"starting_at: contract {old} (transition.from_contract_id) ends at {rfc3339(end)}"
    )
    renewal = {"from_contract_id": old, "type": "RENEWAL"}
    too_much = [
        {"type": "PREPAID", "product_id": fixed, "access_schedule": segment(1, at), "rollover_fraction": 1.5}
    ]
    assert refused(at, renewal, commits=too_much).startswith("commits.0.rollover_fraction:")
    postpaid = [
        {
            "type": "POSTPAID",
            "product_id": fixed,
            "access_schedule": segment(1, at, at + timedelta(hours=1)),
            "invoice_schedule": {
                "do_not_invoice": True,
                "schedule_items": [{"timestamp": rfc3339(at), "amount": 1}],
            },
            "rollover_fraction": 0.5,
        }
    ]
    assert refused(at, renewal, commits=postpaid).startswith(
        "commits.0.rollover_fraction: meterline rolls over"
    )
    # Nothing of any of those was written: the old contract still ends where it did, untaken.
    assert shown(client, customer_id, old)["current"]["ending_before"] == rfc3339(end)
    assert shown(client, customer_id, old)["current"]["transitions"] == []
    assert len(client.v1.contracts.list(customer_id=customer_id).data) == 1

    taker = contract(
        client, customer_id, card, at, transition={**renewal, "future_invoice_behavior": {"trueup": "REMOVE"}}
    )
    assert refused(at + timedelta(hours=1), renewal) == (
        f"transition.from_contract_id: contract {old} was already taken over by contract {taker}"
    )
    client.v1.contracts.archive(customer_id=customer_id, contract_id=taker, void_invoices=False)
    archived = contract(client, customer_id, card, start)
    client.v1.contracts.archive(customer_id=customer_id, contract_id=archived, void_invoices=False)
    assert refused(at, {"from_contract_id": archived, "type": "RENEWAL"}) == (
        f"transition.from_contract_id: contract {archived} is archived"
    )


def test_a_recurring_commit_passes_its_rollover_fraction_to_each_period_s_commit(client: Metronome) -> None:
    start = current_hour() - timedelta(hours=48)
    end = current_hour()
    calls, _event_type = usage_product(client)
    card = rate_card(client, flat(calls, 1, starting_at=start))
    fixed, customer_id = fixed_product(client), new_customer(client)
    daily = {
        "product_id": fixed,
        "priority": 1,
        "starting_at": rfc3339(start),
        "access_amount": {"unit_price": 240, "quantity": 1},
        "commit_duration": {"value": 1},
        "recurrence_frequency": "DAILY",
        "rollover_fraction": 0.5,
    }
    old = contract(client, customer_id, card, start, ending_before=end, recurring_commits=[daily])
    terms = shown(client, customer_id, old)["current"]
    assert terms["recurring_commits"][0]["rollover_fraction"] == D("0.5")
    # Two daily periods, each its own commit of 240; the one ending at the transition rolls over.
    assert [c["rollover_fraction"] for c in terms["commits"]] == [D("0.5"), D("0.5")]
    new = contract(client, customer_id, card, end, transition={"from_contract_id": old, "type": "RENEWAL"})
    [made] = rolled_over(client, customer_id, new, 1)
    # The second day's commit ends at the transition, unused: 240 x 0.5 = 120 (the first expired before)
    assert made["access_schedule"]["schedule_items"][0]["amount"] == 120
    assert made["rolled_over_from"]["commit_id"] == terms["commits"][1]["id"]

    # A contract with recurring commits moves no end: a transition must start at its end.
    open_ended = contract(
        client,
        customer_id,
        card,
        start,
        recurring_commits=[daily],
    )
    message = error_of(
        lambda: contract(
            client, customer_id, card, end, transition={"from_contract_id": open_ended, "type": "RENEWAL"}
        ),
        400,
    )
    assert message.startswith(
        f"starting_at: contract {open_ended} (transition.from_contract_id) has recurring"
    )
