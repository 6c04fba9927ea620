"""Subscription charges over billing period ends, driven by an injected clock (tests/support/inprocess.py):
quantity changes scheduled ahead with v2 contracts/edit, the periods finalized by the evaluator as
the clock passes their grace periods, every amount computed here by hand; a balance alert fired by
the clock alone when a new period's ADVANCE charge draws the credit down; and edits refused once
they would reach back into a finalized invoice.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from meterline.domain.billing_periods import add_months
from meterline.domain.timeutil import US_PER_DAY, US_PER_HOUR, format_rfc3339, from_us, month_bounds, to_us
from tests.integration.test_seat_linked_time import edit
from tests.sdk.alert_helpers import add_credit, create_alert, status
from tests.sdk.billing_helpers import check_totals, exact, lines, rate_card
from tests.sdk.contract_helpers import JAN, error_of
from tests.sdk.helpers import new_customer, uid
from tests.support.inprocess import InProcess

D = Decimal
Json = dict[str, Any]
GRACE = 24 * US_PER_HOUR


def product(app: InProcess) -> str:
    return app.client.v1.contracts.products.create(name=f"seats {uid()}", type="SUBSCRIPTION").data.id


def monthly_rate(product_id: str, price: int) -> Json:
    return {
        "product_id": product_id,
        "entitled": True,
        "rate_type": "FLAT",
        "price": price,
        "billing_frequency": "MONTHLY",
        "starting_at": JAN,
    }


def subscription(product_id: str, schedule: str, quantity: int, places: int) -> Json:
    return {
        "subscription_rate": {"product_id": product_id, "billing_frequency": "MONTHLY"},
        "collection_schedule": schedule,
        "initial_quantity": quantity,
        "proration": {
            "invoice_behavior": "BILL_ON_NEXT_COLLECTION_DATE",
            "is_prorated": True,
            "rounding": {"decimal_places": places, "rounding_method": "HALF_UP"},
        },
    }


def priced_customer(app: InProcess, price: int) -> tuple[str, str, str]:
    """A SUBSCRIPTION product, a card pricing it monthly, and a new customer."""
    seats = product(app)
    card = rate_card(app.client, monthly_rate(seats, price))  # type: ignore[arg-type]
    return seats, card, new_customer(app.client)


def rounded(amount: Fraction, places: int) -> Decimal:
    return (D(amount.numerator) / D(amount.denominator)).quantize(D(1).scaleb(-places), ROUND_HALF_UP)


def finalized(app: InProcess, customer_id: str) -> dict[str, Json]:
    """The customer's FINALIZED invoices by start."""
    raw = app.client.v1.customers.invoices.with_raw_response.list(customer_id=customer_id, status="FINALIZED")
    return {inv["start_timestamp"]: inv for inv in exact(raw)["data"]}


def by_subscription(invoice: Json) -> dict[str, list[tuple[Any, ...]]]:
    found: dict[str, list[tuple[Any, ...]]] = {}
    for line in lines(invoice, "subscription"):
        found.setdefault(line["subscription_id"], []).append(
            (line["starting_at"], line["ending_before"], line["quantity"], line["total"], line["is_prorated"])
        )
    return found


