"""Customers: /v1/customers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from meterline.api.contract_fields import NotSupported
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.integration_fields import BillingConfigIn
from meterline.api.pagination import Page, paged
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import (
    CustomFields,
    StrictModel,
    id_response,
    optional_time,
    split_query_list,
)
from meterline.api.state import AppState, app_state, wake_evaluator
from meterline.domain.timeutil import format_rfc3339
from meterline.services import customers as service
from meterline.store import customers as store
from meterline.store.customers import CustomerRecord

router = APIRouter(route_class=ExactDecimalRoute)
Alias = Annotated[str, Field(min_length=1, max_length=256)]


class CustomerCreate(StrictModel):
    name: str = Field(min_length=1)
    ingest_aliases: list[Alias] = Field(default_factory=list)
    custom_fields: CustomFields = Field(default_factory=dict)
    external_id: Alias | None = Field(default=None, description="deprecated: use ingest_aliases")
    billing_config: BillingConfigIn | None = None
    customer_billing_provider_configurations: NotSupported = None
    customer_revenue_system_configurations: NotSupported = None


class CustomerArchive(StrictModel):
    id: str


class IngestAliases(StrictModel):
    ingest_aliases: list[Alias]


class CustomerName(StrictModel):
    name: str = Field(min_length=1)


def customer_summary(c: CustomerRecord) -> dict[str, Any]:
    return {
        "id": c.id,
        "external_id": c.ingest_aliases[0] if c.ingest_aliases else c.id,
        "ingest_aliases": c.ingest_aliases,
        "name": c.name,
        "custom_fields": c.custom_fields,
    }


def customer_detail(c: CustomerRecord) -> dict[str, Any]:
    return {
        **customer_summary(c),
        "created_at": format_rfc3339(c.created_at_us),
        "updated_at": format_rfc3339(c.updated_at_us),
        "archived_at": optional_time(c.archived_at_us),
        "customer_config": {"salesforce_account_id": None},
    }


@router.post("/v1/customers")
def create_customer(body: CustomerCreate, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    aliases = ([body.external_id] if body.external_id else []) + body.ingest_aliases
    with state.db.write() as conn:
        billing_config = None if body.billing_config is None else body.billing_config.stored()
        created = service.create_customer(conn, body.name, aliases, body.custom_fields, billing_config)
    wake_evaluator(state)
    return ExactJSONResponse({"data": customer_summary(created)})


@router.get("/v1/customers")
def list_customers(
    state: AppState = Depends(app_state),
    customer_ids: Annotated[list[str] | None, Query()] = None,
    ingest_alias: str | None = None,
    only_archived: bool = False,
    asked: Page[str] = Depends(paged("customers", str)),
) -> ExactJSONResponse:
    with state.db.read() as conn:
        found = store.list_customers(
            conn,
            after_id=asked.after,
            limit=asked.size + 1,
            customer_ids=split_query_list(customer_ids),
            ingest_alias=ingest_alias,
            only_archived=only_archived,
        )
    page, cursor = asked.cut(found, lambda c: c.id)
    return ExactJSONResponse({"data": [customer_detail(c) for c in page], "next_page": cursor})


@router.get("/v1/customers/{customer_id}")
def get_customer(customer_id: str, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.read() as conn:
        return ExactJSONResponse({"data": customer_detail(store.get_customer(conn, customer_id))})


@router.post("/v1/customers/archive")
def archive_customer(body: CustomerArchive, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        service.archive_customer(conn, body.id)
    return ExactJSONResponse(id_response(body.id))


@router.post("/v1/customers/{customer_id}/setIngestAliases")
def set_ingest_aliases(customer_id: str, body: IngestAliases, state: AppState = Depends(app_state)) -> None:
    with state.db.write() as conn:
        service.set_ingest_aliases(conn, customer_id, body.ingest_aliases)


@router.post("/v1/customers/{customer_id}/setName")
def set_name(customer_id: str, body: CustomerName, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        return ExactJSONResponse({"data": customer_summary(service.set_name(conn, customer_id, body.name))})
