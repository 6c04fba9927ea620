"""Reservations decided in batches: requests waiting together share one commit, each decided in
the order it came against what the ones before it granted or released; a grant is answered only
once committed, survives the server being killed, and two API processes on one database never
grant together past a hard limit."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Connection

from meterline.api.reservation_writer import ReservationWriter
from meterline.domain.errors import Conflict, NotFound, Unavailable
from meterline.domain.reservations import Answer
from meterline.services import reservations as service
from meterline.services import spend_limits
from meterline.store import customers
from tests.sdk.alert_helpers import billed_customer
from tests.sdk.helpers import uid
from tests.spend.helpers import Extensions, Json
from tests.support.inprocess import InProcess
from tests.support.server import ENGINE_IN_THREADS, RunningServer, start_server
from tests.support.waiting import wait_for

HORIZON_US = 3600 * 1_000_000


def limited_customer(app: InProcess, hard_limit: int) -> str:
    customer_id, _usage = billed_customer(app.client, price=100)
    with app.db.write() as conn:
        spend_limits.set_limits(conn, customer_id, None, {"hard": Decimal(hard_limit)})
    app.run(app.now)  # measured: its spend (0) is the one stored
    return customer_id


def ask(customer_id: str, amount: int, reservation_id: str | None = None) -> service.Ask:
    return service.Ask(reservation_id or f"res-{uid()}", customer_id, Decimal(amount), None, 300)


def test_a_batch_decides_each_request_against_the_ones_before_it(app: InProcess) -> None:
    customer_id = limited_customer(app, 1000)
    first, other = f"res-{uid()}", f"res-{uid()}"
    requests: list[service.Request] = [
        ask(customer_id, 600, first),
        ask(customer_id, 600),  # 600 held already: refused
        ask(customer_id, 600, first),  # the same reservation asked again: not held twice
        ask(customer_id, 601, first),  # the same id, another amount
        ask(uid(), 1),  # an unknown customer fails alone
        service.Release(first),
        ask(customer_id, 900, other),  # the room the release gave back
        service.Release(f"res-{uid()}"),
    ]
    with app.db.write() as conn:
        outcomes = service.decide_all(conn, requests, app.now, HORIZON_US)
    assert outcomes[:3] == [
        Answer(True, None, Decimal(400)),
        Answer(False, "would_pass_hard_limit", Decimal(400)),
        Answer(True, None, Decimal(400)),
    ]
    assert isinstance(outcomes[3], Conflict) and isinstance(outcomes[4], NotFound)
    assert outcomes[5:7] == ["released", Answer(True, None, Decimal(100))]
    assert isinstance(outcomes[7], NotFound)
    # What the batch decided was stored: the next one sees the release and the grant.
    with app.db.write() as conn:
        again = service.decide_all(
            conn, [ask(customer_id, 600, first), ask(customer_id, 101)], app.now, HORIZON_US
        )
    assert again == [
        Answer(False, "reservation_released", Decimal(100)),
        Answer(False, "would_pass_hard_limit", Decimal(100)),
    ]


def test_requests_waiting_together_share_one_commit_and_never_pass_the_limit(app: InProcess) -> None:
    customer_id = limited_customer(app, 3000)
    writer = ReservationWriter(app.db, HORIZON_US)
    writer.start()
    outcomes: list[object] = []

    async def send(count: int) -> None:
        outcomes.extend(await asyncio.gather(*(writer.submit(ask(customer_id, 100)) for _ in range(count))))

    try:
        # The customer's row held (and, on SQLite, the write lock): the writer's first batch, one
        # request, waits; the 63 sent meanwhile wait together for the next one.
        with app.db.write() as conn:
            customers.lock(conn, customer_id)
            senders = [threading.Thread(target=asyncio.run, args=(send(1),))]
            senders[0].start()
            # Received and taken from the queue: the writer waits for the lock with it.
            wait_for(lambda: (writer.received, writer._queue.qsize()), lambda seen: seen == (1, 0))
            senders.append(threading.Thread(target=asyncio.run, args=(send(63),)))
            senders[1].start()
            wait_for(lambda: writer._queue.qsize(), lambda waiting: waiting == 63)
        for sender in senders:
            sender.join(30)
    finally:
        writer.stop()
    assert writer.commits == 2 and writer.requests_committed == 64
    granted = [o for o in outcomes if isinstance(o, Answer) and o.granted]
    assert len(granted) == 30  # 3,000 of room, 100 each: never more
    assert sorted(o.remaining for o in granted) == [Decimal(100 * n) for n in range(30)]


# METERLINE_RESERVATION_DURABLE_COMMITS: flushed to disk (the default), or written to the
# operating system only; a process killed keeps every answered grant either way.
COMMITS = pytest.mark.parametrize("durable", ["true", "false"], ids=["flushed", "not_flushed"])


@COMMITS
def test_a_granted_reservation_survives_the_server_being_killed(
    own_database_url: str, tmp_path: Path, durable: str
) -> None:
    server = start_server(own_database_url, tmp_path, METERLINE_RESERVATION_DURABLE_COMMITS=durable)
    restarted: RunningServer | None = None
    try:
        with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=30) as http:
            api = Extensions(http)
            customer_id = http.post("/v1/customers", json={"name": f"crash {uid()}"}).json()["data"]["id"]
            api.set_limits(customer_id, hard_limit=1000)
            held = f"res-{uid()}"
            body = {"customer_id": customer_id, "reservation_id": held, "amount": 700}
            assert api.ok("/v1/access/reserve", body)["data"]["granted"] is True
        server.kill()  # at once after the answer: nothing but the commit kept it
        restarted = start_server(
            own_database_url, tmp_path, token=server.token, METERLINE_RESERVATION_DURABLE_COMMITS=durable
        )
        with httpx.Client(base_url=restarted.base_url, headers=restarted.headers(), timeout=30) as http:
            api = Extensions(http)
            assert api.ok("/v1/access/reserve", body)["data"] == {
                "granted": True,
                "reason": None,
                "remaining": 300,
            }
            other = {"customer_id": customer_id, "reservation_id": f"res-{uid()}", "amount": 301}
            assert api.ok("/v1/access/reserve", other)["data"]["granted"] is False
    finally:
        for running in (restarted, server):
            if running is not None:
                running.stop()


def test_two_api_processes_never_grant_together_past_the_limit(
    server: RunningServer, api: Extensions, tmp_path: Path
) -> None:
    # Two API processes on one database are under test; the second's engine runs as threads.
    second = start_server(server.database_url, tmp_path, token=server.token, **ENGINE_IN_THREADS)
    try:
        customer_id = api.ok("/v1/customers", {"name": f"two {uid()}"})["data"]["id"]
        api.set_limits(customer_id, hard_limit=3000)

        def one(index: int) -> Json:
            target = (server, second)[index % 2]
            with httpx.Client(base_url=target.base_url, headers=target.headers(), timeout=30) as http:
                body = {"customer_id": customer_id, "reservation_id": f"res-{uid()}", "amount": 100}
                found: Json = Extensions(http).ok("/v1/access/reserve", body)["data"]
                return found

        with ThreadPoolExecutor(64) as pool:
            answers = list(pool.map(one, range(64)))
    finally:
        second.stop()
    granted = [a for a in answers if a["granted"]]
    assert len(granted) == 30
    assert sorted(a["remaining"] for a in granted) == [100 * n for n in range(30)]


def test_commits_not_flushed_keep_the_limit_for_64_clients_and_every_grant_through_a_kill(
    own_database_url: str, tmp_path: Path
) -> None:
    server = start_server(own_database_url, tmp_path, METERLINE_RESERVATION_DURABLE_COMMITS="false")
    restarted: RunningServer | None = None
    try:
        with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=30) as http:
            customer_id = http.post("/v1/customers", json={"name": f"fast {uid()}"}).json()["data"]["id"]
            Extensions(http).set_limits(customer_id, hard_limit=3000)

        def one(_: int) -> tuple[Json, Json]:
            with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=30) as http:
                body = {"customer_id": customer_id, "reservation_id": f"res-{uid()}", "amount": 100}
                found: Json = Extensions(http).ok("/v1/access/reserve", body)["data"]
                return body, found

        with ThreadPoolExecutor(64) as pool:
            answers = list(pool.map(one, range(64)))
        server.kill()  # at once after the last answer
        granted = [body for body, answer in answers if answer["granted"]]
        assert len(granted) == 30  # 3,000 of room, 100 each: never more
        assert sorted(a["remaining"] for _, a in answers if a["granted"]) == [100 * n for n in range(30)]
        restarted = start_server(own_database_url, tmp_path, token=server.token)
        with httpx.Client(base_url=restarted.base_url, headers=restarted.headers(), timeout=30) as http:
            api = Extensions(http)
            # Every grant answered before the kill still holds: asked again, it is that grant.
            assert {api.ok("/v1/access/reserve", body)["data"]["granted"] for body in granted} == {True}
            other = {"customer_id": customer_id, "reservation_id": f"res-{uid()}", "amount": 1}
            assert api.ok("/v1/access/reserve", other)["data"] == {
                "granted": False,
                "reason": "would_pass_hard_limit",
                "remaining": 0,
            }
    finally:
        for running in (restarted, server):
            if running is not None:
                running.stop()


def test_a_batch_not_flushed_commits_so_and_its_connection_goes_back_to_flushed(app: InProcess) -> None:
    """The setting changes the batch's commit only: the next write on the same pooled
    connection waits for the disk again."""
    customer_id = limited_customer(app, 1000)
    writer = ReservationWriter(app.db, HORIZON_US, durable=False)
    seen: list[str] = []
    with app.db.write(durable=False) as conn:
        seen.append(_commit_mode(conn))
        service.decide_all(conn, [ask(customer_id, 100)], app.now, HORIZON_US)
    writer.start()
    try:
        outcome = asyncio.run(writer.submit(ask(customer_id, 200)))
    finally:
        writer.stop()
    for _ in range(3):  # every connection of the pool (two) after batches not flushed
        with app.db.write() as conn:
            seen.append(_commit_mode(conn))
    assert outcome == Answer(True, None, Decimal(700))
    assert seen == ["written", "flushed", "flushed", "flushed"]


def _commit_mode(conn: Connection) -> str:
    if conn.dialect.name == "sqlite":
        # 1: NORMAL (in WAL, the log written, not flushed); 2: FULL (flushed at every commit)
        return {1: "written", 2: "flushed"}[conn.exec_driver_sql("PRAGMA synchronous").scalar_one()]
    return {"off": "written", "on": "flushed"}[conn.exec_driver_sql("SHOW synchronous_commit").scalar_one()]


def test_metrics_say_where_a_batch_s_time_went(api: Extensions) -> None:
    customer_id = api.ok("/v1/customers", {"name": f"timed {uid()}"})["data"]["id"]
    api.set_limits(customer_id, hard_limit=1000)

    def counts() -> dict[str, float]:
        found = {}
        for line in api.http.get("/metrics").text.splitlines():
            if line.startswith("meterline_reservation_batch_part_seconds_count{"):
                found[line.split('part="', 1)[1].split('"', 1)[0]] = float(line.rsplit(" ", 1)[1])
        return found

    before = counts()
    body = {"customer_id": customer_id, "reservation_id": f"res-{uid()}", "amount": 100}
    assert api.ok("/v1/access/reserve", body)["data"]["granted"] is True
    after = counts()
    # Each request's wait for its batch, and each part of the batch it was decided in.
    assert {part: after[part] - before.get(part, 0) >= 1 for part in after} == {
        "queued": True,
        "begin": True,
        "decide": True,
        "commit": True,
    }


def test_a_reservation_with_an_idempotency_key_is_answered_again(api: Extensions) -> None:
    customer_id = api.ok("/v1/customers", {"name": f"keyed {uid()}"})["data"]["id"]
    api.set_limits(customer_id, hard_limit=1000)
    body = {"customer_id": customer_id, "reservation_id": f"res-{uid()}", "amount": 400}
    headers = {"Idempotency-Key": f"key-{uid()}"}
    first = api.http.post("/v1/access/reserve", json=body, headers=headers)
    again = api.http.post("/v1/access/reserve", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() == {"data": {"granted": True, "reason": None, "remaining": 600}}
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = api.http.post("/v1/access/reserve", json={**body, "amount": 500}, headers=headers)
    assert other.status_code == 409
    assert api.limits(customer_id)["hard_limit"] == 1000  # nothing else changed


def test_a_request_the_database_refuses_fails_alone_not_the_others_of_its_batch(app: InProcess) -> None:
    customer_id = limited_customer(app, 1000)
    writer = ReservationWriter(app.db, HORIZON_US)
    writer.start()
    # A lone surrogate cannot be encoded for either database (the API refuses it at the edge;
    # here it stands for any request the database refuses).
    refused = ask(customer_id, 100, "res-\ud800")
    grouped = [ask(customer_id, 300), refused, ask(customer_id, 400)]
    outcomes: list[object] = []

    async def send(requests: list[service.Request]) -> None:
        outcomes.extend(await asyncio.gather(*(writer.submit(r) for r in requests), return_exceptions=True))

    try:
        with app.db.write() as conn:  # the writer's first batch waits: the three queue together
            customers.lock(conn, customer_id)
            first = threading.Thread(target=asyncio.run, args=(send([ask(customer_id, 200)]),))
            first.start()
            wait_for(lambda: (writer.received, writer._queue.qsize()), lambda seen: seen == (1, 0))
            rest = threading.Thread(target=asyncio.run, args=(send(grouped),))
            rest.start()
            wait_for(lambda: writer._queue.qsize(), lambda waiting: waiting == 3)
        first.join(30)
        rest.join(30)
    finally:
        writer.stop()
    assert outcomes[0] == Answer(True, None, Decimal(800))
    assert outcomes[1] == Answer(True, None, Decimal(500))  # decided again alone, as it came
    assert isinstance(outcomes[2], Unavailable)
    assert outcomes[3] == Answer(True, None, Decimal(100))
    with app.db.write() as conn:  # what was granted is stored, the refused one is not
        again = service.decide_all(conn, [ask(customer_id, 101), grouped[2]], app.now, HORIZON_US)
    assert again == [Answer(False, "would_pass_hard_limit", Decimal(100)), Answer(True, None, Decimal(100))]
