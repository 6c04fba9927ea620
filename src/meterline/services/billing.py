"""A customer's invoices and balances as the API shows them: what is stored, and drafts derived.

Drafts are never read from the database (`store.invoices`): they are derived here from the usage
aggregates and contracts by the engine's own code (`engine.billing`), so a read reflects every
event the engine has committed, and agrees with what the engine measures alerts against.
"""

from __future__ import annotations

from sqlalchemy import Connection

from meterline.domain.scheduled_items import POSTPAID_TRUEUP
from meterline.engine import billing, scheduled_billing
from meterline.engine.customer_state import CustomerState
from meterline.store import commits, contracts, invoices
from meterline.store.balances import CommitBalance, balance_of
from meterline.store.invoices import FINALIZED
from meterline.store.rate_cards import get_rate_card


def customer_billing(conn: Connection, customer_id: str, open_horizon_us: int, now_us: int) -> CustomerState:
    """The customer's stored state with its drafts derived as of `now_us` (`open_horizon_us`: how
    far back periods stay open, `Settings.open_horizon_us`)."""
    window = billing.billing_window(now_us, open_horizon_us)
    return billing.with_drafts(conn, [customer_id], window)[customer_id]


def commit_balances(
    state: CustomerState, at_us: int, *, include_drafts: bool = True
) -> dict[str, CommitBalance]:
    """Balances of the customer's commits and credits in force; the drafts' drawdown included
    unless `include_drafts` is False (Metronome's invoice_inclusion_mode FINALIZED)."""
    deductions = state.deductions
    if not include_drafts:
        finalized = {inv.id for inv in state.invoices if inv.status == FINALIZED}
        deductions = [d for d in deductions if d[2] in finalized]
    rollouts, trueups = state.rollouts(), state.trueup_invoice_ids()
    return {
        commit.id: balance_of(commit, deductions, at_us, rollouts=rollouts, trueups=trueups)
        for commit in state.commits
    }


def schedule_item_invoices(conn: Connection, customer_id: str) -> dict[str, str]:
    """Schedule item id -> the invoice that bills it: the finalized (or voided) one that did, or
    else the draft that will (`engine.scheduled_billing`), for the customer's contracts in force.
    A postpaid true-up's only once billed: its draft exists only while usage is below the commit."""
    billed = invoices.schedule_items_billed(conn, customer_id)
    terms = contracts.contracts_for_customer(conn, customer_id)
    by_id = {c.id: c for c in terms}
    items = [i for c in terms for i in c.scheduled_items]
    items += [i for commit in commits.commits_for_customer(conn, customer_id) for i in commit.invoice_items]
    found = dict(billed)
    for item in items:
        contract = by_id.get(item.contract_id)
        if item.item_id not in found and contract is not None and item.line_type != POSTPAID_TRUEUP:
            fiat = get_rate_card(conn, contract.rate_card_id).fiat_credit_type_id
            found[item.item_id] = scheduled_billing.draft_invoice_id(contract, item, fiat)
    return found
