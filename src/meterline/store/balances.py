"""Commit and credit balances and their ledgers, derived from access segments and deductions.

A balance is what can be drawn down now: the sum over the segments accessible at that instant
of their amount less what invoices (drafts included) have drawn from them, never below zero.
The ledger lists, in time order, each segment's start (a seat added within a period:
SEAT_BASED_ADJUSTMENT), each invoice's deduction (a postpaid commit's true-up invoice's: TRUEUP),
what rolled over from it into a rollover commit when its contract transitioned (ROLLOVER, counted
as gone from it), and each segment's expiry (a seat's own balance expires when the seat is
removed; a postpaid commit's unused part is billed by its true-up instead, if it has one), with
Metronome's entry types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from meterline.domain.contracts import CREDIT, POSTPAID, AccessSegment, CommitTerms
from meterline.domain.timeutil import format_rfc3339

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Rollout:
    """What rolled over from a segment: its amount, into a commit on `new_contract_id`, at `at_us`."""

    amount: Decimal
    new_contract_id: str
    at_us: int


NO_ROLLOUTS: Mapping[str, Sequence[Rollout]] = {}


@dataclass(slots=True)
class CommitBalance:
    commit: CommitTerms
    balance: Decimal = ZERO
    ledger: list[dict[str, Any]] = field(default_factory=list)


def balance_of(
    commit: CommitTerms,
    deductions: Sequence[tuple[str, str, str, Decimal, int]],
    at_us: int,
    *,
    with_ledger: bool = True,
    rollouts: Mapping[str, Sequence[Rollout]] = NO_ROLLOUTS,
    trueups: frozenset[str] = frozenset(),
) -> CommitBalance:
    """The commit's balance at `at_us`, and its ledger unless `with_ledger` is false (alerts need
    only the balance, and building the entries was most of the cost); `rollouts`: what rolled
    over from each segment (`CustomerState.rollouts`); `trueups`: the ids of TRUEUP invoices."""
    result = CommitBalance(commit)
    prefix = _ledger_prefix(commit)
    # A postpaid commit with a true-up: what usage leaves is billed by it, not expired.
    trued_up = commit.kind == POSTPAID and bool(commit.invoice_items)
    entries: list[tuple[int, dict[str, Any]]] = []
    for segment in commit.segments:
        drawn = [
            (invoice_id, amount, when) for c, s, invoice_id, amount, when in deductions if s == segment.id
        ]
        rolled = rollouts.get(segment.id, ())
        used = sum((amount for _i, amount, _w in drawn), ZERO) + sum((r.amount for r in rolled), ZERO)
        remaining = max(segment.amount - used, ZERO)
        if segment.accessible_at(at_us):
            result.balance += remaining
        if not with_ledger:
            continue
        if segment.starting_at_us <= at_us:
            start_type = _start_type(commit, segment)
            entries.append(
                (
                    segment.starting_at_us,
                    _entry(prefix + start_type, segment.amount, segment.starting_at_us, segment.id),
                )
            )
        for invoice_id, amount, when in drawn:
            kind = "TRUEUP" if invoice_id in trueups else "AUTOMATED_INVOICE_DEDUCTION"
            entry = _entry(prefix + kind, -amount, min(when, at_us), segment.id)
            entry["invoice_id"] = invoice_id
            entries.append((when, entry))
        for rollout in rolled:
            entry = _entry(prefix + "ROLLOVER", -rollout.amount, rollout.at_us, segment.id)
            entry["new_contract_id"] = rollout.new_contract_id
            entries.append((rollout.at_us, entry))
        if segment.ending_before_us <= at_us and remaining > 0 and not trued_up:
            entries.append(
                (
                    segment.ending_before_us,
                    _entry(prefix + "EXPIRATION", -remaining, segment.ending_before_us, segment.id),
                )
            )
    result.ledger = [entry for _when, entry in sorted(entries, key=lambda item: item[0])]
    return result


def _start_type(commit: CommitTerms, segment: AccessSegment) -> str:
    """How a segment's grant is entered: a period's commit of a recurring commit tied to a
    subscription grants more from within its period when seats are added (Metronome's
    SEAT_BASED_ADJUSTMENT); every other segment starts its balance."""
    if commit.kind == POSTPAID:
        return "INITIAL_BALANCE"
    added = commit.recurring_id is not None and segment.starting_at_us > commit.segments[0].starting_at_us
    return "SEAT_BASED_ADJUSTMENT" if added else "SEGMENT_START"


def _ledger_prefix(commit: CommitTerms) -> str:
    if commit.kind == CREDIT:
        return "CREDIT_"
    return "POSTPAID_COMMIT_" if commit.kind == POSTPAID else "PREPAID_COMMIT_"


def _entry(entry_type: str, amount: Decimal, at_us: int, segment_id: str) -> dict[str, Any]:
    return {
        "type": entry_type,
        "amount": amount,
        "timestamp": format_rfc3339(at_us),
        "segment_id": segment_id,
    }
