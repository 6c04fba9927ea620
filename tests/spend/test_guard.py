"""meterline.guard.AccessGuard against a real server: decisions from memory, kept current by the
stream, the declared fail policy while the server is gone, fresh decisions once it is back."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from metronome import Metronome

from meterline.guard import AccessGuard, Decision
from tests.sdk.alert_helpers import billed_customer, customer, use
from tests.sdk.helpers import uid
from tests.spend.helpers import Extensions
from tests.support.databases import fresh_database
from tests.support.server import ENGINE_IN_THREADS, RunningServer, start_server
from tests.support.waiting import wait_for


def _guard(server: RunningServer, *refs: str, **options: object) -> AccessGuard:
    return AccessGuard(server.base_url, server.token, refs, **options)  # type: ignore[arg-type]


def test_decisions_follow_the_limits(client: Metronome, api: Extensions, server: RunningServer) -> None:
    customer_id, usage = billed_customer(client, price=100)
    api.set_limits(customer_id, hard_limit=1000)
    pushed: list[Decision] = []
    with _guard(server, customer_id, on_change=pushed.append) as guard:
        assert guard.wait_ready(10)
        assert guard.has_access(customer_id)
        use(client, customer_id, usage, 10)
        wait_for(lambda: guard.has_access(customer_id), lambda allowed: not allowed)
        decision = guard.decision(customer_id)
        assert decision is not None and [r.code for r in decision.reasons] == ["hard_limit_reached"]
        assert decision.reasons[0].threshold == 1000

        api.set_limits(customer_id, hard_limit=2000)
        wait_for(lambda: guard.has_access(customer_id), bool)
    assert [d.has_access for d in pushed] == [True, False, True]


def test_an_unwatched_customer_is_checked_once_then_watched(
    client: Metronome, api: Extensions, server: RunningServer
) -> None:
    customer_id, usage = billed_customer(client, price=100)
    api.set_limits(customer_id, hard_limit=500)
    with _guard(server) as guard:
        assert guard.wait_ready(10)
        assert guard.has_access(customer_id)  # answered by a check, then pushed by the stream
        use(client, customer_id, usage, 5)
        wait_for(lambda: guard.has_access(customer_id), lambda allowed: not allowed)

        # A customer meterline does not know is asked about each time, never watched nor kept:
        # made-up ids cannot grow the watch list, and one created later is let in at once.
        ghost = f"ghost-{uid()}"
        assert not guard.has_access(ghost) and guard.decision(ghost) is None
        client.v1.customers.create(name="Ghost", ingest_aliases=[ghost])
        assert guard.has_access(ghost)


def test_a_guard_watches_at_most_a_stream_of_customers() -> None:
    guard = AccessGuard("http://127.0.0.1:9", "unused", [f"c{i}" for i in range(1000)])
    with pytest.raises(ValueError, match="at most 1000 customers"):
        guard.watch("one-more")


def test_answers_come_from_memory(client: Metronome, server: RunningServer) -> None:
    customer_id = customer(client)
    with _guard(server, customer_id) as guard:
        assert guard.wait_ready(10)
        calls = 100_000
        started = time.perf_counter()
        for _ in range(calls):
            guard.has_access(customer_id)
        assert (time.perf_counter() - started) / calls < 20e-6  # no network: microseconds at most


@pytest.fixture
def restartable(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RunningServer]]:
    """A server of the test's own, which the test stops and starts again on the same port and
    database (the list holds the one running now). What is under test is the guard in the client
    while its server is gone; the server's engine runs as threads, its layout not being tested."""
    with fresh_database(backend, tmp_path_factory.mktemp("guard-db")) as url:
        running = [start_server(url, tmp_path_factory.mktemp("guard"), **ENGINE_IN_THREADS)]
        yield running
        running[-1].stop()


def _restart(servers: list[RunningServer], workdir: Path) -> RunningServer:
    gone = servers[-1]
    port = int(gone.base_url.rsplit(":", 1)[1])
    servers.append(start_server(gone.database_url, workdir, token=gone.token, port=port, **ENGINE_IN_THREADS))
    return servers[-1]


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["closed", "open"])
def test_the_server_going_away_and_coming_back(
    restartable: list[RunningServer], tmp_path: Path, policy: str
) -> None:
    server = restartable[0]
    client = Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)
    with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=10) as http:
        api = Extensions(http)
        blocked, usage = billed_customer(client, price=100)
        allowed = customer(client)
        api.set_limits(blocked, hard_limit=1000)
        use(client, blocked, usage, 10)
        api.wait_access(blocked, False)
        with _guard(server, blocked, allowed, fail_policy=policy, max_stale_s=6) as guard:
            assert guard.wait_ready(10)
            assert (guard.has_access(blocked), guard.has_access(allowed)) == (False, True)

            server.stop()
            # Within max_stale_s the cache is still trusted; then the declared policy answers.
            assert (guard.has_access(blocked), guard.has_access(allowed)) == (False, True)
            wait_for(guard.fresh, lambda fresh: not fresh, timeout_s=10)
            open_policy = policy == "open"
            assert (guard.has_access(blocked), guard.has_access(allowed)) == (open_policy, open_policy)
            assert guard.last_error is not None

            server = _restart(restartable, tmp_path)
            # A change made while the guard was cut off reaches it once it is back.
            api.set_limits(blocked, hard_limit=5000)
            wait_for(guard.fresh, bool, timeout_s=15)
            wait_for(lambda: guard.has_access(blocked), bool)
            assert guard.has_access(allowed)


def test_the_client_imports_no_server_code() -> None:
    code = (
        "import sys, meterline.guard; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('meterline', 'fastapi', 'sqlalchemy', 'starlette', 'uvicorn', 'msgspec')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['meterline', 'meterline.guard']"


def test_a_bad_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="fail_policy"):
        AccessGuard("http://127.0.0.1:9", "t", fail_policy="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_stale_s"):
        AccessGuard("http://127.0.0.1:9", "t", max_stale_s=0)
