"""The `Idempotency-Key` header, on every request that writes (Metronome's rules, see the README).

A request with a key runs in one write transaction held until its answer is known
(`Database.held_write`), opened at the handler's first read or write (a request refused by its
body's validation never gets that far, as Metronome's "begins executing"): it claims the key
first, the handler's reads and writes join it, and a 2xx answer is stored with the key before it
commits. So the request's effect and its stored answer commit together or not at all, and

- the same key with the same request (method, path, query and JSON body, whatever its key order
  or spacing) gets the first answer again, status and body, with `Idempotent-Replayed: true`,
  until the key expires (`METERLINE_IDEMPOTENCY_KEY_TTL_HOURS`);
- the same key with another request is a 409 that names the header and the rule;
- two requests with the same key at once make one effect: the second's claim waits for the first
  transaction to end, then replays its answer (or runs, if the first failed);
- a request that failed (4xx, 5xx) wrote nothing, and leaves the key free: meterline never
  half-applies a request, so a retry cannot make things worse, and a corrected retry may reuse
  the key (Metronome keeps failures too, because its failures may have written part of a request).

POSTs that only read (Metronome reads with POST too) ignore the header, as do ingest (events are
deduplicated by transaction_id) and meterline's webhook routes (their answers carry secrets,
which are never stored in the clear).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qsl

import anyio
import msgspec
from sqlalchemy import Connection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meterline.api.middleware import CLIENT_SCOPE_KEY, replay_body
from meterline.api.responses import message
from meterline.domain.timeutil import now_us
from meterline.store import idempotency_keys
from meterline.store.db import Database, HeldWrite
from meterline.store.idempotency_keys import KeyedAnswer

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
KEY_RULE = f"{HEADER}: must be 1 to {MAX_KEY_CHARS} printable ASCII characters"
KEYED_METHODS = frozenset({"POST", "PUT"})
# POST routes that only read: a key changes nothing there.
READS = frozenset(
    {
        "/v1/contract-pricing/products/get",
        "/v1/contract-pricing/products/list",
        "/v1/contract-pricing/rate-cards/get",
        "/v1/contract-pricing/rate-cards/getRateSchedule",
        "/v1/contract-pricing/rate-cards/getRates",
        "/v1/contract-pricing/rate-cards/list",
        "/v1/contracts/customerBalances/getNetBalance",
        "/v1/contracts/customerBalances/list",
        "/v1/contracts/customerCommits/list",
        "/v1/contracts/customerCredits/list",
        "/v1/contracts/get",
        "/v1/contracts/getContractRateSchedule",
        "/v1/contracts/getSubscriptionQuantityHistory",
        "/v1/contracts/getSubscriptionSeatsHistory",
        "/v1/contracts/list",
        "/v1/contracts/seatBalances/list",
        "/v1/customFields/listKeys",
        "/v1/customer-alerts/get",
        "/v1/customer-alerts/list",
        "/v1/dashboards/getEmbeddableUrl",  # signs a URL, stores nothing
        "/v1/events/search",
        "/v1/access/check",
        "/v1/spend-limits/get",
        "/v1/spend-limits/list",
        "/v1/usage",
        "/v1/usage/groups",
        "/v2/contracts/get",
        "/v2/contracts/getEditHistory",
        "/v2/contracts/list",
    }
)
# Writes the header does not apply to, and why.
NOT_KEYED = {
    "/v1/ingest": "events are deduplicated by their transaction_id",
    "/v1/webhooks/": "their answers carry endpoint secrets, which are never stored in the clear",
}
# Commits and rollbacks of held transactions: they never wait for a lock, so a few threads do.
_ENDERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="meterline-idempotency")
_canonical = msgspec.json.Encoder(decimal_format="number", order="sorted")


def is_keyed(method: str, path: str) -> bool:
    """Whether the header applies to requests of this method and path."""
    if method not in KEYED_METHODS or path in READS:
        return False
    return not any(path == p or (p.endswith("/") and path.startswith(p)) for p in NOT_KEYED)


class IdempotencyMiddleware:
    """Inside the edge guard: the body is whole, the token checked and its client named."""

    def __init__(self, app: ASGIApp, *, db: Database, ttl_us: int, clock: Callable[[], int] = now_us) -> None:
        self.app = app
        self.db = db
        self.ttl_us = ttl_us
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _key(scope) if scope["type"] == "http" else None
        if key is None or not is_keyed(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        if not _valid_key(key):
            await message(400, KEY_RULE, {"x-should-retry": "false"})(scope, receive, send)
            return
        body = await _whole_body(receive)
        request = _Keyed(
            client=str(scope.get(CLIENT_SCOPE_KEY, "")),
            key=key,
            line=f"{scope['method']} {scope['path']}",
            sha256=request_sha256(scope, body),
        )
        held = self.db.held_write(on_open=self._claim(request))
        captured = _Captured()
        try:
            with held.joined():
                await self.app(scope, replay_body(body, receive), captured.send)
        except KeyAnswered as answered:
            await _answer_again(request, answered.answer, scope, receive, send)
            return
        except BaseException:
            await _ending(held.rollback)
            raise
        await _ending(lambda: _end(held, request, captured))
        await captured.send_to(send)

    def _claim(self, request: _Keyed) -> Callable[[Connection], None]:
        """What the request's transaction does first, once the handler reads or writes: take the
        key, or stop the handler with the answer the key already holds."""
        now = self.clock()

        def claim(conn: Connection) -> None:
            answer = idempotency_keys.claim(
                conn,
                client=request.client,
                key=request.key,
                request_sha256=request.sha256,
                request_line=request.line,
                now_us=now,
                expires_at_us=now + self.ttl_us,
            )
            if answer is not None:
                raise KeyAnswered(answer)

        return claim


class KeyAnswered(Exception):
    """The key already holds an answer: the handler stops before doing anything, and that answer
    (or a 409, for another request) is sent instead."""

    def __init__(self, answer: KeyedAnswer) -> None:
        super().__init__("the idempotency key already holds an answer")
        self.answer = answer


def _end(held: HeldWrite, request: _Keyed, captured: _Captured) -> None:
    """Commit a 2xx with its answer stored under the key; roll anything else back."""
    if not (200 <= captured.status < 300 and held.opened):
        held.rollback()  # a failure wrote nothing; nor did a request that never read or wrote
        return
    try:
        idempotency_keys.record(
            held.connection(),
            client=request.client,
            key=request.key,
            status_code=captured.status,
            response_body=captured.body,
        )
    except BaseException:
        held.rollback()
        raise
    held.commit()


async def _ending(end: Callable[[], None]) -> None:
    """End a held transaction on a thread of its own, whatever cancels the request meanwhile.

    Not on the handlers' pool: a transaction holding the write lock must be able to end while
    every handler thread waits for that lock."""
    with anyio.CancelScope(shield=True):
        await asyncio.get_running_loop().run_in_executor(_ENDERS, end)


def request_sha256(scope: Scope, body: bytes) -> str:
    """What makes two requests the same: method, path, query (in any order) and body (as JSON
    values, so key order and spacing do not count)."""
    query = sorted(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    digest = hashlib.sha256(f"{scope['method']} {scope['path']}\n{query!r}\n".encode())
    digest.update(_canonical_body(body))
    return digest.hexdigest()


def _canonical_body(body: bytes) -> bytes:
    try:
        parsed = json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError):
        return b"raw:" + body  # not JSON (the route refuses it): the bytes themselves
    return b"json:" + _canonical.encode(parsed)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Keyed:
    """A keyed request: whose key, and what makes it the same request (`line` names it)."""

    client: str
    key: str
    line: str
    sha256: str


class _Captured:
    """The route's answer, held back until the transaction that applied it has committed."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []

    async def send(self, msg: Message) -> None:
        if msg["type"] == "http.response.start":
            self.status = msg["status"]
            self.headers = list(msg.get("headers", ()))
        elif msg["type"] == "http.response.body":
            self.chunks.append(msg.get("body", b""))

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    async def send_to(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


async def _answer_again(
    request: _Keyed, answer: KeyedAnswer, scope: Scope, receive: Receive, send: Send
) -> None:
    if answer.request_sha256 != request.sha256:
        same_route = " with other parameters" if answer.request_line == request.line else ""
        text = (
            f"{HEADER}: key {request.key!r} was first used for {answer.request_line}{same_route}; "
            "a key belongs to one request: repeat that request exactly to get its answer again, "
            "or use a new key"
        )
        await message(409, text, {"x-should-retry": "false"})(scope, receive, send)
        return
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(answer.response_body)).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": answer.response_body})


def _key(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"idempotency-key":
            return bytes(value).decode("latin-1")
    return None


def _valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_CHARS and all(" " <= c <= "~" for c in key)


async def _whole_body(receive: Receive) -> bytes:
    """The body, which the edge guard has already read whole and hands over in one message."""
    chunks = []
    while True:
        msg = await receive()
        chunks.append(msg.get("body", b""))
        if msg["type"] != "http.request" or not msg.get("more_body", False):
            return b"".join(chunks)
