"""Schedules that bill on dates: a commit's invoice schedule and a contract's scheduled charges.

Each schedule item is billed once, on its date (`timestamp`): on a SCHEDULED invoice of its own,
finalized on that date (no grace period: its amount does not wait for late usage), or, when the
contract consolidates (`scheduled_charges_on_usage_invoices: "ALL"`) and the date is the end of
one of its usage periods, as a line of that period's usage invoice (Metronome's rule: the
charge's timestamp must match the usage invoice's `ending_before`).

A POSTPAID commit's one invoice schedule item is its true-up (`trued_up`): on its date it bills
what usage left unused of the commit (never below zero; nothing at all when usage reached it), on
an invoice of its own (TRUEUP), never consolidated onto a usage invoice.

A `recurring_schedule` is expanded into items when the schedule is created, as Metronome shows
it (items with ids), so what is billed is always a list of items.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

COMMIT_PURCHASE = "commit_purchase"  # the line type of a prepaid commit's payment
SCHEDULED = "scheduled"  # the line type of a scheduled charge
POSTPAID_TRUEUP = "postpaid_trueup"  # the line type of a postpaid commit's true-up


@dataclass(frozen=True, slots=True)
class ScheduledItem:
    """One schedule item that bills: what it charges, for what, on which contract's invoices."""

    item_id: str
    line_type: str  # COMMIT_PURCHASE, SCHEDULED or POSTPAID_TRUEUP (its amount: the commit's)
    source_id: str  # the commit, or the scheduled charge
    contract_id: str  # the contract whose invoices bill it
    product_id: str
    name: str | None  # the commit's or charge's own name (else the product's is shown)
    credit_type_id: str
    timestamp_us: int
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    custom_fields: Mapping[str, str] = field(default_factory=dict)


def trued_up(item: ScheduledItem, consumed: Decimal) -> ScheduledItem | None:
    """A postpaid commit's true-up item billing what `consumed` (what usage drew from the commit)
    left of its amount, quantity 1; None when usage reached the commit (nothing to bill)."""
    remainder = item.amount - consumed
    if remainder <= 0:
        return None
    return replace(item, amount=remainder, unit_price=remainder, quantity=Decimal(1))
