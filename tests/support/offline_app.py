"""The application built only to read its route table and OpenAPI document: nothing started, no
database opened, no webhooks. Built once per test process, and the document only when a test
reads it (building it costs about half a CPU-second, which every worker paid while collecting)."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import FastAPI

from meterline.runtime.server import create_app
from meterline.settings import Settings

OFFLINE = Settings(
    database_url="sqlite://", engine_process=False, evaluator_enabled=False, webhooks_enabled=False
)


@cache
def offline_app() -> FastAPI:
    return create_app(OFFLINE)


@cache
def openapi_document() -> dict[str, Any]:
    return offline_app().openapi()
