"""Rates: /v1/contract-pricing/rate-cards/{addRate,addRates,getRates}.

FLAT and TIERED rates are supported. Rate times must fall on hour boundaries, because usage is
kept per hour and a price change inside an hour could not be priced exactly. A new rate for the
same product and pricing group values as older ones takes over its own time range; the older
rates keep only what lies outside it (domain/rates.py). addRates applies its rates in order, all
or none. Tiers are graduated and the last tier is unbounded, even if it was given a size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field, field_validator, model_validator

from meterline.api.catalog_fields import HourInstant, Instant, NonNegativeAmount, PositiveAmount
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.pagination import Page, paged
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel, id_response, optional_time
from meterline.api.state import AppState, app_state
from meterline.domain.pricing import PriceSpec, Tier
from meterline.domain.products import ProductState
from meterline.domain.timeutil import format_rfc3339
from meterline.services import rates as service
from meterline.store import products
from meterline.store import rates as store
from meterline.store.rates import NewRate, RateRecord

router = APIRouter(route_class=ExactDecimalRoute)
NonEmpty = Annotated[str, Field(min_length=1)]
MAX_RATES_PER_REQUEST = 1000
# Rate fields of rate types meterline does not support yet, and why each is refused.
UNSUPPORTED_FIELDS = {
    "is_prorated": "only SUBSCRIPTION rates are prorated, and meterline does not support them yet",
    "quantity": "only SUBSCRIPTION rates have a quantity, and meterline does not support them yet",
    "custom_rate": "meterline does not support CUSTOM rates yet",
    "commit_rate": "meterline does not support commit rates yet",
}


class TierIn(StrictModel):
    price: NonNegativeAmount
    size: PositiveAmount | None = None


class RateIn(StrictModel):
    product_id: str
    entitled: bool
    rate_type: str
    starting_at: HourInstant
    ending_before: HourInstant | None = None
    price: NonNegativeAmount | None = None
    tiers: list[TierIn] | None = None
    credit_type_id: str | None = None
    pricing_group_values: dict[str, NonEmpty] = Field(default_factory=dict)
    billing_frequency: Literal["MONTHLY", "QUARTERLY", "ANNUAL", "WEEKLY"] | None = None
    is_prorated: Any = None
    quantity: Any = None
    custom_rate: Any = None
    commit_rate: Any = None

    @field_validator("rate_type", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _supported_fields(self) -> RateIn:
        for name, reason in UNSUPPORTED_FIELDS.items():
            if getattr(self, name) is not None:
                raise ValueError(f"{name}: {reason}")
        return self

    def new_rate(self) -> NewRate:
        return NewRate(
            product_id=self.product_id,
            entitled=self.entitled,
            rate_type=self.rate_type,
            starting_at_us=self.starting_at,
            ending_before_us=self.ending_before,
            price=self.price,
            tiers=None if self.tiers is None else tuple(Tier(t.price, t.size) for t in self.tiers),
            credit_type_id=self.credit_type_id,
            pricing_group_values=self.pricing_group_values,
            billing_frequency=self.billing_frequency,
        )


class RateAdd(RateIn):
    rate_card_id: str


class RatesAdd(StrictModel):
    rate_card_id: str
    rates: list[RateIn] = Field(min_length=1, max_length=MAX_RATES_PER_REQUEST)


class RateSelector(StrictModel):
    """A rate matches a selector when it matches every field the selector gives."""

    product_id: str | None = None
    product_tags: list[str] | None = None
    pricing_group_values: dict[str, str] | None = None
    partial_pricing_group_values: dict[str, str] | None = None
    billing_frequency: Literal["MONTHLY", "QUARTERLY", "ANNUAL", "WEEKLY"] | None = None

    def matches(self, rate: RateRecord, product: ProductState) -> bool:
        if self.product_id is not None and rate.product_id != self.product_id:
            return False
        if self.product_tags is not None and not set(self.product_tags) & set(product.tags):
            return False
        if self.pricing_group_values is not None and rate.pricing_group_values != self.pricing_group_values:
            return False
        if self.partial_pricing_group_values is not None and not _contains(
            rate.pricing_group_values, self.partial_pricing_group_values
        ):
            return False
        return self.billing_frequency is None or rate.billing_frequency == self.billing_frequency


class RatesQuery(StrictModel):
    rate_card_id: str
    at: Instant
    selectors: list[RateSelector] | None = None


@router.post("/v1/contract-pricing/rate-cards/addRate")
def add_rate(body: RateAdd, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        [seq] = service.add_rates(conn, body.rate_card_id, [body.new_rate()])
        added = store.get_rate(conn, seq)
    return ExactJSONResponse({"data": rate_view(added)})


@router.post("/v1/contract-pricing/rate-cards/addRates")
def add_rates(body: RatesAdd, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        service.add_rates(conn, body.rate_card_id, [r.new_rate() for r in body.rates], list_field="rates")
    return ExactJSONResponse(id_response(body.rate_card_id))


@router.post("/v1/contract-pricing/rate-cards/getRates")
def get_rates(
    body: RatesQuery,
    state: AppState = Depends(app_state),
    asked: Page[int] = Depends(paged("rates", int)),
) -> ExactJSONResponse:
    with state.db.read() as conn:
        found = store.rates_at(conn, body.rate_card_id, body.at, after_seq=asked.after)
        by_product = products.products_at(conn, [r.product_id for r in found], body.at)
    chosen = [r for r in found if selected(r, by_product[r.product_id], body.selectors)]
    page, cursor = asked.cut(chosen, lambda r: r.seq)
    return ExactJSONResponse(
        {"data": [scheduled_view(r, by_product[r.product_id]) for r in page], "next_page": cursor}
    )


def rate_view(rate: RateRecord) -> dict[str, Any]:
    credit_type = {"id": rate.credit_type_id, "name": rate.credit_type_name}
    return price_view(rate.price, credit_type, rate.pricing_group_values)


def price_view(
    price: PriceSpec, credit_type: dict[str, str], pricing_group_values: Mapping[str, str]
) -> dict[str, Any]:
    """Metronome's `Rate`: a FLAT or TIERED price in a pricing unit."""
    view: dict[str, Any] = {"rate_type": "TIERED" if price.is_tiered else "FLAT", "credit_type": credit_type}
    if price.is_tiered:
        view["tiers"] = [tier_view(t) for t in price.tiers]
    else:
        view["price"] = price.price
    if pricing_group_values:
        view["pricing_group_values"] = dict(pricing_group_values)
    return view


