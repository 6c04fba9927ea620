"""Routes whose ordinary requests skip FastAPI's per-request machinery, answered as declared.

For every request FastAPI builds a `Request`, two exit stacks, parses the content type with
`email.message`, parses the JSON with the standard library, solves the dependencies, validates
the body with pydantic and, for a plain function, hops to a worker thread through anyio: about
a third of a millisecond of CPU before and around an access check's own work (`bench/access.py
--profile`), more than the check's decisions. A route declared with `route_class=FastRoute`
and an endpoint marked `@answered_fast(handler)` is declared as usual (its OpenAPI entry, its
model, its error answers all come from the declaration), and each request is first offered to
`handler(state, body)`: it decodes the body with a msgspec type at least as strict as the
declared model and answers, or returns None for anything it does not take (a body its type
refuses), which then goes the declared way, so every refusal is the declared route's own.
Errors the handler raises (`MeterlineError`) are answered by the app's handlers, as any route's.

`FastPaths`, the innermost middleware, hands a request for a fast route's path and method to
its handler before FastAPI's routing sees it: matching the path against the routes, the copies
of the scope and the exit stacks around the route cost a quarter of the event loop's CPU for a
reservation, more than the fast handler itself. What the handler declines goes on to the router
as before (and is not offered to the handler twice).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meterline.api.responses import message
from meterline.api.state import AppState
from meterline.domain.errors import MeterlineError

FastHandler = Callable[[AppState, bytes], Awaitable[Response | None]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
_ATTRIBUTE = "__meterline_fast__"
_DECLINED = "meterline.fast_declined"  # in the scope: the handler has seen this request already


def answered_fast(handler: FastHandler) -> Callable[[Endpoint], Endpoint]:
    """Marks an endpoint whose requests `handler` answers first (on a `FastRoute`)."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _ATTRIBUTE, handler)
        return endpoint

    return mark


class FastRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        # On the endpoint, not the route: `include_router` copies routes, not their attributes.
        self.fast: FastHandler | None = getattr(endpoint, _ATTRIBUTE, None)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A method the route does not serve goes the declared way, to its 405.
        if self.fast is None or scope["method"] not in (self.methods or ()) or scope.get(_DECLINED):
            await super().handle(scope, receive, send)
            return
        messages, body = await _whole_body(receive)
        if body is not None:
            response = await self.fast(scope["app"].state.meterline, body)
            if response is not None:
                await response(scope, receive, send)
                return
        await super().handle(scope, _replay(messages, receive), send)


class FastPaths:
    """Requests for a fast route's path and method answered by its handler ahead of the router."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        # The routes as declared (their routers are included without a prefix).
        self._routes = {
            (method, route.path): route
            for route in routes
            if isinstance(route, FastRoute) and route.fast is not None
            for method in route.methods or ()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        if route is None or route.fast is None:
            await self.app(scope, receive, send)
            return
        messages, body = await _whole_body(receive)
        if body is not None:
            try:
                response = await route.fast(scope["app"].state.meterline, body)
            except MeterlineError as error:
                response = message(error.status_code, error.message)  # as `errors.install` answers
            if response is not None:
                scope["route"] = route  # as the router would: requests are counted by their route
                await response(scope, receive, send)
                return
            scope[_DECLINED] = True
        await self.app(scope, _replay(messages, receive), send)


async def _whole_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The request's messages as received, and its body (None if the client went away)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that gives the messages already read again, then waits on the connection."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
