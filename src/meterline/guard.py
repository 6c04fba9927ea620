"""AccessGuard: meterline's access decisions answered from memory, kept current by the server's push.

An application asks `guard.has_access(customer)` on every request: the answer comes from a local
cache (a dictionary read, well under a microsecond), which a background thread keeps current from
meterline's stream of access decisions (`GET /v1/access/stream`, Server-Sent Events): every change
of a watched customer's access arrives within milliseconds of the engine deciding it, and a
heartbeat says the server is there. A reconnect resumes with the last event's id, so nothing is
missed, whether the connection dropped or the server restarted.

When the server goes away, the cache is trusted for `max_stale_s` after the last word from the
server; then the declared `fail_policy` answers: "closed" denies every customer (no spend past a
limit while blind), "open" allows every customer (no outage of the product because billing is
down). Once the server is back, answers come from fresh decisions again.

    from meterline.guard import AccessGuard

    with AccessGuard("http://127.0.0.1:8080", token, ["acme"], fail_policy="closed") as guard:
        guard.wait_ready(5)
        if not guard.has_access("acme"):
            ...  # refuse the request: guard.decision("acme").reasons says why

A customer the guard does not watch yet is checked once (`POST /v1/access/check`, bounded by
`timeout_s`) and watched from then on; one meterline does not know is checked each time, and
never watched. A guard watches up to 1,000 customers. This module needs httpx and the standard
library only.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import httpx

FailPolicy = Literal["open", "closed"]
STREAM_PATH = "/v1/access/stream"
CHECK_PATH = "/v1/access/check"
MAX_WATCHED = 1000  # customers one stream names at most
UNKNOWN_CUSTOMER = "unknown_customer"
FIRST_RETRY_S, LAST_RETRY_S = 0.1, 2.0  # reconnection delays: doubling from the first to the last


@dataclass(frozen=True, slots=True)
class Reason:
    code: str  # hard_limit_reached, blocking_alert, customer_archived, unknown_customer
    alert_id: str | None
    threshold: Decimal | None
    value: Decimal | None


@dataclass(frozen=True, slots=True)
class Decision:
    customer_id: str
    has_access: bool
    reasons: tuple[Reason, ...]
    as_of: str  # RFC 3339: every event acknowledged before it was evaluated

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Decision:
        reasons = tuple(
            Reason(r["code"], r.get("alert_id"), _decimal(r.get("threshold")), _decimal(r.get("value")))
            for r in data["reasons"]
        )
        return cls(data["customer_id"], bool(data["has_access"]), reasons, data["as_of"])


class AccessGuard:
    def __init__(
        self,
        base_url: str,
        token: str,
        customer_ids: Iterable[str] = (),
        *,
        fail_policy: FailPolicy = "closed",
        max_stale_s: float = 30.0,
        timeout_s: float = 2.0,
        on_change: Callable[[Decision], None] | None = None,
    ) -> None:
        """`customer_ids`: ids or ingest aliases to watch from the start. `max_stale_s`: how long
        after the server's last word the cache is still trusted. `timeout_s`: connecting, and a
        check of a customer not watched yet. `on_change`: called (on the guard's thread) with each
        decision the stream pushes."""
        if fail_policy not in ("open", "closed"):
            raise ValueError(f"fail_policy: must be 'open' or 'closed', not {fail_policy!r}")
        if not max_stale_s > 0:
            raise ValueError("max_stale_s: must be positive")
        self.fail_policy: FailPolicy = fail_policy
        self.max_stale_s = max_stale_s
        self.on_change = on_change
        # Heartbeats three times per max_stale_s: a live server is never taken for a gone one.
        self.heartbeat_s = min(max(max_stale_s / 3, 1.0), 15.0)
        self.last_error: Exception | None = None
        self._watched: dict[str, None] = dict.fromkeys(customer_ids)  # an ordered set
        self._decisions: dict[str, Decision] = {}
        self._heard_at: float | None = None  # time.monotonic() of the server's last word, once synced
        self._last_event_id: str | None = None
        self._resubscribe = threading.Event()
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._response: httpx.Response | None = None  # the stream being read
        timeout = httpx.Timeout(timeout_s, read=self.heartbeat_s * 2 + timeout_s)
        self._client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    # -- the application's side ---------------------------------------------------------------
    def has_access(self, customer_id: str) -> bool:
        """From memory: the pushed decision while the cache is fresh, else the fail policy."""
        decision = self._decisions.get(customer_id)
        if decision is None:
            decision = self._check_unwatched(customer_id)
        if decision is not None and self.fresh():
            return decision.has_access
        return self.fail_policy == "open"

    def decision(self, customer_id: str) -> Decision | None:
        """The latest decision held for the customer (with its reasons), fresh or not."""
        return self._decisions.get(customer_id)

    def fresh(self) -> bool:
        """Whether the server's last word is at most `max_stale_s` old."""
        heard = self._heard_at
        return heard is not None and time.monotonic() - heard <= self.max_stale_s

    def watch(self, *customer_ids: str) -> None:
        """Watch these customers too: the stream is opened again with them at once."""
        with self._lock:
            new = [c for c in dict.fromkeys(customer_ids) if c not in self._watched]
            if len(self._watched) + len(new) > MAX_WATCHED:
                raise ValueError(f"customer_ids: a guard watches at most {MAX_WATCHED} customers")
            self._watched.update(dict.fromkeys(new))
        if new:
            self._resubscribe.set()
            self._interrupt()

    # -- running --------------------------------------------------------------------------------
    def start(self) -> AccessGuard:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="meterline-access-guard", daemon=True)
            self._thread.start()
        return self

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the first decisions have all arrived; False if not within `timeout_s`."""
        return self._ready.wait(timeout_s)

    def stop(self) -> None:
        self._stopping.set()
        self._interrupt()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self._client.close()

    def __enter__(self) -> AccessGuard:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        delay = FIRST_RETRY_S
        while not self._stopping.is_set():
            synced = False
            try:
                synced = self._listen()
            except (httpx.HTTPError, GuardRefused, ValueError, KeyError, RuntimeError) as error:
                if not self._resubscribe.is_set() and not self._stopping.is_set():
                    self.last_error = error  # the server went away, refused, or answered nonsense
            if self._resubscribe.is_set():
                continue  # the watch list grew: open the stream again at once
            delay = FIRST_RETRY_S if synced else min(delay * 2, LAST_RETRY_S)
            if self._stopping.wait(delay):
                return

    def _listen(self) -> bool:
        """Follow the stream until it ends, is interrupted, or fails; True if it got in sync."""
        with self._lock:
            watched = list(self._watched)
            self._resubscribe.clear()
        if not watched:
            self._heard_at = time.monotonic()  # nothing to hear about: nothing is stale
            self._ready.set()
            self._resubscribe.wait(self.heartbeat_s)
            return True
        headers = {"Last-Event-ID": self._last_event_id} if self._last_event_id else {}
        params = {"customer_ids": ",".join(watched), "heartbeat_s": str(self.heartbeat_s)}
        synced = False
        with self._client.stream("GET", STREAM_PATH, params=params, headers=headers) as response:
            if response.status_code != 200:
                raise GuardRefused(response.status_code, response.read().decode(errors="replace"))
            self._response = response
            try:
                for kind, data, event_id in read_events(response.iter_lines()):
                    if event_id is not None:
                        self._last_event_id = event_id
                    if kind == "access":
                        self._keep(Decision.parse(json.loads(data, parse_float=Decimal)), notify=synced)
                    elif kind == "ready":
                        synced = True
                        self._ready.set()
                    if synced:
                        self._heard_at = time.monotonic()
                    if self._stopping.is_set() or self._resubscribe.is_set():
                        break
            finally:
                self._response = None
        return synced

    def _interrupt(self) -> None:
        """End the read in progress now, from another thread: shutting the socket down wakes a
        blocked read (closing it would not, on Linux)."""
        response = self._response
        stream = response.extensions.get("network_stream") if response is not None else None
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _keep(self, decision: Decision, *, notify: bool) -> None:
        previous = self._decisions.get(decision.customer_id)
        self._decisions[decision.customer_id] = decision
        if self.on_change is not None and (notify or previous != decision):
            self.on_change(decision)

    def _check_unwatched(self, customer_id: str) -> Decision | None:
        """Decide a customer not watched yet, synchronously, and watch it from now on (nothing when
        the server is not answering: the fail policy answers then). A customer meterline does not
        know is not watched (nor kept): requests naming made-up customers must not grow the watch
        list, so each asks again; so does each customer past the guard's MAX_WATCHED."""
        if not self.fresh() or self._stopping.is_set():
            return None
        try:
            response = self._client.post(CHECK_PATH, json={"customer_ids": [customer_id]})
            response.raise_for_status()
            [found] = response.json(parse_float=Decimal)["data"]
        except (httpx.HTTPError, ValueError, KeyError) as error:
            self.last_error = error
            return None
        decision = Decision.parse(found)
        if any(r.code == UNKNOWN_CUSTOMER for r in decision.reasons) or len(self._watched) >= MAX_WATCHED:
            return decision
        try:
            self.watch(customer_id)
        except ValueError:  # another thread filled the list meanwhile
            return decision
        self._decisions.setdefault(customer_id, decision)  # a pushed decision is newer
        return self._decisions[customer_id]


class GuardRefused(Exception):
    """The server answered the stream with an error (a bad token, a bad customer id)."""

    def __init__(self, status_code: int, text: str) -> None:
        super().__init__(f"{status_code}: {text[:200]}")
        self.status_code = status_code


def read_events(lines: Iterator[str]) -> Iterator[tuple[str, str, str | None]]:
    """(event type, data, id or None) of each Server-Sent Event, as the SSE format defines them."""
    kind, event_id = "message", None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield kind, "\n".join(data), event_id
            kind, data, event_id = "message", [], None
            continue
        if line.startswith(":"):
            continue  # a comment
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))
