"""Subscriptions after a contract is made: /v1/contracts/getSubscriptionQuantityHistory and
getSubscriptionSeatsHistory (their edits are v2 contracts/edit's, in `routes.contract_edits`).

The quantity history is
every quantity the subscription has had from its start until now, in time order (changes to come
are in contracts/get, as in Metronome), each with the unit price of its rate in force then (with
the contract's overrides) and what that quantity costs per period.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from fastapi import APIRouter, Depends

from meterline.api.catalog_fields import Instant
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.pagination import page_request
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel, optional_time
from meterline.api.state import AppState, app_state
from meterline.domain.errors import InvalidInput
from meterline.domain.invoicing import subscription_line
from meterline.domain.subscriptions import PeriodCharge, Seats, seat_schedule
from meterline.domain.timeutil import format_rfc3339, now_us
from meterline.services import subscriptions as service
from meterline.store import products, rate_cards
from meterline.store import rates as rate_store
from meterline.store.contracts import ContractRecord
from meterline.store.subscriptions import SubscriptionRecord

router = APIRouter(route_class=ExactDecimalRoute)
MAX_SEAT_PAGE = 10  # Metronome's range for getSubscriptionSeatsHistory


class QuantityHistoryQuery(StrictModel):
    customer_id: str
    contract_id: str
    subscription_id: str


class SeatsHistoryQuery(QuantityHistoryQuery):
    covering_date: Instant | None = None
    starting_at: Instant | None = None
    ending_before: Instant | None = None
    limit: int | None = None  # 1-10, as Metronome
    cursor: str | None = None


@router.post("/v1/contracts/getSubscriptionQuantityHistory")
def quantity_history(body: QuantityHistoryQuery, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    now = now_us()
    with state.db.read() as conn:
        contract, subscription = service.find(conn, body.customer_id, body.contract_id, body.subscription_id)
        card = rate_cards.get_rate_card(conn, contract.rate_card_id)
        history = [
            {
                "starting_at": format_rfc3339(at_us),
                "data": _priced(conn, contract, subscription, at_us, quantity),
            }
            for at_us, quantity in subscription.terms().quantity_schedule()
            if at_us <= now
        ]
    return ExactJSONResponse(
        {
            "data": {
                "subscription_id": subscription.id,
                "fiat_credit_type_id": card.fiat_credit_type_id,
                "history": history,
            }
        }
    )


@router.post("/v1/contracts/getSubscriptionSeatsHistory")
def seats_history(body: SeatsHistoryQuery, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    """A SEAT_BASED subscription's seats over time: one segment per change, filtered to those in
    force at `covering_date` or overlapping [starting_at, ending_before), by start."""
    if body.covering_date is not None and (body.starting_at is not None or body.ending_before is not None):
        raise InvalidInput("covering_date: cannot be given together with starting_at or ending_before")
    asked = page_request(
        state,
        "subscription_seats",
        int,
        limit=body.limit,
        token=body.cursor,
        max_size=MAX_SEAT_PAGE,
        cursor_field="cursor",
    )
    with state.db.read() as conn:
        _contract, subscription = service.find(conn, body.customer_id, body.contract_id, body.subscription_id)
    if not subscription.seat_based:
        raise InvalidInput(f"subscription_id: {subscription.id} is not a SEAT_BASED subscription")
    low, high = (
        (body.covering_date, body.covering_date + 1)
        if body.covering_date is not None
        else (body.starting_at, body.ending_before)
    )
    segments = [
        s
        for s in _seat_segments(subscription)
        if (high is None or s[0].starting_at_us < high)
        and (low is None or s[1] is None or s[1] > low)
        and (asked.after is None or s[0].starting_at_us > asked.after)
    ]
    page, cursor = asked.cut(segments[: asked.size + 1], lambda s: s[0].starting_at_us)
    return ExactJSONResponse(
        {
            "data": [
                {
                    "starting_at": format_rfc3339(seats.starting_at_us),
                    "ending_before": optional_time(end),
                    "assigned_seat_ids": sorted(seats.assigned),
                    "total_quantity": seats.quantity,
                }
                for seats, end in page
            ],
            "next_page": cursor,
        }
    )


def _seat_segments(subscription: SubscriptionRecord) -> list[tuple[Seats, int | None]]:
    """Each state of the seats with the end of its time (the next change, or the subscription's end)."""
    states = seat_schedule([c.change for c in subscription.seat_changes])
    ends = [s.starting_at_us for s in states[1:]] + [subscription.ending_before_us]
    return list(zip(states, ends, strict=True))


def _priced(
    conn: Any, contract: ContractRecord, subscription: SubscriptionRecord, at_us: int, quantity: Decimal
) -> list[dict[str, Any]]:
    """The quantity with its unit price per period then (none when no rate is entitled then)."""
    product = products.products_at(conn, [subscription.product_id], at_us)[subscription.product_id]
    terms = contract.terms()
    overrides = [
        o.as_override()
        for o in terms.overrides
        if o.in_force(at_us) and o.applies_to(product, subscription.billing_frequency)
    ]
    full_period = PeriodCharge(subscription.id, at_us, at_us, quantity, Fraction(1), at_us)
    line = subscription_line(
        subscription.terms(),
        full_period,
        product,
        rate_store.rates_in_force(conn, contract.rate_card_id, at_us),
        overrides,
        terms.explicit_override_priority,
    )
    if line is None:
        return []
    return [{"quantity": quantity, "unit_price": line.unit_price, "total": line.total}]
