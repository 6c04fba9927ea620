"""ASGI middleware: bearer-token authentication, body-size limit, one structured log line per request."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meterline.api.responses import message
from meterline.logging import get_logger
from meterline.store import tokens
from meterline.store.db import Database

PUBLIC_PATHS = frozenset({"/health", "/healthz"})
log = get_logger("meterline.http")


class TokenCache:
    """Remembers verified tokens briefly, so the ingest hot path does not query per request."""

    def __init__(self, db: Database, ttl_s: float, clock: Callable[[], float] = time.monotonic):
        self.db = db
        self.ttl_s = ttl_s
        self.clock = clock
        self._valid_until: dict[str, float] = {}

    def is_valid(self, token: str) -> bool:
        key = tokens.digest(token)
        now = self.clock()
        if self._valid_until.get(key, 0.0) > now:
            return True
        with self.db.read() as conn:
            valid = tokens.is_valid(conn, token)
        if valid:
            if len(self._valid_until) > 10_000:
                self._valid_until.clear()
            self._valid_until[key] = now + self.ttl_s
        else:
            self._valid_until.pop(key, None)
        return valid


class GuardMiddleware:
    def __init__(self, app: ASGIApp, *, token_cache: TokenCache, max_body_bytes: int):
        self.app = app
        self.token_cache = token_cache
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 0}

        async def send_and_record(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                status["code"] = msg["status"]
            await send(msg)

        try:
            _treat_body_as_json(scope)
            rejection = self._reject(scope)
            if rejection is not None:
                await rejection(scope, receive, send_and_record)
            else:
                await self.app(scope, receive, send_and_record)
        finally:
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status["code"],
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )

    def _reject(self, scope: Scope) -> ASGIApp | None:
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return message(413, f"body: must be at most {self.max_body_bytes} bytes")
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            return message(400, "path: must not contain the NUL character")
        if scope["path"] in PUBLIC_PATHS:
            return None
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return message(401, "Authorization: a bearer token is required (Authorization: Bearer <token>)")
        if not self.token_cache.is_valid(token.strip()):
            return message(401, "Authorization: the bearer token is not valid")
        return None


def _treat_body_as_json(scope: Scope) -> None:
    """Every body this API accepts is JSON, whatever Content-Type the client sent (curl -d sends a form type)."""
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
    headers.append((b"content-type", b"application/json"))
    scope["headers"] = headers
