"""Reservation batches on SQLite keep what they read and decided from one batch to the next while
nothing else writes the database (`services.reservations.Known`, `store.db.KeptConnection`), and
answer exactly as batches reading everything would: across releases of a known customer's
reservation in a batch without that customer, expiry, a limit changed by another connection, a
release decided alone, and the engine settling a reservation with usage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal

import pytest

from meterline.domain.events import UsageEvent
from meterline.domain.reservations import Answer
from meterline.domain.timeutil import US_PER_SECOND
from meterline.services import reservations as service
from meterline.services import spend_limits
from meterline.store import event_log
from meterline.store import reservations as store
from meterline.store.db import KeptConnection
from tests.sdk.alert_helpers import billed_customer
from tests.spend.test_reservation_batches import HORIZON_US, ask
from tests.support.inprocess import InProcess


class Batches:
    """Batches decided as the reservation writer decides them on SQLite."""

    def __init__(self, app: InProcess, kept: KeptConnection) -> None:
        self.app = app
        self.kept = kept
        self.known = service.Known()
        self.read_known: list[bool] = []  # per batch: whether it found the database as left

    def decide(self, requests: Sequence[service.Request], now_us: int | None = None) -> list[service.Outcome]:
        with self.kept.write(customer_state=False) as (conn, unchanged):
            if not unchanged:
                self.known.clear()
            self.read_known.append(unchanged)
            return service.decide_all(conn, requests, now_us or self.app.now, HORIZON_US, self.known)


@pytest.fixture
def batches(app: InProcess) -> Iterator[Batches]:
    kept = app.db.kept_connection()
    if kept is None:
        pytest.skip("only SQLite can tell that nothing else wrote the database")
    try:
        yield Batches(app, kept)
    finally:
        kept.close()


def limited(app: InProcess, hard_limit: int) -> tuple[str, str]:
    """A customer billed 100 cents a unit of its usage, with this hard limit, measured."""
    customer_id, usage = billed_customer(app.client, price=100)
    with app.db.write() as conn:
        spend_limits.set_limits(conn, customer_id, None, {"hard": Decimal(hard_limit)})
    app.run(app.now)
    return customer_id, usage.event_type


def test_what_earlier_batches_granted_and_released_counts_without_being_read_again(
    app: InProcess, batches: Batches
) -> None:
    customer_id, _event_type = limited(app, 1000)
    first = f"res-{uuid.uuid4()}"
    assert batches.decide([ask(customer_id, 600, first)]) == [Answer(True, None, Decimal(400))]
    assert batches.decide([ask(customer_id, 600)]) == [Answer(False, "would_pass_hard_limit", Decimal(400))]
    # Released in a batch that asks nothing of the customer: the room comes back all the same.
    assert batches.decide([service.Release(first)]) == ["released"]
    assert batches.decide([ask(customer_id, 900)]) == [Answer(True, None, Decimal(100))]
    assert batches.read_known == [False, True, True, True]


def test_a_known_reservation_that_expired_is_closed_and_its_room_given_back(
    app: InProcess, batches: Batches
) -> None:
    customer_id, _event_type = limited(app, 1000)
    short = service.Ask(f"res-{uuid.uuid4()}", customer_id, Decimal(600), None, 60)
    assert batches.decide([short]) == [Answer(True, None, Decimal(400))]
    later = app.now + 61 * US_PER_SECOND
    assert batches.decide([ask(customer_id, 900)], later) == [Answer(True, None, Decimal(100))]
    assert batches.read_known == [False, True]
    with app.db.read() as conn:
        assert store.get_many(conn, [short.reservation_id])[short.reservation_id].closed_as == "expired"


def test_another_connections_write_makes_the_next_batch_read_again(app: InProcess, batches: Batches) -> None:
    customer_id, _event_type = limited(app, 1000)
    held = f"res-{uuid.uuid4()}"
    assert batches.decide([ask(customer_id, 600, held)]) == [Answer(True, None, Decimal(400))]
    with app.db.write() as conn:  # the limit lowered by a request
        spend_limits.set_limits(conn, customer_id, None, {"hard": Decimal(700)})
    assert batches.decide([ask(customer_id, 200)]) == [Answer(False, "would_pass_hard_limit", Decimal(100))]
    with app.db.write() as conn:  # a release decided alone (a request with an Idempotency-Key)
        assert service.decide_all(conn, [service.Release(held)], app.now, HORIZON_US) == ["released"]
    assert batches.decide([ask(customer_id, 700)]) == [Answer(True, None, Decimal(0))]
    assert batches.read_known == [False, False, False]


def test_a_reservation_the_engine_settled_counts_once_in_the_spend(app: InProcess, batches: Batches) -> None:
    customer_id, event_type = limited(app, 1000)
    settled = f"res-{uuid.uuid4()}"
    assert batches.decide([ask(customer_id, 600, settled)]) == [Answer(True, None, Decimal(400))]
    app.now += US_PER_SECOND
    event = UsageEvent(
        f"tx-{uuid.uuid4()}", customer_id, event_type, app.now, {"qty": 2, "reservation_id": settled}
    )
    with app.db.log_write() as conn:
        event_log.append(conn, [event], app.now)
    app.run(app.now)  # 200 spent, the 600 held no longer: 800 of room
    assert batches.decide([ask(customer_id, 700)]) == [Answer(True, None, Decimal(100))]
    assert batches.read_known == [False, False]
