"""The stream of access decisions (GET /v1/access/stream), as Server-Sent Events.

- On connect, `access` for each customer (the last one with an `id`), then `ready`;
- then `access` whenever a customer's access or its reasons change, and `heartbeat` every
  `heartbeat_s` seconds (`{"as_of"}`: every change before it has been pushed);
- each event id is `<outbox position>-<digest of the decisions the client holds>`. A client
  reconnecting with `Last-Event-ID` is sent nothing again if its decisions are still the
  current ones, and every current decision otherwise, so it never misses a change (events of the
  first burst carry no id until the last: a client cut off within it is sent them all again).

A stream learns of alert transitions from the outbox (`api.access_feed`: within
METERLINE_ACCESS_STREAM_POLL_INTERVAL_S of the engine's commit) and decides all its customers
again every second, for what writes no notification (a customer archived, created or given an
alias a stream named). It ends when the server begins to shut down (`api.connections.draining`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool

from meterline.api.access_feed import Listener, OutboxFeed
from meterline.api.connections import draining
from meterline.api.state import AppState, access_feed
from meterline.domain.access import Decision, fingerprint
from meterline.domain.timeutil import format_rfc3339, now_us
from meterline.logging import get_logger
from meterline.services import access as service

log = get_logger("meterline.access")
MAX_CUSTOMERS_PER_STREAM = 1000
REFRESH_S = 1.0  # every customer of a stream is decided again this often
DRAIN_CHECK_S = 0.5  # how soon a stream ends once the server shuts down
RECONNECT_MS = 1000  # what a stream tells EventSource clients to wait before reconnecting
_encode = msgspec.json.Encoder(decimal_format="number").encode


def decision_view(decision: Decision) -> dict[str, Any]:
    return {
        "customer_id": decision.customer_id,
        "has_access": decision.has_access,
        # msgspec writes each `Reason` as the object of its fields, in order: code, alert_id,
        # threshold, value (exact numbers), what the API answers (`routes.access.ReasonDoc`).
        "reasons": decision.reasons,
        "as_of": format_rfc3339(decision.as_of_us),
    }


def decide_now(state: AppState, refs: Sequence[str]) -> list[Decision]:
    """The decisions, as of now (the check's and the streams' one read)."""
    return service.decisions(state.db, refs, now_us())


def _event(kind: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: ".encode() + _encode(data) + b"\n\n"


class _Stream:
    """One stream's state: the latest decision of each customer, and those its client holds."""

    def __init__(self, state: AppState, refs: list[str], feed: OutboxFeed, listener: Listener) -> None:
        self.state, self.refs, self.feed, self.listener = state, refs, feed, listener
        self.latest: dict[str, Decision] = {}
        self.sent: dict[str, Decision] = {}

    def event_id(self) -> str:
        return f"{self.feed.position}-{fingerprint(self.sent.values())}"

    async def decide(self, refs: Sequence[str]) -> None:
        for decision in await run_in_threadpool(decide_now, self.state, refs):
            self.latest[decision.customer_id] = decision
        self.listener.customer_ids = frozenset(d.resolved_id for d in self.latest.values() if d.resolved_id)

    def push(self, refs: Sequence[str]) -> list[bytes]:
        """`access` events for these customers whose decision the client does not hold yet; the
        last one carries the id (the client's digest then holds them all)."""
        changed = [r for r in refs if r not in self.sent or self.sent[r].key() != self.latest[r].key()]
        events = []
        for index, ref in enumerate(changed):
            self.sent[ref] = self.latest[ref]
            last = index == len(changed) - 1
            events.append(
                _event("access", decision_view(self.latest[ref]), self.event_id() if last else None)
            )
        return events

    def heartbeat(self) -> bytes:
        as_of = min(d.as_of_us for d in self.latest.values())
        return _event("heartbeat", {"as_of": format_rfc3339(as_of)})


async def events(
    state: AppState, refs: list[str], held: str | None, heartbeat_s: float
) -> AsyncIterator[bytes]:
    feed, listener = access_feed(state), Listener()
    await feed.subscribe(listener)  # first: a transition committed from here on wakes this stream
    stream = _Stream(state, refs, feed, listener)
    try:
        yield f"retry: {RECONNECT_MS}\n\n".encode()
        await stream.decide(refs)
        if held == fingerprint(stream.latest.values()):
            stream.sent = dict(stream.latest)  # the client holds exactly these already
        for chunk in stream.push(refs):
            yield chunk
        yield _event("ready", {"customers": len(refs)}, stream.event_id())
        async for chunk in _changes(stream, heartbeat_s):
            yield chunk
    except Exception:
        log.exception("access_stream_failed")  # the client reconnects and misses nothing
    finally:
        feed.unsubscribe(listener)


async def _changes(stream: _Stream, heartbeat_s: float) -> AsyncIterator[bytes]:
    clock = time.monotonic
    next_refresh, next_beat = clock() + REFRESH_S, clock() + heartbeat_s
    while not draining():
        wait = max(0.0, min(next_refresh, next_beat, clock() + DRAIN_CHECK_S) - clock())
        with contextlib.suppress(TimeoutError):  # woken by the outbox, or the time is up
            await asyncio.wait_for(stream.listener.woken.wait(), wait)
        noticed = stream.listener.take()
        if clock() >= next_refresh:
            wanted = stream.refs
            next_refresh = clock() + REFRESH_S
        else:
            wanted = [r for r, d in stream.latest.items() if d.resolved_id in noticed]
        if wanted:
            await stream.decide(wanted)
            for chunk in stream.push(wanted):
                yield chunk
        if clock() >= next_beat:
            yield stream.heartbeat()
            next_beat = clock() + heartbeat_s
