"""Billable metrics: /v1/billable-metrics and /v1/customers/{id}/billable-metrics."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field, field_validator

from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.pagination import Page, paged
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import CustomFields, StrictModel, id_response, optional_time
from meterline.api.state import AppState, app_state
from meterline.services import billable_metrics as service
from meterline.services.billable_metrics import NewMetric
from meterline.store import billable_metrics as store
from meterline.store import customers
from meterline.store.billable_metrics import MetricRecord

router = APIRouter(route_class=ExactDecimalRoute)
AggregationName = Literal["COUNT", "SUM", "MAX", "UNIQUE", "LATEST"]


class EventTypeFilter(StrictModel):
    in_values: list[str] | None = None
    not_in_values: list[str] | None = None


class PropertyFilter(StrictModel):
    name: str = Field(min_length=1, max_length=256)
    exists: bool | None = None
    in_values: list[str] | None = None
    not_in_values: list[str] | None = None


class MetricCreate(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    aggregation_type: AggregationName | None = None
    aggregation_key: str | None = Field(default=None, min_length=1, max_length=256)
    event_type_filter: EventTypeFilter | None = None
    property_filters: list[PropertyFilter] = Field(default_factory=list)
    group_keys: list[list[str]] = Field(default_factory=list)
    custom_fields: CustomFields = Field(default_factory=dict)
    sql: str | None = None

    @field_validator("aggregation_type", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    def new_metric(self) -> NewMetric:
        return NewMetric(
            name=self.name,
            aggregation_type=self.aggregation_type,
            aggregation_key=self.aggregation_key,
            event_type_filter=self.event_type_filter.model_dump(exclude_none=True)
            if self.event_type_filter
            else None,
            property_filters=[f.model_dump(exclude_none=True) for f in self.property_filters],
            group_keys=self.group_keys,
            custom_fields=self.custom_fields,
            sql=self.sql,
        )


class MetricArchive(StrictModel):
    id: str


class MetricRename(StrictModel):
    name: str = Field(min_length=1, max_length=200)


def metric_view(m: MetricRecord) -> dict[str, Any]:
    return {
        "id": m.id,
        "name": m.name,
        "aggregation_type": m.aggregation_type,
        "aggregation_key": m.aggregation_key,
        "event_type_filter": m.event_type_filter,
        "property_filters": m.property_filters,
        "group_keys": m.group_keys,
        "custom_fields": m.custom_fields,
        "archived_at": optional_time(m.archived_at_us),
        "sql": None,
    }


@router.post("/v1/billable-metrics/create")
def create_metric(body: MetricCreate, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        metric_id = service.create_metric(conn, body.new_metric())
    return ExactJSONResponse(id_response(metric_id))


@router.get("/v1/billable-metrics/{billable_metric_id}")
def get_metric(billable_metric_id: str, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.read() as conn:
        return ExactJSONResponse({"data": metric_view(store.get_metric(conn, billable_metric_id))})


@router.put("/v1/billable-metrics/{billable_metric_id}")
def rename_metric(
    billable_metric_id: str, body: MetricRename, state: AppState = Depends(app_state)
) -> ExactJSONResponse:
    with state.db.write() as conn:
        store.rename_metric(conn, billable_metric_id, body.name)
    return ExactJSONResponse(id_response(billable_metric_id))


@router.get("/v1/billable-metrics")
def list_metrics(
    state: AppState = Depends(app_state),
    include_archived: bool = False,
    asked: Page[str] = Depends(paged("billable_metrics", str)),
) -> ExactJSONResponse:
    return ExactJSONResponse(_metric_page(state, include_archived, asked))


@router.get("/v1/customers/{customer_id}/billable-metrics")
def list_customer_metrics(
    customer_id: str,
    state: AppState = Depends(app_state),
    include_archived: bool = False,
    on_current_plan: bool = False,
    asked: Page[str] = Depends(paged("customer_billable_metrics", str)),
) -> ExactJSONResponse:
    # Every active metric applies to every customer until contracts narrow it to their products.
    with state.db.read() as conn:
        customers.get_customer(conn, customer_id)
    return ExactJSONResponse(_metric_page(state, include_archived, asked))


@router.post("/v1/billable-metrics/archive")
def archive_metric(body: MetricArchive, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        store.archive_metric(conn, body.id)
    return ExactJSONResponse(id_response(body.id))


def _metric_page(state: AppState, include_archived: bool, asked: Page[str]) -> dict[str, Any]:
    with state.db.read() as conn:
        found = store.list_metrics(
            conn, include_archived=include_archived, after_id=asked.after, limit=asked.size + 1
        )
    page, cursor = asked.cut(found, lambda m: m.id)
    return {"data": [metric_view(m) for m in page], "next_page": cursor}
