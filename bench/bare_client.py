"""A bare HTTP client posting bodies to a webhook receiver, nothing else: the baseline that webhook
delivery is compared against. aiohttp, which the dispatcher sends with, at a fixed number of
requests in flight (the dispatcher's per endpoint)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp

HEADERS = {"content-type": "application/json"}


async def post_all(url: str, bodies: Sequence[bytes], concurrency: int) -> None:
    """POST every body to `url`, at most `concurrency` in flight, reading each answer."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        slots = asyncio.Semaphore(concurrency)

        async def one(body: bytes) -> None:
            async with slots, session.post(url, data=body, headers=HEADERS) as answer:
                await answer.content.read(1024)

        await asyncio.gather(*(one(body) for body in bodies))
