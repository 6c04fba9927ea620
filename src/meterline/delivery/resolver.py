"""The dispatcher's resolver: a webhook host is refused when any address it resolves to is not
public (`destinations` holds the rule). A module of its own so that the API, which checks URLs at
registration, never imports aiohttp: only the process that sends webhooks does."""

from __future__ import annotations

import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from meterline.delivery.destinations import PRIVATE_RULE, ip_literal, is_public


class PrivateDestination(OSError):
    """A webhook host resolved to an address the dispatcher may not connect to."""


class PublicOnlyResolver(AbstractResolver):
    """Resolves as aiohttp does, then refuses the host if any address it got is not public."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            address = ip_literal(str(result["host"]))
            if address is None or not is_public(address):
                raise PrivateDestination(
                    f"the receiver's host resolves to a non-public address; it {PRIVATE_RULE}"
                )
        return results

    async def close(self) -> None:
        await self._inner.close()
