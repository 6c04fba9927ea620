"""Wiring webhook delivery to settings, for the server and the CLI alike."""

from __future__ import annotations

from meterline.delivery.dispatcher import Dispatcher
from meterline.delivery.secrets import SecretBox, load_secret_box
from meterline.domain.timeutil import US_PER_HOUR
from meterline.settings import Settings
from meterline.store.db import Database


def secret_box(settings: Settings) -> SecretBox | None:
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    return load_secret_box(key, settings.webhook_key_file())


def rotation_grace_us(settings: Settings) -> int:
    return round(settings.webhook_secret_rotation_grace_hours * US_PER_HOUR)


def dispatcher_from_settings(db: Database, settings: Settings, box: SecretBox) -> Dispatcher:
    return Dispatcher(
        db,
        box,
        timeout_s=settings.webhook_timeout_s,
        poll_interval_s=settings.webhook_poll_interval_s,
        concurrency_per_endpoint=settings.webhook_concurrency_per_endpoint,
    )
