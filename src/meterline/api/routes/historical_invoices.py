"""/v1/contracts/createHistoricalInvoices: billing history moved over, as FINALIZED invoices
priced by each contract (`services.historical_invoices`); with `preview`, shown and not stored.

A line's quantity is `quantity`, or the sum of its `subtotals_with_quantity`. `breakdown_granularity`
changes no amount and is accepted; `billable_status: "unbillable"` and invoice `custom_fields`
(meterline keeps none on invoices) are refused with a 400 naming them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import Field, model_validator

from meterline.api.catalog_fields import Instant, NonNegativeAmount
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import CustomFields, StrictModel
from meterline.api.routes.invoices import invoice_view, shown_with
from meterline.api.state import AppState, app_state, wake_evaluator
from meterline.domain.timeutil import now_us
from meterline.services import historical_invoices as service
from meterline.services.historical_invoices import HistoricalInvoice, HistoricalLine

router = APIRouter(route_class=ExactDecimalRoute)
MAX_INVOICES = 100
MAX_LINES = 1000


class SubtotalIn(StrictModel):
    inclusive_start_date: Instant
    exclusive_end_date: Instant
    quantity: NonNegativeAmount


class UsageLineIn(StrictModel):
    product_id: str
    inclusive_start_date: Instant
    exclusive_end_date: Instant
    quantity: NonNegativeAmount | None = None
    subtotals_with_quantity: list[SubtotalIn] | None = Field(default=None, max_length=MAX_LINES)
    pricing_group_values: dict[str, str] = Field(default_factory=dict)
    presentation_group_values: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_quantity(self) -> UsageLineIn:
        if self.quantity is None and self.subtotals_with_quantity is None:
            raise ValueError("quantity: give it, or subtotals_with_quantity")
        parts = self.subtotals_with_quantity
        if (
            self.quantity is not None
            and parts is not None
            and sum(p.quantity for p in parts) != self.quantity
        ):
            raise ValueError("quantity: must be the sum of subtotals_with_quantity")
        return self

    def line(self) -> HistoricalLine:
        parts = self.subtotals_with_quantity or ()
        quantity = (
            self.quantity if self.quantity is not None else sum((p.quantity for p in parts), Decimal(0))
        )
        return HistoricalLine(
            product_id=self.product_id,
            start_us=self.inclusive_start_date,
            end_us=self.exclusive_end_date,
            quantity=quantity,
            pricing_group_values=self.pricing_group_values,
            presentation_group_values=self.presentation_group_values,
        )


class InvoiceIn(StrictModel):
    customer_id: str
    contract_id: str
    credit_type_id: str
    inclusive_start_date: Instant
    exclusive_end_date: Instant
    issue_date: Instant
    usage_line_items: list[UsageLineIn] = Field(max_length=MAX_LINES)
    billable_status: Literal["billable", "unbillable"] = "billable"
    breakdown_granularity: Literal["HOUR", "DAY"] | None = None
    custom_fields: CustomFields | None = None

    @model_validator(mode="after")
    def _supported(self) -> InvoiceIn:
        if self.billable_status != "billable":
            raise ValueError("billable_status: meterline does not support unbillable invoices yet")
        if self.custom_fields:
            raise ValueError("custom_fields: meterline keeps no custom fields on invoices")
        return self

    def invoice(self) -> HistoricalInvoice:
        return HistoricalInvoice(
            customer_id=self.customer_id,
            contract_id=self.contract_id,
            credit_type_id=self.credit_type_id,
            start_us=self.inclusive_start_date,
            end_us=self.exclusive_end_date,
            issued_us=self.issue_date,
            lines=tuple(line.line() for line in self.usage_line_items),
        )


class HistoricalInvoicesIn(StrictModel):
    invoices: list[InvoiceIn] = Field(min_length=1, max_length=MAX_INVOICES)
    preview: bool


@router.post("/v1/contracts/createHistoricalInvoices")
def create_historical_invoices(
    body: HistoricalInvoicesIn, state: AppState = Depends(app_state)
) -> ExactJSONResponse:
    given = [i.invoice() for i in body.invoices]
    with state.db.write() as conn:
        made = service.create_historical_invoices(conn, given, now_us(), preview=body.preview)
        shown = {c: shown_with(conn, c) for c in {r.customer_id for r in made}}
        data = [invoice_view(record, shown[record.customer_id]) for record in made]
    if not body.preview:
        wake_evaluator(state)
    return ExactJSONResponse({"data": data})
