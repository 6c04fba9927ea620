"""Spend limits (meterline's extension): POST /v1/spend-limits/set, /get and /list (the rules:
`services.spend_limits`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from meterline.api.catalog_fields import NonNegativeAmount
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.pagination import Page, paged
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel
from meterline.api.state import AppState, app_state, wake_evaluator
from meterline.domain.timeutil import now_us
from meterline.services import spend_limits as service
from meterline.services.spend_limits import SpendLimitView

router = APIRouter(route_class=ExactDecimalRoute, tags=["meterline extensions: spend control"])
Ref = Annotated[str, Field(min_length=1, max_length=256)]
LIMIT_DOC = "omitted: left as it is; null: removed"


class SpendLimitDoc(BaseModel):
    customer_id: str
    credit_type_id: str
    soft_limit: Decimal | None
    hard_limit: Decimal | None
    current_spend: Decimal = Field(
        description="usage spend of the current billing period before drawdown, in the credit type"
    )
    status: Literal["ok", "soft_limit_reached", "hard_limit_reached"]
    soft_limit_alert_id: str | None = Field(description="its spend_threshold_reached alert")
    hard_limit_alert_id: str | None = Field(description="its spend_threshold_reached alert (blocking)")


class OneLimitDoc(BaseModel):
    data: SpendLimitDoc


class LimitPageDoc(BaseModel):
    data: list[SpendLimitDoc]
    next_page: str | None


ONE: dict[int | str, dict[str, Any]] = {200: {"model": OneLimitDoc, "description": "the limits"}}
PAGE: dict[int | str, dict[str, Any]] = {200: {"model": LimitPageDoc, "description": "a page of limits"}}


class SpendLimitsSet(StrictModel):
    customer_id: Ref
    credit_type_id: Ref | None = Field(default=None, description="default: USD (cents)")
    soft_limit: NonNegativeAmount | None = Field(default=None, description=LIMIT_DOC)
    hard_limit: NonNegativeAmount | None = Field(default=None, description=LIMIT_DOC)

    def changes(self) -> dict[str, Any]:
        """The limits the body names (null included): a limit it leaves out stays as it is."""
        given = self.model_fields_set
        return {kind: getattr(self, f"{kind}_limit") for kind in service.LIMITS if f"{kind}_limit" in given}


class SpendLimitsGet(StrictModel):
    customer_id: Ref
    credit_type_id: Ref | None = Field(default=None, description="default: USD (cents)")


class SpendLimitsList(StrictModel):
    credit_type_id: Ref | None = Field(default=None, description="only the limits in this credit type")


@router.post("/v1/spend-limits/set", responses=ONE)
def set_spend_limits(body: SpendLimitsSet, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        service.set_limits(conn, body.customer_id, body.credit_type_id, body.changes())
    wake_evaluator(state)  # a new limit is measured at once, a replaced one resolved
    with state.db.read() as conn:  # derived after the commit: the write lock is not held for it
        view = service.limits_of(
            conn, body.customer_id, body.credit_type_id, now_us(), state.settings.open_horizon_us()
        )
    return ExactJSONResponse({"data": limit_view(view)})


@router.post("/v1/spend-limits/get", responses=ONE)
def get_spend_limits(body: SpendLimitsGet, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.read() as conn:
        view = service.limits_of(
            conn, body.customer_id, body.credit_type_id, now_us(), state.settings.open_horizon_us()
        )
    return ExactJSONResponse({"data": limit_view(view)})


@router.post("/v1/spend-limits/list", responses=PAGE)
def list_spend_limits(
    body: SpendLimitsList | None = None,
    state: AppState = Depends(app_state),
    asked: Page[tuple[str, str]] = Depends(paged("spend_limits", tuple[str, str])),
) -> ExactJSONResponse:
    credit_type_id = body.credit_type_id if body is not None else None
    with state.db.read() as conn:
        found = service.page_of_limits(
            conn, asked.after, asked.size + 1, credit_type_id, now_us(), state.settings.open_horizon_us()
        )
    page, cursor = asked.cut(found, lambda v: (v.customer_id, v.credit_type_id))
    return ExactJSONResponse({"data": [limit_view(v) for v in page], "next_page": cursor})


def limit_view(view: SpendLimitView) -> dict[str, Any]:
    return {
        "customer_id": view.customer_id,
        "credit_type_id": view.credit_type_id,
        "soft_limit": view.soft_limit,
        "hard_limit": view.hard_limit,
        "current_spend": view.current_spend,
        "status": view.status,
        "soft_limit_alert_id": view.soft_limit_alert_id,
        "hard_limit_alert_id": view.hard_limit_alert_id,
    }
