"""The dispatcher: fans the outbox out into deliveries, sends the due ones, records every attempt.

It runs on its own thread with its own event loop, so delivery never blocks the server's loop,
ingest or the evaluator. Database work runs on worker threads of that loop, so a commit waiting
for SQLite's write lock never stalls requests in flight. The evaluator hands its notifications
over directly: inside its batch transaction it fans them out and claims them for this dispatcher
(`claim_in`), and right after the commit they are sent (`hand_over`), so a webhook leaves as soon
as the transition is durable, without waiting for a write lock of the dispatcher's own. Otherwise
the dispatcher is woken after commits and polls (for notifications written by API requests or
other processes, and for retries). Attempts are recorded together, at most every RECORD_INTERVAL_S,
not one transaction each.

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

import aiohttp
from sqlalchemy import Connection

from meterline import __version__
from meterline.delivery import retry, sender
from meterline.delivery.secrets import SecretBox
from meterline.delivery.signing import Signer
from meterline.domain.errors import MeterlineError
from meterline.domain.timeutil import US_PER_DAY, US_PER_SECOND, now_us
from meterline.liveness import PartLiveness
from meterline.logging import get_logger
from meterline.metrics import WEBHOOK_ATTEMPTS
from meterline.store import webhooks as store
from meterline.store.alerts import GapWatch
from meterline.store.db import Database
from meterline.store.webhooks import AttemptOutcome, AttemptRecord, Claim

log = get_logger("meterline.webhooks")
# An attempt made and not yet recorded: the claim, the answer, when it was sent, what follows.
Finished = tuple[Claim, sender.Response, int, retry.Outcome]
USER_AGENT = f"meterline-webhooks/{__version__}"
FANOUT_BATCH = 500
# Outbox rows the evaluator's hand-over fans out in its batch transaction at most (FANOUT_BATCH at
# a time): every notification a batch wrote, so a burst of crossings is claimed and sent right
# after the commit that made it, rather than FANOUT_BATCH of them then and the rest only once the
# dispatcher's own write transaction gets SQLite's write lock, behind the evaluator's next batch.
HANDOFF_FANOUT_MAX = 20_000
# A claim outlives the request it covers by this much; then a crashed dispatcher's claim expires.
LEASE_MARGIN_S = 60.0
# Claims taken ahead per endpoint, as a multiple of its concurrency: one claim transaction feeds
# many rounds of sends, instead of one transaction (and one fsync) per few webhooks. A burst of
# crossings is sent at the receiver's pace, not the database's; the price is the lease (below):
# a crashed dispatcher's claims are sent again only when it expires.
CLAIM_AHEAD = 16
# Connections kept open across all endpoints (each endpoint also stays within its concurrency).
MAX_CONNECTIONS = 64
# Endpoints' signers (their secrets decrypted, keys loaded) kept in memory; starts over when full.
SIGNERS_KEPT = 1024
# The retention purge runs this often, deleting at most PURGE_BATCH deliveries per transaction
# and PURGE_MAX_BATCHES transactions per run (the rest waits for the next run).
PURGE_INTERVAL_S = 600.0
PURGE_BATCH = 1000
PURGE_MAX_BATCHES = 100
# An attempt's outcome as /metrics names it, by the delivery's state after it.
ATTEMPT_OUTCOMES = {retry.SUCCEEDED: "succeeded", retry.PENDING: "retrying", retry.FAILED: "failed"}
# Attempts finished are recorded together, in one write transaction at most this often (sooner
# when a write is due anyway, or RECORD_BATCH are waiting). Every commit of this process takes
# SQLite's write lock from the evaluator for a moment and drops the evaluator's customer snapshots
# (`engine/snapshots.py`: they stay only while no other connection commits); recording each
# webhook as it finished did both about as often as webhooks arrived. Until recorded, an attempt's
# claim keeps its delivery this dispatcher's; after a crash it is sent again (at least once).
RECORD_INTERVAL_S = 0.25
RECORD_BATCH = 2000
# On stop, attempts in flight get this long to finish before they are abandoned (and re-sent).
STOP_GRACE_S = 2.0


def lease_us(timeout_s: float) -> int:
    """How long a claim holds its deliveries: it may wait for CLAIM_AHEAD - 1 sends to the same
    endpoint before its own, each bounded by the timeout."""
    return round((timeout_s * CLAIM_AHEAD + LEASE_MARGIN_S) * US_PER_SECOND)


def fan_out_fresh(conn: Connection, now_us: int) -> bool:
    """The evaluator's hand-over, in its batch transaction: fan out every outbox row waiting (the
    ones it just wrote), up to HANDOFF_FANOUT_MAX; False when none was waiting."""
    if not store.outbox_waiting(conn):
        return False
    fanned = 0
    while fanned < HANDOFF_FANOUT_MAX:
        result = store.fan_out(conn, now_us, FANOUT_BATCH)
        fanned += result.notifications
        if not result.more or result.gap_before is not None:
            break  # past a gap (a seq not committed yet) is the dispatcher's own fan-out's
    return True


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (it comes with uvicorn[standard]), else asyncio's own loop. Sending
    is mostly the event loop's work (sockets, callbacks, timers): uvloop does it in C, about a
    sixth less CPU per webhook, and the CPU is what a burst of crossings waits on."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def claim_fresh(
    conn: Connection, now_us: int, lease_until_us: int, room: Callable[[str], int]
) -> list[Claim]:
    """The hand-over within this process: fan out what the evaluator's batch wrote and claim
    what is due, at most `room(endpoint_id)` per endpoint, ready to send."""
    if not fan_out_fresh(conn, now_us):
        return []
    return store.claim_due(conn, now_us, lease_until_us, room)


class Dispatcher:
    def __init__(
        self,
        db: Database,
        box: SecretBox,
        *,
        timeout_s: float = 10.0,
        poll_interval_s: float = 1.0,
        concurrency_per_endpoint: int = 16,
        allow_private_networks: bool = False,
        retention_days: float = 30.0,
        clock: Callable[[], int] = now_us,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.db = db
        self.box = box
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.concurrency = max(1, concurrency_per_endpoint)
        # Private destinations allowed (and receivers' answer bodies kept): see destinations.py.
        self.allow_private_networks = allow_private_networks
        # Finished deliveries (and their attempts) older than this are purged.
        self.retention_us = round(retention_days * US_PER_DAY)
        self._next_purge_us = clock()
        self.clock = clock
        self.jitter = jitter
        self._lease_us = lease_us(timeout_s)
        self._renewed_at_us = clock()
        self._in_flight: Counter[str] = Counter()  # claimed and not yet sent, per endpoint
        self._slots: dict[str, asyncio.Semaphore] = {}  # at most `concurrency` requests each
        self._claims: dict[asyncio.Task[None], Claim] = {}
        self._gap = GapWatch()  # the hole in the outbox's seqs the fan-out cursor waits at
        # The secrets' ciphertexts -> their signer, for the endpoints sent to lately.
        self._signers: dict[tuple[str, ...], Signer] = {}
        self._unrecorded: list[Finished] = []
        self._unrecorded_since: float | None = None  # time.monotonic() of the oldest unrecorded
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: aiohttp.ClientSession | None = None
        self._wake: asyncio.Event | None = None
        # Claims handed over from another process before this one's loop was running.
        self._adoptions: list[str] = []
        self._adoptions_lock = threading.Lock()
        self._adopting: set[asyncio.Task[None]] = set()

    # -- control, from any thread ------------------------------------------------------------
    def liveness(self) -> PartLiveness:
        return PartLiveness(self._thread is not None and self._thread.is_alive(), 0)

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
        if self._loop is None or self._stopping.is_set():
            return []  # not running: the leases would only delay them
        return claim_fresh(conn, now_us, now_us + self._lease_us, self._room)

    def hand_over(self, claims: list[Claim]) -> None:
        """After the commit that made `claims`: send them now."""
        loop = self._loop
        if not claims or loop is None or loop.is_closed():
            return  # their leases expire and they are claimed again
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._start, claims)

    def adopt(self, claim_id: str) -> None:
        """Send the deliveries another process claimed for this dispatcher (from any thread).

        The evaluator's process claims the notifications its batch wrote in its own transaction
        and hands the claim over by id (`delivery.handoff`), so a webhook leaves right after that
        commit instead of after a write transaction of this process's own.
        """
        with self._adoptions_lock:
            loop = self._loop
            if loop is None or loop.is_closed():
                self._adoptions.append(claim_id)  # taken up when the loop starts
                return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._adopt_soon, claim_id, now_us())

    def _adopt_soon(self, claim_id: str, handed_at_us: int | None = None) -> None:
        task = asyncio.create_task(self._adopt(claim_id, handed_at_us))
        self._adopting.add(task)
        task.add_done_callback(self._adopting.discard)

    async def _adopt(self, claim_id: str, handed_at_us: int | None) -> None:
        started_at_us = now_us()
        try:
            claims = await asyncio.to_thread(self._read_claim, claim_id)
        except Exception:
            log.exception("webhook_adopt_failed")  # its lease expires and it is claimed again
            return
        # When the claim's id came down the pipe, when the loop took it up, when its deliveries
        # were read: an alert's latency, stage by stage (bench/stages.py).
        log.debug(
            "webhook_claim_adopted",
            claim_id=claim_id,
            deliveries=len(claims),
            handed_at_us=handed_at_us,
            started_at_us=started_at_us,
            read_at_us=now_us(),
        )
        self._start(claims)

    def _read_claim(self, claim_id: str) -> list[Claim]:
        with self.db.read() as conn:
            return store.claims_by_id(conn, claim_id, self.clock())

    # -- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                runner.run(self._main())
        except Exception:
            log.exception("webhook_dispatcher_crashed")

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        log.info("webhook_dispatcher_started", concurrency_per_endpoint=self.concurrency)
        async with sender.session(MAX_CONNECTIONS, self.allow_private_networks) as client:
            self._client = client
            with self._adoptions_lock:
                self._loop = asyncio.get_running_loop()
                waiting, self._adoptions = self._adoptions, []
            for claim_id in waiting:
                self._adopt_soon(claim_id)
            while not self._stopping.is_set():
                more = await self._cycle()
                if not more:
                    await self._sleep(self._until_next_cycle())
            await self._abandon_in_flight()
            await self._record_finished()
        log.info("webhook_dispatcher_stopped")

    async def _cycle(self) -> bool:
        """Record, fan out, claim, start sending; True when more outbox rows are waiting right now."""
        finished, since = self._unrecorded, self._unrecorded_since
        self._unrecorded, self._unrecorded_since = [], None
        renew = self._due_for_renewal()
        try:
            claims, more, recorded = await asyncio.to_thread(
                self._step, finished, self._record_due(finished, since), renew
            )
        except Exception:
            # Unrecorded attempts are sent again when their leases expire (at least once).
            log.exception("webhook_cycle_failed")
            return False
        if not recorded and finished:  # not yet: with those finished meanwhile, at the next cycle
            self._unrecorded = finished + self._unrecorded
            self._unrecorded_since = since
        self._start(claims)
        return more

    @staticmethod
    def _record_due(finished: list[Finished], since: float | None) -> bool:
        if since is None:
            return False
        return len(finished) >= RECORD_BATCH or time.monotonic() - since >= RECORD_INTERVAL_S

    def _until_next_cycle(self) -> float:
        """The poll interval, or less when finished attempts are due to be recorded sooner."""
        if self._unrecorded_since is None:
            return self.poll_interval_s
        due_in = self._unrecorded_since + RECORD_INTERVAL_S - time.monotonic()
        return max(0.0, min(self.poll_interval_s, due_in))

    def _start(self, claims: list[Claim]) -> None:
        """Send each claim on its own task (on the loop's thread)."""
        assert self._client is not None
        for claim in claims:
            self._in_flight[claim.endpoint_id] += 1
            task = asyncio.create_task(self._deliver(self._client, claim))
            self._claims[task] = claim
            task.add_done_callback(self._finished)

    async def _record_finished(self) -> None:
        finished, self._unrecorded, self._unrecorded_since = self._unrecorded, [], None
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
    def _due_for_renewal(self) -> list[Claim]:
        """The claims held (waiting for a slot, or being sent), when their leases are due to be
        extended: a claim handed over in a burst may wait longer than one lease for its turn."""
        now = self.clock()
        if now - self._renewed_at_us < self._lease_us // 4:
            return []
        self._renewed_at_us = now
        return list(self._claims.values())

    def _step(
        self, finished: list[Finished], record: bool, renew: list[Claim]
    ) -> tuple[list[Claim], bool, bool]:
        """At most one write transaction per cycle (one fsync, one wait for SQLite's write lock):
        record the attempts finished since the last (when `record`, or when writing anyway),
        extend the leases held, fan out new outbox rows, claim what is due. Returns the claims,
        whether more outbox rows wait, and whether `finished` was recorded."""
        now = self.clock()
        if now >= self._next_purge_us:
            self._purge(now)
        with self.db.read() as conn:  # cheap reads first: most idle cycles need no write at all
            waiting = store.outbox_waiting(conn)
            due = store.next_due_at(conn)
        if not (finished and record) and not renew and not waiting and (due is None or due > now):
            return [], False, not finished
        with self.db.write(customer_state=False) as conn:
            self._record_in(conn, finished)
            store.renew_claims(conn, renew, now + self._lease_us)
            more = False
            if waiting:
                result = store.fan_out(conn, now, FANOUT_BATCH, self._gap.settled())
                self._gap.note(result.gap_before)
                more = result.more and result.gap_before is None
            claims = store.claim_due(conn, now, now + self._lease_us, self._room)
        _count_attempts(finished)
        return claims, more, True

    def _purge(self, now: int) -> None:
        """Finished deliveries older than the retention period, with their attempts, in bounded
        batches, each its own transaction (so the write lock is never held for long)."""
        self._next_purge_us = now + round(PURGE_INTERVAL_S * US_PER_SECOND)
        purged = 0
        for _ in range(PURGE_MAX_BATCHES):
            with self.db.write(customer_state=False) as conn:
                count = store.purge_finished(conn, now - self.retention_us, PURGE_BATCH)
            purged += count
            if count < PURGE_BATCH:
                break
        if purged:
            log.info("webhook_log_purged", deliveries=purged, retention_days=self.retention_us / US_PER_DAY)

    def _room(self, endpoint_id: str) -> int:
        return self.concurrency * CLAIM_AHEAD - self._in_flight[endpoint_id]

    def _release(self, claims: list[Claim]) -> None:
        with self.db.write(customer_state=False) as conn:
            store.release_claims(conn, claims, self.clock())

    # -- one attempt -----------------------------------------------------------------------------
    async def _deliver(self, client: aiohttp.ClientSession, claim: Claim) -> None:
        slot = self._slots.get(claim.endpoint_id)
        if slot is None:  # made once per endpoint, not once per attempt
            slot = self._slots[claim.endpoint_id] = asyncio.Semaphore(self.concurrency)
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
            claim_id=claim.claim_id,
            attempted_at_us=attempted_at,
            attempt=claim.attempt,
            status=response.status_code,
            latency_ms=response.latency_ms,
            outcome=decision.state,
        )
        # Recorded with the others finished lately; until then the claim's lease keeps it ours.
        if self._unrecorded_since is None:
            self._unrecorded_since = time.monotonic()
        self._unrecorded.append((claim, response, attempted_at, decision))

    async def _send(self, client: aiohttp.ClientSession, claim: Claim, attempted_at: int) -> sender.Response:
        try:
            signer = self._signer(claim.secret_ciphertexts)
        except MeterlineError as error:
            return sender.Response(None, 0, error.message, None, None)
        body = claim.payload.encode()
        headers = signer.headers(claim.notification_id, attempted_at // US_PER_SECOND, body)
        headers["user-agent"] = USER_AGENT
        return await sender.post(
            client, claim.url, body, headers, self.timeout_s, self.allow_private_networks
        )

    def _signer(self, ciphertexts: list[str]) -> Signer:
        """Secrets decrypted and keys loaded once per endpoint (and rotation), not once per
        attempt (Fernet alone costs ~50 us a time)."""
        key = tuple(ciphertexts)
        signer = self._signers.get(key)
        if signer is None:
            if len(self._signers) >= SIGNERS_KEPT:
                self._signers.clear()
            signer = self._signers[key] = Signer([self.box.decrypt(c) for c in ciphertexts])
        return signer

    def _record(self, finished: list[Finished]) -> None:
        with self.db.write(customer_state=False) as conn:
            self._record_in(conn, finished)
        _count_attempts(finished)

    @staticmethod
    def _record_in(conn: Connection, finished: list[Finished]) -> None:
        outcomes = [
            AttemptOutcome(
                claim,
                AttemptRecord(
                    claim.attempt,
                    attempted_at,
                    response.status_code,
                    response.latency_ms,
                    response.error,
                    response.body,
                    response.headers,
                ),
                decision.state,
                decision.next_attempt_at_us,
            )
            for claim, response, attempted_at, decision in finished
        ]
        store.record_attempts(conn, outcomes)
        for claim, _response, attempted_at, decision in finished:
            if decision.disable_endpoint:
                store.disable_endpoint(
                    conn, claim.endpoint_id, "the receiver answered 410 Gone", attempted_at
                )


def _count_attempts(finished: list[Finished]) -> None:
    """After the transaction that recorded them: each attempt by its outcome, in /metrics (one
    increment per outcome: a labelled child is looked up under a lock, and a burst records
    thousands of attempts at once)."""
    outcomes = Counter(decision.state for _claim, _response, _attempted_at, decision in finished)
    for state, count in outcomes.items():
        WEBHOOK_ATTEMPTS.labels(ATTEMPT_OUTCOMES[state]).inc(count)
