"""One HTTP attempt: POST the body, time it, keep the first KiB of the answer; never raise.

The whole attempt (connect, send, headers, the first KiB) is bounded by one deadline: httpx's
timeouts apply per read, so a receiver trickling bytes could otherwise hold a slot forever.
Redirects are not followed: a webhook URL that moved must be registered again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

RESPONSE_BODY_BYTES = 1024


@dataclass(frozen=True, slots=True)
class Response:
    status_code: int | None  # None: no HTTP answer (refused, timed out, reset)
    latency_ms: int
    error: str | None
    body: str | None
    retry_after: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout_s: float
) -> Response:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            async with client.stream("POST", url, content=body, headers=headers) as answer:
                head = await _first_bytes(answer)
    except TimeoutError:
        return Response(None, _ms(started), f"timed out after {timeout_s:g} s", None, None)
    except httpx.HTTPError as error:
        return Response(None, _ms(started), _describe(error), None, None)
    status = answer.status_code
    return Response(
        status,
        _ms(started),
        None if 200 <= status < 300 else f"HTTP {status}",
        head.decode("utf-8", errors="replace"),
        answer.headers.get("retry-after"),
    )


async def _first_bytes(answer: httpx.Response) -> bytes:
    kept = b""
    async for chunk in answer.aiter_bytes():
        kept += chunk
        if len(kept) >= RESPONSE_BODY_BYTES:
            break
    return kept[:RESPONSE_BODY_BYTES]


def _describe(error: httpx.HTTPError) -> str:
    """The failure without the URL (it may carry credentials)."""
    detail = str(error) or "no detail"
    return f"{type(error).__name__}: {detail}"[:500]


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
