"""Recurring commits without an end: the engine creates each period's commit when its period
starts (those with an end had every period's commit stored with their contract).

It runs where a customer's drafts are derived (a batch that bills it, or its wake-up), before
anything is measured: the commit is written in the engine's transaction, and a commit already
there for that period (the same recurring commit and start) is never written again, so each
period gets one, whatever restarts. The customer is woken when its next period starts
(`next_period_start`), alerts or not. A commit tied to a subscription grants for the quantity
its subscription has then (`domain.seat_allocation`); `services.recurring.follow_subscriptions`
brings the commits already created up to date when the quantity is edited.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import Connection

from meterline.domain.contracts import ContractTerms
from meterline.domain.recurring import (
    Cadence,
    RecurringSpec,
    RecurringTerms,
    cadence,
    next_start,
    terms_of,
)
from meterline.domain.seat_allocation import period_access
from meterline.engine.customer_state import CustomerState
from meterline.store import commits
from meterline.store.recurring_commits import period_commit_with


def create_due_commits(
    conn: Connection, states: dict[str, CustomerState], customer_ids: Iterable[str], now_us: int
) -> set[str]:
    """Store the commits of periods started by `now_us` that open-ended recurring commits have
    not created yet; returns the customers who got one."""
    created: set[str] = set()
    for customer_id in customer_ids:
        state = states[customer_id]
        for contract, spec, _terms in _open_ended(state):
            made = {c.segments[0].starting_at_us for c in state.commits if c.recurring_id == spec.id}
            subscriptions = {s.id: s for s in contract.subscriptions}
            schedule = contract.schedule()
            for grant in period_access(spec, contract.ending_before_us, schedule, subscriptions, now_us):
                start = grant.starting_at_us
                if start not in made:
                    new = period_commit_with(spec, grant)
                    commits.insert_commit(
                        conn, customer_id, new, contract_id=contract.id, created_at_us=start
                    )
                    created.add(customer_id)
    return created


def next_period_start(state: CustomerState, now_us: int) -> int | None:
    """When the customer's next period that creates a commit or an invoice starts (None: none)."""
    starts = [
        next_start(terms, _cadence(contract, spec), now_us)
        for contract, spec, terms in _recurring(state)
        if terms.ending_before_us is None or spec.invoice is not None
    ]
    return min((s for s in starts if s is not None), default=None)


def _open_ended(state: CustomerState) -> Iterator[tuple[ContractTerms, RecurringSpec, RecurringTerms]]:
    return ((c, s, t) for c, s, t in _recurring(state) if t.ending_before_us is None)


def _recurring(state: CustomerState) -> Iterator[tuple[ContractTerms, RecurringSpec, RecurringTerms]]:
    for contract in state.contracts:
        for spec in contract.recurring:
            yield contract, spec, terms_of(spec, contract.ending_before_us)


def _cadence(contract: ContractTerms, spec: RecurringSpec) -> Cadence:
    return cadence(spec.recurrence_frequency, spec.starting_at_us, contract.schedule())