def scheduled_view(rate: RateRecord, product: ProductState) -> dict[str, Any]:
    view: dict[str, Any] = {
        **product_fields(product),
        "entitled": rate.entitled,
        "rate": rate_view(rate),
        "starting_at": format_rfc3339(rate.starting_at_us),
    }
    if rate.ending_before_us is not None:
        view["ending_before"] = optional_time(rate.ending_before_us)
    if rate.pricing_group_values:
        view["pricing_group_values"] = rate.pricing_group_values
    if rate.billing_frequency is not None:
        view["billing_frequency"] = rate.billing_frequency
    return view


def product_fields(product: ProductState) -> dict[str, Any]:
    """What a scheduled rate shows of its product."""
    return {
        "product_id": product.id,
        "product_name": product.name,
        "product_tags": list(product.tags),
        "product_custom_fields": dict(product.custom_fields),
    }


def tier_view(tier: Tier) -> dict[str, Any]:
    return {"price": tier.price} if tier.size is None else {"price": tier.price, "size": tier.size}


def selected(rate: RateRecord, product: ProductState, selectors: list[RateSelector] | None) -> bool:
    """No selectors: every rate. Otherwise rates matching any selector."""
    return not selectors or any(s.matches(rate, product) for s in selectors)


def _contains(values: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(values.get(k) == v for k, v in wanted.items())
