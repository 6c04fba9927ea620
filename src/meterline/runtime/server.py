"""The API server's process layout, built from settings.

With `engine_process` (the default) the evaluator and webhook delivery each run in a process of
their own beside the server (`engine_processes`); without it, as threads inside the server. Either
way the ingest writer wakes the evaluator after each commit, and the evaluator wakes delivery.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from meterline import __version__, web
from meterline.api.app import build_app
from meterline.api.cursors import CursorCodec, derive_cursor_key
from meterline.api.state import AppState, Wakeable
from meterline.engine.group_commit import GroupCommitWriter
from meterline.logging import get_logger
from meterline.runtime.engine_processes import Part, PartProcess
from meterline.runtime.evaluator import evaluator_from_settings
from meterline.runtime.webhooks import dispatcher_from_settings, serving_secret_box, webhook_delivery_on
from meterline.settings import Settings
from meterline.store.db import Database
from meterline.store.migrate import is_up_to_date, upgrade_to_head
from meterline.store.server_keys import server_key

if TYPE_CHECKING:
    from meterline.delivery.dispatcher import Dispatcher
    from meterline.engine.evaluator import Evaluator

log = get_logger("meterline.server")


def prepare_database(settings: Settings) -> Database:
    """Open the database; SQLite is migrated in place, PostgreSQL must be migrated explicitly."""
    db = Database(settings.database_url)
    if db.is_sqlite:
        upgrade_to_head(db)
    elif not is_up_to_date(db):
        db.dispose()
        raise SystemExit("the PostgreSQL schema is not current: run `meterline migrate` first")
    return db


def cursor_key(settings: Settings, db: Database) -> bytes:
    """The key that signs pagination cursors, the same in every API process of a deployment:
    derived from METERLINE_SECRET_KEY when it is set, else generated once and kept in the database."""
    configured = settings.secret_key.get_secret_value() if settings.secret_key else ""
    first = next((k.strip() for k in configured.split(",") if k.strip()), "")
    if first:
        return derive_cursor_key(first.encode())
    with db.write() as conn:
        return server_key(conn, "pagination_cursors")


def create_app(settings: Settings) -> FastAPI:
    box = serving_secret_box(settings)
    webhooks_on = webhook_delivery_on(settings, box)
    db = prepare_database(settings)
    parts: list[PartProcess] = []
    dispatcher: Dispatcher | None = None
    evaluator: Evaluator | None = None
    if settings.engine_process:
        delivery = PartProcess(settings, Part.WEBHOOKS) if webhooks_on else None
        evaluating = (
            PartProcess(settings, Part.EVALUATOR, wakes=delivery) if settings.evaluator_enabled else None
        )
        # The evaluator's process first: it holds a writer's end of the delivery process's pipe,
        # so the delivery process sees its pipe close only once the evaluator's process is gone.
        parts = [p for p in (evaluating, delivery) if p is not None]
        wake_evaluator: Wakeable | None = evaluating
        wake_dispatcher: Wakeable | None = delivery
    else:
        dispatcher = dispatcher_from_settings(db, settings, box) if box and webhooks_on else None
        on_commit = dispatcher.notify if dispatcher else None
        evaluator = (
            evaluator_from_settings(db, settings, on_commit, dispatcher)
            if settings.evaluator_enabled
            else None
        )
        wake_evaluator, wake_dispatcher = evaluator, dispatcher
    writer = GroupCommitWriter(
        db,
        max_events=settings.group_commit_max_events,
        on_commit=wake_evaluator.notify if wake_evaluator else lambda: None,
    )
    state = AppState(
        settings=settings,
        db=db,
        writer=writer,
        evaluator=wake_evaluator,
        cursors=CursorCodec(lambda: cursor_key(settings, db)),
        secret_box=box,
        dispatcher=wake_dispatcher,
        webhooks_on=webhooks_on,
        parts={
            **{p.part.value: p.liveness for p in parts},
            **({"evaluator": evaluator.liveness} if evaluator else {}),
            **({"webhooks": dispatcher.liveness} if dispatcher else {}),
        },
    )
    workers: list[PartProcess | Evaluator | Dispatcher] = [*parts, *(w for w in (evaluator, dispatcher) if w)]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        writer.start()
        state.reservations.start()
        for worker in workers:
            worker.start()
        log.info(
            "server_started",
            database=db.dialect,
            evaluator=settings.evaluator_enabled,
            webhooks=webhooks_on,
            engine_processes=[p.part.value for p in parts],
            version=__version__,
        )
        try:
            yield
        finally:
            writer.stop()
            state.reservations.stop()
            for worker in workers:
                worker.stop()
            db.dispose()
            log.info("server_stopped")

    app = build_app(state, lifespan)
    web.install(app)  # the embeddable dashboards, above the API that issues their URLs
    return app
