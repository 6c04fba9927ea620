"""One HTTP attempt: POST the body, time it, keep the answer's status and headers; never raise.

The answer's body (its first KiB) is kept only where private destinations are allowed: a
receiver the operator trusts. Otherwise a token holder could read internal services' answers
through the delivery log (see destinations.py); only the status and headers are kept.

aiohttp, not httpx, sends webhooks: posting to the same receiver at 4 in flight it costs about
0.1 ms of CPU per request where httpx costs 0.7 ms (`python bench/dispatcher_cost.py
--baseline-client httpx`), and the dispatcher's CPU is what a burst of threshold crossings waits on.

The whole attempt (connect, send, headers, the first KiB) is bounded by one deadline, so a
receiver trickling bytes cannot hold a slot forever. Redirects are not followed: a webhook URL
that moved must be registered again.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from meterline.delivery.destinations import refusal
from meterline.delivery.resolver import PublicOnlyResolver

RESPONSE_BODY_BYTES = 1024
RESPONSE_HEADERS_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Response:
    status_code: int | None  # None: no HTTP answer (refused, timed out, reset)
    latency_ms: int
    error: str | None
    body: str | None
    retry_after: str | None
    headers: str | None = None  # the answer's headers as a JSON object, at most a KiB of them

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def session(max_connections: int, allow_private: bool = False) -> aiohttp.ClientSession:
    """The dispatcher's connection pool; created on the loop that will use it. Unless private
    destinations are allowed, it connects only to the public addresses a name resolves to."""
    resolver = None if allow_private else PublicOnlyResolver()
    connector = aiohttp.TCPConnector(limit=max_connections, resolver=resolver)
    # No trust_env: with it, aiohttp reads the proxy variables and ~/.netrc on every request (a
    # tenth of the dispatcher's CPU under load). Webhooks go straight to the receiver's URL.
    return aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=True)


async def post(
    client: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_s: float,
    allow_private: bool = False,
) -> Response:
    problem = refusal(url, allow_private)
    if problem is not None:
        return Response(None, 0, f"RefusedDestination: the webhook URL {problem}", None, None)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            async with client.post(url, data=body, headers=headers, allow_redirects=False) as answer:
                head = await answer.content.read(RESPONSE_BODY_BYTES) if allow_private else None
                status, retry_after = answer.status, answer.headers.get("retry-after")
                kept_headers = _headers(answer.headers)
    except TimeoutError:
        return Response(None, _ms(started), f"timed out after {timeout_s:g} s", None, None)
    except (aiohttp.ClientError, OSError, ValueError) as error:
        return Response(None, _ms(started), _describe(error), None, None)
    return Response(
        status,
        _ms(started),
        None if 200 <= status < 300 else f"HTTP {status}",
        head.decode("utf-8", errors="replace") if head is not None else None,
        retry_after,
        kept_headers,
    )


def _headers(headers: Any) -> str:
    """The answer's headers as a JSON object, whole headers only, within RESPONSE_HEADERS_BYTES."""
    kept: dict[str, str] = {}
    size = 2
    for name, value in headers.items():
        item = len(name) + len(value) + 6
        if size + item > RESPONSE_HEADERS_BYTES:
            break
        kept[name.lower()] = value
        size += item
    return json.dumps(kept)


def _describe(error: BaseException) -> str:
    """The failure without the URL (it may carry credentials)."""
    if isinstance(error, aiohttp.ClientConnectorError):
        reason = error.os_error.strerror or str(error.os_error) or "no detail"
        return f"ConnectError: could not connect to the receiver: {reason}"[:500]
    if isinstance(error, aiohttp.InvalidURL):
        return "InvalidURL: the webhook URL is not a valid http(s) URL"
    detail = str(error) or "no detail"
    return f"{type(error).__name__}: {detail}"[:500]


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
