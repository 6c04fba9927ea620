"""Reservations (meterline's extension): POST /v1/access/reserve and /v1/access/release (the
rules: `services.reservations`)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from starlette.responses import Response

from meterline.api.catalog_fields import PositiveAmount
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.fast_route import FastRoute, answered_fast
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel
from meterline.api.state import AppState, app_state
from meterline.domain.errors import MeterlineError
from meterline.domain.reservations import REASON_CODES, Answer
from meterline.services import reservations as service


class _Route(FastRoute, ExactDecimalRoute):
    """Ordinary reserve requests answered fast; the rest read exactly, as every amount is."""


router = APIRouter(route_class=_Route, tags=["meterline extensions: spend control"])
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


class _ReserveBody(msgspec.Struct, forbid_unknown_fields=True):
    """`Reserve` as msgspec reads it; `_plain` adds what its types cannot say, so that every body
    taken here `Reserve` (and `ExactDecimalRoute`'s reading) takes alike."""

    customer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=36)]
    reservation_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    amount: Decimal  # JSON numbers read exactly, never through float
    credit_type_id: Annotated[str, msgspec.Meta(min_length=1, max_length=36)] | None = None
    expires_in_seconds: Annotated[int, msgspec.Meta(ge=1, le=MAX_EXPIRY_S)] = 300


_decode_reserve = msgspec.json.Decoder(_ReserveBody).decode
_encode = msgspec.json.Encoder(decimal_format="number").encode


def _plain(body: _ReserveBody) -> bool:
    """An amount well inside `PositiveAmount`'s bounds (finite, above 0, at most 20 significant
    digits, its exponent within 10 either way), and no NUL in any string (`ExactDecimalRoute`
    refuses it)."""
    amount = body.amount
    if not (amount.is_finite() and amount > 0):
        return False
    digits, exponent = len(amount.as_tuple().digits), amount.as_tuple().exponent
    if digits > 20 or not isinstance(exponent, int) or not -10 <= exponent <= 10:
        return False
    return not any(
        "\x00" in text for text in (body.customer_id, body.reservation_id, body.credit_type_id or "")
    )


def read_reserve(body: bytes) -> service.Ask | None:
    """The ask a reserve body makes, as `Reserve` reads it; None: not taken here (the declared
    route then answers it, refusing it naming the field and the rule, or taking it)."""
    try:
        found = _decode_reserve(body)
    except msgspec.DecodeError:
        return None
    return ask_of(found) if _plain(found) else None


def ask_of(body: Reserve | _ReserveBody) -> service.Ask:
    return service.Ask(
        body.reservation_id, body.customer_id, body.amount, body.credit_type_id, body.expires_in_seconds
    )


async def _reserve_fast(state: AppState, body: bytes) -> Response | None:
    if state.db.in_held_write():
        return None  # a request with an Idempotency-Key: decided alone, in its own transaction
    ask = read_reserve(body)
    if ask is None:
        return None
    started = time.perf_counter()
    return _answered(await _decided(state, ask), started)


@router.post("/v1/access/reserve", responses=RESERVE_DOC)
@answered_fast(_reserve_fast)
async def reserve(body: Reserve, state: AppState = Depends(app_state)) -> Response:
    started = time.perf_counter()
    return _answered(await _decided(state, ask_of(body)), started)


def _answered(answer: service.Outcome, started: float) -> Response:
    assert isinstance(answer, Answer)
    content = _encode(
        {"data": {"granted": answer.granted, "reason": answer.reason, "remaining": answer.remaining}}
    )
    # The server's own time, so a client can tell it from the network's (bench/access.py).
    timing = f"app;dur={(time.perf_counter() - started) * 1000:.3f}"
    return Response(content, media_type="application/json", headers={"Server-Timing": timing})


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