def test_quantity_changes_are_prorated_across_period_ends(app: InProcess) -> None:
    client = app.client
    m0, m1 = month_bounds(app.now)
    _m1, m2 = month_bounds(m1)
    length = m2 - m1
    seats, platform = product(app), product(app)
    card = rate_card(client, monthly_rate(seats, 3000), monthly_rate(platform, 1000))  # type: ignore[arg-type]
    customer_id = new_customer(client)
    contract_id = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=from_us(m0),
        subscriptions=[subscription(seats, "ARREARS", 2, 0), subscription(platform, "ADVANCE", 1, 2)],  # type: ignore[list-item]
    ).data.id
    app.run(app.now)
    subs = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    arrears_id, advance_id = (s.id for s in subs)
    day10, day20 = m1 + 10 * US_PER_DAY, m1 + 20 * US_PER_DAY
    client.v2.contracts.edit(
        customer_id=customer_id,
        contract_id=contract_id,
        update_subscriptions=[
            {
                "subscription_id": str(arrears_id),
                "quantity_updates": [{"starting_at": from_us(day10), "quantity": 5}],
            },
            {
                "subscription_id": str(advance_id),
                "quantity_updates": [
                    {"starting_at": from_us(day10), "quantity_delta": 3},
                    {"starting_at": from_us(day20), "quantity": 2},
                ],
            },
        ],
    )

    # The clock passes the first month's grace period, then the second's: both are finalized.
    app.run(m1 + GRACE + US_PER_HOUR)
    app.run(m2 + GRACE + US_PER_HOUR)
    invoices = finalized(app, customer_id)
    first, second = invoices[format_rfc3339(m0)], invoices[format_rfc3339(m1)]

    # First month: whole, no changes. 2 seats x 3,000 in arrears; 1 x 1,000 in advance.
    assert by_subscription(first) == {
        arrears_id: [(format_rfc3339(m0), format_rfc3339(m1), D(2), D(6000), False)],
        advance_id: [(format_rfc3339(m0), format_rfc3339(m1), D(1), D(1000), False)],
    }
    assert first["total"] == D(7000)

    # Second month, in arrears: 2 seats for 10 days, 5 for the rest, each part rounded to cents.
    before = rounded(Fraction(2 * 3000 * (day10 - m1), length), 0)
    after = rounded(Fraction(5 * 3000 * (m2 - day10), length), 0)
    # In advance: 1 for the whole month, then 3 more from day 10 (to 4); down to 2 on day 20 gives
    # nothing back.
    increase = rounded(Fraction(3 * 1000 * (m2 - day10), length), 2)
    assert by_subscription(second) == {
        arrears_id: [
            (format_rfc3339(m1), format_rfc3339(day10), D(2), before, True),
            (format_rfc3339(day10), format_rfc3339(m2), D(5), after, True),
        ],
        advance_id: [
            (format_rfc3339(m1), format_rfc3339(m2), D(1), D(1000), False),
            (format_rfc3339(day10), format_rfc3339(m2), D(3), increase, True),
        ],
    }
    assert second["total"] == before + after + D(1000) + increase
    check_totals(second)

    # Nothing finalized may change: a quantity change inside the second month is refused.
    late = [
        {
            "subscription_id": str(arrears_id),
            "quantity_updates": [{"starting_at": from_us(day20), "quantity": 9}],
        }
    ]
    message = error_of(
        lambda: client.v2.contracts.edit(
            customer_id=customer_id, contract_id=contract_id, update_subscriptions=late
        ),
        400,
    )
    assert message == (
        "update_subscriptions.0.quantity_updates.0.starting_at: the contract has a finalized invoice until "
        f"{format_rfc3339(m2)}; a change may not reach back before that"
    )
    # Nor may a subscription be added that starts before then (by default, at the contract's start).
    added = {**subscription(seats, "ARREARS", 1, 0)}
    message = error_of(
        lambda: client.v2.contracts.edit(
            customer_id=customer_id, contract_id=contract_id, add_subscriptions=[added]
        ),  # type: ignore[list-item]
        400,
    )
    assert message.startswith(f"add_subscriptions.0.starting_at: must not be before {format_rfc3339(m2)}")


def test_a_new_periods_advance_charge_draws_a_credit_down_and_fires_its_alert_on_the_clock(
    app: InProcess,
) -> None:
    client = app.client
    m0, m1 = month_bounds(app.now)
    seats, card, customer_id = priced_customer(app, 1000)
    client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=from_us(m0),
        subscriptions=[subscription(seats, "ADVANCE", 3, 2)],  # type: ignore[list-item]
    )
    add_credit(client, customer_id, 5000)
    alert_id = create_alert(
        client,
        alert_type="low_remaining_contract_credit_balance_reached",
        threshold=0,
        customer_id=customer_id,
    )
    app.run(app.now)
    # This month's 3 x 1,000 leaves 2,000 of the credit.
    assert status(client, alert_id, customer_id) == ("ok", "alert_created")
    # Next month's charge, there from its first moment, takes the remaining 2,000: no event needed.
    app.run(m1 + US_PER_HOUR)
    assert status(client, alert_id, customer_id) == ("in_alarm", "time")


