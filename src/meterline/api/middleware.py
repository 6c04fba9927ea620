"""ASGI middleware: the edge every request passes, whatever its route.

In order: the URL's rules and the bearer token (before a byte of the body is read, so an
anonymous client cannot make the server buffer anything; the token's client is then named in the
scope); the body, read whole under a size
bound counted on the bytes actually received (chunked or not) and a time bound, gzip undone
under the same size bound; the body's edge rules (`body_checks`); then the route, fed the
buffered body. Whatever the route raises becomes a 500 in Metronome's shape on a connection
that stays open; a client that goes away is not an error. One structured log line per request
carries the status actually sent.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meterline.api.body_checks import body_problem, url_problem
from meterline.api.responses import message
from meterline.logging import get_logger
from meterline.metrics import HTTP_REQUESTS, INGEST_LATENCY
from meterline.store import tokens
from meterline.store.db import Database

PUBLIC_PATHS = frozenset({"/health", "/healthz"})
# Embeddable dashboards: each URL carries its own signed capability (`meterline.web`), no token.
PUBLIC_PREFIX = "/embed/"
DASHBOARD_PREFIX = "/embed/dashboards/"
# Where a body's top level is an array, what its items are called in error messages.
ARRAY_ROOTS = {"/v1/ingest": "events"}
# Routes whose own parser enforces the nesting bound on the hot path (see ingest_parsing).
DEPTH_CHECKED_BY_ROUTE = frozenset({"/v1/ingest"})
# Clients may retry a 503 after this many seconds, unless the answer says otherwise.
RETRY_AFTER_S = 1
# Where the request's scope carries the name of the client its token was created for.
CLIENT_SCOPE_KEY = "meterline.client"
# nginx's code for "the client closed the request", in log lines only: nothing is sent.
CLIENT_CLOSED = 499
log = get_logger("meterline.http")


class TokenCache:
    """Remembers verified tokens briefly, so the ingest hot path does not query per request."""

    def __init__(self, db: Database, ttl_s: float, clock: Callable[[], float] = time.monotonic):
        self.db = db
        self.ttl_s = ttl_s
        self.clock = clock
        self._valid_until: dict[str, tuple[float, str]] = {}

    def is_valid(self, token: str) -> bool:
        return self.client_of(token) is not None

    def client_of(self, token: str) -> str | None:
        """The name of the client the token was created for, or None if it is not valid."""
        key = tokens.digest(token)
        now = self.clock()
        cached = self._valid_until.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        with self.db.read() as conn:
            client = tokens.client_of(conn, token)
        if client is not None:
            if len(self._valid_until) > 10_000:
                self._valid_until.clear()
            self._valid_until[key] = (now + self.ttl_s, client)
        else:
            self._valid_until.pop(key, None)
        return client


class Refused(Exception):
    """A request refused while its body was read; `close` ends the connection after the answer."""

    def __init__(self, status_code: int, text: str, *, close: bool = False) -> None:
        super().__init__(text)
        self.status_code = status_code
        self.text = text
        self.close = close


class GuardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        token_cache: TokenCache,
        max_body_bytes: int,
        body_timeout_s: float = 60.0,
        public_paths: frozenset[str] = PUBLIC_PATHS,
    ):
        self.app = app
        self.token_cache = token_cache
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.public_paths = public_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 0}

        async def send_and_record(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                status["code"] = msg["status"]
                if msg["status"] == 503 and not any(k == b"retry-after" for k, _v in msg.get("headers", ())):
                    msg = {
                        **msg,
                        "headers": [*msg.get("headers", ()), (b"retry-after", str(RETRY_AFTER_S).encode())],
                    }
            await send(msg)

        try:
            await self._handle(scope, receive, send_and_record)
        except (ClientDisconnect, ClientGone):
            status["code"] = status["code"] or CLIENT_CLOSED
        except Exception:
            log.exception("unhandled_error", method=scope["method"], path=_logged_path(scope["path"]))
            if not status["code"]:
                await message(500, "internal error; the request was not applied")(
                    scope, receive, send_and_record
                )
        finally:
            elapsed_s = time.perf_counter() - started
            log.info(
                "request",
                method=scope["method"],
                path=_logged_path(scope["path"]),
                status=status["code"],
                duration_ms=round(elapsed_s * 1000, 2),
            )
            _count(scope, status["code"], elapsed_s)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        _treat_body_as_json(scope)
        rejection = self._reject(scope)
        if rejection is not None:
            await rejection(scope, receive, send)
            return
        try:
            body = await self._read_body(scope, receive)
            problem = body_problem(
                body,
                ARRAY_ROOTS.get(scope["path"], "body"),
                check_depth=scope["path"] not in DEPTH_CHECKED_BY_ROUTE,
            )
            if problem is not None:
                raise Refused(400, problem)
        except Refused as refused:
            headers = {"connection": "close"} if refused.close else None
            await message(refused.status_code, refused.text, headers)(scope, receive, send)
            return
        await self.app(scope, replay_body(body, receive), send)

    def _reject(self, scope: Scope) -> ASGIApp | None:
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return message(413, f"body: must be at most {self.max_body_bytes} bytes", {"connection": "close"})
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            return message(400, "path: must not contain the NUL character")
        problem = url_problem(scope.get("raw_path") or b"", scope.get("query_string", b""))
        if problem is not None:
            return message(400, problem)
        if scope["path"] in self.public_paths or scope["path"].startswith(PUBLIC_PREFIX):
            return None
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return message(401, "Authorization: a bearer token is required (Authorization: Bearer <token>)")
        client = self.token_cache.client_of(token.strip())
        if client is None:
            return message(401, "Authorization: the bearer token is not valid")
        scope[CLIENT_SCOPE_KEY] = client
        return None

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        """The whole body, bounded in bytes received and in time; gzip undone under the same bound."""
        limit = self.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout_s):
                while True:
                    msg = await receive()
                    if msg["type"] == "http.disconnect":
                        raise ClientGone
                    chunk = msg.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise Refused(413, f"body: must be at most {limit} bytes", close=True)
                    chunks.append(chunk)
                    if not msg.get("more_body", False):
                        break
        except TimeoutError:
            raise Refused(
                408, f"body: must arrive within {self.body_timeout_s:g} seconds", close=True
            ) from None
        body = b"".join(chunks)
        encoding = _header(scope, b"content-encoding").lower()
        if encoding == b"gzip":
            _drop_header(scope, b"content-encoding")
            return _gunzip(body, limit)
        if encoding not in (b"", b"identity"):
            raise Refused(
                400,
                f"Content-Encoding: {encoding.decode('latin-1')[:40]!r} is not supported; use gzip or none",
            )
        return body


def _logged_path(path: str) -> str:
    """The path as logged: a dashboard link's capability is a secret, so logs never hold it."""
    if path.startswith(DASHBOARD_PREFIX):
        _token, slash, rest = path[len(DASHBOARD_PREFIX) :].partition("/")
        return f"{DASHBOARD_PREFIX}{{token}}{slash}{rest}"
    return path


