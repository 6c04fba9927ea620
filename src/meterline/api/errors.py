"""Turn every failure into Metronome's `{"message": ...}` with the right 4xx; never a bare 500.

Anything unexpected is answered (500, same shape) by the edge middleware, which keeps the
connection open and logs the traceback once.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from meterline.api.responses import ExactJSONResponse, message
from meterline.domain.errors import MeterlineError


def describe_validation_errors(errors: list[Any]) -> str:
    parts = []
    for error in errors:
        if error.get("type") == "json_invalid":
            parts.append(f"body: is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})")
            continue
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        rule = _rule(error)
        if not loc and ": " in rule:
            parts.append(rule)  # a whole-body rule that already names its field
        else:
            parts.append(f"{'.'.join(loc) or 'body'}: {rule}")
    return "; ".join(parts)


def _rule(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "value_error" and "error" in error.get("ctx", {}):
        return str(error["ctx"]["error"])
    text = str(error.get("msg", "is invalid"))
    return text[0].lower() + text[1:] if text else "is invalid"


def install(app: FastAPI) -> None:
    @app.exception_handler(MeterlineError)
    async def _meterline_error(_request: Request, error: MeterlineError) -> ExactJSONResponse:
        return message(error.status_code, error.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, error: RequestValidationError) -> ExactJSONResponse:
        return message(400, describe_validation_errors(list(error.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> ExactJSONResponse:
        if error.status_code == 404:
            return message(404, f"no route for {request.method} {request.url.path}")
        if error.status_code == 405:
            return message(405, f"method {request.method} is not allowed on {request.url.path}")
        return message(error.status_code, str(error.detail))
