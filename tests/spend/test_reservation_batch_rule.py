"""A batch of reservation requests answers each one exactly as deciding it alone, in the order
they came, would: for any mix of grants, refusals, the same id asked again (for the same or another
amount), releases, unknown customers and credit types, an archived customer, and reservations
that expired or were released before the batch. Checked against the rule one request at a time
(each in a transaction of its own, one that fails undoing only itself), on both databases."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import count
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection

from meterline.domain.errors import MeterlineError
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID
from meterline.services import reservations as service
from meterline.store import reservations as store
from tests.sdk.alert_helpers import customer
from tests.sdk.helpers import uid
from tests.spend.test_reservation_batches import HORIZON_US, limited_customer
from tests.support.inprocess import InProcess

# Ids each example may use: fresh ones, and those stored before any example (below).
FRESH_IDS = 4
HELD, EXPIRED, RELEASED_BEFORE, HELD_OTHER = "held", "expired", "released", "held-other"
STORED_IDS = (HELD, EXPIRED, RELEASED_BEFORE, HELD_OTHER)


@dataclass(frozen=True)
class World:
    """Customers and reservations stored before the examples, which each example reads and rolls
    back: two with hard limits, one without, one archived, one that does not exist."""

    customers: tuple[str, ...]
    stored_ids: dict[str, str]  # as the examples name them -> the stored id


class RolledBack(Exception):
    """Raised at the end of an example's transaction, so it leaves nothing behind."""


def stored_world(app: InProcess) -> World:
    tight, roomy, archived = (limited_customer(app, limit) for limit in (500, 2000, 1000))
    unlimited = customer(app.client)
    app.client.v1.customers.archive(id=archived)
    stored = {name: f"res-{name}-{uid()}" for name in STORED_IDS}
    earlier = app.now - 3600 * 1_000_000
    with app.db.write() as conn:
        service.decide_all(
            conn,
            [
                ask(stored[HELD], tight, 200, expires_in_s=7200),
                ask(stored[EXPIRED], tight, 100, expires_in_s=60),  # expired since
                ask(stored[RELEASED_BEFORE], roomy, 300),
                service.Release(stored[RELEASED_BEFORE]),
                ask(stored[HELD_OTHER], roomy, 1500, expires_in_s=7200),
            ],
            earlier,
            HORIZON_US,
        )
    return World((tight, roomy, unlimited, archived, f"no-such-{uid()}"), stored)


def ask(reservation_id: str, customer_id: str, amount: int, expires_in_s: int = 300) -> service.Ask:
    return service.Ask(reservation_id, customer_id, Decimal(amount), None, expires_in_s)


# A request as drawn: ("ask", id index, customer index, amount, credit type index) or ("release", id index).
Drawn = tuple[Any, ...]
ID_INDEXES = st.integers(0, FRESH_IDS + len(STORED_IDS) - 1)
ASKS = st.tuples(
    st.just("ask"),
    ID_INDEXES,
    st.integers(0, 4),
    st.sampled_from([1, 100, 200, 299, 300, 301, 500, 1500]),
    st.sampled_from([0, 0, 0, 1, 2]),  # mostly USD by default; USD named; a credit type that does not exist
)
RELEASES = st.tuples(st.just("release"), ID_INDEXES)
REQUESTS = st.lists(st.one_of(ASKS, ASKS, RELEASES), min_size=1, max_size=14)


def requests_of(world: World, drawn: Sequence[Drawn], example: int) -> list[service.Request]:
    ids = [f"res-{example}-{index}-{uid()}" for index in range(FRESH_IDS)]
    ids += [world.stored_ids[name] for name in STORED_IDS]
    credit_types = (None, USD_CENTS_CREDIT_TYPE_ID, f"no-such-{uid()}")
    found: list[service.Request] = []
    for request in drawn:
        if request[0] == "release":
            found.append(service.Release(ids[request[1]]))
            continue
        _kind, id_index, customer_index, amount, credit_type = request
        found.append(
            service.Ask(
                ids[id_index],
                world.customers[customer_index],
                Decimal(amount),
                credit_types[credit_type],
                300,
            )
        )
    return found


Seen = tuple[list[Any], list[Any], list[Any]]


def seen_after(
    app: InProcess, world: World, requests: list[service.Request], decide: Callable[[Connection], list[Any]]
) -> Seen:
    """The outcomes `decide` gives, then what is stored: the reservations the requests name, and
    those still holding for the world's customers; all rolled back afterwards."""
    seen: Seen | None = None
    try:
        with app.db.write() as conn:
            outcomes = [_comparable(o) for o in decide(conn)]
            named = [
                _as_seen(r, app.now)
                for r in store.get_many(conn, [r.reservation_id for r in requests]).values()
            ]
            holding, _ended = store.not_closed_of(conn, world.customers, app.now)
            seen = outcomes, sorted(named), sorted(holding, key=lambda held: held.id)
            raise RolledBack
    except RolledBack:
        pass
    assert seen is not None
    return seen


def _as_seen(reservation: store.Reservation, now_us: int) -> tuple[Any, ...]:
    # How it ended, not when it was marked so: a reservation found expired is marked closed by
    # whichever transaction reads it next, which a refused request's rollback may undo.
    r = reservation
    return (
        r.id,
        r.customer_id,
        r.credit_type_id,
        r.amount,
        r.created_at_us,
        r.expires_at_us,
        r.state_at(now_us),
    )


def _comparable(outcome: service.Outcome) -> Any:
    # Errors compare by kind and message (the field named and the rule), as a client sees them.
    return (type(outcome).__name__, str(outcome)) if isinstance(outcome, MeterlineError) else outcome


def one_at_a_time(conn: Connection, requests: list[service.Request], now_us: int) -> list[service.Outcome]:
    """The rule: each request decided alone, in order, in a transaction of its own (a savepoint
    here), which a refused request rolls back, as a request deciding alone does."""
    outcomes: list[service.Outcome] = []
    for request in requests:
        with conn.begin_nested() as alone:
            [outcome] = service.decide_all(conn, [request], now_us, HORIZON_US)
            if isinstance(outcome, MeterlineError):
                alone.rollback()
        outcomes.append(outcome)
    return outcomes


def test_a_batch_answers_each_request_as_deciding_it_alone_in_order_would(app: InProcess) -> None:
    world = stored_world(app)
    examples = count()

    @settings(max_examples=60, deadline=None)
    @given(drawn=REQUESTS)
    def batch_matches_the_rule(drawn: list[Drawn]) -> None:
        requests = requests_of(world, drawn, next(examples))
        alone = seen_after(app, world, requests, lambda conn: one_at_a_time(conn, requests, app.now))
        batched = seen_after(
            app, world, requests, lambda conn: service.decide_all(conn, requests, app.now, HORIZON_US)
        )
        assert batched == alone

    batch_matches_the_rule()
