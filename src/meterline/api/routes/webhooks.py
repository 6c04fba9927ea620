"""Webhook endpoints and the delivery log: /v1/webhooks/... (meterline's own; Metronome configures
webhooks in its dashboard).

A secret appears in the response that creates or rotates it and nowhere else, ever.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field

from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.pagination import page_request
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel, id_response, optional_time
from meterline.api.state import AppState, app_state
from meterline.delivery import endpoints
from meterline.delivery.secrets import require_box
from meterline.domain.timeutil import format_rfc3339, now_us
from meterline.store import webhooks as store
from meterline.store.webhooks import AttemptRecord, DeliveryRecord, EndpointRecord

router = APIRouter(route_class=ExactDecimalRoute)  # also refuses NUL in strings with a 400
Id = Annotated[str, Field(min_length=1, max_length=64)]


class EndpointCreate(StrictModel):
    url: str = Field(min_length=1)
    secret: str | None = Field(default=None, min_length=1)
    types: list[str] | None = None


class EndpointList(StrictModel):
    limit: int | None = None
    next_page: str | None = None


class EndpointRef(StrictModel):
    id: Id


class SecretRotation(StrictModel):
    id: Id
    secret: str | None = Field(default=None, min_length=1)


class DeliveryList(StrictModel):
    endpoint_id: Id | None = None
    notification_id: Id | None = None
    state: Literal["pending", "succeeded", "failed"] | None = None
    limit: int | None = None
    next_page: str | None = None


class Replay(StrictModel):
    notification_id: Id
    endpoint_id: Id | None = None


def endpoint_view(e: EndpointRecord) -> dict[str, Any]:
    return {
        "id": e.id,
        "url": e.url,
        "types": e.event_types,
        "enabled": e.enabled,
        "disabled_reason": e.disabled_reason,
        "previous_secret_expires_at": optional_time(e.previous_secret_expires_at_us),
        "created_at": format_rfc3339(e.created_at_us),
        "updated_at": format_rfc3339(e.updated_at_us),
    }


def attempt_view(a: AttemptRecord) -> dict[str, Any]:
    return {
        "attempt": a.attempt,
        "attempted_at": format_rfc3339(a.attempted_at_us),
        "status_code": a.status_code,
        "latency_ms": a.latency_ms,
        "error": a.error,
        "response_body": a.response_body,
        "response_headers": json.loads(a.response_headers) if a.response_headers else None,
    }


def delivery_view(d: DeliveryRecord, attempts: list[AttemptRecord]) -> dict[str, Any]:
    return {
        "id": d.id,
        "notification_id": d.notification_id,
        "notification_type": d.notification_type,
        "endpoint_id": d.endpoint_id,
        "state": d.state,
        "attempt_count": d.attempts,
        "next_attempt_at": optional_time(d.next_attempt_at_us),
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "created_at": format_rfc3339(d.created_at_us),
        "updated_at": format_rfc3339(d.updated_at_us),
        "attempts": [attempt_view(a) for a in attempts],
    }


@router.post("/v1/webhooks/endpoints/create")
def create_endpoint(body: EndpointCreate, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    box = require_box(state.secret_box)
    endpoints.check_url(body.url, state.settings.webhook_allow_private_networks)
    with state.db.write() as conn:
        made = endpoints.register(conn, box, body.url, body.secret, body.types, now_us())
    return ExactJSONResponse({"data": {**endpoint_view(made.endpoint), "secret": made.secret}})


@router.post("/v1/webhooks/endpoints/list")
def list_endpoints(
    body: EndpointList | None = None, state: AppState = Depends(app_state)
) -> ExactJSONResponse:
    body = body or EndpointList()
    asked = page_request(state, "webhook_endpoints", tuple[int, str], limit=body.limit, token=body.next_page)
    with state.db.read() as conn:
        found = store.list_endpoints(conn, after=asked.after, limit=asked.size + 1)
    page, cursor = asked.cut(found, lambda e: (e.created_at_us, e.id))
    return ExactJSONResponse({"data": [endpoint_view(e) for e in page], "next_page": cursor})


@router.post("/v1/webhooks/endpoints/remove")
def remove_endpoint(body: EndpointRef, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        store.remove_endpoint(conn, body.id, now_us())
    return ExactJSONResponse(id_response(body.id))


@router.post("/v1/webhooks/endpoints/enable")
def enable_endpoint(body: EndpointRef, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        return ExactJSONResponse({"data": endpoint_view(store.enable_endpoint(conn, body.id, now_us()))})


@router.post("/v1/webhooks/endpoints/rotateSecret")
def rotate_secret(body: SecretRotation, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    box = require_box(state.secret_box)
    with state.db.write() as conn:
        made = endpoints.rotate(
            conn, box, body.id, body.secret, state.settings.webhook_rotation_grace_us(), now_us()
        )
    return ExactJSONResponse({"data": {**endpoint_view(made.endpoint), "secret": made.secret}})


@router.post("/v1/webhooks/deliveries/list")
def list_deliveries(
    body: DeliveryList | None = None, state: AppState = Depends(app_state)
) -> ExactJSONResponse:
    body = body or DeliveryList()
    asked = page_request(state, "webhook_deliveries", int, limit=body.limit, token=body.next_page)
    with state.db.read() as conn:
        found = store.list_deliveries(
            conn,
            endpoint_id=body.endpoint_id,
            notification_id=body.notification_id,
            state=body.state,
            before_id=asked.after,
            limit=asked.size + 1,
        )
        page, cursor = asked.cut(found, lambda d: d.id)
        attempts = store.attempts_of(conn, [d.id for d in page])
    return ExactJSONResponse({"data": [delivery_view(d, attempts[d.id]) for d in page], "next_page": cursor})


@router.post("/v1/webhooks/deliveries/replay")
def replay(body: Replay, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        queued = store.replay(conn, body.notification_id, body.endpoint_id, now_us())
    if state.dispatcher is not None:
        state.dispatcher.notify()
    return ExactJSONResponse({"data": [{"delivery_id": d, "endpoint_id": e} for d, e in queued]})
