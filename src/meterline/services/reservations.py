"""Reservations (meterline's extension): an amount held against a customer's hard spend limit
before an operation runs, so that concurrent operations cannot together pass it.

A reservation is decided (`domain.reservations`) with the customer's row locked (on SQLite every
writer is serialized already), so two reservations of one customer are decided one after the
other, each seeing the other's grant, whatever the number of API processes. What the decision
sums is read in this order: the reservations not closed first, then the spend (the spend-limits
`current_spend`, from every event the engine has committed). On PostgreSQL each statement sees
what was committed when it began, so a batch the engine commits between the two reads has its
settled reservations counted twice (still held, and in the spend), never not at all.

The spend is the one the engine stored when it last measured the customer in full, while that
still holds (`store.customer_spend`: one indexed read); else, as after usage the engine absorbed
without measuring, it is derived here from the aggregates, as spend-limits/get derives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection

from meterline.domain.errors import Conflict, NotFound
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID
from meterline.domain.reservations import (
    CUSTOMER_ARCHIVED,
    RESERVATION_EXPIRED,
    RESERVATION_RELEASED,
    RESERVATION_SETTLED,
    Answer,
    decide,
    remaining,
)
from meterline.domain.timeutil import US_PER_SECOND
from meterline.services.spend_limits import credit_type_asked, views
from meterline.store import alerts, customer_spend, customers
from meterline.store import reservations as store
from meterline.store.reservations import EXPIRED, RELEASED, SETTLED, Reservation

ENDED_REASONS = {RELEASED: RESERVATION_RELEASED, SETTLED: RESERVATION_SETTLED, EXPIRED: RESERVATION_EXPIRED}


@dataclass(frozen=True, slots=True)
class Ask:
    reservation_id: str
    customer_id: str
    amount: Decimal
    credit_type_id: str | None  # None: USD (cents)
    expires_in_s: int


def reserve(conn: Connection, ask: Ask, now_us: int, open_horizon_us: int) -> Answer:
    """Grant the reservation or say why not; asked again with the same id, answer about the
    reservation that id holds (granted while it holds), never reserving twice."""
    customer = customers.get_customer(conn, ask.customer_id)
    customers.lock(conn, customer.id)
    # USD cents is always there: the usual reservation reads no credit type.
    credit_type = (
        credit_type_asked(conn, ask.credit_type_id, for_change=False)
        if ask.credit_type_id is not None
        else USD_CENTS_CREDIT_TYPE_ID
    )
    earlier = store.get(conn, ask.reservation_id)
    if earlier is not None:
        _same_reservation(earlier, ask, credit_type)
    elif customer.archived_at_us is not None:
        return Answer(False, CUSTOMER_ARCHIVED, None)
    hard_limit = _hard_limit(conn, customer.id, credit_type)
    held = [r.amount for r in _holding(conn, customer.id, credit_type, now_us)]
    spend = (
        Decimal(0) if hard_limit is None else _spend(conn, customer.id, credit_type, now_us, open_horizon_us)
    )
    if earlier is not None:
        ended = earlier.state_at(now_us)
        committed = spend + sum(held, Decimal(0))
        return Answer(ended is None, ENDED_REASONS.get(ended or ""), remaining(hard_limit, committed))
    answer = decide(ask.amount, hard_limit, spend, held)
    if answer.granted:
        _add(conn, ask, customer.id, credit_type, now_us)
    return answer


def release(conn: Connection, reservation_id: str, now_us: int) -> str:
    """Release the reservation if it still holds; returns how it ended (released, settled, expired)."""
    found = store.get(conn, reservation_id)
    if found is None:
        raise NotFound(f"reservation_id: no reservation {reservation_id}")
    ended = found.state_at(now_us)
    if found.closed_as is None:
        store.close(conn, [found.id], ended or RELEASED, now_us)
    return ended or RELEASED


def _hard_limit(conn: Connection, customer_id: str, credit_type: str) -> Decimal | None:
    found = [
        a.threshold
        for a in alerts.spend_limit_alerts(conn, [customer_id])
        if a.spend_limit == customer_spend.HARD and a.credit_type_id == credit_type
    ]
    return found[-1] if found else None  # the newest, should two ever exist


def _spend(
    conn: Connection, customer_id: str, credit_type: str, now_us: int, open_horizon_us: int
) -> Decimal:
    """The period's spend: as the engine stored it if that still holds, else derived now."""
    stored = customer_spend.still_holding(conn, customer_id, credit_type, now_us)
    if stored is not None:
        return stored
    [limits] = views(conn, [(customer_id, credit_type)], now_us, open_horizon_us)
    return limits.current_spend


def _holding(conn: Connection, customer_id: str, credit_type: str, now_us: int) -> list[Reservation]:
    """The customer's reservations still holding; those found settled or expired are closed now,
    so that what the next decision reads stays the few that hold."""
    holding: list[Reservation] = []
    ended: dict[str, list[str]] = {}
    for reservation in store.not_closed(conn, customer_id, credit_type):
        state = reservation.state_at(now_us)
        if state is None:
            holding.append(reservation)
        else:
            ended.setdefault(state, []).append(reservation.id)
    for state, ids in ended.items():
        store.close(conn, ids, state, now_us)
    return holding


def _same_reservation(earlier: Reservation, ask: Ask, credit_type: str) -> None:
    if (earlier.customer_id, earlier.credit_type_id, earlier.amount) != (
        ask.customer_id,
        credit_type,
        ask.amount,
    ):
        raise Conflict(
            f"reservation_id: {ask.reservation_id} already reserves {earlier.amount} in "
            f"{earlier.credit_type_id} for customer {earlier.customer_id}"
        )


def _add(conn: Connection, ask: Ask, customer_id: str, credit_type: str, now_us: int) -> None:
    reservation = Reservation(
        id=ask.reservation_id,
        customer_id=customer_id,
        credit_type_id=credit_type,
        amount=ask.amount,
        created_at_us=now_us,
        expires_at_us=now_us + ask.expires_in_s * US_PER_SECOND,
        closed_as=None,
        closed_at_us=None,
        settled=False,
    )
    if not store.add(conn, reservation):
        # The same id reserved for another customer at this instant (that customer's row locked).
        raise Conflict(f"reservation_id: {ask.reservation_id} is already used")
