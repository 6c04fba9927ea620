"""The end customer's own pages: embeddable dashboards, served by meterline itself (no CDN).

A layer of its own above the API: it reads through the same services and store, reuses the API's
renderings (an invoice is shown as the API shows it) and verifies the capability the API issued.
"""

from __future__ import annotations

from fastapi import FastAPI

from meterline.web.pages import router


def install(app: FastAPI) -> None:
    app.include_router(router)
