"""Access decisions (meterline's extension): POST /v1/access/check and GET /v1/access/stream.

A check answers, for up to 100 customers (ids or ingest aliases), whether each has access now and
why not, from what the engine has evaluated (`services.access`). The stream pushes the same
object for every change of access of the customers it names, as Server-Sent Events
(`api.access_stream`).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.responses import Response

from meterline.api.access_stream import MAX_CUSTOMERS_PER_STREAM, decide_now, decision_view, events
from meterline.api.fast_route import FastRoute, answered_fast
from meterline.api.routes.common import StrictModel, split_query_list
from meterline.api.state import AppState, app_state
from meterline.domain.errors import InvalidInput
from meterline.services.access import MAX_CUSTOMERS_PER_CHECK, MAX_REF_CHARS

router = APIRouter(route_class=FastRoute, tags=["meterline extensions: spend control"])
Ref = Annotated[str, Field(min_length=1, max_length=MAX_REF_CHARS)]


class ReasonDoc(BaseModel):
    code: Literal["hard_limit_reached", "blocking_alert", "customer_archived", "unknown_customer"]
    alert_id: str | None
    threshold: Decimal | None
    value: Decimal | None = Field(description="the alert's measure when it went in alarm")


class DecisionDoc(BaseModel):
    customer_id: str = Field(description="as asked: a meterline customer id or an ingest alias")
    has_access: bool
    reasons: list[ReasonDoc] = Field(description="why not (empty when has_access)")
    as_of: str = Field(description="RFC 3339: every event acknowledged before it has been evaluated")


class CheckDoc(BaseModel):
    data: list[DecisionDoc]


CHECK_DOC: dict[int | str, dict[str, Any]] = {200: {"model": CheckDoc, "description": "one decision per id"}}
STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: `access` (data: a decision, as /v1/access/check answers "
        "it), `ready` (the first decisions are all sent), `heartbeat` (data: `{as_of}`)",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


class AccessCheck(StrictModel):
    customer_ids: list[Ref] = Field(
        min_length=1,
        max_length=MAX_CUSTOMERS_PER_CHECK,
        description="meterline customer ids or ingest aliases; answered in this order",
    )


class _CheckBody(msgspec.Struct, forbid_unknown_fields=True):
    """`AccessCheck` as msgspec reads it: every body it takes, `AccessCheck` takes alike."""

    customer_ids: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REF_CHARS)]],
        msgspec.Meta(min_length=1, max_length=MAX_CUSTOMERS_PER_CHECK),
    ]


_decode_check = msgspec.json.Decoder(_CheckBody).decode
_encode = msgspec.json.Encoder(decimal_format="number").encode


def read_check(body: bytes) -> list[str] | None:
    """The customers a check body names, as `AccessCheck` reads them; None: not taken here (the
    declared route then answers it, refusing it naming the field and the rule, or taking it)."""
    try:
        return _decode_check(body).customer_ids
    except msgspec.DecodeError:
        return None


async def _check_fast(state: AppState, body: bytes) -> Response | None:
    refs = read_check(body)
    if refs is None:
        return None
    # The reads wait on the database (a round trip on PostgreSQL): off the event loop, in the
    # request's context (as FastAPI's hop keeps it: a transaction a request holds is found there).
    run = contextvars.copy_context().run
    return await asyncio.get_running_loop().run_in_executor(None, run, _answer, state, refs)


@router.post("/v1/access/check", responses=CHECK_DOC)
@answered_fast(_check_fast)
def check_access(body: AccessCheck, state: AppState = Depends(app_state)) -> Response:
    return _answer(state, body.customer_ids)


def _answer(state: AppState, refs: list[str]) -> Response:
    started = time.perf_counter()
    found = decide_now(state, refs)
    content = _encode({"data": [decision_view(d) for d in found]})
    # The server's own time, so a client can tell it from the network's (bench/access.py).
    timing = f"app;dur={(time.perf_counter() - started) * 1000:.3f}"
    return Response(content, media_type="application/json", headers={"Server-Timing": timing})


@router.get("/v1/access/stream", response_class=StreamingResponse, responses=STREAM_DOC)
async def access_stream(
    customer_ids: Annotated[
        list[str] | None,
        Query(description="meterline customer ids or ingest aliases, comma-separated or repeated"),
    ] = None,
    heartbeat_s: Annotated[float, Query(ge=1, le=300)] = 15.0,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    state: AppState = Depends(app_state),
) -> StreamingResponse:
    refs = _stream_refs(customer_ids)
    held = last_event_id.rpartition("-")[2] if last_event_id else None
    return StreamingResponse(
        events(state, refs, held, heartbeat_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _stream_refs(given: list[str] | None) -> list[str]:
    refs = list(dict.fromkeys(split_query_list(given) or []))
    if not 1 <= len(refs) <= MAX_CUSTOMERS_PER_STREAM:
        raise InvalidInput(f"customer_ids: must name between 1 and {MAX_CUSTOMERS_PER_STREAM} customers")
    for index, ref in enumerate(refs):
        if len(ref) > MAX_REF_CHARS:
            raise InvalidInput(f"customer_ids[{index}]: must be at most {MAX_REF_CHARS} characters")
    return refs
