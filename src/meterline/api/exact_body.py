"""Request bodies whose JSON numbers are read as Decimal, so prices and factors stay exact.

FastAPI parses bodies with `json.loads`, which turns `0.0015` into a binary float before any
model sees it. Routers built with `route_class=ExactDecimalRoute` parse them with
`parse_float=Decimal` instead, and refuse strings holding NUL (PostgreSQL text cannot store it),
so such input is a 400 rather than a database error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from meterline.domain.errors import InvalidInput


class _ExactRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_float=Decimal, parse_constant=_refuse_constant)
        return self._json


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; a body holding one is malformed.
    raise ValueError(f"{name} is not a JSON number")


class ExactDecimalRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def exact_handler(request: Request) -> Response:
            exact = _ExactRequest(request.scope, request.receive)
            try:
                parsed = await exact.json()
            except (ValueError, RecursionError):
                parsed = None  # not JSON: FastAPI reports that itself when it reads the body
            if _holds_nul(parsed):
                raise InvalidInput("body: strings must not contain the NUL character (\\u0000)")
            return await handle(exact)

        return exact_handler


def _holds_nul(value: Any) -> bool:
    # Iterative, so a deeply nested body cannot exhaust the stack here.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            return True
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