def test_a_quarterly_subscription_in_arrears_is_billed_on_the_quarters_last_monthly_invoice(
    app: InProcess,
) -> None:
    client = app.client
    m0, m1 = month_bounds(app.now)
    m2 = month_bounds(m1)[1]
    m3 = month_bounds(m2)[1]
    seats = product(app)
    quarterly = {**monthly_rate(seats, 900), "billing_frequency": "QUARTERLY"}
    card = rate_card(client, quarterly)  # type: ignore[arg-type]
    customer_id = new_customer(client)
    contract_id = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=from_us(m0),
        subscriptions=[  # type: ignore[list-item]
            {
                **subscription(seats, "ARREARS", 3, 0),
                "subscription_rate": {"product_id": seats, "billing_frequency": "QUARTERLY"},
            }
        ],
    ).data.id
    app.run(app.now)
    [sub] = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    day10 = m1 + 10 * US_PER_DAY
    client.v2.contracts.edit(
        customer_id=customer_id,
        contract_id=contract_id,
        update_subscriptions=[
            {
                "subscription_id": str(sub.id),
                "quantity_updates": [{"starting_at": from_us(day10), "quantity": 6}],
            }
        ],
    )
    for month_end in (m1, m2, m3):
        app.run(month_end + GRACE + US_PER_HOUR)
    invoices = finalized(app, customer_id)
    assert [lines(invoices[format_rfc3339(m)], "subscription") for m in (m0, m1)] == [[], []]
    # The third month bills the quarter: 3 seats until day 10 of the second month, then 6, each part
    # of 900 per seat and quarter, prorated against the quarter's length.
    quarter = m3 - m0
    before = rounded(Fraction(3 * 900 * (day10 - m0), quarter), 0)
    after = rounded(Fraction(6 * 900 * (m3 - day10), quarter), 0)
    last = invoices[format_rfc3339(m2)]
    assert by_subscription(last) == {
        sub.id: [
            (format_rfc3339(m0), format_rfc3339(day10), D(3), before, True),
            (format_rfc3339(day10), format_rfc3339(m3), D(6), after, True),
        ]
    }
    assert last["total"] == before + after


