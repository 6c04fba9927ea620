"""The ASGI application: routes, error shapes and middleware over a prepared `AppState`.

Which processes run beside it (the evaluator, webhook delivery) is decided by `meterline.runtime`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from meterline import __version__
from meterline.api import errors, openapi
from meterline.api.fast_route import FastPaths
from meterline.api.idempotency import IdempotencyMiddleware
from meterline.api.middleware import GuardMiddleware, TokenCache
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes import (
    access,
    alerts,
    balances,
    billable_metrics,
    commit_edits,
    contract_edits,
    contract_history,
    contracts,
    credit_types,
    custom_fields,
    customer_alerts,
    customer_commits,
    customers,
    dashboards,
    end_dates,
    events,
    health,
    historical_invoices,
    ingest,
    invoice_corrections,
    invoices,
    products,
    rate_cards,
    rate_schedules,
    rates,
    reservations,
    seat_balances,
    spend_limits,
    subscriptions,
    usage,
    webhooks,
)
from meterline.api.routes.unsupported import unsupported_router
from meterline.api.state import AppState

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def build_app(state: AppState, lifespan: Lifespan) -> FastAPI:
    """The API over `state`; `lifespan` starts and stops what the process runs beside it."""
    settings, db = state.settings, state.db
    app = FastAPI(
        title="meterline",
        version=__version__,
        description="Metronome-compatible usage-based billing engine",
        default_response_class=ExactJSONResponse,
        lifespan=lifespan,
    )
    app.state.meterline = state
    errors.install(app)
    # First, the routes asked most often (each a fixed path no other route matches): FastAPI tries
    # routes in order, and a request reaching its route after the 150 others spent more time
    # matching paths than a reservation spends being decided.
    most_asked = (ingest, access, reservations, health)
    for module in most_asked:
        app.include_router(module.router)
    app.include_router(unsupported_router())  # first: their paths are more specific than some served ones
    openapi.install(app, settings)
    for module in (
        alerts,
        customer_alerts,
        balances,
        seat_balances,
        customers,
        dashboards,
        credit_types,
        billable_metrics,
        invoices,
        invoice_corrections,
        historical_invoices,
        usage,
        events,
        products,
        rate_cards,
        rates,
        rate_schedules,
        contracts,
        contract_edits,
        commit_edits,
        contract_history,
        subscriptions,
        customer_commits,
        end_dates,
        custom_fields,
        webhooks,
        spend_limits,
    ):
        app.include_router(module.router)

    # Added first, so they run inside the guard: bodies read whole, tokens checked. The fast
    # routes innermost, so that a request with an Idempotency-Key is held as any other.
    app.add_middleware(FastPaths, routes=[route for module in most_asked for route in module.router.routes])
    app.add_middleware(IdempotencyMiddleware, db=db, ttl_us=settings.idempotency_key_ttl_us())
    app.add_middleware(
        GuardMiddleware,
        token_cache=TokenCache(db, settings.token_cache_ttl_s),
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_s,
    )
    return app
