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
from meterline.store.reservations import EXPIRED, RELEASED, SETTLED, Held, Reservation

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
    conn: Connection,
    requests: Sequence[Request],
    now_us: int,
    open_horizon_us: int,
    known: Known | None = None,
) -> list[Outcome]:
    """Decide each request in order, each seeing what the ones before it granted or released, and
    write the result; the outcomes hold once the caller's transaction commits. `known`: what
    earlier batches read and decided, which the caller knows nothing else has changed since
    (`Known`); it is brought up to date with this batch, so the caller clears it if the
    transaction does not commit."""
    known = Known() if known is None else known
    batch = _Batch.read(conn, requests, now_us, open_horizon_us, known)
    outcomes = [batch.reserve(r) if isinstance(r, Ask) else batch.release(r) for r in requests]
    taken = batch.write(conn)
    if taken:
        known.clear()  # it counted as held here what another process holds
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
class Holder:
    """A customer as reservations are decided on it."""

    archived_at_us: int | None
    hard_limits: dict[str, Decimal]  # by credit type
    holding: dict[str, Held]  # its reservations still holding, by id (every credit type)
    # By credit type: the spend the engine stored and until when it holds (`valid_until_us`),
    # or None where the stored one did not hold when read (derived in every batch, then).
    stored_spend: dict[str, tuple[Decimal, int | None] | None] = field(default_factory=dict)


@dataclass(slots=True)
class Known:
    """What reservation batches read of their customers, and what they granted and released since,
    kept from one batch to the next by a writer that knows nothing else wrote the database in
    between (SQLite: its own connection, `store.db.KeptConnection`); a batch then reads only the
    customers it does not know yet, and the reservation ids it is asked about. What changes with
    the clock alone is decided from the clock each batch (expiry, a stored spend's end). Empty
    for every batch elsewhere: each reads all it decides on."""

    customers: dict[str, Holder] = field(default_factory=dict)  # those that exist

    def clear(self) -> None:
        self.customers.clear()