def test_bill_immediately_bills_each_increase_at_once_on_an_invoice_of_its_own(app: InProcess) -> None:
    client = app.client
    m0, m1 = month_bounds(app.now)
    _m1, m2 = month_bounds(m1)
    length = m2 - m1
    seats, card, customer_id = priced_customer(app, 1000)
    at_once = subscription(seats, "ADVANCE", 1, 2)
    at_once["proration"]["invoice_behavior"] = "BILL_IMMEDIATELY"
    contract_id = client.v1.contracts.create(
        customer_id=customer_id, rate_card_id=card, starting_at=from_us(m0), subscriptions=[at_once]
    ).data.id
    (sub,) = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    assert sub.proration.invoice_behavior == "BILL_IMMEDIATELY"
    day10, day15, day20 = (m1 + n * US_PER_DAY for n in (10, 15, 20))
    client.v2.contracts.edit(
        customer_id=customer_id,
        contract_id=contract_id,
        update_subscriptions=[
            {
                "subscription_id": str(sub.id),
                "quantity_updates": [
                    {"starting_at": from_us(day10), "quantity_delta": 3},  # 4: 3 more billed at once
                    {"starting_at": from_us(day15), "quantity": 2},  # nothing given back
                    {"starting_at": from_us(day20), "quantity": 6},  # 2 above the 4 paid for
                ],
            }
        ],
    )
    app.run(app.now)

    def own_invoices() -> dict[str, Json]:
        raw = app.client.v1.customers.invoices.with_raw_response.list(
            customer_id=customer_id, type="SCHEDULED"
        )
        return {inv["start_timestamp"]: inv for inv in exact(raw)["data"]}

    # Each increase is prorated for the rest of its month, to cents, on an invoice dated at it.
    first = rounded(Fraction(3 * 1000 * (m2 - day10), length), 2)
    second = rounded(Fraction(2 * 1000 * (m2 - day20), length), 2)
    expected = {
        format_rfc3339(day10): (D(3), first, format_rfc3339(day10)),
        format_rfc3339(day20): (D(2), second, format_rfc3339(day20)),
    }

    def shown(found: dict[str, Json]) -> dict[str, tuple[Any, ...]]:
        result = {}
        for date, inv in found.items():
            (line,) = lines(inv, "subscription")
            assert line["subscription_id"] == sub.id and line["is_prorated"] is True
            assert line["ending_before"] == format_rfc3339(m2)
            assert inv["total"] == inv["subtotal"] == line["total"]
            result[date] = (line["quantity"], line["total"], line["starting_at"])
        return result

    drafts = own_invoices()
    assert shown(drafts) == expected and {i["status"] for i in drafts.values()} == {"DRAFT"}
    app.run(day10 - 1)
    assert {i["status"] for i in own_invoices().values()} == {"DRAFT"}
    app.run(day10)  # on its date, no grace period
    assert {d: i["status"] for d, i in own_invoices().items()} == {
        format_rfc3339(day10): "FINALIZED",
        format_rfc3339(day20): "DRAFT",
    }
    app.restart()
    app.run(day20 + US_PER_HOUR)
    app.restart()
    app.run(m2 + GRACE + US_PER_HOUR)
    final = own_invoices()
    assert set(final) == set(drafts) and {i["id"] for i in final.values()} == {
        i["id"] for i in drafts.values()
    }
    assert shown(final) == expected and {i["status"] for i in final.values()} == {"FINALIZED"}
    # Each issued when the engine, stopped or not, first ran on or after its date.
    issued = [final[format_rfc3339(d)]["issued_at"] for d in (day10, day20)]
    assert issued == [format_rfc3339(day10), format_rfc3339(day20 + US_PER_HOUR)]
    # The month's usage invoice bills the month in advance, and none of the increases again.
    usage = finalized(app, customer_id)[format_rfc3339(m1)]
    assert by_subscription(usage) == {
        sub.id: [(format_rfc3339(m1), format_rfc3339(m2), D(1), D(1000), False)]
    }
    assert usage["total"] == D(1000)

    # ARREARS has nothing paid in advance to add to at once.
    in_arrears = subscription(seats, "ARREARS", 1, 2)
    in_arrears["proration"]["invoice_behavior"] = "BILL_IMMEDIATELY"
    message = error_of(
        lambda: client.v1.contracts.create(
            customer_id=new_customer(client),
            rate_card_id=card,
            starting_at=from_us(m0),
            subscriptions=[in_arrears],
        ),
        400,
    )
    assert message.startswith("subscriptions.0.proration.invoice_behavior: BILL_IMMEDIATELY")


def scheduled_invoices(app: InProcess, customer_id: str, status: str = "FINALIZED") -> dict[str, Json]:
    """The customer's SCHEDULED invoices of `status` by date."""
    raw = app.client.v1.customers.invoices.with_raw_response.list(
        customer_id=customer_id, type="SCHEDULED", status=status
    )
    return {inv["start_timestamp"]: inv for inv in exact(raw)["data"]}


