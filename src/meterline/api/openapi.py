"""The OpenAPI document, made true to what the server answers.

FastAPI documents a 422 for every operation with parameters, but meterline answers bad input
with 400 (and 401, 404, 409, 413, 408, 503 where they apply), always in Metronome's error shape
`{"message": str}`; and `/v1/ingest` reads its body itself (msgspec), so FastAPI knows no
schema for it. Both are set right here, so schemathesis and client generators see every
operation as it behaves.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from meterline.api.idempotency import HEADER, MAX_KEY_CHARS, is_keyed
from meterline.settings import Settings

ERROR = {"$ref": "#/components/schemas/Error"}
ERROR_RESPONSES = {
    "400": "Bad request: the message names the field and the rule; nothing was applied",
    "401": "No valid bearer token",
    "404": "No such object (or route)",
    "408": "The body did not arrive in time",
    "409": "Conflicts with the current state (a reused uniqueness key, an alias in use)",
    "413": "The body is larger than METERLINE_MAX_BODY_BYTES",
    "503": "Temporarily unavailable; retry after the Retry-After header's seconds",
}
PUBLIC = {"/health"}
IDEMPOTENCY_KEY = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "Repeating the request with the same key gets the first answer again (for "
    "METERLINE_IDEMPOTENCY_KEY_TTL_HOURS); the same key with another request is a 409",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS, "pattern": "^[ -~]+$"},
}


def install(app: FastAPI, settings: Settings) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(app: FastAPI, settings: Settings) -> dict[str, Any]:
    spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string"}},
        "additionalProperties": False,
    }
    schemas["UsageEvent"] = _usage_event(settings)
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    spec["security"] = [{"bearer": []}]
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            _errors(path, operation)
            if is_keyed(method.upper(), path):
                operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY)
    ingest = spec["paths"]["/v1/ingest"]["post"]
    ingest["responses"]["200"] = {
        "description": "Every event is durably stored (repeated transaction ids once)"
    }
    ingest["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/UsageEvent"},
                    "minItems": 1,
                    "maxItems": settings.max_events_per_request,
                }
            }
        },
    }
    return spec


def _errors(path: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    statuses = ERROR_RESPONSES
    if path in PUBLIC:
        operation["security"] = []
        responses["503"] = {"description": "A part is down or evaluation lags (the body says which)"}
        statuses = {k: v for k, v in ERROR_RESPONSES.items() if k in ("400", "408", "413")}
    for status, description in statuses.items():
        responses.setdefault(
            status, {"description": description, "content": {"application/json": {"schema": ERROR}}}
        )


def _usage_event(settings: Settings) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["transaction_id", "customer_id", "event_type", "timestamp"],
        "additionalProperties": False,
        "properties": {
            "transaction_id": {
                "type": "string",
                "minLength": 1,
                "maxLength": settings.max_transaction_id_chars,
            },
            "customer_id": {
                "type": "string",
                "minLength": 1,
                "maxLength": 256,
                "description": "a meterline customer id or one of its ingest aliases",
            },
            "event_type": {"type": "string", "minLength": 1, "maxLength": 256},
            "timestamp": {
                "type": "string",
                "format": "date-time",
                "description": f"RFC 3339, at most {settings.max_backdate_days} days back and "
                f"{settings.max_future_hours} hours ahead",
            },
            "properties": {
                "type": "object",
                "description": "numbers (JSON numbers or numeric strings) have at most 40 digits before "
                "and 40 after the decimal point; values nest at most 32 levels deep in the body",
            },
        },
    }
