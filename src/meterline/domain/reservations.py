"""Reservations against a hard spend limit (meterline's extension): the rule for granting one.

An application reserves what an operation may cost before running it. The reservation is granted
only if the customer's current spend, plus every reservation still holding, plus this amount, stays
at or under the hard limit; so concurrent operations, each granted, can never together pass the
limit (usage sent without a reservation still can). A customer without a hard limit in the credit
type is granted anything. A reservation holds until it is released, settled by the usage event
that carries its id, or expires.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

WOULD_PASS_HARD_LIMIT = "would_pass_hard_limit"
CUSTOMER_ARCHIVED = "customer_archived"
# A reservation id used before answers about that reservation; once it no longer holds:
RESERVATION_RELEASED = "reservation_released"
RESERVATION_SETTLED = "reservation_settled"
RESERVATION_EXPIRED = "reservation_expired"
REASON_CODES = (
    WOULD_PASS_HARD_LIMIT,
    CUSTOMER_ARCHIVED,
    RESERVATION_RELEASED,
    RESERVATION_SETTLED,
    RESERVATION_EXPIRED,
)
ZERO = Decimal(0)
# The usage event property that settles a reservation (its reservation_id).
RESERVATION_PROPERTY = "reservation_id"


@dataclass(frozen=True, slots=True)
class Answer:
    granted: bool
    reason: str | None  # why not (None when granted)
    remaining: Decimal | None  # what is left under the hard limit after this answer; None: no limit


def decide(amount: Decimal, hard_limit: Decimal | None, spend: Decimal, held: Iterable[Decimal]) -> Answer:
    """Grant `amount` if spend + `held` (the reservations still holding) + amount ≤ the hard limit."""
    committed = spend + sum(held, ZERO)
    if hard_limit is None:
        return Answer(True, None, None)
    if committed + amount > hard_limit:
        return Answer(False, WOULD_PASS_HARD_LIMIT, remaining(hard_limit, committed))
    return Answer(True, None, remaining(hard_limit, committed + amount))


def remaining(hard_limit: Decimal | None, committed: Decimal) -> Decimal | None:
    """What may still be reserved or spent (never below zero, as spend notifications say it)."""
    return None if hard_limit is None else max(hard_limit - committed, ZERO)
