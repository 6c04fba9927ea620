"""Correcting finalized invoices: voiding one, and regenerating a voided one.

Voiding marks a FINALIZED invoice VOID and gives back what it drew from commits and credits (a
segment holds that amount again; if its access is over, it stays expired). Its period is not
billed again by itself: regenerating it does that, pricing the period afresh from the usage,
rates and balances of now into a new FINALIZED invoice (a new id, with
`regenerated_from_invoice_id`); regenerating a FINALIZED invoice voids it first. Both write in
the API's transaction, holding the customer's engine partition so no batch derives its billing
meanwhile, and ask the engine to bill the customer again: drafts, balances and alerts follow.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Connection

from meterline.domain.errors import Conflict, InvalidInput, NotFound
from meterline.domain.ids import new_id
from meterline.domain.periods import Period
from meterline.engine import billing
from meterline.engine.customer_state import load_states
from meterline.store import contracts, credit_types, partitions
from meterline.store import invoices as store
from meterline.store.billing_requests import request_recompute
from meterline.store.invoices import FINALIZED, USAGE, VOID, InvoiceRecord


def void_invoice(conn: Connection, invoice_id: str, now_us: int) -> None:
    invoice = _held_invoice(conn, invoice_id)
    if invoice.status != FINALIZED:
        raise InvalidInput(
            f"id: invoice {invoice_id} is {invoice.status}; only a FINALIZED invoice can be voided"
        )
    store.void(conn, invoice.id, now_us)
    request_recompute(conn, invoice.customer_id)


def regenerate_invoice(conn: Connection, invoice_id: str, now_us: int) -> str:
    """The id of the new invoice."""
    invoice = _held_invoice(conn, invoice_id)
    if invoice.type != USAGE:
        raise InvalidInput(
            f"id: invoice {invoice_id} is a {invoice.type} invoice; only USAGE invoices are regenerated"
        )
    if invoice.status not in (FINALIZED, VOID):
        raise InvalidInput(
            f"id: invoice {invoice_id} is {invoice.status}; only a voided or FINALIZED one is regenerated"
        )
    done = store.regenerated_as(conn, invoice.id)
    if done is not None:
        raise Conflict(f"id: invoice {invoice_id} was regenerated already, as {done}")
    contract = contracts.get_contract(conn, invoice.customer_id, invoice.contract_id)
    if contract.archived_at_us is not None:
        raise InvalidInput(f"id: the contract of invoice {invoice_id} is archived; nothing bills its usage")
    if invoice.status == FINALIZED:
        store.void(conn, invoice.id, now_us)
    state = load_states(conn, [invoice.customer_id])[invoice.customer_id]
    catalog = billing.PricingCatalog(conn, [invoice.customer_id])
    period = Period(invoice.start_us, invoice.end_us)
    record, deductions = billing.priced_period(
        catalog, state, contract.terms(), period, now_us, invoice.schedule_item_ids
    )
    fresh = replace(record, id=new_id(), regenerated_from_invoice_id=invoice.id)
    store.finalize(
        conn, [(billing.finalized_record(fresh, credit_types.names_by_id(conn), now_us), deductions)]
    )
    request_recompute(conn, invoice.customer_id)
    return fresh.id


def void_finalized_of_contract(conn: Connection, customer_id: str, contract_id: str, now_us: int) -> None:
    """Every FINALIZED invoice of the contract voided (contracts/archive with void_invoices)."""
    partitions.lock_home_partition(conn, customer_id)
    for invoice_id in store.finalized_of_contract(conn, contract_id):
        store.void(conn, invoice_id, now_us)


def _held_invoice(conn: Connection, invoice_id: str) -> InvoiceRecord:
    found = store.get_invoice(conn, invoice_id)
    if found is None:
        raise NotFound(f"id: no invoice with id {invoice_id}")
    partitions.lock_home_partition(conn, found.customer_id)
    return store.get_invoice(conn, invoice_id) or found  # as it is once the engine's batch is done
