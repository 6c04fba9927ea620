"""The notification outbox, tailed once per server process for every open access stream.

Every alert transition writes one outbox row naming its customer, in the engine's transaction, so
the outbox is the ordered log of what may have changed a customer's access. One task per server
process reads the rows after its position (one indexed statement per poll, only while a stream
is open) and wakes each stream whose customers a row names; the stream then decides those
customers again. The position moves the way the webhook fan-out cursor moves
(`store.alerts.contiguous_frontier`): only over consecutive seqs, so a row a slower transaction
commits below one already seen (PostgreSQL, several engines) is still read when it appears.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from starlette.concurrency import run_in_threadpool

from meterline.logging import get_logger
from meterline.store import alerts
from meterline.store.alerts import GapWatch
from meterline.store.db import Database

log = get_logger("meterline.access")
# Rows read per poll; and how far back of the outbox's end a feed starts, so that rows a slower
# transaction commits below the end it saw at its start are read when they appear.
ROWS_PER_READ = 1000


class Listener:
    """One stream's interest: the meterline ids of its customers, and those named since it looked."""

    def __init__(self) -> None:
        self.customer_ids: frozenset[str] = frozenset()
        self.noticed: set[str] = set()
        self.woken = asyncio.Event()

    def notice(self, customer_ids: Iterable[str]) -> None:
        hit = self.customer_ids.intersection(customer_ids)
        if hit:
            self.noticed |= hit
            self.woken.set()

    def take(self) -> set[str]:
        """The customers named since the last take (then forgotten)."""
        taken, self.noticed = self.noticed, set()
        self.woken.clear()
        return taken


class OutboxFeed:
    def __init__(self, db: Database, poll_interval_s: float) -> None:
        self.db = db
        self.poll_interval_s = poll_interval_s
        self.position = 0  # every outbox row up to here has been read (and noticed)
        self._listeners: set[Listener] = set()
        self._seen_above: set[int] = set()  # rows read past a gap the position waits at
        self._gap = GapWatch()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def subscribe(self, listener: Listener) -> None:
        """Start hearing of the outbox's new rows; returns once the feed has its position, so that
        any row committed from now on reaches the listener."""
        self._listeners.add(listener)
        if self._task is None:
            self._ready.clear()
            self._task = asyncio.create_task(self._run(), name="meterline-access-feed")
        await self._ready.wait()

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    async def _run(self) -> None:
        try:
            await self._start()
            while self._listeners:
                await asyncio.sleep(self.poll_interval_s)
                try:
                    while await self._read_once():
                        pass  # a full read: more may be waiting
                except Exception:
                    log.exception("access_feed_read_failed")  # read again at the next poll
        finally:
            self._task = None

    async def _start(self) -> None:
        while True:
            try:
                end = await run_in_threadpool(self._end)
                self.position, self._seen_above = max(0, end - ROWS_PER_READ), set()
                while await self._read_once(notify=False):
                    pass
                self._ready.set()
                return
            except Exception:
                log.exception("access_feed_start_failed")
                await asyncio.sleep(self.poll_interval_s)

    def _end(self) -> int:
        with self.db.read() as conn:
            return alerts.outbox_end(conn)

    async def _read_once(self, notify: bool = True) -> bool:
        """Read the rows after the position; True when the read was full and reached no gap."""
        rows = await run_in_threadpool(self._rows_after, self.position)
        fresh = [customer_id for seq, customer_id in rows if seq not in self._seen_above and customer_id]
        if notify and fresh:
            for listener in list(self._listeners):
                listener.notice(fresh)
        seqs = [seq for seq, _customer_id in rows]
        self.position, gap_before = alerts.contiguous_frontier(self.position, seqs, self._gap.settled())
        self._gap.note(gap_before)
        self._seen_above = {s for s in (*self._seen_above, *seqs) if s > self.position}
        return len(rows) == ROWS_PER_READ and gap_before is None

    def _rows_after(self, position: int) -> list[tuple[int, str | None]]:
        with self.db.read() as conn:
            return alerts.outbox_customers_after(conn, position, ROWS_PER_READ)