def _count(scope: Scope, status: int, elapsed_s: float) -> None:
    route = scope.get("route")
    # The route's template (never the raw path, whose ids would make a series per object).
    template = getattr(route, "path", None) or "unrouted"
    HTTP_REQUESTS.labels(template, str(status)).inc()
    if template == "/v1/ingest":
        INGEST_LATENCY.observe(elapsed_s)


class ClientGone(Exception):
    """The client disconnected before its request was read: nothing to answer, nothing wrong."""


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the buffered body once, then waits on the connection (for disconnects)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    """Decompress with a cap, so a small gzip bomb cannot exhaust memory."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error:
        raise Refused(400, "body: is not valid gzip data") from None
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise Refused(413, f"body: must be at most {max_bytes} bytes once decompressed")
    if not inflater.eof:
        raise Refused(400, "body: gzip data is truncated")
    return data


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


def _drop_header(scope: Scope, name: bytes) -> None:
    scope["headers"] = [(k, v) for k, v in scope["headers"] if k != name]


def _treat_body_as_json(scope: Scope) -> None:
    """Every body this API accepts is JSON, whatever Content-Type the client sent (curl -d sends a form type).

    Not on the dashboard pages: their limits write requires the JSON type, which no cross-site form
    can send (defence in depth beside the capability the write needs)."""
    if scope["path"].startswith(DASHBOARD_PREFIX):
        return
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
    headers.append((b"content-type", b"application/json"))
    scope["headers"] = headers
