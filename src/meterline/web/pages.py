"""The embeddable dashboard pages: GET /embed/dashboards/{token}, its live stream, its files, and
POST /embed/dashboards/{token}/limits, where the spend_limits page sets the customer's own limits.

The token is the signed capability `POST /v1/dashboards/getEmbeddableUrl` issued; the page reads
only the customer it names. A tampered, expired or orphaned token gets a 403 page. The stream
(Server-Sent Events) watches how far the customer's usage has been folded in, every
POLL_INTERVAL_S, and pushes the dashboard's body again when it changed; each stream ends after
STREAM_LIFETIME_S (the browser reconnects at once), so no connection outlives a shutdown for long
or a capability's expiry.

The limits write is authorized by the capability in its path alone (no cookie, so no other site
can make a browser send it: CSRF-safe), only for a spend_limits capability, and only for the
customer it names (`web.limits_write`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from meterline.api import dashboard_capability
from meterline.api.dashboard_capability import Capability, CapabilityRefused, Refusal
from meterline.api.state import AppState, app_state
from meterline.domain.errors import NotFound
from meterline.domain.timeutil import now_us
from meterline.store import customers
from meterline.store.usage_position import customer_fold_position
from meterline.web import limits_write, render
from meterline.web.security import new_nonce, page_headers

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
POLL_INTERVAL_S = 0.5
STREAM_LIFETIME_S = 30.0
LIMITS_REFRESH_S = 1.0

router = APIRouter(include_in_schema=False)


@router.get("/embed/dashboards/{token}")
def dashboard_page(token: str, state: AppState = Depends(app_state)) -> Response:
    started, cpu_started = time.perf_counter(), time.thread_time()
    nonce = new_nonce()
    try:
        capability = _open(state, token)
        with state.db.read() as conn:
            html = render.page(conn, state.settings, capability, token, nonce, now_us())
    except CapabilityRefused as refused:
        return _refused(state, refused.refusal, nonce)
    headers = page_headers(state.settings, nonce)
    # The server's own time for the first render, reads included, and the CPU time of the thread
    # that rendered it (what waiting for a busy machine's cores does not inflate): bench/dashboards.py.
    headers["Server-Timing"] = (
        f"app;dur={(time.perf_counter() - started) * 1000:.3f}, "
        f"cpu;dur={(time.thread_time() - cpu_started) * 1000:.3f}"
    )
    return HTMLResponse(html, headers=headers)


@router.get("/embed/dashboards/{token}/stream")
async def dashboard_stream(
    token: str, request: Request, since: int = -2, state: AppState = Depends(app_state)
) -> Response:
    """`since`: the fold position the page was rendered at; anything newer is pushed at once."""
    try:
        capability = await run_in_threadpool(_open, state, token)
    except CapabilityRefused as refused:
        return _refused(state, refused.refusal, new_nonce())
    return StreamingResponse(
        _updates(request, state, capability, since),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post("/embed/dashboards/{token}/limits")
async def set_own_limits(token: str, request: Request, state: AppState = Depends(app_state)) -> Response:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return limits_write.answer(415, "Content-Type: must be application/json")
    raw = await request.body()
    return await run_in_threadpool(_set_own_limits, state, token, raw)


def _set_own_limits(state: AppState, token: str, raw: bytes) -> Response:
    try:
        capability = _open(state, token)
    except CapabilityRefused as refused:
        return limits_write.answer(403, refused.refusal.value)
    return limits_write.set_limits(state, capability, raw)


@router.get("/embed/static/{name}")
def static_file(name: str) -> Response:
    path = STATIC / name
    if path.suffix not in STATIC_TYPES or path.parent != STATIC or not path.is_file():
        raise NotFound(f"name: no file {name}")
    return Response(
        path.read_bytes(),
        media_type=STATIC_TYPES[path.suffix],
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


def _open(state: AppState, token: str) -> Capability:
    capability = dashboard_capability.verify(state.cursors, token, now_us())
    with state.db.read() as conn:
        try:
            customer = customers.get_customer(conn, capability.customer_id)
        except NotFound:
            raise CapabilityRefused(Refusal.UNAVAILABLE) from None
    if customer.archived_at_us is not None:
        raise CapabilityRefused(Refusal.UNAVAILABLE)
    return capability


async def _updates(
    request: Request, state: AppState, capability: Capability, position: int
) -> AsyncIterator[str]:
    yield f"retry: {round(POLL_INTERVAL_S * 1000)}\n\n"
    ends = time.monotonic() + min(STREAM_LIFETIME_S, max(0.0, (capability.expires_us - now_us()) / 1e6))
    last_body: str | None = None
    checked = time.monotonic()
    while time.monotonic() < ends and not await request.is_disconnected():
        moved = await run_in_threadpool(_position, state, capability.customer_id)
        if moved == position and not _limits_due(capability, checked):
            await asyncio.sleep(POLL_INTERVAL_S)
            continue
        position, checked = moved, time.monotonic()
        body = await run_in_threadpool(_body, state, capability)
        if body != last_body:
            last_body = body
            yield "".join(f"data: {line}\n" for line in body.splitlines()) + "\n"
        await asyncio.sleep(POLL_INTERVAL_S)


def _limits_due(capability: Capability, checked: float) -> bool:
    """The limits panel also changes without new usage (the engine's verdict on a limit, a limit
    the operator set): it is rendered again every LIMITS_REFRESH_S, and pushed if it changed."""
    return capability.dashboard == "spend_limits" and time.monotonic() - checked >= LIMITS_REFRESH_S


def _position(state: AppState, customer_id: str) -> int:
    with state.db.read() as conn:
        return customer_fold_position(conn, customer_id)


def _body(state: AppState, capability: Capability) -> str:
    with state.db.read() as conn:
        return render.body(conn, state.settings, capability, now_us())


def _refused(state: AppState, refusal: Refusal, nonce: str) -> HTMLResponse:
    return HTMLResponse(render.refused(refusal, nonce), 403, headers=page_headers(state.settings, nonce))
