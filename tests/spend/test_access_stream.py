"""GET /v1/access/stream through a real server: decisions on connect, every change of access pushed,
heartbeats, and a reconnection with Last-Event-ID that misses nothing and repeats nothing."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from metronome import Metronome

from tests.sdk.alert_helpers import billed_customer, customer, use
from tests.sdk.helpers import uid
from tests.spend.helpers import EventStream, Extensions
from tests.support.databases import fresh_database
from tests.support.server import ENGINE_IN_THREADS, RunningServer, start_server

OpenStream = Callable[..., EventStream]


@pytest.fixture
def open_stream(server: RunningServer) -> Iterator[OpenStream]:
    """Opens streams on the module's server; every one is closed after the test."""
    opened: list[EventStream] = []

    def start(refs: list[str], heartbeat_s: float = 1.0, **headers: str) -> EventStream:
        stream = EventStream(server.base_url, server.token, refs, heartbeat_s, **headers)
        opened.append(stream)
        return stream

    yield start
    for stream in opened:
        stream.close()


def test_first_decisions_then_every_change_of_access(
    client: Metronome, api: Extensions, open_stream: OpenStream
) -> None:
    alias = f"acme-{uid()}"
    customer_id, usage = billed_customer(client, price=100)
    client.v1.customers.set_ingest_aliases(customer_id=customer_id, ingest_aliases=[alias])
    limits = api.set_limits(customer_id, soft_limit=500, hard_limit=1000)
    stream = open_stream([alias, "nobody"])
    ready = stream.wait("ready")
    assert ready == [{"customers": 2}]
    assert [(d["customer_id"], d["has_access"]) for d in stream.of("access")] == [
        (alias, True),
        ("nobody", False),
    ]

    use(client, customer_id, usage, 6)  # past the soft limit: no change of access, nothing pushed
    use(client, customer_id, usage, 5)  # past the hard limit
    [_first, _nobody, blocked] = stream.wait("access", 3)
    assert (blocked["customer_id"], blocked["has_access"]) == (alias, False)
    assert blocked["reasons"] == [
        {
            "code": "hard_limit_reached",
            "alert_id": limits["hard_limit_alert_id"],
            "threshold": 1000,
            "value": 1100,
        }
    ]

    api.set_limits(customer_id, hard_limit=5000)  # a raise restores access
    restored = stream.wait("access", 4)[3]
    assert (restored["customer_id"], restored["has_access"], restored["reasons"]) == (alias, True, [])

    client.v1.customers.archive(id=customer_id)  # no notification: the stream's own refresh sees it
    archived = stream.wait("access", 5)[4]
    assert [r["code"] for r in archived["reasons"]] == ["customer_archived"]
    assert len(stream.of("access")) == 5  # nothing pushed but changes
    assert stream.of("heartbeat") and "as_of" in stream.of("heartbeat")[0]


def test_a_reconnection_misses_nothing_and_repeats_nothing(
    client: Metronome, api: Extensions, open_stream: OpenStream
) -> None:
    customer_id, usage = billed_customer(client, price=100)
    api.set_limits(customer_id, hard_limit=1000)
    first = open_stream([customer_id])
    first.wait("ready")
    held = first.last_id()
    assert held is not None
    first.close()

    # Nothing changed: resuming sends no decision again.
    unchanged = open_stream([customer_id], **{"Last-Event-ID": held})
    unchanged.wait("ready")
    assert unchanged.of("access") == []
    unchanged.close()

    # Access changed while no stream was open: resuming sends the change.
    use(client, customer_id, usage, 10)
    api.wait_access(customer_id, False)
    resumed = open_stream([customer_id], **{"Last-Event-ID": held})
    resumed.wait("ready")
    assert [d["has_access"] for d in resumed.of("access")] == [False]

    # An id from another stream, or none that parses, gets every decision.
    other = open_stream([customer_id], **{"Last-Event-ID": "garbage"})
    other.wait("ready")
    assert [d["has_access"] for d in other.of("access")] == [False]


def test_heartbeats_come_at_the_asked_pace(client: Metronome, open_stream: OpenStream) -> None:
    stream = open_stream([customer(client)], heartbeat_s=1)
    stream.wait("ready")
    started = time.monotonic()
    stream.wait("heartbeat", 3, timeout_s=10)
    assert time.monotonic() - started < 6


def test_a_stream_is_refused_like_any_bad_request(server: RunningServer) -> None:
    def answer(params: dict[str, str], **headers: str) -> httpx.Response:
        return httpx.get(
            f"{server.base_url}/v1/access/stream",
            params=params,
            headers={**server.headers(), **headers},
        )

    assert answer({}).json() == {"message": "customer_ids: must name between 1 and 1000 customers"}
    too_many = ",".join(f"c{i}" for i in range(1001))
    assert answer({"customer_ids": too_many}).status_code == 400
    assert answer({"customer_ids": "x" * 257}).json() == {
        "message": "customer_ids[0]: must be at most 256 characters"
    }
    assert answer({"customer_ids": "a", "heartbeat_s": "0"}).status_code == 400
    unauthorized = httpx.get(f"{server.base_url}/v1/access/stream", params={"customer_ids": "a"})
    assert unauthorized.status_code == 401


@pytest.mark.slow
def test_a_server_with_streams_open_stops_promptly(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with fresh_database(backend, tmp_path_factory.mktemp("stream-stop-db")) as url:
        # The streams' handling of SIGTERM is under test, not the engine's processes: threads here.
        running = start_server(url, tmp_path_factory.mktemp("stream-stop"), **ENGINE_IN_THREADS)
        try:
            streams = [
                EventStream(running.base_url, running.token, [f"c{i}"], heartbeat_s=60) for i in range(3)
            ]
            for stream in streams:
                stream.wait("ready")
            running.stop()
            # Ended by its own SIGTERM handling (uvicorn re-raises it once shut down), not by the
            # SIGKILL that `stop` sends 15 s later: a server waiting on its streams (a heartbeat
            # every 60 s) would have been killed. No wall-clock bound: a busy machine slows a
            # prompt stop too.
            assert running.process.returncode == -signal.SIGTERM
        finally:
            running.stop()