def test_a_billing_cycle_of_its_own_bills_on_scheduled_invoices_from_its_anchor(app: InProcess) -> None:
    client = app.client
    _m0, m1 = month_bounds(app.now)
    _m1, m2 = month_bounds(m1)
    # The subscription's own cycle runs from the 16th of each month; the contract's from the 1st.
    a0 = m1 + 15 * US_PER_DAY
    a1 = to_us(add_months(from_us(a0), 1))
    a_before = to_us(add_months(from_us(a0), -1))
    seats, card, customer_id = priced_customer(app, 1000)
    own = {
        **subscription(seats, "ADVANCE", 2, 2),
        "billing_cycle_config": {
            "anchor_date": format_rfc3339(a0),
            "invoice_placement": "ON_SCHEDULED_INVOICE",
        },
    }
    contract_id = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=from_us(m1),
        subscriptions=[own, subscription(seats, "ARREARS", 1, 0)],  # type: ignore[list-item]
    ).data.id
    placed, plain = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    assert placed.billing_cycle_config is not None and plain.billing_cycle_config is not None
    assert (placed.billing_cycle_config.anchor_date, placed.billing_cycle_config.invoice_placement) == (
        from_us(a0),
        "ON_SCHEDULED_INVOICE",
    )
    # Without one: the contract's usage invoices' anchor (the first of the month), on them.
    assert (plain.billing_cycle_config.anchor_date, plain.billing_cycle_config.invoice_placement) == (
        from_us(m1),
        "ON_USAGE_INVOICE",
    )
    day5 = a0 + 5 * US_PER_DAY
    edit(app, customer_id, contract_id, placed.id, day5, 3)
    app.run(app.now)
    assert scheduled_invoices(app, customer_id) == {}

    def billed(date_us: int) -> list[tuple[Any, ...]]:
        invoice = scheduled_invoices(app, customer_id)[format_rfc3339(date_us)]
        found = by_subscription(invoice)
        assert set(found) == {placed.id} and invoice["total"] == sum(line[3] for line in found[placed.id])
        assert invoice["issued_at"] == format_rfc3339(date_us)
        return found[placed.id]

    # The contract starts inside the cycle's period [a_before, a0): 2 seats in advance for the part
    # it covers, prorated against the whole period, to cents; billed on the contract's first hour.
    app.run(m1)
    first = rounded(Fraction(2 * 1000 * (a0 - m1), a0 - a_before), 2)
    assert billed(m1) == [(format_rfc3339(m1), format_rfc3339(a0), D(2), first, True)]
    app.restart()
    app.run(a0 - US_PER_HOUR)
    assert set(scheduled_invoices(app, customer_id)) == {format_rfc3339(m1)}
    # From the anchor, whole periods: 2 seats in advance on the anchor's own invoice.
    app.run(a0)
    assert billed(a0) == [(format_rfc3339(a0), format_rfc3339(a1), D(2), D(2000), False)]
    # The increase to 3 on day 5 is collected at the period's end, with the next period in advance.
    app.run(day5 + US_PER_HOUR)
    app.restart()
    app.run(a1)
    increase = rounded(Fraction(1 * 1000 * (a1 - day5), a1 - a0), 2)
    assert billed(a1) == [
        (format_rfc3339(day5), format_rfc3339(a1), D(1), increase, True),
        (format_rfc3339(a1), format_rfc3339(to_us(add_months(from_us(a0), 2))), D(3), D(3000), False),
    ]
    assert set(scheduled_invoices(app, customer_id)) == {format_rfc3339(d) for d in (m1, a0, a1)}
    # The usage invoices bill the other subscription only (1 seat in arrears, whole month).
    app.run(m2 + GRACE + US_PER_HOUR)
    raw = client.v1.customers.invoices.with_raw_response.list(customer_id=customer_id, type="USAGE")
    [usage] = [inv for inv in exact(raw)["data"] if inv["start_timestamp"] == format_rfc3339(m1)]
    assert usage["status"] == "FINALIZED"
    assert by_subscription(usage) == {
        plain.id: [(format_rfc3339(m1), format_rfc3339(m2), D(1), D(1000), False)]
    }
    assert usage["total"] == D(1000)


