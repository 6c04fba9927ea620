"""What every request handler may use: settings, database, ingest and reservation writers,
evaluator, cursor codec, webhook dispatcher."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from fastapi import Request

from meterline.api.access_feed import OutboxFeed
from meterline.api.cursors import CursorCodec
from meterline.api.reservation_writer import ReservationWriter
from meterline.delivery.secrets import SecretBox
from meterline.engine.group_commit import GroupCommitWriter
from meterline.settings import Settings
from meterline.store.db import Database

if TYPE_CHECKING:
    from meterline.liveness import PartLiveness


class Wakeable(Protocol):
    """The evaluator or the dispatcher: a thread in this process, or the engine process's pipe."""

    def notify(self) -> None: ...


@dataclass(slots=True)
class AppState:
    settings: Settings
    db: Database
    writer: GroupCommitWriter
    evaluator: Wakeable | None
    cursors: CursorCodec  # signs and checks every list's `next_page`
    secret_box: SecretBox | None = None  # None: no key configured, so no webhook endpoints
    dispatcher: Wakeable | None = None
    webhooks_on: bool = False  # webhook delivery runs (enabled, and a key to decrypt secrets)
    # The engine's parts this server runs, by name, each with how to tell it is alive (/health).
    parts: dict[str, Callable[[], PartLiveness]] = field(default_factory=dict)
    # The outbox tail of the access streams, started with the first stream (`access_feed`).
    access_feed: OutboxFeed | None = None
    # Decides reserve and release requests in batches, one commit each (started with the server).
    reservations: ReservationWriter = field(init=False)

    def __post_init__(self) -> None:
        self.reservations = ReservationWriter(
            self.db, self.settings.open_horizon_us(), durable=self.settings.reservation_durable_commits
        )


async def app_state(request: Request) -> AppState:
    # async: FastAPI runs a plain function dependency on a worker thread, a hop per request.
    state: AppState = request.app.state.meterline
    return state


def access_feed(state: AppState) -> OutboxFeed:
    """The process's one outbox tail for access streams (created on first use)."""
    if state.access_feed is None:
        state.access_feed = OutboxFeed(state.db, state.settings.access_stream_poll_interval_s)
    return state.access_feed


def wake_evaluator(state: AppState) -> None:
    """After a committed change to contracts or commits: recompute billing now, not at the next poll.

    Inside a request's held transaction (an idempotent request), once that has committed."""
    if state.evaluator is not None:
        state.db.after_commit(state.evaluator.notify)


def wake_dispatcher(state: AppState) -> None:
    """After a request itself wrote notifications (an alert archived or reset): send them now."""
    if state.dispatcher is not None:
        state.db.after_commit(state.dispatcher.notify)
