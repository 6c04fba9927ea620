"""A contract transition to come, on the clock: nothing rolls over before the new contract starts;
at its start the engine rolls the unused share over with no event, balance alerts follow, and
usage of the old contract that arrives late draws only what did not roll over (in-process, an
`Evaluator` on an injected clock)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from meterline.domain.timeutil import US_PER_HOUR, format_rfc3339, from_us
from meterline.engine.billing import DEFAULT_OPEN_HORIZON_US
from meterline.services import billing
from meterline.store.balances import CommitBalance
from tests.sdk.alert_helpers import create_alert, customer, fixed_product, rate_card, status, usage_product
from tests.sdk.billing_helpers import exact
from tests.sdk.contract_helpers import FAR
from tests.sdk.helpers import event
from tests.support.inprocess import InProcess
from tests.support.outbox import notifications_for

D = Decimal
LOW = "alerts.low_remaining_commit_balance_reached"


def balances_at(app: InProcess, customer_id: str, at_us: int) -> dict[str, CommitBalance]:
    """Balances and ledgers as the API derives them, at the injected instant."""
    with app.db.read() as conn:
        state = billing.customer_billing(conn, customer_id, DEFAULT_OPEN_HORIZON_US, at_us)
    return billing.commit_balances(state, at_us)


def entries(found: CommitBalance) -> list[tuple[str, Decimal]]:
    return [(e["type"], e["amount"]) for e in found.ledger]


def test_a_transition_to_come_rolls_over_when_the_new_contract_starts(app: InProcess) -> None:
    client, start = app.client, app.now
    hour = start - start % US_PER_HOUR
    old_start, transition_at = hour - 24 * US_PER_HOUR, hour + 2 * US_PER_HOUR
    usage = usage_product(client)
    card = rate_card(client, (usage.product_id, 1))  # 1 cent a unit
    customer_id = customer(client)
    old = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=from_us(old_start),
        commits=[
            {
                "type": "PREPAID",
                "product_id": fixed_product(client),
                "priority": 1,
                "access_schedule": {
                    "schedule_items": [
                        {"amount": 1000, "starting_at": from_us(old_start), "ending_before": FAR}
                    ]
                },
                "rollover_fraction": 0.5,
            }
        ],
    ).data.id
    [commit] = client.v1.contracts.retrieve(customer_id=customer_id, contract_id=old).data.current.commits
    an_hour_ago = from_us(hour) - timedelta(hours=1)
    client.v1.usage.ingest(usage=[event(customer_id, usage.event_type, an_hour_ago, qty=300)])  # type: ignore[list-item]
    low = create_alert(
        client, alert_type="low_remaining_commit_balance_reached", threshold=400, customer_id=customer_id
    )
    app.run(start)
    assert status(client, low, customer_id) == ("ok", "alert_created")  # 1000 - 300 = 700

    new = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=from_us(transition_at),
        ending_before=from_us(transition_at) + timedelta(days=30),
        transition={"from_contract_id": old, "type": "RENEWAL"},
    ).data.id
    app.run(start + 60_000_000)
    # Before the new contract starts: the old one ends there, and nothing has rolled over yet.
    assert client.v1.contracts.retrieve(customer_id=customer_id, contract_id=new).data.current.commits == []
    assert balances_at(app, customer_id, start + 60_000_000)[commit.id].balance == 700
    assert status(client, low, customer_id) == ("ok", "alert_created")

    # At the start, with no event: 700 unused x 0.5 = 350 rolls over; the old segment ends.
    t1 = transition_at + 60_000_000
    app.run(t1)
    raw = client.v1.contracts.with_raw_response.retrieve(customer_id=customer_id, contract_id=new)
    [made] = exact(raw)["data"]["current"]["commits"]
    assert made["rolled_over_from"] == {"commit_id": commit.id, "contract_id": old}
    [item] = made["access_schedule"]["schedule_items"]
    assert (item["amount"], item["starting_at"]) == (350, format_rfc3339(transition_at))
    assert status(client, low, customer_id) == ("in_alarm", "time")  # 350 <= 400
    [notified] = notifications_for(app.url, customer_id)
    assert (notified["type"], notified["properties"]["remaining_balance"]) == (LOW, 350)
    found = balances_at(app, customer_id, t1)
    assert entries(found[commit.id]) == [
        ("PREPAID_COMMIT_SEGMENT_START", D(1000)),
        ("PREPAID_COMMIT_AUTOMATED_INVOICE_DEDUCTION", D(-300)),
        ("PREPAID_COMMIT_ROLLOVER", D(-350)),
        ("PREPAID_COMMIT_EXPIRATION", D(-350)),
    ]
    assert found[made["id"]].balance == 350

    # The old contract's usage arriving late (before the transition, within the grace period)
    # draws what did not roll over: 500 units, 350 from the old commit, 150 billed; the
    # rollover commit keeps its 350.
    client.v1.usage.ingest(usage=[event(customer_id, usage.event_type, an_hour_ago, qty=500)])  # type: ignore[list-item]
    t2 = t1 + 60_000_000
    app.run(t2)
    found = balances_at(app, customer_id, t2)
    assert entries(found[commit.id]) == [
        ("PREPAID_COMMIT_SEGMENT_START", D(1000)),
        ("PREPAID_COMMIT_AUTOMATED_INVOICE_DEDUCTION", D(-650)),
        ("PREPAID_COMMIT_ROLLOVER", D(-350)),
    ]
    assert found[made["id"]].balance == 350
    # And it rolls over once: a restarted engine makes no second rollover commit.
    app.restart()
    app.run(t2 + 60_000_000)
    assert (
        len(client.v1.contracts.retrieve(customer_id=customer_id, contract_id=new).data.current.commits) == 1
    )


def test_a_recharge_bought_by_a_prepaid_balance_threshold_rolls_over_with_its_fraction(
    app: InProcess,
) -> None:
    client, start = app.client, app.now
    hour = start - start % US_PER_HOUR
    transition_at = hour + US_PER_HOUR
    usage = usage_product(client)
    card = rate_card(client, (usage.product_id, 1))
    recharge, customer_id = fixed_product(client), customer(client)
    old = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=from_us(hour - 24 * US_PER_HOUR),
        prepaid_balance_threshold_configuration={
            "commit": {"product_id": recharge, "rollover_fraction": 0.5},
            "is_enabled": True,
            "payment_gate_config": {"payment_gate_type": "NONE"},
            "threshold_amount": 100,
            "recharge_to_amount": 600,
        },
    ).data.id

    def shown(contract_id: str) -> dict[str, Any]:
        raw = client.v1.contracts.with_raw_response.retrieve(customer_id=customer_id, contract_id=contract_id)
        found: dict[str, Any] = exact(raw)["data"]["current"]
        return found

    assert shown(old)["prepaid_balance_threshold_configuration"]["commit"]["rollover_fraction"] == D("0.5")
    app.run(start)
    # A balance of 0 is at most 100: the engine buys 600 - 0 = 600, which rolls over half.
    [bought] = shown(old)["commits"]
    assert (bought["rollover_fraction"], bought["access_schedule"]["schedule_items"][0]["amount"]) == (
        D("0.5"),
        600,
    )
    new = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=from_us(transition_at),
        transition={"from_contract_id": old, "type": "RENEWAL"},
    ).data.id
    app.run(transition_at)
    # 600 unused x 0.5 = 300, from the transition for as long as the bought commit's access lasted
    # before the old contract's end cut it (open-ended new contract).
    made = [c for c in shown(new)["commits"] if "rolled_over_from" in c]
    assert [c["access_schedule"]["schedule_items"][0]["amount"] for c in made] == [300]
    assert made[0]["rolled_over_from"] == {"commit_id": bought["id"], "contract_id": old}
