"""Reservations (meterline's extension): an amount held against a customer's hard spend limit
before an operation runs, so that concurrent operations cannot together pass it.

Requests are decided in batches (`api.reservation_writer` queues them), in one write
transaction: what every request of the batch needs is read first, a few statements whatever the
batch's size, then each request is decided in the order it came (`domain.reservations`), against
what the ones before it granted or released, and what changed is written before the commit.
The customers of the batch's reservations are locked first (on PostgreSQL, their rows, in id
order; on SQLite every writer is serialized already), so a reservation of a customer is decided
after every other process's earlier grant to that customer, whatever the number of API
processes. What the decision sums is read in this order: the reservations not closed first,
then the spend (the spend-limits `current_spend`, from every event the engine has committed).
On PostgreSQL each statement sees what was committed when it began, so a batch the engine
commits between the two reads has its settled reservations counted twice (still held, and in
the spend), never not at all.

The spend is the one the engine stored when it last measured the customer in full, while that
still holds (`store.customer_spend`: one indexed read for the batch); else, as after usage the
engine absorbed without measuring, it is derived here from the aggregates, as spend-limits/get
derives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from sqlalchemy import Connection

from meterline.domain.errors import Conflict, MeterlineError, NotFound
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
Key = tuple[str, str]  # (customer id, credit type id)


@dataclass(frozen=True, slots=True)
class Ask:
    """Reserve `amount` for the customer under `reservation_id`."""

    reservation_id: str
    customer_id: str
    amount: Decimal
    credit_type_id: str | None  # None: USD (cents)
    expires_in_s: int


@dataclass(frozen=True, slots=True)
class Release:
    """Release the reservation `reservation_id`."""

    reservation_id: str


Request = Ask | Release
# A reservation's answer, how a released reservation ended, or why the request is refused.
Outcome = Answer | str | MeterlineError


def decide_all(
    conn: Connection, requests: Sequence[Request], now_us: int, open_horizon_us: int
) -> list[Outcome]:
    """Decide each request in order, each seeing what the ones before it granted or released, and
    write the result; the outcomes hold once the caller's transaction commits."""
    batch = _Batch.read(conn, requests, now_us, open_horizon_us)
    outcomes = [batch.reserve(r) if isinstance(r, Ask) else batch.release(r) for r in requests]
    taken = batch.write(conn)
    # An id another process stored meanwhile (for another customer, whose row this batch does
    # not lock): that request is refused. The batch's later decisions counted it as held, which
    # only ever refuses more.
    return [
        Conflict(f"reservation_id: {r.reservation_id} is already used")
        if isinstance(r, Ask) and isinstance(o, Answer) and o.granted and r.reservation_id in taken
        else o
        for r, o in zip(requests, outcomes, strict=True)
    ]


