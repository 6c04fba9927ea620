"""Invoices and costs: GET /v1/customers/{id}/invoices[/{invoice_id}], GET /v1/customers/{id}/costs.

Finalized invoices are read as stored; drafts are derived from the usage aggregates as of now
(`services.billing`), as the engine derives them. Nothing here rescans events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends
from sqlalchemy import Connection

from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.pagination import Page, paged
from meterline.api.responses import ExactJSONResponse
from meterline.api.state import AppState, app_state
from meterline.domain.errors import InvalidInput, NotFound
from meterline.domain.timeutil import format_rfc3339, now_us, to_us
from meterline.engine.invoice_lines import line_items
from meterline.services import billing
from meterline.store import contracts, credit_types, customers
from meterline.store.invoices import DATED, VOID, InvoiceRecord

router = APIRouter(route_class=ExactDecimalRoute)


@router.get("/v1/customers/{customer_id}/invoices")
def list_invoices(
    customer_id: str,
    state: AppState = Depends(app_state),
    status: str | None = None,
    starting_on: datetime | None = None,
    ending_before: datetime | None = None,
    credit_type_id: str | None = None,
    contract_id: str | None = None,
    type: str | None = None,
    sort: Literal["date_asc", "date_desc"] = "date_asc",
    skip_zero_qty_line_items: bool = False,
    asked: Page[int] = Depends(paged("invoices", int)),
) -> ExactJSONResponse:
    start_us, end_us = _bound(starting_on, "starting_on"), _bound(ending_before, "ending_before")
    with state.db.read() as conn:
        customers.get_customer(conn, customer_id)
        found = [
            inv
            for inv in _invoices(conn, customer_id, state)
            if (status is None or inv.status == status.upper())
            and (start_us is None or inv.start_us >= start_us)  # periods starting at or after
            and (end_us is None or inv.end_us <= end_us)  # and ending by ending_before
            and (credit_type_id is None or inv.credit_type_id == credit_type_id)
            and (contract_id is None or inv.contract_id == contract_id)
            and (type is None or inv.type == type.upper())
        ]
        shown = shown_with(conn, customer_id)
    if sort == "date_desc":
        found.reverse()
    page, cursor = _at_offset(found, asked)
    return ExactJSONResponse(
        {"data": [invoice_view(inv, shown, skip_zero_qty_line_items) for inv in page], "next_page": cursor}
    )


@router.get("/v1/customers/{customer_id}/invoices/{invoice_id}")
def get_invoice(
    customer_id: str,
    invoice_id: str,
    state: AppState = Depends(app_state),
    skip_zero_qty_line_items: bool = False,
) -> ExactJSONResponse:
    with state.db.read() as conn:
        customers.get_customer(conn, customer_id)
        record = next((inv for inv in _invoices(conn, customer_id, state) if inv.id == invoice_id), None)
        if record is None:
            raise NotFound(f"invoice_id: no invoice {invoice_id} for customer {customer_id}")
        shown = shown_with(conn, customer_id)
    return ExactJSONResponse({"data": invoice_view(record, shown, skip_zero_qty_line_items)})


@router.get("/v1/customers/{customer_id}/costs")
def list_costs(
    customer_id: str,
    starting_on: datetime,
    ending_before: datetime,
    state: AppState = Depends(app_state),
    asked: Page[int] = Depends(paged("costs", int)),
) -> ExactJSONResponse:
    """Usage charges per credit type, per invoice period overlapping the range (before drawdown)."""
    start_us, end_us = _bound(starting_on, "starting_on"), _bound(ending_before, "ending_before")
    assert start_us is not None and end_us is not None
    if end_us <= start_us:
        raise InvalidInput("ending_before: must be after starting_on")
    with state.db.read() as conn:
        customers.get_customer(conn, customer_id)
        found = [
            i
            for i in _invoices(conn, customer_id, state)
            # A voided invoice bills nothing; a SCHEDULED or TRUEUP one bills no usage (and spans no period).
            if i.end_us > start_us and i.start_us < end_us and i.status != VOID and i.type not in DATED
        ]
        names = credit_types.names_by_id(conn)
    page, cursor = _at_offset(found, asked)
    return ExactJSONResponse({"data": [_costs(inv, names) for inv in page], "next_page": cursor})


def _invoices(conn: Connection, customer_id: str, state: AppState) -> list[InvoiceRecord]:
    return billing.customer_billing(conn, customer_id, state.settings.open_horizon_us(), now_us()).invoices


def _line_items(record: InvoiceRecord, names: dict[str, str]) -> list[dict[str, Any]]:
    """A finalized invoice's as stored; a draft's rendered from its computation."""
    if record.computation is None:
        return record.line_items
    return line_items(record.computation, names, record.start_us, record.end_us)


@dataclass(frozen=True, slots=True)
class ShownWith:
    """What an invoice is shown with besides itself."""

    credit_type_names: dict[str, str]
    contract_custom_fields: dict[str, dict[str, str]]  # by contract id


def shown_with(conn: Connection, customer_id: str) -> ShownWith:
    found = contracts.list_contracts(conn, customer_id, include_archived=True)
    return ShownWith(credit_types.names_by_id(conn), {c.id: c.custom_fields for c in found})


def invoice_view(record: InvoiceRecord, shown: ShownWith, skip_zero_qty: bool = False) -> dict[str, Any]:
    names = shown.credit_type_names
    items = _line_items(record, names)
    if skip_zero_qty:
        items = [item for item in items if item.get("quantity", 1) != 0]
    return {
        "id": record.id,
        "customer_id": record.customer_id,
        "contract_id": record.contract_id,
        "credit_type": {
            "id": record.credit_type_id,
            "name": names.get(record.credit_type_id, record.credit_type_id),
        },
        "type": record.type,
        "status": record.status,
        "start_timestamp": format_rfc3339(record.start_us),
        "end_timestamp": format_rfc3339(record.end_us),
        "issued_at": format_rfc3339(record.finalized_at_us) if record.finalized_at_us else None,
        "subtotal": record.subtotal,
        "total": record.total,
        "line_items": items,
        "invoice_adjustments": [],
        "custom_fields": {},  # meterline keeps no custom fields on invoices
        "contract_custom_fields": shown.contract_custom_fields.get(record.contract_id, {}),
    } | _regenerated_from(record)


def _regenerated_from(record: InvoiceRecord) -> dict[str, str]:
    found = record.regenerated_from_invoice_id
    return {} if found is None else {"regenerated_from_invoice_id": found}


def _costs(record: InvoiceRecord, names: dict[str, str]) -> dict[str, Any]:
    per_type: dict[str, dict[str, Any]] = {}
    for item in _line_items(record, names):
        if item.get("type") not in ("usage", "subscription"):  # charges, before drawdown
            continue
        credit_type = item["credit_type"]
        entry = per_type.setdefault(
            credit_type["id"], {"name": credit_type["name"], "cost": Decimal(0), "line_item_breakdown": []}
        )
        entry["cost"] += item["total"]
        entry["line_item_breakdown"].append(
            {
                "name": item["name"],
                "cost": item["total"],
                "group_key": item.get("group_key"),
                "group_value": item.get("group_value"),
            }
        )
    return {
        "start_timestamp": format_rfc3339(record.start_us),
        "end_timestamp": format_rfc3339(record.end_us),
        "credit_types": per_type,
    }


def _at_offset(found: list[InvoiceRecord], asked: Page[int]) -> tuple[list[InvoiceRecord], str | None]:
    """These lists are computed whole, then paged by position: their cursors hold an index."""
    offset = asked.after or 0
    return asked.cut(found[offset : offset + asked.size + 1], lambda _inv: offset + asked.size)


def _bound(moment: datetime | None, name: str) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise InvalidInput(f"{name}: must include a UTC offset or Z")
    return to_us(moment)
