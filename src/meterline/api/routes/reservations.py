"""Reservations (meterline's extension): POST /v1/access/reserve and /v1/access/release (the
rules: `services.reservations`)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from meterline.api.catalog_fields import PositiveAmount
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel
from meterline.api.state import AppState, app_state
from meterline.domain.errors import MeterlineError
from meterline.domain.reservations import REASON_CODES, Answer
from meterline.services import reservations as service

router = APIRouter(route_class=ExactDecimalRoute, tags=["meterline extensions: spend control"])
ReservationId = Annotated[str, Field(min_length=1, max_length=128)]
MAX_EXPIRY_S = 7 * 24 * 3600


class ReservationAnswerDoc(BaseModel):
    granted: bool
    reason: Literal[REASON_CODES] | None = Field(description="why not (null when granted)")  # type: ignore[valid-type]
    remaining: Decimal | None = Field(
        description="what may still be reserved or spent under the hard limit after this answer "
        "(never below 0); null when the customer has no hard limit in the credit type"
    )


class ReserveDoc(BaseModel):
    data: ReservationAnswerDoc


class ReleasedDoc(BaseModel):
    reservation_id: str
    status: Literal["released", "settled", "expired"] = Field(
        description="how the reservation ended: released by this call (or an earlier one), "
        "settled by a usage event carrying its id, or expired"
    )


class ReleaseDoc(BaseModel):
    data: ReleasedDoc


RESERVE_DOC: dict[int | str, dict[str, Any]] = {200: {"model": ReserveDoc, "description": "the answer"}}
RELEASE_DOC: dict[int | str, dict[str, Any]] = {200: {"model": ReleaseDoc, "description": "how it ended"}}


class Reserve(StrictModel):
    customer_id: Annotated[str, Field(min_length=1, max_length=36)]
    reservation_id: ReservationId = Field(
        description="the client's id: asking again with it answers about the same reservation; "
        "a usage event whose properties carry it settles the reservation"
    )
    amount: PositiveAmount = Field(description="in the credit type")
    credit_type_id: Annotated[str, Field(min_length=1, max_length=36)] | None = Field(
        default=None, description="default: USD (cents)"
    )
    expires_in_seconds: int = Field(default=300, ge=1, le=MAX_EXPIRY_S, description="released then")


class Release(StrictModel):
    reservation_id: ReservationId


@router.post("/v1/access/reserve", responses=RESERVE_DOC)
async def reserve(body: Reserve, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    started = time.perf_counter()
    ask = service.Ask(
        body.reservation_id, body.customer_id, body.amount, body.credit_type_id, body.expires_in_seconds
    )
    answer = await _decided(state, ask)
    assert isinstance(answer, Answer)
    response = ExactJSONResponse(
        {"data": {"granted": answer.granted, "reason": answer.reason, "remaining": answer.remaining}}
    )
    # The server's own time, so a client can tell it from the network's (bench/access.py).
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.3f}"
    return response


@router.post("/v1/access/release", responses=RELEASE_DOC)
async def release(body: Release, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    ended = await _decided(state, service.Release(body.reservation_id))
    return ExactJSONResponse({"data": {"reservation_id": body.reservation_id, "status": ended}})


async def _decided(state: AppState, request: service.Request) -> service.Outcome:
    """Decided with the other requests waiting (one commit for all), or, for a request with an
    `Idempotency-Key`, alone in the request's own transaction, which stores its answer with it."""
    if state.db.in_held_write():
        outcome = await run_in_threadpool(state.reservations.decide_alone, request)
    else:
        outcome = await state.reservations.submit(request)
    if isinstance(outcome, MeterlineError):
        raise outcome
    return outcome
