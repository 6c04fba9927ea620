"""Alerts: POST /v1/alerts/create and /v1/alerts/archive.

A new alert is evaluated by the evaluator (never in the request): for one customer at once, for
every customer in bounded chunks, so creating an all-customers alert never stalls ingest.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field, model_validator

from meterline.api.catalog_fields import NonNegativeAmount
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel, id_response
from meterline.api.state import AppState, app_state, wake_evaluator
from meterline.domain.alerts import UNSUPPORTED, AlertType, Measure, kind_of
from meterline.domain.errors import Conflict, InvalidInput, NotFound
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID
from meterline.domain.partitions import PARTITION_COUNT
from meterline.engine.alert_sweeps import TRIGGERED_BY_CREATION
from meterline.store import alert_resolutions, billable_metrics, credit_types, customers
from meterline.store import alerts as store

router = APIRouter(route_class=ExactDecimalRoute)
Entity = Literal["Contract", "Commit", "ContractCredit", "ContractCreditOrCommit"]
INVOICE_TYPES = {"USAGE", "SCHEDULED", "USAGE_CONSOLIDATED"}


class CustomFieldFilter(StrictModel):
    entity: Entity
    key: str = Field(min_length=1)
    value: str


class GroupValue(StrictModel):
    key: str = Field(min_length=1)
    value: str | None = None


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
    seat_filter: dict[str, Any] | None = None
    alert_specifiers: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _combinations(self) -> AlertCreate:
        if self.alert_type in UNSUPPORTED:
            raise ValueError(f"alert_type: {self.alert_type.value}: {UNSUPPORTED[self.alert_type]}")
        for name, why in _UNSUPPORTED_FIELDS.items():
            if getattr(self, name) is not None:
                raise ValueError(f"{name}: {why}")
        if self.access_type == "QUANTITY":
            raise ValueError(
                "access_type: QUANTITY balances are not supported by meterline; every balance is SPEND"
            )
        kind = kind_of(self.alert_type)
        if kind.uses_metric and not self.billable_metric_id:
            raise ValueError(f"billable_metric_id: is required for {self.alert_type.value} alerts")
        if not kind.uses_metric and self.billable_metric_id:
            raise ValueError(
                f"billable_metric_id: only usage_threshold_reached alerts take one, not {self.alert_type.value}"
            )
        if self.invoice_types_filter is not None and kind.measure is not Measure.INVOICE_TOTAL:
            raise ValueError("invoice_types_filter: only invoice total alerts take one")
        unknown = set(self.invoice_types_filter or ()) - INVOICE_TYPES
        if unknown:
            raise ValueError(f"invoice_types_filter: unknown invoice type {sorted(unknown)[0]!r}")
        if self.group_values and self.alert_type is not AlertType.SPEND_THRESHOLD_REACHED:
            raise ValueError("group_values: only spend_threshold_reached alerts take them")
        if self.custom_field_filters and kind.pool is None:
            raise ValueError(
                f"custom_field_filters: {self.alert_type.value} alerts do not look at commits or credits"
            )
        if kind.measure is Measure.PERCENTAGE and self.threshold > 100:
            raise ValueError("threshold: a percentage must be between 0 and 100")
        return self


_UNSUPPORTED_FIELDS = {
    "credit_grant_type_filters": "meterline has no legacy credit grants; filter contract credits with custom_field_filters",
    "plan_id": "legacy plans are not supported by meterline; alerts apply to contracts",
    "seat_filter": "seat-based subscriptions are not supported by meterline yet",
    "alert_specifiers": "alert specifiers are not supported by meterline yet; use custom_field_filters",
}


class AlertArchive(StrictModel):
    id: str
    release_uniqueness_key: bool = False


@router.post("/v1/alerts/create")
def create_alert(body: AlertCreate, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        _check_references(conn, body)
        if body.uniqueness_key is not None and store.uniqueness_key_taken(conn, body.uniqueness_key):
            raise Conflict("This uniqueness key has already been used.")
        alert_id = store.create_alert(conn, _values(body))
        store.start_sweep(conn, alert_id, TRIGGERED_BY_CREATION, _sweep_partitions(conn, body.customer_id))
    wake_evaluator(state)
    return ExactJSONResponse(id_response(alert_id))


@router.post("/v1/alerts/archive")
def archive_alert(body: AlertArchive, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        alert = store.archive_alert(conn, body.id, body.release_uniqueness_key)
        if alert.archived_at_us is None:
            # An application blocking a customer on this alert learns it no longer applies: the
            # engine resolves the in-alarm states (it alone writes them) and notifies each.
            alert_resolutions.request_for_alert(conn, alert.id, "alert_archived")
    wake_evaluator(state)
    return ExactJSONResponse(id_response(body.id))


def _sweep_partitions(conn: Any, customer_id: str | None) -> list[int]:
    """Whose engines measure a new alert: the customer's home partition, or every partition."""
    if customer_id is None:
        return list(range(PARTITION_COUNT))
    return list(customers.home_partitions(conn, [customer_id]).values())


def _check_references(conn: Any, body: AlertCreate) -> None:
    if body.customer_id is not None:
        customers.active_customer(conn, body.customer_id)
    # A body naming what does not exist is a bad request (the customer is the resource: 404).
    if body.credit_type_id is not None:
        try:
            credit_type = credit_types.get_credit_type(conn, body.credit_type_id)
        except NotFound as missing:
            raise InvalidInput(missing.message) from None
        if credit_type.archived_at_us is not None:
            raise InvalidInput(f"credit_type_id: pricing unit {credit_type.id} is archived")
    if body.billable_metric_id is not None:
        try:
            metric = billable_metrics.get_metric(conn, body.billable_metric_id)
        except NotFound as missing:
            raise InvalidInput(missing.message) from None
        if metric.archived_at_us is not None:
            raise InvalidInput(f"billable_metric_id: billable metric {metric.id} is archived")
    if body.group_values:
        keys = [g.key for g in body.group_values]
        if len(set(keys)) != len(keys):
            raise InvalidInput("group_values: each key may appear once")


def _values(body: AlertCreate) -> dict[str, Any]:
    kind = kind_of(body.alert_type)
    money = kind.measure in (Measure.SPEND, Measure.INVOICE_TOTAL, Measure.BALANCE, Measure.PERCENTAGE)
    return {
        "name": body.name,
        "alert_type": body.alert_type.value,
        "threshold": body.threshold,
        "credit_type_id": (body.credit_type_id or USD_CENTS_CREDIT_TYPE_ID) if money else body.credit_type_id,
        "customer_id": body.customer_id,
        "billable_metric_id": body.billable_metric_id,
        "invoice_types_filter": body.invoice_types_filter,
        "group_values": [g.model_dump() for g in body.group_values] if body.group_values else None,
        "custom_field_filters": [f.model_dump() for f in body.custom_field_filters]
        if body.custom_field_filters
        else None,
        "credit_grant_type_filters": None,
        "evaluate_on_create": body.evaluate_on_create,
        "uniqueness_key": body.uniqueness_key,
    }
