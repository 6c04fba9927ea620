"""A recurring credit tied to a subscription on the clock (an `Evaluator` on an injected clock):
each period's credit is created when its period starts, for the seats the subscription has
then; an increase within a period adds the seats added for the rest of it; the balance alert
follows, with no event. Allocated per seat, each period's credit holds a balance for each seat it
starts with, and the seat balance alert follows it."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select

from meterline.domain.timeutil import US_PER_DAY, US_PER_HOUR, from_us, month_bounds
from meterline.store.tables import commits
from tests.engine.test_seat_headroom import seat_status
from tests.sdk.alert_helpers import create_alert, status, usage_product, use
from tests.sdk.billing_helpers import contract, fixed_product, flat, rate_card
from tests.sdk.helpers import new_customer
from tests.sdk.test_subscriptions import seat_based, seat_rate, seats, subscription_product
from tests.support.inprocess import InProcess

D = Decimal


def test_each_period_s_credit_grants_for_the_seats_of_its_period(app: InProcess) -> None:
    client, start = app.client, app.now
    this_month, next_month = month_bounds(start)
    _next, after_next = month_bounds(next_month)
    usage, team = usage_product(client), subscription_product(client)
    card = rate_card(client, flat(usage.product_id, 1), seat_rate(team, 1000))
    customer_id = new_customer(client)
    contract_id = contract(
        client,
        customer_id,
        card,
        from_us(this_month),
        subscriptions=[seats(team, 2, "ARREARS", temporary_id="team")],
        recurring_credits=[
            {
                "product_id": fixed_product(client),
                "priority": 1,
                "starting_at": from_us(this_month),
                "access_amount": {"unit_price": 1000},
                "commit_duration": {"value": 1},
                "applicable_product_ids": [usage.product_id],  # not the subscription's own charge
                "subscription_config": {
                    "subscription_id": "team",
                    "apply_seat_increase_config": {"is_prorated": True},
                },
            }
        ],
    )
    low = create_alert(
        client,
        alert_type="low_remaining_contract_credit_balance_reached",
        threshold=500,
        customer_id=customer_id,
    )
    app.run(start)
    assert status(client, low, customer_id) == ("ok", "alert_created")
    use(client, customer_id, usage, 1800)  # 1800 x 1 cent of this month's 2 x 1000
    app.run(start + 60_000_000)
    assert status(client, low, customer_id) == ("in_alarm", "usage")

    # 5 seats from next month, 6 from ten days into it.
    [subscription] = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    edit(app, customer_id, contract_id, subscription.id, next_month, 5)
    assert grants(app, contract_id) == [[(D(2000), this_month)]]  # next month's is not created yet
    app.run(start + 120_000_000)  # the edit is re-measured: this month still has 200 left
    assert status(client, low, customer_id)[0] == "in_alarm"

    app.run(next_month + US_PER_HOUR)  # next month's credit, for 5 seats: the alert resolves, no event
    assert status(client, low, customer_id) == ("ok", "time")
    assert grants(app, contract_id) == [[(D(2000), this_month)], [(D(5000), next_month)]]

    rise = next_month + 10 * US_PER_DAY
    edit(app, customer_id, contract_id, subscription.id, rise, 6)
    left = D(after_next - rise) / D(after_next - next_month)  # the share of the month left
    added = (D(1000) * left).quantize(D("0.01"), ROUND_HALF_UP)
    assert grants(app, contract_id) == [[(D(2000), this_month)], [(D(5000), next_month), (added, rise)]]


def edit(
    app: InProcess, customer_id: str, contract_id: str, subscription_id: Any, at_us: int, quantity: int
) -> None:
    app.client.v2.contracts.edit(
        customer_id=customer_id,
        contract_id=contract_id,
        update_subscriptions=[
            {
                "subscription_id": subscription_id,
                "quantity_updates": [{"starting_at": from_us(at_us), "quantity": quantity}],
            }
        ],
    )


def grants(app: InProcess, contract_id: str) -> list[list[tuple[Decimal, int]]]:
    """Each stored credit of the contract, by start: its segments' (amount, start)."""
    with app.db.read() as conn:
        rows = conn.execute(select(commits.c.access_segments).where(commits.c.contract_id == contract_id))
        found = [[(D(s["amount"]), s["starting_at_us"]) for s in row[0]] for row in rows]
    return sorted(found, key=lambda segments: segments[0][1])


def test_each_period_s_credit_per_seat_is_for_the_seats_it_starts_with(app: InProcess) -> None:
    """INDIVIDUAL, without an end: next month's credit, created when the month starts, holds a
    balance for each seat then (bob removed from then gets none); ann's seat alert resolves with it."""
    client, start = app.client, app.now
    this_month, next_month = month_bounds(start)
    usage, team = usage_product(client, group_key="user_id"), subscription_product(client)
    card = rate_card(client, flat(usage.product_id, 1), seat_rate(team, 0))
    customer_id = new_customer(client)
    subscription = seat_based(team, ["ann", "bob"])
    contract_id = contract(
        client,
        customer_id,
        card,
        from_us(this_month),
        subscriptions=[subscription],
        recurring_credits=[
            {
                "product_id": fixed_product(client),
                "priority": 1,
                "starting_at": from_us(this_month),
                "access_amount": {"unit_price": 1000},
                "commit_duration": {"value": 1},
                "subscription_config": {
                    "subscription_id": "team",
                    "allocation": "INDIVIDUAL",
                    "apply_seat_increase_config": {"is_prorated": True},
                },
            }
        ],
    )
    alert = create_alert(
        client,
        alert_type="low_remaining_seat_balance_reached",
        threshold=100,
        customer_id=customer_id,
        seat_filter={"seat_group_key": "user_id"},
    )
    app.run(start)
    use(client, customer_id, usage, 950, user_id="ann")  # ann: 50 of her 1000 left
    app.run(start + 60_000_000)
    assert seat_status(app, customer_id, alert, "ann") == "in_alarm"
    assert seat_status(app, customer_id, alert, "bob") == "ok"

    [shown] = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    client.v2.contracts.edit(
        customer_id=customer_id,
        contract_id=contract_id,
        update_subscriptions=[
            {
                "subscription_id": shown.id,
                "seat_updates": {
                    "remove_seat_ids": [{"seat_ids": ["bob"], "starting_at": from_us(next_month)}]
                },
            }
        ],
    )
    app.run(next_month + US_PER_HOUR)  # next month's credit: ann's new 1000, nothing for bob
    assert seat_status(app, customer_id, alert, "ann") == "ok"
    assert grants(app, contract_id) == [
        [(D(1000), this_month), (D(1000), this_month)],
        [(D(1000), next_month)],
    ]
