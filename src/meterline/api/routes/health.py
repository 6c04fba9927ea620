"""GET /health (no token) and GET /metrics (behind the token): see api/health.py."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from meterline.api.health import report
from meterline.api.responses import ExactJSONResponse
from meterline.api.state import AppState, app_state
from meterline.domain.timeutil import now_us
from meterline.metrics import exposition, readings_exposition

router = APIRouter()


@router.get("/health")
def health(state: AppState = Depends(app_state)) -> ExactJSONResponse:
    """Each part's state; 503 when one is down or evaluation lags past its threshold."""
    checked = report(state, now_us())
    return ExactJSONResponse(checked.body, status_code=200 if checked.healthy else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(state: AppState = Depends(app_state)) -> Response:
    """Prometheus metrics: every process's counters and histograms, and /health's readings."""
    readings = report(state, now_us()).gauges
    return Response(exposition() + readings_exposition(readings), media_type=CONTENT_TYPE_LATEST)
