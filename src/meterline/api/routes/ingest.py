"""Usage ingest: POST /v1/ingest, the hot path. Parsed with msgspec, validated whole, group-committed.

Every request is answered by `_ingest` on the fast route (`api.fast_route`): the route reads the
body itself and answers nothing but 200 or an error, so FastAPI's per-request machinery (the
request object, dependencies, its handler's wrapping) would be spent for nothing: a few per cent
of the server's CPU an event (`bench/ingest_cost.py`, BENCHMARKS.md).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from meterline.api.fast_route import FastRoute, answered_fast
from meterline.api.ingest_parsing import parse_batch
from meterline.api.state import AppState, app_state
from meterline.domain.closed_periods import may_be_closed
from meterline.domain.errors import InvalidInput
from meterline.domain.events import BatchRejected, IngestLimits, UsageEvent
from meterline.domain.timeutil import US_PER_HOUR, now_us
from meterline.metrics import INGEST_EVENTS
from meterline.services import ingest as service

router = APIRouter(route_class=FastRoute)


async def _ingest(state: AppState, body: bytes) -> Response:
    """The body (size-bounded and gunzipped by the edge middleware) parsed, checked and appended;
    answered once durable."""
    settings = state.settings
    limits = IngestLimits(
        max_events=settings.max_events_per_request,
        max_backdate_days=settings.max_backdate_days,
        max_future_hours=settings.max_future_hours,
        max_transaction_id_chars=settings.max_transaction_id_chars,
    )
    try:
        received_us = now_us()
        batch = parse_batch(body, received_us, limits)
    except BatchRejected as rejected:
        raise InvalidInput("; ".join(rejected.problems)) from None
    grace_us = settings.invoice_grace_period_hours * US_PER_HOUR
    if any(may_be_closed(event.timestamp_us, received_us, grace_us) for event in batch):
        await run_in_threadpool(_refuse_closed_periods, state, batch, received_us, grace_us)
    await state.writer.append(batch)
    INGEST_EVENTS.inc(len(batch))
    return Response(status_code=200)


@router.post("/v1/ingest")
@answered_fast(_ingest)
async def ingest(request: Request, state: AppState = Depends(app_state)) -> Response:
    return await _ingest(state, await request.body())


def _refuse_closed_periods(state: AppState, batch: list[UsageEvent], received_us: int, grace_us: int) -> None:
    with state.db.read() as conn:
        service.refuse_closed_periods(conn, batch, received_us, grace_us)
