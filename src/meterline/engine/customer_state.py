"""What the evaluator knows of each customer it bills in a batch, read once for the whole batch.

A batch touches many customers; reading each one's contracts, commits, invoices, deductions,
alerts and alert states with a statement per customer and per table would cost a dozen round
trips per customer. Instead each of those is read for all the batch's customers in one statement
(per chunk of customers), and the recompute keeps the snapshot current as it rewrites drafts, so
the alert evaluation that follows reads the invoices and balances just computed without asking
the database again. On SQLite the evaluator may keep a snapshot for later batches while no
other connection writes (`snapshots`); otherwise it lives for one batch transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection

from meterline.domain.contracts import CommitTerms, ContractTerms
from meterline.store import alert_wakeups, commits, contracts, invoices
from meterline.store import alerts as alert_store
from meterline.store.alerts import AlertRecord, AlertState
from meterline.store.invoices import FINALIZED, Deduction, InvoiceRecord, LedgerDeduction


@dataclass(slots=True)
class CustomerState:
    contracts: list[ContractTerms]
    commits: list[CommitTerms]
    invoices: list[InvoiceRecord]  # by start, then id
    deductions: list[LedgerDeduction]  # drafts' included, by time
    alerts: list[AlertRecord]  # its own and the all-customers ones
    alert_states: dict[tuple[str, str], AlertState]  # (alert id, scope) -> state
    wakeup_us: int | None

    def finalized_ids(self) -> set[str]:
        return {inv.id for inv in self.invoices if inv.status == FINALIZED}

    def finalized_usage(self) -> dict[str, Decimal]:
        """Amount drawn from each commit segment by finalized invoices."""
        finalized = self.finalized_ids()
        used: dict[str, Decimal] = {}
        for _commit, segment_id, invoice_id, amount, _at in self.deductions:
            if invoice_id in finalized:
                used[segment_id] = used.get(segment_id, Decimal(0)) + amount
        return used

    def replace_drafts(self, drafts: Sequence[tuple[InvoiceRecord, Sequence[Deduction]]]) -> None:
        """After a recompute: these drafts (and their deductions) are all the customer's drafts."""
        finalized = self.finalized_ids()
        kept = [inv for inv in self.invoices if inv.id in finalized]
        self.invoices = sorted([*kept, *(record for record, _d in drafts)], key=lambda i: (i.start_us, i.id))
        fresh = [
            (d.commit_id, d.segment_id, record.id, d.amount, record.end_us)
            for record, deductions in drafts
            for d in deductions
        ]
        old = [d for d in self.deductions if d[2] in finalized]
        self.deductions = sorted([*old, *fresh], key=lambda d: d[4])


def load_states(conn: Connection, customer_ids: Sequence[str]) -> dict[str, CustomerState]:
    ids = list(customer_ids)
    by_contract = contracts.contracts_for_customers(conn, ids)
    by_commit = commits.commits_for_customers(conn, ids)
    by_invoice = invoices.for_customers(conn, ids)
    by_deduction = invoices.deductions_for_customers(conn, ids)
    by_alert = alert_store.alerts_for_customers(conn, ids)
    by_state = alert_store.states_for_customers(conn, ids)
    wakeups = alert_wakeups.wakeups_of(conn, ids)
    return {
        c: CustomerState(
            by_contract[c],
            by_commit[c],
            by_invoice[c],
            by_deduction[c],
            by_alert[c],
            by_state[c],
            wakeups.get(c),
        )
        for c in ids
    }