def test_a_quantity_only_subscription_switched_to_seat_based_keeps_its_quantity_as_seats(
    app: InProcess,
) -> None:
    client = app.client
    m0, m1 = month_bounds(app.now)
    _m1, m2 = month_bounds(m1)
    length = m1 - m0
    seats, card, customer_id = priced_customer(app, 1000)
    contract_id = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=from_us(m0),
        subscriptions=[subscription(seats, "ADVANCE", 2, 2), subscription(seats, "ADVANCE", 1, 2)],  # type: ignore[list-item]
    ).data.id
    switched, halves = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    day10, day20, day25 = (m0 + n * US_PER_DAY for n in (10, 20, 25))

    def edit(*updates: Json) -> None:
        client.v2.contracts.edit(
            customer_id=customer_id, contract_id=contract_id, update_subscriptions=list(updates)
        )  # type: ignore[arg-type]

    edit(
        {
            "subscription_id": str(switched.id),
            "quantity_updates": [{"starting_at": from_us(day10), "quantity": 3}],
        },
        {
            "subscription_id": str(halves.id),
            "quantity_updates": [{"starting_at": from_us(day10), "quantity": 1.5}],
        },
    )
    to_seats = {"quantity_management_mode": "SEAT_BASED", "seat_config": {"seat_group_key": "user"}}
    # Its 2 seats, then 3 from day 10, are unassigned seats: ann and bob take two on day 20; cid
    # takes the last on day 25, and dee adds a fourth.
    edit(
        {
            "subscription_id": str(switched.id),
            "quantity_management_mode_update": to_seats,
            "seat_updates": {
                "add_seat_ids": [
                    {"seat_ids": ["ann", "bob"], "starting_at": from_us(day20)},
                    {"seat_ids": ["cid", "dee"], "starting_at": from_us(day25)},
                ]
            },
        }
    )
    shown = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.subscriptions
        or []
    )
    assert shown[0].quantity_management_mode == "SEAT_BASED"
    assert shown[0].seat_config is not None and shown[0].seat_config.seat_group_key == "user"
    history = client.v1.contracts.get_subscription_seats_history(
        customer_id=customer_id, contract_id=contract_id, subscription_id=str(switched.id)
    )
    assert [(h.starting_at, h.assigned_seat_ids, h.total_quantity) for h in history.data] == [
        (from_us(m0), [], 2),
        (from_us(day10), [], 3),
        (from_us(day20), ["ann", "bob"], 3),
        (from_us(day25), ["ann", "bob", "cid", "dee"], 4),
    ]

    def refused(update: Json) -> str:
        return error_of(lambda: edit(update), 400)

    assert refused({"subscription_id": str(switched.id), "quantity_management_mode_update": to_seats}) == (
        f"update_subscriptions.0.quantity_management_mode_update: subscription {switched.id} is already SEAT_BASED"
    )
    assert refused(
        {"subscription_id": str(halves.id), "quantity_management_mode_update": to_seats}
    ).startswith("update_subscriptions.0.quantity_management_mode_update: quantity 1.5 from ")
    back = {"quantity_management_mode": "QUANTITY_ONLY", "seat_config": {"seat_group_key": "user"}}
    assert refused({"subscription_id": str(halves.id), "quantity_management_mode_update": back}).startswith(
        "update_subscriptions.0.quantity_management_mode_update.quantity_management_mode: "
    )
    with_quantity = {
        "subscription_id": str(halves.id),
        "quantity_management_mode_update": to_seats,
        "quantity_updates": [{"starting_at": from_us(day20), "quantity": 2}],
    }
    assert refused(with_quantity).startswith(
        "update_subscriptions.0.quantity_updates: a subscription switched"
    )

    # Billed as the quantities say, switch or not: 2 in advance, 1 more from day 10 and 1 from day
    # 25, each for the rest of the month, to cents; the next month 4 in advance.
    app.run(app.now)
    app.run(m1 + GRACE + US_PER_HOUR)
    invoice = finalized(app, customer_id)[format_rfc3339(m0)]
    from_day10 = rounded(Fraction(1000 * (m1 - day10), length), 2)
    from_day25 = rounded(Fraction(1000 * (m1 - day25), length), 2)
    assert by_subscription(invoice)[switched.id] == [
        (format_rfc3339(m0), format_rfc3339(m1), D(2), D(2000), False),
        (format_rfc3339(day10), format_rfc3339(m1), D(1), from_day10, True),
        (format_rfc3339(day25), format_rfc3339(m1), D(1), from_day25, True),
    ]
    app.run(m2 + GRACE + US_PER_HOUR)
    next_month = finalized(app, customer_id)[format_rfc3339(m1)]
    assert by_subscription(next_month)[switched.id] == [
        (format_rfc3339(m1), format_rfc3339(m2), D(4), D(4000), False)
    ]
