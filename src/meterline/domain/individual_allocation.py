"""Recurring commits and credits allocated per seat (`subscription_config.allocation`
INDIVIDUAL): each period's commit holds one balance per seat of the SEAT_BASED subscription.

A seat assigned when the period starts gets `amount` (the amount per seat, prorated where the
period is cut, as any recurring commit's). A seat id first assigned later in the period gets its
balance from that instant: `amount` in full, or, with `apply_seat_increase_config.is_prorated`,
for the share of the period left (rounded like a prorated period). A seat removed loses its
balance from that instant (what is left of it expires then). A seat gets one balance per period:
removed and assigned again within the same period, it gets nothing more until the next period
starts, as a pooled grant never grants the same seat twice in a period.

Unassigned seats are billed (they count in the quantity) but hold no balance: credit that only a
seat's own usage can draw has nothing to draw it until an id is assigned; when one is, that seat
gets its balance from then, like any seat added. A period that starts with no seat assigned
still has a commit, anchored at its start by an item of 0 that no usage draws, so that seats
added later in the period join that period's commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from meterline.domain.commit_rules import AccessItem
from meterline.domain.recurring import PeriodSpan, RecurringTerms, prorated, rest_of_period
from meterline.domain.seats import SeatScope
from meterline.domain.subscriptions import SubscriptionTerms, seat_schedule


@dataclass(frozen=True, slots=True)
class SeatTimeline:
    """The seat ids assigned from each instant on, in time order (none before the first)."""

    group_key: str
    steps: tuple[tuple[int, frozenset[str]], ...]

    def assigned_at(self, at_us: int) -> frozenset[str]:
        current: frozenset[str] = frozenset()
        for starting_at_us, assigned in self.steps:
            if starting_at_us > at_us:
                break
            current = assigned
        return current

    def removed_after(self, seat_id: str, at_us: int) -> int | None:
        """The first instant after `at_us` from which the seat is no longer assigned."""
        for starting_at_us, assigned in self.steps:
            if starting_at_us > at_us and seat_id not in assigned:
                return starting_at_us
        return None


def seat_timeline(subscription: SubscriptionTerms) -> SeatTimeline:
    """The subscription's assigned seat ids over time, none from its end on."""
    assert subscription.seat_group_key is not None  # the API allows INDIVIDUAL on SEAT_BASED only
    end = subscription.ending_before_us
    steps = [
        (seats.starting_at_us, seats.assigned)
        for seats in seat_schedule(subscription.seat_changes)
        if end is None or seats.starting_at_us < end
    ]
    if end is not None:
        steps.append((end, frozenset()))
    return SeatTimeline(subscription.seat_group_key, tuple(steps))


def individual_items(
    terms: RecurringTerms, span: PeriodSpan, seats: SeatTimeline, prorate_increases: bool
) -> tuple[AccessItem, ...]:
    """One period's commit: a balance of `terms.amount` for each seat, from the period's start
    or its first assignment in the period until its removal or the end of access."""
    start, end = span.kept.start_us, span.kept.end_us
    at_start = sorted(seats.assigned_at(start))
    first: dict[str, int] = dict.fromkeys(at_start, start)
    for at_us, assigned in seats.steps:
        if start < at_us < end:
            for seat_id in sorted(assigned - first.keys()):
                first[seat_id] = at_us
    base = prorated(terms.amount, span.kept, span.whole, first=span.first, last=span.last, terms=terms)
    items: list[AccessItem] = []
    if not at_start:
        items.append(AccessItem(base * 0, start, span.access_end_us, SeatScope(seats.group_key, None)))
    for seat_id, from_us in first.items():
        amount = base
        if from_us > start:
            amount = rest_of_period(terms.amount, from_us, span, terms) if prorate_increases else terms.amount
        removed = seats.removed_after(seat_id, from_us)
        until = span.access_end_us if removed is None else min(removed, span.access_end_us)
        items.append(AccessItem(amount, from_us, until, SeatScope(seats.group_key, seat_id)))
    return tuple(items)