@dataclass(slots=True)
class _Batch:
    """What a batch's decisions are made against, kept up to date as each is made."""

    now_us: int
    archived: dict[str, int | None]  # the customers of the batch's reservations that exist
    credit_types: dict[str | None, str | MeterlineError]  # as asked -> the credit type, or why not
    reservations: dict[str, Reservation]  # by id: the batch's ids, as stored or as decided here
    hard_limits: dict[Key, Decimal]
    spend: dict[Key, Decimal]
    holding: dict[Key, dict[str, Decimal]]  # amounts still held, by reservation id
    added: list[Reservation] = field(default_factory=list)
    closed: dict[str, list[str]] = field(default_factory=dict)  # how -> reservation ids

    @classmethod
    def read(cls, conn: Connection, requests: Sequence[Request], now_us: int, open_horizon_us: int) -> _Batch:
        asks = [r for r in requests if isinstance(r, Ask)]
        archived = customers.lock_many(conn, [a.customer_id for a in asks])
        credit_types = {c: _credit_type(conn, c) for c in {a.credit_type_id for a in asks}}
        keys = sorted(
            {
                (a.customer_id, ct)
                for a in asks
                if a.customer_id in archived and isinstance(ct := credit_types[a.credit_type_id], str)
            }
        )
        limits = _hard_limits(conn, sorted(archived))
        batch = cls(
            now_us=now_us,
            archived=archived,
            credit_types=credit_types,
            reservations=store.get_many(conn, [r.reservation_id for r in requests]),
            hard_limits=limits,
            spend={},
            holding={key: {} for key in keys},
        )
        batch._read_holding(conn, sorted(archived))
        batch.spend = _spend(conn, [k for k in keys if k in limits], now_us, open_horizon_us)
        return batch

    def reserve(self, ask: Ask) -> Outcome:
        if ask.customer_id not in self.archived:
            return NotFound(f"customer_id: no customer with id {ask.customer_id}")
        credit_type = self.credit_types[ask.credit_type_id]
        if not isinstance(credit_type, str):
            return credit_type
        key = (ask.customer_id, credit_type)
        hard_limit = self.hard_limits.get(key)
        spend = self.spend.get(key, Decimal(0))
        held = self.holding[key]
        earlier = self.reservations.get(ask.reservation_id)
        if earlier is not None:
            different = _different(earlier, ask, credit_type)
            if different is not None:
                return different
            ended = earlier.state_at(self.now_us)
            committed = spend + sum(held.values(), Decimal(0))
            return Answer(ended is None, ENDED_REASONS.get(ended or ""), remaining(hard_limit, committed))
        if self.archived[ask.customer_id] is not None:
            return Answer(False, CUSTOMER_ARCHIVED, None)
        answer = decide(ask.amount, hard_limit, spend, held.values())
        if answer.granted:
            self._add(ask, credit_type)
        return answer

    def release(self, ask: Release) -> Outcome:
        found = self.reservations.get(ask.reservation_id)
        if found is None:
            return NotFound(f"reservation_id: no reservation {ask.reservation_id}")
        ended = found.state_at(self.now_us) or RELEASED
        if found.closed_as is None:
            self._close(found, ended)
        return ended

    def write(self, conn: Connection) -> set[str]:
        """Store what the batch decided; returns the ids of granted reservations another process
        took first."""
        added = {r.id for r in self.added}
        stored = store.add_many(conn, self.added)
        for closed_as, ids in self.closed.items():
            # One closed after its grant in the same batch was stored as it was decided.
            store.close(conn, ids, closed_as, self.now_us)
        return added - stored

    def _read_holding(self, conn: Connection, customer_ids: list[str]) -> None:
        """The customers' reservations still holding; those found settled or expired are closed
        in this batch, so that what the next decision reads stays the few that hold."""
        holding, ended = store.not_closed_of(conn, customer_ids, self.now_us)
        for held in holding:
            self.holding.setdefault((held.customer_id, held.credit_type_id), {})[held.id] = held.amount
        for closed_as, ids in ended.items():
            self.closed.setdefault(closed_as, []).extend(ids)

    def _add(self, ask: Ask, credit_type: str) -> None:
        reservation = Reservation(
            id=ask.reservation_id,
            customer_id=ask.customer_id,
            credit_type_id=credit_type,
            amount=ask.amount,
            created_at_us=self.now_us,
            expires_at_us=self.now_us + ask.expires_in_s * US_PER_SECOND,
            closed_as=None,
            closed_at_us=None,
            settled=False,
        )
        self.added.append(reservation)
        self.reservations[reservation.id] = reservation
        self.holding[(ask.customer_id, credit_type)][reservation.id] = ask.amount

    def _close(self, reservation: Reservation, closed_as: str) -> None:
        self.reservations[reservation.id] = replace(
            reservation, closed_as=closed_as, closed_at_us=self.now_us
        )
        self.holding.get((reservation.customer_id, reservation.credit_type_id), {}).pop(reservation.id, None)
        self.closed.setdefault(closed_as, []).append(reservation.id)


def _credit_type(conn: Connection, asked: str | None) -> str | MeterlineError:
    # USD cents is always there: the usual reservation reads no credit type.
    if asked is None:
        return USD_CENTS_CREDIT_TYPE_ID
    try:
        return credit_type_asked(conn, asked, for_change=False)
    except MeterlineError as refused:
        return refused


def _hard_limits(conn: Connection, customer_ids: list[str]) -> dict[Key, Decimal]:
    """Each customer's hard limit by credit type: the newest, should two ever exist."""
    limits = alerts.spend_limit_thresholds(conn, customer_ids, customer_spend.HARD)  # oldest first
    return {(customer_id, credit_type_id): threshold for customer_id, credit_type_id, threshold in limits}


def _spend(conn: Connection, keys: list[Key], now_us: int, open_horizon_us: int) -> dict[Key, Decimal]:
    """The period's spend: as the engine stored it where that still holds, else derived now."""
    found = customer_spend.still_holding(conn, keys, now_us)
    missing = [key for key in keys if key not in found]
    if missing:
        derived = views(conn, missing, now_us, open_horizon_us)
        found.update(((v.customer_id, v.credit_type_id), v.current_spend) for v in derived)
    return found


def _different(earlier: Reservation, ask: Ask, credit_type: str) -> Conflict | None:
    if (earlier.customer_id, earlier.credit_type_id, earlier.amount) == (
        ask.customer_id,
        credit_type,
        ask.amount,
    ):
        return None
    return Conflict(
        f"reservation_id: {ask.reservation_id} already reserves {earlier.amount} in "
        f"{earlier.credit_type_id} for customer {earlier.customer_id}"
    )
