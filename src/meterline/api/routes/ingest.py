"""Usage ingest: POST /v1/ingest, the hot path. Parsed with msgspec, validated whole, group-committed."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from meterline.api.ingest_parsing import parse_batch
from meterline.api.state import AppState, app_state
from meterline.domain.closed_periods import closed_period_of, may_be_closed
from meterline.domain.errors import InvalidInput
from meterline.domain.events import BatchRejected, IngestLimits, UsageEvent
from meterline.domain.timeutil import US_PER_HOUR, format_rfc3339, now_us
from meterline.metrics import INGEST_EVENTS
from meterline.store import customers, invoices

router = APIRouter()


@router.post("/v1/ingest")
async def ingest(request: Request, state: AppState = Depends(app_state)) -> Response:
    settings = state.settings
    body = await request.body()  # size-bounded and gunzipped by the edge middleware
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


def _refuse_closed_periods(state: AppState, batch: list[UsageEvent], received_us: int, grace_us: int) -> None:
    """Refuse events that fall in a finalized billing period (`domain.closed_periods`).

    Only backdated events pay for this look-up; a recent event cannot reach a finalized period.
    """
    with state.db.read() as conn:
        resolved = customers.resolve_customer_refs(conn, {e.customer_ref for e in batch})
        customer_of = [resolved.get(e.customer_ref) for e in batch]
        closed = invoices.finalized_periods_reached(
            conn,
            ((c, e.timestamp_us) for c, e in zip(customer_of, batch, strict=True) if c is not None),
            received_us,
            grace_us,
        )
    problems = [
        f"events[{i}].timestamp: falls in the billing period {format_rfc3339(span[0])} to "
        f"{format_rfc3339(span[1])}, whose invoice is finalized"
        for i, (customer_id, e) in enumerate(zip(customer_of, batch, strict=True))
        if customer_id in closed and (span := closed_period_of(e.timestamp_us, closed[customer_id]))
    ]
    if problems:
        raise InvalidInput("; ".join(problems))
