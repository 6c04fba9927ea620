"""Rate schedules: /v1/contract-pricing/rate-cards/getRateSchedule, /v1/contracts/getContractRateSchedule.

Both take Metronome's selectors (a rate is shown when it matches any of them; none: every rate)
and page with `limit` and `next_page` in the query string. A rate card's schedule, in order of
starting_at, is every rate in force at some time from `starting_at` (inclusive) to
`ending_before` (exclusive; none: all that follows). A contract's is its rate card's rates in
force at `at` (default: now), each with the contract's overrides applied as they price usage
(`override_rate`), over the segment during which that price holds (`services.rate_schedules`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import Connection

from meterline.api.catalog_fields import Instant
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.pagination import Page, paged
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel, optional_time
from meterline.api.routes.rates import (
    RateSelector,
    price_view,
    product_fields,
    rate_view,
    scheduled_view,
    selected,
)
from meterline.api.state import AppState, app_state
from meterline.domain.pricing import PriceSpec
from meterline.domain.timeutil import format_rfc3339, now_us
from meterline.services import rate_schedules as service
from meterline.services.rate_schedules import ContractRate
from meterline.store import credit_types

router = APIRouter(route_class=ExactDecimalRoute)


class RateScheduleQuery(StrictModel):
    rate_card_id: str
    starting_at: Instant
    ending_before: Instant | None = None
    selectors: list[RateSelector] | None = None


class ContractRateScheduleQuery(StrictModel):
    customer_id: str
    contract_id: str
    at: Instant | None = None
    selectors: list[RateSelector] | None = None


@router.post("/v1/contract-pricing/rate-cards/getRateSchedule")
def get_rate_schedule(
    body: RateScheduleQuery,
    state: AppState = Depends(app_state),
    asked: Page[tuple[int, int]] = Depends(paged("rate_schedule", tuple[int, int])),
) -> ExactJSONResponse:
    with state.db.read() as conn:
        found = service.rate_card_schedule(
            conn, body.rate_card_id, body.starting_at, body.ending_before, asked.after
        )
    chosen = [s for s in found if selected(s.rate, s.product, body.selectors)]
    page, cursor = asked.cut(chosen, lambda s: (s.rate.starting_at_us, s.rate.seq))
    return ExactJSONResponse({"data": [scheduled_view(s.rate, s.product) for s in page], "next_page": cursor})


@router.post("/v1/contracts/getContractRateSchedule")
def get_contract_rate_schedule(
    body: ContractRateScheduleQuery,
    state: AppState = Depends(app_state),
    asked: Page[int] = Depends(paged("contract_rate_schedule", int)),
) -> ExactJSONResponse:
    at_us = now_us() if body.at is None else body.at
    with state.db.read() as conn:
        found = service.contract_schedule(conn, body.customer_id, body.contract_id, at_us, asked.after)
        chosen = [r for r in found if selected(r.rate, r.product, body.selectors)]
        page, cursor = asked.cut(chosen, lambda r: r.rate.seq)
        data = [_contract_rate_view(conn, r) for r in page]
    return ExactJSONResponse({"data": data, "next_page": cursor})


def _contract_rate_view(conn: Connection, found: ContractRate) -> dict[str, Any]:
    rate, product = found.rate, found.product
    view: dict[str, Any] = {
        "rate_card_id": rate.rate_card_id,
        **product_fields(product),
        "entitled": found.entitled,
        "list_rate": rate_view(rate),
        "starting_at": format_rfc3339(found.starting_at_us),
    }
    if found.ending_before_us is not None:
        view["ending_before"] = optional_time(found.ending_before_us)
    if found.override_price is not None:
        view["override_rate"] = _override_view(conn, found, found.override_price)
    if rate.pricing_group_values:
        view["pricing_group_values"] = rate.pricing_group_values
    if rate.billing_frequency is not None:
        view["billing_frequency"] = rate.billing_frequency
    return view


def _override_view(conn: Connection, found: ContractRate, price: PriceSpec) -> dict[str, Any]:
    credit_type = {"id": found.rate.credit_type_id, "name": found.rate.credit_type_name}
    if (
        found.override_credit_type_id is not None
        and found.override_credit_type_id != found.rate.credit_type_id
    ):
        unit = credit_types.get_credit_type(conn, found.override_credit_type_id)
        credit_type = {"id": unit.id, "name": unit.name}
    return price_view(price, credit_type, found.rate.pricing_group_values)
