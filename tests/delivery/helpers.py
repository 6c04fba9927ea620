"""Helpers for dispatcher tests: a settable clock, outbox rows, endpoints, and reading the log."""

from __future__ import annotations

import threading
import time
from typing import Any

from meterline.delivery import endpoints
from meterline.delivery.endpoints import WithSecret
from meterline.delivery.secrets import SecretBox
from meterline.domain.ids import new_id
from meterline.domain.timeutil import US_PER_SECOND, now_us
from meterline.store import alerts
from meterline.store import webhooks as store
from meterline.store.db import Database
from meterline.store.webhooks import AttemptRecord, DeliveryRecord
from tests.support.waiting import wait_for


class Clock:
    """Epoch microseconds that move only when told: 72 hours pass in a test in milliseconds."""

    def __init__(self) -> None:
        self._now = now_us()
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += round(seconds * US_PER_SECOND)


def notify(db: Database, kind: str = "alerts.spend_threshold_reached", **properties: Any) -> str:
    """Write one outbox row the way alert evaluation does; returns the notification id."""
    notification_id = new_id()
    with db.write() as conn:
        alerts.add_notification(
            conn,
            alerts.Notification(
                notification_id, kind, "alert-1", "customer-1", {"customer_id": "customer-1", **properties}
            ),
            now_us(),
        )
    return notification_id


def settle(seconds: float = 0.2) -> None:
    """Give a dispatcher time to act on something it must not do (asserting an absence)."""
    time.sleep(seconds)


def register(
    db: Database, box: SecretBox, url: str, types: list[str] | None = None, secret: str | None = None
) -> WithSecret:
    with db.write() as conn:
        return endpoints.register(conn, box, url, secret, types, now_us())


def deliveries(
    db: Database, notification_id: str | None = None, endpoint_id: str | None = None
) -> list[DeliveryRecord]:
    with db.read() as conn:
        return store.list_deliveries(conn, notification_id=notification_id, endpoint_id=endpoint_id)


def attempts(db: Database, delivery_id: int) -> list[AttemptRecord]:
    with db.read() as conn:
        return store.attempts_of(conn, [delivery_id])[delivery_id]


def wait_for_state(db: Database, notification_id: str, state: str, timeout_s: float = 10.0) -> DeliveryRecord:
    found = wait_for(
        lambda: deliveries(db, notification_id),
        lambda got: len(got) == 1 and got[0].state == state,
        timeout_s,
    )
    return found[0]


def wait_for_attempts(
    db: Database, notification_id: str, count: int, timeout_s: float = 10.0
) -> DeliveryRecord:
    """Until the delivery has `count` attempts recorded (and is not in flight)."""
    found = wait_for(
        lambda: deliveries(db, notification_id),
        lambda got: len(got) == 1 and got[0].attempts >= count,
        timeout_s,
    )
    return found[0]
