"""Subscriptions after a contract is made: /v2/contracts/edit (`add_subscriptions`,
`update_subscriptions`) and /v1/contracts/getSubscriptionQuantityHistory.

contracts/edit is Metronome's v2 edit; meterline applies its subscription edits and refuses every
other edit with a 400 naming the field, so no edit is ever half-applied. The quantity history is
every quantity the subscription has had from its start until now, in time order (changes to come
are in contracts/get, as in Metronome), each with the unit price of its rate in force then (with
the contract's overrides) and what that quantity costs per period.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field

from meterline.api.catalog_fields import HourInstant, Instant
from meterline.api.contract_fields import MAX_ITEMS, Name, NonEmpty, NotSupported
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.pagination import page_request
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel, id_response, optional_time
from meterline.api.state import AppState, app_state, wake_evaluator
from meterline.api.subscription_fields import (
    ProrationRoundingIn,
    QuantityUpdateIn,
    SeatUpdatesIn,
    SubscriptionIn,
)
from meterline.domain.errors import InvalidInput
from meterline.domain.invoicing import subscription_line
from meterline.domain.subscriptions import PeriodCharge, Seats, seat_schedule
from meterline.domain.timeutil import format_rfc3339, now_us
from meterline.services import subscriptions as service
from meterline.services.subscriptions import SubscriptionUpdate
from meterline.store import products, rate_cards
from meterline.store import rates as rate_store
from meterline.store.contracts import ContractRecord
from meterline.store.subscriptions import SubscriptionRecord

router = APIRouter(route_class=ExactDecimalRoute)
MAX_SEAT_PAGE = 10  # Metronome's range for getSubscriptionSeatsHistory


class SeatGroupKeyIn(StrictModel):
    seat_group_key: NonEmpty


class QuantityManagementModeUpdateIn(StrictModel):
    """From QUANTITY_ONLY to SEAT_BASED (the only switch Metronome has)."""

    quantity_management_mode: Literal["SEAT_BASED"]
    seat_config: SeatGroupKeyIn


class SubscriptionUpdateIn(StrictModel):
    subscription_id: str
    ending_before: HourInstant | None = None
    name: Name | None = None
    proration_rounding: ProrationRoundingIn | None = None
    quantity_updates: list[QuantityUpdateIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    seat_updates: SeatUpdatesIn | None = None
    quantity_management_mode_update: QuantityManagementModeUpdateIn | None = None

    def update(self, path: str) -> SubscriptionUpdate:
        given = self.model_fields_set
        return SubscriptionUpdate(
            subscription_id=self.subscription_id,
            changes=tuple(
                q.change(f"{path}.quantity_updates.{i}") for i, q in enumerate(self.quantity_updates)
            ),
            seat_changes=() if self.seat_updates is None else self.seat_updates.changes(),
            set_ending_before="ending_before" in given,
            ending_before_us=self.ending_before,
            name=self.name,
            set_rounding="proration_rounding" in given,
            rounding=None if self.proration_rounding is None else self.proration_rounding.rounding(),
            seat_group_key=None
            if self.quantity_management_mode_update is None
            else self.quantity_management_mode_update.seat_config.seat_group_key,
        )


class ContractEdit(StrictModel):
    """The SDK's ContractEditParams: subscription edits are applied, the rest is refused."""

    customer_id: str
    contract_id: str
    add_subscriptions: list[SubscriptionIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    update_subscriptions: list[SubscriptionUpdateIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    add_billing_provider_configuration_update: NotSupported = None
    add_commits: NotSupported = None
    add_credits: NotSupported = None
    add_discounts: NotSupported = None
    add_overrides: NotSupported = None
    add_prepaid_balance_threshold_configuration: NotSupported = None
    add_professional_services: NotSupported = None
    add_recurring_commits: NotSupported = None
    add_recurring_credits: NotSupported = None
    add_reseller_royalties: NotSupported = None
    add_revenue_system_configuration_update: NotSupported = None
    add_scheduled_charges: NotSupported = None
    add_spend_threshold_configuration: NotSupported = None
    add_spend_trackers: NotSupported = None
    allow_contract_ending_before_finalized_invoice: NotSupported = None
    archive_commits: NotSupported = None
    archive_credits: NotSupported = None
    archive_scheduled_charges: NotSupported = None
    archive_spend_trackers: NotSupported = None
    remove_overrides: NotSupported = None
    uniqueness_key: NotSupported = None
    update_commits: NotSupported = None
    update_contract_end_date: NotSupported = None
    update_contract_name: NotSupported = None
    update_credits: NotSupported = None
    update_net_payment_terms_days: NotSupported = None
    update_prepaid_balance_threshold_configuration: NotSupported = None
    update_recurring_commits: NotSupported = None
    update_recurring_credits: NotSupported = None
    update_scheduled_charges: NotSupported = None
    update_spend_threshold_configuration: NotSupported = None


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


@router.post("/v2/contracts/edit")
def edit_contract(body: ContractEdit, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    added = [s.new(f"add_subscriptions.{i}") for i, s in enumerate(body.add_subscriptions)]
    updates = [u.update(f"update_subscriptions.{i}") for i, u in enumerate(body.update_subscriptions)]
    with state.db.write() as conn:
        service.editable_contract(conn, body.customer_id, body.contract_id)
        if added:
            service.add(
                conn,
                body.customer_id,
                body.contract_id,
                added,
                open_horizon_us=state.settings.open_horizon_us(),
            )
        if updates:
            service.update(conn, body.customer_id, body.contract_id, updates)
    wake_evaluator(state)
    return ExactJSONResponse(id_response(body.contract_id))


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
