"""Request bodies whose JSON numbers are read as Decimal, so prices and factors stay exact.

FastAPI parses bodies with `json.loads`, which turns `0.0015` into a binary float before any
model sees it. Routers built with `route_class=ExactDecimalRoute` parse them with
`parse_float=Decimal` instead, and refuse, naming the field, before any model sees them:
strings holding NUL (PostgreSQL text cannot store it), and numbers beyond what meterline keeps
exactly (`1e999999999` is valid JSON, but turning it into an integer would take forever).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from meterline.domain.errors import InvalidInput
from meterline.domain.metrics import MAX_INTEGER_DIGITS, NUMBER_RULE, out_of_range_number


class _OutOfRange:
    """A number the parser met that is beyond the bound: reported by the walk, with its field."""


OUT_OF_RANGE = _OutOfRange()


def _number(text: str) -> Any:
    value = Decimal(text)
    return OUT_OF_RANGE if out_of_range_number(value) else value


def _integer(text: str) -> Any:
    # Checked on the text: int() of a very long digit string is itself slow (and limited).
    digits = len(text.lstrip("-"))
    return OUT_OF_RANGE if digits > MAX_INTEGER_DIGITS else int(text)


class _ExactRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(
                await self.body(), parse_float=_number, parse_int=_integer, parse_constant=_refuse_constant
            )
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
            problem = _problem(parsed)
            if problem is not None:
                raise InvalidInput(problem)
            return await handle(exact)

        return exact_handler


def _problem(value: Any) -> str | None:
    # Iterative, so a deeply nested body cannot exhaust the stack here.
    pending: list[tuple[Any, str]] = [(value, "body")]
    while pending:
        item, path = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            return "body: strings must not contain the NUL character (\\u0000)"
        if item is OUT_OF_RANGE:
            return f"{path}: {NUMBER_RULE}"
        if isinstance(item, dict):
            pending.extend((key, path) for key in item)
            pending.extend((child, _field(path, key)) for key, child in item.items())
        elif isinstance(item, list):
            pending.extend((child, f"{path}[{i}]") for i, child in enumerate(item))
    return None


def _field(path: str, key: str) -> str:
    key = key if len(key) <= 100 else f"{key[:100]}..."
    return key if path == "body" else f"{path}.{key}"
