"""Pricing units: /v1/credit-types."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import Field

from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.pagination import Page, paged
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel, id_response
from meterline.api.state import AppState, app_state
from meterline.services import credit_types as service
from meterline.store import credit_types as store

router = APIRouter(route_class=ExactDecimalRoute)


class CreditTypeCreate(StrictModel):
    name: str = Field(min_length=1, max_length=200)


class CreditTypeArchive(StrictModel):
    id: str


@router.get("/v1/credit-types/list")
def list_credit_types(
    state: AppState = Depends(app_state), asked: Page[str] = Depends(paged("credit_types", str))
) -> ExactJSONResponse:
    with state.db.read() as conn:
        found = store.list_credit_types(conn, after_id=asked.after, limit=asked.size + 1)
    page, cursor = asked.cut(found, lambda c: c.id)
    return ExactJSONResponse(
        {
            "data": [{"id": c.id, "name": c.name, "is_currency": c.is_currency} for c in page],
            "next_page": cursor,
        }
    )


@router.post("/v1/credit-types/create")
def create_credit_type(body: CreditTypeCreate, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        return ExactJSONResponse(id_response(store.create_credit_type(conn, body.name)))


@router.post("/v1/credit-types/archive")
def archive_credit_type(body: CreditTypeArchive, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        service.archive_credit_type(conn, body.id)
    return ExactJSONResponse(id_response(body.id))
