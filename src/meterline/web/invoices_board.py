"""The invoices dashboard: the customer's drafts (derived as of now, never stored) and finalized
invoices, newest first, each with its line items, rendered exactly as the API shows them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from meterline.api.routes.invoices import ShownWith, invoice_view
from meterline.services import billing
from meterline.settings import Settings
from meterline.store import credit_types

# invoice_status_filter -> the statuses shown (Metronome's values).
STATUSES = {
    "VOID": {"VOID"},
    "FINALIZED": {"FINALIZED"},
    "DRAFT": {"DRAFT"},
    "FINALIZED_AND_DRAFT": {"FINALIZED", "DRAFT"},
}


def invoices(
    conn: Connection, settings: Settings, customer_id: str, options: dict[str, str], now_us: int
) -> list[dict[str, Any]]:
    state = billing.customer_billing(conn, customer_id, settings.open_horizon_us(), now_us)
    shown = ShownWith(credit_types.names_by_id(conn), {})
    statuses = STATUSES.get(options.get("invoice_status_filter", "ALL"))
    hide_void = options.get("hide_voided_invoices") == "true"
    skip_zero = options.get("show_zero_usage_line_items", "false") != "true"
    found = [
        inv
        for inv in state.invoices
        if (statuses is None or inv.status in statuses)
        and not (hide_void and inv.status == "VOID")
        and inv.contract_id == options.get("contract_id", inv.contract_id)
        and inv.type == options.get("invoice_type", inv.type)
    ]
    found.sort(key=lambda inv: (inv.start_us, inv.id), reverse=True)
    return [invoice_view(inv, shown, skip_zero) for inv in found]