@dataclass(slots=True)
class _Batch:
    """What a batch's decisions are made against, kept up to date as each is made."""

    now_us: int
    known: Known  # the batch's customers among them
    credit_types: dict[str | None, str | MeterlineError]  # as asked -> the credit type, or why not
    reservations: dict[str, Reservation]  # by id: the batch's ids, as stored or as decided here
    spend: dict[Key, Decimal] = field(default_factory=dict)
    added: list[Reservation] = field(default_factory=list)
    closed: dict[str, list[str]] = field(default_factory=dict)  # how -> reservation ids

    @classmethod
    def read(
        cls, conn: Connection, requests: Sequence[Request], now_us: int, open_horizon_us: int, known: Known
    ) -> _Batch:
        asks = [r for r in requests if isinstance(r, Ask)]
        asked = sorted({a.customer_id for a in asks})
        new = [c for c in asked if c not in known.customers]
        archived = customers.lock_many(conn, new)
        credit_types = {c: _credit_type(conn, c) for c in {a.credit_type_id for a in asks}}
        limits = _hard_limits(conn, sorted(archived))
        batch = cls(
            now_us=now_us,
            known=known,
            credit_types=credit_types,
            reservations=store.get_many(conn, [r.reservation_id for r in requests]),
        )
        for customer_id, archived_at_us in archived.items():
            known.customers[customer_id] = Holder(archived_at_us, limits.get(customer_id, {}), {})
        batch._read_holding(conn, sorted(archived))
        batch._expire([c for c in asked if c in known.customers and c not in archived])
        batch._read_spend(conn, asks, open_horizon_us)
        return batch

    def reserve(self, ask: Ask) -> Outcome:
        holder = self.known.customers.get(ask.customer_id)
        if holder is None:
            return NotFound(f"customer_id: no customer with id {ask.customer_id}")
        credit_type = self.credit_types[ask.credit_type_id]
        if not isinstance(credit_type, str):
            return credit_type
        hard_limit = holder.hard_limits.get(credit_type)
        spend = self.spend.get((ask.customer_id, credit_type), Decimal(0))
        held = [h.amount for h in holder.holding.values() if h.credit_type_id == credit_type]
        earlier = self.reservations.get(ask.reservation_id)
        if earlier is not None:
            different = _different(earlier, ask, credit_type)
            if different is not None:
                return different
            ended = earlier.state_at(self.now_us)
            committed = spend + sum(held, Decimal(0))
            return Answer(ended is None, ENDED_REASONS.get(ended or ""), remaining(hard_limit, committed))
        if holder.archived_at_us is not None:
            return Answer(False, CUSTOMER_ARCHIVED, None)
        answer = decide(ask.amount, hard_limit, spend, held)
        if answer.granted:
            self._add(ask, credit_type, holder)
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
        if not customer_ids:
            return
        holding, ended = store.not_closed_of(conn, customer_ids, self.now_us)
        for held in holding:
            self.known.customers[held.customer_id].holding[held.id] = held
        for closed_as, ids in ended.items():
            self.closed.setdefault(closed_as, []).extend(ids)

    def _expire(self, customer_ids: list[str]) -> None:
        """Known customers' reservations that expired since: closed in this batch, as reading
        them would have (settled ones are not known: the engine's commit that settles one ends
        what is known)."""
        for customer_id in customer_ids:
            holding = self.known.customers[customer_id].holding
            for held in [h for h in holding.values() if self.now_us >= h.expires_at_us]:
                del holding[held.id]
                self.closed.setdefault(EXPIRED, []).append(held.id)

    def _read_spend(self, conn: Connection, asks: list[Ask], open_horizon_us: int) -> None:
        """The spend of each (customer, credit type) asked with a hard limit: the engine's stored
        one while it holds, else derived now."""
        keys = sorted(
            {
                (a.customer_id, ct)
                for a in asks
                if (holder := self.known.customers.get(a.customer_id)) is not None
                and isinstance(ct := self.credit_types[a.credit_type_id], str)
                and ct in holder.hard_limits
            }
        )
        unread = [k for k in keys if k[1] not in self.known.customers[k[0]].stored_spend]
        if unread:
            found = customer_spend.stored_holding(conn, unread, self.now_us)
            for customer_id, credit_type in unread:
                self.known.customers[customer_id].stored_spend[credit_type] = found.get(
                    (customer_id, credit_type)
                )
        derive = []
        for key in keys:
            stored = self.known.customers[key[0]].stored_spend[key[1]]
            if stored is not None and (stored[1] is None or stored[1] > self.now_us):
                self.spend[key] = stored[0]
            else:
                derive.append(key)
        if derive:
            derived = views(conn, derive, self.now_us, open_horizon_us)
            self.spend.update(((v.customer_id, v.credit_type_id), v.current_spend) for v in derived)

    def _add(self, ask: Ask, credit_type: str, holder: Holder) -> None:
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
        holder.holding[reservation.id] = Held(
            reservation.id, ask.customer_id, credit_type, ask.amount, reservation.expires_at_us
        )

    def _close(self, reservation: Reservation, closed_as: str) -> None:
        self.reservations[reservation.id] = replace(
            reservation, closed_as=closed_as, closed_at_us=self.now_us
        )
        holder = self.known.customers.get(reservation.customer_id)
        if holder is not None:
            holder.holding.pop(reservation.id, None)
        self.closed.setdefault(closed_as, []).append(reservation.id)


def _credit_type(conn: Connection, asked: str | None) -> str | MeterlineError:
    # USD cents is always there: the usual reservation reads no credit type.
    if asked is None:
        return USD_CENTS_CREDIT_TYPE_ID
    try:
        return credit_type_asked(conn, asked, for_change=False)
    except MeterlineError as refused:
        return refused


def _hard_limits(conn: Connection, customer_ids: list[str]) -> dict[str, dict[str, Decimal]]:
    """Each customer's hard limit by credit type: the newest, should two ever exist."""
    if not customer_ids:
        return {}
    found: dict[str, dict[str, Decimal]] = {}
    limits = alerts.spend_limit_thresholds(conn, customer_ids, customer_spend.HARD)  # oldest first
    for customer_id, credit_type_id, threshold in limits:
        found.setdefault(customer_id, {})[credit_type_id] = threshold
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
