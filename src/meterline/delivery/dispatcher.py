"""The dispatcher: fans the outbox out into deliveries, sends the due ones, records every attempt.

It runs on its own thread with its own event loop, so delivery never blocks the server's loop,
ingest or the evaluator. Database work runs on worker threads of that loop, so a commit waiting
for SQLite's write lock never stalls requests in flight. The evaluator hands its notifications
over directly: inside its batch transaction it fans them out and claims them for this dispatcher
(`claim_in`), and right after the commit they are sent (`hand_over`), so a webhook leaves as soon
as the transition is durable, without waiting for a write lock of the dispatcher's own. Otherwise
the dispatcher is woken after commits and polls (for notifications written by API requests or
other processes, and for retries). Attempts are recorded in one transaction per cycle, not one each.

Each endpoint has at most `concurrency_per_endpoint` requests in flight: a slow receiver uses
its own slots and leaves everyone else's alone. Time comes from `clock` (epoch microseconds), so
the 72-hour retry schedule can be tested time-compressed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx
from sqlalchemy import Connection

from meterline import __version__
from meterline.delivery import retry, sender
from meterline.delivery.secrets import SecretBox
from meterline.delivery.signing import signed_headers
from meterline.domain.errors import MeterlineError
from meterline.domain.timeutil import US_PER_SECOND, now_us
from meterline.logging import get_logger
from meterline.store import webhooks as store
from meterline.store.db import Database
from meterline.store.webhooks import AttemptRecord, Claim

log = get_logger("meterline.webhooks")
USER_AGENT = f"meterline-webhooks/{__version__}"
FANOUT_BATCH = 500
# How long a hole in the outbox's seqs may stay before the cursor jumps it (PostgreSQL only:
# a rolled-back insert leaves a hole for good, a slow transaction fills it within this).
GAP_SETTLE_S = 30.0
# A claim outlives the request it covers by this much; then a crashed dispatcher's claim expires.
LEASE_MARGIN_S = 60.0
# Claims taken ahead per endpoint, as a multiple of its concurrency: one claim transaction feeds
# several rounds of sends, instead of one transaction (and one fsync) per few webhooks.
CLAIM_AHEAD = 4
# On stop, attempts in flight get this long to finish before they are abandoned (and re-sent).
STOP_GRACE_S = 2.0


class Dispatcher:
    def __init__(
        self,
        db: Database,
        box: SecretBox,
        *,
        timeout_s: float = 10.0,
        poll_interval_s: float = 1.0,
        concurrency_per_endpoint: int = 4,
        clock: Callable[[], int] = now_us,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.db = db
        self.box = box
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.concurrency = max(1, concurrency_per_endpoint)
        self.clock = clock
        self.jitter = jitter
        # A claim may wait for CLAIM_AHEAD - 1 sends to the same endpoint before its own.
        self._lease_us = round((timeout_s * CLAIM_AHEAD + LEASE_MARGIN_S) * US_PER_SECOND)
        self._in_flight: Counter[str] = Counter()  # claimed and not yet sent, per endpoint
        self._slots: dict[str, asyncio.Semaphore] = {}  # at most `concurrency` requests each
        self._claims: dict[asyncio.Task[None], Claim] = {}
        self._gap: tuple[int, float] | None = None
        self._unrecorded: list[tuple[Claim, sender.Response, int, retry.Outcome]] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._wake: asyncio.Event | None = None

    # -- control, from any thread ------------------------------------------------------------
    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="meterline-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        self.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def notify(self) -> None:
        """Look at the outbox now (called after the evaluator commits, or after a replay)."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between: stopping anyway
            loop.call_soon_threadsafe(wake.set)

    # -- the evaluator's hand-over: its thread, its transaction ----------------------------------
    def claim_in(self, conn: Connection, now_us: int) -> list[Claim]:
        """Fan out the outbox and claim what is due for this dispatcher, in the caller's transaction."""
        if self._loop is None or self._stopping.is_set() or not store.outbox_waiting(conn):
            return []  # not running (the leases would only delay them), or nothing new
        store.fan_out(conn, now_us, FANOUT_BATCH)
        return store.claim_due(conn, now_us, now_us + self._lease_us, self._room)

    def hand_over(self, claims: list[Claim]) -> None:
        """After the commit that made `claims`: send them now."""
        loop = self._loop
        if not claims or loop is None or loop.is_closed():
            return  # their leases expire and they are claimed again
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._start, claims)

    # -- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            log.exception("webhook_dispatcher_crashed")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        log.info("webhook_dispatcher_started", concurrency_per_endpoint=self.concurrency)
        limits = httpx.Limits(max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False, limits=limits) as client:
            self._client = client
            while not self._stopping.is_set():
                more = await self._cycle(client)
                if not more:
                    await self._sleep(self.poll_interval_s)
            await self._abandon_in_flight()
            await self._record_finished()
        log.info("webhook_dispatcher_stopped")

    async def _cycle(self, client: httpx.AsyncClient) -> bool:
        """Fan out, claim, start sending; True when more outbox rows are waiting right now."""
        try:
            await self._record_finished()
            more = await asyncio.to_thread(self._fan_out)
            self._start(await asyncio.to_thread(self._claim))
            return more
        except Exception:
            log.exception("webhook_cycle_failed")
            return False

    def _start(self, claims: list[Claim]) -> None:
        """Send each claim on its own task (on the loop's thread)."""
        assert self._client is not None
        for claim in claims:
            self._in_flight[claim.endpoint_id] += 1
            task = asyncio.create_task(self._deliver(self._client, claim))
            self._claims[task] = claim
            task.add_done_callback(self._finished)

    async def _record_finished(self) -> None:
        finished, self._unrecorded = self._unrecorded, []
        if finished:
            await asyncio.to_thread(self._record, finished)

    async def _sleep(self, seconds: float) -> None:
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    def _finished(self, task: asyncio.Task[None]) -> None:
        claim = self._claims.pop(task)
        self._in_flight[claim.endpoint_id] -= 1
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook_attempt_failed", endpoint_id=claim.endpoint_id, error=repr(task.exception()))
        if self._wake is not None and self._in_flight[claim.endpoint_id] <= self.concurrency:
            self._wake.set()  # its claims ahead run low: record what was sent, claim more

    async def _abandon_in_flight(self) -> None:
        """Stopping: let attempts finish briefly, then give the rest back (due again at once)."""
        if self._claims:
            await asyncio.wait(list(self._claims), timeout=STOP_GRACE_S)
        left = dict(self._claims)
        for task in left:
            task.cancel()
        if left:
            await asyncio.gather(*left, return_exceptions=True)
            await asyncio.to_thread(self._release, list(left.values()))

    # -- database work (worker threads) --------------------------------------------------------
    def _fan_out(self) -> bool:
        with self.db.read() as conn:
            if not store.outbox_waiting(conn):
                return False
        with self.db.write() as conn:
            result = store.fan_out(conn, self.clock(), FANOUT_BATCH, self._settled_gap())
        self._note_gap(result.gap_before)
        return result.more and result.gap_before is None

    def _claim(self) -> list[Claim]:
        now = self.clock()
        with self.db.read() as conn:
            due = store.next_due_at(conn)
        if due is None or due > now:
            return []
        with self.db.write() as conn:
            return store.claim_due(conn, now, now + self._lease_us, self._room)

    def _room(self, endpoint_id: str) -> int:
        return self.concurrency * CLAIM_AHEAD - self._in_flight[endpoint_id]

    def _release(self, claims: list[Claim]) -> None:
        with self.db.write() as conn:
            store.release_claims(conn, claims, self.clock())

    def _note_gap(self, gap_before: int | None) -> None:
        if gap_before is None:
            self._gap = None
        elif self._gap is None or self._gap[0] != gap_before:
            self._gap = (gap_before, time.monotonic())

    def _settled_gap(self) -> int | None:
        if self._gap is not None and time.monotonic() - self._gap[1] >= GAP_SETTLE_S:
            return self._gap[0]
        return None

    # -- one attempt -----------------------------------------------------------------------------
    async def _deliver(self, client: httpx.AsyncClient, claim: Claim) -> None:
        slot = self._slots.setdefault(claim.endpoint_id, asyncio.Semaphore(self.concurrency))
        async with slot:
            attempted_at = self.clock()
            response = await self._send(client, claim, attempted_at)
        decision = retry.outcome(
            response.status_code,
            response.retry_after,
            attempts_in_round=claim.round_attempt,
            first_attempt_at_us=claim.round_started_at_us or attempted_at,
            attempted_at_us=attempted_at,
            jitter=self.jitter(),
        )
        log.info(
            "webhook_attempt",
            endpoint_id=claim.endpoint_id,
            notification_id=claim.notification_id,
            attempt=claim.attempt,
            status=response.status_code,
            latency_ms=response.latency_ms,
            outcome=decision.state,
        )
        # Recorded with the others of this cycle; until then the claim's lease keeps it ours.
        self._unrecorded.append((claim, response, attempted_at, decision))

    async def _send(self, client: httpx.AsyncClient, claim: Claim, attempted_at: int) -> sender.Response:
        try:
            secrets = [self.box.decrypt(c) for c in claim.secret_ciphertexts]
        except MeterlineError as error:
            return sender.Response(None, 0, error.message, None, None)
        body = claim.payload.encode()
        headers = signed_headers(secrets, claim.notification_id, attempted_at // US_PER_SECOND, body)
        headers["user-agent"] = USER_AGENT
        return await sender.post(client, claim.url, body, headers, self.timeout_s)

    def _record(self, finished: list[tuple[Claim, sender.Response, int, retry.Outcome]]) -> None:
        with self.db.write() as conn:
            for claim, response, attempted_at, decision in finished:
                attempt = AttemptRecord(
                    claim.attempt,
                    attempted_at,
                    response.status_code,
                    response.latency_ms,
                    response.error,
                    response.body,
                )
                store.record_attempt(conn, claim, attempt, decision.state, decision.next_attempt_at_us)
                if decision.disable_endpoint:
                    store.disable_endpoint(
                        conn, claim.endpoint_id, "the receiver answered 410 Gone", attempted_at
                    )
