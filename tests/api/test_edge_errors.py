"""What the edge does with a route that fails: a 500 in Metronome's shape, the real status in the
log line, the exception not passed on to the server (which would drop the kept-alive connection),
and every 503 carrying Retry-After."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import structlog
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from meterline.api.middleware import GuardMiddleware


async def _route(scope: Scope, receive: Receive, send: Send) -> None:
    """A bare ASGI app (as FastAPI's routes sit inside the edge: no error middleware between)."""
    if scope["path"] == "/boom":
        raise RuntimeError("a defect")
    await JSONResponse({"message": "busy"}, status_code=503)(scope, receive, send)


def _guarded_app() -> GuardMiddleware:
    # Public paths: no token (and so no database) needed for these two routes.
    return GuardMiddleware(
        _route,
        token_cache=None,  # type: ignore[arg-type]
        max_body_bytes=1024,
        public_paths=frozenset({"/boom", "/busy"}),
    )


def _request(method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        # raise_app_exceptions: an exception that reached the server would raise here.
        transport = httpx.ASGITransport(app=_guarded_app(), raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def test_an_unexpected_error_is_a_500_with_its_status_logged() -> None:
    with structlog.testing.capture_logs() as lines:
        response = _request("POST", "/boom", content=b"{}")
    assert response.status_code == 500
    assert response.json() == {"message": "internal error; the request was not applied"}
    assert [line["status"] for line in lines if line["event"] == "request"] == [500]
    assert [line["log_level"] for line in lines if line["event"] == "unhandled_error"] == ["error"]


def test_every_503_carries_retry_after() -> None:
    response = _request("GET", "/busy")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


def test_a_dashboard_links_capability_never_reaches_the_log() -> None:
    with structlog.testing.capture_logs() as lines:
        _request("GET", "/embed/dashboards/c2VjcmV0.c2lnbmVk/stream")
    assert [line["path"] for line in lines if line["event"] == "request"] == [
        "/embed/dashboards/{token}/stream"
    ]
