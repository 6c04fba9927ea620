"""Subscriptions through the Metronome SDK: SUBSCRIPTION products and their rates per billing
frequency, contracts with subscriptions read back in the SDK's models, their charges on the live
draft (drawn down by a credit like usage), quantity changes with v2 contracts/edit, the quantity
history, and every refusal naming its field.

Amounts over period ends, driven by an injected clock, are in tests/integration/test_subscription_billing.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import pytest
from metronome import Metronome

from meterline.domain.timeutil import US_PER_DAY, from_us, month_bounds, now_us
from tests.sdk.billing_helpers import (
    check_totals,
    exact,
    invoices,
    lines,
    rate_card,
    segment,
    usage_product,
    wait_invoice,
)
from tests.sdk.contract_helpers import JAN, MISSING_ID, USD_CENTS, error_of, new_fixed_product, post
from tests.sdk.helpers import current_hour, new_customer, rfc3339, uid
from tests.support.server import RunningServer

D = Decimal
Json = dict[str, Any]


def subscription_product(client: Metronome) -> str:
    return client.v1.contracts.products.create(name=f"seats {uid()}", type="SUBSCRIPTION").data.id


def seat_rate(product_id: str, price: int, frequency: str = "MONTHLY", **fields: Any) -> Json:
    return {
        "product_id": product_id,
        "entitled": True,
        "rate_type": "FLAT",
        "price": price,
        "billing_frequency": frequency,
        "starting_at": JAN,
        **fields,
    }


def seats(product_id: str, quantity: int, schedule: str = "ADVANCE", **fields: Any) -> Json:
    return {
        "subscription_rate": {"product_id": product_id, "billing_frequency": "MONTHLY"},
        "collection_schedule": schedule,
        "initial_quantity": quantity,
        "proration": {"invoice_behavior": "BILL_ON_NEXT_COLLECTION_DATE", "is_prorated": True},
        **fields,
    }


def seat_based(product_id: str, seat_ids: list[str], unassigned: int = 0, **fields: Any) -> Json:
    """A SEAT_BASED subscription `team` (temporary id) of these seats, grouped by `user_id`."""
    subscription = seats(
        product_id,
        0,
        temporary_id="team",
        quantity_management_mode="SEAT_BASED",
        seat_config={
            "seat_group_key": "user_id",
            "initial_seat_ids": seat_ids,
            "initial_unassigned_seats": unassigned,
        },
        **fields,
    )
    del subscription["initial_quantity"]  # a seat-based subscription counts its seats
    return subscription


def this_month() -> tuple[datetime, datetime]:
    start, end = month_bounds(now_us())
    return from_us(start), from_us(end)


@pytest.fixture(scope="module")
def seated(server: RunningServer) -> Json:
    """A SUBSCRIPTION product priced 1,000 cents per seat and month, on a card of its own."""
    client = Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)
    product = subscription_product(client)
    card = rate_card(client, seat_rate(product, 1000), seat_rate(product, 10000, "ANNUAL"))
    return {"product": product, "card": card}


def new_contract(client: Metronome, seated: Json, *subscriptions: Json, **fields: Any) -> tuple[str, str]:
    customer_id = new_customer(client)
    start, _end = this_month()
    contract_id = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=seated["card"],
        starting_at=start,
        subscriptions=list(subscriptions),  # type: ignore[arg-type]
        **fields,
    ).data.id
    return customer_id, contract_id


def test_a_subscription_product_has_one_flat_rate_per_billing_frequency(
    client: Metronome, seated: Json
) -> None:
    found = client.v1.contracts.rate_cards.rates.list(
        rate_card_id=seated["card"], at=rfc3339(JAN), selectors=[{"billing_frequency": "ANNUAL"}]
    )
    assert [(r.product_id, r.billing_frequency, r.rate.price) for r in found] == [
        (seated["product"], "ANNUAL", 10000)
    ]
    # A newer rate of one frequency takes over that frequency's range only.
    card = rate_card(client, seat_rate(seated["product"], 1000), seat_rate(seated["product"], 9000, "ANNUAL"))
    client.v1.contracts.rate_cards.rates.add(rate_card_id=card, **seat_rate(seated["product"], 1200))  # type: ignore[arg-type]
    prices = {
        r.billing_frequency: r.rate.price
        for r in client.v1.contracts.rate_cards.rates.list(rate_card_id=card, at=rfc3339(JAN))
    }
    assert prices == {"MONTHLY": 1200, "ANNUAL": 9000}


def test_rates_of_subscription_products_are_checked(client: Metronome, seated: Json) -> None:
    card, product = seated["card"], seated["product"]
    add = client.v1.contracts.rate_cards.rates.add
    no_frequency = {k: v for k, v in seat_rate(product, 1).items() if k != "billing_frequency"}
    assert "billing_frequency: is required" in error_of(lambda: add(rate_card_id=card, **no_frequency), 400)  # type: ignore[arg-type]
    tiered = {**seat_rate(product, 1), "rate_type": "TIERED", "tiers": [{"price": 1}]}
    tiered.pop("price")
    assert "rate_type: a SUBSCRIPTION product's rate must be FLAT" in error_of(
        lambda: add(rate_card_id=card, **tiered),
        400,  # type: ignore[arg-type]
    )
    usage, _event_type = usage_product(client)
    assert "billing_frequency: only rates of SUBSCRIPTION products" in error_of(
        lambda: add(rate_card_id=card, **seat_rate(usage, 1)),
        400,  # type: ignore[arg-type]
    )


def test_a_contract_shows_its_subscriptions_in_the_sdk_models(client: Metronome, seated: Json) -> None:
    customer_id, contract_id = new_contract(
        client,
        seated,
        seats(
            seated["product"], 3, name="Team seats", description="per seat", custom_fields={"plan": "team"}
        ),
    )
    found = client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data
    [subscription] = found.subscriptions or []
    start, end = this_month()
    assert subscription.id
    assert subscription.collection_schedule == "ADVANCE"
    assert subscription.quantity_management_mode == "QUANTITY_ONLY"
    assert (subscription.subscription_rate.billing_frequency, subscription.subscription_rate.product.id) == (
        "MONTHLY",
        seated["product"],
    )
    assert subscription.subscription_rate.product.name.startswith("seats ")
    assert (subscription.proration.invoice_behavior, subscription.proration.is_prorated) == (
        "BILL_ON_NEXT_COLLECTION_DATE",
        True,
    )
    assert [(q.quantity, q.starting_at) for q in subscription.quantity_schedule] == [(3, start)]
    assert subscription.billing_periods.current is not None
    assert (
        subscription.billing_periods.current.starting_at,
        subscription.billing_periods.current.ending_before,
    ) == (
        start,
        end,
    )
    assert (subscription.name, subscription.description, subscription.custom_fields) == (
        "Team seats",
        "per seat",
        {"plan": "team"},
    )


def test_the_live_draft_bills_the_subscription_and_a_credit_draws_it_down(
    client: Metronome, seated: Json
) -> None:
    start, _end = this_month()
    credit_product = new_fixed_product(client)
    customer_id, _contract_id = new_contract(
        client,
        seated,
        seats(seated["product"], 3, name="Team seats"),
        credits=[{"product_id": credit_product, "access_schedule": segment(500, start), "priority": 1}],
    )
    # ADVANCE, from the period's start: 3 seats x 1,000 for the whole month; the credit covers 500.
    draft = wait_invoice(client, customer_id, start, subtotal=D(3000), total=D(2500))
    [line] = lines(draft, "subscription")
    assert (line["quantity"], line["unit_price"], line["total"], line["is_prorated"]) == (
        D(3),
        D(1000),
        D(3000),
        False,
    )
    assert line["product_type"] == "SubscriptionProductListItem"
    assert line["name"] == "Team seats"
    assert line["starting_at"] == rfc3339(start)
    typed = client.v1.customers.invoices.list(customer_id=customer_id).data[0]
    assert typed.line_items[0].subscription_id == line["subscription_id"]
    # Costs are charges before drawdown, the subscription's among them.
    _start, end = this_month()
    costs = exact(
        client.v1.customers.with_raw_response.list_costs(
            customer_id=customer_id, starting_on=start, ending_before=end
        )
    )["data"]
    assert [c["credit_types"][USD_CENTS]["cost"] for c in costs] == [D(3000)]


def test_an_annual_subscription_in_advance_is_billed_whole_on_the_first_monthly_invoice(
    client: Metronome, seated: Json
) -> None:
    start, _end = this_month()
    year_later = start.replace(year=start.year + 1)
    annual = {
        **seats(seated["product"], 2),
        "subscription_rate": {"product_id": seated["product"], "billing_frequency": "ANNUAL"},
    }
    customer_id, contract_id = new_contract(client, seated, annual)
    draft = wait_invoice(client, customer_id, start, subtotal=D(20000), total=D(20000))
    [line] = lines(draft, "subscription")
    assert (line["starting_at"], line["ending_before"]) == (rfc3339(start), rfc3339(year_later))
    assert (line["quantity"], line["unit_price"], line["is_prorated"]) == (D(2), D(10000), False)
    shown = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    current = shown[0].billing_periods.current
    assert current is not None
    assert (current.starting_at, current.ending_before) == (start, year_later)


def test_an_override_of_one_billing_frequency_discounts_that_subscription_rate_only(
    client: Metronome, seated: Json
) -> None:
    start, _end = this_month()
    product = seated["product"]
    annual = {
        **seats(product, 1),
        "subscription_rate": {"product_id": product, "billing_frequency": "ANNUAL"},
    }
    half_off_monthly = {
        "type": "MULTIPLIER",
        "multiplier": 0.5,
        "starting_at": start,
        "override_specifiers": [{"product_id": product, "billing_frequency": "MONTHLY"}],
    }
    customer_id, contract_id = new_contract(
        client, seated, seats(product, 3), annual, overrides=[half_off_monthly]
    )
    # 3 monthly seats at 1,000 x 0.5, and 1 annual seat at its list price of 10,000.
    draft = wait_invoice(client, customer_id, start, subtotal=D(11500), total=D(11500))
    assert sorted((line["unit_price"], line["total"]) for line in lines(draft, "subscription")) == [
        (D(500), D(1500)),
        (D(10000), D(10000)),
    ]
    found = client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data
    [override] = found.current.overrides
    assert [(s.product_id, s.billing_frequency) for s in override.override_specifiers or []] == [
        (product, "MONTHLY")
    ]
    schedule = client.v1.contracts.retrieve_rate_schedule(
        customer_id=customer_id, contract_id=contract_id, at=start, selectors=[{"product_id": product}]
    ).data
    assert sorted(
        (r.billing_frequency, r.override_rate.price if r.override_rate else None) for r in schedule
    ) == [
        ("ANNUAL", None),
        ("MONTHLY", 500),
    ]


def test_quantity_changes_through_v2_edit_and_their_history(client: Metronome, seated: Json) -> None:
    """The history shows the quantities from the start to now; contracts/get the one in force and
    those to come."""
    began, changed = current_hour() - timedelta(hours=2), current_hour() - timedelta(hours=1)
    _start, end = this_month()
    customer_id = new_customer(client)
    contract_id = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=seated["card"],
        starting_at=began,
        subscriptions=[seats(seated["product"], 2, "ARREARS")],  # type: ignore[list-item]
    ).data.id
    [subscription] = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    assert subscription.id is not None
    edited = client.v2.contracts.edit(
        customer_id=customer_id,
        contract_id=contract_id,
        update_subscriptions=[
            {
                "subscription_id": subscription.id,
                "quantity_updates": [
                    {"starting_at": changed, "quantity": 7},
                    {"starting_at": end, "quantity": 12},
                    {"starting_at": end, "quantity_delta": -2},
                ],
            }
        ],
    )
    assert edited.data.id == contract_id
    history = client.v1.contracts.retrieve_subscription_quantity_history(
        customer_id=customer_id, contract_id=contract_id, subscription_id=subscription.id
    ).data
    assert history.subscription_id == subscription.id
    assert history.fiat_credit_type_id == USD_CENTS
    assert [
        (h.starting_at, [(d.quantity, d.unit_price, d.total) for d in h.data]) for h in history.history or []
    ] == [
        (began, [(2, 1000, 2000)]),
        (changed, [(7, 1000, 7000)]),
    ]
    shown = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    assert [(q.quantity, q.starting_at, q.ending_before) for q in shown[0].quantity_schedule] == [
        (7, changed, end),
        (10, end, None),
    ]


def test_seat_based_subscriptions_bill_their_seats_and_keep_their_history(
    client: Metronome, seated: Json
) -> None:
    start, end = this_month()
    seat_based = {
        **{k: v for k, v in seats(seated["product"], 0).items() if k != "initial_quantity"},
        "quantity_management_mode": "SEAT_BASED",
        "seat_config": {
            "seat_group_key": "user_id",
            "initial_seat_ids": ["ann", "bob"],
            "initial_unassigned_seats": 1,
        },
    }
    customer_id, contract_id = new_contract(client, seated, seat_based)
    # Two seats assigned and one not: 3 x 1,000 in advance.
    wait_invoice(client, customer_id, start, subtotal=D(3000), total=D(3000))
    [subscription] = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    assert subscription.quantity_management_mode == "SEAT_BASED"
    assert subscription.seat_config is not None and subscription.seat_config.seat_group_key == "user_id"
    # Next month: cid takes the unassigned seat, dee adds one, ann leaves, and the unassigned
    # seats removed are none (there are none left): 3 seats, cid, dee and bob.
    client.v2.contracts.edit(
        customer_id=customer_id,
        contract_id=contract_id,
        update_subscriptions=[
            {
                "subscription_id": str(subscription.id),
                "seat_updates": {
                    "add_seat_ids": [{"seat_ids": ["cid", "dee"], "starting_at": end}],
                    "remove_seat_ids": [{"seat_ids": ["ann", "nobody"], "starting_at": end}],
                    "remove_unassigned_seats": [{"quantity": 5, "starting_at": end}],
                },
            }
        ],
    )
    history = client.v1.contracts.get_subscription_seats_history(
        customer_id=customer_id, contract_id=contract_id, subscription_id=str(subscription.id)
    )
    assert [
        (h.starting_at, h.ending_before, h.assigned_seat_ids, h.total_quantity) for h in history.data
    ] == [
        (start, end, ["ann", "bob"], 3),
        (end, None, ["bob", "cid", "dee"], 3),
    ]
    assert history.next_page is None
    covering = client.v1.contracts.get_subscription_seats_history(
        customer_id=customer_id,
        contract_id=contract_id,
        subscription_id=str(subscription.id),
        covering_date=end,
        limit=1,
    )
    assert [h.assigned_seat_ids for h in covering.data] == [["bob", "cid", "dee"]]
    # The quantity did not change: one stretch, and nothing more billed.
    shown = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    assert [(q.quantity, q.starting_at) for q in shown[0].quantity_schedule] == [(3, start)]
    refused = [
        {"subscription_id": str(subscription.id), "quantity_updates": [{"starting_at": end, "quantity": 1}]}
    ]
    assert (
        error_of(
            lambda: client.v2.contracts.edit(
                customer_id=customer_id, contract_id=contract_id, update_subscriptions=refused
            ),
            400,
        )
        == "update_subscriptions.0.quantity_updates: a SEAT_BASED subscription's quantity is its seats; use seat_updates"
    )


def test_an_edit_ends_renames_and_rounds_a_subscription(client: Metronome, seated: Json) -> None:
    start, end = this_month()
    customer_id, contract_id = new_contract(client, seated, seats(seated["product"], 3))
    [subscription] = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    wait_invoice(client, customer_id, start, subtotal=D(3000), total=D(3000))
    ends = start + timedelta(days=10)
    client.v2.contracts.edit(
        customer_id=customer_id,
        contract_id=contract_id,
        update_subscriptions=[
            {
                "subscription_id": str(subscription.id),
                "ending_before": ends,
                "name": "Ten days of seats",
                "proration_rounding": {"decimal_places": 0, "rounding_method": "CEILING"},
            }
        ],
    )
    # 3 x 1,000 for 10 days of the month, rounded up to a whole cent.
    exact_amount = Fraction(3000 * 10 * 86400, int((end - start).total_seconds()))
    expected = -(-exact_amount.numerator // exact_amount.denominator)
    draft = wait_invoice(client, customer_id, start, subtotal=D(expected), total=D(expected))
    [line] = lines(draft, "subscription")
    assert (line["name"], line["ending_before"], line["is_prorated"]) == (
        "Ten days of seats",
        rfc3339(ends),
        True,
    )
    shown = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    assert shown[0].ending_before == ends
    assert shown[0].proration.rounding is not None
    assert shown[0].proration.rounding.rounding_method == "CEILING"


def test_add_subscriptions_through_v2_edit(client: Metronome, seated: Json) -> None:
    start, _end = this_month()
    customer_id, contract_id = new_contract(client, seated)
    client.v2.contracts.edit(
        customer_id=customer_id,
        contract_id=contract_id,
        add_subscriptions=[seats(seated["product"], 4)],  # type: ignore[list-item]
    )
    draft = wait_invoice(client, customer_id, start, subtotal=D(4000), total=D(4000))
    assert [line["quantity"] for line in lines(draft, "subscription")] == [D(4)]
    check_totals(draft)


def test_bill_immediately_bills_an_increase_on_a_scheduled_invoice_of_its_own(
    client: Metronome, seated: Json
) -> None:
    customer_id = new_customer(client)
    start, end = this_month()
    middle = start + timedelta(days=15)  # inside every month, whatever today is
    rounding = {"decimal_places": 2, "rounding_method": "HALF_UP"}
    proration = {"invoice_behavior": "BILL_IMMEDIATELY", "is_prorated": True, "rounding": rounding}
    contract_id = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=seated["card"],
        starting_at=start,
        subscriptions=[seats(seated["product"], 1, proration=proration)],  # type: ignore[list-item]
    ).data.id
    (subscription,) = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    client.v2.contracts.edit(
        customer_id=customer_id,
        contract_id=contract_id,
        update_subscriptions=[
            {
                "subscription_id": str(subscription.id),
                "quantity_updates": [{"starting_at": middle, "quantity_delta": 2}],
            }
        ],
    )
    # 2 more seats x 1,000 for the rest of the month, to cents, billed at the increase.
    rest = Fraction(int((end - middle).total_seconds()), int((end - start).total_seconds()))
    exact_amount = 2 * 1000 * rest
    amount = (D(exact_amount.numerator) / D(exact_amount.denominator)).quantize(D("0.01"), ROUND_HALF_UP)
    (own,) = invoices(client, customer_id, type="SCHEDULED")
    assert (own["start_timestamp"], own["end_timestamp"]) == (rfc3339(middle), rfc3339(middle))
    (line,) = own["line_items"]
    assert (line["type"], line["subscription_id"], line["quantity"], line["total"]) == (
        "subscription",
        subscription.id,
        D(2),
        amount,
    )
    assert (line["starting_at"], line["ending_before"], line["is_prorated"]) == (
        rfc3339(middle),
        rfc3339(end),
        True,
    )
    assert own["subtotal"] == own["total"] == amount
    # The usage invoice bills the month's first seat in advance, and not the increase again.
    draft = wait_invoice(client, customer_id, start, subtotal=D(1000), total=D(1000))
    assert [line["quantity"] for line in lines(draft, "subscription")] == [D(1)]


def test_subscription_fields_meterline_does_not_build_are_refused(client: Metronome, seated: Json) -> None:
    product = seated["product"]
    customer_id = new_customer(client)
    start, _end = this_month()

    def create(subscription: Json) -> str:
        return error_of(
            lambda: client.v1.contracts.create(
                customer_id=customer_id,
                rate_card_id=seated["card"],
                starting_at=start,
                subscriptions=[subscription],  # type: ignore[list-item]
            ),
            400,
        )

    immediately = {"invoice_behavior": "BILL_IMMEDIATELY", "is_prorated": True}
    assert create(seats(product, 1, "ARREARS", proration=immediately)).startswith(
        "subscriptions.0.proration.invoice_behavior: BILL_IMMEDIATELY bills an increase paid in "
        "advance at once, so it needs collection_schedule ADVANCE"
    )
    assert create(seats(product, 1, quantity_management_mode="SEAT_BASED")) == (
        "subscriptions.0.seat_config: is required for SEAT_BASED subscriptions"
    )
    seat_config = {"seat_group_key": "user", "initial_seat_ids": ["a"]}
    assert create(seats(product, 1, seat_config=seat_config)) == (
        "subscriptions.0.seat_config: only SEAT_BASED subscriptions have seats"
    )
    assert create(seats(product, 1, quantity_management_mode="SEAT_BASED", seat_config=seat_config)) == (
        "subscriptions.0.initial_quantity: a SEAT_BASED subscription's quantity is its seats; omit it"
    )
    off_the_hour = {"anchor_date": rfc3339(start + timedelta(minutes=30))}
    assert create(seats(product, 1, billing_cycle_config=off_the_hour)).startswith(
        "subscriptions.0.billing_cycle_config.anchor_date: "
    )
    placement = {"invoice_placement": "ON_NEXT_INVOICE"}
    assert create(seats(product, 1, billing_cycle_config=placement)).startswith(
        "subscriptions.0.billing_cycle_config.invoice_placement: "
    )
    weekly = {
        **seats(product, 1),
        "subscription_rate": {"product_id": product, "billing_frequency": "WEEKLY"},
    }
    assert create(weekly).startswith(
        f"subscriptions.0.subscription_rate: rate card {seated['card']} has no WEEKLY rate"
    )
    without_quantity = {k: v for k, v in seats(product, 1).items() if k != "initial_quantity"}
    assert (
        create(without_quantity)
        == "subscriptions.0.initial_quantity: is required for QUANTITY_ONLY subscriptions"
    )
    fixed = new_fixed_product(client)
    assert "is a FIXED product; a subscription needs a SUBSCRIPTION product" in create(seats(fixed, 1))
    unpriced = subscription_product(client)
    assert create(seats(unpriced, 1)).startswith(
        f"subscriptions.0.subscription_rate: rate card {seated['card']} has no"
    )
    assert "subscriptions.0.initial_quantity" in create(seats(product, -1))
    # A contract begun months ago: the periods before the last 35 days are closed to billing.
    long_ago = from_us(month_bounds(now_us() - 90 * US_PER_DAY)[0])
    assert error_of(
        lambda: client.v1.contracts.create(
            customer_id=customer_id,
            rate_card_id=seated["card"],
            starting_at=long_ago,
            subscriptions=[seats(product, 1)],  # type: ignore[list-item]
        ),
        400,
    ).startswith("subscriptions.0.starting_at: must not be before ")
    assert client.v1.contracts.list(customer_id=customer_id).data == []


def test_a_subscription_added_with_a_billing_cycle_of_its_own_shows_it(
    client: Metronome, seated: Json
) -> None:
    start, _end = this_month()
    customer_id, contract_id = new_contract(client, seated)
    anchor = start + timedelta(days=9)
    cycle = {"anchor_date": rfc3339(anchor), "invoice_placement": "ON_SCHEDULED_INVOICE"}
    client.v2.contracts.edit(
        customer_id=customer_id,
        contract_id=contract_id,
        add_subscriptions=[seats(seated["product"], 2, billing_cycle_config=cycle)],  # type: ignore[list-item]
    )
    [subscription] = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    assert subscription.billing_cycle_config is not None
    assert subscription.billing_cycle_config.anchor_date == anchor
    assert subscription.billing_cycle_config.invoice_placement == "ON_SCHEDULED_INVOICE"
    # Its periods run from the anchor's day of the month.
    periods = subscription.billing_periods
    shown = [p for p in (periods.previous, periods.current, periods.next) if p is not None]
    assert all(p.starting_at in (start, anchor) or p.starting_at.day == anchor.day for p in shown)


def test_edits_that_would_break_a_rule_change_nothing(client: Metronome, seated: Json) -> None:
    start, end = this_month()
    customer_id, contract_id = new_contract(client, seated, seats(seated["product"], 2))
    [subscription] = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    sub_id = subscription.id

    def edit(**fields: Any) -> str:
        return error_of(
            lambda: client.v2.contracts.edit(customer_id=customer_id, contract_id=contract_id, **fields), 400
        )

    negative = [{"subscription_id": sub_id, "quantity_updates": [{"starting_at": end, "quantity_delta": -3}]}]
    assert edit(update_subscriptions=negative).startswith(
        "update_subscriptions.0.quantity_updates: quantity: would be -1"
    )
    both = [
        {
            "subscription_id": sub_id,
            "quantity_updates": [{"starting_at": end, "quantity": 1, "quantity_delta": 1}],
        }
    ]
    assert edit(update_subscriptions=both) == (
        "update_subscriptions.0.quantity_updates.0: give exactly one of quantity and quantity_delta"
    )
    unknown = [{"subscription_id": MISSING_ID, "quantity_updates": [{"starting_at": end, "quantity": 1}]}]
    assert edit(update_subscriptions=unknown).startswith(
        f"update_subscriptions.0.subscription_id: contract {contract_id} has no"
    )
    assert edit(add_discounts=[]) == "add_discounts: meterline does not support this field yet"
    assert "has no contract" in error_of(
        lambda: client.v2.contracts.edit(customer_id=customer_id, contract_id=MISSING_ID), 404
    )
    seat_updates = [
        {
            "subscription_id": sub_id,
            "seat_updates": {"add_unassigned_seats": [{"quantity": 1, "starting_at": end}]},
        }
    ]
    assert edit(update_subscriptions=seat_updates) == (
        "update_subscriptions.0.seat_updates: only SEAT_BASED subscriptions have seats; use quantity_updates"
    )
    # Refused whole: the valid update sent with a broken one was not applied either.
    mixed = [
        {"subscription_id": sub_id, "quantity_updates": [{"starting_at": end, "quantity": 5}]},
        {"subscription_id": MISSING_ID, "quantity_updates": [{"starting_at": end, "quantity": 1}]},
    ]
    edit(update_subscriptions=mixed)
    shown = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    assert [(q.quantity, q.starting_at, q.ending_before) for q in shown[0].quantity_schedule] == [
        (2, start, None)
    ]


def test_the_quantity_history_of_an_unknown_subscription_is_a_404(client: Metronome, seated: Json) -> None:
    customer_id, contract_id = new_contract(client, seated)
    body = {"customer_id": customer_id, "contract_id": contract_id, "subscription_id": MISSING_ID}
    assert "has no subscription" in error_of(
        lambda: post(client, "/v1/contracts/getSubscriptionQuantityHistory", body), 404
    )
