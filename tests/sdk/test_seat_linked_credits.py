"""Recurring credits and commits tied to a subscription (`subscription_config`, POOLED) through the
Metronome SDK against a real server: each period grants the amount per seat times the seats,
an increase within the period adds the seats added (prorated for the rest of the period, or in
full), a decrease waits for the next period; and what is refused, naming the field.

Every amount is worked out by hand from the hours of the month. The next periods, on the clock,
are in tests/integration/test_seat_linked_time.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from metronome import Metronome

from tests.sdk.billing_helpers import contract, exact, fixed_product, rate_card, this_hour_and_period
from tests.sdk.contract_helpers import USD_CENTS, error_of
from tests.sdk.helpers import new_customer, rfc3339
from tests.sdk.test_subscriptions import seat_based, seat_rate, seats, subscription_product
from tests.support.server import RunningServer

D = Decimal
Json = dict[str, Any]


@pytest.fixture(scope="module")
def catalog(server: RunningServer) -> Json:
    """A SUBSCRIPTION product at 1,000 cents per seat and month, and a FIXED product for credits."""
    client = Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)
    product = subscription_product(client)
    return {
        "seats": product,
        "card": rate_card(client, seat_rate(product, 1000)),
        "fixed": fixed_product(client),
    }


def per_seat(catalog: Json, starting_at: datetime, unit_price: int, *, prorated: bool, **fields: Any) -> Json:
    return {
        "product_id": catalog["fixed"],
        "priority": 1,
        "starting_at": starting_at,
        "access_amount": {"unit_price": unit_price, "credit_type_id": USD_CENTS},
        "commit_duration": {"value": 1, "unit": "PERIODS"},
        "subscription_config": {
            "subscription_id": "team",
            "apply_seat_increase_config": {"is_prorated": prorated},
        },
        **fields,
    }


def terms_of(client: Metronome, customer_id: str, contract_id: str) -> Any:
    raw = client.v1.contracts.with_raw_response.retrieve(customer_id=customer_id, contract_id=contract_id)
    raw.parse()  # the SDK's own model accepts the response
    return exact(raw)["data"]


def grants_by_recurring(credits: list[Json]) -> dict[str, list[tuple[Decimal, str, str]]]:
    found: dict[str, list[tuple[Decimal, str, str]]] = {}
    for credit in credits:
        for item in credit["access_schedule"]["schedule_items"]:
            found.setdefault(credit["recurring_credit_id"], []).append(
                (item["amount"], item["starting_at"], item["ending_before"])
            )
    return found


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(D("0.01"), ROUND_HALF_UP)


def test_a_pooled_credit_grants_per_seat_and_follows_the_seats_within_the_period(
    client: Metronome, catalog: Json
) -> None:
    _now, period, period_end = this_hour_and_period()
    customer_id = new_customer(client)
    after = period_end + timedelta(days=40)  # the contract runs into next month
    contract_id = contract(
        client,
        customer_id,
        catalog["card"],
        period,
        ending_before=after,
        subscriptions=[seats(catalog["seats"], 3, "ARREARS", temporary_id="team")],
        recurring_credits=[
            per_seat(catalog, period, 500, prorated=True),
            per_seat(catalog, period, 200, prorated=False),
        ],
    )
    terms = terms_of(client, customer_id, contract_id)
    [subscription] = terms["subscriptions"]
    prorated, whole = terms["current"]["recurring_credits"]
    for shown, is_prorated in ((prorated, True), (whole, False)):
        assert shown["subscription_config"] == {
            "subscription_id": subscription["id"],
            "allocation": "POOLED",
            "apply_seat_increase_config": {"is_prorated": is_prorated},
        }
        assert "quantity" not in shown["access_amount"]  # the subscription's
    # This month's credits: 3 seats x 500 and 3 x 200 (next month's appear when it starts).
    assert grants_by_recurring(terms["current"]["credits"]) == {
        prorated["id"]: [(D(1500), rfc3339(period), rfc3339(period_end))],
        whole["id"]: [(D(600), rfc3339(period), rfc3339(period_end))],
    }

    # 5 seats an hour into the month, 4 an hour later, 6 an hour after that, 2 from next month.
    changed = period + timedelta(hours=1)
    client.v2.contracts.edit(
        customer_id=customer_id,
        contract_id=contract_id,
        update_subscriptions=[
            {
                "subscription_id": subscription["id"],
                "quantity_updates": [
                    {"starting_at": changed, "quantity": 5},
                    {"starting_at": changed + timedelta(hours=1), "quantity_delta": -1},
                    {"starting_at": changed + timedelta(hours=2), "quantity": 6},
                    {"starting_at": period_end, "quantity": 2},
                ],
            }
        ],
    )
    month_hours = D(int((period_end - period).total_seconds()) // 3600)
    # +2 seats with month_hours - 1 hours left; then the drop to 4 grants nothing, and the rise to 6
    # grants only the seat above the 5 already granted, with month_hours - 3 hours left.
    first_rise, second_rise = changed, changed + timedelta(hours=2)
    assert grants_by_recurring(terms_of(client, customer_id, contract_id)["current"]["credits"]) == {
        prorated["id"]: [
            (D(1500), rfc3339(period), rfc3339(period_end)),
            (cents(2 * D(500) * (month_hours - 1) / month_hours), rfc3339(first_rise), rfc3339(period_end)),
            (cents(D(500) * (month_hours - 3) / month_hours), rfc3339(second_rise), rfc3339(period_end)),
        ],
        whole["id"]: [
            (D(600), rfc3339(period), rfc3339(period_end)),
            (D(400), rfc3339(first_rise), rfc3339(period_end)),
            (D(200), rfc3339(second_rise), rfc3339(period_end)),
        ],
    }


def test_a_pooled_commit_on_a_seat_based_subscription_follows_its_seats(
    client: Metronome, catalog: Json
) -> None:
    """Seats, not a quantity: a new id fills an unassigned seat first, and a seat removed mid-period
    takes nothing back."""
    _now, period, period_end = this_hour_and_period()
    customer_id = new_customer(client)
    team = seat_based(catalog["seats"], ["ann", "bob"], unassigned=1)
    contract_id = contract(
        client,
        customer_id,
        catalog["card"],
        period,
        ending_before=period_end,
        subscriptions=[team],
        recurring_commits=[per_seat(catalog, period, 100, prorated=False)],
    )
    terms = terms_of(client, customer_id, contract_id)
    [subscription] = terms["subscriptions"]
    [commit] = terms["current"]["recurring_commits"]
    changed = period + timedelta(hours=1)
    client.v2.contracts.edit(
        customer_id=customer_id,
        contract_id=contract_id,
        update_subscriptions=[
            {
                "subscription_id": subscription["id"],
                "seat_updates": {
                    # cid takes the unassigned seat (still 3), dan adds a fourth
                    "add_seat_ids": [{"seat_ids": ["cid", "dan"], "starting_at": changed}],
                    "remove_seat_ids": [{"seat_ids": ["ann"], "starting_at": changed + timedelta(hours=1)}],
                },
            }
        ],
    )
    [shown] = terms_of(client, customer_id, contract_id)["current"]["commits"]
    assert shown["recurring_commit_id"] == commit["id"] and shown["type"] == "PREPAID"
    assert [(i["amount"], i["starting_at"]) for i in shown["access_schedule"]["schedule_items"]] == [
        (D(300), rfc3339(period)),  # ann, bob and the unassigned seat
        (D(100), rfc3339(changed)),  # dan's; ann leaving takes nothing back
    ]
    # Its seats set its access schedule: its end is not moved by hand.
    assert "commit_id" in error_of(
        lambda: client.v1.customers.commits.update_end_date(
            customer_id=customer_id, commit_id=shown["id"], access_ending_before=changed + timedelta(hours=5)
        ),
        400,
    )


def test_what_a_pooled_credit_needs_is_refused_naming_the_field(client: Metronome, catalog: Json) -> None:
    _now, period, period_end = this_hour_and_period()
    customer_id = new_customer(client)
    team = seats(catalog["seats"], 3, temporary_id="team")

    def refused(**fields: Any) -> str:
        return error_of(
            lambda: contract(
                client, customer_id, catalog["card"], period, ending_before=period_end, **fields
            ),
            400,
        )

    linked = per_seat(catalog, period, 500, prorated=True)
    assert "recurring_credits.0.subscription_config.subscription_id" in refused(
        subscriptions=[seats(catalog["seats"], 3, temporary_id="other")], recurring_credits=[linked]
    )
    assert "recurring_credits.0.subscription_config.subscription_id" in refused(recurring_credits=[linked])
    with_quantity = {
        **linked,
        "access_amount": {"unit_price": 500, "quantity": 2, "credit_type_id": USD_CENTS},
    }
    assert "recurring_credits.0.access_amount.quantity" in refused(
        subscriptions=[team], recurring_credits=[with_quantity]
    )
    unlinked = {key: value for key, value in linked.items() if key != "subscription_config"}
    assert "recurring_commits.0.access_amount.quantity" in refused(recurring_commits=[unlinked])
    individual = {
        **linked,
        "subscription_config": {**linked["subscription_config"], "allocation": "INDIVIDUAL"},
    }
    assert "recurring_credits.0.subscription_config.allocation" in refused(
        subscriptions=[team], recurring_credits=[individual]
    )
    assert "subscriptions.1.temporary_id" in refused(subscriptions=[team, team], recurring_credits=[linked])
    # A linked commit's invoice follows the seats: its quantity is the subscription's.
    invoiced = {**linked, "invoice_amount": {"credit_type_id": USD_CENTS, "unit_price": 500, "quantity": 3}}
    message = refused(subscriptions=[team], recurring_commits=[invoiced])
    assert "recurring_commits.0.invoice_amount" in message
    assert "subscription_config" in message
    assert client.v1.contracts.list(customer_id=customer_id).data == []  # nothing was written
