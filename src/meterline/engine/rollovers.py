"""Rolling commits over at contract transitions: the engine does it when the new contract starts.

It runs where a customer's drafts are derived (a batch that bills it, or its wake-up at the
transition), before anything is measured, so the unused balance it reads has every draft drawn:
each commit or credit of the old contract with a `rollover_fraction` gives the new contract one
commit of the same kind holding that share of what its segments left unused at the transition
(`domain.rollover`), written in the engine's transaction. A commit already rolled over into the
new contract is never rolled over again, whatever restarts. What rolled over is gone from the old
commit (its ledger shows a ROLLOVER entry; late usage of the old contract draws only what is left).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from meterline.domain.commit_rules import AccessItem, Specifier
from meterline.domain.contracts import CommitTerms, ContractTerms, RolledOverFrom
from meterline.domain.rollover import rolled_segments, rollover_access_end
from meterline.engine.customer_state import CustomerState
from meterline.store import commits
from meterline.store.commits import NewCommit, specifier_from_json

ZERO = Decimal(0)


def roll_over_due(
    conn: Connection, states: dict[str, CustomerState], customer_ids: Iterable[str], now_us: int
) -> set[str]:
    """Store the rollover commits of transitions that happened by `now_us` and are not rolled
    over yet; returns the customers who got one."""
    created: set[str] = set()
    for customer_id in customer_ids:
        state = states[customer_id]
        for contract in state.contracts:
            if contract.transition_from_contract_id is None or contract.starting_at_us > now_us:
                continue
            for new in _rollovers(state, contract):
                commits.insert_commit(
                    conn, customer_id, new, contract_id=contract.id, created_at_us=contract.starting_at_us
                )
                created.add(customer_id)
    return created


def next_transition(state: CustomerState, now_us: int) -> int | None:
    """When the customer's next transition happens (None: none is to come)."""
    starts = [
        c.starting_at_us
        for c in state.contracts
        if c.transition_from_contract_id is not None and c.starting_at_us > now_us
    ]
    return min(starts, default=None)


def _rollovers(state: CustomerState, contract: ContractTerms) -> list[NewCommit]:
    at_us = contract.starting_at_us
    done = {
        c.rolled_over_from.commit_id
        for c in state.commits
        if c.rolled_over_from is not None and c.contract_id == contract.id
    }
    rolling = [
        c
        for c in state.commits
        if c.contract_id == contract.transition_from_contract_id
        and c.rollover_fraction is not None
        and c.id not in done
    ]
    if not rolling:
        return []  # the usual case once rolled over: nothing more to read
    drawn = _drawn(state)
    found: list[NewCommit] = []
    for old in rolling:
        assert old.rollover_fraction is not None
        rolled = rolled_segments(old.segments, drawn, old.rollover_fraction, at_us)
        if rolled:
            found.append(_rollover_commit(old, contract, rolled))
    return found


def _drawn(state: CustomerState) -> dict[str, Decimal]:
    """What is gone from each segment: drawn by invoices (drafts included), or rolled over."""
    drawn = state.rolled_out()
    for _commit, segment_id, _invoice, amount, _at in state.deductions:
        drawn[segment_id] = drawn.get(segment_id, ZERO) + amount
    return drawn


def _rollover_commit(old: CommitTerms, contract: ContractTerms, rolled: dict[str, Decimal]) -> NewCommit:
    at_us = contract.starting_at_us
    from_segments = [s for s in old.segments if s.id in rolled]
    end_us = rollover_access_end(contract.ending_before_us, from_segments, at_us)
    assert old.contract_id is not None
    return NewCommit(
        kind=old.kind,
        product_id=old.product_id,
        access=(AccessItem(sum(rolled.values(), ZERO), at_us, end_us),),
        credit_type_id=old.credit_type_id,
        name=old.name,
        priority=old.priority,
        applicable_product_ids=tuple(old.applicable_product_ids) or None,
        applicable_product_tags=tuple(old.applicable_product_tags) or None,
        specifiers=tuple(_specifier(s) for s in old.specifiers) or None,
        rollover_fraction=old.rollover_fraction,
        rolled_over_from=RolledOverFrom(old.id, old.contract_id, rolled),
    )


def _specifier(stored: Mapping[str, Any]) -> Specifier:
    return specifier_from_json(dict(stored))
