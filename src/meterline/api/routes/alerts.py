"""Alerts: POST /v1/alerts/create and /v1/alerts/archive (the rules: `services.alerts`)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field

from meterline.api.catalog_fields import NonNegativeAmount
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel, id_response
from meterline.api.state import AppState, app_state, wake_evaluator
from meterline.domain.alerts import DEFAULT_FORECAST_WINDOW_HOURS, MAX_FORECAST_WINDOW_HOURS, AlertType
from meterline.services import alerts as service
from meterline.services.alerts import NewAlert

router = APIRouter(route_class=ExactDecimalRoute)
Entity = Literal["Contract", "Commit", "ContractCredit", "ContractCreditOrCommit"]


class CustomFieldFilter(StrictModel):
    entity: Entity
    key: str = Field(min_length=1)
    value: str


class GroupValue(StrictModel):
    key: str = Field(min_length=1)
    value: str | None = None


class SeatFilter(StrictModel):
    seat_group_key: str = Field(min_length=1, max_length=200)
    seat_group_value: str | None = Field(default=None, min_length=1, max_length=200)  # None: every seat


class AlertCreate(StrictModel):
    alert_type: AlertType
    name: str = Field(min_length=1, max_length=200)
    threshold: NonNegativeAmount
    billable_metric_id: str | None = None
    credit_type_id: str | None = None
    customer_id: str | None = None
    evaluate_on_create: bool = True
    uniqueness_key: str | None = Field(default=None, min_length=1, max_length=128)
    invoice_types_filter: list[str] | None = None
    group_values: list[GroupValue] | None = Field(default=None, max_length=3)
    custom_field_filters: list[CustomFieldFilter] | None = None
    credit_grant_type_filters: list[str] | None = None
    access_type: Literal["SPEND", "QUANTITY"] | None = None
    plan_id: str | None = None
    seat_filter: SeatFilter | None = None
    alert_specifiers: list[dict[str, Any]] | None = None
    # meterline's extension (the official SDK sends it with extra_body={"blocking": true}): deny
    # the customer access while the alert is in alarm for it (POST /v1/access/check).
    blocking: bool = Field(
        default=False,
        description="meterline extension: deny the customer access while this alert is in alarm "
        "(/v1/access/check); not for days-remaining types, and only with evaluate_on_create",
    )
    # meterline's extension (extra_body={"forecast_window_hours": 6}): the pace a
    # spend_forecast_reached alert projects spend at is that of the usage of the last N hours.
    forecast_window_hours: int | None = Field(
        default=None,
        ge=1,
        le=MAX_FORECAST_WINDOW_HOURS,
        description="meterline extension, spend_forecast_reached alerts only (also a meterline "
        "extension: in alarm when the current billing period's spend, projected to the period's "
        "end at the pace of the usage of the last forecast_window_hours hours, reaches the "
        f"threshold): the pace window, in hours (default {DEFAULT_FORECAST_WINDOW_HOURS})",
    )

    def new_alert(self) -> NewAlert:
        return NewAlert(
            alert_type=self.alert_type,
            name=self.name,
            threshold=self.threshold,
            billable_metric_id=self.billable_metric_id,
            credit_type_id=self.credit_type_id,
            customer_id=self.customer_id,
            evaluate_on_create=self.evaluate_on_create,
            uniqueness_key=self.uniqueness_key,
            invoice_types_filter=self.invoice_types_filter,
            group_values=[g.model_dump() for g in self.group_values]
            if self.group_values is not None
            else None,
            custom_field_filters=[f.model_dump() for f in self.custom_field_filters]
            if self.custom_field_filters is not None
            else None,
            access_type=self.access_type,
            credit_grant_type_filters=self.credit_grant_type_filters,
            plan_id=self.plan_id,
            seat_filter=self.seat_filter.model_dump(exclude_none=True)
            if self.seat_filter is not None
            else None,
            alert_specifiers=self.alert_specifiers,
            blocking=self.blocking,
            forecast_window_hours=self.forecast_window_hours,
        )


class AlertArchive(StrictModel):
    id: str
    release_uniqueness_key: bool = False


@router.post("/v1/alerts/create")
def create_alert(body: AlertCreate, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        alert_id = service.create_alert(conn, body.new_alert())
    wake_evaluator(state)
    return ExactJSONResponse(id_response(alert_id))


@router.post("/v1/alerts/archive")
def archive_alert(body: AlertArchive, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        service.archive_alert(conn, body.id, body.release_uniqueness_key)
    wake_evaluator(state)
    return ExactJSONResponse(id_response(body.id))
