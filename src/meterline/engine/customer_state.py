"""A customer's billing state: what is stored of it, and its draft invoices, which are derived.

`load_states` is the one loader of customers' stored state: contracts, commits, finalized
invoices and their deductions, which drafts are open (their rows mark open periods), alerts and
alert states. Each of those is read for all the given customers in one statement (per chunk of
customers), never per customer. Drafts are then derived from the usage aggregates by
`engine.billing.derive_drafts`, in the engine (which keeps states in memory: `snapshots`) and in
the API alike, so a read reflects every event the engine has committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Connection

from meterline.domain.contracts import CommitTerms, ContractTerms
from meterline.domain.spend_bounds import SpendBounds
from meterline.store import alert_wakeups, commits, contracts, invoices
from meterline.store import alerts as alert_store
from meterline.store.alerts import AlertRecord, AlertState
from meterline.store.balances import Rollout
from meterline.store.invoices import (
    CLOSED,
    DRAFT,
    FINALIZED,
    TRUEUP,
    USAGE,
    Deduction,
    InvoiceRecord,
    LedgerDeduction,
)


@dataclass(slots=True)
class CustomerState:
    contracts: list[ContractTerms]
    commits: list[CommitTerms]
    invoices: list[InvoiceRecord]  # finalized, voided and derived drafts, by start, then id
    deductions: list[LedgerDeduction]  # the derived drafts' included, by time
    # Drafts whose rows are stored (the periods known to be open), with the end each row holds.
    marked_drafts: dict[str, int]
    alerts: list[AlertRecord]  # its own and the all-customers ones
    alert_states: dict[tuple[str, str], AlertState]  # (alert id, scope) -> state
    wakeup_us: int | None
    # How far usage could move its amounts, per metric and credit type: set with its drafts.
    spend_bounds: SpendBounds = field(default_factory=dict)

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

    def trueup_invoice_ids(self) -> frozenset[str]:
        """The TRUEUP invoices (their deductions are the ledgers' true-up entries)."""
        return frozenset(inv.id for inv in self.invoices if inv.type == TRUEUP)

    def rollouts(self) -> dict[str, list[Rollout]]:
        """What rolled over from each commit segment into a rollover commit (`engine.rollovers`)."""
        out: dict[str, list[Rollout]] = {}
        for commit in self.commits:
            rolled = commit.rolled_over_from
            if rolled is not None and commit.contract_id is not None:
                at_us = min(s.starting_at_us for s in commit.segments)
                for segment_id, amount in rolled.segments.items():
                    out.setdefault(segment_id, []).append(Rollout(amount, commit.contract_id, at_us))
        return out

    def rolled_out(self) -> dict[str, Decimal]:
        """Amount rolled over from each commit segment: gone from it, as if drawn."""
        return {s: sum((r.amount for r in found), Decimal(0)) for s, found in self.rollouts().items()}

    def replace_drafts(self, drafts: Sequence[tuple[InvoiceRecord, Sequence[Deduction]]]) -> None:
        """After a recompute: these drafts (and their deductions) are all the customer's drafts."""
        finalized = self.finalized_ids()
        kept = [inv for inv in self.invoices if inv.status in CLOSED]  # finalized or voided
        self.invoices = sorted([*kept, *(record for record, _d in drafts)], key=lambda i: (i.start_us, i.id))
        fresh = [
            (d.commit_id, d.segment_id, record.id, d.amount, record.end_us)
            for record, deductions in drafts
            for d in deductions
        ]
        old = [d for d in self.deductions if d[2] in finalized]
        self.deductions = sorted([*old, *fresh], key=lambda d: d[4])

    def earliest_marked_start(self) -> int | None:
        """Where the earliest open draft starts (it may lie before the window events can reach)."""
        # Usage drafts only: a SCHEDULED draft dated long ago opens no usage period.
        starts = [inv.start_us for inv in self.invoices if inv.id in self.marked_drafts and inv.type == USAGE]
        return min(starts, default=None)


def load_states(conn: Connection, customer_ids: Sequence[str]) -> dict[str, CustomerState]:
    """The customers' stored state; their drafts are not derived yet (`billing.derive_drafts`)."""
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
            # A marker row's amounts are zeros: it stands here until the drafts are derived.
            by_invoice[c],
            by_deduction[c],
            {inv.id: inv.end_us for inv in by_invoice[c] if inv.status == DRAFT},
            by_alert[c],
            by_state[c],
            wakeups.get(c),
        )
        for c in ids
    }
