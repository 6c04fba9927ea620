"""Rate cards: /v1/contract-pricing/rate-cards/{create,get,update,list,archive}.

Rates live in routes/rates.py. `list` shows rate cards that are not archived; `get` shows any.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import Field

from meterline.api.catalog_fields import API_ACTOR, Instant, PositiveAmount
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.pagination import Page, paged
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import CustomFields, StrictModel, id_response, optional_time
from meterline.api.state import AppState, app_state
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID
from meterline.domain.timeutil import format_rfc3339
from meterline.services import rate_cards as service
from meterline.store import rate_cards as store
from meterline.store.rate_cards import RateCardAlias, RateCardRecord

router = APIRouter(route_class=ExactDecimalRoute)
Name = Annotated[str, Field(min_length=1, max_length=200)]


class AliasIn(StrictModel):
    name: str = Field(min_length=1, max_length=256)
    starting_at: Instant | None = None
    ending_before: Instant | None = None

    def record(self) -> RateCardAlias:
        return RateCardAlias(self.name, self.starting_at, self.ending_before)


class ConversionIn(StrictModel):
    custom_credit_type_id: str
    fiat_per_custom_credit: PositiveAmount


class RateCardCreate(StrictModel):
    name: Name
    description: str | None = None
    fiat_credit_type_id: str = USD_CENTS_CREDIT_TYPE_ID
    credit_type_conversions: list[ConversionIn] = Field(default_factory=list)
    aliases: list[AliasIn] = Field(default_factory=list)
    custom_fields: CustomFields = Field(default_factory=dict)


class RateCardUpdate(StrictModel):
    rate_card_id: str
    name: Name | None = None
    description: str | None = None
    aliases: list[AliasIn] | None = None  # replaces the rate card's aliases when given
    add_credit_type_conversions: list[ConversionIn] = Field(default_factory=list)


class RateCardId(StrictModel):
    id: str


class RateCardListFilter(StrictModel):
    """The list takes no filters; an empty object (what the SDK sends) is accepted."""


@router.post("/v1/contract-pricing/rate-cards/create")
def create_rate_card(body: RateCardCreate, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        rate_card_id = service.create_rate_card(
            conn,
            name=body.name,
            description=body.description,
            fiat_credit_type_id=body.fiat_credit_type_id,
            conversions=_conversions(body.credit_type_conversions),
            aliases=[a.record() for a in body.aliases],
            custom_fields=body.custom_fields,
            created_by=API_ACTOR,
        )
    return ExactJSONResponse(id_response(rate_card_id))


@router.post("/v1/contract-pricing/rate-cards/get")
def get_rate_card(body: RateCardId, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.read() as conn:
        return ExactJSONResponse({"data": rate_card_view(store.get_rate_card(conn, body.id))})


@router.post("/v1/contract-pricing/rate-cards/update")
def update_rate_card(body: RateCardUpdate, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        service.update_rate_card(
            conn,
            body.rate_card_id,
            name=body.name,
            description=body.description,
            aliases=None if body.aliases is None else [a.record() for a in body.aliases],
            add_conversions=_conversions(body.add_credit_type_conversions),
        )
    return ExactJSONResponse(id_response(body.rate_card_id))


@router.post("/v1/contract-pricing/rate-cards/list")
def list_rate_cards(
    body: RateCardListFilter | None = None,
    state: AppState = Depends(app_state),
    asked: Page[str] = Depends(paged("rate_cards", str)),
) -> ExactJSONResponse:
    with state.db.read() as conn:
        found = store.list_rate_cards(conn, after_id=asked.after, limit=asked.size + 1)
    page, cursor = asked.cut(found, lambda c: c.id)
    return ExactJSONResponse({"data": [rate_card_view(c) for c in page], "next_page": cursor})


@router.post("/v1/contract-pricing/rate-cards/archive")
def archive_rate_card(body: RateCardId, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        service.archive_rate_card(conn, body.id)
    return ExactJSONResponse(id_response(body.id))


def rate_card_view(card: RateCardRecord) -> dict[str, Any]:
    return {
        "id": card.id,
        "name": card.name,
        "description": card.description,
        "created_at": format_rfc3339(card.created_at_us),
        "created_by": card.created_by,
        "fiat_credit_type": {"id": card.fiat_credit_type_id, "name": card.fiat_credit_type_name},
        "credit_type_conversions": [
            {
                "custom_credit_type": {"id": c.custom_credit_type_id, "name": c.custom_credit_type_name},
                # The SDK types this one as a string: exact decimal text.
                "fiat_per_custom_credit": format(c.fiat_per_custom_credit, "f"),
            }
            for c in card.conversions
        ],
        "aliases": [_alias_view(a) for a in card.aliases],
        "custom_fields": card.custom_fields,
    }


def _alias_view(alias: RateCardAlias) -> dict[str, Any]:
    view: dict[str, Any] = {"name": alias.name}
    if alias.starting_at_us is not None:
        view["starting_at"] = optional_time(alias.starting_at_us)
    if alias.ending_before_us is not None:
        view["ending_before"] = optional_time(alias.ending_before_us)
    return view


def _conversions(given: list[ConversionIn]) -> list[tuple[str, Decimal]]:
    return [(c.custom_credit_type_id, c.fiat_per_custom_credit) for c in given]
