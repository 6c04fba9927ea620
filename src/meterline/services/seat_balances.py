"""A contract's balances per seat (`/v1/contracts/seatBalances/list`): for each seat of its
SEAT_BASED subscriptions, what the commits and credits allocated per seat (INDIVIDUAL) hold for
it, derived like every balance (segments accessible now, less what invoices, drafts included,
have drawn from them).

A seat is any id ever assigned to one of the subscriptions, listed in id order. A commit shows
for a seat when it holds a balance of that seat passing the date filter: accessible at
`covering_date`, or accessible on or after `starting_at` and from before `effective_before`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from meterline.domain.contracts import AccessSegment, CommitTerms
from meterline.domain.errors import InvalidInput
from meterline.domain.subscriptions import seat_schedule
from meterline.engine.customer_state import CustomerState
from meterline.store.balances import balance_of
from meterline.store.contracts import ContractRecord

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class DateFilter:
    covering_us: int | None = None
    starting_at_us: int | None = None
    effective_before_us: int | None = None

    def keeps(self, segment: AccessSegment) -> bool:
        if self.covering_us is not None:
            return segment.accessible_at(self.covering_us)
        after = self.starting_at_us is None or segment.ending_before_us > self.starting_at_us
        before = self.effective_before_us is None or segment.starting_at_us < self.effective_before_us
        return after and before


@dataclass(frozen=True, slots=True)
class SeatCommit:
    """One commit or credit as it stands for one seat."""

    commit: CommitTerms
    balance: Decimal  # what the seat's segments accessible now have left
    starting_balance: Decimal  # what they granted the seat
    ledger: list[dict[str, Any]]  # the seat's entries only, in time order


def contract_seats(contract: ContractRecord, subscription_ids: Sequence[str] | None) -> list[str]:
    """Every seat id ever assigned to the contract's SEAT_BASED subscriptions (or these ones:
    400 naming `subscription_ids` for one that is not a SEAT_BASED subscription of the contract)."""
    by_id = {s.id: s for s in contract.subscriptions}
    chosen = [s for s in contract.subscriptions if s.seat_based]
    if subscription_ids is not None:
        for subscription_id in subscription_ids:
            found = by_id.get(subscription_id)
            if found is None or not found.seat_based:
                raise InvalidInput(
                    f"subscription_ids: {subscription_id} is not a SEAT_BASED subscription of contract "
                    f"{contract.id}"
                )
        chosen = [by_id[i] for i in dict.fromkeys(subscription_ids)]
    seats = {
        seat_id
        for subscription in chosen
        for seats_then in seat_schedule(subscription.terms().seat_changes)
        for seat_id in seats_then.assigned
    }
    return sorted(seats)


class SeatBook:
    """The customer's commits and credits read per seat, at `at_us`: what was drawn from each
    segment summed once, and each commit's ledger built once, however many seats are shown."""

    def __init__(self, state: CustomerState, contract_id: str, at_us: int, *, with_ledger: bool):
        self.state, self.at_us, self.with_ledger = state, at_us, with_ledger
        # Commits of the contract holding seat balances, created by `at_us`.
        self.commits = [
            c
            for c in state.commits
            if c.contract_id == contract_id and c.seat_scoped and c.segments[0].starting_at_us <= at_us
        ]
        self.drawn: dict[str, Decimal] = {}
        for _commit, segment_id, _invoice, amount, _when in state.deductions:
            self.drawn[segment_id] = self.drawn.get(segment_id, ZERO) + amount
        self._ledgers: dict[str, list[dict[str, Any]]] = {}

    def seat_commits(self, seat_id: str, dates: DateFilter) -> list[SeatCommit]:
        """The commits and credits holding a balance of this seat that passes `dates`."""
        found: list[SeatCommit] = []
        for commit in self.commits:
            own = [s for s in commit.segments if s.seat is not None and s.seat.seat_id == seat_id]
            if own and any(dates.keeps(s) for s in own):
                found.append(self._for_seat(commit, own))
        return found

    def _for_seat(self, commit: CommitTerms, own: list[AccessSegment]) -> SeatCommit:
        balance = sum(
            (max(s.amount - self.drawn.get(s.id, ZERO), ZERO) for s in own if s.accessible_at(self.at_us)),
            ZERO,
        )
        ids = {s.id for s in own}
        ledger = [
            {"type": e["type"], "amount": e["amount"], "timestamp": e["timestamp"]}
            for e in self._ledger(commit)
            if e["segment_id"] in ids
        ]
        return SeatCommit(commit, balance, sum((s.amount for s in own), ZERO), ledger)

    def _ledger(self, commit: CommitTerms) -> list[dict[str, Any]]:
        if not self.with_ledger:
            return []
        if commit.id not in self._ledgers:
            self._ledgers[commit.id] = balance_of(commit, self.state.deductions, self.at_us).ledger
        return self._ledgers[commit.id]
