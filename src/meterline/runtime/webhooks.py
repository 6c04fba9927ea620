"""Webhook delivery built from settings, for the server, the engine's processes and the CLI.

With SQLite and no key configured, the key that encrypts endpoint secrets is generated into a file
beside the database on first use, as the database itself is created, so webhooks work with no
set-up. PostgreSQL has no such place (several servers and the CLI must share one key), so `serve`
refuses to start there without a key rather than run with webhooks silently off.
"""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

from meterline.delivery.secrets import SecretBox, load_secret_box
from meterline.logging import get_logger
from meterline.settings import Settings
from meterline.store.db import Database

if TYPE_CHECKING:
    from meterline.delivery.dispatcher import Dispatcher

log = get_logger("meterline.webhooks")


class NoWebhookKey(SystemExit):
    """`serve` on a database with no default key file, webhooks on, and no key configured."""

    def __init__(self) -> None:
        super().__init__(
            "webhook delivery needs a key to encrypt endpoint secrets, and only an SQLite database"
            " file has a default one (beside it): set METERLINE_SECRET_KEY to the output of `meterline secret-key` (the same"
            " value for every server and for the CLI), or METERLINE_SECRET_KEY_FILE to a file holding"
            " one, or METERLINE_WEBHOOKS_ENABLED=false to run without webhooks"
        )


def secret_box(settings: Settings) -> SecretBox | None:
    """The configured key, else the key file (generated, 0600, and logged if missing), else None."""
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    key_file = None if key else settings.webhook_key_file()
    existed = key_file is not None and key_file.exists()
    box = load_secret_box(key, key_file)
    if key_file is not None and not existed:
        mode = stat.S_IMODE(key_file.stat().st_mode)
        log.info(
            "webhook_key_file_created",
            path=str(key_file),
            mode=f"{mode:04o}",
            note="encrypts webhook endpoint secrets; back it up with the database",
        )
    return box


def serving_secret_box(settings: Settings) -> SecretBox | None:
    """The box `serve` runs with; raises NoWebhookKey rather than start with webhooks silently off."""
    box = secret_box(settings)
    if box is None and settings.webhooks_enabled:
        raise NoWebhookKey
    return box


def webhook_delivery_on(settings: Settings, box: SecretBox | None) -> bool:
    """Whether this server sends webhooks: enabled, and a key to decrypt the endpoints' secrets."""
    return settings.webhooks_enabled and box is not None


def dispatcher_from_settings(db: Database, settings: Settings, box: SecretBox) -> Dispatcher:
    # Imported here: aiohttp is for the process that sends, not for an API server whose engine
    # runs in processes of its own (the fork server imports it for them).
    from meterline.delivery.dispatcher import Dispatcher

    return Dispatcher(
        db,
        box,
        timeout_s=settings.webhook_timeout_s,
        poll_interval_s=settings.webhook_poll_interval_s,
        concurrency_per_endpoint=settings.webhook_concurrency_per_endpoint,
        allow_private_networks=settings.webhook_allow_private_networks,
        retention_days=settings.webhook_retention_days,
    )
